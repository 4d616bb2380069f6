"""`changebot report`: the evidence report of a period, one self-contained HTML file (built
by bot/report.py, imported when the command runs: its charts need matplotlib, which every
other command can do without)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot import cli_digests
from bot.files import CannotWrite
from bot.settings import Settings
from workflows.calendar import midnight
from workflows.model import Window
from workflows.policy import load_policy

_UTC = ZoneInfo("UTC")
#: The days a report may cover: a period of at most ten years, within these.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9000, 12, 31)
LONGEST_PERIOD = timedelta(days=3653)


def add_commands(commands: Any) -> None:
    """`changebot report` (called from bot/cli.py's parser)."""
    report = commands.add_parser(
        "report",
        help="write the evidence report of a period: one HTML file for auditors",
        description=(
            "Write one self-contained HTML file with the period's changes by class and "
            "outcome, the audit trail's verification, the exceptions, DORA's metrics and every "
            "change's evidence. A change is in the period when it was requested in it or its "
            "outcome was recorded in it."
        ),
    )
    report.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="YYYY-MM-DD",
        help="the period's first day (UTC)",
    )
    report.add_argument(
        "--to",
        dest="end",
        required=True,
        metavar="YYYY-MM-DD",
        help="the period's last day, included (UTC)",
    )
    report.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="FILE",
        help="the HTML file to write (replaced whole, never left half-written)",
    )
    cli_digests.add_verify_options(report)
    report.set_defaults(run=_report)


def period_of(start: str, end: str) -> Window:
    """The days from `start` to `end` included, in UTC; Stop for a date that is not one or
    a period that ends before it starts."""
    first, last = _day("--from", start), _day("--to", end)
    if last < first:
        raise _stop(f"the period is reversed: --to {end} is before --from {start}.")
    if last - first > LONGEST_PERIOD:
        raise _stop(
            f"the period from {start} to {end} is longer than ten years: write one report for "
            "each year or quarter."
        )
    return Window(midnight(first, _UTC), midnight(last, _UTC, after=True))


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from bot import report
    from bot.cli import open_database

    period = period_of(args.start, args.end)
    # The digests and the key are read first: a bad one stops before anything is written.
    digests = cli_digests.digest_check(args)
    output = Path(args.output)
    policy = load_policy(settings.policy_path or None)
    engine = open_database(settings)
    try:
        written = report.write(engine, policy, period, output, datetime.now(UTC), digests)
    except CannotWrite as error:
        raise _stop(str(error)) from error
    except report.NothingToReport as error:
        raise _stop(
            f"no change was requested or deployed from {args.start} to {args.end}: "
            "nothing to report, so no file was written."
        ) from error
    v = written.verification
    print(
        f"Wrote the evidence of {written.summary.total} changes and "
        f"{len(written.exceptions)} exceptions to {output}.",
        file=sys.stderr,
    )
    if not v.intact:
        print(f"The audit trail is BROKEN: {v.sentence} The report says so.", file=sys.stderr)
    if v.digests is not None and not v.digests.ok:
        print(
            "The signed digests do NOT bear the trail out; the report lists why:", file=sys.stderr
        )
        for sentence in v.digests.sentences:
            print(f"  {sentence}", file=sys.stderr)
    return 0 if v.intact and (v.digests is None or v.digests.ok) else 1


def _day(option: str, given: str) -> date:
    try:
        day = date.fromisoformat(given.strip())
    except ValueError as error:
        raise _stop(f"{option} {given!r} is not a date such as 2026-01-31.") from error
    # The metrics compare the period with the one before it, and the trend runs week by week:
    # dates at the calendar's ends would run off it.
    if not FIRST_DAY <= day <= LAST_DAY:
        raise _stop(f"{option} {given} is out of range: a date from {FIRST_DAY} to {LAST_DAY}.")
    return day


def _stop(message: str) -> Exception:
    from bot.cli import Stop

    return Stop(message)
