"""What a pipeline runs: `changebot gate` and `changebot deployment`, against the real API over
real HTTP, with their exit codes and what they print in a CI log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import pytest_asyncio
from sqlalchemy import Engine

from bot.launch import main
from storage.uow import SqlUnitOfWork
from tests.integration.api import Served, served
from tests.integration.changes import APPROVER, POLICY
from workflows import process
from workflows.model import Outcome, Stage

GATE = ("--service", "payments", "--environment", "production")


@pytest_asyncio.fixture
async def api(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    async with served(engine) as app:
        monkeypatch.setenv("CHANGEBOT_URL", str(app.client.make_url("")))
        monkeypatch.setenv("CHANGEBOT_TOKEN", app.token())
        for name in ("GITHUB_ACTIONS", "GITLAB_CI"):
            monkeypatch.delenv(name, raising=False)
        yield app


async def changebot(*argv: str) -> int:
    """`changebot ARGV`, in a thread, while the server answers on this event loop."""
    return await asyncio.to_thread(main, list(argv))


async def test_gate_exits_0_and_prints_why_when_allowed(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.approved()
    api.in_window()

    code = await changebot("gate", change.ref, *GATE)

    assert code == 0
    out = capsys.readouterr().out
    assert f"{change.ref}: payments to production is ALLOWED" in out
    assert f"  - {change.ref} is authorised, approved by UAPPROVER." in out


async def test_gate_exits_3_when_awaiting_and_1_when_prevented(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting = api.awaiting_approval()
    approved = api.approved()
    api.in_window()

    awaiting = await changebot("gate", waiting.ref, *GATE)
    prevented = await changebot(
        "gate", approved.ref, "--service", "ledger", "--environment", "production"
    )

    assert (awaiting, prevented) == (3, 1)
    out = capsys.readouterr().out
    assert "is AWAITING" in out and "is PREVENTED" in out


async def test_gate_exits_2_for_an_unknown_change_or_environment(api: Served) -> None:
    approved = api.approved()

    unknown = await changebot("gate", "CHG-9999", *GATE)
    staging = await changebot(
        "gate", approved.ref, "--service", "payments", "--environment", "staging"
    )

    assert (unknown, staging) == (2, 2)


async def test_gate_waits_for_the_approval_given_meanwhile_then_exits_0(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.awaiting_approval()
    api.in_window()

    waiting = asyncio.create_task(
        changebot("gate", change.ref, *GATE, "--wait", "1m", "--every", "1s")
    )
    await asyncio.sleep(1.5)
    assert not waiting.done()
    process.approve(SqlUnitOfWork(api.engine), api.clock, POLICY, change.number, APPROVER)

    code = await asyncio.wait_for(waiting, timeout=10)

    assert code == 0
    out = capsys.readouterr().out
    assert "is AWAITING" in out
    assert "Waiting up to 1m, asking every 1s." in out
    assert "is ALLOWED after" in out


async def test_gate_gives_up_at_the_end_of_its_wait_with_3(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.awaiting_approval()

    code = await changebot("gate", change.ref, *GATE, "--wait", "2s", "--every", "1s")

    assert code == 3
    assert "Still awaiting after" in capsys.readouterr().out


async def test_gate_prints_json_for_scripts(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.awaiting_approval()

    code = await changebot("gate", change.ref, *GATE, "--json")

    assert code == 3
    out = capsys.readouterr().out.strip()
    assert out.startswith('{"status": "awaiting", "change": "')


async def test_gate_takes_the_run_from_github_actions(
    api: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = api.awaiting_approval()
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/payments",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SHA": "47efb7196c2a1a2fd3f52f2c59f0e2dd3d0e4d54",
    }.items():
        monkeypatch.setenv(name, value)

    await changebot("gate", change.ref, *GATE)

    (check,) = api.stored(change).gate_checks
    assert check.run == "https://github.com/acme/payments/actions/runs/4242"
    assert (check.repository, check.commit[:7]) == ("acme/payments", "47efb71")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHANGEBOT_URL": ""}, "CHANGEBOT_URL is not set"),
        ({"CHANGEBOT_TOKEN": ""}, "CHANGEBOT_TOKEN is not set"),
        ({"CHANGEBOT_TOKEN": "cbt_wrong"}, "Unknown or revoked API token"),
        ({"CHANGEBOT_URL": "http://127.0.0.1:9"}, "cannot reach changebot at http://127.0.0.1:9"),
        ({"CHANGEBOT_URL": "changebot.example.com"}, "give the address with its scheme"),
        ({"CHANGEBOT_URL": "http://127.0.0.1:port"}, "is not an address"),
        # The README's placeholder, pasted as it is: not a token, and not sendable in a header.
        ({"CHANGEBOT_TOKEN": "cbt_…"}, "holds characters no API token has"),
    ],
)
async def test_gate_exits_2_saying_why_it_could_not_ask(
    api: Served,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    message: str,
) -> None:
    change = api.approved()
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code = await changebot("gate", change.ref, *GATE)

    assert code == 2
    captured = capsys.readouterr()
    assert message in captured.out + captured.err


async def test_a_deployment_reported_from_the_command_line_runs_the_change_to_its_close(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.approved()
    api.in_window()
    assert await changebot("gate", change.ref, *GATE) == 0

    started = await changebot("deployment", "start", change.ref, *GATE, "--id", "run-7")
    again = await changebot("deployment", "start", change.ref, *GATE, "--id", "run-7")
    finished = await changebot(
        "deployment", "finish", change.ref, "--id", "run-7", "--outcome", "successful"
    )

    assert (started, again, finished) == (0, 0, 0)
    out = capsys.readouterr().out
    assert f"Deployment run-7 of payments started: recorded on {change.ref}, now in deploy." in out
    assert "(already recorded)" in out
    assert f"Deployment run-7 ended successful: recorded on {change.ref}, now in closed." in out
    assert api.stored(change).stage is Stage.CLOSED


async def test_a_deployment_with_issues_is_reported_as_the_readme_writes_it(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.approved()
    api.in_window()
    await changebot("deployment", "start", change.ref, *GATE, "--id", "run-7")

    code = await changebot(
        "deployment", "finish", change.ref, "--id", "run-7", "--outcome", "with-issues"
    )

    assert code == 0, capsys.readouterr().err
    assert "Deployment run-7 ended with-issues" in capsys.readouterr().out
    assert api.stored(change).outcome is Outcome.SUCCESSFUL_WITH_ISSUES


async def test_an_outcome_that_is_none_is_a_usage_error_naming_them(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.approved()

    with pytest.raises(SystemExit) as exited:
        await changebot("deployment", "finish", change.ref, "--id", "run-7", "--outcome", "great")

    assert exited.value.code == 2
    assert "use one of successful, with-issues, failed, rolled-back" in capsys.readouterr().err


async def test_an_ungated_deployment_is_recorded_with_a_warning(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.awaiting_approval()

    code = await changebot("deployment", "start", change.ref, *GATE, "--id", "hotfix")

    assert code == 0
    assert (
        "WARNING: no allowed gate decision covered this deployment; the policy names no owner "
        "to tell." in capsys.readouterr().err
    )


async def test_a_finish_never_started_names_who_triggered_it_from_the_ci(
    api: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = api.approved()
    api.in_window()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")

    code = await changebot(
        "deployment", "finish", change.ref, *GATE, "--id", "run-9", "--outcome", "successful"
    )

    assert code == 0
    (deployment,) = api.stored(change).deployments
    assert deployment.triggered_by == "octocat"


async def test_gate_with_wait_says_at_once_when_changebot_cannot_be_reached(
    api: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.approved()
    monkeypatch.setenv("CHANGEBOT_URL", "http://127.0.0.1:9")  # a mistyped address

    asking = changebot("gate", change.ref, *GATE, "--wait", "5m", "--every", "1s")
    code = await asyncio.wait_for(asking, timeout=20)

    assert code == 2
    assert "cannot reach changebot at http://127.0.0.1:9" in capsys.readouterr().err


async def test_a_refused_report_exits_2_with_the_reason(
    api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    change = api.approved()

    code = await changebot(
        "deployment", "finish", change.ref, "--id", "never", "--outcome", "failed"
    )

    assert code == 2
    assert "changebot refused: There is no deployment reported" in capsys.readouterr().err


@asynccontextmanager
async def not_changebot(reply: bytes) -> AsyncIterator[str]:
    """Something else listening where CHANGEBOT_URL points: it reads a request, writes
    `reply` and hangs up. Its address."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n",  # not HTTP at all
        b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"status"',  # cut short
    ],
)
async def test_gate_exits_2_when_what_answers_is_not_changebot(
    api: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], reply: bytes
) -> None:
    async with not_changebot(reply) as url:
        monkeypatch.setenv("CHANGEBOT_URL", url)
        code = await changebot("gate", "CHG-1", *GATE)

    assert code == 2
    assert f"cannot reach changebot at {url}" in capsys.readouterr().err


async def test_a_report_answered_by_something_else_is_not_taken_for_recorded(
    api: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A single sign-on page (200, HTML) where changebot should be: nothing was recorded."""
    login = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>Sign in</html>"
    async with not_changebot(login) as url:
        monkeypatch.setenv("CHANGEBOT_URL", url)
        code = await changebot("deployment", "start", "CHG-1", *GATE, "--id", "r1")

    assert code == 2
    err = capsys.readouterr().err
    assert "the answer is not changebot's, so nothing is known to be recorded" in err
    assert "Sign in" in err


@pytest.mark.parametrize("option", ["--service", "--environment"])
async def test_an_empty_service_or_environment_is_a_usage_error_naming_it(
    api: Served, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """`--service "$SERVICE"` with the variable unset in the CI."""
    args = dict(zip(GATE[::2], GATE[1::2], strict=True)) | {option: " "}
    flat = [part for pair in args.items() for part in pair]
    events = api.events()

    with pytest.raises(SystemExit) as exited:
        await changebot("gate", "CHG-1", *flat)

    assert exited.value.code == 2
    assert f"{option} is empty (an unset CI variable?)" in capsys.readouterr().err
    assert api.events() == events
