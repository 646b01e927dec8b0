"""ROC analysis: empirical AUC with the DeLong SE and the paired DeLong test.

The DeLong estimator is written here (no Python package is trusted for it, see
``anchors-platforms.md`` §11): the structural components of DeLong, DeLong &
Clarke-Pearson (1988) computed with the midrank algorithm of Sun & Xu (2014), which is
O(N log N) instead of the O(m·n) pairwise comparisons.

References
----------
- DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated
  receiver operating characteristic curves: a nonparametric approach. Biometrics
  1988;44:837–845.
- Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under
  correlated receiver operating characteristic curves. IEEE Signal Process Lett
  2014;21:1389–1393.
- Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating
  characteristic (ROC) curve. Radiology 1982;143:29–36 (the CT example of the tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from oncohybrid.errors import InputError

Z95 = float(sps.norm.ppf(0.975))


@dataclass(frozen=True)
class AUCResult:
    """Empirical AUC (= Mann–Whitney probability ``P(X₁ > X₀) + ½P(X₁ = X₀)``), its DeLong
    SE, the Wald CI ``auc ± 1.96·SE`` (clipped to [0, 1]) and a logit-scale CI."""

    auc: float
    se: float
    ci95: tuple[float, float]
    ci95_logit: tuple[float, float]
    n_positive: int
    n_negative: int

    def as_dict(self) -> dict[str, object]:
        return {"auc": self.auc, "se": self.se, "ci95": list(self.ci95),
                "ci95_logit": list(self.ci95_logit), "n_positive": self.n_positive,
                "n_negative": self.n_negative}


@dataclass(frozen=True)
class DeLongTest:
    """Paired DeLong test of AUC₁ − AUC₂ for two scores on the same cases."""

    auc_difference: float
    se: float
    z: float
    p: float


@dataclass(frozen=True)
class ROCCurve:
    """Empirical ROC points, from (0, 0) to (1, 1), thresholds descending."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def _truth_array(truth: Sequence[object] | np.ndarray) -> np.ndarray:
    t = np.asarray(truth)
    values = set(np.unique(t).tolist())
    if not values <= {0, 1}:
        raise InputError(f"truth must be 0/1 (or true/false), got values "
                         f"{sorted(map(str, values))}")
    t = t.astype(int)
    if t.sum() == 0 or t.sum() == t.size:
        raise InputError("truth has one class only: ROC needs positive and negative cases")
    return t


def _midrank(x: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties averaged) — Sun & Xu (2014) Algorithm 1."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = x.size
    ranks_sorted = np.empty(n)
    i = 0
    while i < n:
        j = i
        while j < n and xs[j] == xs[i]:
            j += 1
        ranks_sorted[i:j] = 0.5 * (i + j - 1) + 1.0
        i = j
    out = np.empty(n)
    out[order] = ranks_sorted
    return out


def _delong_components(truth: np.ndarray, scores: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and the DeLong structural components ``V10`` (per positive) and ``V01`` (per
    negative) of ``scores`` (shape ``(n_scores, N)``), by midranks (Sun & Xu 2014 eq. 10–13).
    """
    pos = scores[:, truth == 1]
    neg = scores[:, truth == 0]
    m, n = pos.shape[1], neg.shape[1]
    aucs = np.empty(scores.shape[0])
    v10 = np.empty((scores.shape[0], m))
    v01 = np.empty((scores.shape[0], n))
    for r in range(scores.shape[0]):
        tx = _midrank(pos[r])
        ty = _midrank(neg[r])
        tz = _midrank(np.concatenate([pos[r], neg[r]]))
        aucs[r] = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    return aucs, v10, v01


def _delong_covariance(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    aucs, v10, v01 = _delong_components(truth, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m + s01 / n


def _as_scores(score: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    s = np.asarray(score, dtype=float)
    if s.shape != (n,):
        raise InputError(f"score has {s.size} values for {n} cases")
    if not np.all(np.isfinite(s)):
        raise InputError("score has missing or non-finite values")
    return s


def auc_delong(truth: Sequence[object] | np.ndarray,
               score: Sequence[float] | np.ndarray) -> AUCResult:
    """AUC with the DeLong (1988) SE, Wald and logit 95 % CIs.

    Higher scores mean "more likely positive". The logit CI is
    ``expit(logit(auc) ± 1.96·SE/(auc(1−auc)))`` (delta method), kept inside (0, 1).
    """
    t = _truth_array(truth)
    s = _as_scores(score, t.size)
    aucs, cov = _delong_covariance(t, s[None, :])
    auc = float(aucs[0])
    se = math.sqrt(max(float(cov[0, 0]), 0.0))
    wald = (max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se))
    if 0.0 < auc < 1.0:
        lg = math.log(auc / (1 - auc))
        h = Z95 * se / (auc * (1 - auc))
        logit = (1 / (1 + math.exp(-(lg - h))), 1 / (1 + math.exp(-(lg + h))))
    else:
        logit = (auc, auc)
    return AUCResult(auc=auc, se=se, ci95=wald, ci95_logit=logit,
                     n_positive=int(t.sum()), n_negative=int(t.size - t.sum()))


def delong_test(truth: Sequence[object] | np.ndarray, score1: Sequence[float] | np.ndarray,
                score2: Sequence[float] | np.ndarray) -> DeLongTest:
    """Paired DeLong (1988) test of two correlated AUCs: ``z = (A₁ − A₂)/√(V₁ + V₂ − 2C)``,
    two-sided normal p-value; z is for the first minus the second score."""
    t = _truth_array(truth)
    s = np.vstack([_as_scores(score1, t.size), _as_scores(score2, t.size)])
    aucs, cov = _delong_covariance(t, s)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    z = (0.0 if diff == 0.0 else math.copysign(math.inf, diff)) if se == 0.0 else diff / se
    p = float(2 * sps.norm.sf(abs(z)))
    return DeLongTest(auc_difference=diff, se=se, z=z, p=p)


def roc_curve(truth: Sequence[object] | np.ndarray,
              score: Sequence[float] | np.ndarray) -> ROCCurve:
    """Empirical ROC curve: one point per distinct score threshold (``score ≥ threshold``
    called positive)."""
    t = _truth_array(truth)
    s = _as_scores(score, t.size)
    thresholds = np.unique(s)[::-1]
    p, n = t.sum(), t.size - t.sum()
    tpr = [0.0] + [float(((s >= c) & (t == 1)).sum() / p) for c in thresholds]
    fpr = [0.0] + [float(((s >= c) & (t == 0)).sum() / n) for c in thresholds]
    return ROCCurve(fpr=np.asarray(fpr), tpr=np.asarray(tpr),
                    thresholds=np.concatenate([[np.inf], thresholds]))
