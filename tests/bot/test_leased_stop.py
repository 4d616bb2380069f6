"""A leased worker stops when it is cancelled, even when a kick wakes it in the same turn."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from bot.leased import LeasedWorker
from storage import outbox
from storage.db import make_engine
from storage.outbox import Publication
from workflows.ports import SystemClock


async def test_a_worker_kicked_as_it_is_cancelled_stops(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "changebot.db"
    shutil.copyfile(sqlite_template, database)
    engine = make_engine(f"sqlite:///{database}")
    try:
        worker = LeasedWorker[Publication](
            outbox, engine, SystemClock(), owner="test", lease=timedelta(minutes=1)
        )
        running = asyncio.create_task(worker.run(3600))
        await asyncio.sleep(0.05)  # it waits for a kick, or the hour
        worker.kick()
        await asyncio.sleep(0)  # the kick is taken in this turn ...
        running.cancel()  # ... and the stop arrives in it too, as when a server shuts down

        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(running), timeout=5)
    finally:
        engine.dispose()
