"""What a pipeline runs starts without the libraries only the other commands need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli_pipeline, launch
from tests.integration.command import CHANGEBOT

#: Loaded by the database, Slack, signing, chart and template commands; a gate needs none.
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "slack_sdk", "aiohttp", "cryptography", "matplotlib")


def loaded(where: Path, *argv: str) -> set[str]:
    """The top-level packages the real `changebot ARGV` imported, run in `where` (a command
    with no DATABASE_URL opens changebot.db there)."""
    finished = subprocess.run(
        [sys.executable, "-X", "importtime", str(CHANGEBOT), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=where,
        env={"PATH": "/usr/bin:/bin"},
    )
    lines = [line.split("|")[-1] for line in finished.stderr.splitlines() if "|" in line]
    return {line.strip().split(".")[0] for line in lines}


@pytest.mark.parametrize(
    "argv",
    [
        ("gate", "CHG-1", "--service", "api", "--environment", "production"),
        ("deployment", "start", "CHG-1", "--service", "api", "--environment", "prod", "--id", "1"),
        ("deployment", "finish", "CHG-1", "--id", "1", "--outcome", "successful"),
    ],
)
def test_a_pipelines_command_loads_no_database_slack_or_chart_library(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    imported = loaded(tmp_path, *argv)

    assert "bot" in imported  # the import list was read
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_the_other_commands_load_what_they_need(tmp_path: Path) -> None:
    # The same reading sees the database library where a command uses it.
    assert "sqlalchemy" in loaded(tmp_path, "db", "status")


def test_the_commands_started_alone_are_the_pipelines_own() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    cli_pipeline.add_commands(commands)

    assert set(commands.choices) == launch.PIPELINE_COMMANDS
