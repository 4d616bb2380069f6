"""The gate's answers summed up in the log, a line a minute, instead of a line each.

Pipelines waiting for approval ask the gate again and again, thousands of times a minute
across a company; a log line for each would be most of the log and cost each answer a
quarter of its time. Every answer is in the audit trail already, with who asked and why it
was given (`changebot audit export`), so the log keeps what an operator watches: how many
questions, how they were answered, and how the desk's rounds went (how many questions a
round held, how long one took: a database slower to commit shows there first). A refusal
(4xx) or a failure (5xx) still has its own line, as every other request does.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter, deque

from workflows.model import GateStatus

log = logging.getLogger(__name__)


#: Round times kept for a line's median and 90th percentile, at most (the latest): a minute
#: of a busy desk is a few thousand rounds, and a server whose timer never logs keeps no more.
ROUND_TIMES = 10_000


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[GateStatus] = Counter()
        self._rounds = _Rounds()

    def count(self, status: GateStatus) -> None:
        self.counts[status] += 1

    def round(self, questions: int, seconds: float) -> None:
        """A round of the desk's: how many questions it held, how long it took."""
        self._rounds.add(questions, seconds)

    def log(self) -> None:
        """One line for the answers counted since the last, if there were any."""
        counts, self.counts = self.counts, Counter()
        rounds, self._rounds = self._rounds, _Rounds()
        total = sum(counts.values())
        if not total:
            return
        each = ", ".join(f"{status.value} {counts[status]:,}" for status in GateStatus)
        log.info(
            "gate: answered %s question%s (%s)%s",
            f"{total:,}",
            "s"[: total != 1],
            each,
            rounds.summed_up(),
        )


class _Rounds:
    """The desk's rounds since the last line: how many, the questions they held, and the
    times of the latest `ROUND_TIMES`."""

    def __init__(self) -> None:
        self.count = 0
        self.questions = 0
        self.times: deque[float] = deque(maxlen=ROUND_TIMES)

    def add(self, questions: int, seconds: float) -> None:
        self.count += 1
        self.questions += questions
        self.times.append(seconds)

    def summed_up(self) -> str:
        """How many rounds, their size on average, their time at the median and at the 90th
        percentile (every round's questions count, refused ones too); "" for none."""
        if not self.count:
            return ""
        times = sorted(seconds * 1000 for seconds in self.times)
        ninetieth = times[min(len(times) - 1, int(len(times) * 0.9))]
        return (
            f" in {self.count:,} round{'s'[: self.count != 1]} of the desk, "
            f"{self.questions / self.count:.1f} questions a round on average, "
            f"{statistics.median(times):.1f} ms at the median, {ninetieth:.1f} ms at the 90th "
            "percentile"
        )
