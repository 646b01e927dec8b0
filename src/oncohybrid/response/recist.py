"""RECIST 1.1 — Eisenhauer EA et al., Eur J Cancer 2009;45:228–247, with the RECIST
Working Group FAQ (recist.eortc.org) where the paper is ambiguous.

Sections cited in traces are the paper's: §3.1 measurability, §4.2 baseline selection,
§4.3.1 target response, §4.3.2 special notes (nodes, too small, split/coalesced),
§4.3.3/§4.3.4 non-target response, §4.3.5 new lesions (incl. FDG-PET), §4.4.1 time-point
response (Tables 1 and 2), §4.4.2 missing assessments, §4.4.3 best overall response
(Table 3), §4.6 confirmation.

Decisions are exact (Decimal) and by cross-multiplication (criteria.md §1.2):
PR ⇔ ``sum * 10 <= baseline * 7``; PD ⇔ ``sum * 5 >= nadir * 6`` and ``sum - nadir >= 5``.
PD is tested before PR and against the nadir (smallest complete sum on study,
baseline included); a partial sum never becomes the nadir but can prove PD (§4.4.2).

The module also holds the machinery shared with ``mrecist``, ``irecist`` and ``choi``:
:class:`Flavour` (what differs between RECIST-family criteria), lesion value resolution
(too small = 5 mm, absent = 0, split = sum of fragments, merged = 0), non-target and
new-lesion evaluation, and the best-overall-response derivation (:func:`best_response`),
which follows admiralonco ``derive_param_confirmed_bor`` semantics.

Policy switches (``case.options``; defaults in brackets): ``confirmation`` [false],
``confirm_days`` [28], ``min_sd_days`` [42], ``max_nr_ne`` [1], ``accept_sd`` [false],
``missing_as_ne`` [false], ``sticky_pr`` [true], ``cr_then_pr`` ["query"],
``strict_baseline`` [false], ``too_small_mm`` [5].

Example::

    >>> from oncohybrid.response.parse import load_case
    >>> case = load_case({"criteria": "recist1.1", "timepoints": [
    ...     {"date": "2024-01-01", "lesions": [{"id": "L1", "role": "target", "ld_mm": 40}]},
    ...     {"date": "2024-03-01", "lesions": [{"id": "L1", "ld_mm": 10}]}]})
    >>> assess(case).timepoints[1].overall
    'PR'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.response.model import (
    Assessment,
    Case,
    LesionObs,
    Role,
    Special,
    State,
    Timepoint,
    TimepointResult,
    pct_change,
)
from oncohybrid.response.trace import mm, num, pct, signed_mm

__all__ = [
    "Flavour",
    "Policy",
    "RECIST11",
    "assess",
    "best_response",
    "confirmed_best_response",
]

ZERO = Decimal(0)
FIVE = Decimal(5)
TEN = Decimal(10)

CR, PR, SD, PD, NE = "CR", "PR", "SD", "PD", "NE"
NONCR = "NON-CR/NON-PD"
ND, MISSING = "ND", "MISSING"
YES, NO, EQUIVOCAL = "Yes", "No", "Equivocal"

_PAIRED = ("left ", "right ", "l ", "r ", "bilateral ")


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class Policy:
    """Sequence-level switches (criteria.md §2.10); keep timepoint rules pure."""

    confirmation: bool = False
    confirm_days: int = 28
    min_sd_days: int = 42
    max_nr_ne: int = 1
    accept_sd: bool = False
    missing_as_ne: bool = False
    sticky_pr: bool = True
    cr_then_pr: str = "query"
    strict_baseline: bool = False
    too_small_mm: Decimal = FIVE

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Policy:
        kw: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in options:
                kw[name] = options[name]
        if "too_small_mm" in kw:
            kw["too_small_mm"] = Decimal(kw["too_small_mm"])
        return cls(**kw)

    def bor_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`best_response` this policy sets."""
        return {
            "confirmation": self.confirmation,
            "confirm_days": self.confirm_days,
            "min_sd_days": self.min_sd_days,
            "max_nr_ne": self.max_nr_ne,
            "accept_sd": self.accept_sd,
            "missing_as_ne": self.missing_as_ne,
        }


@dataclass(frozen=True, slots=True)
class Flavour:
    """What differs between RECIST-family criteria (RECIST 1.1, mRECIST, iRECIST)."""

    name: str = "RECIST 1.1"
    #: lesion field measured for non-nodal targets
    field: str = "ld_mm"
    #: absolute increase needed for PD on top of +20 % (RECIST 1.1 §4.3.1: 5 mm)
    pd_floor_mm: Decimal = FIVE
    #: label of the non-target "neither CR nor PD" category
    noncr_label: str = NONCR
    #: mRECIST: porta hepatis nodes count only from this short axis (Lencioni 2010)
    porta_hepatis_node_mm: Decimal | None = None
    #: mRECIST needs a (late) arterial phase at every timepoint
    needs_arterial_phase: bool = False
    #: mRECIST new intrahepatic lesion rules (typical pattern, ≥10 mm)
    hcc_new_lesions: bool = False
    #: citations used in traces
    cite_target: str = "RECIST 1.1 §4.3.1"
    cite_nontarget: str = "RECIST 1.1 §4.3.3"
    cite_new: str = "RECIST 1.1 §4.3.5"
    cite_table: str = "RECIST 1.1 §4.4.1 Table 1"


