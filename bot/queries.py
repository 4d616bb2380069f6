"""The read side: which changes a person sees in lists and on App Home."""

from __future__ import annotations

from typing import Any

from storage.repositories import SqlChanges
from workflows.model import Actor, Change, Classification, Stage
from workflows.policy import Policy
from workflows.stages import Action, allowed_actions

OPEN = (Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE, Stage.DEPLOY)


def mine(session: Any, user_id: str, limit: int = 20) -> list[Change]:
    return SqlChanges(session).find(stages=OPEN, person=user_id, limit=limit)


def open_changes(session: Any, limit: int = 30) -> list[Change]:
    return SqlChanges(session).find(stages=OPEN, limit=limit)


def awaiting(session: Any, actor: Actor, policy: Policy, limit: int = 20) -> list[Change]:
    """Changes this person could review or approve now."""
    candidates = SqlChanges(session).find(stages=(Stage.REVIEW, Stage.APPROVE), limit=200)
    wanted = {Action.RECORD_REVIEW, Action.APPROVE}
    found = [
        change
        for change in candidates
        if change.classification is not Classification.STANDARD
        and wanted & set(allowed_actions(change, actor, policy))
    ]
    return found[:limit]


def reviews_owed(session: Any, user_id: str, limit: int = 20) -> list[Change]:
    owed = SqlChanges(session).find(review_owed=True, limit=200)
    return [c for c in owed if c.owner == user_id][:limit]
