"""The Standard change catalog grows by proposals: proposed, decided by the policy owner or the
catalog approvers (never by the proposer), and in force at once, versioned. A proposal's moves
are a transition table of the same machinery as a change's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    BOB,
    GRACE,
    NOW,
    POLICY_TOML,
    POLLY,
    Desk,
    a_policy,
    standard_details,
)
from workflows import proposals
from workflows.catalog import (
    PROPOSAL_MOVES,
    Draft,
    Proposal,
    ProposalKind,
    ProposalStage,
    catalog_in_force,
    next_version,
    open_proposal_actions,
    proposal_move,
    reachable_proposal_stages,
)
from workflows.errors import (
    NotAllowed,
    PolicyError,
    PolicyViolation,
    TransitionNotAllowed,
    ValidationFailed,
)
from workflows.events import Happened
from workflows.model import Actor, Change, Outcome, Stage
from workflows.policy import Policy, Procedure, parse_policy
from workflows.stages import Action, Attempt

FLUSH_CDN = "flush-cdn"


def a_draft(cited: tuple[int, ...], **fields: Any) -> Draft:
    """A proposal to add the CDN flush, citing the changes `cited`."""
    return Draft(
        **{
            "kind": ProposalKind.ADD,
            "procedure_id": FLUSH_CDN,
            "name": "Flush the CDN cache",
            "scope": "code",
            "runbook": "https://example.com/runbooks/flush-cdn",
            "services": ("cdn",),
            "why": "Done weekly for two years; the cache refills in minutes.",
            "evidence": cited,
            **fields,
        }
    )


def closed_successfully(desk: Desk, outcome: Outcome = Outcome.SUCCESSFUL) -> Change:
    """A Standard change deployed with `outcome` (closed, if it succeeded)."""
    change = desk.request(standard_details())
    desk.start_deployment(change)
    closed = desk.record_outcome(change, outcome)
    assert (closed.stage is Stage.CLOSED) == (outcome is not Outcome.FAILED)
    return closed


def propose(desk: Desk, draft: Draft | None = None, by: Actor = ALICE) -> Proposal:
    if draft is None:
        draft = a_draft((closed_successfully(desk).number,))
    return proposals.propose(desk.uow, desk.clock, desk.policy, by, draft)


def approve(desk: Desk, proposal: Proposal, by: Actor = POLLY) -> Proposal:
    return proposals.approve_proposal(desk.uow, desk.clock, desk.policy, proposal.number, by)


def in_force(desk: Desk) -> Policy:
    """The policy with the catalog as the store holds it now (the bot's LiveCatalog)."""
    adopted = desk.uow.proposals.adopted()
    return desk.policy.with_catalog(catalog_in_force(desk.policy.catalog, adopted))


# -- the done-when path -------------------------------------------------------------------


def test_a_proposal_approved_by_the_policy_owner_is_in_the_catalog_at_version_1(
    desk: Desk,
) -> None:
    proposal = propose(desk)
    assert in_force(desk).procedure(FLUSH_CDN) is None  # not before it is decided

    adopted = approve(desk, proposal)

    assert adopted.stage is ProposalStage.ADOPTED
    procedure = in_force(desk).procedure(FLUSH_CDN)
    assert procedure == Procedure(
        id=FLUSH_CDN,
        name="Flush the CDN cache",
        version="1",
        runbook="https://example.com/runbooks/flush-cdn",
        scope="code",
    )
    trail = [e.entry for e in desk.uow.audit.events if e.entry.ref == "STD-0001"]
    assert [(e.action, e.from_stage, e.to_stage) for e in trail] == [
        (Happened.PROPOSED, "", "proposed"),
        (Happened.APPROVED, "proposed", "adopted"),
    ]
    assert trail[0].details["evidence"] == ["CHG-0001"]
    assert trail[1].details == {
        "kind": "add",
        "procedure": FLUSH_CDN,
        "version": "1",
        "comment": "",
    }


def test_a_standard_change_records_the_version_of_the_procedure_it_followed(desk: Desk) -> None:
    approve(desk, propose(desk))
    desk.policy = in_force(desk)

    change = desk.request(standard_details(procedure_id=FLUSH_CDN, services=("cdn",)))

    assert desk.stored(change).details.procedure_version == "1"
    satisfied = desk.last_entry(change, Happened.SATISFIED_BY_PROCEDURE).entry.details
    assert (satisfied["procedure"], satisfied["version"]) == (FLUSH_CDN, "1")


def test_an_edit_keeps_the_version_a_standard_change_followed(desk: Desk) -> None:
    change = desk.request(standard_details())
    desk.edit(change, title="Restart the API after the second config push")
    assert desk.stored(change).details.procedure_version == "3"


# -- who decides --------------------------------------------------------------------------


def test_the_proposer_cannot_approve_their_own_proposal(desk: Desk) -> None:
    proposal = propose(desk, by=POLLY)  # the policy owner proposes

    with pytest.raises(NotAllowed, match="You proposed STD-0001: someone else must decide it"):
        approve(desk, proposal, by=POLLY)
    assert desk.uow.proposals.get(proposal.number).stage is ProposalStage.PROPOSED


@pytest.mark.parametrize("who", [BOB, ANNA, GRACE], ids=["bystander", "approver", "cab"])
def test_only_the_policy_owner_or_the_catalog_approvers_decide(desk: Desk, who: Actor) -> None:
    proposal = propose(desk)

    with pytest.raises(NotAllowed, match="Only the policy owner or the catalog approvers"):
        approve(desk, proposal, by=who)
    with pytest.raises(NotAllowed, match="Only the policy owner or the catalog approvers"):
        proposals.reject_proposal(
            desk.uow, desk.clock, desk.policy, proposal.number, who, reason="No."
        )
    assert desk.uow.audit.actions("STD-0001") == [Happened.PROPOSED]


def test_a_group_the_policy_names_decides_catalog_proposals(desk: Desk) -> None:
    desk.policy = parse_policy(_with('[catalog_approvers]\ngroups = ["SCAB"]\n'), "test policy")
    proposal = propose(desk)

    assert approve(desk, proposal, by=GRACE).stage is ProposalStage.ADOPTED


def test_nobody_may_propose_when_the_policy_names_no_one_to_decide(desk: Desk) -> None:
    desk.policy = desk.policy.model_copy(
        update={"policy": desk.policy.policy.model_copy(update={"owner": ""})}
    )
    with pytest.raises(PolicyViolation, match=r"no owner \(policy.owner\) and no catalog_appr"):
        propose(desk)


def test_a_rejection_says_why_and_leaves_the_catalog_as_it_was(desk: Desk) -> None:
    proposal = propose(desk)
    with pytest.raises(ValidationFailed, match="reason: this field is required"):
        proposals.reject_proposal(
            desk.uow, desk.clock, desk.policy, proposal.number, POLLY, reason=" "
        )

    rejected = proposals.reject_proposal(
        desk.uow, desk.clock, desk.policy, proposal.number, POLLY, reason="Needs a canary first."
    )

    assert (rejected.stage, rejected.reason) == (ProposalStage.REJECTED, "Needs a canary first.")
    assert in_force(desk).procedure(FLUSH_CDN) is None
    with pytest.raises(
        TransitionNotAllowed, match="Can't approve a catalog proposal that is in Rejected"
    ):
        approve(desk, proposal)


def test_the_proposer_may_withdraw_their_proposal_and_a_bystander_may_not(desk: Desk) -> None:
    proposal = propose(desk)
    withdraw = proposals.withdraw_proposal
    with pytest.raises(NotAllowed, match="Only the proposer or a catalog approver"):
        withdraw(desk.uow, desk.clock, desk.policy, proposal.number, BOB, reason="Mine now.")

    done = withdraw(desk.uow, desk.clock, desk.policy, proposal.number, ALICE, reason="Later.")

    assert done.stage is ProposalStage.WITHDRAWN


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"scope": "kitchen"}, "scope", "choose one of the policy's scope categories"),
        ({"runbook": "ftp://example.com/x"}, "runbook", "starting with https:// or http://"),
        ({"runbook": ""}, "runbook", "link the runbook"),
        ({"procedure_id": "restart-service"}, "procedure_id", "is in the catalog already"),
        ({"procedure_id": "Flush CDN!"}, "procedure_id", "lower-case letters"),
        ({"name": "Rolling restart of a stateless service"}, "name", "restart-service has"),
        ({"services": ()}, "services", "name at least one service"),
        ({"why": ""}, "why", "this field is required"),
        ({"evidence": ()}, "evidence", "choose the past changes"),
        ({"evidence": (99,)}, "evidence", "there is no change CHG-0099"),
    ],
)
def test_a_bad_draft_is_refused_on_its_field_and_nothing_is_saved(
    desk: Desk, fields: dict[str, Any], field: str, message: str
) -> None:
    evidence = (closed_successfully(desk).number,)
    events = len(desk.uow.audit.events)

    with pytest.raises(ValidationFailed) as refused:
        propose(desk, a_draft(evidence, **fields))

    assert refused.value.field == field
    assert message in refused.value.reason
    assert desk.uow.proposals.committed == {}
    assert len(desk.uow.audit.events) == events


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (Outcome.FAILED, "CHG-0001 is not closed (Deploy and verify)"),
        (Outcome.SUCCESSFUL_WITH_ISSUES, "CHG-0001 did not succeed (successful with issues)"),
    ],
)
def test_only_a_change_closed_with_a_successful_outcome_proves_a_procedure(
    desk: Desk, outcome: Outcome, message: str
) -> None:
    change = closed_successfully(desk, outcome)

    with pytest.raises(ValidationFailed) as refused:
        propose(desk, a_draft((change.number,)))

    assert refused.value.field == "evidence"
    assert message in refused.value.reason


