"""Seeding a benchmark's database fast: rows straight into tables the real migrations made,
past the ORM (SQLite through executemany in batches, PostgreSQL through COPY), then the
planner's statistics brought up to date, as a database that grew slowly would have them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import Engine

from storage.db import is_sqlite

BATCH_ROWS = 20_000


@dataclass(frozen=True)
class Rows:
    """What to insert into one table: its columns, and the rows (tuples in that order)."""

    table: str
    columns: Sequence[str]
    rows: Iterable[tuple[Any, ...]]


def insert(engine: Engine, tables: Sequence[Rows]) -> None:
    """Insert every table's rows in one transaction, then ANALYZE (VACUUM ANALYZE on
    PostgreSQL) the tables written."""
    if is_sqlite(engine):
        _insert_sqlite(engine, tables)
    else:
        _copy_postgres(engine, tables)


def batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def sqlite_value(value: Any) -> Any:
    # How SQLAlchemy stores a UTCDateTime on SQLite (checked: the bot's queries find the rows).
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"
    if isinstance(value, bool):
        return int(value)
    return value


def _insert_sqlite(engine: Engine, tables: Sequence[Rows]) -> None:
    with engine.begin() as connection:
        for t in tables:
            marks = ", ".join("?" * len(t.columns))
            statement = f"INSERT INTO {t.table} ({', '.join(t.columns)}) VALUES ({marks})"
            for batch in batches(t.rows, BATCH_ROWS):
                connection.exec_driver_sql(
                    statement, [tuple(sqlite_value(v) for v in row) for row in batch]
                )
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


def _copy_postgres(engine: Engine, tables: Sequence[Rows]) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for t in tables:
            with cursor.copy(f"COPY {t.table} ({', '.join(t.columns)}) FROM STDIN") as copy:
                for row in t.rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    names = ", ".join(dict.fromkeys(t.table for t in tables))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM ANALYZE {names}")
