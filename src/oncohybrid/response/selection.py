"""Propose baseline target lesions per criterion, with physician-readable reasons.

A proposal, never a decision: the reader confirms or overrides it. Rules:

- **RECIST 1.1** (Eisenhauer et al., Eur J Cancer 2009; criteria.md §2.2–2.3):
  non-nodal lesions are measurable with LD ≥ 10 mm when the CT slice thickness is
  ≤ 5 mm, otherwise LD ≥ 2 × slice thickness; lymph nodes with short axis ≥ 15 mm.
  Nodes with 10 ≤ SA < 15 mm are pathological but non-measurable (non-target); nodes
  with SA < 10 mm are normal and not recorded. At most 5 targets, at most 2 per organ,
  and all lymph nodes together count as ONE organ (RECIST WG FAQ). Targets are the
  largest (LD, or SA for nodes) reproducible lesions, chosen so that they represent
  the involved organs: first the largest lesion of each organ (organs in order of
  their largest lesion), then the next largest up to 2 per organ.
- **PERCIST 1.0** (Wahl et al., JNM 2009; criteria.md §6.3–6.4): measurable when
  SULpeak ≥ 1.5 × liver SULmean + 2 × liver SD (or 2.0 × blood-pool mean + 2 × SD, or
  an explicit threshold). The primary target is the single hottest measurable
  lesion; up to 5 hottest lesions, ≤ 2 per organ, form the optional sum.
- **Lugano 2014 CT** (Cheson et al., JCO 2014; criteria.md §8.3): measurable nodes
  have LDi > 15 mm, extranodal lesions LDi > 10 mm (strict); up to 6 of the largest
  (by LDi) are targets, chosen from different body regions first (round-robin over
  ``site`` as the region); everything else is non-measured disease.

Thresholds are compared exactly (``Decimal`` from the decimal string of each number,
criteria.md §1.2), so 10.0 mm is measurable and a liver mean of 2.0 with SD 0.3 gives
a PERCIST threshold of exactly 3.6.

Example
-------
>>> sel = propose_targets([
...     Candidate("L1", "liver", ld_mm=32), Candidate("L2", "liver", ld_mm=25),
...     Candidate("L3", "liver", ld_mm=12), Candidate("N1", "mediastinum", nodal=True,
...     sa_mm=18), Candidate("N2", "axilla", nodal=True, sa_mm=12)], "recist1.1")
>>> sel.targets
['L1', 'N1', 'L2']
>>> [p.role.value for p in sel.proposals]
['target', 'target', 'non-target', 'target', 'non-target']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from oncohybrid.errors import InputError

__all__ = ["Candidate", "Criterion", "Proposal", "ProposedRole", "Selection", "propose_targets"]

_NODES = "lymph nodes"


class Criterion(StrEnum):
    RECIST11 = "recist1.1"
    PERCIST = "percist"
    LUGANO = "lugano"


class ProposedRole(StrEnum):
    TARGET = "target"
    NON_TARGET = "non-target"
    NOT_RECORDED = "not-recorded"  # normal-sized lymph node (RECIST SA < 10 mm)


@dataclass(frozen=True)
class Candidate:
    """A baseline lesion candidate.

    ``site``: organ (RECIST, PERCIST) or body region (Lugano, e.g. "mediastinum").
    ``ld_mm``: longest diameter (LDi for Lugano); ``sa_mm``: short axis (SDi).
    ``measurable=False`` marks lesions the rules exclude whatever their size
    (blastic bone, effusion, previously irradiated…; say why in ``note``).
    ``reproducible=False`` keeps a lesion out of the targets (e.g. ill-defined margins).
    """

    id: str
    site: str
    nodal: bool = False
    ld_mm: float | Decimal | None = None
    sa_mm: float | Decimal | None = None
    sul_peak: float | Decimal | None = None
    measurable: bool = True
    reproducible: bool = True
    note: str = ""


@dataclass
class Proposal:
    id: str
    role: ProposedRole
    measurable: bool
    primary: bool = False
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role.value, "measurable": self.measurable,
                "primary": self.primary, "reasons": list(self.reasons)}


@dataclass
class Selection:
    """Proposals in input order; ``targets`` in selection order."""

    criterion: Criterion
    proposals: list[Proposal]
    targets: list[str]
    notes: list[str] = field(default_factory=list)

    def role_of(self, lesion_id: str) -> ProposedRole:
        return next(p.role for p in self.proposals if p.id == lesion_id)

    def to_json(self) -> dict[str, Any]:
        return {"criterion": self.criterion.value, "targets": list(self.targets),
                "proposals": [p.to_json() for p in self.proposals], "notes": list(self.notes)}


def _dec(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except Exception as exc:  # noqa: BLE001 - any unparsable number is an input error
        raise InputError(f"{where}: not a number: {value!r}") from exc
    if not d.is_finite() or d < 0:
        raise InputError(f"{where}: must be a finite number ≥ 0, got {value!r}")
    return d


def _fmt(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _organ(c: Candidate) -> str:
    return _NODES if c.nodal else c.site.strip().lower()


def _pick(
    ranked: list[tuple[Decimal, int, Candidate]],
    *,
    max_total: int,
    max_per_group: int | None,
    round_robin: bool,
    group: Any,
) -> list[Candidate]:
    """Choose targets from (size, input order, candidate) ranked largest first."""
    chosen: list[Candidate] = []
    counts: dict[str, int] = {}
    if round_robin:
        firsts: dict[str, tuple[Decimal, int, Candidate]] = {}
        for item in ranked:
            firsts.setdefault(group(item[2]), item)
        for _, _, c in list(firsts.values())[:max_total]:
            chosen.append(c)
            counts[group(c)] = 1
    for _, _, c in ranked:
        if len(chosen) >= max_total:
            break
        if c in chosen:
            continue
        g = group(c)
        if max_per_group is not None and counts.get(g, 0) >= max_per_group:
            continue
        chosen.append(c)
        counts[g] = counts.get(g, 0) + 1
    return chosen


def _why_not(c: Candidate, chosen: list[Candidate], max_total: int, max_per_group: int | None,
             group: Any, label: str) -> str:
    in_group = sum(1 for t in chosen if group(t) == group(c))
    if max_per_group is not None and in_group >= max_per_group:
        return (f"{label} '{group(c)}' already has {in_group} larger targets "
                f"(at most {max_per_group} per {label})")
    if len(chosen) >= max_total:
        return f"the {max_total} targets are already chosen among larger lesions"
    return "not chosen"


def _check(candidates: Sequence[Candidate]) -> None:
    ids = [c.id for c in candidates]
    if len(set(ids)) != len(ids):
        raise InputError("candidates: duplicate lesion ids")
    for i, c in enumerate(candidates):
        if not c.site or not c.site.strip():
            raise InputError(f"candidates[{i}].site: required (organ or body region)")


def propose_targets(
    candidates: Sequence[Candidate],
    criterion: str | Criterion,
    *,
    slice_thickness_mm: float | Decimal = 5,
    percist_threshold_sul: float | Decimal | None = None,
    liver_sul_mean: float | Decimal | None = None,
    liver_sul_sd: float | Decimal | None = None,
    blood_pool_sul_mean: float | Decimal | None = None,
    blood_pool_sul_sd: float | Decimal | None = None,
) -> Selection:
    """Propose a role (target / non-target / not recorded) for each baseline lesion.

    See the module docstring for the rules. For PERCIST give ``percist_threshold_sul``
    or the liver (``liver_sul_mean``/``liver_sul_sd``) or blood-pool reference.
    """
    key = str(criterion).strip().lower()
    key = {"lugano-ct": "lugano", "recist": "recist1.1", "recist 1.1": "recist1.1"}.get(key, key)
    try:
        crit = Criterion(key)
    except ValueError:
        raise InputError(
            f"criterion: expected one of {', '.join(c.value for c in Criterion)}, got {criterion!r}"
        ) from None
    _check(candidates)
    if crit is Criterion.RECIST11:
        return _recist(candidates, _dec(slice_thickness_mm, "slice_thickness_mm") or Decimal(0))
    if crit is Criterion.PERCIST:
        return _percist(candidates, percist_threshold_sul, liver_sul_mean, liver_sul_sd,
                        blood_pool_sul_mean, blood_pool_sul_sd)
    return _lugano(candidates)


def _recist(candidates: Sequence[Candidate], slice_mm: Decimal) -> Selection:
    ref = "RECIST 1.1, criteria.md §2.2"
    ld_min = Decimal(10) if slice_mm <= 5 else 2 * slice_mm
    ld_rule = ("10 mm" if slice_mm <= 5 else
               f"{_fmt(ld_min)} mm (2 × slice thickness {_fmt(slice_mm)} mm)")
    proposals: dict[str, Proposal] = {}
    ranked: list[tuple[Decimal, int, Candidate]] = []
    notes = []
    if slice_mm > 5:
        notes.append(f"slice thickness {_fmt(slice_mm)} mm > 5 mm: non-nodal lesions need "
                     f"LD ≥ {_fmt(ld_min)} mm; the nodal 15 mm SA rule is stated for ≤ 5 mm "
                     "slices and is applied unchanged")
    for i, c in enumerate(candidates):
        if not c.measurable:
            proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, False, reasons=[
                f"non-target: non-measurable by nature{': ' + c.note if c.note else ''} ({ref})"])
            continue
        if c.nodal:
            sa = _dec(c.sa_mm, f"candidates[{i}].sa_mm")
            if sa is None:
                raise InputError(f"candidates[{i}].sa_mm: required for a lymph node under RECIST")
            if sa < 10:
                proposals[c.id] = Proposal(c.id, ProposedRole.NOT_RECORDED, False, reasons=[
                    f"not recorded: node short axis {_fmt(sa)} mm < 10 mm is normal ({ref})"])
                continue
            if sa < 15:
                proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, False, reasons=[
                    f"non-target: pathological node, short axis {_fmt(sa)} mm is 10–<15 mm, "
                    f"not measurable ({ref})"])
                continue
            why = f"measurable node: short axis {_fmt(sa)} mm ≥ 15 mm ({ref})"
            size = sa
        else:
            ld = _dec(c.ld_mm, f"candidates[{i}].ld_mm")
            if ld is None:
                raise InputError(f"candidates[{i}].ld_mm: required for a non-nodal lesion")
            if ld < ld_min:
                proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, False, reasons=[
                    f"non-target: LD {_fmt(ld)} mm < {ld_rule}, non-measurable ({ref})"])
                continue
            why = f"measurable: LD {_fmt(ld)} mm ≥ {ld_rule} ({ref})"
            size = ld
        proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, True, reasons=[why])
        if not c.reproducible:
            proposals[c.id].reasons.append(
                "non-target: marked not reproducibly measurable (RECIST 1.1 prefers lesions "
                "suitable for repeated measurement, criteria.md §2.3)")
            continue
        ranked.append((size, i, c))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    chosen = _pick(ranked, max_total=5, max_per_group=2, round_robin=True, group=_organ)
    for k, c in enumerate(chosen, 1):
        p = proposals[c.id]
        p.role = ProposedRole.TARGET
        p.reasons.append(
            f"target {k} of {len(chosen)}: among the largest in organ '{_organ(c)}' "
            "(≤ 5 targets, ≤ 2 per organ, lymph nodes count as one organ; criteria.md §2.3)")
    for _, _, c in ranked:
        if c not in chosen:
            proposals[c.id].reasons.append(
                "non-target: " + _why_not(c, chosen, 5, 2, _organ, "organ") + " (criteria.md §2.3)")
    return Selection(Criterion.RECIST11, [proposals[c.id] for c in candidates],
                     [c.id for c in chosen], notes)


def _percist(candidates, threshold, liver_mean, liver_sd, bp_mean, bp_sd) -> Selection:
    ref = "PERCIST 1.0, criteria.md §6.3"
    thr = _dec(threshold, "percist_threshold_sul")
    lm, ls = _dec(liver_mean, "liver_sul_mean"), _dec(liver_sd, "liver_sul_sd")
    bm, bs = _dec(bp_mean, "blood_pool_sul_mean"), _dec(bp_sd, "blood_pool_sul_sd")
    if thr is not None:
        thr_text = f"the given threshold {_fmt(thr)}"
    elif lm is not None and ls is not None:
        thr = Decimal("1.5") * lm + 2 * ls
        thr_text = f"1.5 × liver {_fmt(lm)} + 2 × SD {_fmt(ls)} = {_fmt(thr)}"
    elif bm is not None and bs is not None:
        thr = Decimal("2.0") * bm + 2 * bs
        thr_text = f"2.0 × blood pool {_fmt(bm)} + 2 × SD {_fmt(bs)} = {_fmt(thr)}"
    else:
        raise InputError("PERCIST: give percist_threshold_sul, liver_sul_mean and liver_sul_sd, "
                         "or blood_pool_sul_mean and blood_pool_sul_sd")
    proposals: dict[str, Proposal] = {}
    ranked = []
    for i, c in enumerate(candidates):
        sul = _dec(c.sul_peak, f"candidates[{i}].sul_peak")
        if not c.measurable or sul is None:
            what = c.note or ("no SULpeak" if sul is None else "non-measurable")
            proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, False,
                                       reasons=[f"non-target: {what} ({ref})"])
            continue
        if sul < thr:
            proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, False, reasons=[
                f"non-target: SULpeak {_fmt(sul)} < measurability threshold {thr_text} ({ref})"])
            continue
        proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, True, reasons=[
            f"measurable: SULpeak {_fmt(sul)} ≥ {thr_text} ({ref})"])
        if not c.reproducible:
            proposals[c.id].reasons.append("non-target: marked not reproducibly measurable")
            continue
        ranked.append((sul, i, c))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    chosen = _pick(ranked, max_total=5, max_per_group=2, round_robin=False, group=_organ)
    for k, c in enumerate(chosen, 1):
        p = proposals[c.id]
        p.role = ProposedRole.TARGET
        if k == 1:
            p.primary = True
            p.reasons.append("primary target: hottest measurable lesion; at follow-up the "
                             "hottest lesion is measured even if it is another one "
                             "(criteria.md §6.4)")
        else:
            p.reasons.append(f"in the optional sum: hottest #{k} (≤ 5 lesions, ≤ 2 per organ; "
                             "criteria.md §6.4)")
    for _, _, c in ranked:
        if c not in chosen:
            proposals[c.id].reasons.append(
                "non-target: " + _why_not(c, chosen, 5, 2, _organ, "organ") + " (criteria.md §6.4)")
    notes = [f"measurability threshold: SULpeak ≥ {thr_text}"]
    return Selection(Criterion.PERCIST, [proposals[c.id] for c in candidates],
                     [c.id for c in chosen], notes)


def _lugano(candidates: Sequence[Candidate]) -> Selection:
    ref = "Lugano 2014, criteria.md §8.3"
    proposals: dict[str, Proposal] = {}
    ranked = []
    for i, c in enumerate(candidates):
        ld = _dec(c.ld_mm, f"candidates[{i}].ld_mm")
        if not c.measurable or ld is None:
            what = c.note or ("no LDi" if ld is None else "non-measurable")
            proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, False, reasons=[
                f"non-target (non-measured disease): {what} ({ref})"])
            continue
        limit = Decimal(15) if c.nodal else Decimal(10)
        kind = "node" if c.nodal else "extranodal lesion"
        if ld <= limit:
            proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, False, reasons=[
                f"non-target (non-measured disease): {kind} LDi {_fmt(ld)} mm is not > "
                f"{_fmt(limit)} mm ({ref})"])
            continue
        proposals[c.id] = Proposal(c.id, ProposedRole.NON_TARGET, True, reasons=[
            f"measurable {kind}: LDi {_fmt(ld)} mm > {_fmt(limit)} mm ({ref})"])
        if not c.reproducible:
            proposals[c.id].reasons.append("non-target: marked not reproducibly measurable")
            continue
        ranked.append((ld, i, c))
    ranked.sort(key=lambda t: (-t[0], t[1]))

    def region(c: Candidate) -> str:
        return c.site.strip().lower()

    chosen = _pick(ranked, max_total=6, max_per_group=None, round_robin=True, group=region)
    for k, c in enumerate(chosen, 1):
        proposals[c.id].role = ProposedRole.TARGET
        proposals[c.id].reasons.append(
            f"target {k} of {len(chosen)}: among the 6 largest, regions represented first "
            f"(region '{region(c)}'; criteria.md §8.3)")
    for _, _, c in ranked:
        if c not in chosen:
            proposals[c.id].reasons.append(
                "non-target (non-measured disease): the 6 targets are already chosen among "
                "larger lesions (criteria.md §8.3)")
    return Selection(Criterion.LUGANO, [proposals[c.id] for c in candidates],
                     [c.id for c in chosen], [])
