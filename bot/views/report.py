"""The evidence report as HTML: one self-contained page an auditor opens without Slack or a
network (inline CSS, the charts as inline SVG, no fonts or scripts fetched).

Pure: read models in, text out, a chunk at a time (`render` is jinja's `generate()`), so the
evidence of every change streams to the file as it is read. The template escapes HTML
(autoescape on, in an Environment of its own: message prose in bot/text.py uses Slack's
escaping instead, and must not HTML-escape).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bot.charts import svg, trend_figure
from bot.views.metrics import METRICS, chart_title
from workflows.evidence import Flagged, Mark, Step, when
from workflows.metrics import Trend
from workflows.model import Change, Classification, Outcome, Stage, Window

#: The columns of the summary table: each outcome, then the changes without one.
NOT_DEPLOYED, CANCELLED = "Not deployed yet", "Cancelled"
COLUMNS = (*(o.label for o in Outcome), NOT_DEPLOYED, CANCELLED)


@dataclass(frozen=True)
class DigestResult:
    """What checking the trail against its signed digests found (`audit verify --digests`):
    whether it passed, and its sentences (a digest missing, a signature failing, the first
    event that differs)."""

    ok: bool
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Verification:
    """The audit trail's check when the report was written: the hash chain, and the signed
    digests when they were checked (None: not checked)."""

    intact: bool
    sentence: str
    digests: DigestResult | None = None


@dataclass
class Summary:
    """The period's changes counted by classification and outcome."""

    counts: Counter[tuple[Classification, str]] = field(default_factory=Counter)

    def add(self, change: Change) -> None:
        self.counts[change.classification, column(change)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def rows(self) -> list[tuple[str, list[int], int]]:
        found = []
        for classification in Classification:
            counts = [self.counts[classification, c] for c in COLUMNS]
            found.append((classification.label, counts, sum(counts)))
        return found

    def totals(self) -> list[int]:
        return [sum(self.counts[k, c] for k in Classification) for c in COLUMNS]


def column(change: Change) -> str:
    """Where a change counts in the summary: its outcome, or why it has none."""
    if change.outcome is not None:
        return change.outcome.label
    return CANCELLED if change.stage is Stage.CANCELLED else NOT_DEPLOYED


@dataclass(frozen=True)
class Evidence:
    """One change and its evidence, in the order of its events."""

    change: Change
    steps: Sequence[Step]
    marks: Sequence[Mark] = ()


@dataclass(frozen=True)
class Report:
    """Everything the report shows but the evidence of each change, which streams."""

    period: Window
    generated_at: datetime
    policy: str
    summary: Summary
    verification: Verification
    exceptions: Sequence[Flagged]
    trend: Trend


def articles(evidence: Iterable[Evidence]) -> Iterator[str]:
    """Each change's evidence as the page shows it (an <article>), one at a time."""
    article = environment().get_template("report_change.html.j2").module.article  # type: ignore[attr-defined]
    for one in evidence:
        yield str(article(one))


def render(report: Report, evidence: Iterable[str]) -> Iterator[str]:
    """The page, a chunk at a time; `evidence` is the changes' articles (`articles`), HTML
    already, read as the page reaches it."""
    template = environment().get_template("report.html.j2")
    now, before = report.trend.now, report.trend.before
    return template.generate(
        report=report,
        period=_period(report.period),
        columns=COLUMNS,
        metrics=[(m.label, m.shown(now), m.shown(before), m.note(now)) for m in METRICS],
        chart=chart(report.trend),
        evidence=(Markup(chunk) for chunk in evidence),
        by_mark=Counter(f.mark for f in report.exceptions),
        marks=list(Mark),
    )


def chart(trend: Trend) -> Markup:
    """The trend week by week, as an SVG element to put in the page (matplotlib's SVG,
    without its XML prolog and doctype)."""
    drawn = svg(trend_figure(trend, chart_title(trend)))
    return Markup(drawn[drawn.index("<svg") :])


def _period(period: Window) -> str:
    last_day = period.end - timedelta(days=1)
    return f"{period.start:%Y-%m-%d} to {last_day:%Y-%m-%d}"


def _slug(value: object) -> str:
    return str(value).lower().replace(" ", "-").replace("_", "-")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot", "templates"),
        autoescape=select_autoescape(["html.j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda moment: when(moment) if moment else ""
    env.filters["slug"] = _slug
    return env
