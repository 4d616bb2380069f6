"""The JSON API pipelines call: the gate, deployment reports, and every refusal as a 4xx with
a sentence, writing nothing. Real HTTP on a real database, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine, event
from sqlmodel import Session

import bot.api.routes
from storage import tokens
from storage.repositories import read_trail
from storage.uow import read_session
from tests.integration.api import Served, served
from workflows.gate import Answer, Asked, Question, Target
from workflows.model import Change, GateStatus
from workflows.tokens import Scope, hash_secret

PAYMENTS = {"service": "payments", "environment": "production"}


@pytest_asyncio.fixture
async def api(engine: Engine) -> AsyncIterator[Served]:
    async with served(engine) as app:
        yield app


def last_event(api: Served) -> Any:
    with read_session(api.engine) as session:
        return list(read_trail(session))[-1].entry


# -- the gate's answers ----------------------------------------------------------------------


async def test_an_approved_change_in_its_window_is_allowed(api: Served) -> None:
    change = api.approved()
    api.in_window()

    status, body = await api.ask(api.token(), change=change.ref, **PAYMENTS, commit="47efb71")

    assert status == 200
    assert body["status"] == "allowed"
    assert body["change"] == change.ref
    assert body["reasons"][0] == f"{change.ref} is authorised, approved by UAPPROVER."
    entry = last_event(api)
    assert (entry.actor, entry.action, entry.ref) == (
        "pipeline:ci-prod",
        "gate_decided",
        change.ref,
    )
    assert entry.details["status"] == "allowed" and entry.details["commit"] == "47efb71"


async def test_an_answer_heard_again_is_the_same_bytes_and_a_new_answer_is_new(
    api: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers' bodies are made once for what they say (bot/api/routes.py): a pipeline
    asking again hears the same bytes, and never an answer another question was given,
    however few are kept."""
    monkeypatch.setattr(bot.api.routes, "ANSWER_BODIES", 1)
    waiting, approved = api.awaiting_approval(), api.approved()
    api.in_window()
    secret = api.token()

    async def heard(change: Change) -> tuple[str, bytes]:
        response = await api.client.post(
            "/api/v1/gate",
            json={"change": change.ref, **PAYMENTS},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status == 200
        return response.headers["Content-Type"], await response.read()

    first = await heard(waiting)
    assert first[0] == "application/json; charset=utf-8"
    assert json.loads(first[1])["status"] == "awaiting"
    assert json.loads((await heard(approved))[1])["status"] == "allowed"
    assert await heard(waiting) == first
    api.approve(waiting)
    again = json.loads((await heard(waiting))[1])
    assert (again["change"], again["status"]) == (waiting.ref, "allowed")


async def test_a_change_waiting_for_approval_is_awaiting_with_what_it_waits_for(
    api: Served,
) -> None:
    change = api.awaiting_approval()

    status, body = await api.ask(api.token(), change=change.ref, **PAYMENTS)

    assert (status, body["status"]) == (200, "awaiting")
    assert body["reasons"] == [
        f"{change.ref} is not yet approved; it waits for approval: it has 0 of the 1 approval "
        "it needs."
    ]


async def test_a_service_the_change_does_not_name_is_prevented(api: Served) -> None:
    change = api.approved()
    api.in_window()

    _, body = await api.ask(
        api.token(), change=change.ref, service="ledger", environment="production"
    )

    assert body["status"] == "prevented"
    assert "'ledger' is not one of them" in body["reasons"][0]


async def test_an_unknown_change_is_invalid_and_still_recorded(api: Served) -> None:
    events = api.events()

    status, body = await api.ask(api.token(), change="CHG-4242", **PAYMENTS)

    assert (status, body["status"]) == (200, "invalid")
    assert body["reasons"][0].startswith("There is no change CHG-4242.")
    assert api.events() == events + 2  # the token's creation, then the decision
    assert last_event(api).ref == "GATE"


async def test_the_window_opening_later_is_given_as_when_to_ask_again(api: Served) -> None:
    change = api.approved()

    _, body = await api.ask(api.token(), change=change.ref, **PAYMENTS)

    assert body["status"] == "awaiting"
    assert body["recheck_at"] == "2026-12-01T10:00:00+00:00"


async def test_fifty_pipelines_asking_at_once_are_each_answered_and_recorded(
    api: Served,
) -> None:
    changes = [api.approved(title=f"Change {i}") for i in range(5)]
    api.in_window()
    secret = api.token()
    commits = []
    event.listen(api.engine, "commit", lambda _: commits.append(1))
    events = api.events()

    answers = await asyncio.gather(
        *(api.ask(secret, change=changes[i % 5].ref, **PAYMENTS) for i in range(50))
    )

    assert [body["status"] for _, body in answers] == ["allowed"] * 50
    assert api.events() == events + 50
    assert len(commits) < 50  # answered in rounds, not one transaction each


# -- who may ask --------------------------------------------------------------------------------


async def test_no_token_is_401_and_says_how_to_get_one(api: Served) -> None:
    change = api.approved()
    events = api.events()

    response = await api.client.post("/api/v1/gate", json={"change": change.ref, **PAYMENTS})

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.json()
    assert body["error"] == "unauthorized"
    assert "changebot token create" in body["message"]
    assert api.events() == events


@pytest.mark.parametrize("secret", ["cbt_not-a-real-token", "x" * 500, "bad\u2028token"])
async def test_an_unknown_token_is_401_and_records_nothing(api: Served, secret: str) -> None:
    change = api.approved()
    events = api.events()

    status, body = await api.ask(secret, change=change.ref, **PAYMENTS)

    assert (status, body["error"]) == (401, "unauthorized")
    assert api.events() == events


async def test_a_revoked_token_is_refused_from_the_next_request_on(api: Served) -> None:
    change = api.approved()
    secret = api.token("ci-old")
    assert (await api.ask(secret, change=change.ref, **PAYMENTS))[0] == 200

    api.revoke("ci-old")
    status, body = await api.ask(secret, change=change.ref, **PAYMENTS)

    assert status == 401
    assert body["message"].startswith("Unknown or revoked API token")


async def test_a_token_without_the_gate_scope_is_403_with_the_scope_it_needs(api: Served) -> None:
    change = api.approved()
    secret = api.token("reporter", Scope.DEPLOYMENTS)
    events = api.events()

    status, body = await api.ask(secret, change=change.ref, **PAYMENTS)

    assert (status, body["error"]) == (403, "forbidden")
    assert body["message"] == (
        "The token 'reporter' may not ask the deploy gate: it needs the 'gate' scope (it has "
        "deployments). Create a token with --scopes gate."
    )
    assert api.events() == events


# -- malformed questions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"change": "CHG-1", "service": "payments"}', 400, "environment"),
        (b'{"change": "CHG-1", "service": "payments", "environment": 7}', 400, "environment"),
        (
            b'{"change": "CHG-1", "service": "payments", "enviroment": "production"}',
            400,
            "enviroment",
        ),
        (
            b'{"change": "not-a-ref", "service": "payments", "environment": "production"}',
            400,
            "change",
        ),
        (
            b'{"change": "CHG-1", "service": "pay\\nments", "environment": "production"}',
            400,
            "service",
        ),
        (
            b'{"change": "CHG-1", "service": "payments", "environment": "production", '
            b'"commit": "HEAD"}',
            400,
            "commit",
        ),
        # No change can have a number its column cannot hold (PostgreSQL: a 32-bit integer).
        (
            b'{"change": "CHG-2147483648", "service": "payments", "environment": "production"}',
            400,
            "change",
        ),
        # Half a surrogate pair is valid JSON but not text: nothing could store it.
        (
            b'{"change": "CHG-1", "service": "\\ud800", "environment": "production"}',
            400,
            "service",
        ),
        (b'{"\\udfff": "x"}', 400, "\\udfff"),
        (b"\xff\xfe", 400, None),
        (b"[" * 5_000, 400, None),  # deeper than the JSON parser goes
        (b'{"change": ' + b"9" * 5_000 + b"}", 400, None),  # more digits than Python reads
        (b'{"change": "' + b"x" * 20_000 + b'"}', 413, None),
    ],
)
async def test_a_malformed_question_is_a_4xx_naming_the_problem_and_records_nothing(
    api: Served, body: bytes, status: int, field: str | None
) -> None:
    secret = api.token()
    events = api.events()

    response = await api.client.post(
        "/api/v1/gate",
        data=body,
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )

    assert response.status == status
    answer = await response.json()
    assert answer["message"]
    assert answer.get("field") == field
    assert api.events() == events


