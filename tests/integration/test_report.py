"""`changebot report`: the evidence report of a period, written by the real command from
changes made through the real use cases, on SQLite and PostgreSQL; and what bad input gets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.uow import SqlUnitOfWork
from tests.integration.changes import (
    APPROVER,
    POLICY,
    REQUESTER,
    WINDOW,
    normal_details,
    request,
    requested_and_closed,
    review_test_and_approve,
)
from tests.integration.command import Changebot
from tests.integration.report_page import Page, read_page
from tests.unit.builders import a_post_change_review
from tests.unit.fakes import FakeClock
from workflows import emergency, followup, process
from workflows.model import Outcome, Window

REVIEW = a_post_change_review(
    description="Rolled release 42 back.",
    rollback="Redeploy release 42.",
    test_evidence="Checkout smoke tests green after.",
)
SECTIONS = [
    "Changes by class and outcome",
    "Audit trail verification",
    "Exceptions",
    "DORA metrics",
    "Evidence for each change",
]


def make_changes(engine: Engine, clock: FakeClock) -> dict[str, str]:
    """A deployed Normal change, an emergency that broke glass, was rolled back and reviewed
    late, and a Normal change whose approval an edit withdrew. Their refs by role."""
    uow = SqlUnitOfWork(engine)
    closed = requested_and_closed(engine, clock, "Upgrade the <payments> database & more")
    urgent = emergency.declare_emergency(
        uow, clock, POLICY, REQUESTER, "Checkout is down: roll back release 42"
    )
    clock.advance(minutes=20)
    emergency.break_glass(uow, clock, POLICY, urgent.number, REQUESTER, reason="Checkout is down")
    process.start_deployment(uow, clock, POLICY, urgent.number, REQUESTER)
    followup.record_outcome(
        uow, clock, POLICY, urgent.number, REQUESTER, outcome=Outcome.ROLLED_BACK, notes="Worse."
    )
    clock.advance(hours=50)
    followup.submit_post_change_review(uow, clock, POLICY, urgent.number, REQUESTER, REVIEW)
    edited = request(engine, clock, "Resize the cache")
    review_test_and_approve(engine, clock, edited.number)
    later = Window(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    process.edit(
        uow,
        clock,
        POLICY,
        edited.number,
        REQUESTER,
        normal_details("Resize the cache", window=later),
    )
    return {"closed": closed.ref, "emergency": urgent.ref, "edited": edited.ref}


def report(changebot: Changebot, url: str, output: Path, *period: str) -> tuple[int, str]:
    finished = changebot(
        "report", "--from", period[0], "--to", period[1], "--output", str(output),
        env={"DATABASE_URL": url},
    )  # fmt: skip
    return finished.code, finished.stderr


def test_the_report_shows_the_periods_changes_exceptions_metrics_and_evidence(
    engine: Engine, database_url: str, changebot: Changebot, clock: FakeClock, tmp_path: Path
) -> None:
    refs = make_changes(engine, clock)
    output = tmp_path / "report.html"

    code, stderr = report(changebot, database_url, output, "2026-11-01", "2026-11-30")

    assert code == 0, stderr
    assert "Wrote the evidence of 3 changes" in stderr
    html = output.read_text(encoding="utf-8")
    page = read_page(html)
    assert page.headings == SECTIONS
    assert {"summary", "verification", "exceptions", "metrics", "evidence"} <= set(page.ids)
    assert page.svgs.get("metrics", 0) >= 1
    assert "<script" not in html and "http://" not in html.split("</style>")[0]
    # A title is shown as written, never as markup.
    assert "Upgrade the &lt;payments&gt; database &amp; more" in html
    summary = {row[0]: row[1:] for row in page.summary}
    assert summary["Normal"][-1] == "2" and summary["Emergency"][3] == "1"  # rolled back
    assert summary["All"][-1] == "3"
    assert "Hash chain: intact." in page.text
    assert "Signed digests: not checked (no --digests given)." in page.text
    assert_exceptions_link_to_their_changes(page, refs)
    closed = page.steps[refs["closed"]]
    assert any(
        "UAPPROVER approved it under the Normal rule: 1 approval needed" in s for s in closed
    )
    assert [s.split(" | ")[1] for s in closed][:5] == [
        "Request", "Request", "Review", "Test", "Approval",
    ]  # fmt: skip
    assert any("recorded the outcome: Successful" in s for s in closed)
    assert any("Post-change review" in s and "late" in s for s in page.steps[refs["emergency"]])


def assert_exceptions_link_to_their_changes(page: Page, refs: dict[str, str]) -> None:
    found = {(badge, link) for badge, link, _ in page.exceptions}
    assert ("Emergency", f"#{refs['emergency']}") in found
    assert ("Break-glass", f"#{refs['emergency']}") in found
    assert ("Review late", f"#{refs['emergency']}") in found
    assert ("Approvals withdrawn", f"#{refs['edited']}") in found
    assert all(link.removeprefix("#") in page.ids for _, link, _ in page.exceptions if link)
    withdrawn = next(s for b, _, s in page.exceptions if b == "Approvals withdrawn")
    assert withdrawn == (
        f"The approvals of {APPROVER.user_id} were withdrawn because the window changed: it "
        "needed approving again."
    )


def test_a_change_is_in_the_period_it_was_requested_or_deployed_in(
    engine: Engine, database_url: str, changebot: Changebot, clock: FakeClock, tmp_path: Path
) -> None:
    requested = request(engine, clock, "Requested in November, deployed in December")
    review_test_and_approve(engine, clock, requested.number)
    clock.advance(days=10)  # 2026-12-03
    uow = SqlUnitOfWork(engine)
    process.start_deployment(uow, clock, POLICY, requested.number, REQUESTER)
    followup.record_outcome(
        uow, clock, POLICY, requested.number, REQUESTER, outcome=Outcome.SUCCESSFUL
    )
    tomorrow = Window(clock.now() + timedelta(days=1), clock.now() + timedelta(days=1, hours=1))
    details = normal_details("Requested in December", window=tomorrow)
    december = process.request_change(uow, clock, POLICY, REQUESTER, details).change

    for period, expected in [
        (("2026-11-01", "2026-11-30"), {requested.ref}),
        (("2026-12-01", "2026-12-31"), {requested.ref, december.ref}),
        (("2026-12-03", "2026-12-03"), {requested.ref, december.ref}),  # one day, included
    ]:
        output = tmp_path / f"{period[0]}.html"
        code, stderr = report(changebot, database_url, output, *period)
        assert code == 0, stderr
        assert set(read_page(output.read_text(encoding="utf-8")).steps) == expected


@pytest.mark.parametrize(
    ("start", "end", "said"),
    [
        ("2026-11-30", "2026-11-01", "the period is reversed: --to 2026-11-01 is before --from"),
        ("2026-02-30", "2026-03-01", "--from '2026-02-30' is not a date such as 2026-01-31."),
        ("2026-11-01", "next week", "--to 'next week' is not a date such as 2026-01-31."),
        ("2025-01-01", "2025-01-31", "no change was requested or deployed from 2025-01-01 to "),
    ],
)
def test_a_bad_period_is_one_sentence_and_leaves_the_earlier_report_whole(
    engine: Engine,
    database_url: str,
    changebot: Changebot,
    clock: FakeClock,
    tmp_path: Path,
    start: str,
    end: str,
    said: str,
) -> None:
    request(engine, clock, "Something to report")
    out = tmp_path / "out"
    out.mkdir()
    output = out / "report.html"
    output.write_text("the report written last month", encoding="utf-8")

    code, stderr = report(changebot, database_url, output, start, end)

    assert code == 2
    assert stderr.startswith("changebot: ") and said in stderr and stderr.count("\n") == 1
    assert "Traceback" not in stderr
    assert output.read_text(encoding="utf-8") == "the report written last month"
    assert [p.name for p in out.iterdir()] == ["report.html"]


def test_an_output_that_cannot_be_written_leaves_no_file(
    engine: Engine, database_url: str, changebot: Changebot, clock: FakeClock, tmp_path: Path
) -> None:
    request(engine, clock, "Something to report")
    out = tmp_path / "out"
    (out / "a-directory.html").mkdir(parents=True)
    november = ("2026-11-01", "2026-11-30")

    missing = report(changebot, database_url, out / "no" / "r.html", *november)
    taken = report(changebot, database_url, out / "a-directory.html", *november)

    assert missing == (2, f"changebot: cannot write {out}/no/r.html: No such file or directory.\n")
    code, stderr = taken
    assert code == 2 and stderr.startswith(f"changebot: cannot write {out}/a-directory.html: ")
    assert "Traceback" not in stderr and stderr.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == ["a-directory.html"]
