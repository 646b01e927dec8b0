"""Protocol examination schedules and the matching of a patient's exams to them.

A protocol lists its imaging timepoints (baseline, interim, end of treatment,
follow-up, …), each a day offset from the patient's anchor with a window in days before
and after, and the exam it asks for (modality, optionally the tracer family). The anchor
is the baseline exam itself (``anchor: baseline``, the first timepoint at day 0 matched to
the first fitting exam) or a date from the study's clinical data (``anchor:
treatment_start``), as trial protocols state their imaging windows (e.g. "PET/CT after
2 cycles, day 42 ± 7"; RECIST 1.1 §3.3.1 asks for baseline imaging "no more than 4 weeks
before the beginning of the treatment").

Statuses, for each timepoint of one patient on a given day (``today``):

- ``done``: a fitting exam inside the window (the one nearest the target day);
- ``out of window``: no fitting exam inside the window, but one nearer to this
  timepoint's target than to any other timepoint's (the deviation in days is given);
- ``due``: nothing yet and the window has not closed;
- ``overdue``: the window closed less than ``grace_days`` ago (default 30) and no later
  timepoint has its exam;
- ``missing``: the window closed longer ago, or a later timepoint's exam was already done.

Each exam is used for one timepoint at most.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oncohybrid.errors import InputError

__all__ = ["ProtocolTimepoint", "Protocol", "Exam", "TimepointStatus", "match_exams",
           "STATUSES", "parse_protocol"]

STATUSES = ("done", "due", "overdue", "missing", "out of window")


@dataclass(frozen=True)
class ProtocolTimepoint:
    """One scheduled examination."""

    name: str
    day: int
    before: int = 0
    after: int = 0
    modality: str = "PT"  # PT, CT, MR, NM (the DICOM modality of a series of the study)
    tracer: str | None = None  # tracer family (FDG, PSMA, SSTR, …) for PT/NM

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "day": self.day, "before": self.before,
                "after": self.after, "modality": self.modality, "tracer": self.tracer}


@dataclass(frozen=True)
class Protocol:
    """The schedule of a study's examinations."""

    timepoints: tuple[ProtocolTimepoint, ...]
    anchor: str = "baseline"
    grace_days: int = 30

    def to_json(self) -> dict[str, Any]:
        return {"anchor": self.anchor, "grace_days": self.grace_days,
                "timepoints": [t.to_json() for t in self.timepoints]}


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool):
        raise InputError(f"{where}: a whole number of days is expected, got {v!r}")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: a whole number of days is expected, got {v!r}") from None
    if float(v) != n:
        raise InputError(f"{where}: a whole number of days is expected, got {v!r}")
    return n


def parse_protocol(doc: Mapping[str, Any], source: str = "protocol") -> Protocol:
    """Validate a protocol mapping (from YAML or JSON); errors name the timepoint/key.

    >>> p = parse_protocol({"timepoints": [{"name": "baseline", "day": 0, "before": 28},
    ...                                    {"name": "interim", "day": 42, "before": 7,
    ...                                     "after": 7}]})
    >>> [t.name for t in p.timepoints]
    ['baseline', 'interim']
    """
    if not isinstance(doc, Mapping):
        raise InputError(f"{source}: a mapping with 'timepoints' is expected")
    unknown = set(doc) - {"anchor", "grace_days", "timepoints", "title"}
    if unknown:
        raise InputError(f"{source}: unknown key {sorted(unknown)[0]!r}")
    items = doc.get("timepoints")
    if not isinstance(items, list) or not items:
        raise InputError(f"{source}: 'timepoints' must be a non-empty list")
    tps: list[ProtocolTimepoint] = []
    for i, item in enumerate(items):
        where = f"{source}: timepoints[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(f"{where}: a mapping is expected")
        bad = set(item) - {"name", "day", "before", "after", "modality", "tracer"}
        if bad:
            raise InputError(f"{where}: unknown key {sorted(bad)[0]!r}")
        name = str(item.get("name", "")).strip()
        if not name:
            raise InputError(f"{where}: 'name' is required")
        if "day" not in item:
            raise InputError(f"{where} ({name}): 'day' is required")
        day = _int(item["day"], f"{where} ({name}).day")
        before = _int(item.get("before", 0), f"{where} ({name}).before")
        after = _int(item.get("after", 0), f"{where} ({name}).after")
        if before < 0 or after < 0:
            raise InputError(f"{where} ({name}): window days must be ≥ 0")
        modality = str(item.get("modality", "PT")).strip().upper()
        if modality not in ("PT", "CT", "MR", "NM", "US", "MG"):
            raise InputError(f"{where} ({name}): modality {modality!r} is not PT, CT, MR, NM, "
                             "US or MG")
        tracer = item.get("tracer")
        tps.append(ProtocolTimepoint(name, day, before, after, modality,
                                     str(tracer).strip() if tracer else None))
    names = [t.name for t in tps]
    if len(set(names)) != len(names):
        raise InputError(f"{source}: timepoint names must be unique")
    if any(b.day <= a.day for a, b in zip(tps, tps[1:], strict=False)):
        raise InputError(f"{source}: timepoint days must increase")
    anchor = str(doc.get("anchor", "baseline")).strip() or "baseline"
    if anchor == "baseline" and tps[0].day != 0:
        raise InputError(f"{source}: with anchor 'baseline' the first timepoint must be day 0")
    grace = _int(doc.get("grace_days", 30), f"{source}: grace_days")
    if grace < 0:
        raise InputError(f"{source}: grace_days must be ≥ 0")
    return Protocol(tuple(tps), anchor, grace)


