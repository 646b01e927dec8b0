"""First-order intensity features: intensity statistics, intensity histogram and
intensity-volume histogram (IBSI 1 §3.3, §3.4, §3.5).

All three work on the voxels of the ROI's *intensity* mask (IBSI 1 §2.4). Intensity statistics
use the image intensities as they are; the intensity histogram uses the discretised grey levels
the :class:`~.roi.Roi` carries (``levels``, 1..``n_levels``); the intensity-volume histogram has
its own discretisation, which differs per IBSI configuration, so it is a parameter here
(:func:`intensity_volume_histogram_features`).

Results are ``dict[str, float]`` keyed by the IBSI identifier (``"Q4LE"``); the parametrised
IVH features as ``"BC2M/V10"``, ``"BC2M/V90"``, ``"GBPN/I10"``, ``"GBPN/I90"``,
``"DDTU/V10-V90"`` and ``"CNV2/I10-I90"``.

Example (the IBSI digital phantom's mean, variance and 90th percentile are 2.15, 3.05 and 4):

>>> import numpy as np
>>> from oncohybrid.radiomics.roi import Roi
>>> img = np.array([1., 1., 4., 6.]).reshape(1, 1, 4)
>>> m = np.ones_like(img, dtype=bool)
>>> f = intensity_statistics(Roi(img, m, m, (1.0, 1.0, 1.0)))
>>> round(f["Q4LE"], 3), round(f["ECT3"], 4), f["84IY"]
(3.0, 4.5, 6.0)
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid

from .roi import Roi

__all__ = [
    "first_order_statistics",
    "intensity_histogram_features",
    "intensity_statistics",
    "intensity_volume_histogram_features",
]

# IBSI ids of the statistics shared by §3.3 (intensities) and §3.4 (discretised intensities),
# in the order (statistics id, histogram id).
_SHARED_IDS: dict[str, tuple[str, str]] = {
    "mean": ("Q4LE", "X6K6"), "var": ("ECT3", "CH89"), "skew": ("KE2A", "88K1"),
    "kurt": ("IPH6", "C3I7"), "median": ("Y12H", "WIFQ"), "min": ("1GSF", "1PR8"),
    "p10": ("QG58", "GPMT"), "p90": ("8DWT", "OZ0C"), "max": ("84IY", "3NCY"),
    "iqr": ("SALO", "WR0O"), "range": ("2OJQ", "5Z3W"), "mad": ("4FUA", "D2ZX"),
    "rmad": ("1128", "WRZB"), "medad": ("N72L", "4RNL"), "cov": ("7TET", "CWYJ"),
    "qcod": ("9S40", "SLWD"),
}


def first_order_statistics(values: np.ndarray) -> dict[str, float]:
    """The statistics §3.3 and §3.4 share, keyed by short name (``"mean"``, ``"kurt"`` …).

    Moments are population moments (divide by N, IBSI 1 §3.3.2-3.3.4); kurtosis is the
    *excess* kurtosis (§3.3.4, IPH6). Percentiles use linear interpolation between order
    statistics (NumPy's default, as the IBSI reference implementation does). A ROI whose
    intensities are all equal has skewness and kurtosis 0 (IBSI's convention for a zero
    variance). Raises ``ValueError`` on an empty ROI.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        raise ValueError("the ROI's intensity mask is empty: no intensity features")
    mean = float(x.mean())
    d = x - mean
    d2 = d * d
    m2 = float(d2.mean())
    if m2 > 0.0:
        skew = float((d2 * d).mean()) / m2**1.5
        kurt = float((d2 * d2).mean()) / m2**2 - 3.0
    else:
        skew = kurt = 0.0
    p10, p25, p50, p75, p90 = (float(v) for v in np.percentile(x, [10, 25, 50, 75, 90]))
    lo, hi = float(x.min()), float(x.max())
    robust = x[(x >= p10) & (x <= p90)]
    return {
        "mean": mean, "var": m2, "skew": skew, "kurt": kurt, "median": p50, "min": lo,
        "p10": p10, "p90": p90, "max": hi, "iqr": p75 - p25, "range": hi - lo,
        "mad": float(np.abs(d).mean()),
        "rmad": float(np.abs(robust - robust.mean()).mean()) if robust.size else float("nan"),
        "medad": float(np.abs(x - p50).mean()),
        "cov": float(np.sqrt(m2) / mean) if mean != 0.0 else float("nan"),
        "qcod": (p75 - p25) / (p75 + p25) if (p75 + p25) != 0.0 else float("nan"),
    }


def _roi_values(roi: Roi, array: np.ndarray) -> np.ndarray:
    return np.asarray(array)[np.asarray(roi.int_mask, dtype=bool)]


def intensity_statistics(roi: Roi) -> dict[str, float]:
    """IBSI 1 §3.3 intensity statistics (18 features) of the intensity-mask voxels.

    Ids: Q4LE mean, ECT3 variance, KE2A skewness, IPH6 excess kurtosis, Y12H median,
    1GSF minimum, QG58 10th and 8DWT 90th percentile, 84IY maximum, SALO interquartile range,
    2OJQ range, 4FUA mean absolute deviation, 1128 robust mean absolute deviation (voxels
    between P10 and P90 inclusive), N72L median absolute deviation (mean distance to the
    median), 7TET coefficient of variation, 9S40 quartile coefficient of dispersion,
    N8CA energy (sum of squares, no voxel volume), 5ZWQ root mean square.
    """
    x = _roi_values(roi, roi.image).astype(np.float64, copy=False)
    stats = first_order_statistics(x)
    out = {ids[0]: stats[name] for name, ids in _SHARED_IDS.items()}
    energy = float(np.dot(x, x))
    out["N8CA"] = energy
    out["5ZWQ"] = float(np.sqrt(energy / x.size))
    return out


def intensity_histogram_features(roi: Roi) -> dict[str, float]:
    """IBSI 1 §3.4 intensity-histogram features (23) of the discretised grey levels.

    Uses ``roi.levels`` (1..``roi.n_levels``; ``n_levels`` defaults to the highest level in
    the ROI). Besides the §3.3 statistics on grey levels: AMMC mode (on a tie the mode
    nearest the mean, then the lowest), TLU2 entropy (log2), BJ5W uniformity, and the
    histogram gradient (§3.4.20-23: central differences inside, one-sided at levels 1 and
    N_g, over *all* N_g levels including empty ones) with its maximum 12CE, minimum VQB3
    and the grey levels where they occur, 8E6O and RHQZ (first on a tie).
    """
    if roi.levels is None:
        raise ValueError("intensity histogram features need the Roi's discretised levels")
    g = _roi_values(roi, roi.levels).astype(np.int64, copy=False)
    if g.size == 0:
        raise ValueError("the ROI's intensity mask is empty: no intensity features")
    if g.min() < 1:
        raise ValueError(f"grey levels inside the intensity mask must be >= 1, got {g.min()}")
    n_g = int(roi.n_levels) if roi.n_levels is not None else int(g.max())
    if g.max() > n_g:
        raise ValueError(f"grey level {g.max()} exceeds n_levels={n_g}")
    stats = first_order_statistics(g)
    out = {ids[1]: stats[name] for name, ids in _SHARED_IDS.items()}
    hist = np.bincount(g, minlength=n_g + 1)[1:].astype(np.float64)
    p = hist / g.size
    levels = np.arange(1, n_g + 1, dtype=np.float64)
    modes = levels[hist == hist.max()]
    out["AMMC"] = float(modes[np.argmin(np.abs(modes - stats["mean"]))])
    nz = p[p > 0]
    out["TLU2"] = float(-(nz * np.log2(nz)).sum())
    out["BJ5W"] = float((p * p).sum())
    grad = np.gradient(hist) if n_g > 1 else np.zeros(1)
    i_max, i_min = int(np.argmax(grad)), int(np.argmin(grad))
    out["12CE"], out["8E6O"] = float(grad[i_max]), float(levels[i_max])
    out["VQB3"], out["RHQZ"] = float(grad[i_min]), float(levels[i_min])
    return out


def _ivh_grid(
    x: np.ndarray, *, bin_width: float | None, n_bins: int | None,
    range_min: float | None, range_max: float | None, step: float,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(voxel values, candidate intensities i, X_min, X_max) of the IVH (IBSI 1 §3.5)."""
    if n_bins is not None and bin_width is not None:
        raise ValueError("give the IVH either bin_width (fixed bin size) or n_bins, not both")
    if n_bins is not None:
        # fixed bin number (IBSI 1 §2.7.1) over the ROI's range; the IVH is on bin numbers
        lo, hi = float(x.min()), float(x.max())
        if hi > lo:
            v = np.floor(n_bins * (x - lo) / (hi - lo)) + 1.0
            v = np.minimum(v, n_bins)
        else:
            v = np.ones_like(x)
        return v, np.arange(1.0, n_bins + 1.0), 1.0, float(n_bins)
    if bin_width is not None:
        # fixed bin size (IBSI 1 §2.7.2) from the re-segmentation lower bound; the voxel's
        # value is its bin's centre, in intensity units
        w = float(bin_width)
        lo = float(range_min) if range_min is not None else float(x.min())
        idx = np.floor((x - lo) / w) + 1.0
        v = lo + (idx - 0.5) * w
        hi = float(range_max) if range_max is not None else float(x.max())
        i_min, i_max = lo + 0.5 * w, hi - 0.5 * w  # G = [X_min + w/2, X_max - w/2]
        n = max(int(np.floor((i_max - i_min) / w + 1e-9)) + 1, 1)
        return v, i_min + w * np.arange(n), i_min, i_max
    # discrete intensities as they are (e.g. CT in HU, IBSI configs A, B, D): unit steps
    i_min = float(range_min) if range_min is not None else float(x.min())
    i_max = float(range_max) if range_max is not None else float(x.max())
    n = int(np.floor((i_max - i_min) / step + 1e-9)) + 1
    return x, i_min + step * np.arange(n), i_min, i_max


def intensity_volume_histogram_features(
    roi: Roi, *, bin_width: float | None = None, n_bins: int | None = None,
    range_min: float | None = None, range_max: float | None = None, step: float = 1.0,
) -> dict[str, float]:
    """IBSI 1 §3.5 intensity-volume histogram features.

    The IVH discretisation is its own (IBSI 1 §3.5 and the configuration table), with a total
    range G and an interval w_d:

    - discrete calibrated intensities (CT in HU; digital phantom, configs A, B, D): values as
      they are, w_d = ``step`` (1); G = the re-segmentation range ``range_min``/``range_max``
      when given (a half-open range: leave the missing bound ``None``), else the ROI's
      minimum/maximum;
    - continuous calibrated (PET; config C with ``bin_width=2.5, range_min=-1000,
      range_max=400``): fixed bin size from X_min = ``range_min`` (else the ROI minimum), the
      voxel's value is its bin centre X_min + (bin − 0.5)·w, G = [X_min + w/2, X_max − w/2];
    - arbitrary units (MR; config E with ``n_bins=1000``): fixed bin number over the ROI's
      range, values are bin numbers, G = [1, N_g].

    Fractional volume ν(i) = 1 − |{X < i}|/N and intensity fraction γ(i) = (i − min G) /
    (max G − min G) over every i in G in steps of w_d, present in the ROI or not. Keys:
    ``BC2M/V10``, ``BC2M/V90`` (the volume fraction at the first i with γ ≥ 0.1, 0.9),
    ``GBPN/I10``, ``GBPN/I90`` (the lowest i with ν(i) ≤ 0.1, 0.9), ``DDTU/V10-V90``,
    ``CNV2/I10-I90`` and ``9CMM`` (area under the IVH curve ν(γ), trapezoidal; IBSI gives no
    reference value for it).
    """
    x = _roi_values(roi, roi.image).astype(np.float64, copy=False)
    if x.size == 0:
        raise ValueError("the ROI's intensity mask is empty: no intensity features")
    v, grid, i_min, i_max = _ivh_grid(x, bin_width=bin_width, n_bins=n_bins,
                                      range_min=range_min, range_max=range_max, step=step)
    v = np.sort(v)
    # the tiny slack keeps a voxel exactly on a candidate intensity on the "≥ i" side
    tol = 1e-9 * max(1.0, float(np.abs(grid).max()))
    nu = 1.0 - np.searchsorted(v, grid - tol, side="left") / v.size
    span = i_max - i_min
    gamma = (grid - i_min) / span if span > 0 else np.zeros_like(grid)

    def v_at(frac: float) -> float:
        k = int(np.searchsorted(gamma, frac - 1e-12, side="left"))
        return float(nu[k]) if k < nu.size else 0.0

    def i_at(frac: float) -> float:
        ok = np.flatnonzero(nu <= frac + 1e-12)
        return float(grid[ok[0]]) if ok.size else float(grid[-1])

    out = {"BC2M/V10": v_at(0.10), "BC2M/V90": v_at(0.90),
           "GBPN/I10": i_at(0.10), "GBPN/I90": i_at(0.90)}
    out["DDTU/V10-V90"] = out["BC2M/V10"] - out["BC2M/V90"]
    out["CNV2/I10-I90"] = out["GBPN/I10"] - out["GBPN/I90"]
    out["9CMM"] = float(trapezoid(nu, gamma)) if nu.size > 1 else 0.0
    return out
