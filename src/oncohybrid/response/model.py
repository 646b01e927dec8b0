"""Shared data model of the response engine: a patient case in, an assessment out.

Every criterion module exposes ``assess(case: Case) -> Assessment``. Numbers are
``decimal.Decimal`` parsed from the JSON text, never binary floats, so that thresholds
are decided exactly (criteria.md §1.2: ``(49.8-41.5)/41.5*100`` is 19.999… in IEEE
doubles, and exactly +20 % must be PD). Compare by cross-multiplication
(``cur * 10 <= base * 7`` for −30 %), never on a rounded display value.

The JSON contract (``oncohybrid respond CASE.json``) is documented in
``docs/response-case.md`` and shipped as JSON Schema (``response/case.schema.json``);
``response.parse`` turns validated JSON into these classes.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Special(StrEnum):
    """Non-numeric measurement states (criteria.md §1.1)."""

    TOO_SMALL = "too_small"
    ABSENT = "absent"
    NOT_EVALUABLE = "not_evaluable"


#: A measurement: an exact number, a special state, or None when not recorded.
Measure = Decimal | Special | None


class Role(StrEnum):
    TARGET = "target"
    NON_TARGET = "non-target"
    NEW = "new"


class State(StrEnum):
    """Qualitative state of a non-target or new lesion."""

    PRESENT = "present"
    ABSENT = "absent"
    INCREASED = "increased"
    UNEQUIVOCAL_PROGRESSION = "unequivocal_progression"
    EQUIVOCAL = "equivocal"
    UNEQUIVOCAL = "unequivocal"
    NOT_EVALUABLE = "not_evaluable"


@dataclass(frozen=True)
class LesionObs:
    """One lesion at one timepoint, as the case file gives it.

    ``role``/``site``/``nodal`` are carried forward from the lesion's first
    appearance when a follow-up omits them (``Case`` does that on parse).
    """

    id: str
    role: Role
    site: str | None = None
    nodal: bool = False
    ld_mm: Measure = None
    sa_mm: Measure = None
    ldi_mm: Measure = None
    sdi_mm: Measure = None
    viable_ld_mm: Measure = None
    hu_mean: Measure = None
    sul_peak: Measure = None
    suv_max: Measure = None
    deauville: int | str | None = None  # 1..5, or "X"
    state: State | None = None
    split_from: str | None = None
    merged_into: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Added for RECIST-family special rules (part A); all optional.
    cytology: str | None = None  # "positive" | "negative" (effusions, RECIST 1.1 §4.3.2)
    hcc_typical: bool | None = None  # arterial hyperenhancement + washout (mRECIST new lesion)
    intratumoral_nodule: bool | None = None  # new/growing nodule inside the lesion (Choi PD)
    pet_positive: bool | None = None  # FDG focus > 2x surroundings (RECIST 1.1 new lesions)
    ct_correlate: bool | None = None  # a PET-found new lesion is confirmed on CT


@dataclass(frozen=True)
class Timepoint:
    """One imaging visit: its date, its lesions (by id) and visit-level values."""

    index: int
    date: dt.date
    lesions: dict[str, LesionObs]
    references: dict[str, Decimal] = field(default_factory=dict)
    ttv_ml: Decimal | None = None
    new_lesions: bool | None = None
    spleen_length_mm: Decimal | None = None
    marrow: str | None = None
    cycles: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Added for RECIST-family rules (part A); all optional.
    assessed: bool = True  # False: no imaging at this visit (RECIST 1.1 → NE)
    modality: str | None = None  # "CT", "MR", "PET"...: a change makes lesions non-comparable
    arterial_phase: bool | None = None  # False: mRECIST cannot be applied (NE)
    portal_venous_phase: bool | None = None  # False: Choi density cannot be applied (NE)
    markers_normal: bool | None = None  # tumour markers; False blocks CR (RECIST 1.1 §4.3.2)
    slice_thickness_mm: Decimal | None = None  # baseline measurability 2x rule (> 5 mm)
    pet_done: bool | None = None  # FDG-PET performed at this visit (RECIST 1.1 new lesions)
    clinical_trigger: bool | None = None  # unscheduled scan for new symptoms (iRECIST timing)
    new_therapy: bool = False  # new anticancer therapy started before this visit


@dataclass(frozen=True)
class Case:
    """One patient under one criterion: timepoints in date order, baseline first."""

    criteria: str
    timepoints: list[Timepoint]
    options: dict[str, Any] = field(default_factory=dict)
    treatment_start: dt.date | None = None
    patient_id: str | None = None
    #: Non-fatal findings of ``parse.load_case`` (e.g. unknown fields that were ignored);
    #: assessors copy them into ``Assessment.warnings``.
    warnings: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> Timepoint:
        return self.timepoints[0]

    def days_since_baseline(self, tp: Timepoint) -> int:
        return (tp.date - self.baseline.date).days


@dataclass
class TimepointResult:
    """The categories of one timepoint, the numbers they came from and the rule trace.

    ``numbers`` holds e.g. ``sum_mm``, ``baseline_sum_mm``, ``nadir_sum_mm``,
    ``change_from_baseline_pct``, ``change_from_nadir_pct`` (exact Decimals; display
    rounding happens only in ``to_json``). ``trace`` is ordered, physician-readable:
    ``"PD: sum 68 mm is +24% and +13 mm over nadir 55 mm (RECIST 1.1 §4.3.1)"``.
    """

    date: dt.date
    overall: str
    target: str | None = None
    non_target: str | None = None
    new_lesions: str | None = None
    numbers: dict[str, Any] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "date": self.date.isoformat(),
            "overall": self.overall,
            "target": self.target,
            "non_target": self.non_target,
            "new_lesions": self.new_lesions,
        }
        for key, value in self.numbers.items():
            out[key] = to_jsonable(value)
        out["trace"] = list(self.trace)
        return out


@dataclass
class Assessment:
    criteria: str
    timepoints: list[TimepointResult]
    best_overall_response: str | None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "criteria": self.criteria,
            "timepoints": [t.to_json() for t in self.timepoints],
            "best_overall_response": self.best_overall_response,
            "warnings": list(self.warnings),
        }
        for key, value in self.extra.items():
            out[key] = to_jsonable(value)
        return out


def to_jsonable(value: Any) -> Any:
    """Decimals become JSON numbers (int when integral, else float rounded to 4 places).

    A non-finite number (NaN, ±Infinity) becomes ``None``: RFC 8259 §6 has no such JSON
    numbers and ``json.dumps`` would print the invalid tokens ``NaN``/``Infinity``. The
    parser refuses them on input, so this is only a guard for a future computation.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value():
            return int(value)
        return float(round(value, 4))
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def pct_change(cur: Decimal, ref: Decimal) -> Decimal | None:
    """Exact percent change ``(cur - ref) / ref * 100`` (for display and trace only)."""
    if ref == 0:
        return None
    return (cur - ref) * 100 / ref
