"""Weighted scoring of applications and the ranked list.

Each reviewer scores every criterion of the call's rubric 0-10 (integers or halves); the
reviewer's total is the weighted sum (weights add up to 1, checked when the call is
loaded). An application's score is the mean of its reviewers' totals, excluding reviewers
who declared a conflict of interest; ranking is by that mean, higher first, ties broken
by the number of reviews then the applicant id (deterministic). Decimal arithmetic,
quantised to 0.01 half-up for display.

>>> from decimal import Decimal as D
>>> from oncohybrid.fellowship.call import bundled_call
>>> weighted_total(bundled_call().rubric, {"cv": 8, "motivation": 7, "research": 9, "hybrid": 6})
Decimal('7.60')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from oncohybrid.errors import InputError
from oncohybrid.fellowship.call import RubricItem

__all__ = ["weighted_total", "parse_scores", "Ranked", "rank", "MAX_SCORE"]

MAX_SCORE = Decimal(10)
_CENT = Decimal("0.01")


def parse_scores(rubric: Iterable[RubricItem], raw: Mapping[str, object]) -> dict[str, Decimal]:
    """Every rubric criterion scored 0-10 in steps of 0.5; names the criterion at fault."""
    out: dict[str, Decimal] = {}
    for item in rubric:
        if item.id not in raw or raw[item.id] in (None, ""):
            raise InputError(f"scores.{item.id}: a score for {item.label!r} is required")
        try:
            value = Decimal(str(raw[item.id]).strip())
        except InvalidOperation:
            raise InputError(f"scores.{item.id}: {raw[item.id]!r} is not a number") from None
        if not value.is_finite() or not (0 <= value <= MAX_SCORE) or (value * 2) % 1:
            raise InputError(f"scores.{item.id}: {raw[item.id]!r} must be 0 to 10 in steps "
                             "of 0.5")
        out[item.id] = value
    return out


def weighted_total(rubric: Iterable[RubricItem], raw: Mapping[str, object]) -> Decimal:
    scores = parse_scores(list(rubric), raw)
    total = sum((item.weight * scores[item.id] for item in rubric), Decimal(0))
    return total.quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Ranked:
    key: str
    mean: Decimal | None
    reviews: int
    rank: int | None


def rank(totals: Mapping[str, list[Decimal]]) -> list[Ranked]:
    """Applications (key -> reviewers' totals) ranked; unscored ones last, unranked."""
    scored = []
    for key, values in totals.items():
        mean = (sum(values, Decimal(0)) / len(values)).quantize(_CENT, ROUND_HALF_UP) \
            if values else None
        scored.append((key, mean, len(values)))
    scored.sort(key=lambda x: (x[1] is None, -(x[1] or 0), -x[2], x[0]))
    out = []
    for i, (key, mean, n) in enumerate(scored, start=1):
        out.append(Ranked(key, mean, n, i if mean is not None else None))
    return out
