"""DORA's five metrics, from the change record.

A *deployment* here is a change whose outcome was recorded in the period: changebot knows a
deployment by its outcome, whether a person or a pipeline reported it. From those:

- **deployment frequency**: deployments per day of the period;
- **change lead time**: from the request to a successful outcome (successful, or successful
  with issues), the median;
- **change fail rate**: the share of deployments that failed or were rolled back;
- **failed deployment recovery time**: from a failed or rolled-back outcome to the next
  successful outcome of a change naming one of the same services, the median (a failure not
  recovered within the period is counted apart, not guessed; so is a failure naming no
  service, whose recovery nothing on record shows);
- **deployment rework rate**: the share of deployments that were emergency changes, the
  unplanned deployments made because of an incident.

The changes are read once, in the order of their outcomes (`Tally.add`), so a year of changes
streams through without being held.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from workflows.model import Change, Classification, Outcome, Window

SUCCEEDED = frozenset({Outcome.SUCCESSFUL, Outcome.SUCCESSFUL_WITH_ISSUES})
FAILED = frozenset({Outcome.FAILED, Outcome.ROLLED_BACK})
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)
#: A Monday, midnight UTC: weeks for the trend start on Mondays.
_MONDAY = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Dora:
    """The five metrics of a period. A metric with nothing to measure is None (no deployment,
    no failure), never a made-up zero."""

    period: Window
    deployments: int
    per_day: float
    lead_time: timedelta | None
    fail_rate: float | None
    recovery_time: timedelta | None
    rework_rate: float | None
    failures: int
    #: Failures in the period with no successful deployment of their services after them.
    unrecovered: int
    #: Failures naming no service (an emergency declared mid-incident may name none): no
    #: later change is known to restore them, so their recovery is not measured.
    recovery_unknown: int
    emergencies: int


@dataclass
class Tally:
    """The metrics of one period, fed changes in the order of their outcomes."""

    period: Window
    _lead_times: list[float] = field(default_factory=list)
    _recoveries: list[float] = field(default_factory=list)
    #: The failures (change number, when) of each service still waiting for a success.
    _pending: dict[str, list[tuple[int, datetime]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    #: The failures recovered (a failure on several services is recovered by the first
    #: success on any of them, and its entries on the others are skipped when met).
    _recovered: set[int] = field(default_factory=set)
    _failed: set[int] = field(default_factory=set)
    _unknown: int = 0
    _deployments: int = 0
    _emergencies: int = 0
    _last: datetime | None = None

    def add(self, change: Change) -> None:
        at = change.outcome_at
        if change.outcome is None or at is None or not self.period.start <= at < self.period.end:
            return
        if self._last is not None and at < self._last:
            raise ValueError("changes must come in the order of their outcomes")
        self._last = at
        self._deployments += 1
        if change.classification is Classification.EMERGENCY:
            self._emergencies += 1
        # Services as the calendar, the freezes and the gate match them: whatever their case.
        # A change naming none is matched with no other: two such changes may concern
        # anything, and a change has one outcome, so nothing on record recovers its failure.
        services = {s.strip().lower() for s in change.details.services} - {""}
        if change.outcome in FAILED:
            self._failed.add(change.number)
            if not services:
                self._unknown += 1
            for service in services:
                self._pending[service].append((change.number, at))
            return
        self._lead_times.append(_seconds(at - change.created_at))
        for service in services:
            for number, failed_at in self._pending.pop(service, ()):
                if number not in self._recovered:
                    self._recovered.add(number)
                    self._recoveries.append(_seconds(at - failed_at))

    def result(self) -> Dora:
        deployments = self._deployments
        days = max((self.period.end - self.period.start) / DAY, 1e-9)
        failures = len(self._failed)
        return Dora(
            period=self.period,
            deployments=deployments,
            per_day=deployments / days,
            lead_time=_median(self._lead_times),
            fail_rate=failures / deployments if deployments else None,
            recovery_time=_median(self._recoveries),
            rework_rate=self._emergencies / deployments if deployments else None,
            failures=failures,
            unrecovered=failures - len(self._recovered) - self._unknown,
            recovery_unknown=self._unknown,
            emergencies=self._emergencies,
        )


def dora(changes: Iterable[Change], period: Window) -> Dora:
    """The metrics of a period from changes in the order of their outcomes."""
    tally = Tally(period)
    for change in changes:
        tally.add(change)
    return tally.result()


def week_of(moment: datetime) -> datetime:
    """The Monday (midnight UTC) that starts the week of `moment`."""
    return _MONDAY + WEEK * ((moment - _MONDAY) // WEEK)


def weeks_of(period: Window) -> list[Window]:
    """The weeks a period touches, Monday to Monday, the first and last cut to the period."""
    found, start = [], week_of(period.start)
    while start < period.end:
        found.append(Window(max(start, period.start), min(start + WEEK, period.end)))
        start += WEEK
    return found


@dataclass(frozen=True)
class Trend:
    """A period's metrics, the same for the period before it, and the period's week by week."""

    now: Dora
    before: Dora
    weeks: tuple[Dora, ...]


def measure(changes: Iterable[Change], period: Window) -> Trend:
    """The trend of a period from one pass over the changes of it and of the period before,
    in the order of their outcomes."""
    earlier = previous(period)
    before, now = Tally(earlier), Tally(period)
    weeks = [Tally(week) for week in weeks_of(period)]
    for change in changes:
        at = change.outcome_at
        if at is None:
            continue
        if earlier.start <= at < earlier.end:
            before.add(change)
        elif period.start <= at < period.end:
            now.add(change)
            weeks[_index(weeks, at)].add(change)
    return Trend(now.result(), before.result(), tuple(week.result() for week in weeks))


def last_days(days: int, now: datetime) -> Window:
    """The last `days` days up to the end of the current minute (what was recorded this
    minute counts: a period includes its start, not its end)."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return Window(end - timedelta(days=days), end)


def previous(period: Window) -> Window:
    """The period of the same length just before."""
    return Window(period.start - (period.end - period.start), period.start)


def _index(tallies: list[Tally], at: datetime) -> int:
    return (week_of(at) - week_of(tallies[0].period.start)) // WEEK


def _seconds(span: timedelta) -> float:
    return max(span.total_seconds(), 0.0)


def _median(values: list[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(values)) if values else None
