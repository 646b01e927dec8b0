"""Follow-up imaging ordered by a board: due date and state on a given day."""

from __future__ import annotations

import datetime as dt

from oncohybrid.errors import InputError

__all__ = ["MAX_FOLLOW_UP_DAYS", "follow_up_due", "follow_up_state"]

#: Longest follow-up interval accepted (10 years): anything longer is a typing error.
MAX_FOLLOW_UP_DAYS = 3650


def follow_up_due(decided_on: dt.date, days: int) -> dt.date:
    """Due date ``days`` after the meeting.

    >>> follow_up_due(dt.date(2026, 12, 7), 84)
    datetime.date(2027, 3, 1)
    """
    if isinstance(days, bool) or not isinstance(days, int):
        raise InputError(f"--follow-up-days {days!r}: must be a whole number of days")
    if not 1 <= days <= MAX_FOLLOW_UP_DAYS:
        raise InputError(f"--follow-up-days {days}: must be 1 … {MAX_FOLLOW_UP_DAYS}")
    return decided_on + dt.timedelta(days=days)


def follow_up_state(due: dt.date, today: dt.date, *, done: bool = False,
                    soon_days: int = 14) -> str:
    """``done``, ``overdue`` (past its date), ``due`` (within ``soon_days``) or ``planned``."""
    if done:
        return "done"
    if due < today:
        return "overdue"
    if (due - today).days <= soon_days:
        return "due"
    return "planned"
