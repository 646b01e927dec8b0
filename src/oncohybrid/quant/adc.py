"""ADC and IVIM maps from diffusion-weighted signals, computed high-b images, ROI histograms.

All fits are vectorised over voxels: ``signals`` has shape ``(n_b, *spatial)`` and the
results have the spatial shape. Diffusion coefficients are in mm²/s (b in s/mm²).

**Mono-exponential ADC** ``S(b) = S0 · exp(−b · ADC)``: closed-form weighted linear least
squares of ``ln S`` on ``b`` with weights ``S²`` (the variance of ``ln S`` is ``σ²/S²``;
Veraart J. et al., "Weighted linear least squares estimation of diffusion MRI parameters:
strengths, limitations, and pitfalls", NeuroImage 81:335–346, 2013), then optionally a
vectorised Gauss–Newton refinement of the non-linear least-squares problem on ``S``
itself (2×2 normal equations per voxel, a step kept only where it lowers the residual).

**Noise floor and negative values.** A magnitude signal at or below ``noise_floor``
(default 0: zero and negative stored values) carries no information on the decay (Rician
floor, Gudbjartsson H. & Patz S., Magn Reson Med 34:910–914, 1995) and is left out of that
voxel's fit (weight 0). A voxel with fewer than two usable b-values has ADC NaN. A
negative ADC (signal rising with b: noise, fluid motion) is physically impossible and is
clipped to 0 unless ``clip_negative=False``; the number of clipped voxels is reported.

**IVIM** ``S(b) = S0 · [(1 − f) · exp(−b·D) + f · exp(−b·D*)]`` (Le Bihan D. et al.,
"Separation of diffusion and perfusion in intravoxel incoherent motion MR imaging",
Radiology 168:497–505, 1988) by the segmented fit (Jalnefjord O. et al., MAGMA
31:715–723, 2018; Pekar J. et al., Magn Reson Med 23:122–129, 1992): D and the intercept
S0' from the mono-exponential fit of b ≥ 200 s/mm² (where the pseudo-diffusion term has
decayed), f = 1 − S0'/S0 with S0 the b = 0 signal, then D* by a one-parameter non-linear
least-squares fit of all b-values with S0, f and D fixed.

**Computed DWI** ``S(b_c) = S0 · exp(−b_c · ADC)`` (Blackledge M.D. et al., "Computed
diffusion-weighted MR imaging may improve tumor detection", Radiology 261:573–581, 2011).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ICE_WATER_ADC_MM2_S",
    "AdcFit",
    "AdcHistogram",
    "IceWaterCheck",
    "IvimFit",
    "adc_change_pct",
    "adc_histogram",
    "computed_dwi",
    "fit_adc",
    "fit_ivim",
    "ice_water_check",
]

#: ADC of water at 0 °C (QIBA DWI Profile, ice-water phantom; Malyarenko D. et al.,
#: J Magn Reson Imaging 37:1238–1246, 2013): 1.1 × 10⁻³ mm²/s.
ICE_WATER_ADC_MM2_S = 1.1e-3
#: Voxels per vectorised block (bounds the temporaries to a few hundred MB).
_CHUNK = 1 << 18


@dataclass(frozen=True)
class AdcFit:
    """Mono-exponential fit: ``adc_mm2_s`` and ``s0`` maps (NaN where not fitted),
    ``n_used`` b-values used per voxel, ``n_negative`` voxels clipped to 0."""

    adc_mm2_s: np.ndarray
    s0: np.ndarray
    n_used: np.ndarray
    n_negative: int
    method: str


@dataclass(frozen=True)
class IvimFit:
    """Segmented IVIM fit: D and D* in mm²/s, perfusion fraction f in [0, 1], S0."""

    d_mm2_s: np.ndarray
    f: np.ndarray
    d_star_mm2_s: np.ndarray
    s0: np.ndarray
    b_threshold: float


def _prepare(signals: np.ndarray, b_values: Sequence[float] | np.ndarray,
             mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, tuple[int, ...],
                                                np.ndarray]:
    s = np.asarray(signals, dtype=np.float64)
    b = np.asarray(b_values, dtype=np.float64).ravel()
    if s.ndim < 1 or s.shape[0] != b.size:
        raise ValueError(f"signals has {s.shape[0] if s.ndim else 0} b-volumes but "
                         f"{b.size} b-values were given")
    if b.size < 2 or np.unique(b).size < 2:
        raise ValueError(f"an ADC needs two distinct b-values, got {list(b)}")
    if np.any(b < 0):
        raise ValueError(f"b-values must be ≥ 0 s/mm², got {list(b)}")
    spatial = s.shape[1:]
    flat = s.reshape(b.size, -1)
    sel = np.ones(flat.shape[1], bool) if mask is None else np.asarray(mask, bool).ravel()
    if sel.size != flat.shape[1]:
        raise ValueError(f"mask shape {np.shape(mask)} differs from the image {spatial}")
    return flat, b, spatial, np.flatnonzero(sel)


def _wlls(s: np.ndarray, b: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """Weighted log-linear LS on one block ``s`` (n_b, n): (D, S0, n_used)."""
    valid = s > floor
    w = np.where(valid, s * s, 0.0)
    y = np.log(np.where(valid, s, 1.0))
    bb = b[:, None]
    sw = w.sum(0)
    sb = (w * bb).sum(0)
    sbb = (w * bb * bb).sum(0)
    sy = (w * y).sum(0)
    sby = (w * bb * y).sum(0)
    det = sw * sbb - sb * sb
    n_used = valid.sum(0)
    ok = (n_used >= 2) & (det > 1e-12 * np.maximum(sw * sbb, 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(ok, -(sw * sby - sb * sy) / det, np.nan)
        ln_s0 = np.where(ok, (sy + d * sb) / sw, np.nan)
    return d, np.exp(ln_s0), n_used


def _gauss_newton(s: np.ndarray, b: np.ndarray, d: np.ndarray, s0: np.ndarray,
                  valid: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-linear LS of S0·exp(−bD) on ``s`` from (d, s0), vectorised Gauss–Newton.

    A step is kept only where it lowers the residual; the iteration stops early once no
    voxel moves D by more than 10⁻⁹ relative."""
    bb = b[:, None]
    wv = valid.astype(np.float64)
    b2 = bb * bb

    def residual(d_: np.ndarray, s0_: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging trial step
            e_ = np.exp(-bb * d_)
            r_ = (s - s0_ * e_) * wv
            return e_, r_, (r_ * r_).sum(0)

    e, r, current = residual(d, s0)
    for _ in range(iterations):
        # J = [e, −b·S0·e] (masked); normal equations in closed form.
        ew = e * wv
        a00 = (ew * e).sum(0)
        a01 = -s0 * (bb * ew * e).sum(0)
        a11 = s0 * s0 * (b2 * ew * e).sum(0)
        g0 = (e * r).sum(0)
        g1 = -s0 * (bb * e * r).sum(0)
        det = a00 * a11 - a01 * a01
        with np.errstate(divide="ignore", invalid="ignore"):
            ds0 = (a11 * g0 - a01 * g1) / det
            dd = (a00 * g1 - a01 * g0) / det
        e_t, r_t, trial = residual(d + dd, s0 + ds0)
        better = np.isfinite(trial) & (trial < current)
        s0 = np.where(better, s0 + ds0, s0)
        d = np.where(better, d + dd, d)
        current = np.where(better, trial, current)
        e = np.where(better, e_t, e)
        r = np.where(better, r_t, r)
        moved = np.abs(np.where(better, dd, 0.0)) > 1e-9 * np.abs(d)
        if not moved.any():
            break
    return d, s0


def fit_adc(signals: np.ndarray, b_values: Sequence[float] | np.ndarray, *,
            mask: np.ndarray | None = None, noise_floor: float = 0.0, refine: bool = False,
            iterations: int = 5, clip_negative: bool = True) -> AdcFit:
    """Mono-exponential ADC (mm²/s) and S0 maps from ``signals`` ``(n_b, *spatial)``.

    Weighted log-linear least squares (weights S², closed form), then with ``refine`` a
    non-linear least-squares refinement; noise floor and negatives as in the module
    docstring. Voxels outside ``mask`` are NaN.

    Example:
        >>> b = np.array([0.0, 500.0, 1000.0])
        >>> s = 1000 * np.exp(-b * 1.1e-3)[:, None]
        >>> round(float(fit_adc(s, b).adc_mm2_s[0]) * 1e3, 6)
        1.1
    """
    flat, b, spatial, idx = _prepare(signals, b_values, mask)
    n = flat.shape[1]
    adc = np.full(n, np.nan)
    s0 = np.full(n, np.nan)
    used = np.zeros(n, dtype=np.int64)
    for start in range(0, idx.size, _CHUNK):
        sel = idx[start:start + _CHUNK]
        block = flat[:, sel]
        d, a, k = _wlls(block, b, noise_floor)
        if refine:
            ok = np.isfinite(d)
            if ok.any():
                d2, a2 = _gauss_newton(block[:, ok], b, d[ok], a[ok],
                                       block[:, ok] > noise_floor, iterations)
                d[ok], a[ok] = d2, a2
        adc[sel], s0[sel], used[sel] = d, a, k
    negative = np.isfinite(adc) & (adc < 0)
    n_negative = int(negative.sum())
    if clip_negative:
        adc[negative] = 0.0
    method = "weighted log-linear least squares (weights S²)" + (
        f" + non-linear least squares ({iterations} Gauss-Newton steps)" if refine else "")
    return AdcFit(adc.reshape(spatial), s0.reshape(spatial), used.reshape(spatial),
                  n_negative, method)


def fit_ivim(signals: np.ndarray, b_values: Sequence[float] | np.ndarray, *,
             b_threshold: float = 200.0, mask: np.ndarray | None = None,
             noise_floor: float = 0.0, iterations: int = 10, refine: bool = True,
             d_star_bounds_mm2_s: tuple[float, float] = (3e-3, 0.5)) -> IvimFit:
    """Segmented IVIM fit (module docstring): D from b ≥ ``b_threshold``, f from the
    intercept against the b = 0 signal, then D* (clamped to ``d_star_bounds_mm2_s``).
    With ``refine`` (default) the high-b fit is the non-linear least-squares one (as
    :func:`fit_adc` with ``refine``), else the weighted log-linear one.

    Needs b = 0, at least two b-values ≥ ``b_threshold`` and one between.

    Example:
        >>> b = np.array([0, 10, 20, 50, 100, 200, 400, 800.0])
        >>> s = 1000 * (0.9 * np.exp(-b * 1e-3) + 0.1 * np.exp(-b * 0.02))[:, None]
        >>> fit = fit_ivim(s, b)
        >>> round(float(fit.f[0]), 2), round(float(fit.d_mm2_s[0]) * 1e3, 2)
        (0.1, 1.0)
    """
    flat, b, spatial, idx = _prepare(signals, b_values, mask)
    high = b >= b_threshold
    if np.unique(b[high]).size < 2:
        raise ValueError(f"IVIM needs two b-values ≥ {b_threshold:g} s/mm², got {list(b)}")
    if not np.any(b == 0):
        raise ValueError(f"IVIM needs a b = 0 image for S0, got b = {list(b)}")
    low = (b > 0) & ~high
    if not low.any():
        raise ValueError(f"IVIM needs a b-value between 0 and {b_threshold:g} s/mm² for D*")
    n = flat.shape[1]
    out = {k: np.full(n, np.nan) for k in ("d", "f", "ds", "s0")}
    zero = b == 0
    lo_b, hi_b = d_star_bounds_mm2_s
    bb = b[:, None]
    for start in range(0, idx.size, _CHUNK):
        sel = idx[start:start + _CHUNK]
        block = flat[:, sel]
        d, s0p, _ = _wlls(block[high], b[high], noise_floor)
        if refine:
            ok = np.isfinite(d)
            if ok.any():
                hb = block[high][:, ok]
                d[ok], s0p[ok] = _gauss_newton(hb, b[high], d[ok], s0p[ok],
                                               hb > noise_floor, iterations)
        s0 = block[zero].mean(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.clip(1.0 - s0p / s0, 0.0, 1.0)
        ds = _fit_d_star(block, bb, s0, f, d, block > noise_floor, iterations, (lo_b, hi_b))
        ds = np.where(f > 0, ds, np.nan)
        out["d"][sel], out["f"][sel], out["ds"][sel], out["s0"][sel] = d, f, ds, s0
    return IvimFit(out["d"].reshape(spatial), out["f"].reshape(spatial),
                   out["ds"].reshape(spatial), out["s0"].reshape(spatial), b_threshold)


def _fit_d_star(block: np.ndarray, bb: np.ndarray, s0: np.ndarray, f: np.ndarray,
                d: np.ndarray, valid: np.ndarray, iterations: int,
                bounds: tuple[float, float]) -> np.ndarray:
    """One-parameter least squares for D* with S0, f, D fixed.

    The cost has several minima, so the start is the best of a 48-point log-spaced grid
    over ``bounds``, evaluated for all voxels by two matrix products (the residual
    expands to ``Σw·r0² − 2·S0f·Σw·r0·e + (S0f)²·Σw·e²`` with ``e = exp(−b·D*)`` the same
    for every voxel at a grid point); then Gauss–Newton with one step halving, a step kept
    only where it lowers the residual, D* clamped to ``bounds``."""
    w = valid.astype(np.float64)
    r0 = block - s0 * (1 - f) * np.exp(-bb * d)
    sf = s0 * f
    wr = w * r0
    c0 = (wr * r0).sum(0)
    grid = np.geomspace(bounds[0], bounds[1], 48)
    e = np.exp(-bb * grid[None, :])  # (n_b, G)
    cost = c0[None, :] - 2 * sf[None, :] * (e.T @ wr) + (sf * sf)[None, :] * ((e * e).T @ w)
    best = np.argmin(np.where(np.isfinite(cost), cost, np.inf), axis=0)
    ds = grid[best]
    current = cost[best, np.arange(cost.shape[1])]

    def sse(x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            r = (r0 - sf * np.exp(-bb * x)) * w
            return (r * r).sum(0)

    for _ in range(iterations):
        ex = np.exp(-bb * ds)
        r = (r0 - sf * ex) * w
        j = -bb * sf * ex * w
        jj = (j * j).sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = (j * r).sum(0) / jj
        step = np.where(np.isfinite(step), step, 0.0)
        for scale in (1.0, 0.5):
            trial_x = np.clip(ds + scale * step, *bounds)
            trial = sse(trial_x)
            better = trial < current
            ds = np.where(better, trial_x, ds)
            current = np.where(better, trial, current)
            step = np.where(better, 0.0, step)
    return ds


def computed_dwi(s0: np.ndarray, adc_mm2_s: np.ndarray, b_value: float) -> np.ndarray:
    """Computed b-value image ``S0 · exp(−b · ADC)`` (Blackledge et al. 2011).

    Example:
        >>> float(computed_dwi(np.array(1000.0), np.array(1e-3), 1000.0)) == 1000 * math.exp(-1)
        True
    """
    return np.asarray(s0, dtype=np.float64) * np.exp(-float(b_value) *
                                                      np.asarray(adc_mm2_s, dtype=np.float64))


@dataclass(frozen=True)
class AdcHistogram:
    """First-order statistics of ADC in an ROI, in µm²/s (10⁻⁶ mm²/s); skewness and
    excess kurtosis are the population (biased) moments, entropy in bits of the
    histogram with ``bin_width_um2_s`` bins."""

    n_voxels: int
    mean_um2_s: float
    median_um2_s: float
    sd_um2_s: float
    percentiles_um2_s: dict[int, float]
    skewness: float
    kurtosis: float
    entropy_bits: float
    bin_width_um2_s: float


def adc_histogram(adc_mm2_s: np.ndarray, mask: np.ndarray | None = None, *,
                  bin_width_um2_s: float = 10.0,
                  percentiles: Sequence[int] = (10, 25, 75, 90)) -> AdcHistogram:
    """Histogram statistics of the finite ADC values in ``mask`` (IBSI first-order
    definitions: Zwanenburg A. et al., Radiology 295:328–338, 2020, §3.3/3.4), in µm²/s.

    Example:
        >>> h = adc_histogram(np.array([1.0e-3, 1.2e-3, 1.4e-3]))
        >>> h.n_voxels, round(h.mean_um2_s, 6), round(h.median_um2_s, 6)
        (3, 1200.0, 1200.0)
    """
    a = np.asarray(adc_mm2_s, dtype=np.float64)
    v = a[np.asarray(mask, bool)] if mask is not None else a.ravel()
    v = v[np.isfinite(v)] * 1e6
    if v.size == 0:
        nan = math.nan
        return AdcHistogram(0, nan, nan, nan, {p: nan for p in percentiles}, nan, nan, nan,
                            bin_width_um2_s)
    mean = float(v.mean())
    dev = v - mean
    m2 = float(np.mean(dev ** 2))
    skew = float(np.mean(dev ** 3) / m2 ** 1.5) if m2 > 0 else math.nan
    kurt = float(np.mean(dev ** 4) / m2 ** 2 - 3.0) if m2 > 0 else math.nan
    bins = np.floor((v - v.min()) / bin_width_um2_s).astype(np.int64)
    p = np.bincount(bins) / v.size
    p = p[p > 0]
    entropy = float(-(p * np.log2(p)).sum())
    return AdcHistogram(int(v.size), mean, float(np.median(v)), math.sqrt(m2),
                        {int(q): float(np.percentile(v, q)) for q in percentiles},
                        skew, kurt, entropy, bin_width_um2_s)


def adc_change_pct(baseline_um2_s: float, follow_up_um2_s: float) -> float:
    """Relative ADC change (%) from baseline, the response biomarker of DWI (a rise after
    effective therapy; Padhani A.R. et al., Neoplasia 11:102–125, 2009).

    Example:
        >>> adc_change_pct(1000.0, 1250.0)
        25.0
    """
    if not baseline_um2_s > 0:
        raise ValueError(f"baseline ADC must be positive, got {baseline_um2_s}")
    return 100.0 * (follow_up_um2_s - baseline_um2_s) / baseline_um2_s


@dataclass(frozen=True)
class IceWaterCheck:
    """QIBA ice-water phantom check from repeated ROI mean ADCs (mm²/s)."""

    n_repeats: int
    mean_mm2_s: float
    bias_pct: float
    wcv_pct: float
    bias_limit_pct: float
    wcv_limit_pct: float

    @property
    def passes(self) -> bool:
        """Both the bias and the repeatability within the profile's limits."""
        return abs(self.bias_pct) <= self.bias_limit_pct and self.wcv_pct <= self.wcv_limit_pct


def ice_water_check(roi_means_mm2_s: Sequence[float], *, truth_mm2_s: float =
                    ICE_WATER_ADC_MM2_S, bias_limit_pct: float = 3.6,
                    wcv_limit_pct: float = 0.5) -> IceWaterCheck:
    """ADC bias (% of 1.1 × 10⁻³ mm²/s) and short-term repeatability (within-subject
    coefficient of variation of the repeated ROI means, %) on the ice-water phantom,
    against the QIBA DWI Profile limits (bias ≤ 3.6 %, wCV ≤ 0.5 %; QIBA Diffusion-Weighted
    Imaging Profile, Consensus 2019, §4.1 / Table 4.1).

    Example:
        >>> c = ice_water_check([1.10e-3, 1.102e-3, 1.098e-3, 1.10e-3])
        >>> round(c.bias_pct, 3), c.passes
        (0.0, True)
    """
    x = np.asarray(roi_means_mm2_s, dtype=np.float64)
    if x.size < 2:
        raise ValueError("repeatability needs at least two repeated acquisitions")
    mean = float(x.mean())
    return IceWaterCheck(int(x.size), mean, 100.0 * (mean - truth_mm2_s) / truth_mm2_s,
                         100.0 * float(x.std(ddof=1)) / mean, bias_limit_pct, wcv_limit_pct)
