"""`changebot policy check` shows what the policy's @handles and #names stand for when a bot
token lets it ask Slack, lists them as written offline, and says who nobody can approve for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from standin import SlackStandIn, StandInThread
from tests.e2e.harness import policy_toml, workspace

BY_NAME = policy_toml(changes_channel="#changes").replace(
    'groups = ["S0APPROVERS"]', 'groups = ["@approvers"]'
)


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str) -> tuple[int, str]:
    path = tmp_path / "policy.toml"
    path.write_text(policy, encoding="utf-8")
    code = main(["policy", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    with StandInThread(workspace=workspace()) as standin:
        monkeypatch.setenv("SLACK_BOT_TOKEN", standin.bot_token)
        monkeypatch.setenv("SLACK_API_URL", standin.base_url)
        yield standin


def test_offline_the_names_are_listed_as_written_with_how_to_resolve_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offline: None
) -> None:
    code, out = check(tmp_path, capsys, BY_NAME)

    assert code == 0, out
    assert "set SLACK_BOT_TOKEN\n  to resolve them now):\n" in out
    assert "    channels.changes: #changes\n    approvers.groups[0]: @approvers\n" in out


def test_with_a_token_each_name_is_shown_with_its_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], slack: SlackStandIn
) -> None:
    code, out = check(tmp_path, capsys, BY_NAME)

    assert code == 0, out
    assert "  names, as Slack resolves them now:\n" in out
    assert "    channels.changes: #changes is C0CHANGES\n" in out
    assert "    approvers.groups[0]: @approvers is S0APPROVERS\n" in out


def test_with_a_token_an_unknown_name_fails_the_check_as_it_stops_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], slack: SlackStandIn
) -> None:
    code, out = check(tmp_path, capsys, BY_NAME.replace("#changes", "#nowhere"))

    assert code == 2
    assert "channels.changes: no channel #nowhere in this workspace" in out


def test_nobody_to_approve_is_a_warning_naming_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offline: None
) -> None:
    policy = BY_NAME.replace('users = ["U0CAROL"]', "users = []").replace(
        'groups = ["@approvers"]', "groups = []"
    )

    code, out = check(tmp_path, capsys, policy)

    assert code == 0, out
    assert "  warning: Nobody can approve a Normal change: approvers.users and " in out
    assert "  warning: Nobody can approve an emergency change: " in out


def test_the_owner_named_by_handle_records_the_policy_review_by_their_id(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    slack: SlackStandIn,
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(BY_NAME.replace('owner = "U0CAROL"', 'owner = "@carol"'), encoding="utf-8")
    monkeypatch.setenv("CHANGEBOT_POLICY", str(policy))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'changebot.db'}")
    assert main(["db", "upgrade"]) == 0

    code = main(["policy", "reviewed", "--by", "U0CAROL"])
    out = capsys.readouterr()

    assert code == 0, out.err
    assert "Policy review recorded by U0CAROL." in out.out
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert main(["policy", "reviewed", "--by", "U0CAROL"]) == 2
    assert "set SLACK_BOT_TOKEN so changebot can resolve them" in capsys.readouterr().err