RECIST11 = Flavour()


# --------------------------------------------------------------------------- helpers


def _organ(les: LesionObs) -> str | None:
    """Organ key for the '≤2 per organ' rule: all nodes are one organ, paired organs one
    (RECIST WG FAQ "paired organs"; criteria.md misconception 4)."""
    if les.nodal:
        return "lymph node"
    if not les.site:
        return None
    site = les.site.strip().lower()
    for prefix in _PAIRED:
        if site.startswith(prefix):
            site = site[len(prefix) :]
    return site


def is_effusion(les: LesionObs) -> bool:
    site = (les.site or "").lower()
    return "effusion" in site or "ascites" in site


def _is_porta_hepatis(les: LesionObs) -> bool:
    return "porta hepatis" in (les.site or "").lower()


def _resolve(m: Any, too_small: Decimal) -> Decimal | None:
    """A measurement as mm: too small → default (§4.3.2), absent → 0, NE/None → None."""
    if m is None:
        return None
    if m.__class__ is Decimal:
        return m
    if m is Special.TOO_SMALL:
        return too_small
    if m is Special.ABSENT:
        return ZERO
    return None


def _lesion_field(les: LesionObs, flavour: Flavour) -> str:
    return "sa_mm" if les.nodal else flavour.field


@dataclass(slots=True)
class CaseIndex:
    """Per-case lookups computed once: baseline targets/non-targets, fragments."""

    targets: list[LesionObs]
    non_targets: list[LesionObs]
    #: per timepoint index: parent id → fragment observations (split lesions, §4.3.2)
    fragments: list[dict[str, list[LesionObs]]]
    ref_date: dt.date
    warnings: list[str] = field(default_factory=list)
    #: per timepoint index: ids merged into another lesion at this or an earlier visit
    merged: list[frozenset[str]] = field(default_factory=list)


def index_case(case: Case, flavour: Flavour, policy: Policy) -> CaseIndex:
    """Validate the baseline (RECIST 1.1 §3.1, §4.2) and index the case.

    Structural problems (a target without a baseline measurement, a "new" lesion at
    baseline, a target first seen at follow-up) raise InputError naming the JSON path;
    selection-rule violations (>5 targets, >2 per organ, sub-threshold size) are
    warnings, or errors with ``strict_baseline``.
    """
    base = case.baseline
    targets: list[LesionObs] = []
    non_targets: list[LesionObs] = []
    problems: list[str] = []
    thick = base.slice_thickness_mm
    min_ld = max(TEN, thick * 2) if thick is not None and thick > 5 else TEN
    node_min = Decimal(15)
    per_organ: dict[str, int] = {}
    for li, les in enumerate(base.lesions.values()):
        path = f"timepoints[0].lesions[{li}]"
        if les.role is Role.NEW:
            raise InputError(f"{path}.role: a lesion at baseline cannot be 'new'")
        if les.role is Role.TARGET:
            fname = _lesion_field(les, flavour)
            value = getattr(les, fname)
            if value.__class__ is not Decimal:
                raise InputError(
                    f"{path}.{fname}: target lesion {les.id!r} needs a measured baseline "
                    f"{'short axis' if les.nodal else 'diameter'}, got {_show(value)}"
                )
            targets.append(les)
            organ = _organ(les)
            if organ is not None:
                per_organ[organ] = per_organ.get(organ, 0) + 1
            if les.nodal:
                need = node_min
                if flavour.porta_hepatis_node_mm is not None and _is_porta_hepatis(les):
                    need = max(need, flavour.porta_hepatis_node_mm)
                if value < need:
                    problems.append(
                        f"{path}.sa_mm: target node {les.id!r} short axis {mm(value)} is below "
                        f"{mm(need)}: not measurable, follow it as non-target (RECIST 1.1 §3.1)"
                    )
            elif value < min_ld:
                problems.append(
                    f"{path}.{fname}: target {les.id!r} {mm(value)} is below {mm(min_ld)}: "
                    "not measurable (RECIST 1.1 §3.1.1)"
                )
        else:
            non_targets.append(les)
    if not targets and not non_targets:
        raise InputError(
            "timepoints[0].lesions: missing baseline: no target or non-target lesions recorded "
            f"at the baseline visit {base.date} ({flavour.name} needs baseline disease)"
        )
    if len(targets) > 5:
        problems.append(
            f"timepoints[0].lesions: {len(targets)} target lesions; at most 5 (RECIST 1.1 §4.2)"
        )
    for organ, count in per_organ.items():
        if count > 2:
            problems.append(
                f"timepoints[0].lesions: {count} target lesions in {organ}; at most 2 per organ "
                "(lymph nodes count as one organ; RECIST 1.1 §4.2)"
            )
    base_ids = set(base.lesions)
    fragments: list[dict[str, list[LesionObs]]] = []
    merged: list[frozenset[str]] = []
    merged_now: frozenset[str] = frozenset()
    for tp in case.timepoints:
        frag: dict[str, list[LesionObs]] = {}
        for li, les in enumerate(tp.lesions.values()):
            if les.merged_into is not None:
                merged_now = merged_now | {les.id}
            elif les.id in merged_now and getattr(les, _lesion_field(les, flavour)) is not None:
                merged_now = merged_now - {les.id}  # measured on its own again
            if les.split_from is not None:
                frag.setdefault(les.split_from, []).append(les)
            elif les.role is Role.TARGET and les.id not in base_ids:
                raise InputError(
                    f"timepoints[{tp.index}].lesions[{li}].role: target lesion {les.id!r} "
                    "first appears at follow-up; targets are chosen at baseline "
                    "(RECIST 1.1 §4.2) — give it role 'new'"
                )
        fragments.append(frag)
        merged.append(merged_now)
    ref_date = case.treatment_start or base.date
    if case.treatment_start is not None and (case.treatment_start - base.date).days > 28:
        problems.append(
            f"timepoints[0].date: baseline {base.date} is more than 4 weeks before treatment "
            f"start {case.treatment_start} (RECIST 1.1 §3.2)"
        )
    if problems and policy.strict_baseline:
        raise InputError(problems[0])
    for tp in case.timepoints[1:]:
        if tp.slice_thickness_mm is not None and tp.slice_thickness_mm > 5:
            problems.append(
                f"timepoints[{tp.index}].slice_thickness_mm: {mm(tp.slice_thickness_mm)} slices "
                "reduce measurement precision (RECIST 1.1 §3.2)"
            )
    return CaseIndex(targets, non_targets, fragments, ref_date, problems, merged)


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    return str(value.value if isinstance(value, Special) else value)


