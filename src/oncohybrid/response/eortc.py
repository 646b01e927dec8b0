"""EORTC PET response criteria 1999.

Young H, Baum R, Cremerius U et al. *Measurement of clinical and subclinical tumour response
using [18F]-fluorodeoxyglucose and positron emission tomography: review and 1999 EORTC
recommendations.* Eur J Cancer 1999;35:1773–1782 (criteria.md §7, vector E-01).

The tumour ROI is defined on the baseline scan and the same lesions are read at follow-up
(``lesion.suv_max`` by default, ``sul_peak`` when the baseline gives no SUVmax;
``options.eortc_metric`` may name either or a key of ``lesion.extra`` such as ``suv_mean``).
The lesions are aggregated by ``options.eortc_aggregate``: ``"sum"`` (default: the sum over
the baseline target lesions, or over all baseline lesions when none is marked target) or
``"hottest"``. Categories, decided on exact Decimals:

- **PMD**: SUV > +25 % over baseline; or a visible extent increase > 20 % in the longest
  dimension (``ld_mm`` per lesion); or new FDG-avid metastases.
- **CMR**: uptake completely resolved (every baseline lesion ``absent``), no new lesions.
- **PMR**: after 1 cycle (``timepoint.cycles`` ≤ 1) a fall of at least 15 %; after more
  than one cycle a fall of more than 25 %.
- **SMD**: anything else.

``cycles`` missing → the > 1-cycle threshold is used, with a warning. There is no
confirmation step; the best overall response is the best category before PMD.
"""

from __future__ import annotations

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
    TimepointResult,
)
from oncohybrid.response.percist import (
    BASELINE,
    NE,
    RANK,
    best_response,
    dec,
    fmt,
    fmt_pct,
    new_lesion_status,
)

CITE = "EORTC 1999, Young Eur J Cancer 1999"
_ZERO = Decimal(0)


def _value(obs: LesionObs, metric: str) -> Decimal | None:
    """The lesion's SUV in the chosen metric; ``absent`` reads 0; None when unknown."""
    raw = getattr(obs, metric) if metric in ("suv_max", "sul_peak") else obs.extra.get(metric)
    if raw is Special.ABSENT or (raw is None and obs.state is State.ABSENT):
        return _ZERO
    if raw is None or isinstance(raw, Special):
        return None
    return dec(raw, f"lesion {obs.id}: {metric}")


