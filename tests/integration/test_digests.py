"""Signed digests of the audit trail against someone who rewrites the database whole.

The trail is written through the application and digests are signed as `changebot serve` and
`changebot audit digest` sign them (the fake clock says when); then someone rewrites events
and recomputes the chain behind the application's back, or tampers with the digests, and
`changebot audit verify --digests` (the real command, run as a subprocess) must say so.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.cli_digests import DigestCheck, walk_trail
from bot.digester import Digester, Signer, digest_now
from bot.settings import DIGEST_EVERY
from bot.signing import generate, load_private
from storage import digests as store
from tests.integration.changes import check_trail, request, requested_and_closed, trail
from tests.integration.command import Changebot, Finished
from tests.integration.test_audit_trail import EVENTS, behind_the_back
from tests.unit.fakes import FakeClock
from workflows.audit import ChainedEntry, chain
from workflows.digests import said


@pytest.fixture
def recorded(engine: Engine, clock: FakeClock) -> Engine:
    """The trail of test_audit_trail: CHG-0001 requested and closed, CHG-0002 requested."""
    requested_and_closed(engine, clock, "Upgrade the payments database")
    clock.advance(hours=1)
    request(engine, clock, "Rotate the API keys")
    assert check_trail(engine) == (EVENTS, None)
    return engine


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "digest.key", tmp_path / "digest.pub"
    generate(private, public)
    return private, public


@pytest.fixture
def signer(tmp_path: Path, keys: tuple[Path, Path]) -> Signer:
    directory = tmp_path / "digests"
    directory.mkdir()
    return Signer(directory, load_private(keys[0], source="test"), every=DIGEST_EVERY)


def _verify(
    changebot: Changebot, engine: Engine, signer: Signer | None = None, public: Path | None = None
) -> Finished:
    args = ["audit", "verify"]
    if signer is not None and public is not None:
        args += ["--digests", str(signer.directory), "--public-key", str(public)]
    return changebot(*args, env={"DATABASE_URL": engine.url.render_as_string(hide_password=False)})


def _digests(signer: Signer) -> list[str]:
    return store.digest_names(signer.directory)


def _serve(engine: Engine, clock: FakeClock, signer: Signer) -> None:
    """The digest `changebot serve` writes at this tick of its timer, if one is due."""
    asyncio.run(Digester(engine, signer, clock, owner="serve").sweep())


def _hourly(engine: Engine, clock: FakeClock, signer: Signer, hours: int) -> None:
    """The digests `changebot serve` writes hourly: now and at each of the next `hours` hours,
    a change requested between."""
    _serve(engine, clock, signer)
    for hour in range(hours):
        clock.advance(hours=1)
        request(engine, clock, f"Change of hour {hour}")
        _serve(engine, clock, signer)


def _rewrite_event_5(engine: Engine) -> ChainedEntry:
    """Event #5 given a detail it never had, and every hash after it recomputed, the chain's
    head too, behind the application's back: returns the event as it was."""
    events = trail(engine)
    changed = events[4]
    rewritten = [events[3]]
    for original in events[4:]:
        entry = original.entry
        if original.seq == changed.seq:
            entry = replace(entry, details={**entry.details, "note": "it was always approved"})
        rewritten.append(chain(original.seq, rewritten[-1].hash, entry))
    statements = [
        f"UPDATE audit_events SET details = '{json.dumps(e.entry.details)}', "
        f"prev_hash = '{e.prev_hash}', hash = '{e.hash}' WHERE seq = {e.seq}"
        for e in rewritten[1:]
    ]
    behind_the_back(
        engine, *statements, f"UPDATE audit_head SET hash = '{rewritten[-1].hash}' WHERE id = 1"
    )
    return changed


# -- the done-when test ------------------------------------------------------------------------


