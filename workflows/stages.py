"""The five stages as data: a declared transition table with pure guards.

Each move is `(stage, action) -> stage`. A move has two kinds of guard: *when* guards ask
about the change (is the deployment started? is the quorum met?), *who* guards ask about the
person (are they the requester? an approver?). The card's buttons come from the moves whose
*when* guards pass, so the bot never offers an illegal move; the *who* guards are checked when
someone clicks.

The machinery (`Move`, `checked_move`, `closure`) is not the change's alone: a proposal to
the Standard change catalog moves through a table of its own made of it (workflows/catalog.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from workflows import approval_rules
from workflows.approval_rules import RuleKind
from workflows.errors import NotAllowed, TransitionNotAllowed
from workflows.events import Happened
from workflows.model import (
    Actor,
    Change,
    Classification,
    GateCheck,
    GateStatus,
    Stage,
    is_pipeline,
)
from workflows.policy import Policy


class Action(StrEnum):
    SUBMIT = "submit"
    RECORD_REVIEW = "record_review"
    ADD_TEST_EVIDENCE = "add_test_evidence"
    APPROVE = "approve"
    REJECT = "reject"
    START_DEPLOYMENT = "start_deployment"
    RECORD_OUTCOME = "record_outcome"
    SUBMIT_POST_CHANGE_REVIEW = "submit_post_change_review"
    CLOSE = "close"
    EDIT = "edit"
    CANCEL = "cancel"
    # Moves the process makes itself, recorded like any other.
    SATISFY_BY_PROCEDURE = "satisfy_by_procedure"
    AUTHORISE = "authorise"
    RETURN_TO_REQUEST = "return_to_request"
    RETURN_TO_APPROVE = "return_to_approve"
    BREAK_GLASS = "break_glass"
    CLOSE_WITHOUT_REVIEW = "close_without_review"

    @property
    def verb(self) -> str:
        return _VERBS[self]

    @property
    def past(self) -> Happened:
        """The audit trail's name for this move having happened."""
        return _PAST[self]


_VERBS = {
    Action.SUBMIT: "submit",
    Action.RECORD_REVIEW: "record the review of",
    Action.ADD_TEST_EVIDENCE: "add test evidence to",
    Action.APPROVE: "approve",
    Action.REJECT: "reject",
    Action.START_DEPLOYMENT: "start deploying",
    Action.RECORD_OUTCOME: "record the outcome of",
    Action.SUBMIT_POST_CHANGE_REVIEW: "submit the post-change review of",
    Action.CLOSE: "close",
    Action.EDIT: "edit",
    Action.CANCEL: "cancel",
    Action.SATISFY_BY_PROCEDURE: "pre-approve by procedure",
    Action.AUTHORISE: "authorise deployment of",
    Action.RETURN_TO_REQUEST: "return to Request",
    Action.RETURN_TO_APPROVE: "return to Approve",
    Action.BREAK_GLASS: "break glass on",
    Action.CLOSE_WITHOUT_REVIEW: "close without its post-change review",
}

_PAST = {
    Action.SUBMIT: Happened.SUBMITTED,
    Action.RECORD_REVIEW: Happened.REVIEWED,
    Action.ADD_TEST_EVIDENCE: Happened.TESTED,
    Action.APPROVE: Happened.APPROVED,
    Action.REJECT: Happened.REJECTED,
    Action.START_DEPLOYMENT: Happened.DEPLOYMENT_STARTED,
    Action.RECORD_OUTCOME: Happened.OUTCOME_RECORDED,
    Action.SUBMIT_POST_CHANGE_REVIEW: Happened.POST_CHANGE_REVIEW_SUBMITTED,
    Action.CLOSE: Happened.CLOSED,
    Action.EDIT: Happened.EDITED,
    Action.CANCEL: Happened.CANCELLED,
    Action.SATISFY_BY_PROCEDURE: Happened.SATISFIED_BY_PROCEDURE,
    Action.AUTHORISE: Happened.AUTHORISED,
    Action.RETURN_TO_REQUEST: Happened.RETURNED_TO_REQUEST,
    Action.RETURN_TO_APPROVE: Happened.RETURNED_TO_APPROVE,
    Action.BREAK_GLASS: Happened.BREAK_GLASS,
    Action.CLOSE_WITHOUT_REVIEW: Happened.CLOSED_WITHOUT_REVIEW,
}

