"""A button on an old card, or a click racing another, must not act on a change that moved on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from tests.unit.builders import ALICE, ANNA, ARTHUR, BOB, NOW, Desk, normal_details, nothing_written
from tests.unit.fakes import FakeClock
from workflows.errors import NotFound, StaleAction, StaleChange
from workflows.model import Change, Level, Outcome, Stage

OLD = Stage.TEST

#: Every use case a card's button can start, clicked on a card drawn while the change was in Test.
CLICKS: dict[str, Callable[[Desk, Change], Change]] = {
    "submit": lambda desk, change: desk.submit(change, seen_stage=OLD),
    "review": lambda desk, change: desk.review(change, seen_stage=OLD),
    "add_evidence": lambda desk, change: desk.add_evidence(change, seen_stage=OLD),
    "approve": lambda desk, change: desk.approve(change, by=ARTHUR, seen_stage=OLD),
    "reject": lambda desk, change: desk.reject(change, by=ARTHUR, seen_stage=OLD),
    "start_deployment": lambda desk, change: desk.start_deployment(change, seen_stage=OLD),
    "record_outcome": lambda desk, change: desk.record_outcome(
        change, Outcome.FAILED, seen_stage=OLD
    ),
    "submit_post_change_review": lambda desk, change: desk.submit_post_change_review(
        change, seen_stage=OLD
    ),
    "edit": lambda desk, change: desk.edit(change, title="Retitled", seen_stage=OLD),
    "cancel": lambda desk, change: desk.cancel(change, seen_stage=OLD),
}


@pytest.mark.parametrize("click", CLICKS.values(), ids=CLICKS.keys())
def test_a_button_from_an_older_card_is_refused_and_nothing_is_written(
    click: Callable[[Desk, Change], Change], desk: Desk
) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    with nothing_written(desk.uow), pytest.raises(StaleAction) as refused:
        click(desk, change)
    assert str(refused.value) == (
        "That button is from an older card: CHG-0001 was in Test and is now in Approve. "
        "Nothing was changed."
    )
    assert (refused.value.seen, refused.value.now) == ("Test", "Approve")


def test_the_stale_card_is_noticed_before_who_clicked_it(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    with nothing_written(desk.uow), pytest.raises(StaleAction):
        desk.approve(change, by=BOB, seen_stage=Stage.REVIEW)


def test_a_button_from_the_current_card_works(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    assert desk.approve(change, seen_stage=Stage.APPROVE).stage is Stage.DEPLOY


class Interrupted(FakeClock):
    """A clock that, the first time it is read mid-transaction, lets someone else act first."""

    def __init__(self, interruption: Callable[[], object]) -> None:
        super().__init__()
        self.interruption: Callable[[], object] | None = interruption

    def now(self) -> datetime:
        interruption, self.interruption = self.interruption, None
        if interruption is not None:
            interruption()
        return super().now()


def test_of_two_people_acting_at_once_the_second_is_refused_and_writes_nothing(
    desk: Desk,
) -> None:
    change = desk.add_evidence(desk.review(desk.request(), risk=Level.HIGH))
    anna_first = Desk(desk.uow, FakeClock(), desk.policy)
    desk.clock = Interrupted(lambda: anna_first.approve(change, by=ANNA))
    with pytest.raises(StaleChange) as refused:
        desk.approve(change, by=ARTHUR)
    assert str(refused.value) == (
        "CHG-0001 changed while you were looking at it (version 3, now 4). "
        "Look at the latest card and try again."
    )
    assert desk.stored(change).approvers() == (ANNA.user_id,)
    assert desk.actions(change)[-1] == "approved"
    assert desk.uow.audit.events[-1].entry.actor == ANNA.user_id


def test_acting_on_a_change_that_does_not_exist_is_refused(desk: Desk) -> None:
    missing = Change(number=99, details=normal_details(), requester=ALICE.user_id, created_at=NOW)
    with nothing_written(desk.uow), pytest.raises(NotFound) as refused:
        desk.approve(missing)
    assert str(refused.value) == "There is no change CHG-0099."
    assert (refused.value.what, refused.value.key) == ("change", "CHG-0099")
