"""The preparation checklist of one case: what must be ready before the meeting.

Four items (issue #15; the preparation steps MDT reviews name as the main friction,
anchors §6): imaging reviewed, response assessed, key images chosen, prior decision
recalled. The record answers some of them by itself: "response assessed" is done when a
stored assessment covers the latest imaging visit, and "prior decision recalled" is not
applicable to a patient the board has not discussed before. The others need a
physician's tick; a tick cannot make an item done whose facts are missing (no imaging
→ "imaging reviewed" stays open whatever is ticked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CHECKLIST", "MANUAL_ITEMS", "CaseFacts", "ChecklistItem", "checklist", "is_ready"]

#: (key, label) in the order shown.
CHECKLIST = (
    ("imaging_reviewed", "Imaging reviewed"),
    ("response_assessed", "Response assessed"),
    ("key_images", "Key images chosen"),
    ("prior_decision", "Prior decision recalled"),
)
#: Items a user ticks (the others follow from the record, or need a tick only sometimes).
MANUAL_ITEMS = frozenset({"imaging_reviewed", "key_images", "prior_decision"})


@dataclass(frozen=True)
class CaseFacts:
    """What the record says about a case's patient."""

    imaging_dates: tuple[dt.date, ...] = ()
    #: Criterion → the latest date its stored assessment covers.
    assessed_until: Mapping[str, dt.date | None] = field(default_factory=dict)
    prior_decisions: int = 0
    #: Manual ticks: item key → who ticked it.
    ticks: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    label: str
    #: done | open | n/a
    state: str
    note: str


def _assessed(facts: CaseFacts) -> ChecklistItem:
    key, label = CHECKLIST[1]
    if not facts.imaging_dates:
        return ChecklistItem(key, label, "open", "no imaging stored")
    latest = max(facts.imaging_dates)
    covering = sorted(c for c, d in facts.assessed_until.items() if d is not None and d >= latest)
    if covering:
        return ChecklistItem(key, label, "done", f"{', '.join(covering)} up to {latest}")
    if facts.assessed_until:
        return ChecklistItem(key, label, "open",
                             f"the stored assessment does not cover the latest visit {latest}")
    return ChecklistItem(key, label, "open", "not assessed yet")


def checklist(facts: CaseFacts) -> list[ChecklistItem]:
    """The four items with their state.

    >>> [i.state for i in checklist(CaseFacts())]
    ['open', 'open', 'open', 'n/a']
    """
    out: list[ChecklistItem] = []
    for key, label in CHECKLIST:
        who = facts.ticks.get(key)
        if key == "response_assessed":
            out.append(_assessed(facts))
        elif key == "prior_decision" and facts.prior_decisions == 0:
            out.append(ChecklistItem(key, label, "n/a", "first discussion of this patient"))
        elif key in ("imaging_reviewed", "key_images") and not facts.imaging_dates:
            out.append(ChecklistItem(key, label, "open", "no imaging stored"))
        elif who:
            out.append(ChecklistItem(key, label, "done", f"by {who}"))
        else:
            note = (f"{facts.prior_decisions} earlier decision(s) to recall"
                    if key == "prior_decision" else "not ticked")
            out.append(ChecklistItem(key, label, "open", note))
    return out


def is_ready(items: list[ChecklistItem]) -> bool:
    """True when no item is open."""
    return all(i.state != "open" for i in items)