#: Actions only the process itself takes; never offered as buttons.
SYSTEM_ACTIONS = frozenset(
    {
        Action.SATISFY_BY_PROCEDURE,
        Action.AUTHORISE,
        Action.RETURN_TO_REQUEST,
        Action.CLOSE,
        Action.RETURN_TO_APPROVE,
    }
)


@dataclass(frozen=True)
class Attempt:
    """Who tries a move, under which policy."""

    actor: Actor
    policy: Policy
    #: When the move is tried; guards about waiting (break-glass) need it.
    now: datetime | None = None
    #: How many open changes the change's window collides with (the policy may ask one
    #: more approval for a conflict).
    conflicts: int = 0


#: A guard returns None when the move may go ahead, or the reason it may not.
Guard = Callable[[Change, Attempt], str | None]


# -- when: guards about the change --------------------------------------------------------


def is_standard(change: Change, _: Attempt) -> str | None:
    if change.classification is not Classification.STANDARD:
        return "only a Standard change is pre-approved by a catalog procedure."
    return None


def not_standard(change: Change, _: Attempt) -> str | None:
    if change.classification is Classification.STANDARD:
        return "a Standard change is reviewed, tested and approved by its catalog procedure."
    return None


def procedure_in_catalog(change: Change, attempt: Attempt) -> str | None:
    if attempt.policy.procedure(change.details.procedure_id) is None:
        return (
            f"{change.details.procedure_id or 'no procedure'} is not in the Standard change "
            "catalog; choose Normal."
        )
    return None


def is_emergency(change: Change, _: Attempt) -> str | None:
    if change.classification is not Classification.EMERGENCY:
        return "only an Emergency change compresses review and test into its approval."
    return None


def quorum_met(change: Change, attempt: Attempt) -> str | None:
    unmet = approval_rules.unmet(change, attempt.policy, conflicts=attempt.conflicts)
    if not unmet:
        return None
    if len(unmet) == 1 and unmet[0].rule.kind in (RuleKind.GENERAL, RuleKind.EMERGENCY):
        have, needed = len(unmet[0].approved_by), unmet[0].needed
        return f"it has {have} of the {needed} approvals it needs."
    return f"it still needs {approval_rules.owed(unmet)}."


def not_deploying(change: Change, _: Attempt) -> str | None:
    if change.deployment_started_at is not None:
        return "its deployment has started."
    return None


def not_deployed(change: Change, attempt: Attempt) -> str | None:
    """Cancelling says the change never went out. Not once its deployment started, nor once
    the gate let a pipeline deploy a break-glass change: it may be out, and the approval owed
    in retrospect must not vanish with a cancellation. (A change that may be out otherwise is
    cancelled by an approver only: `approver_if_maybe_out`.)"""
    if not_deploying(change, attempt) is not None:
        return (
            "its deployment has started. Record its outcome instead (Rolled back or Failed if "
            "it did not go as planned)."
        )
    if (allowed := allowed_under_break_glass(change)) is not None:
        return (
            f"{_may_be_out(allowed)}. Start its deployment and record its outcome instead "
            "(Rolled back or Failed if it did not go ahead): its approval stays owed in "
            "retrospect."
        )
    return None


def maybe_out(change: Change) -> str | None:
    """Why a change whose deployment has not started may have been deployed all the same: a
    pipeline reported deploying it, or the gate allowed one to (whatever it answered later).
    None if neither."""
    if change.deployments:
        reported = change.deployments[0]
        return (
            f"pipeline {reported.pipeline} reported deploying {reported.service} to "
            f"{reported.environment}"
        )
    allowed = _allowed_since(change)
    return _allowed_to(allowed) if allowed is not None else None


def approver_if_maybe_out(change: Change, attempt: Attempt) -> str | None:
    """A change that may have been deployed is cancelled only by an approver other than its
    requester and implementer, who says why (the run was stopped, nothing went out): its
    requester could otherwise close a deployment with no outcome and no review on their own
    word. Its outcome may be recorded instead, where its deployment may start."""
    why = maybe_out(change)
    if why is None:
        return None
    if not_own_change(change, attempt) is None and approver(change, attempt) is None:
        return None
    sentence = (
        f"{why[0].upper()}{why[1:]}, so {change.ref} may have been deployed: only an approver "
        "other than its requester and implementer can cancel it now, saying why."
    )
    if change.stage is Stage.DEPLOY:
        sentence += (
            " Or start its deployment and record its outcome (Rolled back or Failed if it did "
            "not go ahead)."
        )
    return sentence


