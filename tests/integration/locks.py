"""Waiting, in a test, for another connection to wait for a row lock (PostgreSQL)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text


def waiting_for_a_lock(engine: Engine) -> None:
    """Until another connection to this PostgreSQL database waits for a lock (20 s at most)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("nobody came to wait for a lock")
