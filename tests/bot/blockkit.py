"""Checks that what the views build is Block Kit Slack accepts: parsed by slack_sdk.models
(which validates most limits), plus the limits slack_sdk does not check, and the mrkdwn
control sequences (`<…>`) all built by the bot."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

#: Control sequences the bot itself writes into mrkdwn; nothing else may contain `<`.
BOT_TOKEN = re.compile(
    r"<@[UW][A-Z0-9]{2,}>"
    r"|<!subteam\^S[A-Z0-9]{2,}>"
    r"|<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+UTC>"
    r"|<https?://[^\s<>|]+\|[^<>]+>"
)
HOSTILE = "<!channel> <!here> <!subteam^S1|x> <@U1> <https://evil|docs> &amp;"
HOSTILE_ESCAPED = (
    "&lt;!channel&gt; &lt;!here&gt; &lt;!subteam^S1|x&gt; &lt;@U1&gt; "
    "&lt;https://evil|docs&gt; &amp;amp;"
)
UNICODE = "Déploiement 🚀 of naïve café — שלום עולם"


def parse_blocks(blocks: list[dict[str, Any]], *, most: int) -> None:
    """Every block parses and validates; the message or view is within its block count."""
    assert 0 < len(blocks) <= most, f"{len(blocks)} blocks (Slack accepts at most {most})"
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, f"not a block slack_sdk knows: {block}"
        parsed.validate_json()
        assert parsed.to_dict() == block
    check_limits(blocks)


def parse_message(message: dict[str, Any]) -> None:
    assert message["text"], "a message needs fallback text for notifications"
    parse_blocks(message["blocks"], most=50)


def parse_view(view: dict[str, Any]) -> View:
    parsed = View(**view)
    parsed.validate_json()
    parse_blocks(view["blocks"], most=100)
    assert parsed.to_dict() == view
    return parsed


def check_limits(blocks: list[dict[str, Any]]) -> None:
    """The limits slack_sdk leaves to Slack's servers."""
    for node, parent_key in walk(blocks):
        kind = node.get("type")
        if kind == "plain_text_input" and "max_length" in node:
            assert node["max_length"] <= 3000
        if kind == "mrkdwn":
            limit = 2000 if parent_key == "fields" else 3000
            assert len(node["text"]) <= limit, f"{len(node['text'])} > {limit}"
        if kind == "section":
            assert len(node.get("fields") or []) <= 10
        if kind == "actions":
            assert len(node["elements"]) <= 25


def walk(value: Any, key: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    """Every object in a JSON tree, with the key it sits under."""
    if isinstance(value, dict):
        yield value, key
        for child_key, child in value.items():
            yield from walk(child, child_key)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, key)


def texts(value: Any, kind: str) -> list[str]:
    """Every text of one kind ("mrkdwn" or "plain_text") in blocks or a view."""
    return [node["text"] for node, _ in walk(value) if node.get("type") == kind]


def all_mrkdwn(value: Any) -> str:
    return "\n".join(texts(value, "mrkdwn"))


def assert_safe_mrkdwn(mrkdwn: str) -> None:
    """No `<` in mrkdwn but the bot's own tokens, so no user text pings or links anyone."""
    remainder = BOT_TOKEN.sub("", mrkdwn)
    assert "<" not in remainder and ">" not in remainder, remainder
    for raw in ("<!channel>", "<!here>", "<!subteam^S1", "<@U1>", "<https://evil"):
        assert raw not in mrkdwn
    # Every & is an escape the bot wrote; none is left bare to start a forged one.
    assert not re.search(r"&(?!amp;|lt;|gt;)", mrkdwn), mrkdwn


def slack_state(view: dict[str, Any], **typed: Any) -> dict[str, Any]:
    """`view.state.values` as Slack would send it for a view: each input's initial value,
    or what `typed` says the person entered (by block_id)."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        kind = element["type"]
        entered = typed.get(block_id)
        if kind in ("plain_text_input", "url_text_input"):
            state = {"value": entered if entered is not None else element.get("initial_value")}
        elif kind in ("static_select", "radio_buttons"):
            option = element.get("initial_option")
            if entered is not None:
                option = next(o for o in element["options"] if o["value"] == entered)
            state = {"selected_option": option}
        elif kind == "datetimepicker":
            chosen = entered if entered is not None else element.get("initial_date_time")
            state = {"selected_date_time": chosen}
        elif kind == "users_select":
            state = {"selected_user": entered or element.get("initial_user")}
        else:
            raise AssertionError(f"no state shape for {kind}")
        values[block_id] = {element["action_id"]: {"type": kind, **state}}
    return values