def still_owed_if_deployed(change: Change, attempt: Attempt) -> str | None:
    """Reclassifying a break-glass change settles the approval owed in retrospect (it is
    approved anew, as its new class asks): not once the gate let a pipeline deploy it."""
    if (not_started := not_deploying(change, attempt)) is not None:
        return not_started
    if (allowed := allowed_under_break_glass(change)) is not None:
        return (
            f"{_may_be_out(allowed)}, and its approval stays owed in retrospect. Keep its "
            "class, and edit anything else."
        )
    return None


def allowed_under_break_glass(change: Change) -> GateCheck | None:
    """The gate's first `allowed` answer since the change broke glass, while its approval is
    owed in retrospect (not once approved, nor once reclassified: approved anew then)."""
    since = change.break_glass_at
    if since is None or not change.retro_approval_owed:
        return None
    return _allowed_since(change, since)


def _allowed_since(change: Change, since: datetime | None = None) -> GateCheck | None:
    """The gate's first `allowed` answer about the change (at or after `since`, if given):
    the first kept apart, or the card's latest answers, for a change the gate answered
    before it kept the first."""
    kept = (change.first_allowed, *change.gate_checks)
    return next(
        (
            c
            for c in kept
            if c is not None and c.status is GateStatus.ALLOWED and (since is None or c.at >= since)
        ),
        None,
    )


def _allowed_to(allowed: GateCheck) -> str:
    return (
        f"the gate allowed {allowed.pipeline} to deploy {allowed.service} to {allowed.environment}"
    )


def _may_be_out(allowed: GateCheck) -> str:
    return f"{_allowed_to(allowed)} under break-glass, so it may already be deployed"


def deploying(change: Change, _: Attempt) -> str | None:
    if change.deployment_started_at is None:
        return "its deployment has not started."
    if change.outcome is not None:
        return "its outcome is already recorded."
    return None


def outcome_recorded(change: Change, _: Attempt) -> str | None:
    if change.outcome is None:
        return "its outcome has not been recorded."
    return None


def review_owed(change: Change, _: Attempt) -> str | None:
    if not change.review_owed:
        return "no post-change review is owed."
    return None


def nothing_owed(change: Change, _: Attempt) -> str | None:
    if change.review_owed:
        return "a post-change review is still owed."
    if change.retro_approval_owed:
        return "a retrospective approval is still owed."
    return None


def retro_approval_owed(change: Change, _: Attempt) -> str | None:
    if not change.retro_approval_owed:
        return "it needs no approval now."
    return None


def break_glass_allowed(change: Change, attempt: Attempt) -> str | None:
    if change.classification is not Classification.EMERGENCY:
        return "only an Emergency change may break glass."
    if not attempt.policy.emergency.break_glass_allowed:
        return "the change policy does not allow break-glass."
    return None


# -- who: guards about the person ---------------------------------------------------------


def in_charge(change: Change, attempt: Attempt) -> str | None:
    if attempt.actor.user_id not in change.people_in_charge():
        return f"Only the requester or the implementer of {change.ref} can do that."
    return None


def in_charge_or_pipeline(change: Change, attempt: Attempt) -> str | None:
    """Deployments are reported by the people in charge, or by a pipeline on their behalf
    (its API token's scope is what allows it)."""
    if is_pipeline(attempt.actor.user_id):
        return None
    return in_charge(change, attempt)


def not_own_change(change: Change, attempt: Attempt) -> str | None:
    if attempt.actor.user_id == change.requester:
        return f"You requested {change.ref}: someone else must review or approve it."
    if attempt.actor.user_id == change.details.implementer:
        return f"You implement {change.ref}: someone else must review or approve it."
    if attempt.actor.user_id == change.break_glass_by:  # whoever is in charge of it now
        return f"You broke glass on {change.ref}: someone else must approve it."
    return None


def approver(change: Change, attempt: Attempt) -> str | None:
    if approval_rules.may_approve(attempt.actor, change, attempt.policy):
        return None
    if change.classification is Classification.EMERGENCY:
        return "Only emergency approvers named in the change policy can do that."
    if approval_rules.rules_for(change, attempt.policy)[1:]:
        return (
            f"Only approvers named in the change policy for {change.ref} (its approvers, the "
            "owners of its services, or its high-risk approvers) can do that."
        )
    return "Only approvers named in the change policy can do that."


def not_yet_approved_by_actor(change: Change, attempt: Attempt) -> str | None:
    if attempt.actor.user_id in change.approvers():
        return f"You have already approved {change.ref}; an approval counts once."
    return None


