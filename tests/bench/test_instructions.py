"""`python -m bench.instructions` reads callgrind's dumps and prints the ratio it measured.

The count itself runs each app under valgrind (minutes): it is run by hand, not here. What
is tested here is what turns callgrind's dumps into the table, on dumps as callgrind writes
them, and that the command refuses to start without valgrind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.instructions import Count, _instructions, main, report


def test_the_last_dump_of_the_process_is_read(tmp_path: Path) -> None:
    out = tmp_path / "callgrind-changebot"
    # Named so that the older would sort last: the dumps are told apart by when written.
    older, newer = Path(f"{out}.1234.2"), Path(f"{out}.1234.1")
    older.write_text("version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 5\n")
    newer.write_text("version: 1\ncreator: callgrind-3.19.0\nevents: Ir\ntotals: 177001531\n")
    stamp = time.time()
    os.utime(older, (stamp - 10, stamp - 10))
    assert _instructions(out) == 177_001_531

    newer.write_text("events: Ir\n")
    with pytest.raises(RuntimeError, match="no total"):
        _instructions(out)


def test_the_report_gives_each_app_per_answer_and_its_ratio() -> None:
    counts = [
        Count("baseline", 300_000.0, (77_000_000, 197_000_000)),
        Count("changebot", 855_000.0, (177_000_000, 519_000_000)),
    ]
    lines = report("SQLite", counts, 600).splitlines()

    headers = ["app", "instructions/answer", "ratio", "all", "at", "600", "/", "600"]
    assert lines[0].split() == [*headers, "at", "200", "at", "600"]
    assert lines[2].split()[-5:] == ["300000", "1.00", "328333", "77000000", "197000000"]
    assert lines[3].startswith("changebot (SQLite, 10k)")
    assert lines[3].split()[-5:] == ["855000", "2.85", "865000", "177000000", "519000000"]
    assert lines[-1] == (
        "instructions: 600 repeated gate questions at 50 pipelines; "
        "changebot 2.85x the baseline's instructions an answer"
    )


def test_it_says_so_when_valgrind_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2
    assert "valgrind is not installed (Debian: apt-get install valgrind)" in capsys.readouterr().err
