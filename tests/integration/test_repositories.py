"""The repositories and the unit of work, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

import storage.repositories
from storage import tokens
from storage.repositories import VersionCache, read_head, read_trail
from storage.rows import change_from_row, details_from_json, details_to_json
from storage.tables import AuditEventRow, ChangeRow
from storage.uow import SqlUnitOfWork, read_session
from tests.integration.changes import (
    APPROVER,
    PEER,
    POLICY,
    REQUESTER,
    check_trail,
    deploy,
    normal_details,
    request,
    review_test_and_approve,
    trail,
)
from tests.unit.fakes import FakeClock
from workflows import process
from workflows.audit import AuditEntry
from workflows.errors import NotAllowed, NotFound, StaleChange, ValidationFailed
from workflows.model import (
    Answer,
    Approval,
    Change,
    ChangeDetails,
    Classification,
    GateCheck,
    GateStatus,
    Level,
    Links,
    Outcome,
    PeerReview,
    PipelineDeployment,
    PostChangeReview,
    Rejection,
    Rollback,
    Stage,
    Window,
)
from workflows.model import (
    TestEvidence as Evidence,  # not TestEvidence: pytest would try to collect it
)
from workflows.tokens import hash_secret

INDIA = timezone(timedelta(hours=5, minutes=30))
PACIFIC = timezone(timedelta(hours=-8))
CREATED = datetime(2026, 11, 23, 9, 15, 30, 123456, tzinfo=PACIFIC)

# Hebrew and Arabic run right to left; the emoji need four bytes in UTF-8.
RTL = "שינוי בסיס הנתונים · ترقية قاعدة البيانات"
EMOJI = "🚀 deploy 🧪✅ and 👩🏽‍💻"


def _at(minutes: int, zone: timezone = UTC) -> datetime:
    return (CREATED + timedelta(minutes=minutes, microseconds=minutes)).astimezone(zone)


def every_field_filled(change: Change, classification: Classification) -> Change:
    """The change with every field it has set to something other than its default."""
    details = ChangeDetails(
        title=f"Move {EMOJI} to the new cluster — {RTL}",
        classification=classification,
        scope="database",
        description=f"Ünïcödé all the way down\n{RTL}\n\t«quoted» 'single' \"double\" <&>",
        services=("payments", "billing-ωμέγα", "日本語サービス"),
        risk=Level.HIGH,
        impact=Level.MEDIUM,
        rollback=Rollback("Fail back to the old cluster ↩️", "Data written since cannot move"),
        window=Window(_at(60, INDIA), _at(120, PACIFIC)),
        links=Links(
            "https://example.com/pr/1?x=é", "https://example.com/T-1", "https://example.com/i/2"
        ),
        procedure_id="restart-service",
        implementer="UIMPLEMENTER",
        answers=(
            Answer("customers", f"Yes {EMOJI}", 3, f"Will customers notice? {RTL}"),
            Answer("staging", "No", -1.5, "Was it tested in staging?"),
        ),
        procedure_version="3.1-β",
    )
    return replace(
        change,
        details=details,
        stage=Stage.CLOSED,
        updated_at=_at(300, INDIA),
        review=PeerReview("UPEER", _at(10, INDIA), f"Reviewed {EMOJI}", Level.HIGH, "peer"),
        test_evidence=(
            Evidence("UPEER", _at(20), "Staging green ✅", "staging"),
            Evidence("UIMPLEMENTER", _at(200, PACIFIC), RTL, "retrospective"),
        ),
        approvals=(
            # With the groups its approver was in (which approval rules it counts toward),
            # and one recorded before approvals recorded them.
            Approval("UAPPROVER", _at(30, PACIFIC), "LGTM 👍", "approver", frozenset({"SCAB"})),
            Approval("UAPPROVER2", _at(31, INDIA), "", "approver"),
        ),
        rejections=(Rejection("UAPPROVER", _at(5), f"Needs a rollback {RTL}", Stage.APPROVE),),
        deployment_started_at=_at(40, INDIA),
        deployed_by="UIMPLEMENTER",
        outcome=Outcome.ROLLED_BACK,
        outcome_notes=f"Rolled back after errors {EMOJI}",
        outcome_at=_at(50, PACIFIC),
        post_change_review=PostChangeReview(
            by="UIMPLEMENTER",
            at=_at(250, INDIA),
            what_was_done="Moved, then moved back",
            why_it_could_not_wait="Disk nearly full 💾",
            root_cause=RTL,
            classification_justified=True,
            follow_ups="Capacity alerts",
            contributed_to_incident=True,
            documentation={"rollback": "Fail back ↩️", "test_evidence": "Ran in staging"},
        ),
        review_owed=True,
        review_due_at=_at(48 * 60, INDIA),
        owed_documents=("rollback", "test_evidence"),
        cancel_reason=f"Not cancelled, but the field round-trips {EMOJI}",
        closed_at=_at(260, PACIFIC),
        requested_in="C0CHANGES",
        submitted_at=_at(2, INDIA),
        approvals_withdrawn_at=_at(20, PACIFIC),
        break_glass_at=_at(35, PACIFIC),
        break_glass_reason=f"Nobody answered in 15 minutes {EMOJI}",
        break_glass_by="UIMPLEMENTER",
        retro_approval_owed=True,
        closed_without_review=f"Duplicate of CHG-0007 {RTL}",
        gate_checks=(
            GateCheck(
                "ci-prod",
                "payments",
                "production",
                GateStatus.ALLOWED,
                _at(36, INDIA),
                "acme/payments",
                "47efb7196c2a1a2fd3f52f2c59f0e2dd3d0e4d54",
                "https://ci.example.com/run/9",
            ),
        ),
        first_allowed=GateCheck(
            "ci-staging",
            "payments",
            "production",
            GateStatus.ALLOWED,
            _at(35, INDIA),
            "acme/payments",
            "0f5c2b1e8d7a6c5b4a39281706f5e4d3c2b1a090",
            "https://ci.example.com/run/8",
        ),
        deployments=(
            PipelineDeployment(
                "run-9",
                "ci-prod",
                "payments",
                "production",
                _at(40, PACIFIC),
                f"octocat {EMOJI}",
                False,
                Outcome.ROLLED_BACK,
                _at(49, INDIA),
            ),
        ),
    )


def _timestamps(value: object) -> list[datetime]:
    """Every datetime inside a change, however deeply nested."""
    if isinstance(value, datetime):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in _timestamps(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _timestamps(item)]
    if is_dataclass(value):
        return [t for f in fields(value) for t in _timestamps(getattr(value, f.name))]
    return []


def _stored(engine: Engine, number: int) -> Change:
    with SqlUnitOfWork(engine) as uow:
        return uow.changes.get(number)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> VersionCache:
    """The process's cache of changes as read, empty for this test."""
    fresh = VersionCache()
    monkeypatch.setattr(storage.repositories, "CACHE", fresh)
    return fresh


