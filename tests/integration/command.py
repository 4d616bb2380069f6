"""The real `changebot` command, run as a subprocess the way an operator runs it (Changebot),
or in this process where a subprocess would add only Python's start-up (InProcess)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

CHANGEBOT = Path(sys.executable).parent / "changebot"
#: Settings the command reads from the environment; each run starts without any of them.
_SETTINGS = (
    "DATABASE_URL",
    "CHANGEBOT_POLICY",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_API_URL",
    "CHANGEBOT_URL",
    "CHANGEBOT_TOKEN",
    "CHANGEBOT_DIGEST_DIR",
    "CHANGEBOT_DIGEST_KEY",
    "CHANGEBOT_DIGEST_EVERY",
)

#: For a test that takes `engine` or `database_url` but means PostgreSQL alone.
ONLY_ON_POSTGRESQL = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@dataclass(frozen=True)
class Finished:
    """What a run of `changebot` left behind."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class InProcess:
    """Runs `changebot ARGS...` through bot.cli.main in this process, its output caught by
    pytest's capsys; its settings are the test's environment (set with monkeypatch)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> Finished:
        from bot.cli import main

        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return Finished(code, out, err)


class Changebot:
    """Runs `changebot ARGS...` with `env` as its only settings, in a scratch directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Finished:
        environment = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
        environment.update(env or {})
        finished = subprocess.run(
            [str(CHANGEBOT), *args],
            env=environment,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )
        return Finished(finished.returncode, finished.stdout, finished.stderr)

    def side_by_side(self, *runs: tuple[Sequence[str], dict[str, str]]) -> list[Finished]:
        """Independent runs at once: each is mostly Python starting up, so this saves time."""
        with ThreadPoolExecutor(len(runs)) as pool:
            return list(pool.map(lambda run: self(*run[0], env=run[1]), runs))
