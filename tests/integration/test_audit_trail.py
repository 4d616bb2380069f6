"""The audit trail against someone with direct access to the database.

The trail is written through the application; then someone edits, deletes, forges or
reorders events in raw SQL, behind its back, and `changebot audit verify` (the real command,
run as a subprocess) must refuse the trail and name the first event that breaks the chain.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, TextClause, bindparam, text
from sqlalchemy.exc import DBAPIError

from storage.db import is_sqlite
from storage.tables import UTCDateTime
from tests.integration.changes import check_trail, request, requested_and_closed, trail
from tests.integration.command import ONLY_ON_POSTGRESQL, Changebot
from tests.unit.fakes import FakeClock
from workflows.audit import AuditEntry, chain

#: CHG-0001 requested and closed (events #1-#9), then CHG-0002 requested and submitted (#10-#11).
EVENTS = 11


@pytest.fixture
def recorded(engine: Engine, clock: FakeClock) -> Engine:
    """A database whose trail holds the events above, written through the use cases."""
    requested_and_closed(engine, clock, "Upgrade the payments database")
    clock.advance(hours=1)
    request(engine, clock, "Rotate the API keys")
    assert check_trail(engine) == (EVENTS, None)
    return engine


def behind_the_back(engine: Engine, *statements: str | TextClause, **values: object) -> None:
    """Run raw SQL as someone with write access to the database would.

    On PostgreSQL the append-only triggers are switched off for the length of the transaction,
    as the table's owner can do; on SQLite nothing stands in the way.
    """
    with engine.begin() as connection:
        if not is_sqlite(engine):
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        for statement in statements:
            connection.execute(text(statement) if isinstance(statement, str) else statement, values)
        if not is_sqlite(engine):
            connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


def _move_up(first: int) -> tuple[str, str]:
    """Renumber events #first.. one place up (in two steps: seq is the primary key)."""
    return (
        f"UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= {first}",
        "UPDATE audit_events SET seq = -seq WHERE seq < 0",
    )


def _forged(engine: Engine, seq: int, after_seq: int) -> dict[str, object]:
    """An event hashed exactly as the application would, by someone who read the code."""
    previous = next(e for e in trail(engine) if e.seq == after_seq)
    entry = AuditEntry(
        previous.entry.at, "UAPPROVER", "approved", "CHG-0002", "review", "review", {}
    )
    event = chain(seq, previous.hash, entry)
    return {"seq": seq, "at": entry.at, "prev_hash": event.prev_hash, "hash": event.hash}


_INSERT_FORGED = text(
    "INSERT INTO audit_events (seq, at, actor, action, ref, from_stage, to_stage, details, "
    "prev_hash, hash) VALUES (:seq, :at, 'UAPPROVER', 'approved', 'CHG-0002', 'review', "
    "'review', '{}', :prev_hash, :hash)"
).bindparams(bindparam("at", type_=UTCDateTime()))


def _verify(changebot: Changebot, engine: Engine) -> tuple[int, str]:
    url = engine.url.render_as_string(hide_password=False)
    finished = changebot("audit", "verify", env={"DATABASE_URL": url})
    return finished.code, finished.output


# -- the trail as written ------------------------------------------------------------------


def test_an_untouched_trail_verifies_intact(changebot: Changebot, recorded: Engine) -> None:
    code, output = _verify(changebot, recorded)

    assert code == 0, output
    assert f"Audit trail intact: {EVENTS} events, ending at #{EVENTS}" in output


# -- the database refuses ------------------------------------------------------------------


@ONLY_ON_POSTGRESQL
@pytest.mark.parametrize(
    ("operation", "statement"),
    [
        ("UPDATE", "UPDATE audit_events SET actor = 'UMALLORY' WHERE seq = 3"),
        ("DELETE", "DELETE FROM audit_events WHERE seq = 11"),
        ("TRUNCATE", "TRUNCATE audit_events"),
    ],
    ids=["update", "delete", "truncate"],
)
def test_postgresql_refuses_to_change_or_remove_audit_events(
    recorded: Engine, operation: str, statement: str
) -> None:
    refusal = f"the audit trail is append-only: {operation} on audit_events is refused"

    with pytest.raises(DBAPIError, match=refusal), recorded.begin() as connection:
        connection.execute(text(statement))

    assert check_trail(recorded) == (EVENTS, None)


# -- tampering behind the application's back -----------------------------------------------


def test_an_edited_event_is_named(changebot: Changebot, recorded: Engine) -> None:
    behind_the_back(
        recorded,
        "UPDATE audit_events SET details = replace(details, 'Looks safe', 'Looks risky') "
        "WHERE seq = 3",
    )

    code, output = _verify(changebot, recorded)

    assert code == 1
    assert "BROKEN at audit event #3: its content was changed after it was written" in output


def test_a_deleted_event_is_named(changebot: Changebot, recorded: Engine) -> None:
    behind_the_back(recorded, "DELETE FROM audit_events WHERE seq = 5")

    code, output = _verify(changebot, recorded)

    assert code == 1
    assert "BROKEN at audit event #6: expected event #5 here" in output


