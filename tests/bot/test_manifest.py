"""manifest.yml is a valid Slack app manifest, and it asks for what the code uses: its command,
its events, and exactly the scopes of the Web API methods the bot calls."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot import ids
from bot.server import EVENTS_PATH

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest-schema" / "schemas_manifest.schema.1.0.0.json"

#: The bot scopes each Web API method needs (from its page in Slack's API reference). A method
#: the bot starts calling must be added here, which makes this test check its scope too.
SCOPES_OF_METHOD: dict[str, set[str]] = {
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "auth.test": set(),  # needs no scope: who the token is, asked once at start
    "chat.getPermalink": set(),  # needs no scope
    "conversations.join": {"channels:join"},
    # Reading a thread or channel back, to tell whether an unconfirmed post went through.
    "conversations.replies": {"channels:history", "groups:history"},
    # The bot's own DMs too: a message to a person is looked for before it is sent again.
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.open": {"im:write"},
    # files.getUploadURLExternal and files.completeUploadExternal, called by the client.
    "files.upload.v2": {"files:write"},
    "usergroups.users.list": {"usergroups:read"},
    "users.info": {"users:read"},
    # The policy's @handles and #names, resolved at start-up (bot.names).
    "users.list": {"users:read"},
    "usergroups.list": {"usergroups:read"},
    "conversations.list": {"channels:read", "groups:read"},
    "views.open": set(),
    "views.push": set(),
    "views.update": set(),
    "views.publish": set(),
}
#: A slash command needs this scope whatever the code calls.
COMMAND_SCOPES = {"commands"}

#: Every Web API method slack_sdk's client offers, by the name the code calls it with.
WEB_API_METHODS = {
    name: name.replace("_", ".")
    for name in vars(AsyncWebClient)
    if not name.startswith("_") and callable(getattr(AsyncWebClient, name))
}


def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))


def sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(BOT.rglob("*.py")))


def methods_called() -> set[str]:
    """The Web API methods the bot's code calls through slack_sdk's client."""
    called = set(re.findall(r"\.([A-Za-z]+_[A-Za-z0-9_]+)\(", sources()))
    return {WEB_API_METHODS[name] for name in called if name in WEB_API_METHODS}


@pytest.mark.skipif(not SCHEMA.exists(), reason=f"Slack's manifest schema is not at {SCHEMA}")
def test_manifest_validates_against_slacks_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(manifest(), schema)


def test_the_code_calls_the_web_api_methods_it_is_known_to() -> None:
    called = methods_called()
    assert {"chat.postMessage", "usergroups.users.list", "views.open"} <= called  # the scan works
    unmapped = called - set(SCOPES_OF_METHOD)
    assert not unmapped, f"add the scopes of {sorted(unmapped)} to SCOPES_OF_METHOD"


def test_manifest_asks_for_exactly_the_scopes_the_code_needs() -> None:
    needed = set(COMMAND_SCOPES).union(*(SCOPES_OF_METHOD[m] for m in methods_called()))
    asked = manifest()["oauth_config"]["scopes"]["bot"]
    assert sorted(asked) == sorted(set(asked)), "a scope is listed twice"
    assert set(asked) == needed


def test_manifest_declares_the_command_the_code_answers() -> None:
    commands = manifest()["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [ids.COMMAND]
    assert re.findall(r"\.command\(([^)]*)\)", sources()) == ["ids.COMMAND"]


def test_manifest_subscribes_to_the_events_the_code_listens_for() -> None:
    registered = set(re.findall(r"\.event\(\s*\"([a-z_]+)\"", sources()))
    assert registered == {"app_home_opened"}
    assert set(manifest()["settings"]["event_subscriptions"]["bot_events"]) == registered


def test_manifest_enables_interactivity_and_the_home_tab_on_one_request_url() -> None:
    data = manifest()
    settings, features = data["settings"], data["features"]
    assert settings["interactivity"]["is_enabled"] is True
    assert features["app_home"]["home_tab_enabled"] is True
    urls = {
        settings["interactivity"]["request_url"],
        settings["event_subscriptions"]["request_url"],
        *(c["url"] for c in features["slash_commands"]),
    }
    assert len(urls) == 1 and urls.pop().endswith(EVENTS_PATH)


def test_manifest_names_an_options_url_when_the_code_suggests_menu_options() -> None:
    """Slack asks the options load URL for an external select's options; without it in the
    manifest, the proposal form's past-changes menu would stay empty."""
    suggests = re.search(r"\.options\(", sources()) is not None
    interactivity = manifest()["settings"]["interactivity"]
    assert suggests
    assert interactivity["message_menu_options_url"] == interactivity["request_url"]