def _read_whole(engine: Engine, number: int, monkeypatch: pytest.MonkeyPatch) -> Change:
    """The change as its row reads, whatever the cache holds."""
    monkeypatch.setattr(storage.repositories, "CACHE", VersionCache())
    return _stored(engine, number)


# -- add, get, save ------------------------------------------------------------------------


@pytest.mark.parametrize("classification", list(Classification))
def test_a_change_comes_back_exactly_as_it_was_saved(
    engine: Engine, classification: Classification, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqlUnitOfWork(engine) as uow:
        added = uow.changes.add(normal_details(), REQUESTER.user_id, CREATED, "C0CHANGES")
        change = every_field_filled(added, classification)
        uow.changes.save(change)
        uow.commit()

    stored = _read_whole(engine, change.number, monkeypatch)
    with Session(engine) as session:  # as SQLAlchemy reads the row
        row = session.get(ChangeRow, change.number)
        assert row is not None
        orm = change_from_row(row)

    assert stored == change
    assert repr(stored) == repr(orm)  # the driver's row, read as SQLAlchemy reads it
    assert stored.version == 1
    assert stored.title == change.title  # emoji and right-to-left text, byte for byte
    assert len(_timestamps(stored)) == len(_timestamps(change)) == 22
    assert all(moment.tzinfo is not None for moment in _timestamps(stored))


@pytest.mark.parametrize("classification", list(Classification))
def test_a_change_saved_is_cached_once_committed_exactly_as_its_row_reads(
    engine: Engine,
    classification: Classification,
    cache: VersionCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gate's news is saved by a round and read by the publisher at once: the cache
    hands the publisher what a read of the row would, time zones and types included."""
    with SqlUnitOfWork(engine) as uow:
        number = uow.changes.add(normal_details(), REQUESTER.user_id, CREATED).number
        uow.commit()
    database = str(engine.url)
    with SqlUnitOfWork(engine) as uow:
        change = every_field_filled(uow.changes.get(number), classification)
        uow.changes.save(change)
        assert cache.shared(database, number, change.version) is None  # not before the commit
        uow.commit()

    cached = cache.shared(database, number, change.version)
    read = _read_whole(engine, number, monkeypatch)

    assert cached is not None
    assert cached == read == change
    assert repr(cached) == repr(read)  # every field's type and every moment's zone too


def test_a_change_cached_to_be_made_is_made_once_at_its_first_read() -> None:
    cache = VersionCache()
    change = Change(number=7, details=normal_details(), requester="U1", created_at=CREATED)
    made: list[int] = []

    def make() -> Change:
        made.append(1)
        return replace(change, version=2)

    cache.put_made("db", 7, 2, make)
    assert made == []  # not while the round that saved it is under way
    assert cache.holds("db", 7) and not cache.holds("db", 8)
    assert cache.shared("db", 7, 1) is None  # another version
    first, again = cache.shared("db", 7, 2), cache.shared("db", 7, 2)
    assert first is again and first is not None and first.version == 2
    assert made == [1]
    cache.put_made("db", 7, 3, make)
    cache.put("db", replace(change, version=4))  # superseded before anyone read it
    assert cache.shared("db", 7, 3) is None and made == [1]


def test_a_change_saved_and_rolled_back_is_not_cached(engine: Engine, cache: VersionCache) -> None:
    """A version not committed may yet be written by someone else, with other content."""
    number = request(engine, FakeClock()).number
    database = str(engine.url)
    with SqlUnitOfWork(engine) as uow:  # left without a commit
        change = uow.changes.get(number)
        change.stage = Stage.CANCELLED
        uow.changes.save(change)
    events = len(trail(engine))
    with SqlUnitOfWork(engine) as uow:  # rolled back, then committed
        other = uow.changes.get(number)
        other.stage = Stage.CANCELLED
        uow.changes.save(other)
        uow.audit.append(AuditEntry(CREATED, "UREQUESTER", "cancelled", other.ref, "x", "y"))
        uow.rollback()
        uow.commit()

    assert change.version == other.version
    assert cache.shared(database, number, change.version) is None
    assert _stored(engine, number).stage is not Stage.CANCELLED
    assert len(trail(engine)) == events  # nor the event written after all
    assert check_trail(engine)[1] is None


def test_the_filled_change_leaves_no_field_at_its_default() -> None:
    """Guards the round-trip above: a field added to Change must be filled there too."""
    nothing = ChangeDetails(title="", classification=Classification.NORMAL, scope="")
    blank = Change(number=1, details=nothing, requester="", created_at=CREATED)
    filled = every_field_filled(blank, Classification.EMERGENCY)

    def unchanged(a: Any, b: Any) -> list[str]:
        return [f.name for f in fields(a) if getattr(a, f.name) == getattr(b, f.name)]

    assert unchanged(filled, blank) == ["number", "requester", "created_at", "version"]
    assert unchanged(filled.details, blank.details) == []


def test_a_change_recorded_before_the_risk_questionnaire_reads_as_answering_none() -> None:
    details = every_field_filled(
        Change(1, normal_details(), "", CREATED), Classification.NORMAL
    ).details
    written = details_to_json(details)
    assert written["answers"][1] == {
        "question": "staging",
        "choice": "No",
        "weight": -1.5,
        "asked": "Was it tested in staging?",
    }
    del written["answers"]
    assert details_from_json(written) == replace(details, answers=())
    # A change without answers is written as before the questionnaire existed.
    assert "answers" not in details_to_json(replace(details, answers=()))


def test_new_changes_are_numbered_one_after_another(engine: Engine) -> None:
    with SqlUnitOfWork(engine) as uow:
        first = uow.changes.add(normal_details("One"), REQUESTER.user_id, CREATED)
        second = uow.changes.add(normal_details("Two"), REQUESTER.user_id, CREATED)
        uow.commit()

    assert (first.number, second.number) == (1, 2)
    assert (first.ref, first.stage, first.version) == ("CHG-0001", Stage.REQUEST, 0)


def test_an_unknown_change_is_not_found(engine: Engine) -> None:
    with SqlUnitOfWork(engine) as uow, pytest.raises(NotFound) as missing:
        uow.changes.get(42)

    assert str(missing.value) == "There is no change CHG-0042."


def test_work_not_committed_is_not_kept(engine: Engine) -> None:
    with SqlUnitOfWork(engine) as uow:
        uow.changes.add(normal_details(), REQUESTER.user_id, CREATED)

    with SqlUnitOfWork(engine) as uow, pytest.raises(NotFound):
        uow.changes.get(1)


def test_of_two_saves_based_on_the_same_read_the_second_is_refused_and_writes_nothing(
    engine: Engine,
) -> None:
    with SqlUnitOfWork(engine) as uow:
        number = uow.changes.add(normal_details(), REQUESTER.user_id, CREATED).number
        uow.commit()
    first, second = _stored(engine, number), _stored(engine, number)

    first.stage = Stage.REVIEW
    with SqlUnitOfWork(engine) as uow:
        uow.changes.save(first)
        uow.commit()
    second.stage, second.cancel_reason = Stage.CANCELLED, "Changed my mind"
    with pytest.raises(StaleChange) as refused, SqlUnitOfWork(engine) as uow:
        uow.audit.append(AuditEntry(CREATED, "UREQUESTER", "cancelled", "CHG-0001", "x", "y"))
        uow.changes.save(second)
        uow.commit()

    assert (refused.value.expected, refused.value.actual) == (0, 1)
    assert _stored(engine, number) == first
    assert (first.version, second.version) == (1, 0)
    assert trail(engine) == []


def test_saving_a_change_that_was_never_added_is_not_found(engine: Engine) -> None:
    ghost = Change(number=7, details=normal_details(), requester="U1", created_at=CREATED)

    with SqlUnitOfWork(engine) as uow, pytest.raises(NotFound):
        uow.changes.save(ghost)


# -- find ----------------------------------------------------------------------------------


@pytest.fixture
def five_changes(engine: Engine) -> None:
    """1 Alice's in Request; 2 Bob's, implemented by Alice, in Review; 3 Bob's, deployed and
    owing a review; 4 Carol's, closed; 5 Alice's, deployed and owing nothing."""
    plan = [
        ("UALICE", "", Stage.REQUEST, False),
        ("UBOB", "UALICE", Stage.REVIEW, False),
        ("UBOB", "", Stage.DEPLOY, True),
        ("UCAROL", "", Stage.CLOSED, False),
        ("UALICE", "UDAVE", Stage.DEPLOY, False),
    ]
    with SqlUnitOfWork(engine) as uow:
        for requester, implementer, stage, owed in plan:
            details = normal_details(f"Change by {requester}", implementer=implementer)
            change = uow.changes.add(details, requester, CREATED)
            change.stage, change.review_owed = stage, owed
            uow.changes.save(change)
        uow.commit()


def _numbers(engine: Engine, **criteria: object) -> list[int]:
    with SqlUnitOfWork(engine) as uow:
        return [change.number for change in uow.changes.find(**criteria)]  # type: ignore[arg-type]


@pytest.mark.usefixtures("five_changes")
def test_find_returns_every_change_newest_first_up_to_the_limit(engine: Engine) -> None:
    assert _numbers(engine) == [5, 4, 3, 2, 1]
    assert _numbers(engine, limit=2) == [5, 4]


@pytest.mark.usefixtures("five_changes")
def test_find_filters_by_stage(engine: Engine) -> None:
    assert _numbers(engine, stages=[Stage.DEPLOY]) == [5, 3]
    assert _numbers(engine, stages=[Stage.REQUEST, Stage.REVIEW]) == [2, 1]
    assert _numbers(engine, stages=[Stage.CANCELLED]) == []
    assert _numbers(engine, stages=[]) == []


@pytest.mark.usefixtures("five_changes")
def test_find_filters_by_a_person_who_requested_or_implements_the_change(engine: Engine) -> None:
    assert _numbers(engine, person="UALICE") == [5, 2, 1]
    assert _numbers(engine, person="UDAVE") == [5]
    assert _numbers(engine, person="UNOBODY") == []
    assert _numbers(engine, person="UALICE", limit=1) == [5]


@pytest.mark.usefixtures("five_changes")
def test_find_filters_by_whether_a_review_is_owed(engine: Engine) -> None:
    assert _numbers(engine, review_owed=True) == [3]
    assert _numbers(engine, review_owed=False) == [5, 4, 2, 1]


@pytest.mark.usefixtures("five_changes")
def test_find_combines_its_filters(engine: Engine) -> None:
    assert _numbers(engine, stages=[Stage.DEPLOY], person="UBOB") == [3]
    assert _numbers(engine, stages=[Stage.DEPLOY], review_owed=False) == [5]
    assert _numbers(engine, stages=[Stage.DEPLOY], person="UALICE", review_owed=True) == []


# -- use cases through the unit of work ----------------------------------------------------


def test_a_normal_change_goes_from_request_to_closed_with_a_verifiable_trail(
    engine: Engine, clock: FakeClock
) -> None:
    number = request(engine, clock).number
    clock.advance(hours=1)
    review_test_and_approve(engine, clock, number)
    clock.advance(days=1)
    deploy(engine, clock, number)

    change = _stored(engine, number)
    events = trail(engine)
    assert change.stage is Stage.CLOSED
    assert change.closed_at == clock.now()
    assert change.review is not None and change.review.by == PEER.user_id
    assert change.approvers() == (APPROVER.user_id,)
    assert [e.entry.action for e in events] == [
        "requested",
        "submitted",
        "reviewed",
        "tested",
        "approved",
        "authorised",
        "deployment_started",
        "outcome_recorded",
        "closed",
    ]
    assert [e.seq for e in events] == list(range(1, 10))
    assert {e.entry.ref for e in events} == {"CHG-0001"}
    assert check_trail(engine) == (9, None)


def test_a_use_case_that_is_refused_writes_nothing(engine: Engine, clock: FakeClock) -> None:
    number = request(engine, clock).number
    uow = SqlUnitOfWork(engine)
    process.record_review(uow, clock, POLICY, number, PEER, assessment="Ok", risk=Level.LOW)
    process.add_test_evidence(uow, clock, POLICY, number, REQUESTER, evidence="Green")
    before, events_before = _stored(engine, number), trail(engine)
    with read_session(engine) as session:
        head_before = read_head(session)

    with pytest.raises(NotAllowed, match="someone else must review or approve it"):
        process.approve(SqlUnitOfWork(engine), clock, POLICY, number, REQUESTER)

    assert _stored(engine, number) == before
    assert before.version == 3 and before.stage is Stage.APPROVE
    assert trail(engine) == events_before
    with read_session(engine) as session:
        assert read_head(session) == head_before


def test_a_read_session_sees_one_moment_while_others_append(
    engine: Engine, clock: FakeClock
) -> None:
    """`audit verify` reads the head, then the trail; events appended in between must not
    make an intact trail look cut short or added to."""
    request(engine, clock, "First")
    with read_session(engine) as session:
        head = read_head(session)
        request(engine, clock, "Second")  # committed by another transaction meanwhile
        events = list(read_trail(session, batch=1))

    assert head == (2, events[-1].hash)
    assert [e.seq for e in events] == [1, 2]
    assert check_trail(engine) == (4, None)


def test_text_with_a_nul_character_is_refused_as_invalid_on_every_engine(
    engine: Engine, clock: FakeClock
) -> None:
    details = normal_details("Upgrade the\x00payments database")

    with pytest.raises(ValidationFailed, match="title"):
        process.request_change(SqlUnitOfWork(engine), clock, POLICY, REQUESTER, details)


def test_changes_read_many_at_once_are_the_latest_and_the_callers_own(engine: Engine) -> None:
    with SqlUnitOfWork(engine) as uow:
        first = uow.changes.add(normal_details("One"), REQUESTER.user_id, CREATED)
        uow.changes.add(normal_details("Two"), REQUESTER.user_id, CREATED)
        uow.commit()
    with SqlUnitOfWork(engine) as uow:
        read = uow.changes.get_many([first.number, 2, 99])
    read[first.number].details = read[first.number].details.with_changes(title="Scribbled")

    with SqlUnitOfWork(engine) as uow:
        again = uow.changes.get_many([first.number])[first.number]
        assert again.title == "One"  # what a caller did to its copy stays its own
        uow.changes.save(replace(again, details=again.details.with_changes(title="Uno")))
        uow.commit()
    with SqlUnitOfWork(engine) as uow:
        latest = uow.changes.get_many([first.number])

    assert sorted(read) == [1, 2]
    assert (latest[first.number].title, latest[first.number].version) == ("Uno", 1)


def test_no_changes_asked_for_are_none_found(engine: Engine) -> None:
    """An empty list is no statement (PostgreSQL refuses `IN ()`)."""
    with SqlUnitOfWork(engine) as uow:
        assert uow.changes.get_many([]) == {}


def test_statements_sent_to_the_driver_see_what_the_session_has_not_written_yet(
    engine: Engine,
) -> None:
    """As SQLAlchemy's own statements do (autoflush): a token added in the session and not
    yet flushed is found by the gate's authentication, which goes to the driver directly."""
    secret_hash = hash_secret("cbt_pending")
    with Session(engine) as session:
        session.add(
            tokens.ApiTokenRow(
                name="ci-pending",
                secret_hash=secret_hash,
                scopes="gate",
                created_by="UOPS",
                created_at=CREATED,
            )
        )
        found = tokens.authenticate(session, [secret_hash], CREATED)
    assert found[secret_hash].name == "ci-pending"


def test_an_events_moment_is_stored_as_every_other_moment_is(engine: Engine) -> None:
    """Events are written by the driver's executemany (not row by row through SQLAlchemy):
    their time is still stored in UTC, in the column type's own format on each engine, so
    a time range finds them and they read back as the moment they were."""
    at = datetime(2026, 12, 6, 22, 8, 25, 427381, tzinfo=timezone(timedelta(hours=1)))
    entry = AuditEntry(at, "UALICE", "requested", "CHG-0001", "", "request")
    with SqlUnitOfWork(engine) as uow:
        uow.audit.append(entry, shown=False)  # no card to draw: the change is not stored
        uow.commit()
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT at FROM audit_events").scalar_one()
        found = connection.execute(
            select(AuditEventRow.seq).where(col(AuditEventRow.at) >= at),
        ).all()
    if engine.dialect.name == "sqlite":
        assert stored == "2026-12-06 21:08:25.427381"  # as SQLAlchemy stores every moment
    else:
        assert stored == at
    assert len(found) == 1
    with read_session(engine) as session:
        (event,) = list(read_trail(session))
    assert event.entry.at == at and event.entry.at.tzinfo == UTC


def test_an_event_too_long_for_its_column_is_refused_not_cut_short(engine: Engine) -> None:
    """PostgreSQL checks a column's length when the events are stored together (SQLite has
    no lengths to check): a value is never cut to fit."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    at = datetime(2026, 12, 6, 22, 8, tzinfo=UTC)
    entry = AuditEntry(at, "U" * 41, "requested", "CHG-0001", "", "request")
    with pytest.raises(DBAPIError), SqlUnitOfWork(engine) as uow:
        uow.audit.append(entry, shown=False)
        uow.commit()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM audit_events").scalar() == 0


def test_events_written_together_read_back_as_they_were_and_the_chain_holds(
    engine: Engine,
) -> None:
    """A round's events go to the database in one statement (on PostgreSQL as one JSON
    parameter): whatever their text, they read back as written, and every hash matches."""
    at = datetime(2026, 12, 6, 22, 8, 25, 427381, tzinfo=timezone(timedelta(hours=1)))
    odd = f'{EMOJI} {RTL} "quoted" \\back\\slash\\ \n\t\u2028 {{"json": [1]}} \\u0041 \x7f'
    entries = [
        AuditEntry(at, "pipeline:ci", "gate_decided", "CHG-0001", "deploy", "deploy", {"v": odd}),
        AuditEntry(at, f"U{EMOJI}"[:30], odd[:60], "CHG-0002", "", "request", {"n": [1.5, None]}),
        AuditEntry(at + timedelta(microseconds=1), "U1", "noted", "CHG-0003", "", "", {}),
    ]
    with SqlUnitOfWork(engine) as uow:
        for entry in entries:
            uow.audit.append(entry, shown=False)
        uow.commit()

    assert [e.entry for e in trail(engine)] == [
        replace(e, at=e.at.astimezone(UTC)) for e in entries
    ]
    assert check_trail(engine) == (3, None)
