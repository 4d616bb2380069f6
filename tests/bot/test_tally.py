"""The gate's line a minute in the log (bot/api/tally.py): the answers, and the desk's rounds."""

from __future__ import annotations

import logging

import pytest

from bot.api.tally import ROUND_TIMES, Tally
from workflows.model import GateStatus


def test_the_line_sums_up_the_answers_and_the_rounds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    tally = Tally()
    for _ in range(30):
        tally.count(GateStatus.ALLOWED)
    tally.count(GateStatus.AWAITING)
    # Ten rounds: 3 questions each but one of 4; 2 ms each but one of 11 (a slow COMMIT).
    for index in range(10):
        tally.round(4 if index == 0 else 3, 0.011 if index == 9 else 0.002)

    tally.log()
    tally.log()  # nothing since: no line

    assert [r.getMessage() for r in caplog.records] == [
        "gate: answered 31 questions (allowed 30, awaiting 1, prevented 0, invalid 0) in 10 "
        "rounds of the desk, 3.1 questions a round on average, 2.0 ms at the median, 11.0 ms "
        "at the 90th percentile"
    ]


def test_a_line_without_rounds_says_nothing_of_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    tally = Tally()
    tally.count(GateStatus.PREVENTED)

    tally.log()

    assert [r.getMessage() for r in caplog.records] == [
        "gate: answered 1 question (allowed 0, awaiting 0, prevented 1, invalid 0)"
    ]


def test_a_desk_whose_lines_are_never_logged_keeps_a_bounded_sample_of_round_times() -> None:
    tally = Tally()
    for _ in range(ROUND_TIMES * 2):
        tally.round(25, 0.005)

    assert len(tally._rounds.times) == ROUND_TIMES
    assert tally._rounds.count == ROUND_TIMES * 2  # still counted, every one