async def test_a_report_on_a_number_no_change_can_have_is_a_400(api: Served) -> None:
    secret = api.token()
    events = api.events()

    response = await api.client.put(
        "/api/v1/changes/CHG-2147483648/deployments/r1",
        json={"service": "payments", "environment": "production"},
        headers={"Authorization": f"Bearer {secret}"},
    )

    assert response.status == 400
    assert (await response.json())["field"] == "ref"
    assert api.events() == events


async def test_a_question_that_cannot_be_recorded_fails_alone_not_its_round(
    api: Served,
) -> None:
    """Its pipeline gets an error; the others asking at the same moment get their answers."""
    change = api.approved()
    api.in_window()
    credential = hash_secret(api.token())
    target = Target("payments", "production")
    questions = [
        Question(change.number, target, Asked("", run=f"https://ci/{i}")) for i in range(9)
    ]
    # Nothing a pipeline sends over HTTP gets here so (see the malformed questions above).
    questions.insert(4, Question(change.number, target, Asked("", triggered_by="\ud800")))
    events = api.events()

    answers = await asyncio.gather(
        *(api.bot.api.desk.ask(credential, q) for q in questions), return_exceptions=True
    )

    assert isinstance(answers[4], UnicodeEncodeError)
    others = answers[:4] + answers[5:]
    assert len(others) == 9
    assert all(isinstance(a, Answer) and a.decision.status is GateStatus.ALLOWED for a in others)
    assert api.events() == events + 9


