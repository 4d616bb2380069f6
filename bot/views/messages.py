"""Answers to `/change` commands, seen only by the person who asked (ephemeral)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot import text
from bot.views.card import card_blocks, fallback_text
from bot.views.common import (
    MESSAGE_BLOCKS,
    AnyBlock,
    context,
    divider,
    list_sections,
    section,
    to_dicts,
)
from workflows.durations import format_duration
from workflows.model import Change
from workflows.policy import Policy
from workflows.standing import Standing

#: Changes listed in one answer, and reviews owed listed after them: within 50 blocks.
LISTED = 30
OWED_LISTED = 15
EPHEMERAL = "ephemeral"


def help_blocks(unknown: str = "") -> list[dict[str, Any]]:
    """What `/change` can do; `unknown` is a subcommand that was not understood."""
    return to_dicts([section(text.render("help.j2", unknown=unknown))])


def help_message(*, unknown: str = "") -> dict[str, Any]:
    """`help_blocks` with the fallback text, for a command's response."""
    return {"text": "How to use /change", "blocks": help_blocks(unknown)}


def list_blocks(
    title: str, shown: Sequence[Standing], *, reviews_owed: Sequence[Standing] = ()
) -> list[dict[str, Any]]:
    blocks: list[AnyBlock] = [section(_prose("list_title", title=title, count=len(shown)))]
    blocks += list_sections(shown, room=LISTED, empty=_prose("nothing_listed"))
    if reviews_owed:
        blocks += [divider(), section(_prose("owed_title", count=len(reviews_owed)))]
        blocks += list_sections(reviews_owed, room=OWED_LISTED, empty="")
    assert len(blocks) <= MESSAGE_BLOCKS
    return to_dicts(blocks)


def list_message(
    title: str, shown: Sequence[Standing], *, reviews_owed: Sequence[Standing] = ()
) -> dict[str, Any]:
    return {
        "response_type": EPHEMERAL,
        "text": _prose("list_fallback", title=title, count=len(shown)),
        "blocks": list_blocks(title, shown, reviews_owed=reviews_owed),
    }


def show_blocks(shown: Standing, policy: Policy, permalink: str = "") -> list[dict[str, Any]]:
    """The change as its card shows it, without buttons, and a link to its thread."""
    blocks = card_blocks(shown, policy, buttons=False)
    if permalink:
        blocks.append(context(_prose("thread_link", permalink=permalink)))
    return to_dicts(blocks)


def show_message(shown: Standing, policy: Policy, permalink: str = "") -> dict[str, Any]:
    return {
        "response_type": EPHEMERAL,
        "text": fallback_text(shown.change),
        "blocks": show_blocks(shown, policy, permalink),
    }


def refusal(message: str) -> dict[str, Any]:
    """A refusal or error, seen only by the person: nothing was changed."""
    return {
        "response_type": EPHEMERAL,
        "text": text.truncate(text.escape(message), text.MESSAGE_TEXT_LIMIT),
    }


def emergency_declared(change: Change, policy: Policy) -> dict[str, Any]:
    """The answer to `/change emergency`, within Slack's three seconds."""
    line = text.render_macro(
        "messages.j2",
        "emergency_declared",
        ref=change.ref,
        title=change.title,
        channel=policy.channels.changes,
        break_glass=policy.emergency.break_glass_allowed,
        after=format_duration(policy.emergency.break_glass_after),
    )
    return {"response_type": EPHEMERAL, "text": text.truncate(line, text.MESSAGE_TEXT_LIMIT)}


def _prose(name: str, **context: Any) -> str:
    return text.render_macro("messages.j2", name, **context)
