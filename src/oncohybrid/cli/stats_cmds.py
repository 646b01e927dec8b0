"""``oncohybrid stats …``: agreement, ROC, survival, diagnostic accuracy and Table 1 from a
CSV (issue #16). Invalid input exits 2 with the reason on stderr and nothing on stdout."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

stats_app = typer.Typer(help="Statistics for imaging studies (kappa, ICC, Bland-Altman, "
                        "ROC/DeLong, Kaplan-Meier, Cox, Table 1, accuracy, McNemar).",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")


def _run(compute: Callable[[], Any], as_json: bool,
         to_json: Callable[[Any], object], to_text: Callable[[Any], str]) -> None:
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError

    try:
        result = compute()
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(_finite(to_json(result)), allow_nan=False))
    else:
        typer.echo(to_text(result))


def _finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: an undefined number (PPV with no positive test, a
    median never reached) is null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _ci(ci: Any) -> str:
    lo, hi = ci

    def f(v: float | None) -> str:
        return "NA" if v is None else f"{v:.4g}"

    return f"[{f(lo)}, {f(hi)}]"


DATA = typer.Argument(..., help="CSV table, one row per case.")
JSON = typer.Option(False, "--json", help="Print JSON.")


@stats_app.command("kappa")
def kappa(data: Path = DATA,
          rater: list[str] = typer.Option([], "--rater", help="Rater column (twice for "
                                          "Cohen's kappa, 3+ times for Fleiss' kappa)."),
          weights: str = typer.Option("none", "--weights", help="none, linear or quadratic "
                                      "(Cohen's kappa on ordered numeric ratings)."),
          as_json: bool = JSON) -> None:
    """Cohen's kappa (2 raters) or Fleiss' kappa (3 or more) with SE and 95 % CI."""
    from oncohybrid.services import stats as svc

    _run(lambda: svc.kappa(data, rater, weights), as_json,
         lambda r: {"kappa": r.kappa, "se": r.se, "ci95": list(r.ci95), "n": r.n,
                    "method": r.method},
         lambda r: f"kappa {r.kappa:.4f}  SE {r.se:.4f}  95% CI {_ci(r.ci95)}  n {r.n}\n"
                   f"# {r.method}")


@stats_app.command("icc")
def icc(data: Path = DATA,
        targets: str = typer.Option(..., "--targets", help="Target (subject) column."),
        raters: str = typer.Option(..., "--raters", help="Rater column."),
        ratings: str = typer.Option(..., "--ratings", help="Rating column (numeric)."),
        as_json: bool = JSON) -> None:
    """The six Shrout-Fleiss ICCs with F-based 95 % CIs from long-format ratings."""
    from oncohybrid.services import stats as svc

    _run(lambda: svc.icc(data, targets, raters, ratings), as_json,
         lambda r: {k: v.as_dict() for k, v in r.items()},
         lambda r: "\n".join(f"{k}\t{v.icc:.4f}\t95% CI {_ci(v.ci95)}\tF {v.f:.3g} "
                             f"({v.df1:.3g}, {v.df2:.3g}) p {v.p:.3g}" for k, v in r.items()))


@stats_app.command("bland-altman")
def bland_altman(data: Path = DATA,
                 a: str = typer.Option(..., "--a", help="First method (differences a - b)."),
                 b: str = typer.Option(..., "--b", help="Second method."),
                 plot: Path | None = typer.Option(None, "--plot", help="Write the plot "
                                                  "(.png, .pdf or .svg)."),
                 as_json: bool = JSON) -> None:
    """Bias, SD, limits of agreement bias ± 1.96 SD and their 95 % CIs."""
    from oncohybrid.services import stats as svc

    _run(lambda: svc.bland_altman(data, a, b, plot), as_json,
         lambda r: r.as_dict(),
         lambda r: f"n {r.n}  bias {r.bias:.4g} {_ci(r.bias_ci95)}  SD {r.sd:.4g}\n"
                   f"limits of agreement {r.loa[0]:.4g} {_ci(r.loa_ci95[0])} to "
                   f"{r.loa[1]:.4g} {_ci(r.loa_ci95[1])}")


@stats_app.command("roc")
def roc(data: Path = DATA,
        truth: str = typer.Option(..., "--truth", help="Reference standard column (0/1)."),
        score: list[str] = typer.Option([], "--score", help="Score column (higher = more "
                                        "likely positive); give two for the DeLong test."),
        plot: Path | None = typer.Option(None, "--plot", help="Write the ROC plot."),
        as_json: bool = JSON) -> None:
    """AUC with DeLong SE and 95 % CI; paired DeLong test for two scores."""
    from oncohybrid.services import stats as svc

    def text(r: dict[str, Any]) -> str:
        lines = [f"{k}\tAUC {v['auc']:.4f}\tSE {v['se']:.4f}\t95% CI {_ci(v['ci95'])}"
                 for k, v in r["scores"].items()]
        if r["delong_z"] is not None:
            lines.append(f"DeLong z {r['delong_z']:.4f}  p {r['delong_p']:.4g}")
        return "\n".join(lines)

    _run(lambda: svc.roc(data, truth, score, plot), as_json, lambda r: r, text)


@stats_app.command("km")
def km(data: Path = DATA,
       time: str = typer.Option(..., "--time", help="Follow-up time column."),
       event: str = typer.Option(..., "--event", help="Event column (1 event, 0 censored)."),
       group: str | None = typer.Option(None, "--group", help="Group column."),
       plot: Path | None = typer.Option(None, "--plot", help="Write the Kaplan-Meier plot "
                                        "with numbers at risk."),
       as_json: bool = JSON) -> None:
    """Kaplan-Meier medians with 95 % CI per group and the log-rank test."""
    from oncohybrid.services import stats as svc

    def text(r: Any) -> str:
        lines = [f"{k}\tn {g.n}\tevents {g.events}\tmedian "
                 f"{'NA' if g.median is None else f'{g.median:.4g}'} {_ci(g.median_ci95)}"
                 for k, g in r.groups.items()]
        if r.logrank is not None:
            lines.append(f"log-rank chi2 {r.logrank.chi2:.4f} df {r.logrank.df} "
                         f"p {r.logrank.p:.4g}")
        return "\n".join(lines)

    _run(lambda: svc.kaplan_meier(data, time, event, group, plot), as_json,
         lambda r: r.as_dict(), text)


@stats_app.command("cox")
def cox(data: Path = DATA,
        time: str = typer.Option(..., "--time", help="Follow-up time column."),
        event: str = typer.Option(..., "--event", help="Event column (1 event, 0 censored)."),
        covariate: list[str] = typer.Option([], "--covariate", help="Numeric covariate "
                                            "column (repeat)."),
        as_json: bool = JSON) -> None:
    """Cox proportional hazards with the Schoenfeld-residual PH test."""
    from oncohybrid.services import stats as svc

    def text(r: Any) -> str:
        lines = [f"{t.name}\tHR {t.hr:.4g} {_ci(t.hr_ci95)}\tp {t.p:.4g}\tPH test p "
                 f"{t.ph_p:.4g}" for t in r.terms]
        lines.append(f"n {r.n}  events {r.events}  concordance {r.concordance:.3f}")
        if r.ph_violated:
            lines.append(f"proportional hazards doubtful for: {', '.join(r.ph_violated)}")
        return "\n".join(lines)

    _run(lambda: svc.cox(data, time, event, covariate), as_json, lambda r: r.as_dict(), text)


@stats_app.command("table1")
def table1(data: Path = DATA,
           group: str = typer.Option(..., "--group", help="Group (arm) column."),
           variable: list[str] = typer.Option([], "--variable", help="Variable column "
                                              "(repeat; default every other column)."),
           categorical: list[str] = typer.Option([], "--categorical", help="Treat this "
                                                 "numeric column as categorical."),
           nonparametric: list[str] = typer.Option([], "--nonparametric", help="Use "
                                                   "Mann-Whitney/Kruskal-Wallis for it."),
           csv: bool = typer.Option(False, "--csv", help="Print the table as CSV."),
           as_json: bool = JSON) -> None:
    """Descriptives by group with the test suited to each variable type."""
    from oncohybrid.services import stats as svc

    def text(r: Any) -> str:
        frame = r.to_frame()
        return frame.to_csv(index=False).rstrip("\n") if csv else frame.to_string(index=False)

    _run(lambda: svc.table1(data, group, variable or None, categorical, nonparametric),
         as_json, lambda r: r.as_dict(), text)


@stats_app.command("accuracy")
def accuracy(data: Path = DATA,
             truth: str = typer.Option(..., "--truth", help="Reference standard (0/1)."),
             test: str = typer.Option(..., "--test", help="Test result (0/1)."),
             as_json: bool = JSON) -> None:
    """Sensitivity, specificity, PPV and NPV with Wilson 95 % CIs."""
    from oncohybrid.services import stats as svc

    def text(r: Any) -> str:
        return "\n".join(
            f"{name}\t{p.value:.4f} ({p.successes}/{p.total})\t95% CI {_ci(p.ci95)}"
            for name, p in (("sensitivity", r.sensitivity), ("specificity", r.specificity),
                            ("PPV", r.ppv), ("NPV", r.npv)))

    _run(lambda: svc.accuracy(data, truth, test), as_json, lambda r: r.as_dict(), text)


@stats_app.command("mcnemar")
def mcnemar(data: Path = DATA,
            reader: list[str] = typer.Option([], "--reader", help="Reader column (0/1), "
                                             "twice."),
            asymptotic: bool = typer.Option(False, "--asymptotic", help="Chi-square with "
                                            "continuity correction instead of exact."),
            as_json: bool = JSON) -> None:
    """McNemar's test for two paired readers (exact binomial by default)."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import InputError
    from oncohybrid.services import stats as svc

    if len(reader) != 2:
        fail(InputError(f"McNemar needs exactly 2 --reader columns, got {len(reader)}"))
        return
    _run(lambda: svc.mcnemar(data, reader[0], reader[1], exact=not asymptotic), as_json,
         lambda r: r.as_dict(),
         lambda r: f"b {r.b}  c {r.c}  statistic {r.statistic:.4g}  p {r.p:.4g}\n# {r.method}")
