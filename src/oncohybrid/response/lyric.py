"""LYRIC — Lymphoma Response to Immunomodulatory therapy Criteria.

Cheson BD, Ansell S, Schwartz L et al. *Refinement of the Lugano Classification lymphoma
response criteria in the era of immunomodulatory therapy.* Blood 2016;128:2489–2496
(criteria.md §8.5, vector Y-01). LYRIC keeps Lugano 2014 (combined PET-CT/CT, see
:mod:`oncohybrid.response.lugano`) and turns some Lugano PD into an **indeterminate
response** (IR) until biopsy or later imaging decides:

- **IR1**: SPD ≥ 50 % above its nadir within the first 12 weeks (84 days from treatment
  start, else baseline), without clinical deterioration (``extra.clinical_deterioration``);
- **IR2**: SPD < 50 % above nadir but new lesion(s) or ≥ 50 % PPD growth of a lesion or set
  of lesions (the Lugano per-lesion PD), at any time;
- **IR3**: increased FDG uptake without a size or number increase that would meet PD.

Resolution [V]: IR1 becomes PD when the SPD rises a further ≥ 10 % over the SPD at the first
IR timepoint; IR2 becomes PD when the SPD, with the new/enlarging lesions added (up to 6
lesions in all), is ≥ 50 % above the nadir; IR3 becomes PD when size or number progression
appears. Clinical deterioration, or a Lugano PD reason outside IR (spleen, marrow,
non-measured disease), is PD at once. A non-PD Lugano response ends the IR (flare). The
date of a confirmed PD is that of the first IR timepoint (``numbers.progression_date``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from oncohybrid.response.lugano import CT_RANK, NE, _dims, _end_of_treatment, run
from oncohybrid.response.model import Assessment, Case, Role, State, TimepointResult
from oncohybrid.response.percist import fmt, fmt_pct

CITE = "LYRIC, Cheson Blood 2016"
IR_WINDOW_DAYS = 84
_IR_ELIGIBLE_CT = {"lesion", "new", "regrowth", "spd"}


def assess(case: Case) -> Assessment:
    """Lugano 2014 (combined) with LYRIC indeterminate responses IR1/IR2/IR3."""
    warnings: list[str] = list(getattr(case, "warnings", []) or [])
    results, pairs = run(case, "combined", warnings)
    start = case.treatment_start or case.baseline.date
    pending: tuple[str, int, Decimal | None] | None = None  # (IR kind, result index, SPD)
    out: list[TimepointResult] = [results[0]]
    for i, (tp, res) in enumerate(zip(case.timepoints[1:], results[1:], strict=True), start=1):
        pf, cf = pairs[i]
        assert pf is not None and cf is not None
        underlying = res.overall
        res.numbers["underlying"] = underlying
        days = (tp.date - start).days
        res.numbers["days_on_treatment"] = days
        deteriorated = bool(tp.extra.get("clinical_deterioration"))
        spd = cf.numbers.get("spd_mm2")
        nadir = cf.numbers.get("nadir_spd_mm2")
        ct_kinds = set(cf.pd_kinds) if cf.category == "PD" else set()
        pet_kinds = set(pf.pd_kinds) if pf.category == "PMD" else set()
        spd_up50 = spd is not None and nadir is not None and nadir > 0 and spd * 2 >= nadir * 3
        if spd_up50:
            ct_kinds.add("spd")
        if underlying != "PD":
            if pending is not None:
                res.trace.append(f"{underlying}: indeterminate response {pending[0]} of "
                                 f"{out[pending[1]].date.isoformat()} resolved without PD "
                                 f"(flare/pseudoprogression; {CITE})")
            pending = None
            out.append(res)
            continue
        if deteriorated:
            res.trace.append(f"PD: clinical deterioration, no indeterminate response ({CITE})")
            pending = _confirm_date(res, out, pending)
            out.append(res)
            continue
        other = (ct_kinds - _IR_ELIGIBLE_CT) | (pet_kinds - {"uptake", "new"})
        if other:
            res.trace.append(f"PD: {', '.join(sorted(other))} progression is not covered by "
                             f"an indeterminate response ({CITE})")
            pending = _confirm_date(res, out, pending)
            out.append(res)
            continue
        if pending is not None:
            kind, idx, ir_spd = pending
            confirmed = None
            if kind == "IR1" and spd is not None and ir_spd is not None and spd * 10 >= ir_spd * 11:
                confirmed = (f"PD: SPD {fmt(spd)} mm² is {fmt_pct(spd, ir_spd)} over the IR1 SPD "
                             f"{fmt(ir_spd)} mm² (≥ 10 %) [V] ({CITE})")
            elif kind == "IR2" and nadir:
                total = _spd_with_new(case, i, spd)
                if total is not None and total * 2 >= nadir * 3:
                    confirmed = (f"PD: SPD with new/enlarging lesions {fmt(total)} mm² is "
                                 f"{fmt_pct(total, nadir)} over nadir {fmt(nadir)} mm² (≥ 50 %) "
                                 f"[V] ({CITE})")
            elif kind == "IR3" and ct_kinds:
                confirmed = (f"PD: size/number progression ({', '.join(sorted(ct_kinds))}) "
                             f"after IR3 ({CITE})")
            if confirmed:
                res.trace.append(confirmed)
                pending = _confirm_date(res, out, pending)
                out.append(res)
                continue
            res.overall = kind
            res.trace.append(f"{kind}: indeterminate response of {out[idx].date.isoformat()} "
                             f"continues; not yet confirmed as PD ({CITE})")
            out.append(res)
            continue
        kind = None
        if spd_up50:
            if days <= IR_WINDOW_DAYS:
                kind = "IR1"
                res.trace.append(
                    f"IR1: SPD {fmt(spd)} mm² is {fmt_pct(spd, nadir)} over nadir {fmt(nadir)} "
                    f"mm² (≥ 50 %) at day {days} (≤ 12 weeks), no clinical deterioration "
                    f"({CITE})")
            else:
                res.trace.append(f"PD: SPD ≥ 50 % over nadir after week 12 ({CITE})")
        elif ct_kinds or "new" in pet_kinds:
            kind = "IR2"
            why = "new lesion(s)" if "new" in ct_kinds | pet_kinds else "lesion growth"
            pct = f" ({fmt_pct(spd, nadir)} vs nadir)" if spd is not None and nadir else ""
            res.trace.append(f"IR2: {why} without a ≥ 50 % SPD increase{pct} ({CITE})")
        elif pet_kinds == {"uptake"}:
            kind = "IR3"
            res.trace.append(f"IR3: increased FDG uptake without a size or number increase "
                             f"meeting PD ({CITE})")
        if kind is not None:
            res.overall = kind
            pending = (kind, i, spd)
        out.append(res)
    best: str | None = None
    for res in out[1:]:
        if res.overall in CT_RANK and (best is None or CT_RANK[res.overall] < CT_RANK[best]):
            best = res.overall
        if res.overall == "PD":
            break
    if best is None and len(out) > 1:
        best = NE
    extra: dict[str, Any] = {}
    eot = _end_of_treatment(case, out)
    if eot is not None:
        extra["end_of_treatment"] = eot
    return Assessment(criteria="lyric", timepoints=out, best_overall_response=best,
                      warnings=warnings, extra=extra)


def _confirm_date(res: TimepointResult, out: list[TimepointResult],
                  pending: tuple[str, int, Decimal | None] | None) -> None:
    """PD after an IR is dated to the first IR timepoint."""
    res.numbers["progression_date"] = (out[pending[1]].date if pending else res.date)
    return None


def _spd_with_new(case: Case, index: int, spd: Decimal | None) -> Decimal | None:
    """Target SPD plus the PPD of new lesions, up to 6 lesions in all (LYRIC IR2) [V]."""
    if spd is None:
        return None
    tp = case.timepoints[index]
    n_targets = sum(1 for o in case.baseline.lesions.values() if o.role is Role.TARGET)
    room = max(0, 6 - n_targets)
    ppds = []
    for obs in tp.lesions.values():
        if obs.role is Role.NEW and obs.state is not State.ABSENT:
            d = _dims(obs)
            if d is not None:
                ppds.append(d[0] * d[1])
    ppds.sort(reverse=True)
    return spd + sum(ppds[:room], Decimal(0))
