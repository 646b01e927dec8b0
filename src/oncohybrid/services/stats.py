"""Statistics use-cases: read a study's CSV export, check the named columns and run one
analysis of :mod:`oncohybrid.stats`, optionally writing its figure.

Every problem with the input (missing file, unknown column, non-numeric values, one class
only, fewer than two raters) raises :class:`~oncohybrid.errors.InputError` naming the file
and column, so the command exits 2 with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from oncohybrid.errors import InputError
from oncohybrid.stats import agreement, diagnostic, survival
from oncohybrid.stats import roc as roc_auc
from oncohybrid.stats import table1 as t1


def read_table(path: Path) -> pd.DataFrame:
    """The CSV as text cells (empty cells are missing); columns are converted per use."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=True, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV table ({exc})") from None


def _require(df: pd.DataFrame, path: Path, *columns: str) -> None:
    for c in columns:
        if c not in df.columns:
            raise InputError(f"{path}: unknown column {c!r} (columns: "
                             f"{', '.join(map(str, df.columns))})")


def numeric(df: pd.DataFrame, path: Path, column: str) -> pd.Series:
    """The column as floats; missing cells stay NaN, any other non-number is refused."""
    _require(df, path, column)
    raw = df[column]
    values = pd.to_numeric(raw.str.strip() if raw.dtype == object else raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: column {column!r} has non-numeric values (row {i + 2}: "
                         f"{raw.iloc[i]!r})")
    return values.astype(float)


def _complete(df: pd.DataFrame, path: Path, columns: Sequence[str],
              numeric_cols: Sequence[str] = ()) -> pd.DataFrame:
    _require(df, path, *columns)
    out = pd.DataFrame(index=df.index)
    for c in columns:
        out[c] = numeric(df, path, c) if c in numeric_cols else df[c]
    out = out.dropna()
    if out.empty:
        raise InputError(f"{path}: no row has values in every one of {', '.join(columns)}")
    return out


def kappa(path: Path, raters: Sequence[str], weights: str = "none") -> agreement.KappaResult:
    """Cohen's kappa for two rater columns, Fleiss' kappa for three or more (unweighted)."""
    if len(raters) < 2:
        raise InputError(f"kappa needs at least 2 raters (--rater), got {len(raters)}")
    if len(set(raters)) != len(raters):
        raise InputError("the same --rater column is given twice")
    df = read_table(path)
    data = _complete(df, path, raters)
    labels = [[str(v).strip() for v in data[c]] for c in raters]
    values: list[list[object]]
    try:  # numbers when every label is one ("1" and "1.0" are the same category)
        values = [[float(v) for v in col] for col in labels]
    except ValueError:
        if weights != "none":
            raise InputError(f"--weights {weights}: ratings must be numbers (ordered "
                             "categories)") from None
        values = [list(col) for col in labels]
    if len(raters) == 2:
        return agreement.cohen_kappa(values[0], values[1], weights=weights)  # type: ignore[arg-type]
    if weights != "none":
        raise InputError("Fleiss' kappa (3 or more raters) is unweighted: drop --weights")
    return agreement.fleiss_kappa(np.array(values, dtype=object).T)


def icc(path: Path, targets: str, raters: str, ratings: str) -> dict[str, agreement.ICCResult]:
    """The six Shrout–Fleiss ICCs of long-format ratings (one row per target and rater)."""
    df = read_table(path)
    data = _complete(df, path, [targets, raters, ratings], numeric_cols=[ratings])
    dup = data.duplicated([targets, raters])
    if dup.any():
        row = data[dup].iloc[0]
        raise InputError(f"{path}: target {row[targets]!r} is rated twice by rater "
                         f"{row[raters]!r}")
    wide = data.pivot(index=targets, columns=raters, values=ratings)
    if wide.shape[1] < 2:
        raise InputError(f"{path}: ICC needs at least 2 raters in {raters!r}, got "
                         f"{wide.shape[1]}")
    incomplete = wide.index[wide.isna().any(axis=1)].tolist()
    if incomplete:
        raise InputError(f"{path}: {len(incomplete)} target(s) not rated by every rater "
                         f"(first: {incomplete[0]!r}); ICC needs a complete design")
    return agreement.icc(wide.to_numpy(dtype=float))


def bland_altman(path: Path, a: str, b: str, plot: Path | None = None
                 ) -> agreement.BlandAltmanResult:
    df = read_table(path)
    data = _complete(df, path, [a, b], numeric_cols=[a, b])
    res = agreement.bland_altman(data[a].to_numpy(), data[b].to_numpy())
    if plot is not None:
        from oncohybrid.stats import plots

        plots.save(plots.bland_altman_plot(res, a, b), plot)
    return res


def _truth(df: pd.DataFrame, path: Path, column: str) -> pd.Series:
    values = numeric(df, path, column)
    present = values.dropna()
    if not set(present.unique().tolist()) <= {0.0, 1.0}:
        raise InputError(f"{path}: column {column!r} must be 0/1 (1 = positive)")
    if present.nunique() < 2:
        raise InputError(f"{path}: column {column!r} has one class only: ROC and accuracy "
                         "need positive and negative cases")
    return values


def roc(path: Path, truth: str, scores: Sequence[str], plot: Path | None = None
        ) -> dict[str, object]:
    """AUCs with DeLong SE and CI; with two scores the paired DeLong test (first − second),
    on the rows that have the truth and every score."""
    if not scores:
        raise InputError("give at least one --score column")
    if len(scores) > 2:
        raise InputError("give one or two --score columns")
    df = read_table(path)
    _truth(df, path, truth)
    data = _complete(df, path, [truth, *scores], numeric_cols=[truth, *scores])
    y = data[truth].to_numpy().astype(int)
    if len(set(y.tolist())) < 2:
        raise InputError(f"{path}: column {truth!r} has one class only among complete rows")
    results = {s: roc_auc.auc_delong(y, data[s].to_numpy()) for s in scores}
    out: dict[str, object] = {"scores": {s: r.as_dict() for s, r in results.items()},
                              "delong_z": None, "delong_p": None}
    if len(scores) == 2:
        test = roc_auc.delong_test(y, data[scores[0]].to_numpy(), data[scores[1]].to_numpy())
        out["delong_z"], out["delong_p"] = test.z, test.p
        out["auc_difference"] = test.auc_difference
        out["auc_difference_se"] = test.se
    out["n"] = int(y.size)
    out["method"] = ("empirical AUC; DeLong 1988 SE (midrank algorithm of Sun & Xu 2014); "
                     "Wald 95% CI auc ± 1.96·SE; paired DeLong z for first minus second")
    if plot is not None:
        from oncohybrid.stats import plots

        plots.save(plots.roc_plot(y, {s: (data[s].to_numpy(), results[s]) for s in scores}),
                   plot)
    return out


def kaplan_meier(path: Path, time: str, event: str, group: str | None = None,
                 plot: Path | None = None) -> survival.KMResult:
    df = read_table(path)
    cols = [time, event] + ([group] if group else [])
    data = _complete(df, path, cols, numeric_cols=[time, event])
    g = data[group].astype(str).str.strip().to_numpy() if group else None
    res = survival.kaplan_meier(data[time].to_numpy(), data[event].to_numpy(), g)
    if plot is not None:
        from oncohybrid.stats import plots

        plots.save(plots.km_plot(data[time].to_numpy(), data[event].to_numpy(), g,
                                 xlabel=time), plot)
    return res


def cox(path: Path, time: str, event: str, covariates: Sequence[str]) -> survival.CoxResult:
    df = read_table(path)
    data = _complete(df, path, [time, event, *covariates],
                     numeric_cols=[time, event, *covariates])
    return survival.cox(data, time, event, list(covariates))


def table1(path: Path, group: str, variables: Sequence[str] | None = None,
           categorical: Sequence[str] = (), nonparametric: Sequence[str] = ()) -> t1.Table1:
    """Table 1 from a CSV: columns that are numbers in every filled cell are numeric."""
    df = read_table(path)
    _require(df, path, group, *(variables or ()), *categorical, *nonparametric)
    typed = pd.DataFrame(index=df.index)
    for c in df.columns:
        conv = pd.to_numeric(df[c], errors="coerce")
        typed[c] = conv if c != group and conv.notna().sum() == df[c].notna().sum() \
            else df[c]
    return t1.table1(typed, group, variables, categorical, nonparametric)


def accuracy(path: Path, truth: str, test: str) -> diagnostic.Accuracy:
    df = read_table(path)
    _truth(df, path, truth)
    data = _complete(df, path, [truth, test], numeric_cols=[truth, test])
    return diagnostic.accuracy(data[truth].to_numpy(), data[test].to_numpy())


def mcnemar(path: Path, reader1: str, reader2: str, exact: bool = True) -> diagnostic.McNemar:
    df = read_table(path)
    data = _complete(df, path, [reader1, reader2], numeric_cols=[reader1, reader2])
    return diagnostic.mcnemar(data[reader1].to_numpy(), data[reader2].to_numpy(),
                              exact=exact)