def break_glass_opens(change: Change, policy: Policy) -> datetime:
    """When break-glass opens for the change, if no approver has acted by then."""
    return change.approvers_asked_at + policy.emergency.break_glass_after


def waited_for_approvers(change: Change, attempt: Attempt) -> str | None:
    """Break-glass only once no approver has acted within the policy's time. A question of
    time, not of who asks: until then the card offers no button but says when it opens."""
    wait = attempt.policy.emergency.break_glass_after
    ready = break_glass_opens(change, attempt.policy)
    if attempt.now is None or attempt.now < ready:
        since = (
            "its approvals were withdrawn"
            if change.approvals_withdrawn_at == change.approvers_asked_at
            else f"{change.ref} was submitted"
        )
        return (
            f"Break-glass opens at {ready:%H:%M:%S} UTC, {_minutes(wait)} after {since}, if no "
            "approver has acted by then; the approvers have been asked."
        )
    return None


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def in_charge_or_approver(change: Change, attempt: Attempt) -> str | None:
    if in_charge(change, attempt) is None or approver(change, attempt) is None:
        return None
    return f"Only the requester, the implementer or an approver can do that to {change.ref}."


#: What moves through a table (a change, a catalog proposal) and the stages it moves through.
Subject = TypeVar("Subject")
StageT = TypeVar("StageT", bound=StrEnum)


@dataclass(frozen=True)
class Move(Generic[StageT, Subject]):
    source: StageT
    action: Action
    target: StageT
    when: tuple[Callable[[Subject, Attempt], str | None], ...] = ()
    who: tuple[Callable[[Subject, Attempt], str | None], ...] = ()


def checked_move(
    table: dict[tuple[StageT, Action], Move[StageT, Subject]],
    subject: Subject,
    stage: StageT,
    action: Action,
    attempt: Attempt,
    *,
    what: str = "change",
) -> Move[StageT, Subject]:
    """The move `action` makes from `stage` in `table`, or the error saying why not: the
    *when* guards first (TransitionNotAllowed), then the *who* guards (NotAllowed)."""
    label = getattr(stage, "label", stage.value)
    move = table.get((stage, action))
    if move is None:
        raise TransitionNotAllowed(action.verb, label, what=what)
    for guard in move.when:
        if (reason := guard(subject, attempt)) is not None:
            raise TransitionNotAllowed(action.verb, label, reason, what=what)
    for guard in move.who:
        if (reason := guard(subject, attempt)) is not None:
            raise NotAllowed(attempt.actor.user_id, action.value, reason)
    return move


_OPEN_BEFORE_CLOSE = (Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE, Stage.DEPLOY)
_PEER = (not_own_change,)
_APPROVER = (not_own_change, approver, not_yet_approved_by_actor)

