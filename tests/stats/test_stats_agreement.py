"""Agreement statistics against published worked examples and independent implementations.

- Cohen's kappa: the SAS PROC FREQ documentation example (3×3 table, n = 19) — simple kappa
  0.4842, ASE 0.1380, 95 % CI 0.2137–0.7547; weighted (Cicchetti–Allison = linear) kappa
  0.4701, ASE 0.1457, CI 0.1845–0.7558 (the numbers statsmodels' own tests pin).
- Fleiss' kappa: Fleiss (1971) psychiatric diagnoses, 30 patients × 6 raters, κ = 0.430;
  R irr::kappam.fleiss reports z = 17.7 for the same data.
- ICC: Shrout & Fleiss (1979) Table 2 (6 targets × 4 judges) with their Table 4 values
  .17 .29 .71 .44 .62 .91; CIs as printed by R psych::ICC for the same data.
- Bland–Altman: Bland & Altman (1986) Table 1, first PEFR readings (Wright − mini Wright):
  mean difference −2.1 l/min, SD 38.8 l/min, CI of a limit ±34.6 l/min (their −114.3 to
  −45.1 around −79.7, computed with the approximation SE ≈ √(3s²/n), t = 2.12).
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats import inter_rater

from oncohybrid.errors import InputError
from oncohybrid.stats import agreement as ag

SAS_TABLE = np.array([[0, 4, 1], [0, 8, 0], [0, 1, 5]])

# Shrout & Fleiss (1979) Table 2: rows targets, columns judges 1–4.
SF_TABLE2 = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
                      [6, 2, 4, 7]])

# Fleiss (1971) Table 1, as reconstructed in statsmodels' tests: diagnoses 1–5.
FLEISS_1971 = np.array([
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5]])

WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]


def _pairs(table: np.ndarray) -> tuple[list[int], list[int]]:
    a: list[int] = []
    b: list[int] = []
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            a += [i] * int(table[i, j])
            b += [j] * int(table[i, j])
    return a, b


def test_cohen_kappa_matches_the_sas_worked_example() -> None:
    r = ag.cohen_kappa_table(SAS_TABLE)
    assert (round(r.kappa, 4), round(r.se, 4)) == (0.4842, 0.1380)
    assert (round(r.ci95[0], 4), round(r.ci95[1], 4)) == (0.2137, 0.7547)
    assert r.n == 19


def test_linear_weighted_kappa_matches_the_sas_worked_example() -> None:
    r = ag.cohen_kappa_table(SAS_TABLE, "linear")
    assert (round(r.kappa, 4), round(r.se, 4)) == (0.4701, 0.1457)
    assert (round(r.ci95[0], 4), round(r.ci95[1], 4)) == (0.1845, 0.7558)


@pytest.mark.parametrize("weights,sm", [("none", None), ("linear", "linear"),
                                        ("quadratic", "quadratic")])
def test_kappa_and_its_se_agree_with_statsmodels(weights: str, sm: str | None) -> None:
    rng = np.random.default_rng(7)
    table = rng.integers(0, 12, size=(4, 4)) + 6 * np.eye(4, dtype=int)
    a, b = _pairs(table)
    ours = ag.cohen_kappa(a, b, weights=weights)  # type: ignore[arg-type]
    ref = inter_rater.cohens_kappa(table, wt=sm) if sm else inter_rater.cohens_kappa(table)
    assert ours.kappa == pytest.approx(ref.kappa, abs=1e-12)
    assert ours.se == pytest.approx(ref.std_kappa, rel=1e-9)


def test_fleiss_kappa_reproduces_fleiss_1971() -> None:
    r = ag.fleiss_kappa(FLEISS_1971)
    assert round(r.kappa, 3) == 0.430
    assert round(r.kappa / r.se, 1) == 17.7  # irr::kappam.fleiss z
    table, _ = inter_rater.aggregate_raters(FLEISS_1971)
    assert r.kappa == pytest.approx(inter_rater.fleiss_kappa(table), abs=1e-12)
    assert r.n == 30


def test_fleiss_kappa_refuses_one_rater() -> None:
    with pytest.raises(InputError, match="at least 2 raters"):
        ag.fleiss_kappa(FLEISS_1971[:, :1])


def test_icc_reproduces_shrout_fleiss_table_4() -> None:
    r = ag.icc(SF_TABLE2)
    published = {"ICC(1,1)": .17, "ICC(2,1)": .29, "ICC(3,1)": .71, "ICC(1,k)": .44,
                 "ICC(2,k)": .62, "ICC(3,k)": .91}
    assert list(r) == list(published)
    for form, value in published.items():
        assert round(r[form].icc, 2) == value, form


def test_icc_confidence_limits_match_r_psych() -> None:
    # psych::ICC(ratings) on Shrout & Fleiss Table 2: lower and upper bounds.
    psych = {"ICC(1,1)": (-0.133, 0.72), "ICC(2,1)": (0.019, 0.76), "ICC(3,1)": (0.342, 0.95),
             "ICC(1,k)": (-0.884, 0.91), "ICC(2,k)": (0.071, 0.93), "ICC(3,k)": (0.676, 0.99)}
    r = ag.icc(SF_TABLE2)
    for form, (lo, hi) in psych.items():
        assert r[form].ci95[0] == pytest.approx(lo, abs=0.0005), form
        assert r[form].ci95[1] == pytest.approx(hi, abs=0.005), form
    assert round(r["ICC(1,1)"].f, 2) == 1.79 and round(r["ICC(3,1)"].f, 2) == 11.03
    assert (r["ICC(2,1)"].df1, r["ICC(2,1)"].df2) == (5, 15)


def test_icc_equals_anova_variance_components_computed_independently() -> None:
    # One-way and two-way ANOVA through statsmodels' OLS, then the ICC definitions.
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (12, 1)) + rng.normal(0, 0.5, (1, 3)) + rng.normal(0, 0.4, (12, 3))
    long = pd.DataFrame([(t, j, x[t, j]) for t in range(12) for j in range(3)],
                        columns=["t", "j", "y"])
    two = anova_lm(smf.ols("y ~ C(t) + C(j)", long).fit())
    one = anova_lm(smf.ols("y ~ C(t)", long).fit())
    bms, jms, ems = two.loc["C(t)", "mean_sq"], two.loc["C(j)", "mean_sq"], \
        two.loc["Residual", "mean_sq"]
    wms = one.loc["Residual", "mean_sq"]
    n, k = 12, 3
    r = ag.icc(x)
    assert r["ICC(1,1)"].icc == pytest.approx((bms - wms) / (bms + (k - 1) * wms))
    assert r["ICC(2,1)"].icc == pytest.approx(
        (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n))
    assert r["ICC(3,k)"].icc == pytest.approx((bms - ems) / bms)


def test_icc_of_identical_raters_is_one_with_a_degenerate_interval() -> None:
    x = np.repeat(np.array([[1.0], [4.0], [2.0], [7.0]]), 3, axis=1)
    r = ag.icc(x)
    for form in ag.ICC_FORMS:
        assert r[form].icc == pytest.approx(1.0) and r[form].ci95 == (1.0, 1.0), form


def test_icc_of_identical_targets_is_refused() -> None:
    with pytest.raises(InputError, match="same mean"):
        ag.icc(np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]))


def test_icc_needs_two_raters() -> None:
    with pytest.raises(InputError, match="at least 2 raters"):
        ag.icc(SF_TABLE2[:, :1])


def test_bland_altman_reproduces_the_1986_pefr_example() -> None:
    r = ag.bland_altman(WRIGHT, MINI)
    assert r.n == 17
    assert round(r.bias, 1) == -2.1
    assert round(r.sd, 1) == 38.8
    assert r.loa[0] == pytest.approx(-2.1176 - 1.96 * 38.765, abs=0.01)
    assert r.loa[1] == pytest.approx(-2.1176 + 1.96 * 38.765, abs=0.01)
    # Published half-width of the CI of a limit: (114.3 − 45.1)/2 = 34.6 l/min.
    half = (r.loa_ci95[0][1] - r.loa_ci95[0][0]) / 2
    assert half == pytest.approx(34.6, abs=0.5)
    assert r.loa_ci95[1][0] < r.loa[1] < r.loa_ci95[1][1]


def test_bland_altman_bias_ci_is_the_one_sample_t_interval() -> None:
    from scipy import stats

    d = np.asarray(WRIGHT, float) - np.asarray(MINI, float)
    ci = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    r = ag.bland_altman(WRIGHT, MINI)
    assert r.bias_ci95 == pytest.approx((ci.low, ci.high))
