"""The server's own thread checkpoints SQLite's write-ahead log; its connections do not."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from storage import migrate
from storage.checkpoints import BackgroundCheckpoints
from storage.db import make_engine


def _write(engine: Engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS filler (body TEXT)"))
        connection.execute(
            text("INSERT INTO filler (body) VALUES (:body)"),
            [{"body": "x" * 2000} for _ in range(rows)],
        )


def test_the_servers_connections_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "changebot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    checkpoints = BackgroundCheckpoints(engine, every=3600)  # the thread never wakes itself
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    # Far past SQLite's automatic checkpoint (1,000 pages): nothing copied the log back.
    _write(engine, 3000)
    result = checkpoints.checkpoint()
    assert result is not None
    busy, frames, copied = result
    assert busy == 0 and frames > 1000 and copied == frames
    engine.dispose()


def test_without_it_sqlite_checkpoints_by_itself(tmp_path: Path) -> None:
    """The control: the setting above is the thread's doing, not SQLite's default."""
    engine = make_engine(f"sqlite:///{tmp_path / 'changebot.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    engine.dispose()


def test_the_thread_checkpoints_on_its_own_and_once_more_when_stopped(tmp_path: Path) -> None:
    path = tmp_path / "changebot.db"
    engine = make_engine(f"sqlite:///{path}")
    checkpoints = BackgroundCheckpoints(engine, every=0.05).start()
    _write(engine, 200)
    for _ in range(200):
        if checkpoints.checkpoints >= 2:
            break
        time.sleep(0.02)
    assert checkpoints.checkpoints >= 2
    done = checkpoints.checkpoints
    checkpoints.stop()
    assert checkpoints.checkpoints >= done + 1
    engine.dispose()


def test_a_failed_checkpoint_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'changebot.db'}")  # no such folder
    checkpoints = BackgroundCheckpoints(engine, every=3600)
    assert checkpoints.checkpoint() is None
    assert "could not checkpoint" in caplog.text
    engine.dispose()


def test_serve_checkpoints_from_a_thread_on_a_sqlite_file_only(tmp_path: Path) -> None:
    from bot.server import _checkpoints

    on_file = make_engine(f"sqlite:///{tmp_path / 'changebot.db'}")
    started = _checkpoints(on_file)
    assert started is not None
    started.stop()
    assert _checkpoints(make_engine("sqlite:///:memory:")) is None
    on_file.dispose()
