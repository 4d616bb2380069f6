"""The use cases of the catalog's growth: propose a procedure (or its revision or retirement),
then approve, reject or withdraw the proposal. Each runs in one transaction and is recorded
in the audit trail, under the proposal's ref (`STD-0001`), like a change's steps."""

from __future__ import annotations

import re
from typing import Any

from workflows.audit import AuditEntry
from workflows.catalog import (
    Draft,
    Proposal,
    ProposalKind,
    catalog_in_force,
    proposal_move,
    proves_procedure,
    version_made,
)
from workflows.errors import PolicyViolation, ValidationFailed
from workflows.events import Happened
from workflows.model import Actor, format_ref
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.stages import Action, Attempt
from workflows.validation import LIMITS, MAX_SERVICES, check_link, check_text

_PROCEDURE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
#: How many past changes a proposal may cite.
MAX_EVIDENCE = 20


def nobody_decides(policy: Policy) -> str | None:
    """Why no proposal can be made under this policy, if none can."""
    if policy.catalog_decided:
        return None
    return (
        "Nobody can decide a catalog proposal: the change policy names no owner "
        "(policy.owner) and no catalog_approvers. Ask the policy's maintainers to name them."
    )


def cannot_propose(policy: Policy, kind: ProposalKind, procedure_id: str) -> str | None:
    """Why a proposal of this kind about this procedure cannot be made now, asked before its
    form is filled; None if it can."""
    if (nobody := nobody_decides(policy)) is not None:
        return nobody
    if kind is not ProposalKind.ADD and policy.procedure(procedure_id) is None:
        known = ", ".join(p.id for p in policy.catalog) or "none"
        return f"{procedure_id} is not in the Standard change catalog (it has {known})."
    return None


def check_draft(draft: Draft, policy: Policy) -> tuple[Draft, list[tuple[str, str]]]:
    """The draft trimmed, and what is wrong with it against the catalog in force, one problem
    a field (the record's past changes are checked by `propose`)."""
    problems: list[tuple[str, str]] = []

    def add(field: str, reason: str) -> None:
        if all(field != known for known, _ in problems):
            problems.append((field, reason))

    def text(field: str, value: str, limit_key: str, required: bool) -> str:
        try:
            return check_text(field, value, limit_key, required=required)
        except ValidationFailed as failed:
            add(field, failed.reason)
            return value.strip()

    procedure_id = draft.procedure_id.strip().lower()
    current = policy.procedure(procedure_id)
    if not procedure_id:
        add("procedure_id", "this field is required.")
    elif len(procedure_id) > 60 or not _PROCEDURE_ID.match(procedure_id):
        add(
            "procedure_id",
            "at most 60 lower-case letters, digits, dots, dashes and underscores, starting "
            "with a letter or digit (restart-service, say).",
        )
    elif draft.kind is ProposalKind.ADD and current is not None:
        add(
            "procedure_id",
            f"{procedure_id} is in the catalog already ({current.label}); propose a revision "
            "of it, or choose another id.",
        )
    elif draft.kind is not ProposalKind.ADD and current is None:
        add("procedure_id", f"{procedure_id} is not in the Standard change catalog.")
    retiring = draft.kind is ProposalKind.RETIRE
    why = text("why", draft.why, "description", True)
    if retiring:
        return Draft(draft.kind, procedure_id, why=why), problems
    name = text("name", draft.name, "title", True)
    taken = next(
        (
            p
            for p in policy.catalog
            if p.name.strip().lower() == name.lower() and p.id != procedure_id
        ),
        None,
    )
    if name and taken is not None:
        add("name", f"{taken.id} has this name already; name the procedure differently.")
    if policy.scope_named(draft.scope) is None:
        names = ", ".join(s.id for s in policy.scope)
        add("scope", f"choose one of the policy's scope categories ({names}).")
    try:
        runbook = check_link("runbook", draft.runbook)
    except ValidationFailed as failed:
        add("runbook", failed.reason)
        runbook = draft.runbook.strip()
    if not runbook:
        add("runbook", "link the runbook the procedure follows (https://...).")
    services = tuple(dict.fromkeys(s.strip() for s in draft.services if s.strip()))
    known = policy.known_services()
    unknown = [s for s in services if known and s.lower() not in known]
    if not services:
        add("services", "name at least one service the procedure is used on.")
    elif len(services) > MAX_SERVICES:
        add("services", f"at most {MAX_SERVICES} services.")
    elif any(len(s) > LIMITS["service"] for s in services):
        add("services", f"a service name is at most {LIMITS['service']} characters.")
    elif unknown:
        add(
            "services",
            f"{', '.join(unknown)}: not a service the change policy knows "
            f"({', '.join(sorted(known))}).",
        )
    evidence = tuple(dict.fromkeys(draft.evidence))
    if not evidence:
        add("evidence", "choose the past changes that followed this procedure successfully.")
    elif len(evidence) > MAX_EVIDENCE:
        add("evidence", f"at most {MAX_EVIDENCE} past changes.")
    checked = Draft(draft.kind, procedure_id, name, draft.scope, runbook, services, why, evidence)
    return checked, problems


