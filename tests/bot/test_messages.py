"""Answers to /change: help, lists, one change shown, refusals."""

from __future__ import annotations

from bot.views import messages
from tests.bot.blockkit import (
    HOSTILE,
    HOSTILE_ESCAPED,
    UNICODE,
    all_mrkdwn,
    assert_safe_mrkdwn,
    parse_blocks,
    parse_message,
)
from tests.bot.changes import NOW, a_desk, every_change, normal_details
from workflows.standing import standing


def test_help_lists_the_subcommands() -> None:
    blocks = messages.help_blocks()
    parse_blocks(blocks, most=50)
    mrkdwn = all_mrkdwn(blocks)
    for usage in (
        "/change new",
        "/change emergency &lt;what and why&gt;",
        "/change list [mine|open|awaiting-me]",
        "/change show CHG-42",
        "/change help",
    ):
        assert usage in mrkdwn
    assert_safe_mrkdwn(mrkdwn)


def test_help_for_an_unknown_subcommand_quotes_it_literally() -> None:
    message = messages.help_message(unknown="<!channel>")
    parse_message(message)
    mrkdwn = all_mrkdwn(message["blocks"])
    assert "I don't know `/change &lt;!channel&gt;`" in mrkdwn
    assert_safe_mrkdwn(mrkdwn)


def test_a_list_is_valid_escaped_and_capped() -> None:
    desk = a_desk()
    change = desk.stored(desk.request(normal_details(title=f"{HOSTILE} {UNICODE}"[:150])))
    shown = standing(change, desk.policy, NOW)
    message = messages.list_message("Open changes", [shown] * 80, reviews_owed=[shown] * 40)
    parse_message(message)
    assert message["response_type"] == "ephemeral"
    mrkdwn = all_mrkdwn(message["blocks"])
    assert_safe_mrkdwn(mrkdwn)
    assert HOSTILE_ESCAPED in mrkdwn
    assert "*Open changes* (80)" in mrkdwn
    assert "*Post-change reviews you owe* (40)" in mrkdwn
    assert "…and 51 more." in mrkdwn


def test_an_empty_list_says_so() -> None:
    blocks = messages.list_blocks("Your open changes", [])
    parse_blocks(blocks, most=50)
    assert "No changes to list." in all_mrkdwn(blocks)


def test_show_is_the_card_without_buttons_and_with_a_link_to_the_thread() -> None:
    for _, desk, change in every_change():
        shown = standing(change, desk.policy, NOW)
        message = messages.show_message(shown, desk.policy, "https://x.slack.com/archives/C1/p1")
        parse_message(message)
        assert all(b["type"] != "actions" for b in message["blocks"])
        assert "<https://x.slack.com/archives/C1/p1|Open the change's thread>" in all_mrkdwn(
            message["blocks"]
        )


def test_show_escapes_what_people_wrote() -> None:
    desk = a_desk()
    change = desk.cancel(desk.request(normal_details(description=HOSTILE)), reason=HOSTILE)
    blocks = messages.show_blocks(standing(desk.stored(change), desk.policy), desk.policy)
    mrkdwn = all_mrkdwn(blocks)
    assert_safe_mrkdwn(mrkdwn)
    assert mrkdwn.count(HOSTILE_ESCAPED) == 2


def test_a_refusal_is_ephemeral_and_escaped() -> None:
    assert messages.refusal("No <!here> & no") == {
        "response_type": "ephemeral",
        "text": "No &lt;!here&gt; &amp; no",
    }
