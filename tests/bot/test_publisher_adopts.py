"""A card Slack posted without saying so (the connection dropped after the post) is adopted by
the next delivery, not posted twice, and shown as the change is by then: people may have
clicked on the card that landed meanwhile. The whole bot in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from bot import ids
from storage.outbox import PublicationRow
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually
from tests.e2e.steps import (
    CHANGES,
    buttons,
    cards,
    latest,
    normal_request,
    open_form,
    open_request_form,
    review,
    step_with_form,
    thread_texts,
)
from workflows.stages import Action

INCIDENT = "C0INCIDENT"


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


async def test_a_card_posted_unconfirmed_is_adopted_and_drawn_as_the_change_now_is(
    bot: InProcess,
) -> None:
    bot.slack.fail_next("chat.postMessage", "dropped")  # the card lands; the bot never hears
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    await bot.driver.submit_modal("U0ALICE", normal_request())
    card = await eventually(lambda: (cards(bot.slack) or [None])[0])
    assert [c for c in bot.slack.calls if c.fault == "dropped"]

    # Bob reviews from the card that landed; the change moves on, and its news brings the
    # delivery Slack answered with an error forward.
    await review(bot.driver, bot.slack, card)
    assert len(cards(bot.slack)) == 1


async def deleted_while_bob_reviews(bot: InProcess) -> dict[str, Any]:
    """Alice's change waits for review, all of it shown; Bob opens the review form, and
    meanwhile someone deletes the card. The card as it was."""
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    await bot.driver.submit_modal("U0ALICE", normal_request())
    card = await eventually(lambda: (cards(bot.slack) or [None])[0])
    await eventually(lambda: "record_review" in buttons(latest(bot.slack, card)))
    await eventually(lambda: delivered(bot, 1))
    await open_form(bot.driver, bot.slack, "U0BOB", card, Action.RECORD_REVIEW)
    bot.slack.state.messages.delete(CHANGES, card["ts"], bot.slack.workspace.bot_user_id)
    return card


async def test_a_deleted_cards_replacement_posted_unconfirmed_is_adopted_and_its_note_sent(
    bot: InProcess,
) -> None:
    card = await deleted_while_bob_reviews(bot)
    # Its replacement lands, but the bot never hears it did.
    bot.slack.fail_next("chat.postMessage", "dropped")
    await bot.driver.submit_modal("U0BOB", {ids.ASSESSMENT: "Fine.", ids.REVIEW_RISK: "low"})

    replacement = await eventually(lambda: (cards(bot.slack) or [None])[0])
    assert replacement["ts"] != card["ts"]
    await retry_due(bot)
    await eventually(
        lambda: any("deleted in Slack" in t for t in thread_texts(bot.slack, replacement))
    )
    assert len(cards(bot.slack)) == 1  # adopted, not posted a second time
    notes = [t for t in thread_texts(bot.slack, replacement) if "deleted in Slack" in t]
    assert len(notes) == 1


async def test_an_emergencys_copy_posted_unconfirmed_is_adopted_not_posted_twice(
    bot: InProcess,
) -> None:
    # The copy in the incident channel lands; the connection drops before the bot hears.
    bot.slack.fail_next("chat.postMessage", "dropped", where={"channel": INCIDENT})
    answer = await bot.driver.slash_command(
        "U0ALICE", "/change", "emergency Roll back checkout to v41", channel=INCIDENT
    )
    assert answer.status == 200, answer.text
    card = await eventually(lambda: (cards(bot.slack) or [None])[0])
    await eventually(lambda: [c for c in bot.slack.calls if c.fault == "dropped"])
    await retry_due(bot)

    # Dave approves: the copy the bot adopted is the one it keeps up to date.
    await bot.driver.click("U0DAVE", latest(bot.slack, card), ids.card_action_id(Action.APPROVE))
    await eventually(lambda: "start_deployment" in buttons(copies(bot)[-1]))
    assert len(copies(bot)) == 1


async def test_the_requester_hears_once_that_the_incident_channel_refused_the_copy(
    bot: InProcess,
) -> None:
    # The bot may not post in the incident channel (after a first failure of Slack's own,
    # once the confirmation has gone), so Alice is told where the card is; that message lands,
    # but the bot never hears it did.
    bot.slack.fail_next("chat.postMessage", "500", where={"channel": INCIDENT})
    bot.slack.fail_next(
        "chat.postMessage", "channel_not_found", where={"channel": INCIDENT}, times=2
    )
    answer = await bot.driver.slash_command(
        "U0ALICE", "/change", "emergency Roll back checkout to v41", channel=INCIDENT
    )
    assert answer.status == 200, answer.text
    await eventually(lambda: [c for c in bot.slack.calls if c.fault == "internal_error"])
    await eventually(lambda: failed_once(bot, 1))
    bot.slack.fail_next("chat.postMessage", "dropped", where={"channel": "U0ALICE"})
    await bot.advance(seconds=5)
    await eventually(lambda: [c for c in bot.slack.calls if c.fault == "dropped"])
    await retry_due(bot)

    await eventually(lambda: delivered(bot, 1))
    refused = [t for t in notices(bot) if "can't post in" in t]
    assert len(refused) == 1, notices(bot)
    assert not copies(bot)


async def test_a_message_to_a_person_sent_unconfirmed_is_not_sent_again(bot: InProcess) -> None:
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    await bot.driver.submit_modal("U0ALICE", normal_request())
    card = await eventually(lambda: (cards(bot.slack) or [None])[0])
    await eventually(lambda: notices(bot))  # the request's confirmation
    before = len(notices(bot))

    # Bob sends it back; Alice is told, and that message lands, but the bot never hears it did.
    bot.slack.fail_next("chat.postMessage", "dropped", where={"channel": "U0ALICE"})
    await step_with_form(
        bot.driver, bot.slack, "U0BOB", card, Action.REJECT, {ids.REASON: "No rollback test."}
    )
    await eventually(lambda: [c for c in bot.slack.calls if c.fault == "dropped"])
    await retry_due(bot)
    await eventually(lambda: delivered(bot, 1))
    assert len(notices(bot)) == before + 1


async def retry_due(bot: InProcess, number: int = 1) -> None:
    """Once the publisher has written down its failed attempt (Slack has the call before the
    bot hears how it went), time passes until its retry is due."""
    await eventually(lambda: failed_once(bot, number))
    await bot.advance(seconds=5)


def failed_once(bot: InProcess, number: int) -> bool:
    with Session(bot.bot.services.engine) as session:
        pub = session.get(PublicationRow, number)
        return pub is not None and pub.attempts > 0 and not pub.lease_owner


def delivered(bot: InProcess, number: int) -> bool:
    """The change's news all in Slack: nothing due, no attempt failing."""
    with Session(bot.bot.services.engine) as session:
        pub = session.get(PublicationRow, number)
        return pub is not None and pub.due_at is None and pub.attempts == 0


