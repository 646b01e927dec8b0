"""Survival analysis through lifelines: Kaplan–Meier with median and CI, log-rank test, Cox
proportional hazards with the Schoenfeld-residual proportional-hazards check.

References
----------
- Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat
  Assoc 1958;53:457–481 (CI of the survival function: Greenwood variance on the
  log(−log) scale, Kalbfleisch & Prentice 1980, as lifelines computes it).
- Brookmeyer R, Crowley J. A confidence interval for the median survival time. Biometrics
  1982;38:29–41 (median CI read where the survival CI crosses 0.5).
- Mantel N. Evaluation of survival data and two new rank order statistics arising in its
  consideration. Cancer Chemother Rep 1966;50:163–170 (log-rank).
- Cox DR. Regression models and life-tables. J R Stat Soc B 1972;34:187–220; Grambsch PM,
  Therneau TM. Proportional hazards tests and diagnostics based on weighted residuals.
  Biometrika 1994;81:515–526 (PH test).
- Davidson-Pilon C. lifelines: survival analysis in Python. JOSS 2019;4:1317.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from oncohybrid.errors import InputError


@dataclass(frozen=True)
class KMGroup:
    """One Kaplan–Meier curve: counts, median survival and its 95 % CI (``None`` where the
    curve or its limit never falls to 0.5)."""

    name: str
    n: int
    events: int
    median: float | None
    median_ci95: tuple[float | None, float | None]
    timeline: np.ndarray = field(repr=False)
    survival: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, object]:
        return {"n": self.n, "events": self.events, "median": self.median,
                "median_ci95": list(self.median_ci95)}


@dataclass(frozen=True)
class LogRank:
    chi2: float
    df: int
    p: float


@dataclass(frozen=True)
class KMResult:
    groups: dict[str, KMGroup]
    logrank: LogRank | None

    def as_dict(self) -> dict[str, object]:
        return {"groups": {k: g.as_dict() for k, g in self.groups.items()},
                "logrank": None if self.logrank is None else
                {"chi2": self.logrank.chi2, "df": self.logrank.df, "p": self.logrank.p},
                "method": "Kaplan-Meier (lifelines), median CI where the log(-log) Greenwood "
                "band crosses 0.5 (Brookmeyer & Crowley 1982); log-rank (Mantel 1966)"}


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _check_time_event(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    if t.shape != e.shape or t.ndim != 1 or t.size == 0:
        raise InputError("time and event must be two columns of equal length")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InputError("time must be finite and non-negative")
    values = set(np.unique(e).tolist())
    if not values <= {0, 1}:
        raise InputError(f"event must be 0/1 (1 = event, 0 = censored), got "
                         f"{sorted(map(str, values))}")
    return t, e.astype(int)


def kaplan_meier(time: Sequence[float] | np.ndarray, event: Sequence[int] | np.ndarray,
                 group: Sequence[object] | np.ndarray | None = None) -> KMResult:
    """Kaplan–Meier per group (one group ``"all"`` without ``group``) and the log-rank
    test across groups (``None`` with one group)."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test
    from lifelines.utils import median_survival_times

    t, e = _check_time_event(np.asarray(time), np.asarray(event))
    g = np.full(t.size, "all", dtype=object) if group is None else \
        np.asarray([str(v) for v in group], dtype=object)
    if g.size != t.size:
        raise InputError("group has a different length from time")
    groups: dict[str, KMGroup] = {}
    for name in sorted(set(g.tolist())):
        sel = g == name
        kmf = KaplanMeierFitter().fit(t[sel], e[sel], label=str(name))
        ci = median_survival_times(kmf.confidence_interval_)
        lo, hi = (float(ci.iloc[0, 0]), float(ci.iloc[0, 1]))
        groups[name] = KMGroup(
            name=name, n=int(sel.sum()), events=int(e[sel].sum()),
            median=_finite_or_none(kmf.median_survival_time_),
            median_ci95=(_finite_or_none(lo), _finite_or_none(hi)),
            timeline=kmf.survival_function_.index.to_numpy(),
            survival=kmf.survival_function_.iloc[:, 0].to_numpy())
    logrank = None
    if len(groups) >= 2:
        res = multivariate_logrank_test(t, g, e)
        logrank = LogRank(chi2=float(res.test_statistic), df=int(res.degrees_of_freedom),
                          p=float(res.p_value))
    return KMResult(groups=groups, logrank=logrank)


@dataclass(frozen=True)
class CoxTerm:
    name: str
    hr: float
    hr_ci95: tuple[float, float]
    coef: float
    se: float
    p: float
    ph_p: float


@dataclass(frozen=True)
class CoxResult:
    terms: list[CoxTerm]
    n: int
    events: int
    concordance: float
    ph_violated: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"n": self.n, "events": self.events, "concordance": self.concordance,
                "terms": {t.name: {"hr": t.hr, "hr_ci95": list(t.hr_ci95), "coef": t.coef,
                                   "se": t.se, "p": t.p, "ph_test_p": t.ph_p}
                          for t in self.terms},
                "ph_violated": self.ph_violated,
                "method": "Cox PH (lifelines CoxPHFitter, Efron ties); PH check: Schoenfeld "
                "residual test with rank-transformed time (Grambsch & Therneau 1994), "
                "flagged at p < 0.05"}


def cox(data: pd.DataFrame, time: str, event: str, covariates: Sequence[str]) -> CoxResult:
    """Cox proportional-hazards model of ``time``/``event`` on numeric ``covariates`` with
    the Grambsch–Therneau proportional-hazards test per covariate."""
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    if not covariates:
        raise InputError("Cox model needs at least one covariate")
    t, e = _check_time_event(data[time].to_numpy(), data[event].to_numpy())
    if e.sum() == 0:
        raise InputError("Cox model needs at least one event")
    frame = data[[*covariates]].astype(float).copy()
    frame["_time"], frame["_event"] = t, e
    cph = CoxPHFitter().fit(frame, duration_col="_time", event_col="_event")
    ph = proportional_hazard_test(cph, frame, time_transform="rank")
    ph_p = dict(zip(ph.summary.index.tolist(), ph.summary["p"].tolist(), strict=True))
    s = cph.summary
    terms = [CoxTerm(name=str(c), hr=float(s.loc[c, "exp(coef)"]),
                     hr_ci95=(float(s.loc[c, "exp(coef) lower 95%"]),
                              float(s.loc[c, "exp(coef) upper 95%"])),
                     coef=float(s.loc[c, "coef"]), se=float(s.loc[c, "se(coef)"]),
                     p=float(s.loc[c, "p"]), ph_p=float(ph_p[c])) for c in covariates]
    return CoxResult(terms=terms, n=int(t.size), events=int(e.sum()),
                     concordance=float(cph.concordance_index_),
                     ph_violated=[x.name for x in terms if x.ph_p < 0.05])
