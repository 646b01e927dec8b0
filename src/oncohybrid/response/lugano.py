"""Lugano 2014 response for lymphoma: PET-CT (5PS), CT (SPD / per-lesion nadir) and combined.

Cheson BD, Fisher RI, Barrington SF et al. *Recommendations for initial evaluation, staging,
and response assessment of Hodgkin and non-Hodgkin lymphoma: the Lugano classification.*
JCO 2014;32:3059–3068 (Table 3), with the Deauville scale of Barrington et al. JCO 2014
(see :mod:`oncohybrid.response.deauville`). Spec: criteria.md §8.1–8.4, §13, §14.7, §16.

Criteria names (``case.criteria``): ``lugano-pet`` (CMR/PMR/NMR/PMD), ``lugano-ct``
(CR/PR/SD/PD) and ``lugano`` (combined; the PET result takes precedence wherever PET is
given, criteria.md §8.4).

Inputs. PET: per lesion ``deauville`` (1–5 or "X") or ``suv_max`` with
``references.mediastinum_suv_max``/``liver_suv_max`` (quantitative decision support);
optional ``extra.uptake_change`` (``reduced``/``unchanged``/``increased``, the reader's
comparison with baseline) and ``extra.physiological_background`` (the physiological-uptake
exception: Waldeyer's ring, high-physiological extranodal sites, activated marrow/spleen
with uptake no higher than the surrounding normal tissue). CT: per lesion ``ldi_mm``,
``sdi_mm``, ``nodal``; non-measured lesions as ``role="non-target"`` with ``state``; new
lesions as ``role="new"``; ``spleen_length_mm``. Both: ``marrow`` (``negative``,
``reactive``, ``involved``, ``reduced``, ``unchanged``, ``new``/``recurrent``,
``not_evaluable``), ``new_lesions``; ``extra.phase`` (``interim``/``end_of_treatment``).

Options: ``deauville_score5_liver_multiple`` (3), ``lugano_score3_positive`` (False),
``lugano_uptake_change_pct`` (25: a SUVmax change of at least this much is "reduced" or
"increased" when neither the reader nor the score says so — decision support, not Lugano
text), ``lugano_increment_basis`` (``"nadir"``: the ≤ 2 cm / > 2 cm size class of the
0.5/1.0 cm increment is read at the lesion's nadir; ``"current"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.response import deauville
from oncohybrid.response.model import (
    Assessment,
    Case,
    LesionObs,
    Role,
    Special,
    State,
    Timepoint,
    TimepointResult,
)
from oncohybrid.response.percist import dec, fmt, fmt_pct, not_typical_of_tumour

CITE = "Lugano 2014, Cheson JCO 2014 Table 3"
NE = "NE"
BASELINE = "baseline"
PET_RANK = {"CMR": 0, "PMR": 1, "NMR": 2, "PMD": 3}
CT_RANK = {"CR": 0, "PR": 1, "SD": 2, "PD": 3}
PET_TO_CT = {"CMR": "CR", "PMR": "PR", "NMR": "SD", "PMD": "PD"}

SPLEEN_NORMAL_MM = Decimal(130)
NODE_LDI_MM = Decimal(15)
EXTRANODAL_LDI_MM = Decimal(10)
_FIVE = Decimal(5)
_ZERO = Decimal(0)
_TWENTY = Decimal(20)

_MARROW_ALIASES = {
    "negative": "negative", "normal": "negative", "none": "negative", "clear": "negative",
    "reactive": "reactive", "diffuse_reactive": "reactive",
    "involved": "involved", "positive": "involved",
    "reduced": "reduced", "residual": "reduced", "improved": "reduced",
    "unchanged": "unchanged", "stable": "unchanged",
    "new": "new", "recurrent": "new", "progression": "new", "increased": "new",
    "not_evaluable": "not_evaluable",
}


def marrow_state(tp: Timepoint) -> str | None:
    """Normalised bone-marrow finding of a timepoint (None when not reported)."""
    if tp.marrow is None:
        return None
    key = str(tp.marrow).strip().lower().replace(" ", "_").replace("-", "_")
    if key not in _MARROW_ALIASES:
        raise InputError(
            f"timepoint {tp.date.isoformat()}: marrow {tp.marrow!r} not one of "
            f"{', '.join(sorted(_MARROW_ALIASES))}"
        )
    return _MARROW_ALIASES[key]


@dataclass
class Facts:
    """One timepoint's category plus what LYRIC and the combination need to know."""

    category: str
    numbers: dict[str, Any] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)
    #: Kinds of PD/PMD evidence: "lesion", "spd", "spleen", "nontarget", "regrowth",
    #: "new", "marrow", "uptake".
    pd_kinds: list[str] = field(default_factory=list)
    evaluated: bool = True