def test_a_trail_rewritten_with_its_chain_recomputed_passes_verify_but_not_the_digests(
    changebot: Changebot,
    recorded: Engine,
    clock: FakeClock,
    signer: Signer,
    keys: tuple[Path, Path],
) -> None:
    digest_now(recorded, signer, clock, "test")
    signed_at = said(clock.now())
    changed = _rewrite_event_5(recorded)

    plain = _verify(changebot, recorded)
    with_digests = _verify(changebot, recorded, signer, keys[1])

    assert plain.code == 0, plain.output
    assert f"Audit trail intact: {EVENTS} events" in plain.stdout
    assert with_digests.code == 1, with_digests.output
    e = changed.entry
    assert (
        f"Audit event #5 ({e.ref} {e.action}) is not the event the digest of {signed_at} "
        "signed: the trail was rewritten from there on."
    ) in with_digests.stderr
    assert "Digests do NOT bear the trail out" in with_digests.stderr


def test_the_evidence_report_checks_the_digests_and_shows_the_rewritten_event(
    changebot: Changebot,
    recorded: Engine,
    clock: FakeClock,
    signer: Signer,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    digest_now(recorded, signer, clock, "test")
    output = tmp_path / "report.html"
    url = recorded.url.render_as_string(hide_password=False)
    period = ["--from", "2026-11-01", "--to", "2026-11-30", "--output", str(output)]
    digests = ["--digests", str(signer.directory), "--public-key", str(keys[1])]

    trusted = changebot("report", *period, *digests, env={"DATABASE_URL": url})
    assert trusted.code == 0, trusted.output
    assert "Signed digests: verified." in output.read_text(encoding="utf-8")

    e = _rewrite_event_5(recorded).entry
    rewritten = changebot("report", *period, *digests, env={"DATABASE_URL": url})

    assert rewritten.code == 1, rewritten.output
    assert "The signed digests do NOT bear the trail out" in rewritten.stderr
    html = output.read_text(encoding="utf-8")
    assert "Hash chain: intact." in html  # the recomputed chain holds together ...
    assert "Signed digests: FAILED." in html  # ... but not against what was signed
    assert f"Audit event #5 ({e.ref} {e.action}) is not the event the digest of" in html


def test_a_trail_as_the_digests_signed_it_verifies(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    request(engine, clock)
    _hourly(engine, clock, signer, hours=3)

    finished = _verify(changebot, engine, signer, keys[1])

    assert finished.code == 0, finished.output
    assert "Digests: 4 signed by sha256:" in finished.stdout
    assert "Every event up to #8 is as the digests signed it." in finished.stdout


def test_events_cut_from_the_end_with_the_head_moved_back_are_caught_by_the_digests(
    changebot: Changebot,
    recorded: Engine,
    clock: FakeClock,
    signer: Signer,
    keys: tuple[Path, Path],
) -> None:
    digest_now(recorded, signer, clock, "test")
    last = trail(recorded)[-2]
    behind_the_back(
        recorded,
        f"DELETE FROM audit_events WHERE seq = {EVENTS}",
        f"UPDATE audit_head SET seq = {last.seq}, hash = '{last.hash}' WHERE id = 1",
    )

    plain = _verify(changebot, recorded)
    with_digests = _verify(changebot, recorded, signer, keys[1])

    assert plain.code == 0, plain.output
    assert with_digests.code == 1
    assert f"ending at #{EVENTS}, but the trail ends at #{EVENTS - 1}: events were removed" in (
        with_digests.stderr
    )


# -- tampering with the digests -------------------------------------------------------------


def test_a_digest_altered_after_signing_is_named(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    _hourly(engine, clock, signer, hours=2)
    name = _digests(signer)[1]
    path = signer.directory / name
    fields = json.loads(path.read_text())
    fields["events"] += 1
    path.write_text(json.dumps(fields))

    finished = _verify(changebot, engine, signer, keys[1])

    assert finished.code == 1
    assert (
        f"{name}'s signature does not verify: the digest was altered after it was signed"
    ) in finished.stderr


def test_a_deleted_digest_is_reported_missing_between_its_neighbours(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    _hourly(engine, clock, signer, hours=2)
    (signer.directory / _digests(signer)[1]).unlink()

    finished = _verify(changebot, engine, signer, keys[1])

    assert finished.code == 1
    assert (
        "A digest is missing between 2026-11-23 09:00:00 UTC and 2026-11-23 11:00:00 UTC."
    ) in finished.stderr


def test_the_newest_digests_deleted_while_the_trail_went_on_are_reported_missing(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    _hourly(engine, clock, signer, hours=3)  # digests at 09:00, 10:00, 11:00 and 12:00
    for name in _digests(signer)[2:]:
        (signer.directory / name).unlink()
    assert _verify(changebot, engine).code == 0  # the chain alone cannot tell

    finished = _verify(changebot, engine, signer, keys[1])

    assert finished.code == 1
    assert "No digest signed the trail after 2026-11-23 10:00:00 UTC" in finished.stderr
    assert "recorded at 2026-11-23 12:00:00 UTC" in finished.stderr
    assert "Traceback" not in finished.output


def test_digests_checked_with_another_public_key_are_refused(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, tmp_path: Path
) -> None:
    _hourly(engine, clock, signer, hours=1)
    generate(tmp_path / "other.key", tmp_path / "other.pub")

    finished = _verify(changebot, engine, signer, tmp_path / "other.pub")

    assert finished.code == 1
    assert "was signed by the key sha256:" in finished.stderr
    assert "not by the public key given" in finished.stderr
    assert "Traceback" not in finished.output


def test_a_corrupt_digest_file_is_named_in_a_sentence(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    _hourly(engine, clock, signer, hours=1)
    name = _digests(signer)[0]
    (signer.directory / name).write_text('{"format": "changebot-digest/1", "at"')

    finished = _verify(changebot, engine, signer, keys[1])

    assert finished.code == 1
    assert f"{name} is not a digest: it is not JSON" in finished.stderr
    assert "Traceback" not in finished.output


# -- digests written under different intervals ---------------------------------------------


def test_digests_of_serve_and_of_audit_digest_under_different_intervals_leave_no_gap(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    daily = replace(signer, every=timedelta(days=1))
    hourly = replace(signer, every=timedelta(hours=1))
    _serve(engine, clock, daily)  # 2026-11-23 09:00, the next due at midnight
    clock.advance(hours=6)
    request(engine, clock, "Asked for at 15:00")
    digest_now(engine, hourly, clock, "cli")  # `audit digest` with CHANGEBOT_DIGEST_EVERY=1h
    clock.advance(hours=9)
    _serve(engine, clock, daily)  # 2026-11-24 00:00: 9 h after the digest asked for
    clock.advance(hours=3)
    digest_now(engine, hourly, clock, "cli")
    clock.advance(hours=2)
    request(engine, clock, "Asked for at 05:00")  # 2 h after the digest asked for, the latest

    finished = _verify(changebot, engine, signer, keys[1])

    assert len(_digests(signer)) == 4
    assert finished.code == 0, finished.output
    assert "Digests: 4 signed by sha256:" in finished.stdout


def test_a_serving_schedule_that_stopped_is_a_gap_whatever_interval_audit_digest_states(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    daily = replace(signer, every=timedelta(days=1))
    _hourly(engine, clock, signer, hours=1)  # serve, hourly: 09:00 and 10:00
    clock.advance(minutes=30)
    digest_now(engine, daily, clock, "cli")  # 10:30, by `audit digest` with a daily interval
    clock.advance(hours=5, minutes=30)
    request(engine, clock, "Asked for while serve wrote no digests")
    _serve(engine, clock, signer)  # 16:00: serve writes again, chained to the one at 10:30

    finished = _verify(changebot, engine, signer, keys[1])

    assert finished.code == 1
    assert (
        "A digest is missing between 2026-11-23 10:00:00 UTC and 2026-11-23 16:00:00 UTC."
    ) in finished.stderr


def test_events_after_a_digest_asked_for_are_unsigned_once_the_serving_schedule_lapses(
    changebot: Changebot, engine: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    _hourly(engine, clock, signer, hours=1)  # serve, hourly: 09:00 and 10:00
    clock.advance(minutes=30)
    digest_now(engine, replace(signer, every=timedelta(days=1)), clock, "cli")  # 10:30, daily
    clock.advance(hours=2, minutes=30)
    request(engine, clock, "Asked for at 13:00, when no digest was written")

    finished = _verify(changebot, engine, signer, keys[1])

    assert finished.code == 1
    assert "No digest signed the trail after 2026-11-23 10:30:00 UTC" in finished.stderr
    assert "recorded at 2026-11-23 13:00:00 UTC" in finished.stderr


# -- writing digests ------------------------------------------------------------------------


def test_an_interval_without_events_still_gets_its_digest(
    engine: Engine, clock: FakeClock, signer: Signer
) -> None:
    request(engine, clock)
    worker = Digester(engine, signer, clock, owner="replica")

    asyncio.run(worker.sweep())
    clock.advance(hours=1)
    asyncio.run(worker.sweep())

    first, second = (store.read_digest(signer.directory, n) for n in _digests(signer))
    assert (first.seq, first.events, second.seq, second.events) == (2, 2, 2, 2)
    assert second.since == 2 and second.marks == ""
    assert second.previous == first.signature


def test_replicas_racing_on_the_schedule_write_each_digest_exactly_once(
    engine: Engine, clock: FakeClock, signer: Signer
) -> None:
    replicas = [Digester(engine, signer, clock, owner=f"replica-{i}") for i in range(4)]

    async def race() -> None:
        for _ in range(3):
            await asyncio.gather(*(r.sweep() for r in replicas))
            await asyncio.gather(*(r.sweep() for r in replicas))  # the next tick: not due
            request(engine, clock)
            clock.advance(hours=1)

    asyncio.run(race())

    digests = [store.read_digest(signer.directory, n) for n in _digests(signer)]
    assert [d.at.hour for d in digests] == [9, 10, 11]
    assert [d.previous for d in digests[1:]] == [d.signature for d in digests[:-1]]


def test_a_digest_is_not_chained_past_a_corrupt_latest_digest(
    engine: Engine, clock: FakeClock, signer: Signer
) -> None:
    digest_now(engine, signer, clock, "test")
    name = _digests(signer)[0]
    (signer.directory / name).write_text("not a digest")
    clock.advance(hours=1)

    with pytest.raises(store.DirectoryProblem, match=f"the latest digest .*{name} is not a digest"):
        digest_now(engine, signer, clock, "test")

    assert sorted(p.name for p in signer.directory.iterdir()) == [name]
    with Session(engine) as session:
        row = session.get(store.DigestScheduleRow, store.ROW)
        assert row is not None and row.lease_owner == ""  # the lease was handed back


def test_a_chain_broken_before_the_last_digest_is_not_said_borne_out_to_its_end(
    recorded: Engine, clock: FakeClock, signer: Signer, keys: tuple[Path, Path]
) -> None:
    _hourly(recorded, clock, signer, hours=1)
    # Event #5's actor changed behind the application's back, its hash left as it was.
    behind_the_back(recorded, "UPDATE audit_events SET actor = 'UMALLORY' WHERE seq = 5")
    check = DigestCheck(signer.directory, keys[1])

    walked = walk_trail(recorded, check)
    said_, _ = check.outcome(complete=walked.broken is None)

    assert walked.broken is not None and walked.broken.seq == 5
    assert not any(s.startswith("Every event up to") for s in said_), said_
    assert "The events read before the chain broke are as the digests signed them" in said_[-1]
