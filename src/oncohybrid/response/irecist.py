"""iRECIST — Seymour L et al., Lancet Oncol 2017;18:e143–e152 (Tables 2 and 3), with the
RECIST Working Group iRECIST FAQ (recist.eortc.org).

Baseline, measurement and the per-category RECIST 1.1 rules are those of ``recist``
(targets vs baseline/nadir, 5 mm floor, NE unless PD met). On top sits a state machine
(criteria.md §3, trap 9):

- **iUPD** when RECIST 1.1 PD is met in any category (target sum ≥ +20 % and ≥ +5 mm over
  the nadir, unequivocal non-target progression, a new lesion).
- **New lesions** are sorted at first appearance: up to 5 measurable ones (LD ≥ 10 mm, node
  SA ≥ 15 mm), ≤ 2 per organ, become new-lesion targets (NLT) whose sum NL-SOM is kept
  apart from the target sum; the others are new-lesion non-targets (NLNT).
- **iCPD** at a later visit when: the target sum has grown ≥ 5 mm more than at the iUPD
  (increments add up); non-targets that caused it increased further (state ``increased``
  or ``unequivocal_progression``); NL-SOM grew ≥ 5 mm, an NLNT increased, or further new
  lesions appeared; or a category that had not met PD now meets RECIST PD.
- **Timing**: a visit < ``irecist_min_confirm_days`` (28) after the iUPD cannot confirm,
  unless it was done for new symptoms (``clinical_trigger``) and shows an additional new
  lesion (FAQ "early confirmation scan").
- **Reset**: a visit qualifying for iCR/iPR/iSD with no further growth lapses the iUPD.
  When the iUPD came from new lesions, the targets must also have shrunk further since the
  iUPD (FAQ scenario B → iPR); unchanged disease stays iUPD (scenario F). The pre-iUPD
  nadir is kept. After a reset new lesions trigger a fresh iUPD only when more appear, the
  NL-SOM meets RECIST PD against its own nadir, or an NLNT progresses unequivocally.
- **iBOR** (Table 3): the best of iCR > iPR > iSD > non-iCR/non-iUPD; otherwise iCPD when
  progression was confirmed, else iUPD (an iUPD followed only by NE stays iUPD). The
  progression date is that of the iUPD later confirmed (admiralonco iRECIST vignette).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from oncohybrid.response.model import Assessment, Case, LesionObs, Role, State, TimepointResult
from oncohybrid.response.recist import (
    CR,
    MISSING,
    NE,
    NONCR,
    PD,
    PR,
    RECIST11,
    SD,
    TEN,
    YES,
    NewState,
    Policy,
    _organ,
    _resolve,
    best_response,
    eval_new,
    eval_non_targets,
    eval_targets,
    index_case,
)
from oncohybrid.response.trace import mm, signed_mm

__all__ = ["assess", "best_iresponse", "ICR", "IPR", "ISD", "INON", "IUPD", "ICPD"]

ICR, IPR, ISD, INON, IUPD, ICPD = "iCR", "iPR", "iSD", "non-iCR/non-iUPD", "iUPD", "iCPD"
_I = {CR: ICR, PR: IPR, SD: ISD, NONCR: INON, PD: IUPD, NE: NE, None: None}
_BACK = {ICR: CR, IPR: PR, ISD: SD, INON: NONCR, ICPD: PD, IUPD: NE, NE: NE}
_INCREASE = (State.INCREASED, State.UNEQUIVOCAL_PROGRESSION)
_CITE = "iRECIST, Seymour et al. 2017"


@dataclass(slots=True)
class _Pending:
    """An iUPD awaiting confirmation."""

    date: dt.date
    causes: set[str]
    target_sum: Decimal  # partial or complete target sum at the iUPD visit
    nl_som: Decimal
    new_ids: set[str]
    nt_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _NewBook:
    """New-lesion targets (NLT) and non-targets (NLNT), iRECIST §New lesions."""

    nlt: list[str] = field(default_factory=list)
    nlnt: list[str] = field(default_factory=list)
    organ_count: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    nadir: Decimal | None = None


def _measurable_new(les: LesionObs) -> Decimal | None:
    if les.nodal:
        v = les.sa_mm
        return v if v.__class__ is Decimal and v >= 15 else None
    v = les.ld_mm
    return v if v.__class__ is Decimal and v >= TEN else None


def assess(case: Case) -> Assessment:
    """Assess ``case`` under iRECIST (see the module docstring)."""
    policy = Policy.from_options(case.options)
    min_days = int(case.options.get("irecist_min_confirm_days", 28))
    max_days = int(case.options.get("irecist_max_confirm_days", 56))
    flavour = RECIST11
    idx = index_case(case, flavour, policy)
    warnings = list(case.warnings) + idx.warnings
    base = case.baseline
    too_small = policy.too_small_mm
    baseline_sum = Decimal(0)
    for les in idx.targets:
        baseline_sum += _resolve(les.sa_mm if les.nodal else les.ld_mm, too_small)  # type: ignore[operator]
    nadir, nadir_date = baseline_sum, base.date
    new_state = NewState(baseline_pet=bool(base.pet_done))
    book = _NewBook()
    results = [
        TimepointResult(
            date=base.date,
            overall="baseline",
            numbers={"sum_mm": baseline_sum, "baseline_sum_mm": baseline_sum},
            trace=[f"baseline: {len(idx.targets)} target(s), sum {mm(baseline_sum)} ({_CITE})"],
        )
    ]
    pending: _Pending | None = None
    sticky = False
    run_start: dt.date | None = None
    confirmed_from: dt.date | None = None
    pd_date: dt.date | None = None
    for tp in case.timepoints[1:]:
        trace: list[str] = []
        numbers: dict[str, Any] = {}
        if not tp.assessed:
            trace.append("NE: no imaging at this visit")
            results.append(TimepointResult(tp.date, NE, NE, NE, None, numbers, trace))
            continue
        te = eval_targets(tp, idx, flavour, policy, baseline_sum, nadir, nadir_date, trace, numbers)
        ntr, nt_prog = eval_non_targets(tp, idx, flavour, trace)
        _new_cat, counted, _ = eval_new(tp, flavour, new_state, trace)
        # --- sort new lesions into NLT / NLNT at first appearance
        fresh = [lid for lid in counted if lid not in book.seen]
        for lid in fresh:
            book.seen.add(lid)
            les = tp.lesions[lid]
            organ = _organ(les) or lid
            if (
                _measurable_new(les) is not None
                and len(book.nlt) < 5
                and book.organ_count.get(organ, 0) < 2
            ):
                book.nlt.append(lid)
                book.organ_count[organ] = book.organ_count.get(organ, 0) + 1
                book.nadir = None  # composition changed: NL-SOM reference restarts
            else:
                book.nlnt.append(lid)
        nl_som, nl_complete = _nl_som(tp, book, too_small)
        nlnt_up = [
            lid for lid in book.nlnt if lid in tp.lesions and tp.lesions[lid].state in _INCREASE
        ]
        new_present = any(
            lid in tp.lesions
            and tp.lesions[lid].state is not State.ABSENT
            and not (lid in book.nlt and _resolve(_meas(tp.lesions[lid]), too_small) == Decimal(0))
            for lid in book.seen
        )
        if book.nlt:
            numbers["nl_som_mm"] = nl_som
            numbers["new_lesion_targets"] = list(book.nlt)
        if book.nlnt:
            numbers["new_lesion_non_targets"] = list(book.nlnt)
        tr = te.category
        target_sum = te.partial
        if sticky and tr == SD and policy.sticky_pr:
            numbers["target_literal"] = SD
            tr = PR
            trace.append(
                "iPR (sticky): iPR was reached earlier and PD is not met, so the target "
                "response stays iPR although the sum is above -30% (RECIST WG FAQ)"
            )
        if confirmed_from is not None:
            overall = ICPD
            trace.append(f"iCPD: progression was confirmed earlier ({_CITE})")
        elif pending is None:
            causes: set[str] = set()
            if tr == PD:
                causes.add("targets")
            if ntr == PD:
                causes.add("non-targets")
            if fresh:
                causes.add("new lesions")
            elif (
                book.nadir is not None
                and nl_complete
                and nl_som * 5 >= book.nadir * 6
                and nl_som - book.nadir >= 5
            ):
                causes.add("new lesions")
                trace.append(
                    f"NL-SOM {mm(nl_som)} meets RECIST PD against its nadir {mm(book.nadir)} "
                    f"({_CITE})"
                )
            elif any(
                tp.lesions[lid].state is State.UNEQUIVOCAL_PROGRESSION
                for lid in book.nlnt
                if lid in tp.lesions
            ):
                causes.add("new lesions")
                trace.append(f"unequivocal progression of new non-target lesions ({_CITE})")
            if causes:
                overall = IUPD
                pending = _Pending(tp.date, causes, target_sum, nl_som, set(book.seen), nt_prog)
                trace.append(
                    f"iUPD: RECIST 1.1 PD met by {', '.join(sorted(causes))}; needs "
                    f"confirmation at the next assessment, {min_days // 7}–{max_days // 7} weeks "
                    f"later ({_CITE})"
                )
            else:
                overall = _category(tr, ntr, new_present, trace)
        else:
            # New lesions first seen after the iUPD and still present. A lesion that appeared
            # on an early (< 4 weeks) scan, which could not confirm, still confirms at the
            # proper 4–8-week scan: another category now meets RECIST PD (criteria §3.4).
            added = [
                lid
                for lid in book.seen
                if lid not in pending.new_ids
                and lid in tp.lesions
                and tp.lesions[lid].state is not State.ABSENT
                and _resolve(_meas(tp.lesions[lid]), too_small) != Decimal(0)
            ]
            overall = _pending_step(
                tp,
                pending,
                tr,
                ntr,
                te,
                target_sum,
                added,
                nl_som,
                nlnt_up,
                new_present,
                min_days,
                max_days,
                trace,
                warnings,
            )
            if overall == ICPD:
                confirmed_from = pending.date
                pd_date = pending.date
                numbers["confirmed_iupd_date"] = pending.date
                pending = None
            elif overall != IUPD and overall != NE:
                trace.append(f"iUPD of {pending.date} lapses (bar reset) ({_CITE})")
                pending = None
        trace.append(f"overall {overall} ({_CITE})")
        results.append(
            TimepointResult(
                tp.date,
                overall,
                _I.get(tr, tr),
                _I.get(ntr, ntr),
                YES if counted else "No",
                numbers,
                trace,
            )
        )
        if te.complete and te.total is not None and te.total < nadir:
            nadir, nadir_date = te.total, tp.date
        if overall in (IPR, ICR):
            run_start = run_start or tp.date
            if not policy.confirmation or (tp.date - run_start).days >= policy.confirm_days:
                sticky = True
        elif overall in (ISD, IUPD, ICPD):
            run_start = None
            if overall != ISD:
                sticky = False
        if nl_complete and book.nlt and (book.nadir is None or nl_som < book.nadir):
            book.nadir = nl_som
    records = [(r.date, r.overall) for r in results[1:]]
    ibor, ibor_date = best_iresponse(records, case.treatment_start or base.date, policy)
    if pending is not None:
        warnings.append(f"iUPD of {pending.date} is not confirmed yet")
    return Assessment(
        criteria="irecist",
        timepoints=results,
        best_overall_response=ibor,
        warnings=warnings,
        extra={"best_overall_response_date": ibor_date, "progression_date": pd_date},
    )


def _meas(les: LesionObs) -> Any:
    return les.sa_mm if les.nodal else les.ld_mm


def _nl_som(tp: Any, book: _NewBook, too_small: Decimal) -> tuple[Decimal, bool]:
    total = Decimal(0)
    complete = True
    for lid in book.nlt:
        les = tp.lesions.get(lid)
        v = _resolve(_meas(les), too_small) if les is not None else None
        if v is None and les is not None and les.state is State.ABSENT:
            v = Decimal(0)
        if v is None:
            complete = False
            continue
        total += v
    return total, complete


def _category(tr: str | None, ntr: str | None, new_present: bool, trace: list[str]) -> str:
    """Non-progressing visit: iCR needs every lesion gone, new ones included."""
    if tr == NE or (tr is None and ntr == NE):
        return NE
    if tr is None:
        if ntr == CR and not new_present:
            return ICR
        return INON
    if tr == CR:
        if ntr in (CR, None) and not new_present:
            return ICR
        if new_present:
            trace.append(f"iPR, not iCR: new lesion(s) still present ({_CITE})")
        return IPR
    return _I[tr]


def _pending_step(
    tp: Any,
    p: _Pending,
    tr: str | None,
    ntr: str | None,
    te: Any,
    target_sum: Decimal,
    added: list[str],
    nl_som: Decimal,
    nlnt_up: list[str],
    new_present: bool,
    min_days: int,
    max_days: int,
    trace: list[str],
    warnings: list[str],
) -> str:
    """One visit while an iUPD is pending: iCPD, reset (iCR/iPR/iSD) or still iUPD.

    ``added``: new lesions first seen after the iUPD that are still present.
    """
    days = (tp.date - p.date).days
    triggers: list[str] = []
    if added:
        triggers.append(f"further new lesion(s) {', '.join(added)} since the iUPD")
    growth_triggers: list[str] = []
    if "targets" in p.causes and target_sum - p.target_sum >= 5:
        growth_triggers.append(
            f"target sum {mm(target_sum)} is {signed_mm(target_sum - p.target_sum)} over "
            f"{mm(p.target_sum)} at the iUPD (≥ 5 mm, increments add up)"
        )
    if "non-targets" in p.causes:
        up = [lid for lid in p.nt_ids if lid in tp.lesions and tp.lesions[lid].state in _INCREASE]
        if up:
            growth_triggers.append(f"non-target {', '.join(up)} increased further")
    if "new lesions" in p.causes:
        if nl_som - p.nl_som >= 5:
            growth_triggers.append(
                f"NL-SOM {mm(nl_som)} is {signed_mm(nl_som - p.nl_som)} over {mm(p.nl_som)} "
                "at the iUPD (≥ 5 mm)"
            )
        if nlnt_up:
            growth_triggers.append(f"new non-target lesion(s) {', '.join(nlnt_up)} increased")
    if "targets" not in p.causes and tr == PD:
        growth_triggers.append("targets now meet RECIST 1.1 PD")
    if "non-targets" not in p.causes and ntr == PD:
        growth_triggers.append("non-targets now show unequivocal progression")
    triggers.extend(growth_triggers)
    if triggers:
        if days < min_days:
            if added and tp.clinical_trigger:
                trace.append(
                    f"iCPD: scan {days} days after the iUPD, done for new symptoms, shows an "
                    f"additional new lesion ({_CITE}, FAQ early confirmation)"
                )
                return ICPD
            trace.append(
                f"iUPD: scan only {days} days after the iUPD of {p.date} (< {min_days} days) "
                f"cannot confirm progression ({'; '.join(triggers)}); repeat at 4–8 weeks "
                f"({_CITE}, FAQ)"
            )
            return IUPD
        if days > max_days:
            warnings.append(
                f"{tp.date}: confirmation {days} days after the iUPD of {p.date} "
                f"(recommended within {max_days} days)"
            )
        trace.append(f"iCPD: {'; '.join(triggers)} since the iUPD of {p.date} ({_CITE})")
        return ICPD
    if tr == NE or (tr is None and ntr == NE):
        trace.append(f"NE: not evaluable; iUPD of {p.date} still unconfirmed ({_CITE})")
        return NE
    # Reset? Every category that caused the iUPD must no longer show progression, and no
    # category may have grown further (criteria §3.5: "no further growth in any category").
    ok = tr != PD and ntr != PD
    grown = [
        lid
        for lid, les in tp.lesions.items()
        if les.role is Role.NON_TARGET and les.state in _INCREASE
    ] + nlnt_up
    if nl_som > p.nl_som:
        grown.append(f"NL-SOM ({mm(p.nl_som)} → {mm(nl_som)})")
    if grown:
        ok = False
        trace.append(
            f"iUPD: {', '.join(grown)} increased further (not meeting RECIST PD): no bar "
            f"reset while any category grows ({_CITE}, Table 2)"
        )
    if "non-targets" in p.causes:
        still = [
            lid
            for lid in p.nt_ids
            if lid in tp.lesions and tp.lesions[lid].state is not State.ABSENT
        ]
        if still:
            ok = False
    if "new lesions" in p.causes and new_present:
        shrank = te.complete and te.total is not None and te.total < p.target_sum
        if not shrank:
            ok = False
            trace.append(
                f"iUPD: new lesion(s) unchanged and targets not shrinking further since the "
                f"iUPD ({mm(target_sum)} vs {mm(p.target_sum)}) — stays iUPD (FAQ scenario F)"
            )
        else:
            trace.append(
                f"targets shrank further since the iUPD ({mm(target_sum)} < "
                f"{mm(p.target_sum)}) and new lesions did not grow (FAQ scenario B)"
            )
    if ok:
        return _category(tr, ntr, new_present, trace)
    if not trace or not trace[-1].startswith("iUPD"):
        trace.append(f"iUPD: neither confirmed nor reset; iCPD can still follow ({_CITE}, FAQ)")
    return IUPD


def best_iresponse(
    records: list[tuple[dt.date, str]], reference_date: dt.date, policy: Policy | None = None
) -> tuple[str, dt.date | None]:
    """iBOR (Seymour 2017 Table 3): the best of iCR > iPR > iSD > non-iCR/non-iUPD (an iUPD
    before a response does not block it; confirmation and SD minimum duration as in
    ``recist.best_response``); otherwise iCPD if progression was confirmed, else iUPD
    (an iUPD followed only by NE stays iUPD), else NE."""
    policy = policy or Policy()
    upto: list[tuple[dt.date, str]] = []
    for rec in records:
        upto.append(rec)
        if rec[1] == ICPD:
            break
    mapped = [(d, _BACK.get(r, NE)) for d, r in upto]
    bor, date = best_response(mapped, reference_date, **policy.bor_options())
    if bor in (CR, PR, SD, NONCR):
        return _I[bor], date
    for d, r in upto:
        if r == ICPD:
            return ICPD, d  # the progression date is the confirmed iUPD's (extra)
    for d, r in upto:
        if r == IUPD:
            return IUPD, d
    return (bor if bor in (NE, MISSING) else NE), date
