"""Krenning score — somatostatin-receptor uptake grade, per lesion and per patient.

Krenning EP et al. (Ann N Y Acad Sci 1994) and Kwekkeboom DJ, Krenning EP. *Somatostatin
receptor imaging.* Semin Nucl Med 2002;32:84–91; the "modified" score for SSTR PET
(⁶⁸Ga-DOTATATE) as summarised in criteria.md §10 and vector K-01:

====  ==========================================
0     no uptake
1     very low, well below the liver
2     about equal to the liver
3     above the liver
4     above the spleen (or kidneys when the spleen is not usable)
====  ==========================================

The grade is visual (``lesion.extra.krenning`` 0–4 wins). Otherwise the lesion SUVmax is
compared with ``references.liver_suv_max`` and ``spleen_suv_max`` (``kidney_suv_max`` as the
fallback) as a reproducible proxy: within ± ``krenning_liver_tolerance_pct`` (default 10 %)
of the liver is "about equal" (2); below that band 1; above it 3, or 4 when also above the
spleen. ``absent`` or SUVmax 0 is 0. The patient score is the maximum over lesions;
``krenning_prrt_cutoff`` (default 3; some centres accept 2) gives PRRT eligibility.
Every timepoint is graded on its own (no response categories); best_overall_response is None.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.response.model import Assessment, Case, LesionObs, Special, TimepointResult
from oncohybrid.response.percist import dec, fmt

CITE = "Krenning score, Kwekkeboom Semin Nucl Med 2002"


def grade_from_suv(
    suv_max: Decimal, liver_suv_max: Decimal, spleen_suv_max: Decimal | None,
    *, liver_tolerance_pct: Decimal = Decimal(10),
) -> int:
    """Krenning grade proxy from SUVmax ratios to liver and spleen.

    >>> from decimal import Decimal as D
    >>> [grade_from_suv(D(x), D("8"), D("20")) for x in ("0", "4", "8", "12", "25")]
    [0, 1, 2, 3, 4]
    """
    if suv_max <= 0:
        return 0
    band = liver_suv_max * liver_tolerance_pct / 100
    if suv_max > liver_suv_max + band:
        if spleen_suv_max is not None and suv_max > spleen_suv_max:
            return 4
        return 3
    if suv_max >= liver_suv_max - band:
        return 2
    return 1


def lesion_grade(obs: LesionObs, refs: dict[str, Decimal], tol: Decimal) -> tuple[int | None, str]:
    """(grade or None, explanation) for one lesion."""
    visual = obs.extra.get("krenning")
    if visual is not None:
        if isinstance(visual, bool) or not isinstance(visual, int | Decimal) or not (
            0 <= visual <= 4 and int(visual) == visual
        ):
            raise InputError(f"lesion {obs.id}: krenning must be an integer 0-4, got {visual!r}")
        return int(visual), f"{obs.id}: Krenning {int(visual)} (visual)"
    suv = obs.suv_max
    if suv is Special.ABSENT:
        return 0, f"{obs.id}: no uptake → Krenning 0"
    if isinstance(suv, Decimal):
        liver = refs.get("liver_suv_max")
        if liver is None:
            return None, f"{obs.id}: SUVmax {fmt(suv)} but no liver_suv_max reference"
        spleen = refs.get("spleen_suv_max", refs.get("kidney_suv_max"))
        g = grade_from_suv(suv, liver, spleen, liver_tolerance_pct=tol)
        sp = f" / spleen {fmt(spleen)}" if spleen is not None else ""
        return g, (f"{obs.id}: SUVmax {fmt(suv)} vs liver {fmt(liver)}{sp} → Krenning {g} "
                   f"(quantitative proxy, liver band ± {fmt(tol)} %; {CITE})")
    return None, f"{obs.id}: no Krenning grade or SUVmax"


def assess(case: Case) -> Assessment:
    """Krenning grade per lesion and patient (maximum) at every timepoint."""
    opts = case.options
    tol = dec(opts.get("krenning_liver_tolerance_pct", 10), "options.krenning_liver_tolerance_pct")
    cutoff = int(opts.get("krenning_prrt_cutoff", 3))
    if not 0 <= cutoff <= 4:
        raise InputError(f"options.krenning_prrt_cutoff: must be 0-4, got {cutoff}")
    warnings: list[str] = list(getattr(case, "warnings", []) or [])
    results: list[TimepointResult] = []
    for tp in case.timepoints:
        grades: dict[str, Any] = {}
        trace: list[str] = []
        for lid, obs in tp.lesions.items():
            g, why = lesion_grade(obs, tp.references, tol)
            grades[lid] = g
            trace.append(why)
            if g is None:
                warnings.append(f"{tp.date.isoformat()}: {why}")
        known = [g for g in grades.values() if g is not None]
        if not known:
            overall = "NE"
            trace.append("NE: no lesion could be graded")
            eligible = None
        else:
            score = max(known)
            overall = str(score)
            eligible = score >= cutoff
            trace.append(f"patient Krenning score {score} (maximum over lesions); PRRT "
                         f"{'eligible' if eligible else 'not eligible'} at cut-off ≥ {cutoff} "
                         f"({CITE})")
            if len(known) < len(grades):
                trace.append("note: some lesions could not be graded; the patient score is a "
                             "lower bound")
        results.append(TimepointResult(date=tp.date, overall=overall, trace=trace,
                                       numbers={"lesion_scores": grades,
                                                "prrt_eligible": eligible,
                                                "prrt_cutoff": cutoff}))
    return Assessment(criteria="krenning", timepoints=results, best_overall_response=None,
                      warnings=warnings)