def test_a_service_the_policy_does_not_know_is_refused_when_it_knows_services(
    desk: Desk,
) -> None:
    desk.policy = parse_policy(
        _with(
            '[[gate.github]]\nrepository = "acme/cdn"\nenvironment = "production"\n'
            'services = ["cdn", "edge"]\n',
        ),
        "test policy",
    )
    with pytest.raises(ValidationFailed) as refused:
        propose(desk, a_draft((closed_successfully(desk).number,), services=("cdn", "kitchen")))

    assert refused.value.problems == (
        ("services", "kitchen: not a service the change policy knows (cdn, edge)."),
    )


def test_a_second_proposal_for_the_same_procedure_waits_for_the_first(desk: Desk) -> None:
    first = propose(desk)

    with pytest.raises(ValidationFailed, match="STD-0001 proposes to add flush-cdn already"):
        propose(desk, a_draft(first.draft.evidence, name="Purge the CDN"), by=BOB)


# -- revising and retiring ----------------------------------------------------------------


def test_a_revision_raises_the_version_and_a_change_keeps_the_one_it_followed(
    desk: Desk,
) -> None:
    before = desk.request(standard_details())  # restart-service v3, from the file
    evidence = (closed_successfully(desk).number,)
    revision = a_draft(
        evidence,
        kind=ProposalKind.REVISE,
        procedure_id="restart-service",
        name="Rolling restart of a stateless service",
        runbook="https://example.com/runbooks/restart-v4",
    )

    approve(desk, propose(desk, revision))
    desk.policy = in_force(desk)

    procedure = desk.policy.procedure("restart-service")
    assert procedure is not None
    assert (procedure.version, procedure.runbook) == (
        "4",
        "https://example.com/runbooks/restart-v4",
    )
    assert desk.stored(before).details.procedure_version == "3"
    after = desk.request(standard_details())
    assert desk.stored(after).details.procedure_version == "4"


