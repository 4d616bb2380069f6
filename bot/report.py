"""The evidence report built from the database, in one pass over the period's changes and
their audit events, a batch at a time: the changes are counted, their exceptions found and
their evidence rendered to a spool as they are read, while a second process verifies the
chain (and the digests) beside it; then DORA's metrics are measured and the page written
(bot/views/report.py renders it) with the spool read back where the evidence goes. `write`
puts the page in a temporary file beside the output and renames it over the output at the
end: a failure leaves nothing at the output path, and an earlier report there stays whole.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from bot import queries
from bot.cli_digests import DigestCheck, walk_trail
from bot.files import replacing
from bot.views.report import (
    DigestResult,
    Evidence,
    Report,
    Summary,
    Verification,
    articles,
    render,
)
from storage.db import make_engine
from storage.reports import changes_in, events_of, events_with_ref
from storage.uow import read_session
from workflows.audit import AuditEntry
from workflows.evidence import exceptions, freeze_refusal, steps
from workflows.model import Change, Window
from workflows.policy import Policy
from workflows.process import FREEZE_REF

#: Database names a second process cannot open.
MEMORY = (None, "", ":memory:")

#: Changes read at a time, with their events.
BATCH = 500


class NothingToReport(Exception):
    """No change was requested or deployed in the period."""


def write(
    engine: Engine,
    policy: Policy,
    period: Window,
    output: Path,
    now: datetime,
    digests: DigestCheck | None = None,
) -> Report:
    """Write the report of `period` to `output`, whole or not at all. One pass over the
    changes and their events: each change's evidence is written to a spool beside the output
    as it is read (the page shows it last), while the counts and exceptions that come first
    on the page are gathered; then the page is written, the spool read back into it."""
    with (
        replacing(output) as out,
        tempfile.TemporaryFile("w+", encoding="utf-8", dir=output.parent) as spool,
        _verifying(engine, digests) as verified,
    ):
        summary, found = Summary(), []
        as_of = min(now, period.end)
        with read_session(engine) as session:
            for batch in changes_in(session, period, BATCH):
                events = events_of(session, [c.ref for c in batch])
                for change in batch:
                    mine = events.pop(change.ref)
                    summary.add(change)
                    found.extend(exceptions(change, mine, policy, as_of))
                    spool.writelines(articles([_evidence(change, mine, policy)]))
            if summary.total == 0:
                raise NothingToReport()
            found.extend(freeze_refusal(e) for e in events_with_ref(session, FREEZE_REF, period))
            trend = queries.metrics(session, period)
        found.sort(key=lambda f: (f.mark.value, f.at))
        report = Report(
            period=period,
            generated_at=now,
            policy=policy.policy.name,
            summary=summary,
            verification=verified(),
            exceptions=tuple(found),
            trend=trend,
        )
        spool.seek(0)
        for chunk in render(report, _spooled(spool)):
            out.write(chunk)
    return report


def _spooled(spool: IO[str]) -> Iterator[str]:
    while chunk := spool.read(1 << 16):
        yield chunk


def _evidence(change: Change, events: list[AuditEntry], policy: Policy) -> Evidence:
    shown = tuple(steps(change, events, policy))
    marks = tuple(dict.fromkeys(s.mark for s in shown if s.mark is not None))
    return Evidence(change, shown, marks)


def verification(engine: Engine, digests: DigestCheck | None = None) -> Verification:
    """The hash chain checked as `changebot audit verify` checks it, and against the signed
    digests in the same pass when they are given (`--digests`)."""
    walked = walk_trail(engine, digests)
    result = None
    if digests is not None:
        borne_out, problems = digests.outcome(complete=walked.broken is None)
        result = DigestResult(not problems, (*borne_out, *problems))
    if (broken := walked.broken) is not None:
        sentence = (
            f"{broken}. Events from #{broken.seq} on cannot be trusted; checked {walked.count}."
        )
        return Verification(False, sentence, result)
    return Verification(True, f"{walked.count} events checked{walked.ending}.", result)


class _verifying:
    """The chain's verification, started on entry and asked for by calling what `with`
    gives. It reads the whole trail and the report reads the period's changes: on Linux it
    runs in a forked process of its own, so the two use two cores and the report takes about
    as long as the longer of them. It verifies when asked, in this process, on another
    system, for an in-memory database (which a second process cannot open), and in a process
    running other threads (a test runner's, say): a fork copies every lock as it stands, one
    another thread holds included, and the child would wait on it forever."""

    def __init__(self, engine: Engine, digests: DigestCheck | None) -> None:
        self.engine, self.digests = engine, digests
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Callable[[], Verification]:
        alone = threading.active_count() == 1
        if not alone or sys.platform != "linux" or self.engine.url.database in MEMORY:
            return lambda: verification(self.engine, self.digests)
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        where = self.engine.url.render_as_string(hide_password=False)
        d = self.digests
        asked = (d.directory, d.public_key) if d is not None else None
        future = self.pool.submit(_verify_apart, where, asked)
        return future.result

    def __exit__(self, *failed: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _verify_apart(url: str, digests: tuple[Path, Path] | None) -> Verification:
    """`verification` in the forked process: its own engine and its own reading of the
    digests (the report's process read them first, to stop early on a bad key)."""
    engine = make_engine(url)
    try:
        return verification(engine, DigestCheck(*digests) if digests else None)
    finally:
        engine.dispose()