def target_value(
    les: LesionObs, tp: Timepoint, idx: CaseIndex, flavour: Flavour, too_small: Decimal
) -> Decimal | None:
    """One target's contribution at ``tp`` (RECIST 1.1 §4.3.2).

    Split lesion → sum of its fragments; merged lesion → 0 unless measured (also at later
    visits that no longer list it); any other lesion not in the timepoint → None (not
    evaluated).
    """
    frags = idx.fragments[tp.index].get(les.id)
    fname = "sa_mm" if les.nodal else flavour.field
    if frags:
        total = ZERO
        for f in frags:
            v = _resolve(getattr(f, fname), too_small)
            if v is None:
                return None
            total += v
        return total
    obs = tp.lesions.get(les.id)
    if obs is None:
        # a lesion merged earlier stays 0 while it is not listed (§4.3.2 coalesced lesions)
        return ZERO if les.id in idx.merged[tp.index] else None
    m = getattr(obs, fname)
    if m is None and obs.merged_into is not None:
        return ZERO
    return _resolve(m, too_small)


# --------------------------------------------------------------------------- components


@dataclass(slots=True)
class TargetEval:
    category: str | None  # None: no target disease (Table 2)
    total: Decimal | None  # complete sum, or None
    partial: Decimal
    complete: bool
    values: dict[str, Decimal | None]


