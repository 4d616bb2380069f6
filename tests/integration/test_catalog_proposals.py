"""Catalog proposals on SQLite and PostgreSQL alike: stored and read back whole, saved with
compare-and-set, adopted in order, the changes a proposal may cite asked of the database, and
an adoption seen at once by every replica's catalog."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.catalog import LiveCatalog
from storage.proposals import SqlProposals, proven_changes
from storage.rows import change_document, details_from_json
from storage.uow import SqlUnitOfWork, read_session
from tests.integration.changes import (
    POLICY,
    REQUESTER,
    check_trail,
    deploy,
    request,
    requested_and_closed,
    review_test_and_approve,
    trail,
)
from tests.integration.command import Changebot
from tests.unit.fakes import FakeClock
from workflows import followup, process, proposals
from workflows.catalog import Draft, Proposal, ProposalKind, ProposalStage
from workflows.errors import StaleChange
from workflows.model import Actor, Outcome

OWNER = Actor("UOWNER")
#: The default policy, with an owner to decide catalog proposals.
OWNED = POLICY.model_copy(update={"policy": POLICY.policy.model_copy(update={"owner": "UOWNER"})})


def a_draft(*evidence: int, procedure_id: str = "flush-cdn") -> Draft:
    return Draft(
        ProposalKind.ADD,
        procedure_id,
        name=f"Flush the CDN cache ({procedure_id})",
        scope="code",
        runbook="https://example.com/runbooks/flush-cdn",
        services=("cdn", "édge-🌍"),
        why="Done weekly for two years; the cache refills in minutes.",
        evidence=evidence,
    )


def propose(
    engine: Engine, clock: FakeClock, *evidence: int, procedure_id: str = "flush-cdn"
) -> Proposal:
    draft = a_draft(*evidence, procedure_id=procedure_id)
    return proposals.propose(SqlUnitOfWork(engine), clock, OWNED, REQUESTER, draft)


def adopt(engine: Engine, clock: FakeClock, number: int) -> Proposal:
    return proposals.approve_proposal(SqlUnitOfWork(engine), clock, OWNED, number, OWNER)


def test_a_proposal_is_read_back_as_it_was_proposed_and_decided(
    engine: Engine, clock: FakeClock
) -> None:
    cited = requested_and_closed(engine, clock, "Flush the CDN by hand")
    proposed = propose(engine, clock, cited.number)
    clock.advance(minutes=5)
    adopted = adopt(engine, clock, proposed.number)

    with read_session(engine) as session:
        stored = SqlProposals(session).get(proposed.number)

    assert stored == adopted
    assert (stored.stage, stored.procedure_version, stored.decided_by) == (
        ProposalStage.ADOPTED,
        "1",
        "UOWNER",
    )
    assert stored.draft.services == ("cdn", "édge-🌍")
    assert check_trail(engine) == (len(_refs(engine)), None)
    assert [ref for ref in _refs(engine) if ref.startswith("STD")] == ["STD-0001", "STD-0001"]


def test_a_proposal_saved_from_an_older_read_is_refused(engine: Engine, clock: FakeClock) -> None:
    cited = requested_and_closed(engine, clock, "Flush the CDN by hand")
    proposal = propose(engine, clock, cited.number)
    adopt(engine, clock, proposal.number)

    with Session(engine) as session, pytest.raises(StaleChange):
        SqlProposals(session).save(replace(proposal, stage=ProposalStage.REJECTED))


def test_the_catalog_applies_adoptions_in_the_order_they_were_made(
    engine: Engine, clock: FakeClock
) -> None:
    cited = requested_and_closed(engine, clock, "Flush the CDN by hand")
    first = propose(engine, clock, cited.number, procedure_id="zeta")
    second = propose(engine, clock, cited.number, procedure_id="alpha")
    adopt(engine, clock, second.number)
    clock.advance(seconds=1)
    adopt(engine, clock, first.number)

    with read_session(engine) as session:
        found = SqlProposals(session)
        assert [p.procedure_id for p in found.adopted()] == ["alpha", "zeta"]
        assert found.open_for("alpha") == []


def test_the_changes_a_proposal_may_cite_are_the_closed_successful_ones_newest_first(
    engine: Engine, clock: FakeClock
) -> None:
    older = requested_and_closed(engine, clock, "Older success")
    clock.advance(hours=1)
    failed = request(engine, clock, "A failure")
    review_test_and_approve(engine, clock, failed.number)
    process.start_deployment(SqlUnitOfWork(engine), clock, POLICY, failed.number, REQUESTER)
    followup.record_outcome(
        SqlUnitOfWork(engine),
        clock,
        POLICY,
        failed.number,
        REQUESTER,
        outcome=Outcome.FAILED,
        notes="It broke.",
    )
    request(engine, clock, "Still open")
    clock.advance(hours=1)
    newer = request(engine, clock, "Newer success")
    review_test_and_approve(engine, clock, newer.number)
    deploy(engine, clock, newer.number)

    with read_session(engine) as session:
        assert proven_changes(session) == [
            (newer.number, "Newer success"),
            (older.number, "Older success"),
        ]
        assert proven_changes(session, limit=1) == [(newer.number, "Newer success")]
        # What a person types in the form's menu: words of the title in any case and order,
        # or the change's number; a failed change is never found, and % or _ are only text.
        assert proven_changes(session, matching="SUCCESS older") == [
            (older.number, "Older success")
        ]
        assert proven_changes(session, matching=older.ref.lower()) == [
            (older.number, "Older success")
        ]
        assert proven_changes(session, matching=str(newer.number)) == [
            (newer.number, "Newer success")
        ]
        assert proven_changes(session, matching="failure") == []
        assert proven_changes(session, matching="succ%") == []
        assert proven_changes(session, matching="_lder") == []


def test_every_replica_offers_an_adopted_procedure_at_once(
    engine: Engine, clock: FakeClock
) -> None:
    one, other = LiveCatalog(OWNED), LiveCatalog(OWNED)
    with read_session(engine) as session:
        assert one.refresh(session).procedure("flush-cdn") is None
    cited = requested_and_closed(engine, clock, "Flush the CDN by hand")

    adopt(engine, clock, propose(engine, clock, cited.number).number)

    for replica in (one, other):
        with read_session(engine) as session:
            procedure = replica.refresh(session).procedure("flush-cdn")
        assert procedure is not None and procedure.version == "1"
    assert OWNED.procedure("flush-cdn") is None  # the file's policy is untouched


def test_a_policy_whose_names_are_resolved_anew_keeps_the_procedures_adopted_in_slack(
    engine: Engine, clock: FakeClock
) -> None:
    replica = LiveCatalog(OWNED)
    cited = requested_and_closed(engine, clock, "Flush the CDN by hand")
    adopt(engine, clock, propose(engine, clock, cited.number).number)
    with read_session(engine) as session:
        replica.refresh(session)
    resolved = OWNED.model_copy(
        update={"policy": OWNED.policy.model_copy(update={"owner": "U0RESOLVED"})}
    )

    replica.use(resolved)  # what the bot does when a @handle now stands for another ID
    with read_session(engine) as session:
        policy = replica.refresh(session)

    assert policy.policy.owner == "U0RESOLVED"
    assert policy.procedure("flush-cdn") is not None


def test_policy_check_lists_the_files_catalog_the_decisions_in_slack_and_the_catalog_in_force(
    engine: Engine, clock: FakeClock, database_url: str, changebot: Changebot
) -> None:
    cited = requested_and_closed(engine, clock, "Flush the CDN by hand")
    adopt(engine, clock, propose(engine, clock, cited.number).number)
    retirement = Draft(ProposalKind.RETIRE, "rotate-secret", why="The vault rotates them.")
    retired = proposals.propose(SqlUnitOfWork(engine), clock, OWNED, REQUESTER, retirement)
    adopt(engine, clock, retired.number)

    found = changebot("policy", "check", env={"DATABASE_URL": database_url})

    assert found.code == 0, found.output
    assert "  catalog in the file: restart-service v1, rotate-secret v1" in found.stdout
    assert (
        "  catalog decided in Slack: STD-0001 added flush-cdn v1 (2026-11-23); "
        "STD-0002 retired rotate-secret (2026-11-23)"
    ) in found.stdout
    assert "  catalog in force: restart-service v1, flush-cdn v1" in found.stdout


def test_policy_check_of_a_file_needs_no_database(changebot: Changebot) -> None:
    found = changebot("policy", "check", env={"DATABASE_URL": "sqlite:///nowhere/changebot.db"})

    assert found.code == 0, found.output
    assert "  catalog in the file: restart-service v1, rotate-secret v1" in found.stdout
    assert "  catalog decided in Slack: not read (no database at sqlite:///nowhere/" in found.stdout


def _refs(engine: Engine) -> list[str]:
    return [event.entry.ref for event in trail(engine)]


def test_a_change_recorded_before_procedure_versions_reads_back_without_one(
    engine: Engine, clock: FakeClock
) -> None:
    change = requested_and_closed(engine, clock, "Recorded before versions")
    document = change_document(change)
    document["details"].pop("procedure_version", None)

    assert details_from_json(document["details"]).procedure_version == ""
    assert "procedure_version" not in change_document(change)["details"]  # a Normal change's
