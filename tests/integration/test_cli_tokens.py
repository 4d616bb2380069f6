"""`changebot token`: a secret printed once and never stored, scopes as asked, revocation at
once, and each an audit event by a named person. Run in-process: a subprocess would add only
Python's start-up."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from storage.repositories import read_trail
from storage.tokens import ApiTokenRow
from storage.uow import read_session
from tests.integration.command import InProcess
from workflows.tokens import hash_secret


@pytest.fixture
def changebot(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> InProcess:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return InProcess(capsys)


def test_a_token_is_printed_once_and_only_its_hash_is_kept(
    changebot: InProcess, engine: Engine
) -> None:

    made = changebot("token", "create", "ci-prod", "--scopes", "gate,deployments", "--by", "UOPS")

    assert made.code == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("cbt_") and len(secret) > 40
    assert "shown this once" in made.stderr
    with Session(engine) as session:
        (row,) = session.exec(select(ApiTokenRow)).all()
    assert row.secret_hash == hash_secret(secret)
    assert secret not in repr(row.model_dump())
    assert (row.name, row.scopes, row.created_by) == ("ci-prod", "deployments,gate", "UOPS")


def test_tokens_are_listed_with_scopes_maker_and_last_use_and_revoked_at_once(
    changebot: InProcess, engine: Engine
) -> None:
    changebot("token", "create", "ci-prod", "--scopes", "gate", "--by", "UOPS")
    changebot("token", "create", "gh", "--scopes", "deployments", "--by", "UALICE")

    listed = changebot("token", "list")
    revoked = changebot("token", "revoke", "gh", "--by", "UOPS")
    after = changebot("token", "list")
    everything = changebot("token", "list", "--all")

    assert listed.code == revoked.code == 0, listed.stderr + revoked.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCOPES", "CREATED", "BY", "CREATED", "LAST", "USED"]
    assert lines[1].split()[:3] == ["ci-prod", "gate", "UOPS"] and "never" in lines[1]
    assert lines[2].split()[:3] == ["gh", "deployments", "UALICE"]
    assert "Revoked the API token 'gh'" in revoked.stdout
    assert [line.split()[0] for line in after.stdout.splitlines()[1:]] == ["ci-prod"]
    assert "by UOPS" in everything.stdout.splitlines()[2]
    with read_session(engine) as session:
        trail = [
            (e.entry.actor, e.entry.action, e.entry.details["name"]) for e in read_trail(session)
        ]
    assert trail == [
        ("UOPS", "token_created", "ci-prod"),
        ("UALICE", "token_created", "gh"),
        ("UOPS", "token_revoked", "gh"),
    ]


def test_bad_token_commands_say_what_is_wrong_and_change_nothing(
    changebot: InProcess, engine: Engine
) -> None:
    changebot("token", "create", "ci-prod", "--scopes", "gate", "--by", "UOPS")

    runs = [
        changebot("token", "create", "ci-prod", "--scopes", "gate", "--by", "UOPS"),
        changebot("token", "create", "CI PROD", "--scopes", "gate", "--by", "UOPS"),
        changebot("token", "create", "github", "--scopes", "gate", "--by", "UOPS"),
        changebot("token", "create", "ci-2", "--scopes", "gate,admin", "--by", "UOPS"),
        changebot("token", "create", "ci-2", "--scopes", "gate", "--by", " "),
        changebot("token", "revoke", "nobody", "--by", "UOPS"),
    ]

    assert [run.code for run in runs] == [2] * 6, [run.stderr for run in runs]
    assert "A token named 'ci-prod' exists already" in runs[0].stderr
    assert "up to 30 lowercase letters" in runs[1].stderr
    assert "'github' is reserved" in runs[2].stderr
    assert "unknown scope 'admin'; choose from gate (ask the deploy gate)" in runs[3].stderr
    assert "by: this field is required." in runs[4].stderr
    assert "There is no active API token named 'nobody'." in runs[5].stderr
    with Session(engine) as session:
        assert len(session.exec(select(ApiTokenRow)).all()) == 1


def test_a_name_is_free_again_once_its_token_is_revoked(
    changebot: InProcess,
) -> None:
    first = changebot("token", "create", "ci", "--scopes", "gate", "--by", "UOPS")
    changebot("token", "revoke", "ci", "--by", "UOPS")

    second = changebot("token", "create", "ci", "--scopes", "gate", "--by", "UOPS")

    assert second.code == 0, second.stderr
    assert second.stdout.strip() != first.stdout.strip()