def eval_targets(
    tp: Timepoint,
    idx: CaseIndex,
    flavour: Flavour,
    policy: Policy,
    baseline_sum: Decimal,
    nadir: Decimal,
    nadir_date: dt.date,
    trace: list[str],
    numbers: dict[str, Any],
) -> TargetEval:
    """Target response (RECIST 1.1 §4.3.1; PD before PR; NE unless PD already met)."""
    if not idx.targets:
        return TargetEval(None, None, ZERO, True, {})
    values: dict[str, Decimal | None] = {}
    partial = ZERO
    complete = True
    all_gone = True
    too_small = policy.too_small_mm
    for les in idx.targets:
        v = target_value(les, tp, idx, flavour, too_small)
        values[les.id] = v
        if v is None:
            complete = False
            continue
        partial += v
        if les.nodal:
            if v >= TEN:
                all_gone = False
        elif v:
            all_gone = False
    numbers["target_mm"] = values
    numbers["baseline_sum_mm"] = baseline_sum
    numbers["nadir_sum_mm"] = nadir
    numbers["nadir_date"] = nadir_date
    cite = flavour.cite_target
    grow = partial - nadir
    floor = flavour.pd_floor_mm
    if partial * 5 >= nadir * 6 and grow >= floor and (grow > 0):
        numbers["sum_mm"] = partial if complete else None
        if not complete:
            numbers["partial_sum_mm"] = partial
        numbers["change_from_baseline_pct"] = pct_change(partial, baseline_sum)
        numbers["change_from_nadir_pct"] = pct_change(partial, nadir)
        numbers["change_from_nadir_mm"] = grow
        word = "sum" if complete else "partial sum of the evaluated targets"
        if nadir:
            rise = pct(pct_change(partial, nadir)) + (f" and {signed_mm(grow)}" if floor else "")
        else:  # from a nadir of 0 any regrowth is an infinite relative increase
            rise = signed_mm(grow)
        trace.append(f"PD: {word} {mm(partial)} is {rise} over nadir {mm(nadir)} ({cite})")
        if not complete:
            missing = ", ".join(k for k, v in values.items() if v is None)
            trace.append(
                f"PD stands although {missing} not evaluated: missing lesions can only add "
                "to the sum (RECIST 1.1 §4.4.2)"
            )
        return TargetEval(PD, partial if complete else None, partial, complete, values)
    if not complete:
        missing = ", ".join(k for k, v in values.items() if v is None)
        numbers["sum_mm"] = None
        numbers["partial_sum_mm"] = partial
        trace.append(
            f"NE: target(s) {missing} not evaluated and the evaluated ones "
            f"({mm(partial)}) do not already show PD (RECIST 1.1 §4.4.2)"
        )
        return TargetEval(NE, None, partial, False, values)
    total = partial
    numbers["sum_mm"] = total
    cb = pct_change(total, baseline_sum)
    numbers["change_from_baseline_pct"] = cb
    numbers["change_from_nadir_pct"] = pct_change(total, nadir)
    numbers["change_from_nadir_mm"] = grow
    if all_gone:
        nodes = [les.id for les in idx.targets if les.nodal]
        extra = f"; target nodes {', '.join(nodes)} all < 10 mm short axis" if nodes else ""
        trace.append(f"CR: all non-nodal targets disappeared{extra} ({cite})")
        return TargetEval(CR, total, total, True, values)
    if total * 10 <= baseline_sum * 7:
        trace.append(
            f"PR: sum {mm(total)} is {pct(cb)} from baseline {mm(baseline_sum)} "
            f"(≤ -30%) and not PD against nadir {mm(nadir)} ({cite})"
        )
        return TargetEval(PR, total, total, True, values)
    if grow > 0 and total * 5 >= nadir * 6:
        why = f"{pct(pct_change(total, nadir))} but only {signed_mm(grow)} (< {mm(floor)})"
    else:
        why = f"{pct(pct_change(total, nadir))} ({signed_mm(grow)})"
    trace.append(
        f"SD: sum {mm(total)} is {pct(cb)} from baseline {mm(baseline_sum)} (PR needs ≤ -30%) "
        f"and {why} over nadir {mm(nadir)} (PD needs ≥ +20%"
        f"{f' and ≥ +{num(floor)} mm' if floor else ''}) ({cite})"
    )
    return TargetEval(SD, total, total, True, values)


def eval_non_targets(
    tp: Timepoint, idx: CaseIndex, flavour: Flavour, trace: list[str]
) -> tuple[str | None, list[str]]:
    """Non-target response (RECIST 1.1 §4.3.3–4.3.4). Returns (category, progressing ids).

    A node with a measured short axis < 10 mm counts as normal (absent), also when its
    state says "present". An effusion's unequivocal progression counts only with positive
    cytology (§4.3.4 / FAQ).
    """
    markers_bad = tp.markers_normal is False
    if not idx.non_targets:
        if markers_bad:
            trace.append(
                f"{flavour.noncr_label}: tumour markers above normal ({flavour.cite_nontarget})"
            )
            return flavour.noncr_label, []
        return None, []
    progressing: list[str] = []
    missing: list[str] = []
    present = False
    for les in idx.non_targets:
        obs = tp.lesions.get(les.id)
        if obs is None:
            missing.append(les.id)
            continue
        st = obs.state
        if les.nodal and obs.sa_mm.__class__ is Decimal and st in (None, State.PRESENT):
            # a measured short axis decides: < 10 mm is a normal node even when the reader
            # ticked "present" (§4.3.2: nodes < 10 mm are non-pathological)
            st = State.ABSENT if obs.sa_mm < TEN else State.PRESENT
        if st is State.UNEQUIVOCAL_PROGRESSION:
            if is_effusion(les) and obs.cytology != "positive":
                trace.append(
                    f"{les.id}: effusion increase without positive cytology is not PD "
                    "(RECIST 1.1 §4.3.4)"
                )
                present = True
            else:
                progressing.append(les.id)
        elif st is State.ABSENT:
            continue
        elif st is None or st is State.NOT_EVALUABLE:
            missing.append(les.id)
        else:
            present = True
    if progressing:
        trace.append(
            f"PD: unequivocal progression of non-target {', '.join(progressing)} "
            f"({flavour.cite_nontarget})"
        )
        return PD, progressing
    if missing:
        trace.append(
            f"NE: non-target {', '.join(missing)} not evaluated ({flavour.cite_nontarget})"
        )
        return NE, []
    if present or markers_bad:
        why = "non-target lesion(s) persist" if present else "tumour markers above normal"
        trace.append(f"{flavour.noncr_label}: {why} ({flavour.cite_nontarget})")
        return flavour.noncr_label, []
    trace.append(f"CR: all non-target lesions disappeared ({flavour.cite_nontarget})")
    return CR, []


