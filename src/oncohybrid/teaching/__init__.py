"""Teaching file and case-based self-assessment: pure scoring, draws and scheduling (#14).

- :mod:`.scoring` scores each automatically marked question kind against a case's ground
  truth (the stored quantitative reading): multiple choice, a response category under a
  criterion (with the engine's rule trace as feedback), Deauville / PERCIST / Krenning
  scores, a lesion click inside a ground-truth mask, a measurement within a tolerance;
- :mod:`.draws` draws balanced quizzes without replacement by tag;
- :mod:`.sm2` schedules missed questions by the SM-2 spaced-repetition algorithm.

Nothing here touches the database, files or the network: capture, quizzes and the trainee
record are in :mod:`oncohybrid.services.teaching`.
"""

from oncohybrid.teaching.draws import balanced_draw
from oncohybrid.teaching.scoring import (
    ClickScore,
    QuestionKind,
    Score,
    category_rank,
    normalise_category,
    score_category,
    score_choice,
    score_clicks,
    score_measurement,
    score_ordinal,
)
from oncohybrid.teaching.sm2 import SM2State, quality_from_score, sm2_review

__all__ = ["ClickScore", "QuestionKind", "SM2State", "Score", "balanced_draw",
           "category_rank", "normalise_category", "quality_from_score", "score_category",
           "score_choice", "score_clicks", "score_measurement", "score_ordinal", "sm2_review"]
