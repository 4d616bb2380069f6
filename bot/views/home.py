"""App Home: the person's open changes, what waits for their review or approval, the
post-change reviews they owe, the next seven days of the change calendar (drawn by
bot/views/calendar.py), and a button to request a change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, PlainTextObject
from slack_sdk.models.views import View

from bot import ids, text
from bot.views import metrics
from bot.views.common import VIEW_BLOCKS, AnyBlock, context, divider, header, list_sections, section
from workflows.metrics import Dora
from workflows.policy import Policy
from workflows.standing import Standing

#: Changes shown per list: three lists, the calendar's week (at most ten blocks) and the
#: fixed blocks stay within Slack's 100.
PER_LIST = 25


def home(
    user_id: str,
    *,
    mine: Sequence[Standing],
    awaiting_me: Sequence[Standing],
    reviews_owed: Sequence[Standing],
    policy: Policy,
    now: datetime,
    month: Dora | None = None,
    calendar: Sequence[AnyBlock] = (),
) -> dict[str, Any]:
    """The App Home view, for views.publish; `month`: DORA's metrics of the last 30 days;
    `calendar`: the next seven days' blocks."""
    blocks: list[AnyBlock] = [
        header("Changes"),
        section(_prose("intro", who=user_id)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text=PlainTextObject(text="New change"),
                    action_id=ids.NEW_CHANGE,
                    style="primary",
                )
            ]
        ),
    ]
    if month is not None:
        blocks.append(context(metrics.home_line(month)))
    lists = (
        ("Your open changes", mine, "nothing_mine"),
        ("Waiting for your review or approval", awaiting_me, "nothing_awaiting"),
        ("Post-change reviews you owe", reviews_owed, "nothing_owed"),
    )
    for title, changes, empty in lists:
        blocks += [divider(), section(_prose("list_title", title=title, count=len(changes)))]
        blocks += list_sections(changes, room=PER_LIST, empty=_prose(empty))
    blocks += calendar
    due = policy.policy_review_due()
    blocks += [
        divider(),
        context(
            _prose(
                "footer",
                policy_name=policy.policy.name,
                owner=policy.policy.owner,
                review_due=due,
                overdue=due < now,
            )
        ),
    ]
    assert len(blocks) <= VIEW_BLOCKS, "App Home has more blocks than Slack accepts"
    return View(type="home", blocks=blocks).to_dict()


def _prose(name: str, **context: Any) -> str:
    return text.render_macro("home.j2", name, **context)