@dataclass(slots=True)
class NewState:
    """New-lesion bookkeeping across timepoints (equivocal → confirmed, PET → CT)."""

    #: lesion id → date of first (equivocal) appearance
    equivocal_since: dict[str, dt.date] = field(default_factory=dict)
    #: lesion id → first measured diameter (mRECIST atypical nodule growth rule)
    first_ld: dict[str, Decimal] = field(default_factory=dict)
    baseline_pet: bool = False


def eval_new(
    tp: Timepoint, flavour: Flavour, state: NewState, trace: list[str]
) -> tuple[str, list[str], dt.date | None]:
    """New lesions (RECIST 1.1 §4.3.5). Returns (Yes/No/Equivocal, counted ids, PD date).

    Only unequivocal new lesions count. A new node counts once SA ≥ 10 mm; 10–15 mm is
    re-assessed at the next visit unless the reader marked it unequivocal (WG FAQ).
    FDG-PET: a positive focus is PD if baseline PET was negative; without baseline PET it
    needs CT confirmation, and PD is then dated to the PET (§4.3.5). An equivocal lesion
    confirmed later dates PD to its first appearance.
    """
    counted: list[str] = []
    equivocal: list[str] = []
    pd_date: dt.date | None = None
    for les in tp.lesions.values():
        if les.role is not Role.NEW or les.split_from is not None:
            continue
        st = les.state
        if st is State.ABSENT:
            # an equivocal lesion that went away was never confirmed (§4.3.5)
            state.equivocal_since.pop(les.id, None)
            continue
        if st is State.NOT_EVALUABLE:
            continue
        lid = les.id
        verdict = _new_verdict(les, st, flavour, state, trace)
        if verdict is None:
            continue
        if verdict:
            counted.append(lid)
            first = state.equivocal_since.pop(lid, None)
            if first is not None and first < tp.date:
                trace.append(
                    f"{lid}: new lesion first seen (equivocal) on {first} is now unequivocal; "
                    f"progression dates to {first} ({flavour.cite_new})"
                )
                pd_date = first if pd_date is None else min(pd_date, first)
        else:
            equivocal.append(lid)
            state.equivocal_since.setdefault(lid, tp.date)
    if counted:
        trace.append(f"PD: unequivocal new lesion(s) {', '.join(counted)} ({flavour.cite_new})")
        return YES, counted, pd_date
    if equivocal:
        trace.append(
            f"new lesion(s) {', '.join(equivocal)} equivocal: not PD, re-assess at the next "
            f"visit ({flavour.cite_new})"
        )
        return EQUIVOCAL, [], None
    return NO, [], None


def _new_verdict(
    les: LesionObs, st: State | None, flavour: Flavour, state: NewState, trace: list[str]
) -> bool | None:
    """True: counts as new lesion; False: equivocal; None: not a lesion (ignore)."""
    lid = les.id
    if st is State.EQUIVOCAL:
        return False
    explicit = st is State.UNEQUIVOCAL
    if les.nodal and les.sa_mm.__class__ is Decimal:
        sa = les.sa_mm
        need = None
        if flavour.porta_hepatis_node_mm is not None and _is_porta_hepatis(les):
            need = flavour.porta_hepatis_node_mm
        if need is not None and sa < need:
            trace.append(
                f"{lid}: porta hepatis node {mm(sa)} short axis < {mm(need)} is not counted as "
                "malignant in cirrhosis (mRECIST, Lencioni & Llovet 2010)"
            )
            return None
        if sa < TEN:
            trace.append(f"{lid}: new node {mm(sa)} short axis < 10 mm is not pathological")
            return None
        if sa < 15 and not explicit and need is None:
            trace.append(
                f"{lid}: new node {mm(sa)} short axis (10–15 mm) — re-assess before calling "
                "PD (RECIST WG FAQ)"
            )
            return False
    if is_effusion(les) and les.cytology != "positive":
        trace.append(
            f"{lid}: new effusion/ascites needs positive cytology to count as PD "
            f"({flavour.cite_new})"
        )
        return False
    if les.pet_positive and les.ct_correlate is not True and not explicit:
        if state.baseline_pet:
            trace.append(
                f"{lid}: FDG-PET positive new focus with negative baseline PET is PD "
                "(RECIST 1.1 §4.3.5)"
            )
            return True
        trace.append(
            f"{lid}: FDG-PET positive focus without baseline PET and without CT correlate — "
            "confirm on CT; PD would date to this PET (RECIST 1.1 §4.3.5)"
        )
        return False
    if flavour.hcc_new_lesions and not les.nodal and not is_effusion(les):
        ld = les.ld_mm if les.ld_mm.__class__ is Decimal else None
        if ld is None and les.viable_ld_mm.__class__ is Decimal:
            ld = les.viable_ld_mm
        first = state.first_ld.setdefault(lid, ld) if ld is not None else None
        if les.hcc_typical is True and ld is not None and ld >= TEN:
            return True
        if ld is not None and ld < TEN:
            trace.append(
                f"{lid}: new nodule {mm(ld)} < 10 mm is equivocal (mRECIST, Lencioni 2010)"
            )
            return False
        if les.hcc_typical is False:
            if ld is not None and first is not None and ld - first >= TEN:
                trace.append(
                    f"{lid}: atypical nodule grew {signed_mm(ld - first)} since first seen: "
                    "new lesion (mRECIST)"
                )
                return True
            trace.append(
                f"{lid}: atypical nodule (no arterial hyperenhancement with washout) is "
                "equivocal until it grows by ≥ 10 mm (mRECIST)"
            )
            return False
    return True


