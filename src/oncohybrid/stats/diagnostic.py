"""Diagnostic accuracy of a binary test against the reference standard (sensitivity,
specificity, PPV, NPV with Wilson score CIs) and McNemar's test for two paired readers.

References
----------
- Wilson EB. Probable inference, the law of succession, and statistical inference. J Am
  Stat Assoc 1927;22:209–212; Newcombe RG. Two-sided confidence intervals for the single
  proportion: comparison of seven methods. Stat Med 1998;17:857–872 (method 3).
- McNemar Q. Note on the sampling error of the difference between correlated proportions
  or percentages. Psychometrika 1947;12:153–157; the exact version is the two-sided binomial
  test of the discordant pairs (Fagerland, Lydersen & Laake, BMC Med Res Methodol 2013;13:91).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from oncohybrid.errors import InputError

Z95 = float(sps.norm.ppf(0.975))


def wilson_ci(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927) score interval of a proportion ``successes/total``."""
    if total <= 0:
        return (math.nan, math.nan)
    p = successes / total
    denom = 1 + z**2 / total
    centre = (p + z**2 / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Proportion:
    value: float
    successes: int
    total: int
    ci95: tuple[float, float]

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "k": self.successes, "n": self.total,
                "ci95": list(self.ci95)}


def _prop(k: int, n: int) -> Proportion:
    return Proportion(value=k / n if n else math.nan, successes=k, total=n,
                      ci95=wilson_ci(k, n))


@dataclass(frozen=True)
class Accuracy:
    tp: int
    fp: int
    fn: int
    tn: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion

    def as_dict(self) -> dict[str, object]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "sensitivity": self.sensitivity.as_dict(),
                "specificity": self.specificity.as_dict(),
                "ppv": self.ppv.as_dict(), "npv": self.npv.as_dict(),
                "method": "Wilson score 95% CIs (Wilson 1927; Newcombe 1998)"}


def _binary(x: Sequence[object] | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x)
    values = set(np.unique(a).tolist())
    if not values <= {0, 1}:
        raise InputError(f"{name} must be 0/1, got {sorted(map(str, values))}")
    return a.astype(int)


def accuracy(truth: Sequence[object] | np.ndarray,
             test: Sequence[object] | np.ndarray) -> Accuracy:
    """Sensitivity, specificity, PPV and NPV of a 0/1 ``test`` against 0/1 ``truth``."""
    t, y = _binary(truth, "truth"), _binary(test, "test")
    if t.shape != y.shape:
        raise InputError("truth and test have different lengths")
    if t.sum() == 0 or t.sum() == t.size:
        raise InputError("truth has one class only: sensitivity and specificity need "
                         "positive and negative cases")
    tp = int(((t == 1) & (y == 1)).sum())
    fp = int(((t == 0) & (y == 1)).sum())
    fn = int(((t == 1) & (y == 0)).sum())
    tn = int(((t == 0) & (y == 0)).sum())
    return Accuracy(tp=tp, fp=fp, fn=fn, tn=tn, sensitivity=_prop(tp, tp + fn),
                    specificity=_prop(tn, tn + fp), ppv=_prop(tp, tp + fp),
                    npv=_prop(tn, tn + fn))


@dataclass(frozen=True)
class McNemar:
    b: int
    c: int
    statistic: float
    p: float
    method: str

    def as_dict(self) -> dict[str, object]:
        return {"b": self.b, "c": self.c, "statistic": self.statistic, "p": self.p,
                "method": self.method}


def mcnemar(reader1: Sequence[object] | np.ndarray, reader2: Sequence[object] | np.ndarray,
            exact: bool = True, correction: bool = True) -> McNemar:
    """McNemar (1947) test of paired 0/1 results; ``b`` = reader 1 positive and reader 2
    negative, ``c`` the reverse. Exact: two-sided binomial test of ``b`` in ``b + c`` at
    ½; asymptotic: ``(|b − c| − 1)²/(b + c)`` (without the −1 if ``correction`` is false)
    against χ²(1)."""
    r1, r2 = _binary(reader1, "reader 1"), _binary(reader2, "reader 2")
    if r1.shape != r2.shape:
        raise InputError("the two readers have different numbers of results")
    b = int(((r1 == 1) & (r2 == 0)).sum())
    c = int(((r1 == 0) & (r2 == 1)).sum())
    if exact:
        p = 1.0 if b + c == 0 else float(sps.binomtest(b, b + c, 0.5).pvalue)
        return McNemar(b=b, c=c, statistic=float(min(b, c)), p=p,
                       method="McNemar exact (two-sided binomial test of discordant pairs)")
    if b + c == 0:
        return McNemar(b=b, c=c, statistic=0.0, p=1.0, method="McNemar chi-square")
    num = (abs(b - c) - (1 if correction else 0)) ** 2
    stat = max(num, 0) / (b + c)
    return McNemar(b=b, c=c, statistic=float(stat), p=float(sps.chi2.sf(stat, 1)),
                   method="McNemar chi-square" + (" with continuity correction"
                                                  if correction else ""))
