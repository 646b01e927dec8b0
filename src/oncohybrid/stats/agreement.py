"""Agreement between raters or methods: Cohen's and Fleiss' kappa, the six Shrout–Fleiss
intraclass correlations and Bland–Altman limits of agreement.

References
----------
- Cohen J. A coefficient of agreement for nominal scales. Educ Psychol Meas 1960;20:37–46.
- Cohen J. Weighted kappa. Psychol Bull 1968;70:213–220.
- Fleiss JL, Cohen J, Everitt BS. Large sample standard errors of kappa and weighted kappa.
  Psychol Bull 1969;72:323–327 (the non-null SE used for the CI).
- Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull
  1971;76:378–382; Fleiss JL, Nee JCM, Landis JR. Large sample variance of kappa in the case
  of different sets of raters. Psychol Bull 1979;86:974–977 (SE of Fleiss' kappa).
- Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater reliability.
  Psychol Bull 1979;86:420–428; McGraw KO, Wong SP. Forming inferences about some intraclass
  correlation coefficients. Psychol Methods 1996;1:30–46.
- Bland JM, Altman DG. Statistical methods for assessing agreement between two methods of
  clinical measurement. Lancet 1986;327:307–310; Measuring agreement in method comparison
  studies. Stat Methods Med Res 1999;8:135–160 (CI of the limits, §5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from oncohybrid.errors import InputError

Z95 = float(sps.norm.ppf(0.975))
KappaWeights = Literal["none", "linear", "quadratic"]


@dataclass(frozen=True)
class KappaResult:
    """A kappa with its large-sample SE and the Wald 95 % CI ``kappa ± 1.96·SE``."""

    kappa: float
    se: float
    ci95: tuple[float, float]
    n: int
    method: str

    def as_dict(self) -> dict[str, object]:
        return {"kappa": self.kappa, "se": self.se, "ci95": list(self.ci95), "n": self.n,
                "method": self.method}


def _categories(*columns: Sequence[object]) -> list[object]:
    values = {v for col in columns for v in col}
    try:
        return sorted(values)  # type: ignore[type-var]
    except TypeError:
        return sorted(values, key=str)


def agreement_weights(k: int, weights: KappaWeights) -> np.ndarray:
    """Agreement weights ``w_ij`` on ``k`` ordered categories (Cohen 1968): identity for
    ``none``, ``1 − |i−j|/(k−1)`` for ``linear``, ``1 − (i−j)²/(k−1)²`` for ``quadratic``."""
    if weights not in ("none", "linear", "quadratic"):
        raise InputError(f"--weights {weights!r}: expected none, linear or quadratic")
    i, j = np.indices((k, k))
    if weights == "none" or k == 1:
        return (i == j).astype(float)
    if weights == "linear":
        return 1.0 - np.abs(i - j) / (k - 1)
    return 1.0 - (i - j) ** 2 / (k - 1) ** 2


def cohen_kappa_table(table: np.ndarray, weights: KappaWeights = "none") -> KappaResult:
    """Cohen's (weighted) kappa of a k×k contingency table (rows rater A, columns rater B).

    SE is the large-sample non-null SE of Fleiss, Cohen & Everitt (1969), eq. for weighted
    kappa (unweighted kappa is the identity-weight case); the CI is ``κ ± 1.96·SE``, as
    SAS PROC FREQ reports it.

    >>> round(cohen_kappa_table(np.array([[0, 4, 1], [0, 8, 0], [0, 1, 5]])).kappa, 4)
    0.4842
    """
    t = np.asarray(table, dtype=float)
    n = float(t.sum())
    if t.ndim != 2 or t.shape[0] != t.shape[1] or n <= 0:
        raise InputError("kappa needs a square table with at least one rated subject")
    k = t.shape[0]
    w = agreement_weights(k, weights)
    p = t / n
    pr, pc = p.sum(axis=1), p.sum(axis=0)
    po = float((w * p).sum())
    pe = float((w * np.outer(pr, pc)).sum())
    if pe >= 1.0:
        raise InputError("kappa is undefined: both raters used one and the same category "
                         "for every subject")
    kappa = (po - pe) / (1.0 - pe)
    wi = w @ pc  # w̄_i. = Σ_j p_.j w_ij
    wj = pr @ w  # w̄_.j = Σ_i p_i. w_ij
    inner = (w - (wi[:, None] + wj[None, :]) * (1.0 - kappa)) ** 2
    var = ((p * inner).sum() - (kappa - pe * (1.0 - kappa)) ** 2) / (n * (1.0 - pe) ** 2)
    se = math.sqrt(max(float(var), 0.0))
    label = "Cohen's kappa" if weights == "none" else f"Cohen's weighted kappa ({weights})"
    return KappaResult(kappa=float(kappa), se=se, ci95=(kappa - Z95 * se, kappa + Z95 * se),
                       n=int(round(n)),
                       method=f"{label}; SE Fleiss, Cohen & Everitt 1969; Wald 95% CI")


def cohen_kappa(a: Sequence[object], b: Sequence[object],
                weights: KappaWeights = "none",
                categories: Sequence[object] | None = None) -> KappaResult:
    """Cohen's kappa of two raters' paired labels; ordered categories are the sorted union of
    the labels unless ``categories`` gives their order (needed for weighted kappa)."""
    if len(a) != len(b):
        raise InputError(f"the two raters have {len(a)} and {len(b)} ratings")
    if len(a) == 0:
        raise InputError("no subject rated by both raters")
    cats = list(categories) if categories is not None else _categories(a, b)
    index = {c: i for i, c in enumerate(cats)}
    unknown = {v for v in (*a, *b) if v not in index}
    if unknown:
        raise InputError(f"ratings not among the categories: {sorted(map(str, unknown))}")
    table = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    return cohen_kappa_table(table, weights)


def fleiss_kappa(ratings: np.ndarray | Sequence[Sequence[object]]) -> KappaResult:
    """Fleiss' kappa for ``m ≥ 2`` raters (Fleiss 1971), rows subjects, columns raters.

    SE is the large-sample SE under the null hypothesis of Fleiss, Nee & Landis (1979), the
    one R's ``irr::kappam.fleiss`` tests with; the CI ``κ ± 1.96·SE`` is therefore
    approximate (no non-null SE is published for m raters).
    """
    arr = np.asarray(ratings, dtype=object)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InputError("Fleiss' kappa needs at least 2 raters (columns)")
    n, m = arr.shape
    if n < 1:
        raise InputError("no subject rated")
    cats = _categories(arr.ravel().tolist())
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros((n, len(cats)))
    for s in range(n):
        for v in arr[s]:
            counts[s, index[v]] += 1
    pj = counts.sum(axis=0) / (n * m)
    pi = ((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1))
    pbar, pe = float(pi.mean()), float((pj**2).sum())
    if pe >= 1.0:
        raise InputError("Fleiss' kappa is undefined: every rating is the same category")
    kappa = (pbar - pe) / (1.0 - pe)
    q = 1.0 - pj
    spq = float((pj * q).sum())
    var0 = 2.0 / (n * m * (m - 1)) * (spq**2 - float((pj * q * (q - pj)).sum())) / spq**2
    se = math.sqrt(max(var0, 0.0))
    return KappaResult(kappa=kappa, se=se, ci95=(kappa - Z95 * se, kappa + Z95 * se), n=n,
                       method="Fleiss' kappa (Fleiss 1971); SE under H0 Fleiss, Nee & "
                       "Landis 1979; Wald 95% CI")


@dataclass(frozen=True)
class ICCResult:
    """One Shrout–Fleiss form with its F test and exact (or Satterthwaite) 95 % CI."""

    form: str
    icc: float
    ci95: tuple[float, float]
    f: float
    df1: float
    df2: float
    p: float

    def as_dict(self) -> dict[str, object]:
        return {"icc": self.icc, "ci95": list(self.ci95), "F": self.f, "df1": self.df1,
                "df2": self.df2, "p": self.p}


ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")


def icc(matrix: np.ndarray) -> dict[str, ICCResult]:
    """All six Shrout & Fleiss (1979) intraclass correlations of an ``n targets × k raters``
    matrix with one rating per cell (no missing values).

    Forms (Shrout & Fleiss 1979 Table 1–2; McGraw & Wong 1996 names in brackets):
    ICC(1,1) one-way random [ICC(1)], ICC(2,1) two-way random absolute agreement [ICC(A,1)],
    ICC(3,1) two-way mixed consistency [ICC(C,1)], and their means of ``k`` raters
    ICC(1,k), ICC(2,k), ICC(3,k). CIs: F-based (Shrout & Fleiss eq. for Cases 1 and 3), the
    Satterthwaite approximation for Case 2 (Shrout & Fleiss 1979 p. 425; McGraw & Wong 1996
    Table 7), the average-measure limits by the Spearman–Brown step from the single ones.
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2:
        raise InputError("ICC needs a targets × raters table")
    n, k = x.shape
    if k < 2:
        raise InputError(f"ICC needs at least 2 raters, got {k}")
    if n < 2:
        raise InputError(f"ICC needs at least 2 targets, got {n}")
    if not np.all(np.isfinite(x)):
        raise InputError("ICC needs every target rated by every rater (missing ratings)")
    grand = x.mean()
    ss_total = float(((x - grand) ** 2).sum())
    ss_rows = float(k * ((x.mean(axis=1) - grand) ** 2).sum())
    ss_cols = float(n * ((x.mean(axis=0) - grand) ** 2).sum())
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    wms = (ss_total - ss_rows) / (n * (k - 1))
    jms = ss_cols / (k - 1)
    ems = max(ss_err / ((n - 1) * (k - 1)), 0.0)
    if bms <= 1e-12 * max(ss_total, 1e-300):
        raise InputError("ICC is undefined: every target has the same mean rating")
    q = 0.975

    def f_ci(f: float, d1: float, d2: float) -> tuple[float, float]:
        fl = f / sps.f.ppf(q, d1, d2)
        fu = f * sps.f.ppf(q, d2, d1)
        return fl, fu

    def single(fx: float) -> float:  # (F − 1)/(F + k − 1), → 1 as F → ∞ (no error variance)
        return 1.0 if math.isinf(fx) else (fx - 1) / (fx + k - 1)

    def average(fx: float) -> float:  # 1 − 1/F
        return 1.0 if math.isinf(fx) else 1 - 1 / fx

    out: dict[str, ICCResult] = {}
    # Case 1: one-way random.
    f1 = bms / wms if wms > 0 else math.inf
    d1, d2 = n - 1, n * (k - 1)
    fl, fu = f_ci(f1, d1, d2)
    p1 = float(sps.f.sf(f1, d1, d2))
    out["ICC(1,1)"] = ICCResult("ICC(1,1)", (bms - wms) / (bms + (k - 1) * wms),
                                (single(fl), single(fu)), f1, d1, d2, p1)
    out["ICC(1,k)"] = ICCResult("ICC(1,k)", (bms - wms) / bms, (average(fl), average(fu)),
                                f1, d1, d2, p1)
    # Case 3: two-way mixed, consistency.
    f3 = bms / ems if ems > 0 else math.inf
    d1, d2 = n - 1, (n - 1) * (k - 1)
    fl, fu = f_ci(f3, d1, d2)
    p3 = float(sps.f.sf(f3, d1, d2))
    icc31 = (bms - ems) / (bms + (k - 1) * ems)
    out["ICC(3,1)"] = ICCResult("ICC(3,1)", icc31,
                                (single(fl), single(fu)), f3, d1, d2, p3)
    out["ICC(3,k)"] = ICCResult("ICC(3,k)", (bms - ems) / bms, (average(fl), average(fu)),
                                f3, d1, d2, p3)
    # Case 2: two-way random, absolute agreement (Satterthwaite df for the CI).
    icc21 = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    if icc21 >= 1.0:  # identical ratings: no rater nor error variance
        lo21 = hi21 = 1.0
    else:
        a = k * icc21 / (n * (1 - icc21))
        b = 1 + k * icc21 * (n - 1) / (n * (1 - icc21))
        v = (a * jms + b * ems) ** 2 / ((a * jms) ** 2 / (k - 1)
                                        + (b * ems) ** 2 / ((n - 1) * (k - 1)))
        fs = sps.f.ppf(q, n - 1, v)
        fss = sps.f.ppf(q, v, n - 1)
        c = k * jms + (k * n - k - n) * ems
        lo21 = n * (bms - fs * ems) / (fs * c + n * bms)
        hi21 = n * (fss * bms - ems) / (c + n * fss * bms)
    out["ICC(2,1)"] = ICCResult("ICC(2,1)", icc21, (lo21, hi21), f3, n - 1,
                                (n - 1) * (k - 1), p3)
    out["ICC(2,k)"] = ICCResult("ICC(2,k)", (bms - ems) / (bms + (jms - ems) / n),
                                (k * lo21 / (1 + (k - 1) * lo21),
                                 k * hi21 / (1 + (k - 1) * hi21)),
                                f3, n - 1, (n - 1) * (k - 1), p3)
    return {name: out[name] for name in ICC_FORMS}


