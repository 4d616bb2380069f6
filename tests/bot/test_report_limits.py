"""`changebot report`'s limits, before anything is read or written: a period within the
calendar and at most ten years long; and a disk that fills while the report is written leaves
no file and says so in a sentence."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bot.cli import Stop
from bot.cli_report import period_of
from bot.files import CannotWrite, replacing


@pytest.mark.parametrize(
    ("start", "end", "said"),
    [
        ("0001-01-01", "2026-12-31", "--from 0001-01-01 is out of range: a date from 1970-01-01"),
        ("2026-01-01", "9999-12-31", "--to 9999-12-31 is out of range"),
        ("2000-01-01", "2026-12-31", "is longer than ten years: write one report for each year"),
    ],
)
def test_a_period_off_the_calendar_or_of_decades_is_refused(
    start: str, end: str, said: str
) -> None:
    with pytest.raises(Stop) as refused:
        period_of(start, end)

    assert said in str(refused.value)


def test_ten_years_is_a_period() -> None:
    period = period_of("2016-01-01", "2025-12-31")

    assert (period.end - period.start).days == 3653


def test_a_disk_that_fills_while_the_report_is_written_leaves_no_file(tmp_path: Path) -> None:
    output = tmp_path / "report.html"

    with pytest.raises(CannotWrite) as refused, replacing(output) as out:
        out.write("<html>")
        raise OSError(errno.ENOSPC, "No space left on device")

    assert str(refused.value) == f"cannot write {output}: No space left on device."
    assert list(tmp_path.iterdir()) == []


def test_an_export_to_a_device_writes_to_it_and_leaves_it_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so opening it to write does not wait
    try:
        with replacing(fifo) as out:
            out.write("one line\n")
        assert os.read(reader, 100) == b"one line\n"
    finally:
        os.close(reader)

    assert fifo.is_fifo() and [p.name for p in tmp_path.iterdir()] == ["pipe"]