def assess(case: Case) -> Assessment:
    """Classify each follow-up by EORTC 1999 (cycle-dependent PMR; PMD > +25 %)."""
    opts = case.options
    metric = str(opts.get("eortc_metric", "auto"))
    aggregate = opts.get("eortc_aggregate", "sum")
    if aggregate not in ("sum", "hottest"):
        raise InputError(f"options.eortc_aggregate: expected 'sum' or 'hottest', got {aggregate!r}")
    warnings: list[str] = list(getattr(case, "warnings", []) or [])
    base_tp = case.baseline
    if metric == "auto":
        # SUVmax unless the case only gives SULpeak (the paper leaves the statistic open).
        has_suv = any(o.suv_max is not None for o in base_tp.lesions.values())
        metric = "suv_max" if has_suv else "sul_peak"
    ids = [lid for lid, o in base_tp.lesions.items() if o.role is Role.TARGET]
    if not ids:
        ids = [lid for lid, o in base_tp.lesions.items() if o.role is not Role.NEW]
    base_vals: dict[str, Decimal] = {}
    for lid in ids:
        v = _value(base_tp.lesions[lid], metric)
        if v is None:
            warnings.append(f"baseline: lesion {lid} has no {metric}")
        else:
            base_vals[lid] = v
    base_value = _combine(list(base_vals.values()), aggregate)
    base_numbers: dict[str, Any] = {"metric": metric, "aggregate": aggregate}
    if base_value is not None:
        base_numbers["suv"] = base_value
    results = [TimepointResult(date=base_tp.date, overall=BASELINE, numbers=base_numbers,
                               trace=[f"baseline: {aggregate} {metric} "
                                      f"{fmt(base_value) if base_value is not None else 'n/a'} "
                                      f"over lesions {', '.join(base_vals) or '(none)'}"])]
    complete_base = len(base_vals) == len(ids) and base_value is not None
    for tp in case.timepoints[1:]:
        trace: list[str] = []
        numbers: dict[str, Any] = {}
        if not getattr(tp, "assessed", True):
            results.append(TimepointResult(date=tp.date, overall=NE, trace=["NE: no PET"]))
            continue
        typical, doubtful = new_lesion_status(tp)
        vals: list[Decimal] = []
        missing: list[str] = []
        extent: list[str] = []
        for lid in ids:
            obs = tp.lesions.get(lid)
            v = _value(obs, metric) if obs is not None else None
            if v is None:
                missing.append(lid)
            else:
                vals.append(v)
            b_obs = base_tp.lesions[lid]
            if obs is not None and isinstance(b_obs.ld_mm, Decimal) and isinstance(
                obs.ld_mm, Decimal
            ) and b_obs.ld_mm > 0 and obs.ld_mm * 5 > b_obs.ld_mm * 6:
                extent.append(f"{lid} longest dimension {fmt(b_obs.ld_mm)} → "
                              f"{fmt(obs.ld_mm)} mm ({fmt_pct(obs.ld_mm, b_obs.ld_mm)})")
        value = _combine(vals, aggregate)
        cycles = tp.cycles
        if value is not None:
            numbers["suv"] = value
        if base_value is not None:
            numbers["baseline_suv"] = base_value
            if value is not None and base_value:
                numbers["change_pct"] = (value - base_value) * 100 / base_value
        numbers["cycles"] = cycles
        cat: str | None = None
        if typical:
            cat = "PMD"
            trace.append(f"PMD: new FDG-avid metastases {', '.join(typical)} ({CITE})")
        if doubtful:
            msg = f"new uptake {', '.join(doubtful)} not typical of tumour: reader decision needed"
            trace.append(msg)
            warnings.append(f"{tp.date.isoformat()}: {msg}")
        if (cat is None and value is not None and base_value is not None and complete_base
                and value * 4 > base_value * 5):
            # A partial sum (or maximum) already > +25 % proves PMD: missing lesions could
            # only raise it.
            cat = "PMD"
            trace.append(f"PMD: SUV {fmt(value)} is {fmt_pct(value, base_value)} over baseline "
                         f"{fmt(base_value)} (> 25 %; {CITE})")
        if cat is None and extent:
            cat = "PMD"
            trace.append(f"PMD: extent of uptake increased > 20 % in longest dimension: "
                         f"{'; '.join(extent)} ({CITE})")
        if cat is None and (missing or not complete_base or value is None):
            cat = NE
            trace.append(f"NE: no {metric} for {', '.join(missing) or 'baseline lesions'}")
        if cat is None:
            assert value is not None and base_value is not None
            early = cycles is not None and cycles <= 1
            if cycles is None:
                warnings.append(f"{tp.date.isoformat()}: number of cycles not given; the "
                                "> 1-cycle PMR threshold (> 25 %) was used")
            if value == 0 and not doubtful:
                cat = "CMR"
                trace.append(f"CMR: FDG uptake completely resolved in every baseline lesion "
                             f"({CITE})")
            elif early and value * 100 <= base_value * 85:
                cat = "PMR"
                trace.append(f"PMR: SUV {fmt(value)} is {fmt_pct(value, base_value)} from "
                             f"baseline {fmt(base_value)} after 1 cycle (≥ 15 % fall; {CITE})")
            elif not early and value * 4 < base_value * 3:
                cat = "PMR"
                trace.append(f"PMR: SUV {fmt(value)} is {fmt_pct(value, base_value)} from "
                             f"baseline {fmt(base_value)} after {cycles or '> 1'} cycles "
                             f"(> 25 % fall; {CITE})")
            else:
                need = "≥ 15 %" if early else "> 25 %"
                trace.append(f"SMD: SUV {fmt(value)} is {fmt_pct(value, base_value)} from "
                             f"baseline {fmt(base_value)} (PMR needs a {need} fall, PMD > +25 %; "
                             f"{CITE})")
                cat = "SMD"
        results.append(TimepointResult(date=tp.date, overall=cat, numbers=numbers, trace=trace,
                                       new_lesions="Yes" if typical else "No"))
    return Assessment(criteria="eortc", timepoints=results,
                      best_overall_response=best_response(results, RANK, "PMD"),
                      warnings=warnings, extra={"metric": metric, "aggregate": aggregate})


def _combine(values: list[Decimal], aggregate: str) -> Decimal | None:
    if not values:
        return None
    return sum(values, _ZERO) if aggregate == "sum" else max(values)
