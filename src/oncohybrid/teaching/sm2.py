"""SM-2 spaced repetition of missed questions.

Wozniak PA. *Optimization of learning* (master's thesis, Poznań University of Technology,
1990), the SuperMemo 2 algorithm (https://super-memory.com/english/ol/sm2.htm):

1. every item starts with E-Factor EF = 2.5;
2. inter-repetition intervals: I(1) = 1 day, I(2) = 6 days, I(n) = I(n−1) × EF for n > 2
   (rounded up to whole days);
3. after each repetition the response quality q (0–5) updates
   EF' = EF + (0.1 − (5 − q) × (0.08 + (5 − q) × 0.02)), never below 1.3;
4. if q < 3 the repetitions start again from I(1) *without changing the E-Factor*.

The trainee's scored answer gives q (:func:`quality_from_score`); an item is due again on
``due``; missed questions (q < 3) come back the next day.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from oncohybrid.errors import InputError

__all__ = ["SM2State", "quality_from_score", "sm2_review", "MIN_EASINESS"]

MIN_EASINESS = 1.3
START_EASINESS = 2.5


@dataclass(frozen=True)
class SM2State:
    """Repetitions in a row with q ≥ 3, the last interval, the E-Factor, the due date."""

    repetitions: int = 0
    interval_days: int = 0
    easiness: float = START_EASINESS
    due: dt.date | None = None


def quality_from_score(score: float, correct: bool) -> int:
    """SM-2 quality of a scored answer: 5 fully right, 3 at least half credit, 1 some
    credit, 0 none (q < 3 counts as a miss and is repeated).

    >>> quality_from_score(0.5, False)
    3
    """
    if correct:
        return 5
    if score >= 0.5:
        return 3
    return 1 if score > 0 else 0


def sm2_review(state: SM2State, quality: int, today: dt.date) -> SM2State:
    """The state after one repetition of quality ``quality`` on ``today``.

    >>> s = sm2_review(SM2State(), 5, dt.date(2026, 1, 1))
    >>> (s.repetitions, s.interval_days, round(s.easiness, 2), s.due.isoformat())
    (1, 1, 2.6, '2026-01-02')
    """
    if not isinstance(quality, int) or not 0 <= quality <= 5:
        raise InputError(f"SM-2 quality must be a whole number 0–5, got {quality!r}")
    if quality < 3:
        return SM2State(0, 1, state.easiness, today + dt.timedelta(days=1))
    q = 5 - quality
    ef = max(MIN_EASINESS, state.easiness + (0.1 - q * (0.08 + q * 0.02)))
    reps = state.repetitions + 1
    if reps == 1:
        interval = 1
    elif reps == 2:
        interval = 6
    else:
        interval = math.ceil(state.interval_days * ef)
    return SM2State(reps, interval, ef, today + dt.timedelta(days=interval))
