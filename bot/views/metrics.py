"""DORA's metrics as people read them: `/change metrics`, App Home's line, and the words a
chart is titled with."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot import text
from bot.views.common import context, section, to_dicts
from workflows.metrics import Dora, Trend

NOTHING = "n/a"


def metrics_message(trend: Trend) -> dict[str, Any]:
    """The five metrics of a period, each beside the period before's, as an ephemeral
    answer."""
    now, before = trend.now, trend.before
    period, days = now.period, _days(trend)
    rows = [_row(metric, now, before) for metric in METRICS]
    blocks = [
        section(_macro("title", days=days, start=period.start, end=period.end)),
        *(section(row) for row in rows),
        context(_macro("how")),
    ]
    return {"response_type": "ephemeral", "text": summary(trend), "blocks": to_dicts(blocks)}


def home_line(month: Dora) -> str:
    return _macro(
        "home_line",
        deployments=month.deployments,
        per_day=_frequency(month),
        lead_time=_lead_time(month),
        fail_rate=_fail_rate(month),
        recovery=_recovery(month),
        rework=_rework(month),
    )


def parse_days(given: str) -> int | None:
    """`30d` -> 30; None for anything but 1 to 365 days."""
    found = re.fullmatch(r"\s*([0-9]{1,3})\s*d(ays?)?\s*", given.lower())
    days = int(found.group(1)) if found else 0
    return days if 1 <= days <= 365 else None


def chart_title(trend: Trend) -> str:
    period = trend.now.period
    return f"DORA metrics, {period.start:%d %b %Y} to {period.end:%d %b %Y} ({_days(trend)} days)"


def summary(trend: Trend) -> str:
    now = trend.now
    return (
        f"DORA metrics, the last {_days(trend)} days: {_count(now)}, "
        f"lead time {_lead_time(now)}, fail rate {_fail_rate(now)}, "
        f"recovery {_recovery(now)}, rework {_rework(now)}."
    )


def _days(trend: Trend) -> int:
    period = trend.now.period
    return round((period.end - period.start) / timedelta(days=1))


def bad_period(given: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": _macro("bad_period", given=given)}


def span(value: timedelta | None) -> str:
    """A duration as people say it, to two significant units at most: "3.2 days", "5 hours",
    "40 min"."""
    if value is None:
        return NOTHING
    hours = value.total_seconds() / 3600
    if hours >= 24:
        return f"{hours / 24:.1f} days"
    if hours >= 1:
        return f"{hours:.1f} hours"
    return f"{max(round(hours * 60), 1)} min"


def percent(value: float | None) -> str:
    return NOTHING if value is None else f"{value:.0%}"


# -- each metric, and what is said beside it --------------------------------------------------


def _frequency(d: Dora) -> str:
    if d.per_day == 0:
        return "none"
    if d.per_day >= 1:
        return f"{d.per_day:.1f} a day"
    return f"{d.per_day * 7:.1f} a week"


def _lead_time(d: Dora) -> str:
    return span(d.lead_time)


def _fail_rate(d: Dora) -> str:
    return percent(d.fail_rate)


def _recovery(d: Dora) -> str:
    return span(d.recovery_time)


def _rework(d: Dora) -> str:
    return percent(d.rework_rate)


def _count(d: Dora) -> str:
    return f"{d.deployments} deployment{'' if d.deployments == 1 else 's'}"


def _lead_note(d: Dora) -> str:
    return "median" if d.lead_time is not None else ""


def _fail_note(d: Dora) -> str:
    return f"{d.failures} of {d.deployments}" if d.deployments else ""


def _unrecovered(d: Dora) -> str:
    notes = [f"{d.unrecovered} not recovered yet"] if d.unrecovered else []
    if d.recovery_unknown:
        notes.append(f"{d.recovery_unknown} naming no service, recovery unknown")
    return "; ".join(notes)


def _emergencies(d: Dora) -> str:
    return (
        f"{d.emergencies} emergenc{'y' if d.emergencies == 1 else 'ies'}" if d.emergencies else ""
    )


@dataclass(frozen=True)
class _Metric:
    label: str
    shown: Callable[[Dora], str]
    value: Callable[[Dora], float | None]
    note: Callable[[Dora], str]
    higher_is_better: bool = False


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


METRICS = (
    _Metric("Deployment frequency", _frequency, lambda d: d.per_day, _count, True),
    _Metric("Change lead time", _lead_time, lambda d: _seconds(d.lead_time), _lead_note),
    _Metric("Change fail rate", _fail_rate, lambda d: d.fail_rate, _fail_note),
    _Metric(
        "Failed deployment recovery time",
        _recovery,
        lambda d: _seconds(d.recovery_time),
        _unrecovered,
    ),
    _Metric("Deployment rework rate", _rework, lambda d: d.rework_rate, _emergencies),
)


def _row(metric: _Metric, now: Dora, before: Dora) -> str:
    return _macro(
        "metric",
        label=metric.label,
        now=metric.shown(now),
        before=metric.shown(before),
        trend=_trend(metric.value(now), metric.value(before), metric.higher_is_better),
        note=metric.note(now),
    )


def _trend(now: float | None, before: float | None, higher_is_better: bool) -> str:
    """↗ or ↘ by the direction of the number, 🟢 or 🔴 by whether that is better."""
    if now is None or before is None or now == before:
        return "→"
    arrow = "↗" if now > before else "↘"
    better = (now > before) == higher_is_better
    return f"{'🟢' if better else '🔴'} {arrow}"


def _macro(name: str, **context: Any) -> str:
    return text.render_macro("metrics.j2", name, **context)
