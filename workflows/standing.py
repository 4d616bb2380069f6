"""Where a change stands: the read model every view of a change is drawn from.

The card, the lists and App Home all say the same things about a change (how far it has come,
the approvals it has and needs, what is owed, when break-glass opens, the moves open now).
Each is decided here once, from the change, the policy and the time, so no view re-derives a
rule of the process and two views can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from workflows import approval_rules
from workflows.approval_rules import RuleProgress
from workflows.followup import owed_documents
from workflows.freezes import Occurrence, over_change
from workflows.model import FIVE_STAGES, Change, Classification, Stage
from workflows.policy import Policy
from workflows.schedule import Conflict
from workflows.stages import Action, available_actions, break_glass_opens

OPEN_STAGES = frozenset(FIVE_STAGES)
WAITING_FOR_APPROVAL = frozenset({Stage.REVIEW, Stage.TEST, Stage.APPROVE})


@dataclass(frozen=True)
class Standing:
    """One change as it stands at `now` (None: no moment, so nothing that waits for a time)."""

    change: Change
    now: datetime | None
    #: How many of the five stages are behind it (5 once closed).
    stages_done: int
    #: Who approved, and how many approvals its classification and risk need (0: Standard,
    #: pre-approved by its procedure).
    approvers: tuple[str, ...]
    approvals_needed: int
    #: The documents an emergency skipped: owed by its post-change review once one is owed,
    #: or that it will owe if deployed as it stands.
    documents_owed: tuple[str, ...]
    #: The post-change review is owed and its due time has passed.
    review_overdue: bool
    #: When break-glass opens for an emergency still waiting for approval (None: it cannot).
    break_glass_opens: datetime | None
    #: The moves anyone could make now: the card's buttons.
    moves: tuple[Action, ...]
    #: Freezes over its window (or in force now, if it has none) while it is still to deploy:
    #: an emergency goes ahead in those that allow it; any other change is held.
    freezes: tuple[Occurrence, ...] = ()
    #: Open changes whose windows overlap its window on a service both name: each card
    #: shows the others, and the policy may ask one more approval for them.
    conflicts: tuple[Conflict, ...] = ()
    #: Its approval rules (the general one first), each met or not; none for Standard.
    rules: tuple[RuleProgress, ...] = ()

    @property
    def frozen(self) -> tuple[Occurrence, ...]:
        """The freezes that hold it (those it may not go ahead in)."""
        return tuple(
            f for f in self.freezes if not f.freeze.allows_class(self.change.classification)
        )

    @property
    def authorised(self) -> bool:
        return all(rule.met for rule in self.rules)

    @property
    def break_glass_open(self) -> bool:
        opens = self.break_glass_opens
        return opens is not None and self.now is not None and self.now >= opens

    @property
    def changes_at(self) -> datetime | None:
        """When the change will look different by time alone (break-glass opening), if it will."""
        opens = self.break_glass_opens
        return opens if opens is not None and (self.now is None or opens > self.now) else None


def standing(
    change: Change,
    policy: Policy,
    now: datetime | None = None,
    conflicts: tuple[Conflict, ...] = (),
    members: Mapping[str, frozenset[str]] | None = None,
) -> Standing:
    """`conflicts`: what the schedule says collides with it (ChangeRepository.conflicts);
    `members`: the people in the policy's user groups, where known, so a rule nobody else can
    meet says so."""
    needed = policy.required_approvals(change.classification, change.risk, conflicts=len(conflicts))
    approvers = change.approvers()
    rules = approval_rules.progress(change, policy, conflicts=len(conflicts), members=members)
    return Standing(
        change=change,
        now=now,
        stages_done=_stages_done(change, all(rule.met for rule in rules)),
        approvers=approvers,
        approvals_needed=needed,
        documents_owed=_documents_owed(change),
        review_overdue=bool(
            now is not None
            and change.review_owed
            and change.review_due_at is not None
            and change.review_due_at < now
        ),
        break_glass_opens=_break_glass_opens(change, policy),
        moves=tuple(available_actions(change, policy, now)),
        freezes=_freezes(change, policy, now),
        conflicts=conflicts,
        rules=rules,
    )


def _stages_done(change: Change, authorised: bool) -> int:
    if change.stage is Stage.CLOSED:
        return len(FIVE_STAGES)
    if change.stage in OPEN_STAGES:
        return FIVE_STAGES.index(change.stage)
    # Cancelled: judged by what is on record.
    if change.approvals:
        return 4 if authorised else 3
    if change.test_evidence:
        return 3
    if change.review:
        return 2
    return 1 if change.submitted_at is not None else 0


def _freezes(change: Change, policy: Policy, now: datetime | None) -> tuple[Occurrence, ...]:
    if not policy.freeze or now is None or change.stage not in OPEN_STAGES:
        return ()
    if change.outcome is not None:
        return ()
    return tuple(over_change(policy.freeze, change.details.window, change.details.services, now))


def _documents_owed(change: Change) -> tuple[str, ...]:
    if change.review_owed:
        return change.owed_documents
    if change.classification is not Classification.EMERGENCY or change.outcome is not None:
        return ()
    return owed_documents(change)


def _break_glass_opens(change: Change, policy: Policy) -> datetime | None:
    if change.stage not in WAITING_FOR_APPROVAL:
        return None
    if change.classification is not Classification.EMERGENCY:
        return None
    if not policy.emergency.break_glass_allowed:
        return None
    return break_glass_opens(change, policy)


def standings(
    changes: Iterable[Change],
    policy: Policy,
    now: datetime,
    conflicts: Mapping[int, tuple[Conflict, ...]] | None = None,
) -> list[Standing]:
    """Each change of a list as it stands now; `conflicts` by change number, for those that
    have any."""
    found = conflicts or {}
    return [standing(change, policy, now, found.get(change.number, ())) for change in changes]
