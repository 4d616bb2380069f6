"""Throw-away databases for a benchmark run: a SQLite file, or a PostgreSQL database created
on the server named by `--postgres-url` and dropped afterwards, whatever happens."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url_option() -> str:
    return os.environ.get("CHANGEBOT_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)


def postgres_reachable(url: str) -> bool:
    try:
        with _admin(url).connect():
            return True
    except OperationalError:
        return False


@contextmanager
def throwaway_postgres(url: str, prefix: str = "cb_bench") -> Iterator[str]:
    """A new, empty database on `url`'s server; yields its URL and drops it at the end."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = _admin(url)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_url(directory: Path, name: str = "changebot.db") -> str:
    return f"sqlite:///{directory / name}"


def _admin(url: str):  # type: ignore[no-untyped-def]
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
