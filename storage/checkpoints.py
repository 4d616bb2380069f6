"""SQLite's write-ahead log copied back into the database by a thread of the server's own.

SQLite does this itself, in whichever connection commits past 1,000 pages of log (the
automatic checkpoint). In the server that connection is most often the gate's, which runs
on the event loop: every request in flight then waited for the copy and its two syncs to
disk. `BackgroundCheckpoints` turns the automatic checkpoint off for the server's own
connections and checkpoints from a thread instead, PASSIVE (it never waits for a reader or
a writer, and copies what it can), every `every` seconds. SQLite releases the interpreter's
lock while it copies and syncs, so the event loop answers meanwhile. Other processes on the
same file (the CLI) keep the automatic checkpoint, and a server that stops without its last
checkpoint loses nothing: the log is the database's until it is copied, and SQLite copies
it when it is next opened.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

#: Seconds between checkpoints: the log holds about this long of writes (a few MB at most).
EVERY = 1.0


class BackgroundCheckpoints:
    def __init__(self, engine: Engine, every: float = EVERY) -> None:
        self.engine = engine
        self.every = every
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        event.listen(engine, "checkout", _manual_checkpoints)

    def start(self) -> BackgroundCheckpoints:
        self._thread = threading.Thread(target=self._run, name="changebot-checkpoints", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, after one last checkpoint of its own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.checkpoint()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint: (busy, frames in the log, frames copied), or None if it
        failed (logged; the next one tries again)."""
        try:
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                row = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                cursor.close()
            finally:
                connection.close()
        except Exception:
            log.exception("could not checkpoint SQLite's write-ahead log; trying again later")
            return None
        self.checkpoints += 1
        return (int(row[0]), int(row[1]), int(row[2])) if row else None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.checkpoint()


def _manual_checkpoints(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A connection of the server leaves checkpoints to the thread (once per connection)."""
    if record.info.get("manual_checkpoints"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
    record.info["manual_checkpoints"] = True
