"""A board's weekly schedule → the dates of its sessions.

A board meets on one ISO weekday (1 = Monday … 7 = Sunday, ISO 8601 §4.1.2.2) every
``every_weeks`` weeks, counted from its first meeting on or after the start date;
holidays or cancelled weeks are passed as ``skip``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from oncohybrid.errors import InputError

__all__ = ["WEEKDAYS", "parse_weekday", "parse_hhmm", "session_dates"]

#: English weekday names and their ISO numbers.
WEEKDAYS = {"monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5,
            "saturday": 6, "sunday": 7}


def parse_weekday(value: str | int) -> int:
    """ISO weekday number of ``"tuesday"``, ``"tue"``, ``"2"`` or ``2``.

    >>> parse_weekday("Thu")
    4
    """
    if isinstance(value, int) or str(value).strip().isdigit():
        n = int(value)
        if 1 <= n <= 7:
            return n
        raise InputError(f"weekday {value!r}: must be 1 (Monday) … 7 (Sunday)")
    text = str(value).strip().lower()
    hits = [n for name, n in WEEKDAYS.items() if len(text) >= 3 and name.startswith(text)]
    if len(hits) != 1:
        raise InputError(f"weekday {value!r}: not a weekday name (monday … sunday)")
    return hits[0]


def parse_hhmm(value: str) -> str:
    """``"8:5"`` is refused; ``"08:30"`` → ``"08:30"`` (24-hour clock)."""
    text = str(value).strip()
    try:
        t = dt.datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise InputError(f"time {value!r}: expected HH:MM (24-hour clock)") from None
    if len(text) != 5:
        raise InputError(f"time {value!r}: expected HH:MM with two digits each")
    return t.strftime("%H:%M")


def session_dates(weekday: int, start: dt.date, end: dt.date, *, every_weeks: int = 1,
                  skip: Iterable[dt.date] = ()) -> list[dt.date]:
    """Meeting dates on ``weekday`` from ``start`` to ``end`` (both included).

    >>> session_dates(2, dt.date(2026, 12, 1), dt.date(2026, 12, 31), every_weeks=2)
    [datetime.date(2026, 12, 1), datetime.date(2026, 12, 15), datetime.date(2026, 12, 29)]
    """
    if not 1 <= weekday <= 7:
        raise InputError(f"weekday {weekday}: must be 1 (Monday) … 7 (Sunday)")
    if every_weeks < 1:
        raise InputError(f"every_weeks {every_weeks}: must be ≥ 1")
    if end < start:
        raise InputError(f"schedule end {end} is before its start {start}")
    skipped = set(skip)
    first = start + dt.timedelta(days=(weekday - start.isoweekday()) % 7)
    out: list[dt.date] = []
    day = first
    while day <= end:
        if day not in skipped:
            out.append(day)
        day += dt.timedelta(weeks=every_weeks)
    return out