# --------------------------------------------------------------------------- PET (5PS)

def _has_pet(tp: Timepoint, pet_only: bool = False) -> bool:
    """Was PET read at this visit? ``pet_only`` (criteria ``lugano-pet``): a visit whose
    lesions are only recorded as gone (``state: absent``) is a PET read too — every site
    cleared, Deauville 1 — whereas in the combined mode such a row may be a CT finding."""
    if tp.extra.get("pet") is not None:
        return bool(tp.extra.get("pet"))
    if getattr(tp, "pet_done", None) is False:
        return False
    return any(
        o.deauville is not None or o.suv_max is not None
        or (pet_only and o.state is State.ABSENT)
        for o in tp.lesions.values()
    )


def _has_ct(tp: Timepoint) -> bool:
    if tp.extra.get("ct") is not None:
        return bool(tp.extra.get("ct"))
    return tp.spleen_length_mm is not None or any(
        o.ldi_mm is not None or o.sdi_mm is not None for o in tp.lesions.values()
    )


class PetEngine:
    """Lugano 2014 PET-CT response (Table 3, "PET-CT-based response"), timepoint by timepoint."""

    def __init__(self, case: Case, warnings: list[str], pet_only: bool = False) -> None:
        self.case = case
        self.warnings = warnings
        self.pet_only = pet_only
        opts = case.options
        self.k5 = deauville.score5_multiple(opts)
        self.score3_positive = bool(opts.get("lugano_score3_positive", False))
        self.change_pct = dec(opts.get("lugano_uptake_change_pct", 25),
                              "options.lugano_uptake_change_pct")
        self.base: dict[str, tuple[int | str | None, Decimal | None]] = {}
        self.base_marrow: str | None = None

    def baseline(self, tp: Timepoint) -> Facts:
        facts = Facts(BASELINE)
        scores: dict[str, Any] = {}
        for lid, obs in tp.lesions.items():
            score, _src, why = deauville.lesion_score(obs, tp.references,
                                                      score5_liver_multiple=self.k5)
            suv = obs.suv_max if isinstance(obs.suv_max, Decimal) else None
            self.base[lid] = (score, suv)
            scores[lid] = score
            facts.trace.append(f"baseline {why}")
        self.base_marrow = marrow_state(tp)
        facts.numbers["deauville"] = scores
        if scores:
            ints = [s for s in scores.values() if isinstance(s, int)]
            if ints:
                facts.numbers["max_deauville"] = max(ints)
        return facts

    def _direction(self, lid: str, obs: LesionObs, score: int, tp: Timepoint) -> tuple[str, str]:
        """Uptake against baseline: reader's call, else the score, else SUVmax change."""
        visual = obs.extra.get("uptake_change") or tp.extra.get("uptake_change")
        if visual is not None:
            v = str(visual).lower()
            if v not in ("reduced", "unchanged", "increased"):
                raise InputError(
                    f"lesion {lid}: uptake_change must be reduced/unchanged/increased, "
                    f"got {visual!r}"
                )
            return v, "reader"
        b_score, b_suv = self.base.get(lid, (None, None))
        if isinstance(b_score, int) and b_score != score:
            return ("reduced" if score < b_score else "increased"), (
                f"Deauville {b_score} → {score}"
            )
        suv = obs.suv_max
        if b_suv is not None and isinstance(suv, Decimal) and b_suv > 0:
            how = f"SUVmax {fmt(b_suv)} → {fmt(suv)} ({fmt_pct(suv, b_suv)})"
            if (b_suv - suv) * 100 >= b_suv * self.change_pct:
                return "reduced", how
            if (suv - b_suv) * 100 >= b_suv * self.change_pct:
                return "increased", how
            return "unchanged", how + f", within {fmt(self.change_pct)} %"
        if b_score is None and lid not in self.base:
            return "unchanged", "no baseline uptake to compare"
        return "unchanged", "no significant change recorded"

    def follow_up(self, tp: Timepoint) -> Facts:
        if not getattr(tp, "assessed", True) or not _has_pet(tp, self.pet_only):
            return Facts(NE, trace=["NE: no PET at this visit"], evaluated=False)
        facts = Facts(NE)
        tr = facts.trace
        scores: dict[str, Any] = {}
        levels: list[str] = []
        missing: list[str] = []
        new_ids: list[str] = []
        for lid, obs in tp.lesions.items():
            score, src, why = deauville.lesion_score(obs, tp.references,
                                                     score5_liver_multiple=self.k5)
            scores[lid] = score
            if obs.role is Role.NEW:
                if obs.state is State.ABSENT or score == "X":
                    tr.append(f"{why}: not counted as lymphoma")
                    continue
                if obs.state is State.EQUIVOCAL or not_typical_of_tumour(obs.extra):
                    msg = f"new focus {lid} not clearly lymphoma: biopsy or interval scan ({CITE})"
                    tr.append(msg)
                    self.warnings.append(f"{tp.date.isoformat()}: {msg}")
                    continue
                if isinstance(score, int) and score <= 3:
                    tr.append(f"{why}: new focus not FDG-avid above liver, not counted")
                    continue
                new_ids.append(lid)
                continue
            if score is None:
                missing.append(lid)
                continue
            if score == "X":
                tr.append(why)
                continue
            if src == "quantitative" or "decision support only" in why:
                tr.append(why)
            if deauville.is_positive(score, self.score3_positive):
                if obs.extra.get("physiological_background"):
                    tr.append(
                        f"{lid}: Deauville {score} at a site of physiological uptake, no higher "
                        f"than surrounding normal tissue → counted as complete response "
                        f"({CITE}; Barrington 2014)"
                    )
                    levels.append("CMR")
                    continue
                direction, how = self._direction(lid, obs, score, tp)
                if direction == "increased":
                    levels.append("PMD")
                    facts.pd_kinds.append("uptake")
                    tr.append(f"PMD: {lid} Deauville {score} with increased uptake vs baseline "
                              f"({how}; {CITE})")
                elif direction == "reduced":
                    levels.append("PMR")
                    tr.append(f"{lid}: Deauville {score} with reduced uptake vs baseline ({how})")
                else:
                    levels.append("NMR")
                    tr.append(f"{lid}: Deauville {score} with no significant change vs baseline "
                              f"({how})")
            else:
                levels.append("CMR")
        for lid in self.base:
            if lid not in tp.lesions:
                missing.append(lid)
        if tp.new_lesions and not new_ids:
            new_ids.append("(timepoint flag)")
        if new_ids:
            levels.append("PMD")
            facts.pd_kinds.append("new")
            tr.append(f"PMD: new FDG-avid foci consistent with lymphoma: {', '.join(new_ids)} "
                      f"({CITE})")
        marrow = marrow_state(tp)
        if marrow == "new":
            levels.append("PMD")
            facts.pd_kinds.append("marrow")
            tr.append(f"PMD: new or recurrent FDG-avid marrow foci ({CITE})")
        elif marrow == "reduced":
            levels.append("PMR")
            tr.append("marrow: residual uptake above normal marrow but lower than baseline")
        elif marrow in ("unchanged", "involved"):
            levels.append("NMR" if self.base_marrow in ("involved", None) else "PMD")
            tr.append(f"marrow: {marrow} FDG-avid disease")
        elif marrow == "not_evaluable":
            missing.append("marrow")
        elif marrow is None and self.base_marrow == "involved":
            self.warnings.append(f"{tp.date.isoformat()}: marrow involved at baseline but not "
                                 "reported; CMR assumes it cleared")
        facts.numbers["deauville"] = scores
        ints = [s for s in scores.values() if isinstance(s, int)]
        if ints:
            facts.numbers["max_deauville"] = max(ints)
        phase = tp.extra.get("phase")
        if "PMD" in levels:
            facts.category = "PMD"
        elif missing:
            facts.category = NE
            tr.append(f"NE: no Deauville score for {', '.join(missing)}")
        else:
            worst = max(levels, key=PET_RANK.__getitem__) if levels else "CMR"
            facts.category = worst
            if worst == "CMR":
                top = f" (highest {max(ints)})" if ints else ""
                tr.append(f"CMR: all sites Deauville 1–{'2' if self.score3_positive else '3'}"
                          f"{top} (residual mass of any size allowed), no new lesions, no "
                          f"FDG-avid marrow disease ({CITE})")
            elif worst == "PMR":
                what = ("residual disease" if phase == "end_of_treatment"
                        else "responding disease")
                tr.append(f"PMR: Deauville 4–5 with reduced uptake vs baseline ({what}); "
                          f"no new lesions ({CITE})")
            else:
                tr.append(f"NMR: Deauville 4–5 without significant change in uptake vs "
                          f"baseline; no new lesions ({CITE})")
        return facts


