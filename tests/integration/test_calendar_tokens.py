"""Calendar feed tokens: `changebot token create NAME --scopes calendar` makes a token that reads
the feed and nothing else, prints the URL to subscribe to, and is refused with any other scope;
on both engines, the feed opens for it, notes its use, and closes when it is revoked, while
the API refuses it (403)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from storage import tokens
from storage.tokens import ApiTokenRow
from tests.integration.api import served
from tests.integration.command import InProcess
from workflows.errors import ValidationFailed
from workflows.tokens import Scope, hash_secret


@pytest.fixture
def changebot(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> InProcess:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("CHANGEBOT_PUBLIC_URL", raising=False)
    return InProcess(capsys)


def test_a_calendar_token_prints_the_feed_url_built_from_the_public_url(
    changebot: InProcess, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEBOT_PUBLIC_URL", "https://changebot.example.com/")

    made = changebot("token", "create", "team-calendar", "--scopes", "calendar", "--by", "UOPS")

    assert made.code == 0, made.stderr
    url = urlsplit(made.stdout.strip())
    assert (url.scheme, url.netloc, url.path) == ("https", "changebot.example.com", "/calendar.ics")
    (secret,) = parse_qs(url.query)["token"]
    assert "Subscribe to this URL" in made.stderr and "token revoke team-calendar" in made.stderr
    with Session(engine) as session:
        (row,) = session.exec(select(ApiTokenRow)).all()
    assert (row.name, row.scopes, row.secret_hash) == (
        "team-calendar",
        "calendar",
        hash_secret(secret),
    )


def test_without_a_public_url_the_path_is_printed_with_how_to_set_it(
    changebot: InProcess,
) -> None:
    made = changebot("token", "create", "team-calendar", "--scopes", "calendar", "--by", "UOPS")

    assert made.code == 0, made.stderr
    assert made.stdout.startswith("/calendar.ics?token=cbt_")
    assert "CHANGEBOT_PUBLIC_URL is not set" in made.stderr


@pytest.mark.parametrize(
    "scopes", ["calendar,gate", "deployments,calendar", "gate,deployments,calendar"]
)
def test_the_calendar_scope_cannot_be_combined_with_another(
    changebot: InProcess, engine: Engine, scopes: str
) -> None:
    refused = changebot("token", "create", "team-calendar", "--scopes", scopes, "--by", "UOPS")

    assert refused.code == 2
    assert "the 'calendar' scope cannot be combined with" in refused.stderr
    assert "leaks easily" in refused.stderr and "--scopes calendar" in refused.stderr
    assert refused.stdout == ""
    with Session(engine) as session:
        assert session.exec(select(ApiTokenRow)).all() == []


def test_storage_refuses_a_calendar_token_with_other_scopes_too(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ValidationFailed, match="cannot be combined"):
        tokens.create(
            session,
            "mixed",
            frozenset({Scope.CALENDAR, Scope.GATE}),
            "UOPS",
            datetime(2026, 11, 23, tzinfo=UTC),
        )


def test_a_malformed_public_url_stops_the_command_naming_the_variable(
    changebot: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANGEBOT_PUBLIC_URL", "changebot.example.com")

    refused = changebot("token", "create", "team-calendar", "--scopes", "calendar", "--by", "UOPS")

    assert refused.code == 2
    assert "CHANGEBOT_PUBLIC_URL must be the address" in refused.stderr


async def test_the_feed_opens_for_its_token_notes_its_use_and_closes_when_revoked(
    engine: Engine,
) -> None:
    async with served(engine) as app:
        secret = app.token("team-calendar", Scope.CALENDAR)

        opened = await app.client.get("/calendar.ics", params={"token": secret})
        body = await opened.text()
        app.revoke("team-calendar")
        closed = await app.client.get("/calendar.ics", params={"token": secret})

    assert opened.status == 200 and body.startswith("BEGIN:VCALENDAR")
    assert closed.status == 404
    with Session(engine) as session:
        (row,) = session.exec(select(ApiTokenRow)).all()
    assert row.last_used_at is not None


async def test_a_calendar_token_is_refused_by_the_api_and_a_pipeline_token_by_the_feed(
    engine: Engine,
) -> None:
    async with served(engine) as app:
        feed = app.token("team-calendar", Scope.CALENDAR)
        pipeline = app.token("ci-prod", Scope.GATE, Scope.DEPLOYMENTS)
        change = app.approved()
        events_before = app.events()

        status, answer = await app.ask(
            feed, change=change.ref, service="payments", environment="production"
        )
        started = await app.client.put(
            f"/api/v1/changes/{change.ref}/deployments/run-1",
            json={"service": "payments", "environment": "production"},
            headers={"Authorization": f"Bearer {feed}"},
        )
        through_feed = await app.client.get("/calendar.ics", params={"token": pipeline})

        assert (status, answer["error"]) == (403, "forbidden")
        assert "calendar feed's token" in answer["message"]
        assert started.status == 403
        assert through_feed.status == 404
        assert app.events() == events_before
