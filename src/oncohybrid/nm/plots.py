"""PNG plots of a dosimetry run: time–activity curves (measured points and the fitted
curve of each VOI) and cumulative dose-volume histograms (matplotlib, Agg backend)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from oncohybrid.nm.kinetics import fit_from_json

__all__ = ["dvh_png", "tac_png"]


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=100)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def tac_png(doc: dict[str, Any]) -> bytes:
    """Time–activity curves of every VOI of a dosimetry document (log activity axis)."""
    times = [tp["time_h"] for tp in doc["timepoints"]]
    half_life = float(doc["constants"]["isotope"]["half_life_h"])
    fig, ax = _figure(f"Time–activity curves, cycle {doc['cycle']} ({doc['isotope']})",
                      "hours after administration", "activity in VOI (MBq)")
    t_end = max(times) * 1.25
    grid = np.linspace(0.0, t_end, 400)
    lowest = min((a for v in doc["vois"] for a in v["activities_mbq"] if a and a > 0),
                 default=1e-3)
    for k, v in enumerate(doc["vois"]):
        colour = f"C{k % 10}"
        acts = v["activities_mbq"]
        ax.plot(times, acts, "o", color=colour, label=f"{v['name']} ({v['fit']['model']})")
        fit = fit_from_json(v["fit"], times, acts, half_life)
        curve = np.clip(fit.activity_at(grid), 1e-6, None)
        ax.plot(grid, curve, "-", color=colour, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_ylim(bottom=lowest * 0.3)
    ax.legend(fontsize=8, ncol=2)
    return _png(fig)


def dvh_png(doc: dict[str, Any]) -> bytes:
    """Cumulative dose-volume histograms of every VOI of a dosimetry document."""
    fig, ax = _figure(f"Dose-volume histograms, cycle {doc['cycle']} ({doc['method']})",
                      "absorbed dose (Gy)", "volume fraction ≥ dose")
    for k, v in enumerate(doc["vois"]):
        h = v["dvh"]
        # the histogram ends at the maximum dose: close it to zero volume there
        ax.plot([*h["dose_gy"], h["dose_gy"][-1]], [*h["volume_fraction"], 0.0], "-",
                color=f"C{k % 10}",
                label=f"{v['name']} (D50 {h['d50_gy']:.2f} Gy)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _png(fig)
