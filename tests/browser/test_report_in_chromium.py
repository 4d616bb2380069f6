"""The evidence report opened in a real browser: headless Chromium (the operating system's
package) loads the file with no network, the tests read the DOM it built and what it logged,
and its screenshot is kept under artifacts/ for CI to publish."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot import report
from tests.integration.changes import POLICY, requested_and_closed
from tests.integration.report_page import read_page
from tests.integration.test_report import SECTIONS, make_changes
from tests.unit.fakes import FakeClock
from workflows.model import Window

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
NOVEMBER = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
ONLY_ON_SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Opened:
    dom: str
    #: What the page logged to the browser's console (errors and uncaught exceptions).
    console: list[str]


def open_in_chromium(chromium: str, page: Path, *extra: str) -> Opened:
    finished = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    console = [line for line in finished.stderr.splitlines() if ":CONSOLE" in line]
    return Opened(finished.stdout, console)


def test_the_console_detector_catches_a_script_error(chromium: str, tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text(
        "<!DOCTYPE html><html><body><h1>Control</h1>"
        "<script>noSuchFunction();</script></body></html>",
        encoding="utf-8",
    )

    opened = open_in_chromium(chromium, control, "--dump-dom")

    assert "<h1>Control</h1>" in opened.dom
    assert any("Uncaught ReferenceError: noSuchFunction" in line for line in opened.console)


@ONLY_ON_SQLITE
def test_the_report_opens_in_chromium_with_every_section_and_chart_and_no_errors(
    chromium: str, engine: Engine, tmp_path: Path
) -> None:
    clock = FakeClock()
    refs = make_changes(engine, clock)
    for n in range(3):
        requested_and_closed(engine, clock, f"Routine change {n}")
    output = tmp_path / "report.html"
    report.write(engine, POLICY, NOVEMBER, output, clock.now())

    opened = open_in_chromium(chromium, output, "--dump-dom")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    open_in_chromium(chromium, output, f"--screenshot={screenshot}", "--window-size=1280,2400")

    assert opened.console == []
    page = read_page(opened.dom)
    assert page.headings == SECTIONS
    assert page.svgs.get("metrics", 0) >= 1
    assert len(page.steps) == 6
    closed = page.steps[refs["closed"]]
    assert any("UAPPROVER approved it under the Normal rule" in step for step in closed)
    assert any(link == f"#{refs['emergency']}" for _, link, _ in page.exceptions)
    assert screenshot.stat().st_size > 50_000