def test_a_retired_procedure_is_not_in_the_catalog_and_no_change_may_follow_it(
    desk: Desk,
) -> None:
    retirement = Draft(ProposalKind.RETIRE, "restart-service", why="Replaced by autoscaling.")

    approve(desk, propose(desk, retirement))
    desk.policy = in_force(desk)

    assert desk.policy.procedure("restart-service") is None
    with pytest.raises(PolicyViolation, match="restart-service is not a pre-approved procedure"):
        desk.request(standard_details())


def test_a_retired_procedure_may_be_proposed_again_and_starts_at_version_1(desk: Desk) -> None:
    revision = Draft(
        ProposalKind.REVISE,
        "restart-service",
        name="Rolling restart",
        scope="code",
        runbook="https://example.com/r",
        services=("api",),
        why="Faster.",
        evidence=(closed_successfully(desk).number,),
    )
    stale = propose(desk, revision)
    # Retire it meanwhile: the revision has nothing left to revise.
    proposals.withdraw_proposal(
        desk.uow, desk.clock, desk.policy, stale.number, ALICE, reason="Retire instead."
    )
    approve(desk, propose(desk, Draft(ProposalKind.RETIRE, "restart-service", why="Gone.")))
    again = propose(desk, a_draft(revision.evidence, procedure_id="restart-service"))

    assert again.draft.kind is ProposalKind.ADD  # it may be added anew, at version 1
    assert approve(desk, again).procedure_version == "1"