def test_a_forged_event_is_named_even_when_hashed_like_the_real_ones(
    changebot: Changebot, recorded: Engine
) -> None:
    forged = _forged(recorded, 5, after_seq=4)
    behind_the_back(recorded, *_move_up(5), _INSERT_FORGED, **forged)

    code, output = _verify(changebot, recorded)

    assert code == 1
    # The forgery itself fits; the real event after it no longer does.
    assert "BROKEN at audit event #6: it does not follow the event before it" in output


def test_reordered_events_are_named(changebot: Changebot, recorded: Engine) -> None:
    behind_the_back(
        recorded,
        "UPDATE audit_events SET seq = -3 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = -3",
    )

    code, output = _verify(changebot, recorded)

    assert code == 1
    assert "BROKEN at audit event #3: it does not follow the event before it" in output


def test_events_cut_from_the_end_are_named(changebot: Changebot, recorded: Engine) -> None:
    behind_the_back(recorded, "DELETE FROM audit_events WHERE seq > 8")

    code, output = _verify(changebot, recorded)

    assert code == 1
    assert "BROKEN at audit event #9: the trail ends at #8 but #11 was written" in output
    assert "Events from #9 on cannot be trusted" in output


def test_details_edited_into_what_is_not_json_are_named_and_the_rest_still_reads(
    changebot: Changebot, recorded: Engine, tmp_path: Path
) -> None:
    """Not a traceback: verify names the event, export and the report go on past it."""
    behind_the_back(recorded, "UPDATE audit_events SET details = '{not json' WHERE seq = 5")
    url = recorded.url.render_as_string(hide_password=False)
    report = tmp_path / "report.html"

    verified, exported, reported = changebot.side_by_side(
        (["audit", "verify"], {"DATABASE_URL": url}),
        (["audit", "export", "--format", "jsonl"], {"DATABASE_URL": url}),
        (
            ["report", "--from", "2026-11-01", "--to", "2026-12-31", "--output", str(report)],
            {"DATABASE_URL": url},
        ),
    )

    assert verified.code == 1, verified.output
    assert "BROKEN at audit event #5: its content was changed after it was written" in (
        verified.output
    )
    assert "Traceback" not in verified.output + exported.output + reported.output
    assert exported.code == 0, exported.output
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(lines) == EVENTS
    assert lines[4]["details"] == {"unreadable": {"details": "{not json"}}
    assert reported.code == 1, reported.output  # written, and saying the trail is broken
    assert "The audit trail is BROKEN: audit event #5" in reported.stderr
    assert "Hash chain: BROKEN" in report.read_text(encoding="utf-8")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_time_edited_into_what_is_not_a_time_is_named(
    changebot: Changebot, recorded: Engine
) -> None:
    """SQLite keeps whatever text it is given (PostgreSQL's column takes only times)."""
    behind_the_back(recorded, "UPDATE audit_events SET at = 'last tuesday' WHERE seq = 7")

    code, output = _verify(changebot, recorded)

    assert code == 1
    assert "BROKEN at audit event #7: its content was changed after it was written" in output
    assert "Traceback" not in output


def test_events_cut_from_the_end_with_the_head_row_are_named(
    changebot: Changebot, recorded: Engine
) -> None:
    """The head row remembers the last event written; deleting it too does not hide a cut."""
    behind_the_back(recorded, "DELETE FROM audit_events WHERE seq > 8", "DELETE FROM audit_head")

    code, output = _verify(changebot, recorded)

    assert code == 1, output
    assert "the chain's head is gone" in output


# -- more tampering, checked in-process (the command prints what verify returns) --------------


def test_an_event_claimed_by_someone_else_breaks_the_chain_there(recorded: Engine) -> None:
    behind_the_back(recorded, "UPDATE audit_events SET actor = 'UMALLORY' WHERE seq = 5")

    assert str(check_trail(recorded)[1]) == (
        "audit event #5: its content was changed after it was written"
    )


def test_deleting_the_first_event_breaks_the_chain_at_the_start(recorded: Engine) -> None:
    behind_the_back(recorded, "DELETE FROM audit_events WHERE seq = 1")

    broken = check_trail(recorded)[1]

    assert broken is not None and broken.seq == 2
    assert "expected event #1 here" in broken.problem


def test_an_event_forged_onto_the_end_is_named(recorded: Engine) -> None:
    forged = _forged(recorded, EVENTS + 1, after_seq=EVENTS)
    behind_the_back(recorded, _INSERT_FORGED, **forged)

    broken = check_trail(recorded)[1]

    assert broken is not None and broken.seq == EVENTS + 1
    assert "events were added after it" in broken.problem


def test_an_edit_rehashed_to_the_end_is_caught_by_the_head(recorded: Engine) -> None:
    """Someone who recomputes every hash after their edit still cannot match the head."""
    events = trail(recorded)
    rewritten = [events[3]]
    for original in events[4:]:
        entry = replace(original.entry, actor="UMALLORY") if original.seq == 5 else original.entry
        rewritten.append(chain(original.seq, rewritten[-1].hash, entry))
    statements = [
        f"UPDATE audit_events SET actor = '{e.entry.actor}', prev_hash = '{e.prev_hash}', "
        f"hash = '{e.hash}' WHERE seq = {e.seq}"
        for e in rewritten[1:]
    ]
    behind_the_back(recorded, *statements)

    broken = check_trail(recorded)[1]

    assert broken is not None
    assert "the trail was rewritten" in broken.problem
