"""The Standard change catalog as it grows: proposals to add, revise or retire a procedure.

The policy file is the starting catalog. A proposal moves through a transition table of the
same machinery as a change's (workflows/stages.py: moves as data, *when* and *who* guards):
it is proposed, then adopted, rejected or withdrawn. The adopted proposals, applied in the
order they were adopted on top of the file's catalog, make the catalog in force; each one
gives its procedure a new version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from workflows.model import Actor, Change, Outcome, Stage
from workflows.policy import Policy, Procedure
from workflows.stages import Action, Attempt, Move, checked_move, closure

REF_PREFIX = "STD-"


class ProposalKind(StrEnum):
    ADD = "add"
    REVISE = "revise"
    RETIRE = "retire"

    @property
    def verb(self) -> str:
        return _KIND_VERBS[self]


_KIND_VERBS = {
    ProposalKind.ADD: "add",
    ProposalKind.REVISE: "revise",
    ProposalKind.RETIRE: "retire",
}


class ProposalStage(StrEnum):
    PROPOSED = "proposed"
    ADOPTED = "adopted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def is_final(self) -> bool:
        return self is not ProposalStage.PROPOSED


@dataclass(frozen=True)
class Draft:
    """What the proposer writes. A retirement names the procedure and why, nothing more."""

    kind: ProposalKind
    procedure_id: str
    name: str = ""
    scope: str = ""
    runbook: str = ""
    services: tuple[str, ...] = ()
    #: Why the procedure is routine (low risk, well understood, done often without trouble).
    why: str = ""
    #: The past changes that followed it successfully, by number.
    evidence: tuple[int, ...] = ()


@dataclass
class Proposal:
    """One proposal, from proposed to decided. Mutated only through its transition table."""

    number: int
    draft: Draft
    proposer: str
    created_at: datetime
    stage: ProposalStage = ProposalStage.PROPOSED
    version: int = 0
    updated_at: datetime | None = None
    decided_by: str = ""
    decided_at: datetime | None = None
    #: The approver's comment, or the reason for a rejection or withdrawal.
    reason: str = ""
    #: The procedure's version the adoption made (its catalog entry).
    procedure_version: str = ""

    @property
    def ref(self) -> str:
        return format_ref(self.number)

    @property
    def procedure_id(self) -> str:
        return self.draft.procedure_id


def format_ref(number: int) -> str:
    return f"{REF_PREFIX}{number:04d}"


# -- the catalog in force -----------------------------------------------------------------


def next_version(version: str) -> str:
    """The version after `version`: its last number raised by one (`3` -> `4`, `1.2` ->
    `1.3`, `2026-01` -> `2026-02`), else `.2` appended."""
    found = list(re.finditer(r"[0-9]+", version))
    if not found:
        return f"{version}.2"
    last = found[-1]
    raised = str(int(last.group()) + 1).zfill(len(last.group()))
    return version[: last.start()] + raised + version[last.end() :]


def adopted_procedure(proposal: Proposal, current: Procedure | None) -> Procedure | None:
    """The catalog entry an adopted proposal makes (None: it retires the procedure)."""
    draft = proposal.draft
    if draft.kind is ProposalKind.RETIRE:
        return None
    return Procedure(
        id=draft.procedure_id,
        name=draft.name,
        version=proposal.procedure_version or (next_version(current.version) if current else "1"),
        runbook=draft.runbook,
        scope=draft.scope,
        owner=current.owner if current else "",
    )


def catalog_in_force(
    starting: Sequence[Procedure], adopted: Iterable[Proposal]
) -> tuple[Procedure, ...]:
    """The file's catalog with the adopted proposals applied, in the order they were adopted."""
    catalog: dict[str, Procedure] = {p.id: p for p in starting}
    for proposal in adopted:
        made = adopted_procedure(proposal, catalog.get(proposal.procedure_id))
        if made is None:
            catalog.pop(proposal.procedure_id, None)
        else:
            catalog[made.id] = made
    return tuple(catalog.values())


def version_made(draft: Draft, policy: Policy) -> str:
    """The version the procedure gets if the draft is adopted now ("" for a retirement)."""
    if draft.kind is ProposalKind.RETIRE:
        return ""
    current = policy.procedure(draft.procedure_id)
    return next_version(current.version) if current else "1"