def test_a_proposal_that_no_longer_applies_is_not_offered_nor_approved(desk: Desk) -> None:
    """Proposed while the procedure was in the catalog, decided after it left it (another
    replica's decision in between)."""
    revision = _adopted(9, ProposalKind.REVISE, "gone-procedure", "")
    revision.stage = ProposalStage.PROPOSED

    assert open_proposal_actions(revision, desk.policy) == [Action.REJECT, Action.CANCEL]
    with pytest.raises(TransitionNotAllowed, match="gone-procedure is no longer in the catalog"):
        proposal_move(revision, Action.APPROVE, Attempt(POLLY, desk.policy))


# -- the machinery ------------------------------------------------------------------------


def test_every_proposal_stage_is_reachable_and_the_decided_ones_are_final() -> None:
    assert reachable_proposal_stages() == set(ProposalStage)
    for stage in ProposalStage:
        if stage.is_final:
            assert reachable_proposal_stages(stage) == {stage}
            assert not [m for m in PROPOSAL_MOVES if m.source is stage]


@pytest.mark.parametrize(
    ("version", "following"),
    [
        ("1", "2"),
        ("3", "4"),
        ("1.2", "1.3"),
        ("2026-09", "2026-10"),
        ("v9", "v10"),
        ("beta", "beta.2"),
    ],
)
def test_the_next_version_raises_the_last_number(version: str, following: str) -> None:
    assert next_version(version) == following


def test_the_catalog_in_force_applies_the_adopted_proposals_in_order_and_again_the_same() -> None:
    policy = a_policy()
    adopted = [
        _adopted(1, ProposalKind.REVISE, "restart-service", "4"),
        _adopted(2, ProposalKind.ADD, FLUSH_CDN, "1"),
        _adopted(3, ProposalKind.RETIRE, "restart-service", ""),
    ]

    catalog = catalog_in_force(policy.catalog, adopted)

    assert [(p.id, p.version) for p in catalog] == [(FLUSH_CDN, "1")]
    # Applied on top of itself it is the same: each adoption carries the version it made.
    assert catalog_in_force(catalog, adopted) == catalog


def test_catalog_approvers_must_be_slack_ids() -> None:
    with pytest.raises(PolicyError, match=r"catalog_approvers.users.0: \"alice\" is not a Slack"):
        parse_policy(_with('[catalog_approvers]\nusers = ["alice"]\n'), "test policy")


def _adopted(number: int, kind: ProposalKind, procedure_id: str, version: str) -> Proposal:
    draft = Draft(kind, procedure_id, "A name", "code", "https://example.com/r", ("api",), "Why")
    proposal = Proposal(number, draft, "UALICE", NOW, ProposalStage.ADOPTED)
    proposal.procedure_version = version
    return proposal


def _with(extra: str) -> str:
    """The test policy with `extra` tables before its scopes."""
    return POLICY_TOML.replace("[[scope]]", extra + "\n[[scope]]", 1)
