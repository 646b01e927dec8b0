"""The individual programme of the year: weekly blocks built from the call's module
templates, laid on the calendar from the start date and adjustable week by week.

A plan is a list of weeks ``{"week": n, "start": "YYYY-MM-DD", "module": id, "label":
text}``; weeks start on the fellowship's start day and follow each other by 7 days. The
default plan lays the modules in the call's order, each for its number of weeks; a plan
covers the whole year (the number of weeks between the start and the end, rounded up),
the last module filling any weeks the templates leave.

>>> from oncohybrid.fellowship.call import bundled_call
>>> plan = default_plan(bundled_call())
>>> len(plan), plan[0]["module"], plan[-1]["module"], plan[-1]["start"]
(53, 'equipment', 'research', '2022-09-30')
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.fellowship.call import Call

__all__ = ["default_plan", "weeks_in_year", "set_week", "by_month"]


def weeks_in_year(start: dt.date, end: dt.date) -> int:
    return math.ceil(((end - start).days + 1) / 7)


def default_plan(call: Call, start: dt.date | None = None) -> list[dict[str, Any]]:
    start = start or call.start
    n = weeks_in_year(start, call.end)
    order = [m for m in call.modules for _ in range(m.weeks)]
    if not order:
        raise InputError(f"call {call.id}: $.modules: the call has no module templates")
    order += [order[-1]] * max(0, n - len(order))
    return [{"week": k + 1, "start": (start + dt.timedelta(weeks=k)).isoformat(),
             "module": m.id, "label": m.label} for k, m in enumerate(order[:n])]


def set_week(call: Call, plan: list[dict[str, Any]], week: int, module: str
             ) -> list[dict[str, Any]]:
    """The plan with ``week`` (1-based) moved to another module template of the call."""
    templates = {m.id: m for m in call.modules}
    if module not in templates:
        raise InputError(f"module: {module!r} is not a module of call {call.id} "
                         f"({', '.join(templates)})")
    if not 1 <= week <= len(plan):
        raise InputError(f"week: {week} is outside the plan (1-{len(plan)})")
    out = [dict(w) for w in plan]
    out[week - 1].update(module=module, label=templates[module].label)
    return out


def by_month(plan: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Weeks grouped by the month their first day falls in (calendar view)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for w in plan:
        out.setdefault(w["start"][:7], []).append(w)
    return out