# -- what proves a procedure routine ------------------------------------------------------


def proves_procedure(change: Change) -> str | None:
    """Why a past change cannot be cited as the procedure's successful use, or None if it can:
    it was closed, and its deployment went as planned."""
    if change.stage is not Stage.CLOSED:
        return f"{change.ref} is not closed ({change.stage.label})."
    if change.outcome is not Outcome.SUCCESSFUL:
        outcome = change.outcome.label.lower() if change.outcome else "no outcome"
        return f"{change.ref} did not succeed ({outcome})."
    return None


# -- the transition table -----------------------------------------------------------------


def still_applies(proposal: Proposal, attempt: Attempt) -> str | None:
    """A proposal applies to the catalog as it is when it is decided: another may have added,
    revised or retired the procedure meanwhile."""
    present = attempt.policy.procedure(proposal.procedure_id) is not None
    if proposal.draft.kind is ProposalKind.ADD and present:
        return f"{proposal.procedure_id} is in the catalog already; propose a revision instead."
    if proposal.draft.kind is not ProposalKind.ADD and not present:
        return f"{proposal.procedure_id} is no longer in the catalog."
    return None


def not_own_proposal(proposal: Proposal, attempt: Attempt) -> str | None:
    if attempt.actor.user_id == proposal.proposer:
        return f"You proposed {proposal.ref}: someone else must decide it."
    return None


def catalog_approver(proposal: Proposal, attempt: Attempt) -> str | None:
    if not attempt.policy.may_decide_catalog(attempt.actor):
        return (
            "Only the policy owner or the catalog approvers the change policy names "
            "(catalog_approvers) decide what the Standard change catalog holds."
        )
    return None


def proposer_or_approver(proposal: Proposal, attempt: Attempt) -> str | None:
    if attempt.actor.user_id == proposal.proposer or catalog_approver(proposal, attempt) is None:
        return None
    return f"Only the proposer or a catalog approver can withdraw {proposal.ref}."


P = ProposalStage
A = Action
_DECIDER = (not_own_proposal, catalog_approver)
PROPOSAL_MOVES: tuple[Move[ProposalStage, Proposal], ...] = (
    Move(P.PROPOSED, A.APPROVE, P.ADOPTED, when=(still_applies,), who=_DECIDER),
    Move(P.PROPOSED, A.REJECT, P.REJECTED, who=_DECIDER),
    Move(P.PROPOSED, A.CANCEL, P.WITHDRAWN, who=(proposer_or_approver,)),
)
PROPOSAL_TABLE: dict[tuple[ProposalStage, Action], Move[ProposalStage, Proposal]] = {
    (m.source, m.action): m for m in PROPOSAL_MOVES
}
assert len(PROPOSAL_TABLE) == len(PROPOSAL_MOVES), "two moves share a (stage, action) key"


def proposal_move(
    proposal: Proposal, action: Action, attempt: Attempt
) -> Move[ProposalStage, Proposal]:
    """The move `action` makes from the proposal's stage, or the error saying why not."""
    return checked_move(
        PROPOSAL_TABLE, proposal, proposal.stage, action, attempt, what="catalog proposal"
    )


def proposal_actions(proposal: Proposal, actor: Actor, policy: Policy) -> list[Action]:
    """What this person may do to the proposal now."""
    attempt = Attempt(actor, policy)
    return [
        move.action
        for move in PROPOSAL_MOVES
        if move.source is proposal.stage
        and all(guard(proposal, attempt) is None for guard in (*move.when, *move.who))
    ]


def open_proposal_actions(proposal: Proposal, policy: Policy) -> list[Action]:
    """What anyone could do to the proposal now: the buttons in its thread."""
    nobody = Attempt(Actor(""), policy)
    return [
        move.action
        for move in PROPOSAL_MOVES
        if move.source is proposal.stage and all(g(proposal, nobody) is None for g in move.when)
    ]


def reachable_proposal_stages(start: ProposalStage = P.PROPOSED) -> set[ProposalStage]:
    return closure(start, PROPOSAL_MOVES)
