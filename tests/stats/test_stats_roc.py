"""AUC and DeLong against Hanley & McNeil (1982) and a brute-force DeLong written in the test.

Hanley & McNeil (1982) Table 1: CT ratings (1 definitely normal … 5 definitely abnormal) of
58 normal and 51 abnormal patients; area 0.893 with SE 0.032 by their exponential
approximation (eq. 2). DeLong's nonparametric SE is close to it; the brute-force version
below follows DeLong et al. (1988) §2 literally (placement values from all m·n pairs).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from oncohybrid.errors import InputError
from oncohybrid.stats import roc

NORMAL = [33, 6, 6, 11, 2]
ABNORMAL = [3, 2, 2, 11, 33]


def _hanley_mcneil() -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(1, 6)
    score = np.r_[np.repeat(r, NORMAL), np.repeat(r, ABNORMAL)].astype(float)
    truth = np.r_[np.zeros(sum(NORMAL)), np.ones(sum(ABNORMAL))].astype(int)
    return truth, score


def _psi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _brute_delong(truth: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) eq. (3)–(5) by all pairs: AUCs and their covariance."""
    aucs, v10s, v01s = [], [], []
    for s in scores:
        psi = _psi(s[truth == 1], s[truth == 0])
        aucs.append(psi.mean())
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    m, n = len(v10s[0]), len(v01s[0])
    s10 = np.atleast_2d(np.cov(np.array(v10s)))
    s01 = np.atleast_2d(np.cov(np.array(v01s)))
    return np.array(aucs), s10 / m + s01 / n


def test_auc_of_the_hanley_mcneil_ct_data_is_0_893() -> None:
    truth, score = _hanley_mcneil()
    r = roc.auc_delong(truth, score)
    assert round(r.auc, 3) == 0.893
    assert (r.n_positive, r.n_negative) == (51, 58)
    # Published SE 0.032 (exponential approximation); DeLong's is within 0.002 of it.
    assert r.se == pytest.approx(0.032, abs=0.002)
    a = r.auc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se_hm = math.sqrt((a * (1 - a) + 50 * (q1 - a * a) + 57 * (q2 - a * a)) / (51 * 58))
    assert round(se_hm, 3) == 0.032


def test_delong_se_equals_the_pairwise_definition() -> None:
    truth, score = _hanley_mcneil()
    aucs, cov = _brute_delong(truth, [score])
    r = roc.auc_delong(truth, score)
    assert r.auc == pytest.approx(aucs[0], abs=1e-12)
    assert r.se == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-10)
    assert r.ci95 == pytest.approx((r.auc - 1.959964 * r.se, r.auc + 1.959964 * r.se),
                                   abs=1e-6)


def test_auc_is_the_mann_whitney_probability() -> None:
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 2, 200)
    score = np.round(truth * 0.8 + rng.normal(0, 1, 200), 1)  # ties on purpose
    u = stats.mannwhitneyu(score[truth == 1], score[truth == 0]).statistic
    r = roc.auc_delong(truth, score)
    assert r.auc == pytest.approx(u / (truth.sum() * (truth.size - truth.sum())))


def test_paired_delong_test_equals_the_pairwise_definition() -> None:
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 150)
    s1 = truth + rng.normal(0, 1.0, 150)
    s2 = np.round(truth + rng.normal(0, 1.6, 150) + 0.3 * s1, 1)
    aucs, cov = _brute_delong(truth, [s1, s2])
    z = (aucs[0] - aucs[1]) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    t = roc.delong_test(truth, s1, s2)
    assert t.z == pytest.approx(z, rel=1e-10)
    assert t.z > 0  # first minus second: the less noisy score is better
    assert t.p == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert roc.delong_test(truth, s2, s1).z == pytest.approx(-z, rel=1e-10)


def test_one_class_only_is_refused() -> None:
    with pytest.raises(InputError, match="one class"):
        roc.auc_delong([1, 1, 1], [0.1, 0.4, 0.3])


def test_roc_curve_runs_from_origin_to_one() -> None:
    truth, score = _hanley_mcneil()
    c = roc.roc_curve(truth, score)
    assert (c.fpr[0], c.tpr[0], c.fpr[-1], c.tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(c.tpr, c.fpr) == pytest.approx(roc.auc_delong(truth, score).auc)