def propose(uow: UnitOfWork, clock: Clock, policy: Policy, actor: Actor, draft: Draft) -> Proposal:
    """Record a proposal to add, revise or retire a catalog procedure, for the policy owner or
    the catalog approvers to decide. Nothing is stored if anything in it is wrong."""
    if (nobody := nobody_decides(policy)) is not None:
        raise PolicyViolation(nobody)
    at = clock.now()
    with uow:
        policy = _in_force(uow, policy)
        checked, problems = check_draft(draft, policy)
        problems += _evidence_problems(uow, checked, problems)
        pending = [p for p in uow.proposals.open_for(checked.procedure_id) if checked.procedure_id]
        if pending:
            problems.insert(
                0,
                (
                    "procedure_id",
                    f"{pending[0].ref} proposes to {pending[0].draft.kind.verb} "
                    f"{checked.procedure_id} already: wait for its decision.",
                ),
            )
        if problems:
            raise ValidationFailed.of(_one_a_field(problems))
        proposal = uow.proposals.add(checked, actor.user_id, at)
        uow.audit.append(
            AuditEntry(
                at=at,
                actor=actor.user_id,
                action=Happened.PROPOSED,
                ref=proposal.ref,
                from_stage="",
                to_stage=proposal.stage.value,
                details=_describe(checked, version_made(checked, policy)),
            )
        )
        uow.commit()
    return proposal


def approve_proposal(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    comment: str = "",
) -> Proposal:
    """The policy owner or a catalog approver, not the proposer, adopts the proposal: the
    catalog holds the procedure's new version (or no longer holds it) at once."""
    comment = check_text("comment", comment, "comment")
    return _decide(uow, clock, policy, number, actor, Action.APPROVE, comment)


def reject_proposal(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    reason: str,
) -> Proposal:
    """The policy owner or a catalog approver turns the proposal down, with a reason."""
    reason = check_text("reason", reason, "reason", required=True)
    return _decide(uow, clock, policy, number, actor, Action.REJECT, reason)


def withdraw_proposal(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    reason: str,
) -> Proposal:
    """The proposer (or a catalog approver) withdraws the proposal before it is decided."""
    reason = check_text("reason", reason, "reason", required=True)
    return _decide(uow, clock, policy, number, actor, Action.CANCEL, reason)


def _decide(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    action: Action,
    reason: str,
) -> Proposal:
    at = clock.now()
    with uow:
        policy = _in_force(uow, policy)
        proposal = uow.proposals.get(number)
        move = proposal_move(proposal, action, Attempt(actor, policy, at))
        before = proposal.stage
        details: dict[str, Any] = {
            "kind": proposal.draft.kind.value,
            "procedure": proposal.procedure_id,
        }
        if action is Action.APPROVE:
            proposal.procedure_version = version_made(proposal.draft, policy)
            details["version"] = proposal.procedure_version or None
            details["comment"] = reason
        else:
            details["reason"] = reason
        proposal.stage = move.target
        proposal.updated_at = at
        proposal.decided_by = actor.user_id
        proposal.decided_at = at
        proposal.reason = reason
        uow.audit.append(
            AuditEntry(
                at=at,
                actor=actor.user_id,
                action=action.past,
                ref=proposal.ref,
                from_stage=before.value,
                to_stage=proposal.stage.value,
                details=details,
            )
        )
        uow.proposals.save(proposal)
        uow.commit()
    return proposal


def _in_force(uow: UnitOfWork, policy: Policy) -> Policy:
    """The policy with the catalog as this transaction sees it (another replica may have
    adopted a proposal since this one last looked)."""
    return policy.with_catalog(catalog_in_force(policy.catalog, uow.proposals.adopted()))


def _evidence_problems(
    uow: UnitOfWork, draft: Draft, problems: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    if not draft.evidence or any(field == "evidence" for field, _ in problems):
        return []
    found = uow.changes.get_many(draft.evidence)
    for number in draft.evidence:
        change = found.get(number)
        if change is None:
            return [("evidence", f"there is no change {format_ref(number)}.")]
        if (reason := proves_procedure(change)) is not None:
            return [("evidence", f"{reason} Cite only changes closed with a successful outcome.")]
    return []


def _one_a_field(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    kept = []
    for field, reason in problems:
        if field not in seen:
            seen.add(field)
            kept.append((field, reason))
    return kept


def _describe(draft: Draft, version: str) -> dict[str, Any]:
    """The proposal as the audit trail keeps it."""
    if draft.kind is ProposalKind.RETIRE:
        return {"kind": draft.kind.value, "procedure": draft.procedure_id, "why": draft.why}
    return {
        "kind": draft.kind.value,
        "procedure": draft.procedure_id,
        "name": draft.name,
        "scope": draft.scope,
        "runbook": draft.runbook,
        "services": list(draft.services),
        "why": draft.why,
        "evidence": [format_ref(n) for n in draft.evidence],
        "version": version,
    }
