"""`/change help`, `list`, `show` and anything else: answers only the person who typed it sees,
in the body of the HTTP 200 that acknowledges the command."""

from __future__ import annotations

from typing import Any

from bot import ids
from standin import Reply, SlackDriver, SlackStandIn
from tests.e2e.harness import BotProcess, eventually
from tests.e2e.steps import CHANGES, open_request_form, request_change


async def change(driver: SlackDriver, user: str, text: str) -> Reply:
    return await driver.slash_command(user, "/change", text, channel=CHANGES)


def shown(reply: Reply) -> str:
    """Everything the answer shows: its text and the text of its blocks."""
    assert reply.status == 200, reply.text
    body: dict[str, Any] = reply.body
    assert body["response_type"] == "ephemeral", body
    return body.get("text", "") + "\n" + str(body.get("blocks", ""))


async def test_help_lists_what_change_can_do(driver: SlackDriver) -> None:
    answer = shown(await change(driver, "U0ERIN", "help"))

    for command in ("/change new", "/change list", "/change show CHG-42", "/change help"):
        assert command in answer


async def test_an_unknown_subcommand_gets_the_help_saying_so(driver: SlackDriver) -> None:
    answer = shown(await change(driver, "U0ERIN", "bogus"))

    assert "I don't know `/change bogus`" in answer
    assert "/change list" in answer


async def test_list_and_show_answer_about_the_changes(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Commands: bump the TLS certs"})
    ref = str(card["text"]).split(" ")[0]

    mine = shown(await change(driver, "U0ALICE", "list mine"))
    assert "Your open changes" in mine and ref in mine and "bump the TLS certs" in mine
    default = shown(await change(driver, "U0ERIN", "list"))
    assert "Your open changes" in default and ref not in default  # Erin's own, none
    assert ref in shown(await change(driver, "U0ERIN", "list open"))
    assert ref in shown(await change(driver, "U0BOB", "list awaiting-me"))  # Bob may review
    assert ref not in shown(await change(driver, "U0ALICE", "list awaiting-me"))
    assert "not 'later'" in shown(await change(driver, "U0ALICE", "list later"))

    show = shown(await change(driver, "U0ERIN", f"show {ref}"))
    assert "Commands: bump the TLS certs" in show and "Review" in show
    assert "change.approve" not in show and "action_id" not in show  # a view, not a card to act on
    assert ref in shown(await change(driver, "U0ERIN", f"show {ref.lower()}"))


async def test_showing_a_change_that_does_not_exist_says_so_politely(
    driver: SlackDriver,
) -> None:
    answer = shown(await change(driver, "U0ERIN", "show CHG-9999"))
    assert "There is no change CHG-9999." in answer

    assert "Say which change to show" in shown(await change(driver, "U0ERIN", "show"))


async def test_change_new_opens_the_request_form(slack: SlackStandIn, driver: SlackDriver) -> None:
    shown_before = (slack.open_modal("U0ERIN") or {}).get("id")
    reply = await change(driver, "U0ERIN", "new")
    assert reply.status == 200 and not reply.body, reply.text  # an empty ack: the form answers
    form = await eventually(
        lambda: (
            (slack.open_modal("U0ERIN") or {}).get("id") not in (None, shown_before)
            and slack.open_modal("U0ERIN")
        )
    )
    assert form["callback_id"] == ids.REQUEST_MODAL
    await driver.close_modal("U0ERIN")
    assert (await open_request_form(driver, slack, "U0ERIN"))["callback_id"] == ids.REQUEST_MODAL
    await driver.close_modal("U0ERIN")


async def test_a_form_slack_will_not_open_is_logged_and_the_next_one_opens(
    driver: SlackDriver, slack: SlackStandIn, bot: BotProcess
) -> None:
    slack.state.surfaces.trigger_ttl = 0.0  # the trigger has expired when the form comes
    try:
        reply = await change(driver, "U0ERIN", "")
        assert reply.status == 200 and not reply.text  # acknowledged at once all the same
        await eventually(lambda: "could not open the new-change form" in bot.output())
        assert "expired_trigger_id" in bot.output()
    finally:
        slack.state.surfaces.trigger_ttl = 3.0
    modals = len(slack.modals("U0ERIN"))
    await change(driver, "U0ERIN", "")
    await eventually(lambda: len(slack.modals("U0ERIN")) > modals)
