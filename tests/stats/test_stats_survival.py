"""Kaplan–Meier, log-rank and Cox on the Freireich et al. (1963) leukaemia remission data
(Gehan 1965; Kleinbaum & Klein, Survival Analysis, ch. 2): weeks in remission for 21
patients on 6-mercaptopurine and 21 on placebo. Published: median 23 weeks (6-MP) and 8
weeks (placebo); log-rank χ² = 16.79 on 1 df. Cross-checks with statsmodels'
independent implementations (SurvfuncRight, survdiff, PHReg with Efron ties).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from oncohybrid.errors import InputError
from oncohybrid.stats import survival

MP_TIME = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PL_TIME = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
PL_EVENT = [1] * 21


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.array(MP_TIME + PL_TIME, float)
    e = np.array(MP_EVENT + PL_EVENT)
    g = np.array(["6-MP"] * 21 + ["placebo"] * 21, dtype=object)
    return t, e, g


def test_medians_and_logrank_reproduce_the_published_gehan_example() -> None:
    t, e, g = _data()
    r = survival.kaplan_meier(t, e, g)
    assert r.groups["6-MP"].median == 23
    assert r.groups["placebo"].median == 8
    assert (r.groups["6-MP"].n, r.groups["6-MP"].events) == (21, 9)
    assert r.logrank is not None
    assert round(r.logrank.chi2, 2) == 16.79
    assert r.logrank.df == 1
    chi2, p = survdiff(t, e, g)
    assert r.logrank.chi2 == pytest.approx(chi2, rel=1e-8)
    assert r.logrank.p == pytest.approx(p, rel=1e-6)


def test_km_curve_and_median_ci_match_statsmodels() -> None:
    t, e, g = _data()
    r = survival.kaplan_meier(t, e, g)
    sel = g == "placebo"
    sf = SurvfuncRight(t[sel], e[sel])
    ours = dict(zip(r.groups["placebo"].timeline, r.groups["placebo"].survival, strict=True))
    for time, s in zip(sf.surv_times, sf.surv_prob, strict=True):
        assert ours[time] == pytest.approx(s)
    lo, hi = sf.quantile_ci(0.5, method="cloglog")
    assert r.groups["placebo"].median_ci95[0] == pytest.approx(lo)
    assert r.groups["placebo"].median_ci95[1] == pytest.approx(hi)


def test_one_group_is_called_all_and_has_no_logrank() -> None:
    t, e, _ = _data()
    r = survival.kaplan_meier(t, e)
    assert list(r.groups) == ["all"]
    assert r.groups["all"].n == 42
    assert r.logrank is None


def test_cox_hazard_ratio_matches_statsmodels_efron() -> None:
    t, e, g = _data()
    df = pd.DataFrame({"time": t, "event": e, "placebo": (g == "placebo").astype(float)})
    r = survival.cox(df, "time", "event", ["placebo"])
    ref = PHReg(t, df[["placebo"]].to_numpy(), status=e, ties="efron").fit()
    assert r.terms[0].coef == pytest.approx(ref.params[0], rel=1e-4)
    assert r.terms[0].se == pytest.approx(ref.bse[0], rel=1e-3)
    assert round(r.terms[0].hr, 2) == 4.82  # R coxph on the same data: exp(coef) 4.817
    assert 0 <= r.terms[0].ph_p <= 1
    assert r.events == 30


def test_event_must_be_zero_or_one() -> None:
    with pytest.raises(InputError, match="event must be 0/1"):
        survival.kaplan_meier([1, 2, 3], [0, 2, 1])
