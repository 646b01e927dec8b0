"""Deauville five-point scale (5PS) helpers for Lugano 2014 PET-CT response.

Barrington SF et al. *Role of imaging in the staging and response assessment of lymphoma:
consensus of the International Conference on Malignant Lymphomas Imaging Working Group.*
JCO 2014;32:3048–3058, and Cheson BD et al. *Lugano classification.* JCO 2014;32:3059–3068
(criteria.md §8.1).

The scale is **visual**: the most intense uptake at a site of initial disease against the
mediastinal blood pool (MBP) and the liver. A reader's score (``lesion.deauville``) always
wins. Where none is given, :func:`score_from_suv` offers a quantitative proxy as decision
support only (criteria.md §8.1: "make them configurable and show them as decision support"):

- 1: no uptake (site cleared: ``absent`` / SUVmax 0);
- 2: SUVmax ≤ MBP;
- 3: > MBP and ≤ liver;
- 4: > liver and ≤ *k* × liver (``deauville_score5_liver_multiple`` *k*, default 3);
- 5: > *k* × liver ("markedly above liver", Barrington 2014: ≈ 2–3 × liver SUVmax).

When the MBP is ≥ the liver, the lesion is compared with the liver only: below it scores 2,
equal to it 3 (criteria.md §8.1, vector L-01).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.response.model import LesionObs, Special, State

CITE = "Deauville 5PS, Barrington 2014"

#: Default 4/5 boundary: markedly above liver = > 3 × liver SUVmax (criteria.md §14.7 L-01).
DEFAULT_SCORE5_MULTIPLE = Decimal(3)


def score_from_suv(
    suv_max: Decimal,
    mediastinum_suv_max: Decimal,
    liver_suv_max: Decimal,
    *,
    score5_liver_multiple: Decimal = DEFAULT_SCORE5_MULTIPLE,
) -> int:
    """Quantitative Deauville proxy from lesion SUVmax and the MBP/liver references.

    >>> from decimal import Decimal as D
    >>> [score_from_suv(D(x), D("2.0"), D("2.8")) for x in ("1.8", "2.5", "4.0", "8.5")]
    [2, 3, 4, 5]
    >>> [score_from_suv(D(x), D("3.0"), D("2.8")) for x in ("2.6", "2.8")]
    [2, 3]
    """
    if suv_max <= 0:
        return 1
    if suv_max > liver_suv_max:
        return 5 if suv_max > score5_liver_multiple * liver_suv_max else 4
    if mediastinum_suv_max >= liver_suv_max:
        # MBP at or above the liver: compare with the liver only (below 2, equal 3).
        return 3 if suv_max == liver_suv_max else 2
    return 2 if suv_max <= mediastinum_suv_max else 3


def lesion_score(
    obs: LesionObs,
    references: dict[str, Decimal],
    *,
    score5_liver_multiple: Decimal = DEFAULT_SCORE5_MULTIPLE,
) -> tuple[int | str | None, str, str]:
    """Deauville score of one lesion: (score or "X" or None, source, explanation).

    ``source`` is ``"visual"`` (reader's score), ``"quantitative"`` (proxy from
    ``suv_max`` against ``references["mediastinum_suv_max"]`` and ``["liver_suv_max"]``),
    ``"absent"`` (site cleared → 1) or ``"missing"``.
    """
    visual = obs.deauville
    if visual is not None:
        if visual == "X" or visual == "x":
            return "X", "visual", f"{obs.id}: Deauville X (new uptake unlikely lymphoma)"
        if isinstance(visual, bool) or not isinstance(visual, int) or not 1 <= visual <= 5:
            raise InputError(f"lesion {obs.id}: deauville must be 1-5 or \"X\", got {visual!r}")
        why = f"{obs.id}: Deauville {visual} (visual)"
        suv = obs.suv_max
        mbp, liver = _refs(references)
        if isinstance(suv, Decimal) and mbp is not None and liver is not None:
            proxy = score_from_suv(suv, mbp, liver, score5_liver_multiple=score5_liver_multiple)
            if proxy != visual:
                why += (f"; note: SUVmax {suv} vs MBP {mbp} / liver {liver} would suggest "
                        f"{proxy} (decision support only)")
        return visual, "visual", why
    suv = obs.suv_max
    if suv is Special.ABSENT or (suv is None and obs.state is State.ABSENT):
        # A site recorded as gone has no uptake above background: score 1 (Barrington 2014).
        return 1, "absent", f"{obs.id}: site cleared → Deauville 1"
    if isinstance(suv, Decimal):
        mbp, liver = _refs(references)
        if mbp is None or liver is None:
            return None, "missing", (
                f"{obs.id}: SUVmax {suv} but no mediastinum_suv_max/liver_suv_max reference"
            )
        score = score_from_suv(suv, mbp, liver, score5_liver_multiple=score5_liver_multiple)
        return score, "quantitative", (
            f"{obs.id}: SUVmax {suv} vs MBP {mbp} / liver {liver} → Deauville {score} "
            f"(quantitative decision support, 5 if > {score5_liver_multiple} × liver; {CITE})"
        )
    return None, "missing", f"{obs.id}: no Deauville score or SUVmax"


#: Accepted names of the mediastinal blood-pool reference (first found wins).
MBP_KEYS = ("mediastinum_suv_max", "mbp_suv_max", "blood_pool_suv_max")


def _refs(references: dict[str, Decimal]) -> tuple[Decimal | None, Decimal | None]:
    mbp = None
    for key in MBP_KEYS:
        if key in references:
            mbp = references[key]
            break
    return mbp, references.get("liver_suv_max")


def score5_multiple(options: dict[str, Any]) -> Decimal:
    """The configured 4/5 boundary multiple of liver SUVmax."""
    raw = options.get("deauville_score5_liver_multiple", DEFAULT_SCORE5_MULTIPLE)
    if isinstance(raw, bool):
        raise InputError("options.deauville_score5_liver_multiple: expected a number")
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise InputError(
            f"options.deauville_score5_liver_multiple: expected a number, got {raw!r}"
        ) from exc
    if value <= 1:
        raise InputError("options.deauville_score5_liver_multiple: must be > 1")
    return value


def is_positive(score: int | str | None, score3_positive: bool = False) -> bool:
    """Scores 4–5 are positive; 3 is negative unless the trial calls it inadequate."""
    if not isinstance(score, int):
        return False
    return score >= 4 or (score3_positive and score == 3)