# --------------------------------------------------------------------------- CT (SPD)

def _dims(obs: LesionObs) -> tuple[Decimal, Decimal] | None:
    """(LDi, SDi) in mm: too small → 5 × 5, gone → 0 × 0 (Lugano 2014); None if unknown."""
    ldi, sdi = obs.ldi_mm, obs.sdi_mm
    if ldi is Special.ABSENT or (obs.state is State.ABSENT and ldi is None):
        return _ZERO, _ZERO
    if ldi is Special.TOO_SMALL:
        return _FIVE, _FIVE
    if isinstance(ldi, Decimal):
        if sdi is Special.TOO_SMALL:
            return ldi, _FIVE
        if sdi is Special.ABSENT:
            return ldi, _ZERO
        if isinstance(sdi, Decimal):
            return ldi, sdi
    return None


class CtEngine:
    """Lugano 2014 CT-based response (Table 3), with per-lesion PPD nadirs for PD."""

    def __init__(self, case: Case, warnings: list[str]) -> None:
        self.case = case
        self.warnings = warnings
        basis = case.options.get("lugano_increment_basis", "nadir")
        if basis not in ("nadir", "current"):
            raise InputError(
                f"options.lugano_increment_basis: expected 'nadir' or 'current', got {basis!r}"
            )
        self.basis = basis
        self.targets: list[str] = []
        self.nodal: dict[str, bool] = {}
        #: lesion id → (smallest PPD, smallest LDi, smallest SDi) recorded so far, baseline
        #: included: "nadir (the smallest recorded measurement)".
        self.nadir: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        self.resolved: set[str] = set()
        self.base_spd: Decimal | None = None
        self.nadir_spd: Decimal | None = None
        self.base_spleen: Decimal | None = None
        self.spleen_normalised = False
        self.base_marrow: str | None = None

    def baseline(self, tp: Timepoint) -> Facts:
        facts = Facts(BASELINE)
        spd = _ZERO
        for lid, obs in tp.lesions.items():
            self.nodal[lid] = obs.nodal
            d = _dims(obs)
            if d is not None:
                self.nadir[lid] = (d[0] * d[1], d[0], d[1])
            if obs.role is Role.TARGET:
                self.targets.append(lid)
                if d is None:
                    if _has_ct(tp):
                        self.warnings.append(f"baseline: target {lid} has no LDi × SDi")
                    continue
                spd += d[0] * d[1]
                limit = NODE_LDI_MM if obs.nodal else EXTRANODAL_LDI_MM
                if not d[0] > limit:
                    self.warnings.append(
                        f"baseline: target {lid} LDi {fmt(d[0])} mm is not measurable "
                        f"(needs > {fmt(limit)} mm {'node' if obs.nodal else 'extranodal'}; "
                        f"{CITE})"
                    )
        if len(self.targets) > 6:
            self.warnings.append(f"baseline: {len(self.targets)} targets; Lugano allows up to 6")
        if not self.targets and _has_ct(tp):
            self.warnings.append("baseline: no target lesions for the SPD")
        self.base_spd = spd if self.targets else None
        self.nadir_spd = self.base_spd
        self.base_spleen = tp.spleen_length_mm
        self.base_marrow = marrow_state(tp)
        if self.base_spd is not None:
            facts.numbers["spd_mm2"] = spd
            facts.trace.append(f"baseline: SPD {fmt(spd)} mm² over {len(self.targets)} targets")
        if self.base_spleen is not None:
            facts.numbers["spleen_length_mm"] = self.base_spleen
            if self.base_spleen > SPLEEN_NORMAL_MM:
                facts.trace.append(f"baseline: splenomegaly {fmt(self.base_spleen)} mm "
                                   f"(> {fmt(SPLEEN_NORMAL_MM)} mm)")
        return facts

    def _lesion_pd(self, lid: str, d: tuple[Decimal, Decimal]) -> str | None:
        """Lugano per-lesion PD: LDi > 15 mm AND PPD ≥ +50 % over its own PPD nadir AND
        LDi or SDi > 5 mm (lesions ≤ 20 mm) / > 10 mm (> 20 mm) above the nadir."""
        nad = self.nadir.get(lid)
        if nad is None:
            return None
        ldi, sdi = d
        ppd = ldi * sdi
        n_ppd, n_ldi, n_sdi = nad
        if not (ldi > NODE_LDI_MM and ppd * 2 >= n_ppd * 3):
            return None
        size = n_ldi if self.basis == "nadir" else ldi
        inc = _FIVE if size <= _TWENTY else Decimal(10)
        if ldi - n_ldi > inc or sdi - n_sdi > inc:
            return (
                f"PD: lesion {lid} LDi {fmt(ldi)} mm > 15 mm, PPD {fmt(ppd)} mm² is "
                f"{fmt_pct(ppd, n_ppd)} over its nadir {fmt(n_ppd)} mm² (≥ 50 %), and "
                f"LDi/SDi {fmt(ldi - n_ldi)}/{fmt(sdi - n_sdi)} mm over their nadirs "
                f"{fmt(n_ldi)}/{fmt(n_sdi)} mm (> {fmt(inc)} mm for a lesion "
                f"{'≤' if inc == _FIVE else '>'} 20 mm; {CITE})"
            )
        return None

    def follow_up(self, tp: Timepoint) -> Facts:
        if not getattr(tp, "assessed", True) or not _has_ct(tp):
            return Facts(NE, trace=["NE: no CT measurements at this visit"], evaluated=False)
        facts = Facts(NE)
        tr = facts.trace
        pd_lines: list[str] = []
        spd = _ZERO
        missing: list[str] = []
        measured: dict[str, tuple[Decimal, Decimal]] = {}
        cr_blockers: list[str] = []
        nt_worse = False
        new_ids: list[str] = []
        for lid, obs in tp.lesions.items():
            if obs.role is Role.NEW:
                if obs.state in (State.ABSENT, State.EQUIVOCAL) or obs.ldi_mm is Special.ABSENT:
                    if obs.state is State.EQUIVOCAL:
                        tr.append(f"new lesion {lid} equivocal: not PD yet ({CITE})")
                    continue
                # Too small to measure reads 5 mm (Lugano 2014): below both size limits.
                ldi = _FIVE if obs.ldi_mm is Special.TOO_SMALL else obs.ldi_mm
                limit = NODE_LDI_MM if obs.nodal else EXTRANODAL_LDI_MM
                if isinstance(ldi, Decimal) and not ldi > limit and (
                    obs.state is not State.UNEQUIVOCAL
                ):
                    tr.append(f"new {'node' if obs.nodal else 'extranodal lesion'} {lid} "
                              f"{fmt(ldi)} mm ≤ {fmt(limit)} mm and not unequivocally "
                              f"lymphoma: not PD ({CITE})")
                    continue
                new_ids.append(lid)
                continue
            d = _dims(obs)
            if d is None:
                if obs.role is Role.TARGET:
                    missing.append(lid)
                    continue
                # Non-measured disease: qualitative state.
                st = obs.state
                if st in (State.INCREASED, State.UNEQUIVOCAL_PROGRESSION):
                    pd_lines.append(f"PD: non-measured lesion {lid} clearly progressing ({CITE})")
                    facts.pd_kinds.append("nontarget")
                elif st is State.ABSENT:
                    pass
                elif st in (State.PRESENT, None, State.EQUIVOCAL, State.UNEQUIVOCAL):
                    if lid in self.resolved and st in (State.PRESENT, State.UNEQUIVOCAL):
                        pd_lines.append(f"PD: previously resolved lesion {lid} has recurred "
                                        f"({CITE})")
                        facts.pd_kinds.append("regrowth")
                    cr_blockers.append(f"non-measured lesion {lid} present")
                else:
                    missing.append(lid)
                continue
            measured[lid] = d
            ldi, sdi = d
            if obs.role is Role.TARGET:
                spd += ldi * sdi
            if lid in self.resolved and ldi > 0:
                pd_lines.append(f"PD: previously resolved lesion {lid} has regrown to "
                                f"{fmt(ldi)} × {fmt(sdi)} mm ({CITE})")
                facts.pd_kinds.append("regrowth")
            else:
                line = self._lesion_pd(lid, d)
                if line:
                    pd_lines.append(line)
                    facts.pd_kinds.append("lesion")
            if self.nodal.get(lid, obs.nodal):
                if ldi > NODE_LDI_MM:
                    cr_blockers.append(f"node {lid} LDi {fmt(ldi)} mm > 15 mm")
            elif ldi > 0:
                cr_blockers.append(f"extranodal lesion {lid} still present")
            if obs.state in (State.INCREASED, State.UNEQUIVOCAL_PROGRESSION):
                nt_worse = True
        for lid in self.targets:
            if lid not in tp.lesions:
                missing.append(lid)
        if tp.new_lesions and not new_ids:
            new_ids.append("(timepoint flag)")
        if new_ids:
            pd_lines.append(f"PD: new lesion(s) {', '.join(new_ids)} ({CITE})")
            facts.pd_kinds.append("new")
        # Spleen (Lugano 2014 Table 3; criteria.md §8.3 and vector L-04).
        spleen = tp.spleen_length_mm
        b_sp = self.base_spleen
        spleen_pr_ok = True
        if spleen is not None:
            facts.numbers["spleen_length_mm"] = spleen
            if b_sp is not None and b_sp > SPLEEN_NORMAL_MM:
                excess = b_sp - SPLEEN_NORMAL_MM
                if (spleen - b_sp) * 2 > excess:
                    pd_lines.append(
                        f"PD: spleen {fmt(spleen)} mm grew {fmt(spleen - b_sp)} mm, > 50 % of "
                        f"its {fmt(excess)} mm enlargement beyond 130 mm at baseline ({CITE})")
                    facts.pd_kinds.append("spleen")
                elif self.spleen_normalised and spleen > SPLEEN_NORMAL_MM:
                    pd_lines.append(f"PD: recurrent splenomegaly {fmt(spleen)} mm ({CITE})")
                    facts.pd_kinds.append("spleen")
                spleen_pr_ok = (b_sp - spleen) * 2 > excess
                if spleen > SPLEEN_NORMAL_MM:
                    cr_blockers.append(f"spleen {fmt(spleen)} mm > 130 mm")
            elif b_sp is not None:
                if spleen - b_sp >= _TWENTY:
                    pd_lines.append(
                        f"PD: spleen {fmt(b_sp)} → {fmt(spleen)} mm (+{fmt(spleen - b_sp)} mm "
                        f"≥ 20 mm from a normal baseline"
                        f"{'; new splenomegaly' if spleen > SPLEEN_NORMAL_MM else ''}; {CITE})")
                    facts.pd_kinds.append("spleen")
                elif spleen > SPLEEN_NORMAL_MM:
                    # Lugano 2014 Table 3 lists "new or recurrent splenomegaly" as PD in its
                    # own right, next to the +2 cm rule (criteria.md §8.3 (b), vector L-04).
                    pd_lines.append(
                        f"PD: new splenomegaly: spleen {fmt(b_sp)} → {fmt(spleen)} mm "
                        f"(> {fmt(SPLEEN_NORMAL_MM)} mm from a normal baseline; {CITE})")
                    facts.pd_kinds.append("spleen")
            elif spleen > SPLEEN_NORMAL_MM:
                cr_blockers.append(f"spleen {fmt(spleen)} mm > 130 mm")
        elif b_sp is not None and b_sp > SPLEEN_NORMAL_MM:
            spleen_pr_ok = False
            missing.append("spleen")
        marrow = marrow_state(tp)
        if marrow == "new":
            pd_lines.append(f"PD: new or recurrent marrow involvement ({CITE})")
            facts.pd_kinds.append("marrow")
        if self.base_marrow == "involved" and marrow not in ("negative", "reactive"):
            cr_blockers.append("marrow not shown normal")
        if nt_worse:
            pd_lines.append(f"PD: a measured lesion marked clearly progressing ({CITE})")
            facts.pd_kinds.append("nontarget")
        base_spd = self.base_spd
        complete = not missing
        if complete and self.targets:
            facts.numbers["spd_mm2"] = spd
        if base_spd is not None:
            facts.numbers["baseline_spd_mm2"] = base_spd
        if self.nadir_spd is not None:
            facts.numbers["nadir_spd_mm2"] = self.nadir_spd
        if complete and base_spd:
            facts.numbers["change_from_baseline_pct"] = (spd - base_spd) * 100 / base_spd
        if complete and self.nadir_spd:
            facts.numbers["change_from_nadir_pct"] = (spd - self.nadir_spd) * 100 / self.nadir_spd
        if pd_lines:
            facts.category = "PD"
            tr.extend(pd_lines)
        elif not complete:
            facts.category = NE
            tr.append(f"NE: not measured: {', '.join(missing)}")
        elif base_spd is None and not (b_sp is not None and b_sp > SPLEEN_NORMAL_MM):
            facts.category = NE
            tr.append("NE: no baseline target lesions for the SPD")
        elif not cr_blockers:
            facts.category = "CR"
            tr.append(f"CR: nodes LDi ≤ 15 mm, extranodal and non-measured disease gone, spleen "
                      f"normal, no new lesions (SPD {fmt(spd)} mm²; {CITE})")
        elif base_spd is None:
            # Splenomegaly without measured nodes: the spleen is the measurable disease.
            facts.category = "PR" if spleen_pr_ok else "SD"
            tr.append(f"{facts.category}: no target nodes; spleen "
                      f"{'regressed' if spleen_pr_ok else 'not regressed'} by > 50 % of its "
                      f"enlargement beyond 130 mm ({CITE})")
        elif spd * 2 <= base_spd and spleen_pr_ok:
            facts.category = "PR"
            tr.append(f"PR: SPD {fmt(spd)} mm² is {fmt_pct(spd, base_spd)} from baseline "
                      f"{fmt(base_spd)} mm² (≥ 50 % decrease; {CITE})")
        else:
            facts.category = "SD"
            why = (f"SPD {fmt(spd)} mm² is {fmt_pct(spd, base_spd)} from baseline "
                   f"{fmt(base_spd)} mm²")
            if spd * 2 <= base_spd:
                why += (f", but the spleen has not regressed by > 50 % of its enlargement "
                        f"(needs < {fmt(b_sp - (b_sp - SPLEEN_NORMAL_MM) / 2)} mm)"
                        if b_sp is not None else "")
            tr.append(f"SD: {why}; no PD criterion met ({CITE})")
        # Update nadirs after classifying (criteria.md §1.3).
        for lid, (ldi, sdi) in measured.items():
            ppd = ldi * sdi
            old = self.nadir.get(lid)
            if old is None:
                self.nadir[lid] = (ppd, ldi, sdi)
            else:
                self.nadir[lid] = (min(old[0], ppd), min(old[1], ldi), min(old[2], sdi))
            if ldi == 0:
                self.resolved.add(lid)
            elif lid in self.resolved:
                self.resolved.discard(lid)
        for lid, obs in tp.lesions.items():
            if obs.role is not Role.NEW and obs.state is State.ABSENT and lid not in measured:
                self.resolved.add(lid)
        if complete and self.targets and (self.nadir_spd is None or spd < self.nadir_spd):
            self.nadir_spd = spd
        if spleen is not None and b_sp is not None and b_sp > SPLEEN_NORMAL_MM and (
            spleen <= SPLEEN_NORMAL_MM
        ):
            self.spleen_normalised = True
        return facts


