"""A session's agenda: start and end time of each case.

Cases follow each other from the session's start time; a case takes its own planned
minutes or the board's default (the CoC and the UK NHS MDT guidance leave the length to
the board; 30–60 min of preparation per case is the burden the agenda helps plan for,
see docs/boards.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from oncohybrid.errors import InputError

__all__ = ["AgendaSlot", "agenda"]


@dataclass(frozen=True)
class AgendaSlot:
    """One case's place in the meeting."""

    position: int
    start: str
    end: str
    minutes: int


def agenda(start_hhmm: str, minutes: Sequence[int | None], *, default_minutes: int = 10
           ) -> list[AgendaSlot]:
    """Consecutive slots from ``start_hhmm``, one per case, in agenda order.

    >>> [s.start for s in agenda("08:00", [None, 15, None], default_minutes=10)]
    ['08:00', '08:10', '08:25']
    """
    if default_minutes < 1:
        raise InputError(f"minutes per case {default_minutes}: must be ≥ 1")
    try:
        t = dt.datetime.strptime(start_hhmm, "%H:%M")
    except ValueError:
        raise InputError(f"start time {start_hhmm!r}: expected HH:MM") from None
    out: list[AgendaSlot] = []
    for k, m in enumerate(minutes, start=1):
        length = default_minutes if m is None else int(m)
        if length < 1:
            raise InputError(f"case {k}: {length} minutes; must be ≥ 1")
        end = t + dt.timedelta(minutes=length)
        # Past midnight the clock wraps; a board running that late says so in its times.
        out.append(AgendaSlot(k, t.strftime("%H:%M"), end.strftime("%H:%M"), length))
        t = end
    return out
