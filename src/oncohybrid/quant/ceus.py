"""Contrast-enhanced ultrasound (CEUS / DCE-US) perfusion from a cine loop.

From log-compressed grey levels to EFSUMB perfusion terms:

1. **Linearisation** (:func:`linearise`). Scanners display echo power on a decibel scale:
   a stated dynamic range of *DR* dB is mapped linearly onto the grey levels ``0 … Ymax``,
   the brightest grey level being 0 dB. The inverse is::

       L_dB = DR · (Y / Ymax − 1)          (dB relative to the brightest grey level)
       P    = 10 ** (L_dB / 10)            (echo power, linear, brightest = 1)

   Indicator-dilution models hold for the concentration of microbubbles, which is
   proportional to the backscattered *power*, not to its logarithm; analysing the
   log-compressed video data directly distorts the curve (Tang M-X et al., "Quantitative
   contrast-enhanced ultrasound imaging: a review of sources of variability", Interface
   Focus 2011;1:520–539, §3 "log compression"; Dietrich CF et al., "An EFSUMB introduction
   into Dynamic Contrast-Enhanced Ultrasound (DCE-US) for quantification of tumour
   perfusion", Ultraschall Med 2012;33:344–351). The map assumes no further grey map
   (post-processing curve) after the compression; grey level 0 is the noise floor and
   maps to ``10 ** (−DR/10)``.
2. **Rigid motion compensation** (:func:`motion_shifts`, :func:`compensate`): each frame's
   translation against a reference frame by phase correlation (Guizar-Sicairos M et al.,
   Opt Lett 2008;33:156–158, via :func:`skimage.registration.phase_cross_correlation`)
   on the log-compressed frames (their frozen tissue speckle carries the structure), then
   the linear frames shifted back (bilinear).
3. **Time-intensity curve** (:func:`roi_tic`): mean linear echo power in a rectangular ROI.
4. **Bolus models** (:func:`fit_tic`), each written with its area under the curve *AUC*,
   an appearance time *t0* and a baseline *offset* (tissue echo before the bolus), as in
   Strouthos C et al., IEEE Trans Ultrason Ferroelectr Freq Control 2010;57:1296–1310 and
   the review of Tang et al. 2011 (§4.1), τ = t − t0 > 0:

   - lognormal: ``AUC / (√(2π) σ τ) · exp(−(ln τ − μ)² / (2σ²))``;
     mean transit time (first moment from t0) ``exp(μ + σ²/2)``;
   - gamma variate: ``K τ^α exp(−τ/β)`` with ``K = AUC / (β^(α+1) Γ(α+1))``;
     mean transit time ``β (α + 1)``;
   - local density random walk (LDRW; Mischi M et al., Ultrasound Med Biol 2004 and
     Tang 2011 eq. 4.3): ``AUC · e^λ / μ · √(λ μ / (2π τ)) · exp(−λ/2 (μ/τ + τ/μ))``;
     its first moment from t0 is ``μ (1 + 1/λ)`` (the curve is the inverse-Gaussian density
     of mean μ and shape λμ weighted by τ/μ); μ itself is reported as ``mu_s``.
5. **EFSUMB terms** (:func:`perfusion_terms`; Dietrich et al. 2012 and the EFSUMB 2017
   guideline, Sidhu PS et al., Ultraschall Med 2018;39:e2–e44; terms as in Bracco's VueBox):
   from the fitted curve minus its offset, *PE* peak enhancement, *TTP* time to peak
   (from t0), *RT* rise time (from where the tangent at the steepest wash-in crosses the
   baseline to the peak), *FT* fall time (from the peak to where the tangent at the
   steepest wash-out crosses the baseline), *WiR*/*WoR* wash-in and wash-out rates (the
   steepest up- and down-slopes; WoR is negative), *WiAUC* area from t0 to the peak,
   *WoAUC* area from the peak on (WiAUC + WoAUC = AUC), *WiPI* wash-in perfusion index
   WiAUC / RT, *MTT* mean transit time, and the fit quality r².

Echo power is in linear arbitrary units (the brightest grey level = 1); times in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from scipy import integrate, optimize, special

__all__ = [
    "Roi",
    "TicFit",
    "TicModel",
    "compensate",
    "fit_tic",
    "gamma_variate",
    "ldrw",
    "linearise",
    "lognormal",
    "model_curve",
    "motion_shifts",
    "perfusion_terms",
    "roi_tic",
]

FloatArray = NDArray[np.float64]


class TicModel(StrEnum):
    """Indicator-dilution models of the bolus time-intensity curve (Tang et al. 2011 §4.1)."""

    LOGNORMAL = "lognormal"
    GAMMA_VARIATE = "gamma-variate"
    LDRW = "ldrw"

    @classmethod
    def parse(cls, name: str) -> TicModel:
        """The model named ``name`` (``gamma`` is accepted for the gamma variate)."""
        key = name.strip().lower().replace("_", "-")
        if key in ("gamma", "gammavariate"):
            key = "gamma-variate"
        for m in cls:
            if m.value == key:
                return m
        raise ValueError(f"unknown model {name!r} (one of: "
                         f"{', '.join(m.value for m in cls)})")


# Parameter names of each model, in the order of the curve functions' arguments.
PARAMETER_NAMES: dict[TicModel, tuple[str, ...]] = {
    TicModel.LOGNORMAL: ("auc", "mu", "sigma", "t0_s", "offset"),
    TicModel.GAMMA_VARIATE: ("auc", "alpha", "beta_s", "t0_s", "offset"),
    TicModel.LDRW: ("auc", "mu_s", "lambda", "t0_s", "offset"),
}


# --------------------------------------------------------------------------- linearise
def linearise(grey: NDArray[np.floating] | NDArray[np.integer], dynamic_range_db: float,
              max_grey: float = 255.0) -> FloatArray:
    """Echo power (linear, brightest grey level = 1) from log-compressed grey levels.

    ``P = 10 ** (DR · (Y / Ymax − 1) / 10)`` — the inverse of mapping ``DR`` dB of echo
    power linearly onto ``0 … Ymax`` (Tang et al. 2011 §3).

    >>> linearise(np.array([255, 0]), 60.0).tolist()
    [1.0, 1e-06]
    """
    if not (dynamic_range_db > 0 and math.isfinite(dynamic_range_db)):
        raise ValueError(f"dynamic range must be a positive number of dB, got "
                         f"{dynamic_range_db!r}")
    y = np.asarray(grey, dtype=np.float64)
    return np.power(10.0, dynamic_range_db * (y / max_grey - 1.0) / 10.0)


# --------------------------------------------------------------------------- motion
def motion_shifts(frames: NDArray[np.floating], reference: int = 0,
                  upsample_factor: int = 10) -> FloatArray:
    """Per-frame (row, column) translation that registers each frame onto ``reference``.

    Phase correlation (Guizar-Sicairos et al. 2008) of the log-compressed frames, whose
    frozen tissue speckle and structures carry the motion; subpixel to
    1/``upsample_factor`` pixel. ``shifts[i]`` is what :func:`compensate` applies to frame i.
    """
    from skimage.registration import phase_cross_correlation

    f = np.asarray(frames, dtype=np.float64)
    ref = f[reference] - f[reference].mean()
    out = np.zeros((f.shape[0], 2))
    for i in range(f.shape[0]):
        if i == reference:
            continue
        shift, _, _ = phase_cross_correlation(ref, f[i] - f[i].mean(),
                                              upsample_factor=upsample_factor,
                                              normalization=None)
        out[i] = shift
    return out


def compensate(frames: NDArray[np.floating], shifts: FloatArray) -> FloatArray:
    """Frames translated by ``shifts`` (bilinear, edges repeated)."""
    from scipy.ndimage import shift as nd_shift

    f = np.asarray(frames, dtype=np.float64)
    out = np.empty_like(f)
    for i in range(f.shape[0]):
        if np.any(shifts[i] != 0):
            out[i] = nd_shift(f[i], shifts[i], order=1, mode="nearest")
        else:
            out[i] = f[i]
    return out


@dataclass(frozen=True)
class Roi:
    """A rectangle of pixels: ``x`` column and ``y`` row of its top-left corner, ``width``
    columns and ``height`` rows."""

    x: int
    y: int
    width: int
    height: int

    def check(self, rows: int, columns: int) -> None:
        """Raise ``ValueError`` when the rectangle is empty or leaves a rows×columns image."""
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"ROI width and height must be positive, got {self.width}x"
                             f"{self.height}")
        if (self.x < 0 or self.y < 0 or self.x + self.width > columns
                or self.y + self.height > rows):
            raise ValueError(f"ROI {self.x},{self.y},{self.width},{self.height} lies outside "
                             f"the {columns}x{rows} (columns x rows) image")


def roi_tic(power: NDArray[np.floating], roi: Roi) -> FloatArray:
    """Mean linear echo power inside ``roi`` for every frame (the time-intensity curve)."""
    p = np.asarray(power, dtype=np.float64)
    roi.check(p.shape[1], p.shape[2])
    return p[:, roi.y:roi.y + roi.height, roi.x:roi.x + roi.width].mean(axis=(1, 2))


# --------------------------------------------------------------------------- models
def lognormal(t: FloatArray, auc: float, mu: float, sigma: float, t0_s: float,
              offset: float) -> FloatArray:
    """Lognormal bolus curve (Strouthos et al. 2010 eq. 1; Tang et al. 2011 §4.1)."""
    tau = np.asarray(t, dtype=np.float64) - t0_s
    out = np.zeros_like(tau)
    pos = tau > 0
    tp = tau[pos]
    out[pos] = auc / (math.sqrt(2 * math.pi) * sigma * tp) * np.exp(
        -((np.log(tp) - mu) ** 2) / (2 * sigma * sigma))
    return out + offset


def gamma_variate(t: FloatArray, auc: float, alpha: float, beta_s: float, t0_s: float,
                  offset: float) -> FloatArray:
    """Gamma-variate bolus curve ``K τ^α e^(−τ/β)``, K from the area (Tang et al. 2011 §4.1)."""
    tau = np.asarray(t, dtype=np.float64) - t0_s
    out = np.zeros_like(tau)
    pos = tau > 0
    tp = tau[pos]
    log_k = math.log(auc) - (alpha + 1) * math.log(beta_s) - special.gammaln(alpha + 1) \
        if auc > 0 else -np.inf
    out[pos] = np.exp(log_k + alpha * np.log(tp) - tp / beta_s) if auc > 0 else 0.0
    return out + offset


def ldrw(t: FloatArray, auc: float, mu_s: float, lam: float, t0_s: float,
         offset: float) -> FloatArray:
    """Local density random walk curve (Mischi et al. 2004; Tang et al. 2011 §4.1)."""
    tau = np.asarray(t, dtype=np.float64) - t0_s
    out = np.zeros_like(tau)
    pos = tau > 0
    tp = tau[pos]
    out[pos] = auc / mu_s * np.sqrt(lam * mu_s / (2 * math.pi * tp)) * np.exp(
        lam - lam / 2 * (mu_s / tp + tp / mu_s))
    return out + offset


_CURVES: dict[TicModel, Callable[..., FloatArray]] = {
    TicModel.LOGNORMAL: lognormal,
    TicModel.GAMMA_VARIATE: gamma_variate,
    TicModel.LDRW: ldrw,
}


def model_curve(model: TicModel, t: FloatArray, params: dict[str, float]) -> FloatArray:
    """The model evaluated at times ``t`` with named parameters (:data:`PARAMETER_NAMES`)."""
    return _CURVES[model](t, *(params[n] for n in PARAMETER_NAMES[model]))


def _mtt(model: TicModel, p: dict[str, float]) -> float:
    """First moment of the bolus curve from t0 (mean transit time)."""
    if model is TicModel.LOGNORMAL:
        return math.exp(p["mu"] + p["sigma"] ** 2 / 2)
    if model is TicModel.GAMMA_VARIATE:
        return p["beta_s"] * (p["alpha"] + 1)
    return p["mu_s"] * (1 + 1 / p["lambda"])


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class TicFit:
    """A fitted time-intensity curve: model, parameters, r² and EFSUMB terms."""

    model: TicModel
    parameters: dict[str, float]
    r2: float
    perfusion: dict[str, float] = field(default_factory=dict)

    def curve(self, t: FloatArray) -> FloatArray:
        return model_curve(self.model, t, self.parameters)


def _moments(t: FloatArray, y: FloatArray) -> tuple[float, float, float, float, float]:
    """Starting values from the data: baseline, appearance time, peak time, area, first
    moment from the appearance time."""
    n = len(t)
    k = max(3, n // 50)
    smooth = np.convolve(y, np.ones(k) / k, mode="same")
    ip = int(np.argmax(smooth[k:n - k]) + k) if n > 2 * k + 1 else int(np.argmax(smooth))
    pre = y[: max(2, ip // 4)]
    base = float(np.median(pre))
    amp = float(smooth[ip] - base)
    above = np.flatnonzero(smooth[:ip + 1] - base < 0.05 * amp)
    t_app = float(t[above[-1]]) if above.size else float(t[0])
    t_app = min(t_app, float(t[ip]) - 1e-3 * (t[-1] - t[0]))
    yb = np.clip(y - base, 0.0, None)
    area = float(integrate.trapezoid(yb, t))
    m1 = float(integrate.trapezoid(yb * (t - t_app), t) / area) if area > 0 else 1.0
    return base, t_app, float(t[ip]), max(area, 1e-30), max(m1, 1e-6)


def _starts(model: TicModel, t: FloatArray, y: FloatArray) -> list[list[float]]:
    base, t_app, t_peak, area, m1 = _moments(t, y)
    tp = max(t_peak - t_app, 1e-3 * (t[-1] - t[0]))
    m1 = max(m1, 1.05 * tp)
    starts: list[list[float]] = []
    for shift in (0.0, -0.1, 0.1):
        t0 = t_app + shift * tp
        tpk, mean = tp - shift * tp, m1 - shift * tp
        if tpk <= 0 or mean <= tpk:
            continue
        if model is TicModel.LOGNORMAL:
            s2 = max((math.log(mean) - math.log(tpk)) / 1.5, 1e-3)
            starts.append([area, math.log(tpk) + s2, math.sqrt(s2), t0, base])
        elif model is TicModel.GAMMA_VARIATE:
            beta = mean - tpk
            starts.append([area, tpk / beta, beta, t0, base])
        else:
            for lam in (1.0, 3.0, 10.0):
                starts.append([area, mean / (1 + 1 / lam), lam, t0, base])
    return starts


def _bounds(model: TicModel, t: FloatArray) -> tuple[list[float], list[float]]:
    span = float(t[-1] - t[0])
    lo_t0, hi_t0 = float(t[0]) - span, float(t[-1])
    if model is TicModel.LOGNORMAL:
        return ([0, -10, 1e-3, lo_t0, -np.inf], [np.inf, 10, 10, hi_t0, np.inf])
    if model is TicModel.GAMMA_VARIATE:
        return ([0, 1e-3, 1e-4 * span, lo_t0, -np.inf], [np.inf, 100, 10 * span, hi_t0, np.inf])
    return ([0, 1e-4 * span, 1e-3, lo_t0, -np.inf], [np.inf, 10 * span, 1e4, hi_t0, np.inf])


def fit_tic(t_s: NDArray[np.floating], power: NDArray[np.floating],
            model: TicModel | str = TicModel.LOGNORMAL) -> TicFit:
    """Least-squares fit of a bolus model to a time-intensity curve of linear echo power.

    Trust-region reflective least squares (:func:`scipy.optimize.least_squares`) from
    several data-driven starts (baseline, appearance time, peak time and first moment of
    the curve); the best r² wins. Returns the model parameters (:data:`PARAMETER_NAMES`),
    r² = 1 − SS_res / SS_tot and the EFSUMB terms of :func:`perfusion_terms`.
    """
    m = TicModel.parse(model) if isinstance(model, str) else model
    t = np.asarray(t_s, dtype=np.float64)
    y = np.asarray(power, dtype=np.float64)
    if t.ndim != 1 or t.shape != y.shape or t.size < 8:
        raise ValueError("a time-intensity curve needs at least 8 frames with one time each")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise ValueError("the time-intensity curve has non-finite values")
    if np.any(np.diff(t) <= 0):
        raise ValueError("frame times must increase")
    scale = float(np.max(np.abs(y))) or 1.0
    ys = y / scale
    func = _CURVES[m]
    lo, hi = _bounds(m, t)
    best: tuple[float, FloatArray] | None = None
    for x0 in _starts(m, t, ys):
        x0 = np.clip(x0, np.array(lo) + 1e-12, np.array(hi) - 1e-12)
        try:
            res = optimize.least_squares(lambda p: func(t, *p) - ys, x0, bounds=(lo, hi),
                                         method="trf", x_scale="jac", max_nfev=4000,
                                         ftol=1e-12, xtol=1e-12, gtol=1e-12)
        except (ValueError, FloatingPointError):
            continue
        cost = float(np.sum(res.fun ** 2))
        if np.isfinite(cost) and (best is None or cost < best[0]):
            best = (cost, res.x)
    if best is None:
        raise ValueError(f"the {m.value} model could not be fitted to this curve")
    cost, x = best
    ss_tot = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - cost / ss_tot if ss_tot > 0 else float("nan")
    params = dict(zip(PARAMETER_NAMES[m], (float(v) for v in x), strict=True))
    params["auc"] *= scale
    params["offset"] *= scale
    return TicFit(m, params, r2, perfusion_terms(m, params))


def perfusion_terms(model: TicModel, params: dict[str, float]) -> dict[str, float]:
    """EFSUMB/VueBox terms of a bolus curve (module docstring, step 5), offset removed.

    Keys: ``peak_enhancement``, ``time_to_peak_s`` (from t0), ``time_of_peak_s``,
    ``rise_time_s``, ``fall_time_s``, ``wash_in_rate_per_s``, ``wash_out_rate_per_s``,
    ``wash_in_auc``, ``wash_out_auc``, ``auc``, ``wash_in_perfusion_index``,
    ``mean_transit_time_s``. Areas are in echo power × s, rates in echo power per s.
    """
    p = dict(params)
    p["offset"] = 0.0
    t0 = p["t0_s"]
    mtt = _mtt(model, p)

    def f(tt: FloatArray) -> FloatArray:
        return model_curve(model, tt, p)

    # A grid over the bulk of the curve, fine enough for the slopes; refined around the
    # peak and the steepest slopes by bounded scalar searches.
    span = 12.0 * mtt
    grid = t0 + np.linspace(0.0, span, 20001)[1:]
    v = f(grid)
    ip = int(np.argmax(v))
    lo, hi = grid[max(ip - 1, 0)], grid[min(ip + 1, grid.size - 1)]
    peak = optimize.minimize_scalar(lambda s: -f(np.array([s]))[0], bounds=(lo, hi),
                                    method="bounded", options={"xatol": 1e-10 * span})
    t_peak, pe = float(peak.x), float(-peak.fun)
    slope = np.gradient(v, grid)

    def extreme_slope(i: int, sign: float) -> tuple[float, float]:
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        h = 1e-6 * span

        def d(s: float) -> float:
            return float((f(np.array([s + h]))[0] - f(np.array([s - h]))[0]) / (2 * h))

        r = optimize.minimize_scalar(lambda s: -sign * d(s), bounds=(a, b), method="bounded",
                                     options={"xatol": 1e-10 * span})
        return float(r.x), sign * float(-r.fun)

    t_in, wir = extreme_slope(int(np.argmax(slope[:ip + 1])), 1.0)
    t_out, wor = extreme_slope(ip + int(np.argmin(slope[ip:])), -1.0)
    rise = t_peak - (t_in - float(f(np.array([t_in]))[0]) / wir)
    fall = (t_out - float(f(np.array([t_out]))[0]) / wor) - t_peak
    auc = p["auc"]
    wi_auc = float(integrate.quad(lambda s: f(np.array([s]))[0], t0, t_peak,
                                  limit=200, epsabs=0, epsrel=1e-10)[0])
    return {
        "peak_enhancement": pe,
        "time_to_peak_s": t_peak - t0,
        "time_of_peak_s": t_peak,
        "rise_time_s": rise,
        "fall_time_s": fall,
        "wash_in_rate_per_s": wir,
        "wash_out_rate_per_s": wor,
        "wash_in_auc": wi_auc,
        "wash_out_auc": auc - wi_auc,
        "auc": auc,
        "wash_in_perfusion_index": wi_auc / rise,
        "mean_transit_time_s": mtt,
    }