# --------------------------------------------------------------------------- assess

def _best(results: list[TimepointResult], rank: dict[str, int], pd: str) -> str | None:
    best: str | None = None
    seen = False
    for res in results[1:]:
        seen = True
        if res.overall in rank and (best is None or rank[res.overall] < rank[best]):
            best = res.overall
        if res.overall == pd:
            break
    return best if best is not None or not seen else NE


def _end_of_treatment(case: Case, results: list[TimepointResult]) -> dict[str, Any] | None:
    """Response at the scan marked ``extra.phase = end_of_treatment`` (else the last one)."""
    if len(results) < 2:
        return None
    chosen = None
    for tp, res in zip(case.timepoints[1:], results[1:], strict=True):
        if tp.extra.get("phase") == "end_of_treatment":
            chosen = (res, "end_of_treatment")
    if chosen is None:
        chosen = (results[-1], "last")
    res, how = chosen
    return {"date": res.date, "response": res.overall, "basis": how}


def _new_flag(*facts: Facts | None) -> str | None:
    """"Yes"/"No" for new lesions (spelled as the RECIST family output); None if unread."""
    read = [f for f in facts if f is not None and f.evaluated]
    if not read:
        return None
    return "Yes" if any("new" in f.pd_kinds for f in read) else "No"


def _result(tp: Timepoint, facts: Facts) -> TimepointResult:
    return TimepointResult(date=tp.date, overall=facts.category, numbers=facts.numbers,
                           trace=facts.trace, new_lesions=_new_flag(facts))


