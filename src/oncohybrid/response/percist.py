"""PERCIST 1.0 — PET Response Criteria in Solid Tumors.

Wahl RL, Jacene H, Kasamon Y, Lodge MA. *From RECIST to PERCIST: evolving considerations
for PET response criteria in solid tumors.* J Nucl Med 2009;50 Suppl 1:122S–150S
(the "PERCIST 1.0" proposal), with the acquisition checklist of *Practical PERCIST*
(O JH, Lodge MA, Wahl RL. Radiology 2016;280:576–584). Spec: docs/criteria-nuclear.md and
shared criteria.md §6, §13, §14.6, §16 item 10.

Inputs (per timepoint):

- ``lesion.sul_peak`` (SUL units) of every tracked lesion; the primary measure is the
  SULpeak of the **hottest lesion on each scan**, which may be a different lesion at
  follow-up. ``absent`` reads as 0 (resolved); ``not_evaluable``/missing leaves the
  hottest value unknown (NE unless PMD is already met). ``role="new"`` lesions are new
  FDG-avid foci; one with ``state="equivocal"`` or ``extra.typical_of_tumour=false``
  needs a reader decision and does not give PMD.
- ``references``: ``liver_sul_mean``/``liver_sul_sd`` (3 cm VOI, right lobe) or, where the
  liver is abnormal (``extra.liver_abnormal``) or not given, ``blood_pool_sul_mean``/
  ``blood_pool_sul_sd`` (descending aorta).
- ``extra``: ``uptake_min``, ``glucose_mg_dl``, ``scanner``, ``reconstruction``,
  ``sul_formula`` (``james``/``janmahasatian``), ``injected_mbq``.
- ``lesion.extra.tlg`` (optional) for the 75 % TLG rule; ``lesion.ld_mm`` for the
  "no > 30 % size increase" condition of PMR.

Options (``case.options``):

- ``percist_measure``: ``"hottest"`` (default, PERCIST primary) or ``"sum5"`` (sum of the
  SULpeak of up to 5 hottest lesions, ≤ 2 per organ — PERCIST secondary measure; the same
  30 % / 0.8 SUL rules are applied to the sum).
- ``percist_pmd_reference``: ``"baseline"`` (default; PERCIST 1.0) or ``"nadir"`` [V].
- ``percist_liver_gate``: ``"both"`` (default: ≤ 20 % **and** ≤ 0.3 SUL) or ``"either"``.
- ``percist_liver_max_change_pct`` (20), ``percist_liver_max_change_sul`` (0.3),
  ``percist_uptake_tolerance_min`` (15).
- ``percist_unlisted_lesions``: what a baseline lesion that a follow-up does not list at all
  means. ``"warn"`` (default with ``hottest``: the reader reported the hottest lesion(s);
  the unlisted lesion is assumed not to be the hottest, with a warning), ``"ne"`` (default
  with ``sum5``: the value is uncertain → NE unless PMD is met) or ``"ignore"``. A lesion
  that *is* listed as ``not_evaluable`` or without ``sul_peak`` always makes the timepoint
  NE unless PMD is met.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.response.model import (
    Assessment,
    Case,
    Role,
    Special,
    State,
    Timepoint,
    TimepointResult,
)

CITE = "PERCIST 1.0, Wahl 2009"
CITE_PRACTICAL = "Practical PERCIST, O 2016"

CMR, PMR, SMD, PMD, NE = "CMR", "PMR", "SMD", "PMD", "NE"
BASELINE = "baseline"
#: Better → worse, for best overall response.
RANK = {CMR: 0, PMR: 1, SMD: 2, PMD: 3}

_ZERO = Decimal(0)
_D08 = Decimal("0.8")
_D15 = Decimal("1.5")
_D2 = Decimal(2)
_TENTH = Decimal("0.1")


def dec(value: Any, where: str) -> Decimal:
    """An exact Decimal from a JSON/Python number (floats through their repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise InputError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InputError(f"{where}: expected a number, got {value!r}") from exc


def fmt(value: Decimal) -> str:
    """Display a Decimal without exponent or trailing zeros (as ``trace.num``; trace only)."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt_pct(value: Decimal, ref: Decimal) -> str:
    """Signed percent change of ``value`` over ``ref`` rounded half-up to 0.1 for display only
    (same text as ``trace.pct``); decisions never read it."""
    if ref == 0:
        return "n/a"
    shown = fmt(((value - ref) * 100 / ref).quantize(_TENTH, rounding=ROUND_HALF_UP))
    if shown == "-0":
        shown = "0"
    return ("+" + shown if shown[0] != "-" and shown != "0" else shown) + "%"


#: Reader's attributions of new uptake that is not typical of tumour (criteria.md §14.6 P-06).
NOT_TUMOUR_PATTERNS = frozenset(
    {"infection", "inflammation", "treatment_effect", "radiation", "flare", "benign",
     "physiological"}
)


def not_typical_of_tumour(extra: dict[str, Any]) -> bool:
    """True when the reader marked new uptake as not typical of tumour."""
    if not extra:
        return False
    if extra.get("typical_of_tumour") is False or extra.get("typical") is False:
        return True
    pattern = extra.get("pattern")
    return pattern is not None and str(pattern).lower() in NOT_TUMOUR_PATTERNS


def new_lesion_status(tp: Timepoint) -> tuple[list[str], list[str]]:
    """(ids of new lesions typical of tumour, ids needing a reader decision).

    ``Timepoint.new_lesions = True`` without lesion detail counts as one typical new lesion.
    A new lesion with ``state`` absent is ignored; ``equivocal``,
    ``extra.typical_of_tumour = false`` or ``extra.pattern`` in :data:`NOT_TUMOUR_PATTERNS`
    (infection, treatment effect, G-CSF flare: criteria.md §14.6 P-06) needs a reader
    decision.
    """
    typical: list[str] = []
    doubtful: list[str] = []
    for lid, obs in tp.lesions.items():
        if obs.role is not Role.NEW:
            continue
        if obs.state is State.ABSENT or obs.sul_peak is Special.ABSENT:
            continue
        if obs.state is State.EQUIVOCAL or not_typical_of_tumour(obs.extra):
            doubtful.append(lid)
        else:
            typical.append(lid)
    if tp.new_lesions and not typical:
        typical.append("(timepoint flag)")
    return typical, doubtful


def best_response(results: list[TimepointResult], rank: dict[str, int], pd: str) -> str | None:
    """Best timepoint category from the first follow-up up to and including the first PD.

    PERCIST 1.0 / EORTC / Lugano: best response recorded from the start of treatment until
    progression. ``None`` without follow-up; ``"NE"`` when no follow-up is evaluable.
    """
    best: str | None = None
    seen = False
    for res in results[1:]:
        seen = True
        cat = res.overall
        if cat in rank and (best is None or rank[cat] < rank[best]):
            best = cat
        if cat == pd:
            break
    if best is None and seen:
        return NE
    return best


def _reference(tp: Timepoint) -> tuple[str, Decimal | None, Decimal | None]:
    """Which normal-tissue reference applies: liver unless abnormal/absent, else blood pool."""
    refs = tp.references
    if not tp.extra.get("liver_abnormal") and "liver_sul_mean" in refs:
        return "liver", refs["liver_sul_mean"], refs.get("liver_sul_sd")
    if "blood_pool_sul_mean" in refs:
        return "blood_pool", refs["blood_pool_sul_mean"], refs.get("blood_pool_sul_sd")
    return "liver", refs.get("liver_sul_mean"), refs.get("liver_sul_sd")


def measurability_threshold(kind: str, mean: Decimal, sd: Decimal) -> Decimal:
    """PERCIST 1.0 minimum measurable SULpeak: 1.5 × liver mean + 2 SD, or 2.0 × blood pool
    mean + 2 SD when the liver is abnormal (Wahl 2009; criteria.md §6.3, vector P-01)."""
    factor = _D15 if kind == "liver" else _D2
    return factor * mean + _D2 * sd


def _sum5(values: list[tuple[Decimal, str, str | None]]) -> Decimal:
    """Sum of SULpeak of up to 5 hottest lesions, at most 2 per organ (PERCIST 1.0)."""
    total = _ZERO
    taken = 0
    per_organ: dict[str, int] = {}
    for value, _lid, site in sorted(values, key=lambda v: v[0], reverse=True):
        organ = site or ""
        if site is not None and per_organ.get(organ, 0) >= 2:
            continue
        per_organ[organ] = per_organ.get(organ, 0) + 1
        total += value
        taken += 1
        if taken == 5:
            break
    return total


class _Scan:
    """The PET numbers of one timepoint, gathered once."""

    __slots__ = ("values", "by_id", "missing", "unlisted", "hottest", "hottest_id", "tlg",
                 "tlg_complete", "typical", "doubtful")

    def __init__(self, tp: Timepoint, expected: tuple[str, ...] | None) -> None:
        values: list[tuple[Decimal, str, str | None]] = []
        by_id: dict[str, Decimal] = {}
        missing: list[str] = []
        hottest: Decimal | None = None
        hottest_id: str | None = None
        tlg = _ZERO
        tlg_complete = True
        typical: list[str] = []
        doubtful: list[str] = []
        new_role = Role.NEW
        for lid, obs in tp.lesions.items():
            if obs.role is new_role:
                # New FDG-avid foci (same rules as ``new_lesion_status``).
                if obs.state is State.ABSENT or obs.sul_peak is Special.ABSENT:
                    continue
                if obs.state is State.EQUIVOCAL or not_typical_of_tumour(obs.extra):
                    doubtful.append(lid)
                else:
                    typical.append(lid)
                continue
            sul = obs.sul_peak
            if sul.__class__ is Decimal:
                value = sul
            elif sul is Special.ABSENT or obs.state is State.ABSENT:
                value = _ZERO
            else:
                missing.append(lid)
                continue
            values.append((value, lid, obs.site))
            by_id[lid] = value
            if hottest is None or value > hottest:
                hottest, hottest_id = value, lid
            t = obs.extra.get("tlg") if obs.extra else None
            if t is None:
                if value:
                    tlg_complete = False
            else:
                tlg += dec(t, f"lesion {lid}: tlg")
        unlisted: list[str] = []
        if expected:
            lesions = tp.lesions
            for lid in expected:
                if lid not in lesions:
                    unlisted.append(lid)
        self.unlisted = unlisted
        if tp.new_lesions and not typical:
            typical.append("(timepoint flag)")
        self.typical = typical
        self.doubtful = doubtful
        self.values = values
        self.by_id = by_id
        self.missing = missing
        self.hottest = hottest
        self.hottest_id = hottest_id
        self.tlg = tlg
        self.tlg_complete = tlg_complete and bool(values)


def _comparability(
    base: Timepoint, tp: Timepoint, ref_kind: str, opts: dict[str, Any], trace: list[str],
    warnings: list[str],
) -> bool:
    """Practical PERCIST quality gate (O 2016; criteria.md §6.2). False: not comparable.

    Hard failures (→ NE): reference SULmean change beyond 20 % / 0.3 SUL (both required by
    default), uptake-time difference > 15 min, different SUL (LBM) formula. Soft findings
    (warning only): glucose ≥ 200 mg/dL, uptake outside 50–70 min, another scanner or
    reconstruction, injected activity differing > 20 %.
    """
    ok = True
    key = "liver_sul_mean" if ref_kind == "liver" else "blood_pool_sul_mean"
    name = "liver" if ref_kind == "liver" else "blood-pool"
    b_ref = base.references.get(key)
    f_ref = tp.references.get(key)
    date = tp.date.isoformat()
    if b_ref is None or f_ref is None:
        warnings.append(f"{date}: {name} SULmean missing; comparability with baseline not verified")
    else:
        diff = abs(f_ref - b_ref)
        max_pct = opts["liver_pct"]
        max_sul = opts["liver_sul"]
        pct_ok = diff * 100 <= b_ref * max_pct
        sul_ok = diff <= max_sul
        passed = (pct_ok and sul_ok) if opts["liver_gate"] == "both" else (pct_ok or sul_ok)
        if not passed:
            ok = False
            msg = (
                f"not comparable: {name} SULmean {fmt(b_ref)} → {fmt(f_ref)} "
                f"({fmt_pct(f_ref, b_ref)}, Δ {fmt(f_ref - b_ref)} SUL) exceeds "
                f"{fmt(max_pct)} % / {fmt(max_sul)} SUL ({CITE_PRACTICAL}; {CITE})"
            )
            trace.append(msg)
            warnings.append(f"{date}: {msg}")
    bx = base.extra
    fx = tp.extra
    if not fx and not bx:
        return ok
    b_up, f_up = bx.get("uptake_min"), fx.get("uptake_min")
    if b_up is not None and f_up is not None:
        b_up, f_up = dec(b_up, "baseline uptake_min"), dec(f_up, f"{date}: uptake_min")
        if abs(f_up - b_up) > opts["uptake_tol"]:
            ok = False
            msg = (
                f"not comparable: uptake time {fmt(f_up)} min vs baseline {fmt(b_up)} min "
                f"differs by more than {fmt(opts['uptake_tol'])} min ({CITE_PRACTICAL})"
            )
            trace.append(msg)
            warnings.append(f"{date}: {msg}")
    if f_up is not None:
        f_up = dec(f_up, f"{date}: uptake_min")
        if f_up < 50 or f_up > 70:
            warnings.append(f"{date}: uptake time {fmt(f_up)} min outside 50–70 min")
    b_f, f_f = bx.get("sul_formula"), fx.get("sul_formula")
    if b_f is not None and f_f is not None and str(b_f).lower() != str(f_f).lower():
        ok = False
        msg = f"not comparable: SUL formula {f_f} differs from baseline {b_f} ({CITE})"
        trace.append(msg)
        warnings.append(f"{date}: {msg}")
    glucose = fx.get("glucose_mg_dl")
    if glucose is not None and dec(glucose, f"{date}: glucose_mg_dl") >= 200:
        warnings.append(f"{date}: blood glucose {glucose} mg/dL ≥ 200 ({CITE_PRACTICAL})")
    for field_name in ("scanner", "reconstruction"):
        if bx.get(field_name) is not None and fx.get(field_name) is not None and (
            bx[field_name] != fx[field_name]
        ):
            warnings.append(
                f"{date}: {field_name} {fx[field_name]!r} differs from baseline "
                f"{bx[field_name]!r} ({CITE_PRACTICAL})"
            )
    b_a, f_a = bx.get("injected_mbq"), fx.get("injected_mbq")
    if b_a is not None and f_a is not None:
        b_a, f_a = dec(b_a, "baseline injected_mbq"), dec(f_a, f"{date}: injected_mbq")
        if abs(f_a - b_a) * 5 > b_a:
            warnings.append(f"{date}: injected activity differs > 20 % from baseline [V]")
    return ok


def _options(case: Case) -> dict[str, Any]:
    o = case.options
    measure = o.get("percist_measure", "hottest")
    if measure not in ("hottest", "sum5"):
        raise InputError(f"options.percist_measure: expected 'hottest' or 'sum5', got {measure!r}")
    pmd_ref = o.get("percist_pmd_reference", "baseline")
    if pmd_ref not in ("baseline", "nadir"):
        raise InputError(
            f"options.percist_pmd_reference: expected 'baseline' or 'nadir', got {pmd_ref!r}"
        )
    gate = o.get("percist_liver_gate", "both")
    if gate not in ("both", "either"):
        raise InputError(f"options.percist_liver_gate: expected 'both' or 'either', got {gate!r}")
    unlisted = o.get("percist_unlisted_lesions", "warn" if measure == "hottest" else "ne")
    if unlisted not in ("ne", "warn", "ignore"):
        raise InputError(
            "options.percist_unlisted_lesions: expected 'ne', 'warn' or 'ignore', "
            f"got {unlisted!r}"
        )
    return {
        "measure": measure,
        "pmd_ref": pmd_ref,
        "liver_gate": gate,
        "liver_pct": dec(o.get("percist_liver_max_change_pct", 20),
                         "options.percist_liver_max_change_pct"),
        "liver_sul": dec(o.get("percist_liver_max_change_sul", "0.3"),
                         "options.percist_liver_max_change_sul"),
        "uptake_tol": dec(o.get("percist_uptake_tolerance_min", 15),
                          "options.percist_uptake_tolerance_min"),
        "unlisted": unlisted,
    }


def assess(case: Case) -> Assessment:
    """Classify every follow-up PET against baseline by PERCIST 1.0 (Wahl 2009).

    Order of rules (each timepoint): new FDG-avid lesions typical of tumour → PMD;
    comparability gate → NE; SULpeak > +30 % **and** > +0.8 SUL over the reference → PMD
    (strict); TLG ≥ +75 % without a fall in SUL → PMD [V]; missing lesion values → NE;
    hottest uptake < liver (blood-pool) mean (strict) → CMR; SULpeak ≤ −30 % **and** ≤ −0.8 SUL with
    no lesion > 30 % larger or hotter → PMR (inclusive); otherwise SMD. Ratios are decided
    by cross-multiplication on exact Decimals (criteria.md §1.2).

    >>> # see tests/response/test_percist.py for worked vectors (P-01, P-05, P-06)
    """
    opts = _options(case)
    sum5 = opts["measure"] == "sum5"
    warnings: list[str] = list(getattr(case, "warnings", []) or [])
    base_tp = case.baseline
    base = _Scan(base_tp, None)
    ref_kind, ref_mean, ref_sd = _reference(base_tp)
    base_trace: list[str] = []
    base_numbers: dict[str, Any] = {"reference": ref_kind}
    measurable = False
    base_value: Decimal | None = base.hottest if not sum5 else (
        _sum5(base.values) if base.values else None
    )
    threshold: Decimal | None = None
    if ref_mean is not None and ref_sd is not None:
        threshold = measurability_threshold(ref_kind, ref_mean, ref_sd)
        base_numbers["measurability_threshold"] = threshold
        base_numbers[f"{ref_kind}_sul_mean"] = ref_mean
    if base.hottest is None:
        base_trace.append(f"baseline: no lesion with a SULpeak ({CITE})")
        warnings.append("baseline: no lesion SULpeak; PERCIST cannot be applied")
    elif threshold is None:
        measurable = True
        base_trace.append(
            f"baseline: hottest lesion {base.hottest_id} SULpeak {fmt(base.hottest)}; "
            f"{ref_kind} SULmean/SD missing, measurability not verified ({CITE})"
        )
        warnings.append("baseline: reference SULmean/SD missing; measurability not verified")
    else:
        measurable = base.hottest >= threshold
        factor = "1.5" if ref_kind == "liver" else "2.0"
        base_trace.append(
            f"baseline: hottest lesion {base.hottest_id} SULpeak {fmt(base.hottest)} "
            f"{'≥' if measurable else '<'} measurability threshold {fmt(threshold)} "
            f"= {factor} × {ref_kind} SULmean {fmt(ref_mean)} + 2 × SD {fmt(ref_sd)} ({CITE})"
        )
        if not measurable:
            warnings.append(
                f"baseline: no measurable lesion (hottest SULpeak {fmt(base.hottest)} < "
                f"{fmt(threshold)}); follow-ups are NE unless new lesions give PMD"
            )
    base_numbers["measurable"] = measurable
    if base.missing:
        warnings.append(f"baseline: lesions without SULpeak: {', '.join(base.missing)}")
    if base_value is not None:
        base_numbers["sul_peak"] = base.hottest
        base_numbers["sul_peak_lesion"] = base.hottest_id
        if sum5:
            base_numbers["sum_sul_peak"] = base_value
    if base.tlg_complete:
        base_numbers["tlg"] = base.tlg
    results = [TimepointResult(date=base_tp.date, overall=BASELINE, numbers=base_numbers,
                               trace=base_trace)]
    expected = tuple(base.by_id) if opts["unlisted"] != "ignore" else None
    unlisted_ne = opts["unlisted"] == "ne"
    nadir = base_value
    metric = "sum of SULpeak" if sum5 else "SULpeak"
    pmd_nadir = opts["pmd_ref"] == "nadir"

    for tp in case.timepoints[1:]:
        trace: list[str] = []
        numbers: dict[str, Any] = {}
        cat: str | None = None
        if not getattr(tp, "assessed", True) or getattr(tp, "pet_done", None) is False:
            results.append(TimepointResult(date=tp.date, overall=NE, numbers=numbers,
                                           trace=["NE: no PET at this visit"]))
            continue
        scan = _Scan(tp, expected)
        typical, doubtful = scan.typical, scan.doubtful
        if scan.unlisted:
            if unlisted_ne:
                scan.missing.extend(scan.unlisted)
            else:
                warnings.append(
                    f"{tp.date.isoformat()}: baseline lesion(s) {', '.join(scan.unlisted)} not "
                    "reported; assumed not to be the hottest"
                )
        value = scan.hottest if not sum5 else (_sum5(scan.values) if scan.values else None)
        if scan.hottest is not None:
            numbers["sul_peak"] = scan.hottest
            numbers["sul_peak_lesion"] = scan.hottest_id
        if sum5 and value is not None:
            numbers["sum_sul_peak"] = value
        if base_value is not None:
            numbers["baseline_sul_peak"] = base.hottest
            if sum5:
                numbers["baseline_sum_sul_peak"] = base_value
            if value is not None:
                numbers["delta_sul"] = value - base_value
                if base_value:
                    numbers["change_pct"] = (value - base_value) * 100 / base_value
        if threshold is not None:
            numbers["measurability_threshold"] = threshold
        fu_ref_mean = tp.references.get(
            "liver_sul_mean" if ref_kind == "liver" else "blood_pool_sul_mean"
        )
        if fu_ref_mean is not None:
            numbers[f"{ref_kind}_sul_mean"] = fu_ref_mean
        comparable = _comparability(base_tp, tp, ref_kind, opts, trace, warnings)
        numbers["comparable"] = comparable
        if typical:
            cat = PMD
            trace.append(
                f"PMD: new FDG-avid lesion(s) typical of tumour: {', '.join(typical)} ({CITE})"
            )
        if doubtful:
            msg = (
                f"new uptake {', '.join(doubtful)} not typical of tumour (infection/treatment "
                f"effect?): not PMD without a reader decision ({CITE})"
            )
            trace.append(msg)
            warnings.append(f"{tp.date.isoformat()}: {msg}")
        ref_value = base_value
        if pmd_nadir and nadir is not None:
            ref_value = nadir
            numbers["nadir_sul_peak"] = nadir
        if cat is None and not comparable:
            cat = NE
            trace.append("NE: follow-up not comparable with baseline; not classified")
        if cat is None and not measurable:
            cat = NE
            trace.append(f"NE: no measurable lesion at baseline ({CITE})")
        # PMD is strict: > +30 % and > +0.8 SUL (Wahl 2009; criteria.md §6.5).
        if (cat is None and value is not None and ref_value is not None
                and value * 10 > ref_value * 13 and value - ref_value > _D08):
            cat = PMD
            ref_name = "nadir" if pmd_nadir else "baseline"
            trace.append(
                f"PMD: {metric} {fmt(value)} ({scan.hottest_id}) is "
                f"{fmt_pct(value, ref_value)} and +{fmt(value - ref_value)} SUL over "
                f"{ref_name} {fmt(ref_value)} (> 30 % and > 0.8 SUL; {CITE})"
            )
            trace.append("note: PMD should be confirmed within ~1 month unless RECIST "
                         f"also shows PD ({CITE})")
        if (cat is None and base.tlg_complete and base.tlg > 0 and value is not None
                and base_value is not None and value >= base_value
                and scan.tlg * 100 >= base.tlg * 175):
            cat = PMD
            trace.append(
                f"PMD: TLG {fmt(scan.tlg)} is {fmt_pct(scan.tlg, base.tlg)} over baseline "
                f"{fmt(base.tlg)} (≥ 75 %) with no fall in SUL [V] ({CITE})"
            )
        if scan.tlg_complete:
            numbers["tlg"] = scan.tlg
        if cat is None and (scan.missing or value is None):
            cat = NE
            trace.append(
                "NE: no SULpeak for lesion(s) "
                f"{', '.join(scan.missing) or '(none recorded)'}; hottest lesion uncertain"
            )
        if cat is None:
            assert value is not None and base_value is not None
            cmr_ref = fu_ref_mean if fu_ref_mean is not None else ref_mean
            hottest = scan.hottest
            # Strict: "resolution of uptake ... so that it is less than mean liver activity"
            # (Wahl 2009, PERCIST 1.0 CMR); uptake equal to the liver mean is not CMR.
            if cmr_ref is not None and hottest is not None and hottest < cmr_ref and not doubtful:
                cat = CMR
                trace.append(
                    f"CMR: hottest uptake {fmt(hottest)} < {ref_kind} SULmean "
                    f"{fmt(cmr_ref)}; no new FDG-avid lesion ({CITE})"
                )
            elif value * 10 <= base_value * 7 and base_value - value >= _D08:
                grown = _grown_lesions(base_tp, tp, base.by_id, scan.by_id)
                if grown:
                    cat = SMD
                    trace.append(
                        f"SMD: {metric} {fmt(value)} is {fmt_pct(value, base_value)} and "
                        f"-{fmt(base_value - value)} SUL from baseline {fmt(base_value)}, but "
                        f"{grown} ({CITE})"
                    )
                else:
                    cat = PMR
                    trace.append(
                        f"PMR: {metric} {fmt(value)} is {fmt_pct(value, base_value)} and "
                        f"-{fmt(base_value - value)} SUL from baseline {fmt(base_value)} "
                        f"(≥ 30 % and ≥ 0.8 SUL; {CITE})"
                    )
            else:
                cat = SMD
                trace.append(
                    f"SMD: {metric} {fmt(value)} is {fmt_pct(value, base_value)} "
                    f"({'+' if value >= base_value else '-'}{fmt(abs(value - base_value))} SUL) "
                    f"from baseline {fmt(base_value)}: neither PMR nor PMD ({CITE})"
                )
            if cat != CMR and cmr_ref is not None and hottest == cmr_ref:
                trace.append(
                    f"not CMR: hottest uptake {fmt(hottest)} equals the {ref_kind} SULmean; "
                    f"CMR needs uptake less than the mean ({CITE})"
                )
        results.append(TimepointResult(date=tp.date, overall=cat, numbers=numbers, trace=trace,
                                       new_lesions="Yes" if typical else "No"))
        if (pmd_nadir and cat in (CMR, PMR, SMD) and value is not None
                and (nadir is None or value < nadir)):
            nadir = value
    return Assessment(
        criteria=case.criteria or "percist",
        timepoints=results,
        best_overall_response=best_response(results, RANK, PMD),
        warnings=warnings,
        extra={"measure": opts["measure"], "pmd_reference": opts["pmd_ref"],
               "reference": ref_kind},
    )


def _grown_lesions(
    base_tp: Timepoint, tp: Timepoint, base_sul: dict[str, Decimal], fu_sul: dict[str, Decimal]
) -> str:
    """Lesions > 30 % hotter or > 30 % larger (LD) than at baseline, which block PMR."""
    out: list[str] = []
    for lid, value in fu_sul.items():
        b = base_sul.get(lid)
        if b is not None and b > 0 and value * 10 > b * 13:
            out.append(f"lesion {lid} SULpeak {fmt_pct(value, b)}")
    for lid, obs in tp.lesions.items():
        b_obs = base_tp.lesions.get(lid)
        if b_obs is None:
            continue
        b_ld, f_ld = b_obs.ld_mm, obs.ld_mm
        if b_ld.__class__ is Decimal and f_ld.__class__ is Decimal and b_ld > 0 and (
            f_ld * 10 > b_ld * 13
        ):
            out.append(f"lesion {lid} size {fmt_pct(f_ld, b_ld)}")
    if not out:
        return ""
    return "PMR needs no lesion > 30 % hotter or larger: " + "; ".join(out)
