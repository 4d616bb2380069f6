"""`/change emergency <one line>`: a change declared mid-incident in seconds, and approved by
one emergency approver standing for the compressed review and test."""

from __future__ import annotations

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    EMMA,
    NOW,
    OSCAR,
    PETER,
    Desk,
    a_policy,
    nothing_written,
)
from workflows.emergency import emergency_details
from workflows.errors import NotAllowed, ValidationFailed
from workflows.model import Actor, Classification, Links, Outcome, Stage
from workflows.validation import LIMITS

RULES = 'approver_users = ["UEMMA"]\napprover_groups = ["SONCALL"]\n'
LINE = "Block the abusive client at the gateway"
INCIDENT = "https://status.example.com/incidents/42"


def test_one_line_becomes_a_submitted_emergency_titled_by_it(desk: Desk) -> None:
    change = desk.declare_emergency(LINE)
    assert (change.stage, change.classification) == (Stage.REVIEW, Classification.EMERGENCY)
    assert (change.title, change.details.description) == (LINE, "")
    assert (change.requester, change.submitted_at) == (ALICE.user_id, NOW)
    assert desk.actions(change) == ["requested", "submitted"]


def test_the_spaces_and_line_breaks_of_the_line_are_tidied(desk: Desk) -> None:
    change = desk.declare_emergency("  Block   the abusive\tclient \n at the gateway  ")
    assert change.title == LINE


def test_a_long_line_is_cut_to_the_title_limit_and_kept_whole_as_the_description(
    desk: Desk,
) -> None:
    line = "Fail the primary database over to the replica in eu-west-2 " * 5
    change = desk.declare_emergency(line)
    assert len(change.title) == LIMITS["title"]
    assert change.title == line[: LIMITS["title"] - 1] + "…"
    assert change.details.description == line.strip()


def test_a_line_exactly_as_long_as_a_title_is_kept_as_it_is(desk: Desk) -> None:
    line = "x" * LIMITS["title"]
    change = desk.declare_emergency(line)
    assert (change.title, change.details.description) == (line, "")


def test_a_url_in_the_line_is_recorded_as_the_incident_link(desk: Desk) -> None:
    change = desk.declare_emergency(f"Roll back the 14:02 deploy, see {INCIDENT} for the outage")
    assert change.details.links == Links(incident=INCIDENT)


def test_the_first_of_several_urls_is_the_incident_link(desk: Desk) -> None:
    change = desk.declare_emergency(f"{INCIDENT} roll back https://example.com/pr/9")
    assert change.details.links.incident == INCIDENT


def test_a_url_too_long_for_a_link_stays_in_the_description_and_does_not_block_the_change(
    desk: Desk,
) -> None:
    dashboard = "https://grafana.example.com/explore?left=" + "%7B%22q%22%3A1%7D" * 40
    assert len(dashboard) > LIMITS["link"]
    change = desk.declare_emergency(f"Shed load, errors on {dashboard}")
    assert change.stage is Stage.REVIEW
    assert change.details.links.incident == ""
    assert dashboard in change.details.description


def test_the_scope_is_the_policys_emergency_default(desk: Desk) -> None:
    desk.policy = a_policy(emergency=RULES + 'default_scope = "database"')
    assert desk.declare_emergency(LINE).details.scope == "database"


def test_without_an_emergency_default_the_scope_is_the_policys_first(desk: Desk) -> None:
    assert desk.policy.emergency.default_scope == ""
    assert emergency_details(LINE, desk.policy).scope == desk.policy.scope[0].id == "code"


def test_the_channel_it_was_declared_in_is_recorded(desk: Desk) -> None:
    change = desk.declare_emergency(LINE, requested_in="CINCIDENT42")
    assert desk.stored(change).requested_in == "CINCIDENT42"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_line_is_refused_and_nothing_is_written(text: str, desk: Desk) -> None:
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.declare_emergency(text)
    assert (refused.value.field, refused.value.reason) == ("title", "this field is required.")
    assert desk.uow.changes.committed == {}


def test_a_line_longer_than_a_description_is_refused(desk: Desk) -> None:
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.declare_emergency("y" * (LIMITS["description"] + 1))
    assert refused.value.field == "title"


# -- one approval ------------------------------------------------------------------------------


def test_one_emergency_approval_moves_the_declared_change_to_deploy(desk: Desk) -> None:
    change = desk.declare_emergency(LINE)
    desk.clock.advance(minutes=3)
    approved = desk.approve(change, by=EMMA, comment="Go.")
    assert approved.stage is Stage.DEPLOY
    assert approved.approvers() == (EMMA.user_id,)
    assert approved.review is not None
    assert (approved.review.by, approved.review.kind) == (EMMA.user_id, "compressed")
    assert [(e.by, e.kind) for e in approved.test_evidence] == [(EMMA.user_id, "compressed")]
    assert desk.last_entry(change, "approved").entry.details == {
        "comment": "Go.",
        "stands_for": ["review", "test"],
    }
    assert desk.last_entry(change, "authorised").entry.details == {"approvers": [EMMA.user_id]}


def test_a_member_of_the_on_call_group_may_give_the_one_approval(desk: Desk) -> None:
    assert desk.approve(desk.declare_emergency(LINE), by=OSCAR).stage is Stage.DEPLOY


def test_the_requester_cannot_approve_their_own_declared_emergency(desk: Desk) -> None:
    change = desk.declare_emergency(LINE, by=EMMA)
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.approve(change, by=EMMA)
    assert str(refused.value) == "You requested CHG-0001: someone else must review or approve it."


@pytest.mark.parametrize("who", [ALICE, ANNA, PETER])
def test_nobody_but_an_emergency_approver_gives_the_one_approval(who: Actor, desk: Desk) -> None:
    change = desk.declare_emergency(LINE)
    with nothing_written(desk.uow), pytest.raises(NotAllowed):
        desk.approve(change, by=who)


def test_nothing_else_is_needed_before_deploying_and_the_paperwork_is_owed_after(
    desk: Desk,
) -> None:
    change = desk.approve(desk.declare_emergency(LINE), by=EMMA)
    owing = desk.record_outcome(desk.start_deployment(change), Outcome.SUCCESSFUL)
    assert (owing.stage, owing.review_owed) == (Stage.DEPLOY, True)
    assert owing.owed_documents == ("description", "rollback", "test_evidence")