@dataclass(frozen=True)
class Exam:
    """A stored imaging study: its date, the modalities of its series and tracer families."""

    key: Any
    date: dt.date
    modalities: frozenset[str]
    tracers: frozenset[str] = frozenset()

    def fits(self, tp: ProtocolTimepoint) -> bool:
        if tp.modality not in self.modalities:
            return False
        return tp.tracer is None or tp.tracer.lower() in {t.lower() for t in self.tracers}


@dataclass
class TimepointStatus:
    """One protocol timepoint for one patient."""

    name: str
    status: str
    target: dt.date | None
    window: tuple[dt.date, dt.date] | None
    exam_date: dt.date | None = None
    exam_key: Any = None
    deviation_days: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"timepoint": self.name, "status": self.status,
                "target": self.target.isoformat() if self.target else None,
                "window": [d.isoformat() for d in self.window] if self.window else None,
                "exam_date": self.exam_date.isoformat() if self.exam_date else None,
                "deviation_days": self.deviation_days, "notes": self.notes}


def match_exams(protocol: Protocol, exams: Iterable[Exam], today: dt.date,
                anchor_date: dt.date | None = None) -> list[TimepointStatus]:
    """Match a patient's exams to the protocol (statuses in the module doc).

    With ``anchor: baseline`` the anchor is the first exam that fits the baseline
    timepoint (``anchor_date`` is ignored); otherwise ``anchor_date`` is the clinical
    date, and without it no timepoint has a date yet (all ``due``).
    """
    pool = sorted(exams, key=lambda e: (e.date, str(e.key)))
    tps = protocol.timepoints
    if protocol.anchor == "baseline":
        first = next((e for e in pool if e.fits(tps[0])), None)
        anchor_date = first.date if first else None
    if anchor_date is None:
        note = ("no baseline exam yet" if protocol.anchor == "baseline"
                else f"no {protocol.anchor} date in the clinical data")
        return [TimepointStatus(t.name, "due", None, None, notes=[note]) for t in tps]
    targets = [anchor_date + dt.timedelta(days=t.day) for t in tps]
    windows = [(tg - dt.timedelta(days=t.before), tg + dt.timedelta(days=t.after))
               for t, tg in zip(tps, targets, strict=True)]
    used: set[int] = set()
    out: list[TimepointStatus] = []
    for t, tg, (lo, hi) in zip(tps, targets, windows, strict=True):
        inside = [(abs((e.date - tg).days), j) for j, e in enumerate(pool)
                  if j not in used and e.fits(t) and lo <= e.date <= hi]
        if inside:
            _, j = min(inside)
            used.add(j)
            out.append(TimepointStatus(t.name, "done", tg, (lo, hi), pool[j].date, pool[j].key,
                                       (pool[j].date - tg).days))
            continue
        out.append(TimepointStatus(t.name, "", tg, (lo, hi)))
    # Second pass: exams outside every window, given to the timepoint whose target is nearest.
    for j, e in enumerate(pool):
        if j in used:
            continue
        cands = [(abs((e.date - targets[i]).days), i) for i, t in enumerate(tps)
                 if e.fits(t) and out[i].status == ""]
        if not cands:
            continue
        d, i = min(cands)
        # Nearer to this target than to any other timepoint's target of the same kind.
        others = [abs((e.date - targets[k]).days) for k, t in enumerate(tps)
                  if k != i and e.fits(t)]
        if others and min(others) < d:
            continue
        used.add(j)
        st = out[i]
        st.status, st.exam_date, st.exam_key = "out of window", e.date, e.key
        st.deviation_days = (e.date - targets[i]).days
        st.notes.append(f"exam {abs(st.deviation_days)} days "
                        f"{'after' if st.deviation_days > 0 else 'before'} the target")
    for i, st in enumerate(out):
        if st.status:
            continue
        assert st.window is not None
        lo, hi = st.window
        later_done = any(o.status in ("done", "out of window") for o in out[i + 1:])
        if today <= hi:
            st.status = "due"
            if today < lo:
                st.notes.append(f"window opens {lo.isoformat()}")
        elif later_done or (today - hi).days > protocol.grace_days:
            st.status = "missing"
        else:
            st.status = "overdue"
            st.notes.append(f"window closed {(today - hi).days} days ago")
    return out


def status_counts(rows: Sequence[Sequence[TimepointStatus]]) -> dict[str, dict[str, int]]:
    """timepoint → status → number of patients."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        for st in row:
            out.setdefault(st.name, dict.fromkeys(STATUSES, 0))[st.status] += 1
    return out