def overall_table(tr: str | None, ntr: str | None, new: str, flavour: Flavour) -> str:
    """Time-point response: RECIST 1.1 Table 1 (targets) or Table 2 (non-targets only)."""
    if tr == PD or ntr == PD or new == YES:
        return PD
    if tr is None:  # Table 2
        if ntr is None:
            return NE
        if ntr == NE:
            return NE
        if ntr == CR:
            return CR
        # mRECIST does not define non-target-only disease; IR/SD is read as SD there.
        return NONCR if flavour.noncr_label == NONCR else SD
    if tr == NE:
        return NE
    if tr == CR:
        return CR if ntr in (CR, None) else PR
    return tr  # PR or SD


# --------------------------------------------------------------------------- BOR

_ORDER = {CR: 1, PR: 2, SD: 3, NONCR: 4, PD: 5, NE: 6, ND: 7, MISSING: 8}


def best_response(
    records: list[tuple[dt.date, str]],
    reference_date: dt.date,
    *,
    confirmation: bool = False,
    confirm_days: int = 28,
    min_sd_days: int = 42,
    max_nr_ne: int = 1,
    accept_sd: bool = False,
    missing_as_ne: bool = False,
) -> tuple[str, dt.date | None]:
    """Best overall response and its date from time-point responses (RECIST 1.1 §4.4.3).

    Records after the first PD are ignored. SD (and unconfirmed CR/PR, and
    NON-CR/NON-PD) count only at or after ``reference_date + min_sd_days``; earlier
    they count as NE. Order: CR > PR > SD > NON-CR/NON-PD > PD > NE > ND > MISSING.
    With ``confirmation`` this is :func:`confirmed_best_response` (admiralonco
    ``derive_param_confirmed_bor``); without, CR and PR count as they stand (randomised
    trials, RECIST 1.1 §4.6).
    """
    if confirmation:
        return confirmed_best_response(
            records,
            reference_date,
            ref_confirm=confirm_days,
            ref_start_window=min_sd_days,
            max_nr_ne=max_nr_ne,
            accept_sd=accept_sd,
            missing_as_ne=missing_as_ne,
        )
    recs = _until_pd(records)
    window = reference_date + dt.timedelta(days=min_sd_days)
    best: tuple[int, dt.date | None, str] | None = None
    for date, resp in recs:
        if resp in (CR, PR, PD, ND):
            cand = resp
        elif resp in (SD, NONCR):
            cand = resp if date >= window else NE
        else:
            cand = NE
        key = (_ORDER[cand], date, cand)
        if best is None or key[:2] < best[:2]:
            best = key
    if best is None:
        return (NE if missing_as_ne else MISSING), None
    return best[2], best[1]


def _until_pd(records: list[tuple[dt.date, str]]) -> list[tuple[dt.date, str]]:
    out = []
    for rec in records:
        out.append(rec)
        if rec[1] == PD:
            break
    return out


def confirmed_best_response(
    records: list[tuple[dt.date, str]],
    reference_date: dt.date,
    *,
    ref_confirm: int = 28,
    ref_start_window: int = 28,
    max_nr_ne: int = 1,
    accept_sd: bool = False,
    missing_as_ne: bool = False,
) -> tuple[str, dt.date | None]:
    """Confirmed BOR (RECIST 1.1 §4.6, Table 3), semantics of admiralonco
    ``derive_param_confirmed_bor`` (pharmaverse/admiralonco R/derive_param_confirmed_bor.R).

    - CR is confirmed by the first later CR ≥ ``ref_confirm`` days on, with only CR/NE
      between (≤ ``max_nr_ne`` NE).
    - PR is confirmed by the first later CR/PR ≥ ``ref_confirm`` days on, with only
      CR/PR/SD/NE between (≤ ``max_nr_ne`` NE; ≤ 1 SD if ``accept_sd`` else none) and no
      PR after a CR in that stretch.
    - Otherwise CR/PR/SD count as SD from ``reference_date + ref_start_window``, before it
      as NE; NON-CR/NON-PD likewise; PD, then NE, ND, MISSING.
    The earliest record of the best category gives the date.
    """
    recs = _until_pd(records)
    if not recs:
        return (NE if missing_as_ne else MISSING), None
    window = reference_date + dt.timedelta(days=ref_start_window)
    max_sd = 1 if accept_sd else 0
    cands: list[tuple[int, dt.date, str]] = []
    n = len(recs)
    for i, (date, resp) in enumerate(recs):
        if resp in (CR, PR):
            want = (CR,) if resp == CR else (CR, PR)
            for j in range(i + 1, n):
                dj, rj = recs[j]
                if rj in want and (dj - date).days >= ref_confirm:
                    joined = [r for _, r in recs[i + 1 : j + 1]]
                    if _confirms(resp, joined, max_nr_ne, max_sd):
                        cands.append((_ORDER[resp], date, resp))
                    break
            if date >= window:
                cands.append((_ORDER[SD], date, SD))
            else:
                cands.append((_ORDER[NE], date, NE))
        elif resp in (SD, NONCR):
            cat = resp if date >= window else NE
            cands.append((_ORDER[cat], date, cat))
        elif resp in (PD, NE, ND):
            cands.append((_ORDER[resp], date, resp))
        else:
            cands.append((_ORDER[NE], date, NE))
    best = min(cands)
    return best[2], best[1]


