"""Table 1: descriptive statistics by group with the test that suits each variable type.

- Numeric variables: mean (SD) and median [IQR] per group; Welch's t test for two groups
  (Welch 1947), one-way ANOVA for more (Fisher); with ``nonparametric`` (or when a variable
  is listed there) Mann–Whitney U (2 groups) / Kruskal–Wallis (more).
- Categorical variables (non-numeric, or numeric with few distinct values when listed as
  ``categorical``): n (%) per level; Pearson's χ² test of independence, or Fisher's exact
  test for a 2×2 table with an expected count below 5 (Cochran 1954).
- Missing values are counted per variable and group and left out of the tests.

References: Welch BL. Biometrika 1947;34:28–35. Mann HB, Whitney DR. Ann Math Stat
1947;18:50–60. Kruskal WH, Wallis WA. J Am Stat Assoc 1952;47:583–621. Cochran WG. Some
methods for strengthening the common χ² tests. Biometrics 1954;10:417–451.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from oncohybrid.errors import InputError


@dataclass(frozen=True)
class Table1Row:
    variable: str
    kind: str  # "numeric" or "categorical"
    summaries: dict[str, str]  # group -> formatted summary (numeric) ; level rows below
    levels: dict[str, dict[str, str]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    test: str = ""
    p: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"variable": self.variable, "kind": self.kind, "summaries": self.summaries,
                "levels": self.levels, "missing": self.missing, "test": self.test,
                "p": self.p}


@dataclass(frozen=True)
class Table1:
    group: str
    groups: list[str]
    n: dict[str, int]
    rows: list[Table1Row]

    def as_dict(self) -> dict[str, object]:
        return {"group": self.group, "groups": self.groups, "n": self.n,
                "rows": [r.as_dict() for r in self.rows]}

    def to_frame(self) -> pd.DataFrame:
        """One line per numeric variable and per categorical level, columns the groups,
        the test and its p-value (formatted for a manuscript)."""
        records: list[dict[str, str]] = []
        for r in self.rows:
            pcell = "" if r.p is None else format_p(r.p)
            if r.kind == "numeric":
                records.append({"variable": r.variable, **r.summaries, "test": r.test,
                                "p": pcell})
            else:
                records.append({"variable": r.variable, **{g: "" for g in self.groups},
                                "test": r.test, "p": pcell})
                for level, cells in r.levels.items():
                    records.append({"variable": f"  {level}", **cells, "test": "", "p": ""})
        header = {"variable": "n", **{g: str(self.n[g]) for g in self.groups}, "test": "",
                  "p": ""}
        return pd.DataFrame([header, *records])


def format_p(p: float) -> str:
    """p-value as journals print it: ``<0.001`` or three decimals."""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def table1(data: pd.DataFrame, group: str, variables: Sequence[str] | None = None,
           categorical: Sequence[str] = (), nonparametric: Sequence[str] = ()) -> Table1:
    """Descriptives of ``variables`` (default every other column) by ``group``."""
    if group not in data.columns:
        raise InputError(f"unknown column {group!r}")
    frame = data[data[group].notna()]
    groups = sorted({str(v) for v in frame[group]})
    if len(groups) < 2:
        raise InputError(f"column {group!r} has one group only: Table 1 compares groups")
    gcol = frame[group].astype(str)
    variables = [c for c in data.columns if c != group] if variables is None else \
        list(variables)
    for v in variables:
        if v not in data.columns:
            raise InputError(f"unknown column {v!r}")
    rows: list[Table1Row] = []
    for v in variables:
        col = frame[v]
        missing = {g: int(col[gcol == g].isna().sum()) for g in groups}
        if _is_numeric(col) and v not in categorical:
            rows.append(_numeric_row(v, col.astype(float), gcol, groups, missing,
                                     v in nonparametric))
        else:
            rows.append(_categorical_row(v, col, gcol, groups, missing))
    return Table1(group=group, groups=groups,
                  n={g: int((gcol == g).sum()) for g in groups}, rows=rows)


def _numeric_row(v: str, col: pd.Series, gcol: pd.Series, groups: list[str],
                 missing: dict[str, int], nonparametric: bool) -> Table1Row:
    samples = [col[gcol == g].dropna().to_numpy() for g in groups]
    summaries = {}
    for g, x in zip(groups, samples, strict=True):
        if x.size == 0:
            summaries[g] = "—"
            continue
        q1, med, q3 = np.percentile(x, [25, 50, 75])
        sd = float(x.std(ddof=1)) if x.size > 1 else math.nan
        summaries[g] = f"{x.mean():.3g} ({sd:.3g}); {med:.3g} [{q1:.3g}, {q3:.3g}]"
    usable = [x for x in samples if x.size >= 2]
    p: float | None = None
    test = ""
    if len(usable) == len(samples):
        if nonparametric:
            if len(samples) == 2:
                test = "Mann-Whitney U"
                p = float(sps.mannwhitneyu(*samples, alternative="two-sided").pvalue)
            else:
                test = "Kruskal-Wallis"
                p = float(sps.kruskal(*samples).pvalue)
        elif len(samples) == 2:
            test = "Welch t test"
            p = float(sps.ttest_ind(*samples, equal_var=False).pvalue)
        else:
            test = "one-way ANOVA"
            p = float(sps.f_oneway(*samples).pvalue)
    if p is not None and not math.isfinite(p):
        p = None
    return Table1Row(variable=f"{v}, mean (SD); median [IQR]", kind="numeric",
                     summaries=summaries, missing=missing, test=test, p=p)


def _categorical_row(v: str, col: pd.Series, gcol: pd.Series, groups: list[str],
                     missing: dict[str, int]) -> Table1Row:
    values = col.dropna().astype(str)
    ct = pd.crosstab(values, gcol[values.index]).reindex(columns=groups, fill_value=0)
    levels: dict[str, dict[str, str]] = {}
    for level in ct.index:
        levels[str(level)] = {}
        for g in groups:
            total = int(ct[g].sum())
            k = int(ct.loc[level, g])
            pct = 100.0 * k / total if total else math.nan
            levels[str(level)][g] = f"{k} ({pct:.1f}%)"
    table = ct.to_numpy()
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    test, p = "", None
    if table.shape[0] >= 2 and table.shape[1] >= 2:
        expected = sps.contingency.expected_freq(table)
        if table.shape == (2, 2) and (expected < 5).any():
            test = "Fisher exact"
            p = float(sps.fisher_exact(table).pvalue)
        else:
            test = "chi-square"
            p = float(sps.chi2_contingency(table, correction=False).pvalue)
    return Table1Row(variable=f"{v}, n (%)", kind="categorical", summaries={},
                     levels=levels, missing=missing, test=test, p=p)
