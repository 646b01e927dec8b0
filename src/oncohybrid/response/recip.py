"""RECIP 1.0 — Response Evaluation Criteria In PSMA PET/CT (mCRPC).

Gafita A, Rauscher I, Weber M et al. *Novel framework for treatment response evaluation
using PSMA PET/CT in patients with metastatic castration-resistant prostate cancer
(RECIP 1.0).* J Nucl Med 2022;63:1651–1658 (criteria.md §9, §13).

Each follow-up is compared with **baseline** on the whole-body PSMA-positive total tumour
volume (``timepoint.ttv_ml``) and the appearance of new lesions (``role="new"`` lesions or
``timepoint.new_lesions``):

- **CR**: no PSMA-ligand uptake anywhere (TTV = 0) and no new lesion;
- **PD**: TTV ≥ +20 % **and** new lesion(s) (inclusive; neither alone is PD);
- **PR**: TTV ≥ −30 % (a fall of at least 30 %) **and no** new lesion;
- **SD**: everything else (including ≥ −30 % with new lesions, ≥ +20 % without).

A missing TTV (segmentation failed) or ``extra.comparable = false`` gives NE. RECIP is a
per-comparison classification without confirmation or best-response rules, so
``best_overall_response`` is None. Store the segmentation method (``extra.segmentation``);
a change from baseline is warned about.
"""

from __future__ import annotations

from typing import Any

from oncohybrid.response.model import Assessment, Case, Role, State, Timepoint, TimepointResult
from oncohybrid.response.percist import BASELINE, NE, fmt, fmt_pct

CITE = "RECIP 1.0, Gafita JNM 2022"


def new_lesions(tp: Timepoint) -> list[str]:
    """Ids of new PSMA-positive lesions at a follow-up (``equivocal``/``absent`` excluded)."""
    out = [lid for lid, o in tp.lesions.items()
           if o.role is Role.NEW and o.state not in (State.ABSENT, State.EQUIVOCAL)]
    if tp.new_lesions and not out:
        out.append("(timepoint flag)")
    return out


def assess(case: Case) -> Assessment:
    """Classify every follow-up PSMA PET against baseline by RECIP 1.0."""
    warnings: list[str] = list(getattr(case, "warnings", []) or [])
    base = case.baseline
    base_ttv = base.ttv_ml
    base_seg = base.extra.get("segmentation")
    b_numbers: dict[str, Any] = {}
    if base_ttv is None:
        warnings.append("baseline: ttv_ml missing; RECIP cannot be applied")
    else:
        b_numbers["ttv_ml"] = base_ttv
    shown = fmt(base_ttv) if base_ttv is not None else "n/a"
    results = [TimepointResult(date=base.date, overall=BASELINE, numbers=b_numbers,
                               trace=[f"baseline: TTV {shown} ml"])]
    for tp in case.timepoints[1:]:
        trace: list[str] = []
        numbers: dict[str, Any] = {}
        new = new_lesions(tp)
        ttv = tp.ttv_ml
        numbers["new_lesions"] = bool(new)
        if ttv is not None:
            numbers["ttv_ml"] = ttv
        if base_ttv is not None:
            numbers["baseline_ttv_ml"] = base_ttv
            if ttv is not None and base_ttv:
                numbers["change_pct"] = (ttv - base_ttv) * 100 / base_ttv
        seg = tp.extra.get("segmentation")
        if base_seg is not None and seg is not None and seg != base_seg:
            warnings.append(f"{tp.date.isoformat()}: segmentation {seg!r} differs from baseline "
                            f"{base_seg!r}; TTV not comparable ({CITE})")
        if not getattr(tp, "assessed", True) or tp.extra.get("comparable") is False:
            cat = NE
            trace.append("NE: no comparable PSMA PET at this visit")
        elif ttv is None or base_ttv is None:
            cat = NE
            trace.append("NE: total tumour volume not available (segmentation failed?)")
        elif ttv == 0 and not new:
            cat = "CR"
            trace.append(f"CR: no PSMA-ligand uptake (TTV 0 ml) ({CITE})")
        else:
            change = fmt_pct(ttv, base_ttv)
            desc = f"TTV {fmt(ttv)} ml is {change} from baseline {fmt(base_ttv)} ml"
            grew = ttv * 10 >= base_ttv * 12
            fell = ttv * 10 <= base_ttv * 7
            if grew and new:
                cat = "PD"
                trace.append(f"PD: {desc} (≥ +20 %) and new lesion(s) {', '.join(new)} ({CITE})")
            elif fell and not new:
                cat = "PR"
                trace.append(f"PR: {desc} (≥ 30 % fall) and no new lesion ({CITE})")
            else:
                cat = "SD"
                if grew:
                    why = "≥ +20 % but no new lesion"
                elif fell:
                    why = f"≥ 30 % fall but new lesion(s) {', '.join(new)}"
                elif new:
                    why = f"new lesion(s) {', '.join(new)} without ≥ +20 % TTV"
                else:
                    why = "between −30 % and +20 %"
                trace.append(f"SD: {desc}: {why} ({CITE})")
            if ttv == 0 and new:
                warnings.append(f"{tp.date.isoformat()}: TTV 0 ml but new lesions reported")
        results.append(TimepointResult(date=tp.date, overall=cat, numbers=numbers, trace=trace,
                                       new_lesions="Yes" if new else "No"))
    return Assessment(criteria="recip", timepoints=results, best_overall_response=None,
                      warnings=warnings,
                      extra={"note": "RECIP 1.0 defines no best overall response"})
