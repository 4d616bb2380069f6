"""Durations written the way people write them: "48h", "30m", "2d", "1h30m", "10s"."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_PART = re.compile(r"(\d+)\s*([wdhms])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[wdhms]\s*)+$")
#: Longer than any cadence, window or review period; a date this far on is still a date.
LONGEST = timedelta(days=3653)


def parse_duration(text: str) -> timedelta:
    """Turn "2d", "48h", "1h30m" or "10s" into a timedelta; refuse anything else.

    Raises ValueError with a sentence a person can act on.
    """
    lowered = text.strip().lower()
    if not _WHOLE.match(lowered):
        raise ValueError(
            f'"{text}" is not a duration: write a number and a unit (w, d, h, m, s), '
            'for example "48h", "30m", "2d" or "1h30m"'
        )
    total = timedelta()
    try:
        for amount, unit in _PART.findall(lowered):
            total += timedelta(**{_UNITS[unit]: int(amount)})
    except OverflowError:
        raise ValueError(f'"{text}" is too long a duration') from None
    if total <= timedelta():
        raise ValueError(f'"{text}" is zero: a duration must be longer than that')
    if total > LONGEST:
        raise ValueError(f'"{text}" is longer than any the policy needs (at most 10 years)')
    return total


def format_duration(delta: timedelta) -> str:
    """The shortest human form of a duration: 172800 s -> "2d", 5400 s -> "1h30m"."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError('write a duration as text, for example "48h"')
    return parse_duration(value)


#: A policy field holding a duration written as text.
Duration = Annotated[timedelta, BeforeValidator(_duration)]
