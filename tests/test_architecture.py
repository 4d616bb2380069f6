"""The arrows point bot/ -> workflows/ <- storage/: the change process imports no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: What workflows/ may never import: our adapters, Slack, SQL and scheduling libraries.
FORBIDDEN_IN_WORKFLOWS = (
    "bot",
    "storage",
    "standin",
    "slack_sdk",
    "slack_bolt",
    "sqlmodel",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "sqlite3",
    "apscheduler",
    "aiohttp",
    "jinja2",
    "requests",
    "httpx",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in sorted(imported_modules(path)):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_workflows_imports_no_adapter_slack_sql_or_scheduler() -> None:
    assert offending("workflows", FORBIDDEN_IN_WORKFLOWS) == []


def test_storage_does_not_reach_into_the_slack_adapter() -> None:
    assert offending("storage", ("bot", "standin", "slack_sdk", "slack_bolt")) == []


@pytest.mark.parametrize("package", ["workflows", "storage", "bot"])
def test_the_import_walk_sees_every_module(package: str) -> None:
    # A guard against a walk that silently finds nothing to check.
    assert list((ROOT / package).rglob("*.py"))


def test_the_walk_catches_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "sneaky.py"
    module.write_text("from sqlalchemy import select\nimport slack_sdk.web\n", encoding="utf-8")
    assert imported_modules(module) == {"sqlalchemy", "slack_sdk.web"}


def test_listeners_and_views_reach_the_database_only_through_their_services() -> None:
    """Sessions are opened by the composition root and the workers; listeners ask queries
    (bot/queries.py) and use cases through `services`, and views draw what they are given."""
    assert offending("bot/listeners", ("storage", "sqlalchemy", "sqlmodel")) == []
    assert offending("bot/views", ("storage", "sqlalchemy", "sqlmodel")) == []
