"""`changebot policy check` shows what the deploy gate holds, and a bad [gate] stops with the
key and the fix, like every other policy error."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.e2e.harness import policy_toml

GATE = """
[gate]
environments = ["production", "prod-eu"]

[[gate.github]]
repository = "acme/payments"
environment = "production"
services = ["payments-api", "payments-worker"]
"""


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], gate: str) -> tuple[int, str]:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(extra=gate), encoding="utf-8")
    code = main(["policy", "check", str(policy)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_summary_names_the_gated_environments_and_githubs_services(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, capsys, GATE)

    assert code == 0, out
    assert "  deploy gate: production, prod-eu" in out
    assert "    GitHub acme/payments production: payments-api, payments-worker" in out


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        (
            GATE.replace('environment = "production"', 'environment = "staging"'),
            "gate.github[0].environment: 'staging' is not one of gate.environments "
            "(production, prod-eu); add it there",
        ),
        (GATE + GATE.split("\n", 3)[3], "gate.github[1]: acme/payments production is mapped twice"),
        (GATE.replace("acme/payments", "not a repository"), "gate.github.0.repository"),
        (
            GATE.replace('environments = ["production", "prod-eu"]', "environments = []"),
            "gate.environments",
        ),
    ],
)
def test_a_bad_gate_stops_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gate: str, message: str
) -> None:
    code, out = check(tmp_path, capsys, gate)

    assert code == 2
    assert message in out