async def test_unknown_paths_and_methods_answer_json(api: Served) -> None:
    missing = await api.client.get("/api/v1/nothing-here")
    wrong = await api.client.get("/api/v1/gate")

    assert missing.status == 404 and (await missing.json())["error"] == "not_found"
    assert wrong.status == 405
    assert (await wrong.json())["message"] == "GET is not allowed here (use POST)."


async def test_the_gate_fails_closed_when_its_database_cannot_be_read(api: Served) -> None:
    change = api.approved()
    api.in_window()
    secret = api.token()
    api.engine.dispose()

    def refuse(*_: object) -> None:
        raise api.engine.dialect.dbapi.OperationalError("the database is down")  # type: ignore[union-attr]

    event.listen(api.engine, "do_connect", refuse)
    try:
        status, body = await api.ask(secret, change=change.ref, **PAYMENTS)
    finally:
        event.remove(api.engine, "do_connect", refuse)

    assert (status, body["status"], body["error"]) == (503, "error", "unavailable")
    assert "allowed" not in body.values()


@pytest.mark.parametrize("table", ["audit_events", "audit_head", "changes"])
async def test_the_gate_fails_closed_when_a_statement_of_its_round_fails(
    api: Served, table: str
) -> None:
    """The round's statements go to the driver directly (storage/driver.py): the driver's
    own error still reaches the API as the database's failure, a 503, never an answer; and
    what the round wrote before it failed is rolled back with it (on PostgreSQL its BEGIN
    and COMMIT are statements of its own, sent with its reads and its writes)."""
    change = api.approved()
    api.in_window()
    secret = api.token()
    events = api.events()
    with api.engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        status, body = await api.ask(secret, change=change.ref, **PAYMENTS)
    finally:
        with api.engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER TABLE {table}_away RENAME TO {table}")

    assert (status, body["status"], body["error"]) == (503, "error", "unavailable")
    assert "allowed" not in body.values()
    assert api.events() == events
    assert api.stored(change).gate_checks == ()  # the answer's news, saved before the events
    with Session(api.engine) as session:
        assert [t.last_used_at for t in tokens.listed(session)] == [None]
    assert (await api.ask(secret, change=change.ref, **PAYMENTS))[1]["status"] == "allowed"


async def test_a_tokens_last_use_is_noted_at_most_once_a_minute(api: Served) -> None:
    """What `changebot token list` shows: when the gate last saw each token, the others
    untouched, and a pipeline asking every few seconds writing the row once a minute."""
    change = api.approved()
    api.in_window()
    secret = api.token()
    api.token("ci-idle")

    def last_used() -> dict[str, Any]:
        with Session(api.engine) as session:
            return {t.name: t.last_used_at for t in tokens.listed(session)}

    assert last_used() == {"ci-idle": None, "ci-prod": None}
    first = api.clock.now()
    assert (await api.ask(secret, change=change.ref, **PAYMENTS))[1]["status"] == "allowed"
    assert last_used() == {"ci-idle": None, "ci-prod": first}

    api.clock.advance(seconds=30)
    await api.ask(secret, change=change.ref, **PAYMENTS)
    assert last_used()["ci-prod"] == first

    api.clock.advance(seconds=31)
    await api.ask(secret, change=change.ref, **PAYMENTS)
    assert last_used() == {"ci-idle": None, "ci-prod": api.clock.now()}


# -- the log ------------------------------------------------------------------------------------


async def test_answers_are_summed_up_in_the_log_and_refusals_logged_each(
    api: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    allowed, awaiting = api.approved(), api.awaiting_approval()
    api.in_window()
    token = api.token()
    for _ in range(3):
        assert (await api.ask(token, change=allowed.ref, **PAYMENTS))[1]["status"] == "allowed"
    assert (await api.ask(token, change=awaiting.ref, **PAYMENTS))[1]["status"] == "awaiting"
    refused = await api.client.post("/api/v1/gate", json={"change": allowed.ref, **PAYMENTS})
    assert refused.status == 401

    lines = [r.getMessage() for r in caplog.records]
    # Each answer is in the audit trail; the log has no line per answer...
    assert not [line for line in lines if line.startswith("POST /api/v1/gate 200")]
    # ...but a refusal has its own, as any other request.
    assert [line for line in lines if line.startswith("POST /api/v1/gate 401")]

    api.bot.api.tally.log()

    [summary] = [r.getMessage() for r in caplog.records if r.name == "bot.api.tally"]
    answered = "gate: answered 4 questions (allowed 3, awaiting 1, prevented 0, invalid 0)"
    rounds = (  # asked one after another: a round each (the refusal never reached the desk)
        r" in 4 rounds of the desk, 1\.0 questions a round on average, "
        r"[\d.]+ ms at the median, [\d.]+ ms at the 90th percentile"
    )
    assert re.fullmatch(re.escape(answered) + rounds, summary), summary
    api.bot.api.tally.log()  # nothing new: no line
    assert len([r for r in caplog.records if r.name == "bot.api.tally"]) == 1
