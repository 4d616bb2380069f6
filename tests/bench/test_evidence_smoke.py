"""bench.evidence runs end to end at a tiny size: it seeds a valid chain and its signed
digests, times the export, the verifications (the digests must bear the trail out, or the
run fails) and the report as subprocesses, and prints their table and verdicts."""

from __future__ import annotations

import pytest

from bench import evidence


def test_the_evidence_benchmark_runs_and_prints_its_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert evidence.main(["--sizes", "20:150", "--engines", "sqlite"]) == 0

    shown = capsys.readouterr().out
    assert "audit export --format jsonl" in shown
    assert "report (the whole year)" in shown
    assert "audit verify --digests" in shown and "8,760 digests" in shown
    assert "sqlite 150 events: report" in shown
    assert "sqlite 150 events: audit verify --digests" in shown