def _confirms(resp: str, joined: list[str], max_nr_ne: int, max_sd: int) -> bool:
    if resp == CR:
        return all(r in (CR, NE) for r in joined) and joined.count(NE) <= max_nr_ne
    if not all(r in (CR, PR, SD, NE) for r in joined):
        return False
    if joined.count(NE) > max_nr_ne or joined.count(SD) > max_sd:
        return False
    if CR in joined and PR in joined:
        first_cr = joined.index(CR)
        last_pr = len(joined) - 1 - joined[::-1].index(PR)
        return first_cr > last_pr
    return True


# --------------------------------------------------------------------------- engine


def assess(case: Case) -> Assessment:
    """Assess ``case`` under RECIST 1.1 (see the module docstring for the rules)."""
    return run_recist(case, RECIST11, label="recist1.1")


def run_recist(case: Case, flavour: Flavour, *, label: str) -> Assessment:
    """The RECIST-family time-point loop, shared by RECIST 1.1 and mRECIST."""
    policy = Policy.from_options(case.options)
    idx = index_case(case, flavour, policy)
    warnings = list(case.warnings) + idx.warnings
    base = case.baseline
    too_small = policy.too_small_mm
    baseline_sum = ZERO
    for les in idx.targets:
        baseline_sum += _resolve(getattr(les, _lesion_field(les, flavour)), too_small)  # type: ignore[operator]
    nadir, nadir_date = baseline_sum, base.date
    new_state = NewState(baseline_pet=bool(base.pet_done))
    results: list[TimepointResult] = []
    base_trace = [
        f"baseline: {len(idx.targets)} target(s), sum {mm(baseline_sum)}; "
        f"{len(idx.non_targets)} non-target(s) ({flavour.name})"
    ]
    results.append(
        TimepointResult(
            date=base.date,
            overall="baseline",
            numbers={"sum_mm": baseline_sum, "baseline_sum_mm": baseline_sum},
            trace=base_trace,
        )
    )
    sticky_since: dt.date | None = None  # start of the current PR/CR run
    sticky = False
    cr_run_start: dt.date | None = None  # start of the current overall CR run
    last_cr_idx: list[int] = []
    pd_date: dt.date | None = None
    for tp in case.timepoints[1:]:
        trace: list[str] = []
        numbers: dict[str, Any] = {}
        if not tp.assessed:
            trace.append("NE: no imaging at this visit (RECIST 1.1 §4.4.2)")
            results.append(TimepointResult(tp.date, NE, NE, NE, None, numbers, trace))
            continue
        if flavour.needs_arterial_phase and tp.arterial_phase is False:
            trace.append(
                "NE: no late-arterial phase, viable tumour cannot be measured "
                "(mRECIST, Lencioni & Llovet 2010)"
            )
            results.append(TimepointResult(tp.date, NE, NE, NE, None, numbers, trace))
            continue
        if tp.modality and base.modality and tp.modality.upper() != base.modality.upper():
            trace.append(
                f"NE: modality {tp.modality} differs from baseline {base.modality}; lesions are "
                "not comparable (RECIST 1.1 §3.2)"
            )
            results.append(TimepointResult(tp.date, NE, NE, NE, None, numbers, trace))
            continue
        te = eval_targets(tp, idx, flavour, policy, baseline_sum, nadir, nadir_date, trace, numbers)
        ntr, _ = eval_non_targets(tp, idx, flavour, trace)
        new, _, first_seen = eval_new(tp, flavour, new_state, trace)
        tr = te.category
        if sticky and tr == SD and policy.sticky_pr:
            numbers["target_literal"] = SD
            tr = PR
            trace.append(
                "PR (sticky): PR was reached earlier and PD is not met, so the response stays "
                "PR although the sum is above -30% (RECIST WG FAQ 'Managing PR'); "
                "literal Table 1 value: SD"
            )
        overall = overall_table(tr, ntr, new, flavour)
        if numbers.get("target_literal"):
            numbers["overall_literal"] = overall_table(te.category, ntr, new, flavour)
        # Reappearance after CR (RECIST 1.1 §4.3.5 FAQ; criteria.md §2.10 (†)).
        if cr_run_start is not None and overall in (PR, SD, NONCR):
            overall = _after_cr(
                overall, tp, cr_run_start, last_cr_idx, results, policy, trace, warnings
            )
        if overall == PD and pd_date is None:
            pd_date = first_seen or tp.date
        trace.append(_table_line(overall, tr, ntr, new, flavour))
        results.append(TimepointResult(tp.date, overall, tr, ntr, new, numbers, trace))
        # sequence state, updated after classification
        if te.complete and te.total is not None and te.total < nadir:
            nadir, nadir_date = te.total, tp.date
        if overall in (PR, CR):
            if sticky_since is None:
                sticky_since = tp.date
            if not policy.confirmation or (tp.date - sticky_since).days >= policy.confirm_days:
                sticky = True
        elif overall in (SD, PD):
            sticky_since = None
            if overall == PD:
                sticky = False
        if overall == CR:
            if cr_run_start is None:
                cr_run_start = tp.date
                last_cr_idx = []
            last_cr_idx.append(len(results) - 1)
        elif overall != NE:
            cr_run_start = None
    return _finish(case, label, results, warnings, pd_date, policy)


