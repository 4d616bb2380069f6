"""A person's step that PostgreSQL ends to break a deadlock is done again, not lost: nothing
of it was written, and the person clicked once."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import Engine, text

from tests.integration.api import served
from tests.integration.changes import APPROVER
from tests.integration.locks import waiting_for_a_lock
from workflows import process


async def test_an_approval_ended_by_a_deadlock_is_made_again_and_counted_once(
    engine: Engine, backend: str
) -> None:
    """The approval holds its change's row and waits for the card's (to mark it due, with its
    COMMIT); another transaction holds the card's and comes to wait for the change's.
    PostgreSQL ends the approval, which waited first. Before, the approver was told it
    failed (in the e2e test of two replicas, a redraw of conflicting cards was the other)."""
    if backend == "sqlite":
        pytest.skip("row locks: SQLite has one writer at a time")
    async with served(engine) as api:
        change = api.awaiting_approval()
        number = change.number
        with engine.connect() as holder:
            holder.execute(text("SET LOCAL deadlock_timeout = '60s'"))  # the approval sees it
            holder.execute(
                text("SELECT number FROM publications WHERE number = :n FOR UPDATE"), {"n": number}
            )
            approving = asyncio.create_task(api.bot.services.run(process.approve, number, APPROVER))
            await asyncio.to_thread(waiting_for_a_lock, engine)

            def crossing() -> None:  # waits for the approval's row: a deadlock
                holder.execute(
                    text("UPDATE changes SET title = title WHERE number = :n"), {"n": number}
                )
                holder.rollback()

            crosser = threading.Thread(target=crossing)
            crosser.start()
            approved = await asyncio.wait_for(approving, timeout=60)
            crosser.join(timeout=30)

        assert approved.approvers() == (APPROVER.user_id,)
        assert api.stored(change).approvers() == (APPROVER.user_id,)
