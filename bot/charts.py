"""Charts of DORA's metrics, drawn with matplotlib: a PNG for Slack (`/change metrics`) and an
SVG for the evidence report. Drawn with matplotlib's object API and the Agg renderer (no
screen, no global pyplot state), so charts can be drawn in worker threads."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import timedelta

from matplotlib.figure import Figure

from workflows.metrics import Dora, Trend

INK, MUTED, ACCENT, BAD = "#1d1c1d", "#616061", "#1264a3", "#e01e5a"


def _hours(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 3600


def _percent(value: float | None) -> float | None:
    return None if value is None else value * 100


#: Each panel: its title, the unit on its axis, the weekly value, and its colour.
PANELS: tuple[tuple[str, str, Callable[[Dora], float | None], str], ...] = (
    ("Deployments", "a week", lambda d: float(d.deployments), ACCENT),
    ("Lead time", "hours, median", lambda d: _hours(d.lead_time), ACCENT),
    ("Change fail rate", "%", lambda d: _percent(d.fail_rate), BAD),
    ("Recovery time", "hours, median", lambda d: _hours(d.recovery_time), BAD),
    ("Rework rate", "% emergencies", lambda d: _percent(d.rework_rate), BAD),
)


def trend_figure(trend: Trend, title: str) -> Figure:
    """Five small charts, one a metric, week by week across the period."""
    weeks: Sequence[Dora] = trend.weeks
    labels = [week.period.start.strftime("%d %b") for week in weeks]
    figure = Figure(figsize=(10, 6.2), dpi=100, layout="constrained")
    figure.suptitle(title, color=INK, fontsize=13, x=0.01, ha="left")
    axes = figure.subplots(2, 3).flatten()
    for ax, (name, unit, value, colour) in zip(axes, PANELS, strict=False):
        values = [value(week) for week in weeks]
        positions = list(range(len(weeks)))
        if name == "Deployments":
            ax.bar(positions, [v or 0 for v in values], color=colour, width=0.6)
        else:
            measured = [(x, v) for x, v in zip(positions, values, strict=True) if v is not None]
            if measured:
                xs, ys = zip(*measured, strict=True)
                ax.plot(xs, ys, color=colour, marker="o", linewidth=2)
            else:
                ax.text(
                    0.5, 0.5, "nothing to measure", ha="center", color=MUTED, transform=ax.transAxes
                )
        ax.set_title(name, color=INK, fontsize=11, loc="left")
        ax.set_ylabel(unit, color=MUTED, fontsize=9)
        ax.set_xticks(positions, labels, fontsize=8, rotation=45 if len(weeks) > 6 else 0)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#e8e8e8")
        ax.spines[["top", "right"]].set_visible(False)
    summary = axes[-1]
    summary.axis("off")
    now = trend.now
    summary.text(
        0,
        0.9,
        f"{_count(now.deployments, 'deployment')}\n{now.failures} failed or rolled back\n"
        f"{now.unrecovered} not recovered yet\n"
        + (f"{now.recovery_unknown} naming no service\n" if now.recovery_unknown else "")
        + f"{_count(now.emergencies, 'emergency', 'emergencies')}",
        va="top",
        color=INK,
        fontsize=11,
        linespacing=1.8,
    )
    return figure


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", facecolor="white")
    return buffer.getvalue()
