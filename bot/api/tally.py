"""The gate's answers summed up in the log, a line a minute, instead of a line each.

Pipelines waiting for approval ask the gate again and again, thousands of times a minute
across a company; a log line for each would be most of the log and cost each answer a
quarter of its time. Every answer is in the audit trail already, with who asked and why it
was given (`changebot audit export`), so the log keeps what an operator watches: how many
questions, and how they were answered. A refusal (4xx) or a failure (5xx) still has its own
line, as every other request does.
"""

from __future__ import annotations

import logging
from collections import Counter

from workflows.model import GateStatus

log = logging.getLogger(__name__)


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[GateStatus] = Counter()

    def count(self, status: GateStatus) -> None:
        self.counts[status] += 1

    def log(self) -> None:
        """One line for the answers counted since the last, if there were any."""
        counts, self.counts = self.counts, Counter()
        total = sum(counts.values())
        if not total:
            return
        each = ", ".join(f"{status.value} {counts[status]:,}" for status in GateStatus)
        log.info("gate: answered %s question%s (%s)", f"{total:,}", "s"[: total != 1], each)
