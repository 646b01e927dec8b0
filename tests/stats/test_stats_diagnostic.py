"""Diagnostic accuracy, Wilson CIs, McNemar and Table 1 against independent computations.

Wilson intervals: Newcombe (1998) Table I examples (81/263 → 0.2553–0.3662; 15/148 →
0.0624–0.1605) and statsmodels' ``proportion_confint(method="wilson")``. McNemar:
statsmodels' ``mcnemar`` (exact binomial and corrected χ²).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportion_confint

from oncohybrid.errors import InputError
from oncohybrid.stats import diagnostic, table1


@pytest.mark.parametrize("k,n,lo,hi", [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
                                       (0, 20, 0.0, 0.1611), (29, 29, 0.8830, 1.0)])
def test_wilson_interval_matches_newcombe_1998(k: int, n: int, lo: float, hi: float) -> None:
    ci = diagnostic.wilson_ci(k, n)
    assert ci == pytest.approx((lo, hi), abs=5e-5)
    assert ci == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-12)


def test_sensitivity_specificity_ppv_npv() -> None:
    truth = [1] * 50 + [0] * 50
    test = [1] * 40 + [0] * 10 + [1] * 5 + [0] * 45
    r = diagnostic.accuracy(truth, test)
    assert (r.tp, r.fn, r.fp, r.tn) == (40, 10, 5, 45)
    assert r.sensitivity.value == 0.8 and r.specificity.value == 0.9
    assert r.ppv.value == pytest.approx(40 / 45) and r.npv.value == pytest.approx(45 / 55)
    assert r.ppv.ci95 == pytest.approx(proportion_confint(40, 45, method="wilson"))


def test_accuracy_needs_both_classes() -> None:
    with pytest.raises(InputError, match="one class"):
        diagnostic.accuracy([1, 1], [1, 0])


@pytest.mark.parametrize("exact", [True, False])
def test_mcnemar_matches_statsmodels(exact: bool) -> None:
    rng = np.random.default_rng(2)
    r1 = rng.integers(0, 2, 80)
    r2 = np.where(rng.random(80) < 0.25, 1 - r1, r1)
    r2[:6] = 1
    ours = diagnostic.mcnemar(r1, r2, exact=exact)
    table = pd.crosstab(r1, r2).to_numpy()
    ref = sm_mcnemar(table, exact=exact, correction=True)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert (ours.b, ours.c) == (table[1, 0], table[0, 1])


def test_table1_chooses_the_test_by_variable_type() -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({
        "arm": ["A"] * 30 + ["B"] * 30 + ["C"] * 30,
        "age": np.r_[rng.normal(60, 8, 30), rng.normal(64, 8, 30), rng.normal(58, 8, 30)],
        "sex": rng.choice(["F", "M"], 90),
        "stage": rng.choice([1, 2, 3], 90),
    })
    df.loc[3, "age"] = np.nan
    t = table1.table1(df, "arm", categorical=["stage"], nonparametric=[])
    rows = {r.variable.split(",")[0]: r for r in t.rows}
    ages = [df.loc[df.arm == g, "age"].dropna() for g in "ABC"]
    assert rows["age"].test == "one-way ANOVA"
    assert rows["age"].p == pytest.approx(stats.f_oneway(*ages).pvalue)
    assert rows["age"].missing == {"A": 1, "B": 0, "C": 0}
    assert rows["sex"].test == "chi-square"
    ct = pd.crosstab(df.sex, df.arm).to_numpy()
    assert rows["sex"].p == pytest.approx(stats.chi2_contingency(ct, correction=False).pvalue)
    assert rows["stage"].kind == "categorical" and set(rows["stage"].levels) == {"1", "2", "3"}
    t2 = table1.table1(df[df.arm != "C"], "arm", ["age"], nonparametric=["age"])
    assert t2.rows[0].test == "Mann-Whitney U"
    assert t2.rows[0].p == pytest.approx(stats.mannwhitneyu(ages[0], ages[1]).pvalue)


def test_table1_uses_fisher_for_a_sparse_2x2_table() -> None:
    df = pd.DataFrame({"arm": ["A"] * 10 + ["B"] * 10,
                       "relapse": ["yes"] * 1 + ["no"] * 9 + ["yes"] * 6 + ["no"] * 4})
    t = table1.table1(df, "arm")
    assert t.rows[0].test == "Fisher exact"
    assert t.rows[0].p == pytest.approx(stats.fisher_exact([[4, 9], [6, 1]]).pvalue)
    assert t.to_frame().iloc[0].to_dict()["A"] == "10"


def test_table1_needs_two_groups() -> None:
    with pytest.raises(InputError, match="one group"):
        table1.table1(pd.DataFrame({"arm": ["A", "A"], "x": [1.0, 2.0]}), "arm")