def copies(bot: InProcess) -> list[dict[str, Any]]:
    return [m for m in bot.slack.messages(INCIDENT) if m.get("blocks")]


def notices(bot: InProcess) -> list[str]:
    return [m["text"] for m in bot.slack.dms("U0ALICE")]


async def requested_with_confirmation_failing(bot: InProcess, fault: str) -> dict[str, Any]:
    """Alice requests a change: its card is posted and on record, and the confirmation sent
    to her after it fails with `fault`. The card."""
    bot.slack.fail_next("chat.postMessage", fault, where={"channel": "U0ALICE"})
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    await bot.driver.submit_modal("U0ALICE", normal_request())
    card = await eventually(lambda: (cards(bot.slack) or [None])[0])
    await eventually(lambda: [c for c in bot.slack.calls if c.fault in (fault, "internal_error")])
    return card


@pytest.mark.parametrize("fault", ["500", "dropped"])
async def test_the_requesters_confirmation_is_sent_once_though_its_first_send_failed(
    bot: InProcess, fault: str
) -> None:
    # "500": Slack did not post it, and the retry must send it; "dropped": it landed, the
    # bot never heard, and the retry must find it rather than send it again.
    await requested_with_confirmation_failing(bot, fault)
    await retry_due(bot)

    await eventually(lambda: delivered(bot, 1))
    confirmations = [t for t in notices(bot) if "Your change CHG-0001" in t]
    assert len(confirmations) == 1, notices(bot)
    assert len(cards(bot.slack)) == 1


async def test_a_deleted_cards_note_is_sent_once_though_its_first_send_failed(
    bot: InProcess,
) -> None:
    await deleted_while_bob_reviews(bot)
    # Its replacement is posted, and the note in its thread fails.
    bot.slack.fail_next("chat.postMessage", "500", where={"thread_ts": "*"})
    await bot.driver.submit_modal("U0BOB", {ids.ASSESSMENT: "Fine.", ids.REVIEW_RISK: "low"})
    replacement = await eventually(lambda: (cards(bot.slack) or [None])[0])
    await eventually(lambda: [c for c in bot.slack.calls if c.fault == "internal_error"])
    await retry_due(bot)

    await eventually(lambda: delivered(bot, 1))
    notes = [t for t in thread_texts(bot.slack, replacement) if "deleted in Slack" in t]
    assert len(notes) == 1
    assert len(cards(bot.slack)) == 1


@pytest.mark.parametrize("fault", ["500", "dropped"])
async def test_a_card_deleted_while_its_confirmation_is_owed_is_posted_again_and_confirmed_once(
    bot: InProcess, fault: str
) -> None:
    card = await requested_with_confirmation_failing(bot, fault)
    # Before the retry, someone deletes the card.
    bot.slack.state.messages.delete(CHANGES, card["ts"], bot.slack.workspace.bot_user_id)
    await retry_due(bot)

    await eventually(lambda: delivered(bot, 1))
    (replacement,) = cards(bot.slack)
    assert replacement["ts"] != card["ts"]
    confirmations = [t for t in notices(bot) if "Your change CHG-0001" in t]
    assert len(confirmations) == 1, notices(bot)
    if fault == "500":  # never sent before: it links the card Alice can see
        assert replacement["ts"].replace(".", "") in confirmations[0]
    else:  # it landed with the first card: the thread of the second says why it is new
        notes = [t for t in thread_texts(bot.slack, replacement) if "deleted in Slack" in t]
        assert len(notes) == 1
