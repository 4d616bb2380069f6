"""The audit trail written out for auditors: CSV (safe to open in a spreadsheet) or JSON lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from workflows.audit import ChainedEntry, canonical_details, canonical_time

COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "ref",
    "from_stage",
    "to_stage",
    "details",
    "prev_hash",
    "hash",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _record(event: ChainedEntry) -> dict[str, object]:
    e = event.entry
    return {
        "seq": event.seq,
        "at": canonical_time(e.at),
        "actor": e.actor,
        "action": e.action,
        "ref": e.ref,
        "from_stage": e.from_stage,
        "to_stage": e.to_stage,
        "details": e.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def write_jsonl(events: Iterable[ChainedEntry], out: TextIO) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(_record(event), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(events: Iterable[ChainedEntry], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for event in events:
        record = _record(event)
        record["details"] = canonical_details(event.entry.details)
        writer.writerow([spreadsheet_safe(str(record[column])) for column in COLUMNS])
        count += 1
    return count