S = Stage
A = Action
MOVES: tuple[Move[Stage, Change], ...] = (
    Move(S.REQUEST, A.SUBMIT, S.REVIEW, who=(in_charge,)),
    # Normal (and an Emergency with time for the full path): peer review, evidence, approvals.
    Move(S.REVIEW, A.RECORD_REVIEW, S.TEST, when=(not_standard,), who=_PEER),
    Move(S.TEST, A.ADD_TEST_EVIDENCE, S.APPROVE, when=(not_standard,)),
    Move(S.APPROVE, A.APPROVE, S.APPROVE, when=(not_standard,), who=_APPROVER),
    Move(S.APPROVE, A.AUTHORISE, S.DEPLOY, when=(quorum_met,)),
    # An edit that withdraws the approvals of an authorised change takes the authorisation too.
    Move(S.DEPLOY, A.RETURN_TO_APPROVE, S.APPROVE, when=(not_deploying,)),
    # Emergency: one approval stands for the compressed review and test.
    Move(S.REVIEW, A.APPROVE, S.APPROVE, when=(is_emergency,), who=_APPROVER),
    Move(S.TEST, A.APPROVE, S.APPROVE, when=(is_emergency,), who=_APPROVER),
    # Standard: the catalog procedure stands for review, test and approval, step by step.
    Move(S.REVIEW, A.SATISFY_BY_PROCEDURE, S.TEST, when=(is_standard, procedure_in_catalog)),
    Move(S.TEST, A.SATISFY_BY_PROCEDURE, S.APPROVE, when=(is_standard, procedure_in_catalog)),
    Move(S.APPROVE, A.SATISFY_BY_PROCEDURE, S.DEPLOY, when=(is_standard, procedure_in_catalog)),
    # A rejection sends the change back to Request.
    Move(S.REVIEW, A.REJECT, S.REQUEST, when=(not_standard,), who=_PEER),
    Move(S.APPROVE, A.REJECT, S.REQUEST, when=(not_standard,), who=(not_own_change, approver)),
    # Deploy and verify.
    Move(
        S.DEPLOY, A.START_DEPLOYMENT, S.DEPLOY, when=(not_deploying,), who=(in_charge_or_pipeline,)
    ),
    Move(S.DEPLOY, A.RECORD_OUTCOME, S.DEPLOY, when=(deploying,), who=(in_charge_or_pipeline,)),
    Move(
        S.DEPLOY,
        A.SUBMIT_POST_CHANGE_REVIEW,
        S.DEPLOY,
        when=(outcome_recorded, review_owed),
        who=(in_charge_or_approver,),
    ),
    Move(S.DEPLOY, A.CLOSE, S.CLOSED, when=(outcome_recorded, nothing_owed)),
    # An approver may close a change whose review will never come, with a reason.
    Move(
        S.DEPLOY,
        A.CLOSE_WITHOUT_REVIEW,
        S.CLOSED,
        when=(outcome_recorded, review_owed),
        who=(not_own_change, approver),
    ),
    # Break-glass: no approver acted in time, so the requester goes ahead alone; an approval
    # is then owed in retrospect and chased like the review.
    *(
        Move(
            s,
            A.BREAK_GLASS,
            S.DEPLOY,
            when=(break_glass_allowed, waited_for_approvers),
            who=(in_charge,),
        )
        for s in (S.REVIEW, S.TEST, S.APPROVE)
    ),
    Move(S.DEPLOY, A.APPROVE, S.DEPLOY, when=(retro_approval_owed,), who=_APPROVER),
    # Before deployment the requester may edit or cancel; an approver may cancel too. A
    # break-glass change the gate let a pipeline deploy is past cancelling (not_deployed); any
    # other change that may have been deployed is cancelled by an approver alone.
    *(Move(s, A.EDIT, s, when=(not_deploying,), who=(in_charge,)) for s in _OPEN_BEFORE_CLOSE),
    # Reclassifying a submitted change sends it back to Request, to be submitted again.
    *(
        Move(s, A.RETURN_TO_REQUEST, S.REQUEST, when=(still_owed_if_deployed,))
        for s in _OPEN_BEFORE_CLOSE[1:]
    ),
    *(
        Move(
            s,
            A.CANCEL,
            S.CANCELLED,
            when=(not_deployed,),
            who=(in_charge_or_approver, approver_if_maybe_out),
        )
        for s in _OPEN_BEFORE_CLOSE
    ),
)

TABLE: dict[tuple[Stage, Action], Move[Stage, Change]] = {(m.source, m.action): m for m in MOVES}
assert len(TABLE) == len(MOVES), "two moves share a (stage, action) key"


def move_for(change: Change, action: Action, attempt: Attempt) -> Move[Stage, Change]:
    """The move `action` makes from the change's stage, or the error saying why not."""
    return checked_move(TABLE, change, change.stage, action, attempt)


def available_actions(change: Change, policy: Policy, now: datetime | None = None) -> list[Action]:
    """What anyone could do to the change at `now`: the buttons on its card. Without `now`,
    nothing that waits for a time (break-glass) is offered."""
    nobody = Attempt(Actor(""), policy, now)
    return [
        move.action
        for move in MOVES
        if move.source is change.stage
        and move.action not in SYSTEM_ACTIONS
        and all(guard(change, nobody) is None for guard in move.when)
    ]


def allowed_actions(
    change: Change, actor: Actor, policy: Policy, now: datetime | None = None
) -> list[Action]:
    """What this person may do to the change at `now`."""
    attempt = Attempt(actor, policy, now)
    return [
        action
        for action in available_actions(change, policy, now)
        if all(guard(change, attempt) is None for guard in TABLE[(change.stage, action)].who)
    ]


def reachable_stages(start: Stage = Stage.REQUEST) -> set[Stage]:
    """Every stage the table can reach from `start` (ignoring guards)."""
    return closure(start, MOVES)


def closure(start: StageT, moves: Iterable[Move[StageT, Subject]]) -> set[StageT]:
    seen = {start}
    frontier = [start]
    moves = tuple(moves)
    while frontier:
        stage = frontier.pop()
        for move in moves:
            if move.source is stage and move.target not in seen:
                seen.add(move.target)
                frontier.append(move.target)
    return seen
