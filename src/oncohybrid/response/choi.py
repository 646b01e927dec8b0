"""Choi criteria for GIST on imatinib — Choi H et al., J Clin Oncol 2007;25:1753–1759
(Table 1), and modified Choi (mChoi) for renal-cell carcinoma on TKIs.

- **Size**: sum of target diameters selected by RECIST rules (``recist.index_case``; the
  paper used RECIST 1.0 — this engine uses the RECIST 1.1 sum: LD, node SA).
- **Density**: mean attenuation (``hu_mean``, portal-venous phase CT) averaged over the
  targets that are still present (per-lesion means averaged, not area-weighted **[V]**).
- **CR**: all lesions gone, no new lesions.
- **PR**: size ≥ 10 % smaller **or** density ≥ 15 % lower (mChoi: **and**), no new lesions,
  no obvious non-target progression.
- **PD**: size ≥ 10 % larger **and** density not meeting the PR rule; or new lesions; or
  new/growing intratumoural nodules (``intratumoral_nodule``); or unequivocal non-target
  progression.
- **SD**: otherwise.

The reference is the baseline (Choi 2007); ``options.choi_reference = "nadir"`` compares
size against the smallest sum instead **[V]**. No confirmation, no absolute floor.
All thresholds inclusive and decided by cross-multiplication: size PR ⇔
``sum * 10 <= ref * 9``; size PD ⇔ ``sum * 10 >= ref * 11``; density PR ⇔
``hu * 20 <= base_hu * 17`` (a baseline density ≤ 0 HU makes density not evaluable).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from oncohybrid.response.model import Assessment, Case, TimepointResult, pct_change
from oncohybrid.response.recist import (
    CR,
    NE,
    PD,
    PR,
    RECIST11,
    SD,
    YES,
    NewState,
    Policy,
    _finish,
    _resolve,
    eval_new,
    eval_non_targets,
    index_case,
    target_value,
)
from oncohybrid.response.trace import mm, num, pct

__all__ = ["assess"]

_CITE = "Choi et al. JCO 2007 Table 1"


def assess(case: Case) -> Assessment:
    """Assess ``case`` under Choi (or mChoi with ``options.choi_variant = "mchoi"``)."""
    policy = Policy.from_options(case.options)
    mchoi = case.options.get("choi_variant", "choi") == "mchoi"
    use_nadir = case.options.get("choi_reference", "baseline") == "nadir"
    cite = "modified Choi (mChoi)" if mchoi else _CITE
    idx = index_case(case, RECIST11, policy)
    warnings = list(case.warnings) + idx.warnings
    base = case.baseline
    too_small = policy.too_small_mm
    base_sum = Decimal(0)
    for les in idx.targets:
        base_sum += _resolve(les.sa_mm if les.nodal else les.ld_mm, too_small)  # type: ignore[operator]
    base_hu = _density([(les.hu_mean, Decimal(1)) for les in idx.targets])
    if base_hu is not None and base_hu <= 0:
        warnings.append(
            f"baseline mean density {num(base_hu)} HU ≤ 0: a relative density change is "
            "undefined, density rule not applied"
        )
        base_hu = None
    nadir = base_sum
    new_state = NewState(baseline_pet=bool(base.pet_done))
    results = [
        TimepointResult(
            date=base.date,
            overall="baseline",
            numbers={"sum_mm": base_sum, "baseline_sum_mm": base_sum, "hu_mean": base_hu},
            trace=[
                f"baseline: size {mm(base_sum)}, density "
                f"{num(base_hu) + ' HU' if base_hu is not None else 'not available'} ({cite})"
            ],
        )
    ]
    pd_date = None
    for tp in case.timepoints[1:]:
        trace: list[str] = []
        numbers: dict[str, Any] = {}
        if not tp.assessed:
            trace.append("NE: no imaging at this visit")
            results.append(TimepointResult(tp.date, NE, NE, NE, None, numbers, trace))
            continue
        values = {les.id: target_value(les, tp, idx, RECIST11, too_small) for les in idx.targets}
        complete = all(v is not None for v in values.values())
        total = sum((v for v in values.values() if v is not None), Decimal(0))
        ref = nadir if use_nadir else base_sum
        numbers.update(
            target_mm=values,
            sum_mm=total if complete else None,
            baseline_sum_mm=base_sum,
            change_from_baseline_pct=pct_change(total, base_sum) if complete else None,
        )
        if use_nadir:
            numbers["nadir_sum_mm"] = nadir
        hu = None
        if tp.portal_venous_phase is False:
            trace.append("density not evaluable: no portal-venous phase (Choi 2007)")
        elif base_hu is not None and complete:
            pairs = []
            for les in idx.targets:
                obs = tp.lesions.get(les.id)
                if values[les.id]:
                    pairs.append((obs.hu_mean if obs is not None else None, Decimal(1)))
            hu = _density(pairs)
        numbers["hu_mean"] = hu
        numbers["baseline_hu_mean"] = base_hu
        numbers["hu_change_pct"] = pct_change(hu, base_hu) if hu is not None and base_hu else None
        ntr, _ = eval_non_targets(tp, idx, RECIST11, trace)
        new, _, first_seen = eval_new(tp, RECIST11, new_state, trace)
        nodules = [
            les.id
            for les in idx.targets
            if (obs := tp.lesions.get(les.id)) is not None and obs.intratumoral_nodule
        ]
        size_pr = complete and total * 10 <= base_sum * 9
        size_pd = complete and total * 10 >= ref * 11
        dens_pr = hu is not None and base_hu is not None and hu * 20 <= base_hu * 17
        size_txt = f"size {mm(total)} {pct(pct_change(total, base_sum))} vs baseline"
        dens_txt = (
            f"density {num(hu)} HU {pct(pct_change(hu, base_hu))} vs {num(base_hu)} HU"
            if hu is not None and base_hu is not None
            else "density not evaluable"
        )
        # density exists at baseline but cannot be read now (missing HU, no PV phase)
        dens_unknown = base_hu is not None and hu is None and complete and total > 0
        gone = complete and all(
            (v < 10 if les.nodal else v == 0)
            for les, v in zip(idx.targets, values.values(), strict=True)
        )
        pr_met = (size_pr and dens_pr) if mchoi else (size_pr or dens_pr)
        if new == YES or ntr == PD or nodules:
            cat = PD
            if nodules:
                trace.append(
                    f"PD: new or growing intratumoural nodule in {', '.join(nodules)} ({cite})"
                )
        elif size_pd and not dens_pr and not dens_unknown:
            cat = PD
            trace.append(
                f"PD: size {mm(total)} is {pct(pct_change(total, ref))} vs "
                f"{'nadir' if use_nadir else 'baseline'} {mm(ref)} (≥ +10%) and {dens_txt} does "
                f"not meet the -15% PR rule ({cite})"
            )
        elif gone and ntr in (CR, None):
            cat = CR
            trace.append(f"CR: all lesions disappeared, no new lesions ({cite})")
        elif pr_met:
            cat = PR
            rule = (
                "size ≥ 10% smaller and density ≥ 15% lower"
                if mchoi
                else "size ≥ 10% smaller or density ≥ 15% lower"
            )
            trace.append(f"PR: {size_txt}, {dens_txt}: {rule} ({cite})")
        elif not complete or dens_unknown:
            cat = NE
            what = "target size" if not complete else "density"
            trace.append(f"NE: {what} not evaluable and the category depends on it ({cite})")
        else:
            cat = SD
            trace.append(f"SD: {size_txt}, {dens_txt}: neither PR nor PD ({cite})")
        if cat == PD and pd_date is None:
            pd_date = first_seen or tp.date
        trace.append(f"overall {cat} ({cite})")
        results.append(TimepointResult(tp.date, cat, cat, ntr, new, numbers, trace))
        if complete and total < nadir:
            nadir = total
    return _finish(case, "choi", results, warnings, pd_date, policy)


def _density(pairs: list[tuple[Any, Decimal]]) -> Decimal | None:
    """Mean of the per-lesion mean HU; None when any contributing lesion lacks it."""
    if not pairs:
        return None
    total = Decimal(0)
    for value, _weight in pairs:
        if value.__class__ is not Decimal:
            return None
        total += value
    return total / len(pairs)
