"""manifest.yml is a valid Slack app manifest."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest-schema" / "schemas_manifest.schema.1.0.0.json"

#: Scope names Slack knows that changebot might use; the schema does not check scope names.
KNOWN_BOT_SCOPES = {
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:join",
    "channels:read",
    "groups:read",
    "im:write",
    "usergroups:read",
    "users:read",
}


def manifest() -> dict[str, object]:
    return yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))


@pytest.mark.skipif(not SCHEMA.exists(), reason=f"Slack's manifest schema is not at {SCHEMA}")
def test_manifest_validates_against_slacks_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(manifest(), schema)


def test_manifest_asks_only_for_scopes_slack_knows() -> None:
    scopes = manifest()["oauth_config"]["scopes"]["bot"]  # type: ignore[index]
    assert set(scopes) <= KNOWN_BOT_SCOPES


def test_manifest_declares_the_change_command() -> None:
    commands = manifest()["features"]["slash_commands"]  # type: ignore[index]
    assert [c["command"] for c in commands] == ["/change"]
