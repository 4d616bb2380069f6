"""App Home: my open changes, what waits for my review or approval, the reviews I owe."""

from __future__ import annotations

from typing import Any

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import eventually
from tests.e2e.steps import (
    buttons,
    click,
    latest,
    request_change,
    review_and_test,
    step_with_form,
)
from workflows.stages import Action

MINE = "Your open changes"
AWAITING = "Waiting for your review or approval"
OWED = "Post-change reviews you owe"


def home_lists(view: dict[str, Any]) -> dict[str, str]:
    """Each list's title -> the text of everything listed under it."""
    lists: dict[str, str] = {}
    current = ""
    for block in view["blocks"]:
        if block["type"] == "divider":
            current = ""
            continue
        texts = [(block.get("text") or {}).get("text", "")]
        texts += [e.get("text", "") for e in block.get("elements") or []]
        text = "\n".join(t for t in texts if isinstance(t, str))
        title = next((t for t in (MINE, AWAITING, OWED) if text.startswith(f"*{t}*")), None)
        if title:
            current = title
            lists[current] = ""
        elif current:
            lists[current] += text + "\n"
    return lists


async def home_of(driver: SlackDriver, slack: SlackStandIn, user: str) -> dict[str, Any]:
    """`user` opens the app's Home tab; returns the view once the bot has (re)published it."""
    published = len(slack.calls_to("views.publish"))
    reply = await driver.open_home(user)
    assert reply.status == 200, reply.text
    await eventually(lambda: len(slack.calls_to("views.publish")) > published)
    view = slack.home_view(user)
    assert view is not None
    return view


async def test_home_shows_my_open_changes_and_what_waits_for_me(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    await request_change(driver, slack, **{ids.TITLE: "Home: tune the GC"})
    in_approve = await request_change(driver, slack, **{ids.TITLE: "Home: new DNS records"})
    await step_with_form(
        driver,
        slack,
        "U0BOB",
        in_approve,
        Action.RECORD_REVIEW,
        {ids.ASSESSMENT: "Fine.", ids.REVIEW_RISK: "low"},
    )
    await eventually(lambda: "add_test_evidence" in buttons(latest(slack, in_approve)))
    await step_with_form(
        driver, slack, "U0ALICE", in_approve, Action.ADD_TEST_EVIDENCE, {ids.EVIDENCE: "Ok."}
    )
    await eventually(lambda: "approve" in buttons(latest(slack, in_approve)))

    alice = home_lists(await home_of(driver, slack, "U0ALICE"))
    assert "Home: tune the GC" in alice[MINE] and "Home: new DNS records" in alice[MINE]
    assert "Home: " not in alice[AWAITING]  # nobody reviews or approves their own change

    dave = home_lists(await home_of(driver, slack, "U0DAVE"))  # an approver by user group
    assert "Home: new DNS records" in dave[AWAITING]
    assert "Home: " not in dave[MINE]

    bob = home_lists(await home_of(driver, slack, "U0BOB"))  # a peer who may review
    assert "Home: tune the GC" in bob[AWAITING]
    assert "Home: new DNS records" not in bob[AWAITING]  # approving is not his to do

    erin = await home_of(driver, slack, "U0ERIN")
    assert "Nothing open." in str(erin["blocks"])


async def test_home_lists_the_post_change_reviews_i_owe(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Home: failover drill"})
    await review_and_test(driver, slack, card)
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    await eventually(lambda: "start_deployment" in buttons(latest(slack, card)))
    await click(driver, slack, "U0ALICE", card, Action.START_DEPLOYMENT)
    await eventually(lambda: "record_outcome" in buttons(latest(slack, card)))
    answer = await step_with_form(
        driver,
        slack,
        "U0ALICE",
        card,
        Action.RECORD_OUTCOME,
        {ids.OUTCOME: "rolled_back", ids.NOTES: "Replication lag; rolled back."},
    )
    assert not answer.body, answer.text
    await eventually(lambda: "Post-change review owed" in str(latest(slack, card)["blocks"]))

    alice = home_lists(await home_of(driver, slack, "U0ALICE"))

    assert "Home: failover drill" in alice[OWED]
    assert "post-change review due" in alice[OWED]
    assert "Home: failover drill" not in home_lists(await home_of(driver, slack, "U0BOB"))[OWED]


async def test_the_new_change_button_on_home_opens_the_request_form(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    home = await home_of(driver, slack, "U0ERIN")

    reply = await driver.click("U0ERIN", home, ids.NEW_CHANGE)

    assert reply.status == 200, reply.text
    form = await eventually(lambda: slack.open_modal("U0ERIN"))
    assert form["callback_id"] == ids.REQUEST_MODAL
    assert ids.TITLE in [b.get("block_id") for b in form["blocks"]]
    await driver.close_modal("U0ERIN")


async def test_the_messages_tab_gets_no_home_view(slack: SlackStandIn, driver: SlackDriver) -> None:
    published = len(slack.calls_to("views.publish"))
    event = {
        "type": "app_home_opened",
        "user": "U0ERIN",
        "channel": slack.workspace.dm_with("U0ERIN").id,
        "tab": "messages",
    }
    reply = await driver.send_event(event)
    assert reply.status == 200, reply.text
    assert len(slack.calls_to("views.publish")) == published