def run(case: Case, mode: str, warnings: list[str]) -> tuple[list[TimepointResult],
                                                             list[tuple[Facts | None,
                                                                        Facts | None]]]:
    """Run the PET and/or CT engines; returns results and per-timepoint (pet, ct) facts."""
    pet = PetEngine(case, warnings, pet_only=mode == "pet") if mode in ("pet", "combined") else None
    ct = CtEngine(case, warnings) if mode in ("ct", "combined") else None
    base_tp = case.baseline
    pairs: list[tuple[Facts | None, Facts | None]] = []
    pf = pet.baseline(base_tp) if pet else None
    cf = ct.baseline(base_tp) if ct else None
    pairs.append((pf, cf))
    numbers: dict[str, Any] = {}
    trace: list[str] = []
    for f in (pf, cf):
        if f:
            numbers.update(f.numbers)
            trace.extend(f.trace)
    results = [TimepointResult(date=base_tp.date, overall=BASELINE, numbers=numbers, trace=trace)]
    last_pet: str | None = None
    for tp in case.timepoints[1:]:
        pf = pet.follow_up(tp) if pet else None
        cf = ct.follow_up(tp) if ct else None
        pairs.append((pf, cf))
        if mode == "pet":
            assert pf is not None
            results.append(_result(tp, pf))
            continue
        if mode == "ct":
            assert cf is not None
            results.append(_result(tp, cf))
            continue
        assert pf is not None and cf is not None
        numbers = {**cf.numbers, **pf.numbers,
                   "pet_response": pf.category if pf.evaluated else None,
                   "ct_response": cf.category if cf.evaluated else None}
        trace = [f"PET: {t}" for t in pf.trace] + [f"CT: {t}" for t in cf.trace]
        if pf.category in PET_TO_CT:
            overall = PET_TO_CT[pf.category]
            last_pet = overall
            trace.append(f"{overall}: PET-CT {pf.category} takes precedence over CT "
                         f"({cf.category}) ({CITE})")
        elif cf.category == "PD":
            overall = "PD"
            trace.append("PD: PET not evaluable and CT shows PD")
        elif pf.evaluated and last_pet is not None and cf.category != NE:
            overall = last_pet
            trace.append(f"{overall}: PET not evaluable, CT {cf.category} not progressive; "
                         "previous evaluable PET result carried forward (sponsor convention, "
                         "admiralonco PR #353)")
        elif cf.category != NE:
            overall = cf.category
            trace.append(f"{overall}: no evaluable PET; CT-based response used")
        else:
            overall = NE
            trace.append("NE: neither PET nor CT evaluable")
        results.append(TimepointResult(date=tp.date, overall=overall, numbers=numbers,
                                       trace=trace, target=cf.category if cf.evaluated else None,
                                       new_lesions=_new_flag(pf, cf)))
    return results, pairs


def assess(case: Case) -> Assessment:
    """Lugano 2014 response by ``case.criteria``: ``lugano-pet``, ``lugano-ct`` or ``lugano``.

    Best overall response is the best timepoint response before (and including) the first
    progression (Lugano 2014 has no confirmation step); the end-of-treatment response is
    reported in ``extra``.
    """
    name = (case.criteria or "lugano").strip().lower()
    mode = {"lugano-pet": "pet", "lugano-ct": "ct", "lugano": "combined"}.get(name)
    if mode is None:
        raise InputError(f"criteria: {case.criteria!r} is not a Lugano variant")
    warnings: list[str] = list(getattr(case, "warnings", []) or [])
    results, _ = run(case, mode, warnings)
    rank, pd = (PET_RANK, "PMD") if mode == "pet" else (CT_RANK, "PD")
    extra: dict[str, Any] = {}
    eot = _end_of_treatment(case, results)
    if eot is not None:
        extra["end_of_treatment"] = eot
    return Assessment(criteria=name, timepoints=results,
                      best_overall_response=_best(results, rank, pd), warnings=warnings,
                      extra=extra)
