"""Funnel plots of the audit per radiologist (matplotlib, Agg).

Each radiologist is a point (number of screens, rate); the funnel is the overall rate with
95 % and 99.8 % binomial control limits ``p ± z·sqrt(p(1-p)/n)`` (Spiegelhalter DJ. Funnel
plots for comparing institutional performance. Stat Med 2005;24:1185-1202), so a reader
outside the outer funnel differs from the group by more than chance.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["funnel_plot"]

_Z = {"95 %": 1.959963984540054, "99.8 %": 3.090232306167813}


def funnel_plot(points: dict[str, tuple[int, int]], title: str, ylabel: str,
                scale: float = 1.0) -> Figure:
    """A funnel plot of ``{label: (k, n)}``; the rates are ``scale * k / n``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.2), dpi=120)
    ax = fig.add_subplot()
    used = {k: v for k, v in points.items() if v[1] > 0}
    total_k = sum(k for k, _ in used.values())
    total_n = sum(n for _, n in used.values())
    p = total_k / total_n if total_n else 0.0
    n_max = max([n for _, n in used.values()] + [2])
    ns = [1 + i * (n_max * 1.1 - 1) / 199 for i in range(200)]
    ax.axhline(p * scale, color="0.3", lw=1, label=f"overall {p * scale:.3g}")
    for (name, z), style in zip(_Z.items(), ("--", ":"), strict=True):
        lo = [max(0.0, p - z * math.sqrt(p * (1 - p) / n)) * scale for n in ns]
        hi = [min(1.0, p + z * math.sqrt(p * (1 - p) / n)) * scale for n in ns]
        ax.plot(ns, lo, style, color="0.5", lw=1, label=f"{name} limits")
        ax.plot(ns, hi, style, color="0.5", lw=1)
    for label, (k, n) in sorted(used.items()):
        ax.plot([n], [scale * k / n], "o", color="#1f5fa8")
        ax.annotate(label or "(none)", (n, scale * k / n), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set_xlabel("examinations (n)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, bbox_inches="tight")
