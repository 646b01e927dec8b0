"""QC figures (matplotlib object API, Agg canvas → PNG bytes; no pyplot global state):
contrast recovery curves with the EARL bands, and QC trends with their tolerances."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from oncohybrid.qc.earl import BANDS, EarlStandard

__all__ = ["recovery_curves_png", "trend_png"]

_BAND_COLOURS = {EarlStandard.EARL1: "#4c72b0", EarlStandard.EARL2: "#dd8452"}


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def recovery_curves_png(spheres: Sequence[dict[str, Any]], *, title: str = "", dpi: int = 110
                        ) -> bytes:
    """RCmax, RCmean (A50) and RCpeak against sphere diameter, over the EARL1 and EARL2
    bands (shaded). ``spheres``: the ``spheres`` items of the ``qc iec`` JSON."""
    fig = Figure(figsize=(10.5, 3.6))
    d = [float(s["diameter_mm"]) for s in spheres]
    for i, (metric, label) in enumerate((("rc_max", "RCmax"), ("rc_mean", "RCmean (A50)"),
                                         ("rc_peak", "RCpeak"))):
        ax = fig.add_subplot(1, 3, i + 1)
        for std in EarlStandard:
            bands = BANDS[std].get(metric)
            if not bands:
                continue
            xs = sorted(bands)
            ax.fill_between(xs, [bands[x].low for x in xs], [bands[x].high for x in xs],
                            color=_BAND_COLOURS[std], alpha=0.22, label=std.value.upper())
        ax.plot(d, [float(s[metric]) for s in spheres], "o-", color="black", label="measured")
        ax.set_xlabel("sphere diameter (mm)")
        ax.set_title(label)
        ax.set_ylim(0, 1.5)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.set_ylabel("recovery coefficient")
            ax.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _png(fig, dpi)


def trend_png(series: dict[str, list[tuple[dt.date, float]]],
              tolerances: dict[str, tuple[float, float]], *, title: str = "", dpi: int = 110
              ) -> bytes:
    """One panel per measure: values over time with the tolerance band; out-of-tolerance
    points in red."""
    names = sorted(series)
    fig = Figure(figsize=(8.0, 2.4 * max(1, len(names))))
    for i, name in enumerate(names):
        ax = fig.add_subplot(max(1, len(names)), 1, i + 1)
        pts = sorted(series[name])
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        tol = tolerances.get(name)
        if tol is not None and xs:
            ax.axhspan(tol[0], tol[1], color="#55a868", alpha=0.18, label="tolerance")
        ax.plot(xs, ys, "-", color="#333333", lw=1)
        ok = [tol is None or tol[0] <= y <= tol[1] for y in ys]
        ax.plot([x for x, g in zip(xs, ok, strict=True) if g],
                [y for y, g in zip(ys, ok, strict=True) if g], "o", color="#333333", ms=4)
        ax.plot([x for x, g in zip(xs, ok, strict=True) if not g],
                [y for y, g in zip(ys, ok, strict=True) if not g], "o", color="#c44e52", ms=6,
                label="out of tolerance")
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
        if i == 0 and title:
            ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig, dpi)