@dataclass(frozen=True)
class BlandAltmanResult:
    """Bland–Altman agreement of two methods, differences ``a − b``."""

    n: int
    bias: float
    sd: float
    loa: tuple[float, float]
    bias_ci95: tuple[float, float]
    loa_ci95: tuple[tuple[float, float], tuple[float, float]]
    means: np.ndarray
    differences: np.ndarray

    def as_dict(self) -> dict[str, object]:
        return {"n": self.n, "bias": self.bias, "sd": self.sd, "loa": list(self.loa),
                "bias_ci95": list(self.bias_ci95),
                "loa_ci95": {"lower": list(self.loa_ci95[0]), "upper": list(self.loa_ci95[1])},
                "method": "differences a - b; SD with n - 1; limits bias ± 1.96·SD; CIs with "
                "t(n-1), SE of a limit sqrt(SD²/n + 1.96²·SD²/(2(n-1))) (Bland & Altman "
                "1999 §5)"}


def bland_altman(a: Sequence[float] | np.ndarray,
                 b: Sequence[float] | np.ndarray) -> BlandAltmanResult:
    """Bias, SD (n − 1), limits of agreement ``bias ± 1.96·SD`` and their 95 % CIs
    (Bland & Altman 1986; SE of a limit ``√(s²/n + 1.96²·s²/(2(n−1)))``, Bland & Altman
    1999 §5, with ``t`` on ``n − 1`` df)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape or xa.ndim != 1:
        raise InputError("Bland–Altman needs two columns of paired values")
    n = int(xa.size)
    if n < 3:
        raise InputError(f"Bland–Altman needs at least 3 pairs, got {n}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        raise InputError("Bland–Altman needs finite values in both columns")
    d = xa - xb
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    loa = (bias - Z95 * sd, bias + Z95 * sd)
    t = float(sps.t.ppf(0.975, n - 1))
    se_bias = sd / math.sqrt(n)
    se_loa = sd * math.sqrt(1.0 / n + Z95**2 / (2.0 * (n - 1)))
    return BlandAltmanResult(
        n=n, bias=bias, sd=sd, loa=loa,
        bias_ci95=(bias - t * se_bias, bias + t * se_bias),
        loa_ci95=((loa[0] - t * se_loa, loa[0] + t * se_loa),
                  (loa[1] - t * se_loa, loa[1] + t * se_loa)),
        means=(xa + xb) / 2.0, differences=d)
