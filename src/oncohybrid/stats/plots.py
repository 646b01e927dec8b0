"""Publication figures (matplotlib, Agg backend): Bland–Altman, ROC and Kaplan–Meier with
the numbers at risk under the axis.

Each function draws onto a new figure and returns it; ``save`` writes PNG/PDF/SVG by the
file suffix. References: Bland & Altman, Lancet 1986 (difference against mean plot);
Pocock SJ, Clayton TC, Altman DG. Survival plots of time-to-event outcomes in clinical
trials: good practice and pitfalls. Lancet 2002;359:1686–1689 (numbers at risk under the
curves).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from oncohybrid.stats.agreement import BlandAltmanResult
from oncohybrid.stats.roc import AUCResult, roc_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(width: float = 5.0, height: float = 4.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=150)


def save(fig: Figure, path: Path) -> None:
    """Write the figure; the format follows the suffix (.png, .pdf, .svg)."""
    fig.savefig(path, bbox_inches="tight")


def bland_altman_plot(result: BlandAltmanResult, label_a: str = "A",
                      label_b: str = "B", unit: str = "") -> Figure:
    """Differences ``a − b`` against means, with the bias and limits and their 95 % CIs."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(result.means, result.differences, s=14, color="black")
    u = f" ({unit})" if unit else ""
    for y, ci, text in ((result.bias, result.bias_ci95, "bias"),
                        (result.loa[0], result.loa_ci95[0], "−1.96 SD"),
                        (result.loa[1], result.loa_ci95[1], "+1.96 SD")):
        ax.axhline(y, color="tab:blue" if text == "bias" else "tab:red",
                   linestyle="-" if text == "bias" else "--", linewidth=1)
        ax.axhspan(ci[0], ci[1], color="0.85", alpha=0.5, linewidth=0)
        ax.annotate(f"{text} {y:.3g}", xy=(1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_xlabel(f"mean of {label_a} and {label_b}{u}")
    ax.set_ylabel(f"{label_a} − {label_b}{u}")
    ax.set_title(f"Bland–Altman, n = {result.n}", fontsize=9)
    return fig


def roc_plot(truth: Sequence[object] | np.ndarray,
             scores: dict[str, tuple[Sequence[float] | np.ndarray, AUCResult]]) -> Figure:
    """Empirical ROC curves, the legend giving AUC and its DeLong 95 % CI."""
    fig = _figure(4.5, 4.5)
    ax = fig.add_subplot()
    for name, (score, res) in scores.items():
        c = roc_curve(truth, score)
        ax.step(c.fpr, c.tpr, where="post",
                label=f"{name}: AUC {res.auc:.3f} ({res.ci95[0]:.3f}–{res.ci95[1]:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(loc="lower right", fontsize=7)
    return fig


def km_plot(time: Sequence[float] | np.ndarray, event: Sequence[int] | np.ndarray,
            group: Sequence[object] | np.ndarray | None = None,
            xlabel: str = "time") -> Figure:
    """Kaplan–Meier curves with 95 % bands, censoring marks and the numbers at risk."""
    from lifelines import KaplanMeierFitter
    from lifelines.plotting import add_at_risk_counts

    t = np.asarray(time, dtype=float)
    e = np.asarray(event).astype(int)
    g = np.full(t.size, "all", dtype=object) if group is None else \
        np.asarray([str(v) for v in group], dtype=object)
    fig = _figure(6.0, 4.5)
    ax = fig.add_subplot()
    fitters = []
    for name in sorted(set(g.tolist())):
        sel = g == name
        kmf = KaplanMeierFitter().fit(t[sel], e[sel], label=str(name))
        kmf.plot_survival_function(ax=ax, show_censors=True, ci_show=True)
        fitters.append(kmf)
    add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("survival probability")
    ax.set_ylim(0, 1.02)
    fig.subplots_adjust(bottom=0.3)
    return fig
