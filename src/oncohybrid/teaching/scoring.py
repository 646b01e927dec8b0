"""Automatic scoring of self-assessment answers against a case's stored reading (#14).

Every function takes the trainee's answer and the reference (the ground truth captured
from the record: the criterion engine's category and rule trace, the Deauville or Krenning
grade, the lesion masks, the measured long axis) and returns a :class:`Score` in 0…1 with
the feedback a trainee sees at once. Invalid answers (a category the criterion does not
have, a Deauville score of 7, a click outside the image) raise :class:`InputError`.

Partial credit (documented in docs/teaching.md):

- response categories are right or wrong; the distance on the ordinal ladder
  (complete < partial < stable < progressive) is reported (``off_by``) as feedback;
- ordinal grades (Deauville 1–5, Krenning 0–4) one step off earn 0.5 unless the step
  crosses the scale's decision boundary: Deauville 1–3 vs 4–5 (Lugano classification,
  Cheson et al. JCO 2014;32:3059, Table 3 / Barrington et al. JCO 2014;32:3048), Krenning
  0–2 vs 3–4 (PRRT eligibility cut-off 3, Kwekkeboom & Krenning Semin Nucl Med
  2002;32:84; the default of :mod:`oncohybrid.response.krenning`);
- multiple choice with several right options: (right picks − wrong picks) / right
  options, at least 0;
- lesion localisation: hits / (lesions asked + false positives), so 1 only when every
  lesion is found without a false positive;
- measurements: 1 within ``max(tolerance_mm, tolerance_pct × reference)``, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from oncohybrid.errors import InputError

__all__ = ["ClickScore", "QuestionKind", "Score", "category_rank", "normalise_category",
           "point_voxel", "score_category", "score_choice", "score_clicks",
           "score_measurement", "score_ordinal", "ORDINAL_SCALES"]


class QuestionKind(StrEnum):
    """The question kinds of a teaching case."""

    CHOICE = "choice"  # multiple choice, one or several right options
    FREE_TEXT = "free_text"  # marked by a mentor
    CATEGORY = "category"  # response category under a criterion at a timepoint
    PERCIST = "percist"  # PERCIST 1.0 category (CMR/PMR/SMD/PMD)
    DEAUVILLE = "deauville"  # Deauville five-point score
    KRENNING = "krenning"  # Krenning score 0–4
    CLICK = "click"  # lesion localisation in the viewer
    MEASUREMENT = "measurement"  # long axis in mm

    @property
    def automatic(self) -> bool:
        return self is not QuestionKind.FREE_TEXT


@dataclass(frozen=True)
class Score:
    """A scored answer: ``score`` in 0…1, ``correct`` only for a full answer."""

    score: float
    correct: bool
    expected: str
    given: str
    feedback: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "correct": self.correct, "expected": self.expected,
                "given": self.given, "feedback": list(self.feedback), "details": self.details}


# ---------------------------------------------------------------- response categories
#: Ordinal rank of each response category: complete (0) < partial (1) < stable (2) <
#: progressive (3). RECIST 1.1 (Eisenhauer 2009 §4.3), iRECIST (Seymour 2017), PERCIST
#: 1.0 (Wahl 2009), EORTC 1999, Lugano 2014 (NMR = no metabolic response), Choi 2007.
_RANKS: dict[str, int] = {
    "CR": 0, "CMR": 0, "ICR": 0,
    "PR": 1, "PMR": 1, "IPR": 1,
    "SD": 2, "SMD": 2, "NMR": 2, "ISD": 2, "NON-CR/NON-PD": 2,
    "PD": 3, "PMD": 3, "IUPD": 3, "ICPD": 3,
}
_ALIASES: dict[str, str] = {
    "COMPLETE RESPONSE": "CR", "PARTIAL RESPONSE": "PR", "STABLE DISEASE": "SD",
    "PROGRESSIVE DISEASE": "PD", "PROGRESSION": "PD",
    "COMPLETE METABOLIC RESPONSE": "CMR", "PARTIAL METABOLIC RESPONSE": "PMR",
    "STABLE METABOLIC DISEASE": "SMD", "PROGRESSIVE METABOLIC DISEASE": "PMD",
    "NO METABOLIC RESPONSE": "NMR", "NON-CR/NON-PD": "NON-CR/NON-PD",
    "NONCR/NONPD": "NON-CR/NON-PD", "NOT EVALUABLE": "NE",
}
#: The categories a trainee may give per criterion (what the engines return).
CRITERION_CATEGORIES: dict[str, tuple[str, ...]] = {
    "recist1.1": ("CR", "PR", "SD", "PD", "NON-CR/NON-PD", "NE"),
    "mrecist": ("CR", "PR", "SD", "PD", "NE"),
    "irecist": ("iCR", "iPR", "iSD", "iUPD", "iCPD", "NE"),
    "choi": ("CR", "PR", "SD", "PD", "NE"),
    "percist": ("CMR", "PMR", "SMD", "PMD", "NE"),
    "eortc": ("CMR", "PMR", "SMD", "PMD", "NE"),
    "lugano": ("CMR", "PMR", "NMR", "PMD", "CR", "PR", "SD", "PD", "NE"),
    "lugano-pet": ("CMR", "PMR", "NMR", "PMD", "NE"),
    "lugano-ct": ("CR", "PR", "SD", "PD", "NE"),
    "lyric": ("CR", "PR", "SD", "PD", "IR1", "IR2", "IR3", "NE"),
    "recip": ("CR", "PR", "SD", "PD", "NE"),
}


def normalise_category(value: str) -> str:
    """Upper-case code of a response category (``"partial response"`` → ``PR``)."""
    text = " ".join(str(value).strip().upper().replace("_", " ").split())
    return _ALIASES.get(text, text)


def category_rank(value: str) -> int | None:
    """Ordinal rank (0 complete … 3 progressive) of a category, None if it has none."""
    return _RANKS.get(normalise_category(value))


def score_category(given: str, reference: str, criterion: str,
                   trace: Sequence[str] = ()) -> Score:
    """A response category under ``criterion`` against the stored assessment's.

    Right or wrong; ``details["off_by"]`` is the distance on the ordinal ladder when both
    have a rank. The engine's rule trace is the feedback.

    >>> score_category("pr", "PR", "recist1.1").correct
    True
    >>> score_category("SD", "PR", "recist1.1").details["off_by"]
    1
    """
    crit = criterion.strip().lower()
    g, ref = normalise_category(given), normalise_category(reference)
    allowed = CRITERION_CATEGORIES.get(crit)
    if not g:
        raise InputError(f"answer: no category given (one of {', '.join(allowed or ())})")
    if allowed is not None and g not in {normalise_category(a) for a in allowed} \
            and g != ref:
        raise InputError(f"answer: {given!r} is not a {criterion} category "
                         f"(one of {', '.join(allowed)})")
    correct = g == ref
    rg, rr = _RANKS.get(g), _RANKS.get(ref)
    off_by = abs(rg - rr) if rg is not None and rr is not None else None
    feedback = [f"reference: {ref} ({criterion}, from the stored assessment)"]
    if not correct:
        feedback.append(f"your answer {g} is "
                        + (f"{off_by} categor{'y' if off_by == 1 else 'ies'} off"
                           if off_by else "a different category"))
    feedback.extend(str(t) for t in trace)
    return Score(1.0 if correct else 0.0, correct, ref, g, tuple(feedback),
                 {"criterion": crit, "off_by": off_by})


# ---------------------------------------------------------------- ordinal grades
#: name → (lowest, highest, first grade of the upper clinical group, citation).
ORDINAL_SCALES: dict[str, tuple[int, int, int, str]] = {
    "deauville": (1, 5, 4, "Deauville 5-point scale; 1–3 vs 4–5 (Barrington JCO 2014; "
                           "Lugano, Cheson JCO 2014 Table 3)"),
    "krenning": (0, 4, 3, "Krenning score; PRRT cut-off 3 (Kwekkeboom & Krenning, "
                          "Semin Nucl Med 2002)"),
}


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"answer: {what} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise InputError(f"answer: {what} must be a whole number, got {value!r}")
    return int(text)


def score_ordinal(given: Any, reference: Any, scale: str, trace: Sequence[str] = ()) -> Score:
    """A Deauville or Krenning grade: 1 when equal, 0.5 one step off on the same side
    of the scale's decision boundary, else 0.

    >>> score_ordinal(3, 4, "deauville").score  # crosses 3 | 4
    0.0
    >>> score_ordinal(5, 4, "deauville").score
    0.5
    """
    if scale not in ORDINAL_SCALES:
        raise InputError(f"scale must be one of {', '.join(ORDINAL_SCALES)}, got {scale!r}")
    lo, hi, boundary, cite = ORDINAL_SCALES[scale]
    g = _as_int(given, f"{scale} score")
    ref = _as_int(reference, f"reference {scale} score")
    for v, who in ((g, "answer"), (ref, "reference")):
        if not lo <= v <= hi:
            raise InputError(f"{who}: {scale} score must be within {lo}–{hi}, got {v}")
    off = abs(g - ref)
    same_side = (g >= boundary) == (ref >= boundary)
    score = 1.0 if off == 0 else 0.5 if off == 1 and same_side else 0.0
    feedback = [f"reference: {scale} {ref} ({cite})"]
    if off:
        feedback.append(f"your answer {g} is {off} step{'s' if off > 1 else ''} off"
                        + ("" if same_side else ", on the other side of the decision "
                                                 f"boundary {boundary - 1} | {boundary}"))
    feedback.extend(str(t) for t in trace)
    return Score(score, off == 0, str(ref), str(g), tuple(feedback),
                 {"scale": scale, "off_by": off, "same_side": same_side})


# ---------------------------------------------------------------- multiple choice
def score_choice(given: Sequence[str] | str, correct: Sequence[str],
                 options: Sequence[str]) -> Score:
    """Multiple choice: the set of picked options against the right ones.

    >>> score_choice(["a", "c"], ["a", "b"], ["a", "b", "c"]).score
    0.0
    >>> score_choice(["a"], ["a", "b"], ["a", "b", "c"]).score
    0.5
    """
    picked = [given] if isinstance(given, str) else list(given)
    if not picked:
        raise InputError("answer: pick at least one option")
    unknown = [p for p in picked if p not in options]
    if unknown:
        raise InputError(f"answer: {unknown[0]!r} is not one of the options "
                         f"{', '.join(map(repr, options))}")
    right, chosen = set(correct), set(picked)
    if not right:
        raise InputError("question: no right option defined")
    score = max(0.0, (len(chosen & right) - len(chosen - right)) / len(right))
    ok = chosen == right
    return Score(score, ok, ", ".join(sorted(right)), ", ".join(sorted(chosen)),
                 (f"right option{'s' if len(right) > 1 else ''}: {', '.join(sorted(right))}",),
                 {"right_picked": len(chosen & right), "wrong_picked": len(chosen - right)})


# ---------------------------------------------------------------- measurement
def score_measurement(given_mm: Any, reference_mm: float, *, tolerance_mm: float = 2.0,
                      tolerance_pct: float = 10.0) -> Score:
    """A long-axis measurement within ``max(tolerance_mm, tolerance_pct % × reference)``.

    >>> score_measurement(33.0, 35.76).correct
    True
    """
    try:
        g = float(given_mm)
    except (TypeError, ValueError):
        raise InputError(f"answer: a length in mm, got {given_mm!r}") from None
    if not math.isfinite(g) or g <= 0:
        raise InputError(f"answer: a positive length in mm, got {given_mm!r}")
    ref = float(reference_mm)
    tol = max(float(tolerance_mm), float(tolerance_pct) / 100.0 * ref)
    err = g - ref
    ok = abs(err) <= tol + 1e-9
    return Score(1.0 if ok else 0.0, ok, f"{ref:.1f} mm", f"{g:.1f} mm",
                 (f"reference long axis {ref:.1f} mm; tolerance ± {tol:.1f} mm; your "
                  f"measurement is {err:+.1f} mm ({100 * err / ref:+.0f} %)",),
                 {"error_mm": round(err, 3), "tolerance_mm": round(tol, 3)})


# ---------------------------------------------------------------- lesion clicks
@dataclass(frozen=True)
class ClickScore:
    """A lesion-localisation answer: lesions hit and missed, false-positive clicks."""

    hits: tuple[str, ...]
    misses: tuple[str, ...]
    false_positives: int
    clicks: tuple[dict[str, Any], ...]

    @property
    def sensitivity(self) -> float:
        n = len(self.hits) + len(self.misses)
        return len(self.hits) / n if n else 0.0

    @property
    def score(self) -> float:
        n = len(self.hits) + len(self.misses) + self.false_positives
        return len(self.hits) / n if n else 0.0

    def as_score(self) -> Score:
        fb = [f"lesions found {len(self.hits)} of {len(self.hits) + len(self.misses)}"
              + (f" ({', '.join(self.hits)})" if self.hits else ""),
              f"missed: {', '.join(self.misses) if self.misses else 'none'}",
              f"false-positive clicks: {self.false_positives}"]
        return Score(self.score, not self.misses and not self.false_positives,
                     ", ".join(self.hits + self.misses), f"{len(self.clicks)} click(s)",
                     tuple(fb), {"hits": list(self.hits), "misses": list(self.misses),
                                 "false_positives": self.false_positives,
                                 "sensitivity": self.sensitivity, "clicks": list(self.clicks)})


def point_voxel(affine: np.ndarray, point_lps: Sequence[float], shape: Sequence[int]
                ) -> tuple[int, int, int] | None:
    """The voxel ``(k, j, i)`` of a grid (4×4 ``affine``: index → LPS mm, voxel centres
    at whole indices) that contains an LPS point; None outside the grid.

    A point belongs to the voxel whose centre is nearest along each index axis, so a
    click anywhere inside a mask's border voxel is inside the mask.
    """
    idx = np.linalg.solve(np.asarray(affine, float), np.append(np.asarray(point_lps, float),
                                                                1.0))[:3]
    kji = tuple(int(v) for v in np.floor(idx + 0.5))
    if all(0 <= v < n for v, n in zip(kji, shape, strict=True)):
        return kji  # type: ignore[return-value]
    return None


def score_clicks(clicks: Sequence[tuple[int, int, int] | None], labels: np.ndarray,
                 names: Mapping[int, str], targets: Collection[int] | None = None
                 ) -> ClickScore:
    """Score localisation clicks (voxel indices of ``labels``) against lesion masks.

    ``labels`` holds 0 for background and the label of each ground-truth lesion mask;
    ``names`` label → lesion key; ``targets`` the labels the question asks for (all
    named labels when None). A click inside a target lesion hits it (further clicks in the
    same lesion are counted as repeats, never twice); a click outside every target lesion
    — background, or a lesion not asked for — is a false positive; a click outside the
    image (None) is a false positive too. Targets never hit are misses.
    """
    lab = np.asarray(labels)
    wanted = set(names) if targets is None else set(targets)
    unknown = wanted - set(names)
    if unknown:
        raise InputError(f"question: lesion labels {sorted(unknown)} have no name")
    if not wanted:
        raise InputError("question: no ground-truth lesion to find")
    hit: list[int] = []
    fp = 0
    out: list[dict[str, Any]] = []
    for c in clicks:
        if c is None:
            fp += 1
            out.append({"voxel": None, "result": "false positive (outside the image)"})
            continue
        if len(c) != 3 or not all(0 <= int(v) < n for v, n in zip(c, lab.shape, strict=True)):
            raise InputError(f"click {list(c)}: outside the volume {list(lab.shape)}")
        value = int(lab[tuple(int(v) for v in c)])
        if value in wanted:
            if value in hit:
                out.append({"voxel": list(c), "result": f"repeat on {names[value]}"})
            else:
                hit.append(value)
                out.append({"voxel": list(c), "result": f"hit {names[value]}"})
        else:
            fp += 1
            what = f"on {names[value]}, not asked for" if value in names else \
                "outside every lesion"
            out.append({"voxel": list(c), "result": f"false positive ({what})"})
    order = sorted(wanted)
    return ClickScore(tuple(names[v] for v in order if v in hit),
                      tuple(names[v] for v in order if v not in hit), fp, tuple(out))
