"""App Home: what the person has in flight, what waits for them, what they owe."""

from __future__ import annotations

import copy
from datetime import timedelta

from bot import ids
from bot.views.home import home
from tests.bot.blockkit import (
    HOSTILE,
    HOSTILE_ESCAPED,
    UNICODE,
    all_mrkdwn,
    assert_safe_mrkdwn,
    parse_view,
)
from tests.bot.changes import NOW, a_desk, emergency_details, normal_details
from workflows.model import Change, Level, Outcome, Stage
from workflows.standing import standings


def a_home(**lists: list[Change]) -> dict[str, object]:
    policy = a_desk().policy
    return home(
        "UALICE",
        mine=standings(lists.get("mine", []), policy, NOW),
        awaiting_me=standings(lists.get("awaiting_me", []), policy, NOW),
        reviews_owed=standings(lists.get("reviews_owed", []), policy, NOW),
        policy=policy,
        now=NOW,
    )


def test_an_empty_home_is_valid_and_says_so() -> None:
    view = a_home()
    parse_view(view)  # type: ignore[arg-type]
    assert view["type"] == "home"
    mrkdwn = all_mrkdwn(view["blocks"])
    assert "Nothing open." in mrkdwn
    assert "Nothing waits for your review or approval." in mrkdwn
    assert "You owe no post-change reviews." in mrkdwn


def test_home_offers_a_new_change_button() -> None:
    blocks = a_home()["blocks"]
    assert isinstance(blocks, list)
    button = next(e for b in blocks if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == ids.NEW_CHANGE
    assert button["text"]["text"] == "New change"


def test_each_change_is_one_line_with_reference_title_stage_and_classification() -> None:
    desk = a_desk()
    change = desk.stored(desk.request(normal_details(title="Upgrade Postgres")))
    mrkdwn = all_mrkdwn(a_home(mine=[change])["blocks"])
    assert f"*{change.ref}* · Upgrade Postgres — Review · Normal" in mrkdwn
    assert "*Your open changes* (1)" in mrkdwn


def test_an_overdue_post_change_review_is_marked() -> None:
    desk = a_desk()
    owed = desk.stored(desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED))
    overdue = copy.deepcopy(owed)
    overdue.review_due_at = NOW - timedelta(hours=1)
    on_time = a_home(reviews_owed=[owed])
    late = a_home(reviews_owed=[overdue])
    on_time_line = next(t for t in all_mrkdwn(on_time["blocks"]).splitlines() if owed.ref in t)
    late_line = next(t for t in all_mrkdwn(late["blocks"]).splitlines() if owed.ref in t)
    assert "post-change review due <!date^" in on_time_line and "⚠️" not in on_time_line
    assert "⚠️ post-change review overdue since <!date^" in late_line


def test_home_stays_within_slacks_hundred_blocks_however_many_changes() -> None:
    desk = a_desk()
    change = desk.stored(desk.request())
    many = [change] * 120
    view = a_home(mine=many, awaiting_me=many, reviews_owed=many)
    parse_view(view)  # type: ignore[arg-type]
    assert "…and 96 more." in all_mrkdwn(view["blocks"])


def test_titles_are_shown_literally_on_home() -> None:
    desk = a_desk()
    change = desk.stored(desk.request(normal_details(title=f"{HOSTILE} {UNICODE}"[:150])))
    mrkdwn = all_mrkdwn(a_home(mine=[change], awaiting_me=[change])["blocks"])
    assert_safe_mrkdwn(mrkdwn)
    assert HOSTILE_ESCAPED in mrkdwn
    assert UNICODE[:40] in mrkdwn


def test_an_overdue_policy_review_is_flagged_in_the_footer() -> None:
    policy = a_desk().policy
    due = policy.policy_review_due()
    before, after = (
        all_mrkdwn(
            home("UALICE", mine=[], awaiting_me=[], reviews_owed=[], policy=policy, now=now)[
                "blocks"
            ]
        )
        for now in (due - timedelta(days=1), due + timedelta(days=1))
    )
    assert "Test policy, owned by <@UOWNER>" in before
    assert "policy was due for review" not in before
    assert "⚠️ the policy was due for review on <!date^" in after


def test_a_change_waiting_for_approvals_says_how_many_it_has_of_how_many() -> None:
    desk = a_desk()
    half = desk.stored(
        desk.approve(desk.normal_change_in(Stage.APPROVE, normal_details(risk=Level.HIGH)))
    )
    mrkdwn = all_mrkdwn(a_home(awaiting_me=[half])["blocks"])
    assert (
        f"*{half.ref}* · Raise the API connection pool to 50 — Approve · Normal · 1 of 2 approvals"
        in mrkdwn
    )
    # Elsewhere in the process the count would be noise.
    in_review = desk.stored(desk.request())
    lines = all_mrkdwn(a_home(mine=[in_review])["blocks"]).splitlines()
    assert next(line for line in lines if in_review.ref in line).endswith("— Review · Normal")