def _after_cr(
    overall: str,
    tp: Timepoint,
    cr_start: dt.date,
    cr_idx: list[int],
    results: list[TimepointResult],
    policy: Policy,
    trace: list[str],
    warnings: list[str],
) -> str:
    """Disease seen again after an overall CR: policy ``cr_then_pr`` (criteria.md §2.10)."""
    last_cr = results[cr_idx[-1]].date
    confirmed = (last_cr - cr_start).days >= policy.confirm_days
    mode = policy.cr_then_pr
    if mode == "pd" or (mode == "query" and confirmed):
        why = "confirmed " if confirmed else ""
        trace.append(
            f"PD: disease reappeared after {why}CR of {cr_start} (RECIST 1.1 §4.3.5, "
            f"WG FAQ; policy cr_then_pr={mode}); Table 1 value: {overall}"
        )
        return PD
    if mode == "ne":
        trace.append(
            f"NE: {overall} after CR of {cr_start} treated as a data query "
            "(admiralonco #87; policy cr_then_pr=ne)"
        )
        warnings.append(f"{tp.date}: {overall} after CR of {cr_start} — query the reads")
        return NE
    if mode == "pr":
        for i in cr_idx:
            r = results[i]
            r.trace.append(
                f"revised CR → PR: disease seen on {tp.date} was probably present all along "
                "(RECIST 1.1 Table 3 note; policy cr_then_pr=pr)"
            )
            r.numbers["overall_literal"] = r.overall
            r.overall = PR
        return overall
    warnings.append(
        f"{tp.date}: {overall} after an unconfirmed CR on {cr_start}: reappearance is PD only "
        "if the CR was definitive — query the reads (RECIST WG FAQ)"
    )
    trace.append(
        f"disease seen again after unconfirmed CR of {cr_start}: kept {overall}, query raised "
        "(policy cr_then_pr=query)"
    )
    return overall


def _table_line(overall: str, tr: str | None, ntr: str | None, new: str, fl: Flavour) -> str:
    cite = fl.cite_table if tr is not None else "RECIST 1.1 §4.4.1 Table 2"
    parts = []
    if tr is not None:
        parts.append(f"target {tr}")
    parts.append(f"non-target {ntr or 'none'}")
    parts.append(f"new lesions {new}")
    return f"overall {overall}: {', '.join(parts)} ({cite})"


def _finish(
    case: Case,
    label: str,
    results: list[TimepointResult],
    warnings: list[str],
    pd_date: dt.date | None,
    policy: Policy,
) -> Assessment:
    records: list[tuple[dt.date, str]] = []
    for tp, res in zip(case.timepoints[1:], results[1:], strict=True):
        if tp.new_therapy:
            warnings.append(
                f"{tp.date}: new anticancer therapy — this and later visits are not used "
                "for best overall response"
            )
            break
        records.append((res.date, res.overall))
    # An equivocal new lesion confirmed later dates PD to its first appearance (RECIST 1.1
    # §4.3.5: "progression should be declared using the date of the initial scan"); BOR is
    # the best response *until* PD, so visits from that date on cannot count as SD/PR.
    first_pd = next((d for d, r in records if r == PD), None)
    if pd_date is not None and first_pd is not None and pd_date < first_pd:
        records = [(d, r) for d, r in records if d < pd_date] + [(pd_date, PD)]
        warnings.append(
            f"progression dated back to {pd_date} (first appearance of a new lesion confirmed "
            f"on {first_pd}); visits from {pd_date} on are not used for best overall response"
        )
    ref = case.treatment_start or case.baseline.date
    bor, bor_date = best_response(records, ref, **policy.bor_options())
    return Assessment(
        criteria=label,
        timepoints=results,
        best_overall_response=bor,
        warnings=warnings,
        extra={"best_overall_response_date": bor_date, "progression_date": pd_date},
    )
