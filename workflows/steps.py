"""The machinery every use case shares: load the change, make moves through the stage
machine, record each in the audit trail, save with compare-and-set, commit once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from workflows.audit import AuditEntry
from workflows.errors import StaleAction
from workflows.events import Happened
from workflows.model import SYSTEM, Actor, Change, Stage
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.stages import Action, Attempt, move_for

SYSTEM_ACTOR = Actor(SYSTEM)


class Step:
    """One use case in progress: the change, the time, and the moves made so far."""

    def __init__(self, uow: UnitOfWork, policy: Policy, change: Change, at: datetime) -> None:
        self.uow = uow
        self.policy = policy
        self.change = change
        self.at = at
        self.moved = False

    def move(self, action: Action, actor: Actor, **details: Any) -> None:
        """Make a move through the stage machine and record it in the audit trail."""
        change = self.change
        target = move_for(change, action, Attempt(actor, self.policy, self.at)).target
        before = change.stage
        change.stage = target
        change.updated_at = self.at
        self.note(action.past, actor, before, **details)

    def note(
        self, what: Happened, actor: Actor, before: Stage | None = None, **details: Any
    ) -> None:
        """Record something that happened without a move (approvals withdrawn, say)."""
        change = self.change
        entry = AuditEntry(
            at=self.at,
            actor=actor.user_id,
            action=what,
            ref=change.ref,
            from_stage=(before or change.stage).value,
            to_stage=change.stage.value,
            details=details,
        )
        self.uow.audit.append(entry)
        self.moved = True


@contextmanager
def changing(
    uow: UnitOfWork, clock: Clock, policy: Policy, number: int, seen_stage: Stage | None
) -> Iterator[Step]:
    with uow:
        change = uow.changes.get(number)
        if seen_stage is not None and change.stage is not seen_stage:
            raise StaleAction(change.ref, seen_stage.label, change.stage.label)
        step = Step(uow, policy, change, clock.now())
        yield step
        if step.moved:
            uow.changes.save(change)
            uow.commit()


def close_if_done(step: Step, actor: Actor) -> None:
    """Close the change once its outcome is in and nothing more is owed."""
    change = step.change
    if change.outcome is not None and not change.review_owed and not change.retro_approval_owed:
        step.move(Action.CLOSE, actor)
        change.closed_at = step.at
