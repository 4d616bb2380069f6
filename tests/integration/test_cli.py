"""The `changebot` command as an operator runs it: a subprocess with settings in its environment."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import make_engine
from storage.uow import SqlUnitOfWork
from tests.integration.changes import request
from tests.integration.command import CHANGEBOT, ONLY_ON_POSTGRESQL, Changebot
from tests.unit.fakes import FakeClock
from tests.unit.test_freezes import WEEKEND
from workflows.audit import AuditEntry
from workflows.policy import DEFAULT_POLICY

UNICODE = "Déploiement 🚀 — שלום עולם — ترقية"
HEAD = migrate.head_revision()


# -- db upgrade and status -----------------------------------------------------------------


def test_db_upgrade_brings_an_empty_database_current_and_says_so_when_run_again(
    changebot: Changebot, empty_database_url: str
) -> None:
    env = {"DATABASE_URL": empty_database_url}

    behind = changebot("db", "status", env=env)
    first = changebot("db", "upgrade", env=env)
    again = changebot("db", "upgrade", env=env)

    assert behind.code == 1, behind.output
    assert f"schema none, latest {HEAD} (behind: run `changebot db upgrade`)" in behind.stdout
    assert first.code == 0, first.output
    assert f"from empty to {HEAD}." in first.stdout
    assert again.code == 0, again.output
    assert f"is already at the current schema ({HEAD})." in again.stdout
    engine = make_engine(empty_database_url)
    try:
        assert migrate.status(engine).is_current
    finally:
        engine.dispose()


@ONLY_ON_POSTGRESQL
def test_a_command_on_a_database_without_the_schema_says_to_run_db_upgrade(
    changebot: Changebot, empty_database_url: str
) -> None:
    finished = changebot("audit", "verify", env={"DATABASE_URL": empty_database_url})

    assert finished.code == 2
    assert finished.stderr.endswith(
        f"is at schema none but this changebot needs {HEAD}: run `changebot db upgrade` first.\n"
    )
    assert finished.stdout == ""


def test_a_database_a_newer_release_upgraded_is_named_so_not_sent_to_db_upgrade(
    changebot: Changebot, engine: Engine, database_url: str
) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))

    finished = changebot("audit", "verify", env={"DATABASE_URL": database_url})

    assert finished.code == 2
    assert finished.stderr.endswith(
        f"is at schema f00dfeedbeef, which this changebot (schema {HEAD}) does not know: a newer "
        "release upgraded it, so run that release or a newer one.\n"
    ), finished.stderr


def test_a_database_a_newer_release_upgraded_is_not_upgraded_and_its_status_says_ahead(
    changebot: Changebot, engine: Engine, database_url: str
) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))
    env = {"DATABASE_URL": database_url}

    status, upgrade = changebot.side_by_side((["db", "status"], env), (["db", "upgrade"], env))

    assert status.code == 1
    assert "schema f00dfeedbeef" in status.stdout and "(ahead: a newer release" in status.stdout
    assert upgrade.code == 2
    assert "which this changebot" in upgrade.stderr and "Traceback" not in upgrade.stderr


def test_a_mistyped_sqlite_path_is_reported_and_no_file_is_left_behind(
    changebot: Changebot, tmp_path: Path
) -> None:
    typo = tmp_path / "chagnebot.db"
    env = {"DATABASE_URL": f"sqlite:///{typo}"}

    status, verify, tokens = changebot.side_by_side(
        (["db", "status"], env), (["audit", "verify"], env), (["token", "list"], env)
    )

    assert status.code == 1
    assert "no such file yet; schema none" in status.stdout
    for refused in (verify, tokens):
        assert refused.code == 2, refused.output
        assert refused.stderr == (
            f"changebot: there is no database at {typo}: check DATABASE_URL, or run "
            "`changebot db upgrade` to create one there.\n"
        )
    assert not typo.exists()


def test_a_file_that_is_not_a_database_is_one_line(changebot: Changebot, tmp_path: Path) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"these are my notes, not a database\n" * 200)

    finished = changebot("db", "status", env={"DATABASE_URL": f"sqlite:///{garbage}"})

    assert finished.code == 2
    assert finished.stderr == (
        f"changebot: cannot read the database at sqlite:///{garbage}: file is not a database\n"
    )


def test_output_to_a_reader_gone_ends_quietly(database_url: str) -> None:
    read, write = os.pipe()
    os.close(read)  # as `| head` does once it has what it wants
    env = {**os.environ, "DATABASE_URL": database_url}
    try:
        finished = subprocess.run(
            [str(CHANGEBOT), "audit", "export", "--format", "csv"],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)

    assert finished.returncode == 1
    assert finished.stderr == ""


def test_a_database_that_cannot_be_reached_is_one_line_without_its_password(
    changebot: Changebot,
) -> None:
    unreachable = [
        "sqlite:////nonexistent/directory/changebot.db",
        "postgresql://changebot:s3cret-Pa55@127.0.0.1:1/changebot",
    ]

    runs = changebot.side_by_side(*((["db", "status"], {"DATABASE_URL": u}) for u in unreachable))

    for finished in runs:
        assert finished.code == 2
        assert finished.stderr.startswith("changebot: cannot reach the database at ")
        assert finished.stderr.count("\n") == 1, finished.stderr
        assert "s3cret-Pa55" not in finished.output
    assert "postgresql+psycopg://changebot:***@127.0.0.1:1/changebot" in runs[1].stderr


@ONLY_ON_POSTGRESQL
def test_a_database_password_is_never_printed(changebot: Changebot, database_url: str) -> None:
    url = make_url(database_url)
    # The server may ignore passwords (trust authentication); a real one must stay as it is.
    password = url.password or "s3cret-Pa55"
    with_password = url.set(password=password).render_as_string(hide_password=False)
    malformed = f"postgresql://u:{password}@h:x/d"

    status, refused = changebot.side_by_side(
        (["db", "status"], {"DATABASE_URL": with_password}),
        (["db", "status"], {"DATABASE_URL": malformed}),
    )

    assert status.code == 0, status.output
    assert f"{url.username}:***@" in status.stdout
    assert refused.code == 2
    assert "DATABASE_URL is not a database URL" in refused.stderr
    assert password not in status.output + refused.output


# -- audit export --------------------------------------------------------------------------

HOSTILE_ACTORS = ["=1+2", "+SUM(1)", "-2+3", "@SUM(A1)"]


@pytest.fixture
def exported(engine: Engine, clock: FakeClock) -> Engine:
    """A trail over three days: #1-#2 CHG-0001 on 23 November; #3-#4 CHG-0002 and #5-#8 events on
    CHG-0001 by actors that a spreadsheet would take for formulas, at midnight on the 25th."""
    request(engine, clock, UNICODE)
    clock.advance(days=1, hours=15)
    request(engine, clock, "Rotate the API keys")
    with SqlUnitOfWork(engine) as uow:
        for actor in HOSTILE_ACTORS:
            details = {"note": UNICODE, "formula": '=HYPERLINK("http://x")'}
            uow.audit.append(
                AuditEntry(clock.now(), actor, "noted", "CHG-0001", "review", "review", details)
            )
        uow.commit()
    return engine


def _export(changebot: Changebot, engine: Engine, *args: str) -> tuple[int, str, str]:
    url = engine.url.render_as_string(hide_password=False)
    finished = changebot("audit", "export", *args, env={"DATABASE_URL": url})
    return finished.code, finished.stdout, finished.stderr


def test_a_csv_export_of_one_change_since_a_date_is_safe_to_open_in_a_spreadsheet(
    changebot: Changebot, exported: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "trail.csv"
    nowhere = tmp_path / "no such directory" / "trail.csv"
    export = ["audit", "export", "--format", "csv", "--change", "CHG-0001", "--since", "2026-11-25"]
    env = {"DATABASE_URL": exported.url.render_as_string(hide_password=False)}

    written, unwritable = changebot.side_by_side(
        ([*export, "--output", str(out)], env), ([*export, "--output", str(nowhere)], env)
    )

    assert (written.code, written.output) == (0, f"Wrote 4 audit events to {out}.\n")
    assert (unwritable.code, unwritable.stdout) == (2, "")
    assert unwritable.stderr == f"changebot: cannot write {nowhere}: No such file or directory.\n"
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [row["seq"] for row in rows] == ["5", "6", "7", "8"]
    assert [row["actor"] for row in rows] == ["'" + actor for actor in HOSTILE_ACTORS]
    assert {row["at"] for row in rows} == {"2026-11-25T00:00:00.000000+00:00"}
    details = json.loads(rows[0]["details"])
    assert details == {"note": UNICODE, "formula": '=HYPERLINK("http://x")'}


def test_a_jsonl_export_of_one_change_keeps_every_field_and_the_text_as_written(
    changebot: Changebot, exported: Engine
) -> None:
    code, stdout, stderr = _export(changebot, exported, "--format", "jsonl", "--change", "chg-1")

    assert (code, stderr) == (0, "")
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["seq"] for r in records] == [1, 2, 5, 6, 7, 8]
    assert list(records[0]) == [
        "seq",
        "at",
        "actor",
        "action",
        "ref",
        "from_stage",
        "to_stage",
        "details",
        "prev_hash",
        "hash",
    ]
    assert records[0]["details"]["title"] == UNICODE
    assert UNICODE in stdout  # written as text, not as \u escapes
    assert [r["actor"] for r in records[2:]] == HOSTILE_ACTORS  # JSON needs no formula guard
    assert records[1]["prev_hash"] == records[0]["hash"]
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert datetime.fromisoformat(records[0]["at"]) == start


def test_export_refuses_bad_filters_before_it_reaches_for_the_database(
    changebot: Changebot,
) -> None:
    nowhere = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
    export = ["audit", "export", "--format", "csv"]

    bad_change, bad_since = changebot.side_by_side(
        ([*export, "--change", "CHG-x"], nowhere), ([*export, "--since", "31/01/2026"], nowhere)
    )

    assert (bad_change.code, bad_change.stdout, bad_change.stderr) == (
        2,
        "",
        "changebot: --change 'CHG-x' is not a change reference such as CHG-0042.\n",
    )
    assert (bad_since.code, bad_since.stdout, bad_since.stderr) == (
        2,
        "",
        "changebot: --since '31/01/2026' is not a date such as 2026-01-31.\n",
    )


# -- policy and serving --------------------------------------------------------------------


def test_policy_check_names_the_file_and_the_key_of_a_bad_policy(
    changebot: Changebot, tmp_path: Path
) -> None:
    default = resources.files("workflows").joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")
    policy = tmp_path / "acme.toml"
    policy.write_text(default.replace("normal_high_risk = 2", "normal_high_risk = 0"))

    finished = changebot("policy", "check", str(policy))

    assert finished.code == 2
    assert finished.stderr == (
        f"changebot: Bad change policy in {policy}: approvals.normal_high_risk: "
        "Input should be greater than or equal to 1\n"
    )


def test_policy_check_shows_each_freeze_and_its_next_occurrences_in_its_time_zone(
    changebot: Changebot, tmp_path: Path
) -> None:
    default = resources.files("workflows").joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")
    policy = tmp_path / "acme.toml"
    policy.write_text(default + WEEKEND)

    finished = changebot("policy", "check", str(policy))

    assert finished.code == 0, finished.stderr
    assert (
        "    Weekend (every service; allows emergencies only): Nobody is around" in finished.stdout
    )
    shown = re.findall(r"      Fri (\S+) 16:00 to Mon (\S+) 08:00 Europe/Berlin\n", finished.stdout)
    assert len(shown) == 3, finished.stdout
    fridays = [date.fromisoformat(friday) for friday, _ in shown]
    assert [b - a for a, b in pairwise(fridays)] == [timedelta(days=7)] * 2


def test_serve_without_a_bot_token_stops_with_one_line_naming_it(
    changebot: Changebot, tmp_path: Path
) -> None:
    finished = changebot("serve", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"})

    assert finished.code == 2
    assert finished.stdout == ""
    assert finished.stderr.startswith("changebot: SLACK_BOT_TOKEN is not set: ")
    assert finished.stderr.count("\n") == 1


def test_serve_with_half_a_github_configuration_stops_naming_the_variable(
    changebot: Changebot, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "0" * 32,
        "GITHUB_WEBHOOK_SECRET": "s3cret",
    }

    finished = changebot("serve", env=env)

    assert finished.code == 2
    assert finished.stderr.startswith("changebot: GITHUB_APP_ID must be your GitHub App's")
    assert finished.stderr.count("\n") == 1
