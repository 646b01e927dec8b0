"""Time–activity curves and time-integrated activity (MIRD formalism).

MIRD Pamphlet 21 (Bolch et al., J Nucl Med 2009;50:477–484) defines the time-integrated
activity Ã = ∫₀^∞ A(t) dt of a source region; the EANM guidance on kinetics (Sjögreen
Gleisner et al., EJNMMI Phys 2022;9:44 — fit functions, goodness of fit, model choice)
is what the choices below follow:

- ``mono-exp``: A(t) = A₀·e^(−λt); Ã = A₀/λ.
- ``bi-exp`` (uptake and washout): A(t) = A₀·(e^(−λ₁t) − e^(−λ₂t)), λ₂ > λ₁;
  Ã = A₀·(1/λ₁ − 1/λ₂).
- ``bi-exp-clearance`` (two clearance phases): A(t) = A₁·e^(−λ₁t) + A₂·e^(−λ₂t),
  λ₂ > λ₁, A₁, A₂ ≥ 0; Ã = A₁/λ₁ + A₂/λ₂ (4 parameters: ≥ 4 points).
- ``trapezoid``: trapezoids between the measured points, from t = 0 with A(0) = 0
  (``start="zero"``) or A(0) = A(t₁) (``start="constant"``), then the physical-decay
  tail A(tₙ)/λ_phys after the last point.
- ``hanscheid``: single time point, Ã ≈ A(t)·2t/ln 2 (Hänscheid et al., J Nucl Med
  2018;59:75–81; most accurate near t ≈ 96 h for ¹⁷⁷Lu-DOTATATE/-TOC kidneys and tumours).

Fitted clearance constants are bounded below by the physical decay constant (a tissue
cannot keep activity longer than the nuclide lives). ``auto`` fits every exponential
model the number of points allows and compares them with one criterion: the corrected
Akaike criterion (AICc; Glatting et al., Med Phys 2007;34:4285) when every model leaves
n − k − 1 > 0, else the plain AIC for all; the bi-exponential must beat the
mono-exponential by more than 2 to be chosen. When the model so chosen still misses a
point by more than 5 % (relative) and there are ≥ 4 points, the two-phase clearance model
is fitted too and taken if it misses none by more than 5 % (a fast renal/blood phase that
neither 2- or 3-parameter form can follow; the EANM guidance's check of the fit
residuals). Residuals are relative ((model − y)/y): the counting error of SPECT VOIs is
roughly proportional to the activity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oncohybrid.errors import InputError

__all__ = ["MODELS", "TacFit", "fit_tac", "hanscheid_tia"]

MODELS = ("auto", "mono-exp", "bi-exp", "bi-exp-clearance", "trapezoid", "hanscheid")
#: Largest relative residual of an acceptable fit in ``auto`` (beyond it the two-phase
#: clearance model is tried when there are ≥ 4 points).
_POOR_FIT_REL = 0.05
#: Time grid length for numerical integrals of the fitted curve (in effective half-lives).
_TAIL_HALF_LIVES = 40.0


@dataclass(frozen=True)
class TacFit:
    """One fitted time–activity curve: the model, its parameters, the goodness of fit
    r² = 1 − SS_res/SS_tot on the activities, the time-integrated activity (MBq·h) and
    why the model was chosen. Times in hours after administration, activities in MBq."""

    model: str
    parameters: dict[str, float]
    r2: float | None
    tia_mbq_h: float
    times_h: tuple[float, ...]
    activities_mbq: tuple[float, ...]
    physical_lambda_per_h: float
    choice: str
    candidates: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def activity_at(self, t_h: Any) -> np.ndarray:
        """The curve at ``t_h`` (hours, array-like), MBq."""
        t = np.asarray(t_h, dtype=float)
        p = self.parameters
        if self.model == "mono-exp":
            return p["a0_mbq"] * np.exp(-p["lambda_per_h"] * t)
        if self.model in ("bi-exp", "bi-exp-clearance"):
            return _curve(self.model, p, t)
        if self.model == "hanscheid":
            # The method assumes A(t) = A(τ)·e^(−ln2·(t−τ)/τ)... integrated to 2τ/ln2·A(τ);
            # its implied curve is a mono-exponential with T_eff = τ through the point.
            tau, a = p["time_h"], p["activity_mbq"]
            lam = math.log(2.0) / tau
            return a * math.exp(lam * tau) * np.exp(-lam * t)
        # trapezoid: piecewise linear, then physical decay from the last point
        ts = np.asarray(self.times_h)
        ys = np.asarray(self.activities_mbq)
        a0 = ys[0] if p.get("start_constant") else 0.0
        xs, vs = np.concatenate([[0.0], ts]), np.concatenate([[a0], ys])
        out = np.interp(t, xs, vs)
        tail = t > ts[-1]
        out = np.where(tail, ys[-1] * np.exp(-self.physical_lambda_per_h
                                             * np.clip(t - ts[-1], 0, None)), out)
        return out

    def time_grid_h(self) -> np.ndarray:
        """A time grid that covers the curve to negligible activity (for BED integrals)."""
        lam = self.physical_lambda_per_h
        for key in ("lambda_per_h", "lambda_washout_per_h", "lambda_1_per_h"):
            if key in self.parameters:
                lam = self.parameters[key]
        end = max(_TAIL_HALF_LIVES * math.log(2.0) / lam, max(self.times_h) * 2)
        return np.concatenate([np.linspace(0.0, min(end, 48.0), 4801),
                               np.linspace(min(end, 48.0), end, 20001)[1:]])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "parameters": {k: _round(v) for k, v in self.parameters.items()},
            "r2": None if self.r2 is None else round(self.r2, 6),
            "choice": self.choice}
        if self.candidates:
            out["candidates"] = {
                name: {k: (None if v is None else round(float(v), 6)) for k, v in c.items()}
                for name, c in self.candidates.items()}
        return out


def _round(v: float) -> float:
    return float(f"{v:.6g}")


def _r2(y: np.ndarray, pred: np.ndarray) -> float | None:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - pred) ** 2).sum())
    if ss_tot <= 0:
        return None
    return 1.0 - ss_res / ss_tot


def _check(times_h: Sequence[float], activities_mbq: Sequence[float]
           ) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times_h, dtype=float)
    y = np.asarray(activities_mbq, dtype=float)
    if t.shape != y.shape or t.ndim != 1:
        raise InputError(f"time-activity curve: {t.size} times but {y.size} activities")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise InputError("time-activity curve: times and activities must be finite numbers")
    if np.any(t <= 0):
        raise InputError(f"time-activity curve: times after administration must be > 0 h, "
                         f"got {t.tolist()}")
    if np.any(y < 0):
        raise InputError(f"time-activity curve: negative activity {y.tolist()} MBq")
    order = np.argsort(t)
    t, y = t[order], y[order]
    if np.any(np.diff(t) <= 0):
        raise InputError(f"time-activity curve: two time points at the same time {t.tolist()}")
    return t, y


def _fit_mono(t: np.ndarray, y: np.ndarray, lam_phys: float) -> tuple[dict[str, float], float]:
    from scipy.optimize import least_squares

    pos = y > 0
    if pos.sum() >= 2:
        slope = np.polyfit(t[pos], np.log(y[pos]), 1)[0]
        lam0 = max(-slope, lam_phys * 1.0001)
    else:
        lam0 = lam_phys * 1.5
    a00 = float(np.max(y * np.exp(lam0 * t)))
    w = 1.0 / np.maximum(y, 1e-9 * max(y.max(), 1e-12))

    def res(p: np.ndarray) -> np.ndarray:
        return (p[0] * np.exp(-(lam_phys + p[1]) * t) - y) * w

    best = None
    for start in (lam0 - lam_phys, (lam0 - lam_phys) * 3 + 1e-4, 1e-6):
        r = least_squares(res, [a00 if start == lam0 - lam_phys else float(y[0]),
                                max(start, 0.0)], bounds=([0.0, 0.0], [np.inf, 50.0]),
                          x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=4000)
        if best is None or r.cost < best.cost:
            best = r
    a0, dl = (float(v) for v in best.x)
    lam = lam_phys + dl
    return {"a0_mbq": a0, "lambda_per_h": lam,
            "effective_half_life_h": math.log(2.0) / lam}, float(best.cost)


def _fit_bi(t: np.ndarray, y: np.ndarray, lam_phys: float
            ) -> tuple[dict[str, float], float] | None:
    from scipy.optimize import least_squares

    w = 1.0 / np.maximum(y, 1e-9 * max(y.max(), 1e-12))

    def model(p: np.ndarray) -> np.ndarray:
        l1 = lam_phys + p[1]
        l2 = l1 + p[2]
        return p[0] * (np.exp(-l1 * t) - np.exp(-l2 * t))

    def res(p: np.ndarray) -> np.ndarray:
        return (model(p) - y) * w

    # Starts: washout from the late points, uptake from fast to slow.
    late = t >= np.median(t)
    pos = late & (y > 0)
    slope = np.polyfit(t[pos], np.log(y[pos]), 1)[0] if pos.sum() >= 2 else -2 * lam_phys
    l1 = max(-slope, lam_phys * 1.0001)
    best = None
    for k_up in (0.05, 0.2, 0.7, 2.0, 6.0):
        l2 = l1 + k_up
        a0 = float(np.max(y / np.maximum(np.exp(-l1 * t) - np.exp(-l2 * t), 1e-12)))
        for a_start in (a0, float(y.max()) * 1.2):
            try:
                r = least_squares(res, [a_start, l1 - lam_phys, k_up],
                                  bounds=([0.0, 0.0, 1e-6], [np.inf, 50.0, 200.0]),
                                  x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14,
                                  max_nfev=6000)
            except ValueError:
                continue
            if best is None or r.cost < best.cost:
                best = r
    if best is None:
        return None
    a0, d1, d2 = (float(v) for v in best.x)
    lw = lam_phys + d1
    lu = lw + d2
    return {"a0_mbq": a0, "lambda_washout_per_h": lw, "lambda_uptake_per_h": lu,
            "effective_half_life_h": math.log(2.0) / lw}, float(best.cost)


def _aic(cost: float, n: int, k: int, corrected: bool) -> float:
    """AIC (or AICc) from the least-squares cost = ½·SS of relative residuals."""
    ss = max(2.0 * cost, 1e-24 * n)
    aic = n * math.log(ss / n) + 2 * k
    if corrected:
        return aic + 2 * k * (k + 1) / (n - k - 1)
    return aic


def hanscheid_tia(time_h: float, activity_mbq: float) -> float:
    """Ã ≈ A(t)·2t/ln 2 (Hänscheid et al., J Nucl Med 2018;59:75–81), MBq·h.

    >>> round(hanscheid_tia(96.0, 10.0), 3)
    2769.974
    """
    return activity_mbq * 2.0 * time_h / math.log(2.0)


def fit_tac(times_h: Sequence[float], activities_mbq: Sequence[float], *,
            physical_half_life_h: float, model: str = "auto",
            trapezoid_start: str = "zero", hanscheid_time_h: float | None = None) -> TacFit:
    """Fit a time–activity curve and integrate it (see the module docstring).

    ``model`` is one of :data:`MODELS`. Fewer than two time points for a fit (or three for
    ``bi-exp``) raises :class:`InputError` naming the count; ``hanscheid`` takes the point
    nearest to ``hanscheid_time_h`` (default: the one nearest 96 h).

    Example:
        >>> f = fit_tac([4, 24, 96, 168], [50 * np.exp(-0.02 * t) for t in (4, 24, 96, 168)],
        ...             physical_half_life_h=159.5, model="mono-exp")
        >>> round(f.tia_mbq_h, 1), f.model
        (2500.0, 'mono-exp')
    """
    if model not in MODELS:
        raise InputError(f"fit model must be one of {', '.join(MODELS)}, got {model!r}")
    if not physical_half_life_h > 0:
        raise InputError(f"physical half-life must be positive, got {physical_half_life_h}")
    if trapezoid_start not in ("zero", "constant"):
        raise InputError(f"trapezoid start must be 'zero' or 'constant', got {trapezoid_start!r}")
    t, y = _check(times_h, activities_mbq)
    lam_phys = math.log(2.0) / physical_half_life_h
    n = t.size
    ty = (tuple(float(v) for v in t), tuple(float(v) for v in y))
    if model == "hanscheid":
        if n < 1:
            raise InputError("single-time-point (Hänscheid) method: no time point")
        target = 96.0 if hanscheid_time_h is None else hanscheid_time_h
        i = int(np.argmin(np.abs(t - target)))
        tia = hanscheid_tia(float(t[i]), float(y[i]))
        return TacFit("hanscheid", {"time_h": float(t[i]), "activity_mbq": float(y[i])},
                      None, tia, *ty, lam_phys,
                      f"single time point at {t[i]:g} h (Hänscheid 2018)")
    if n < 2:
        raise InputError(f"a time-activity fit needs at least 2 time points, got {n}; "
                         "use --fit hanscheid for a single time point")
    if model == "trapezoid":
        a0 = float(y[0]) if trapezoid_start == "constant" else 0.0
        xs, vs = np.concatenate([[0.0], t]), np.concatenate([[a0], y])
        area = float(np.sum((vs[1:] + vs[:-1]) * np.diff(xs) / 2.0))
        tail = float(y[-1]) / lam_phys
        params = {"start_constant": 1.0 if trapezoid_start == "constant" else 0.0,
                  "area_measured_mbq_h": area, "tail_mbq_h": tail}
        return TacFit("trapezoid", params, None, area + tail, *ty, lam_phys,
                      f"trapezoid from A(0) = {'A(t1)' if a0 else '0'}, physical-decay tail")
    if model == "bi-exp" and n < 3:
        raise InputError(f"a bi-exponential fit needs at least 3 time points, got {n}")
    if model == "bi-exp-clearance" and n < 4:
        raise InputError(f"a two-phase clearance fit needs at least 4 time points, got {n}")

    fits: dict[str, tuple[dict[str, float], float, int]] = {}
    if model in ("auto", "mono-exp", "bi-exp-clearance"):
        p, c = _fit_mono(t, y, lam_phys)
        fits["mono-exp"] = (p, c, 2)
    if model in ("auto", "bi-exp") and n >= 3:
        got = _fit_bi(t, y, lam_phys)
        if got is not None:
            fits["bi-exp"] = (got[0], got[1], 3)
        elif model == "bi-exp":
            raise InputError("bi-exponential fit did not converge")
    # one criterion for all candidates: AICc only when every model leaves n − k − 1 > 0
    corrected = all(n - k - 1 > 0 for (_, _, k) in fits.values())
    kind = "AICc" if corrected else "AIC"
    scores = {name: _aic(c, n, k, corrected) for name, (_, c, k) in fits.items()}
    candidates: dict[str, dict[str, float | None]] = {}
    for name, (p, _, _) in fits.items():
        pred = _curve(name, p, t)
        candidates[name] = {kind.lower(): round(scores[name], 4), "r2": _r2(y, pred)}
    if model in ("mono-exp", "bi-exp", "bi-exp-clearance"):
        chosen, why = ("mono-exp" if model == "bi-exp-clearance" else model), "requested"
    elif "bi-exp" in fits and scores["bi-exp"] < scores["mono-exp"] - 2.0:
        chosen = "bi-exp"
        why = f"lowest {kind} ({scores['bi-exp']:.2f} vs mono-exp {scores['mono-exp']:.2f})"
    else:
        chosen = "mono-exp"
        why = ("only model with enough points" if "bi-exp" not in fits
               else f"bi-exp not better by Δ{kind} > 2 ({scores['bi-exp']:.2f} vs "
                    f"{scores['mono-exp']:.2f})")
    if model in ("auto", "bi-exp-clearance") and n >= 4 and (
            model == "bi-exp-clearance" or _max_rel(y, _curve(chosen, fits[chosen][0], t))
            > _POOR_FIT_REL):
        got = _fit_clearance(t, y, lam_phys)
        if got is None and model == "bi-exp-clearance":
            raise InputError("two-phase clearance fit did not converge")
        if got is not None:
            pred = _curve("bi-exp-clearance", got[0], t)
            candidates["bi-exp-clearance"] = {"r2": _r2(y, pred),
                                              "max_rel_residual": _max_rel(y, pred)}
            worst = _max_rel(y, _curve(chosen, fits[chosen][0], t)) if fits else None
            if model == "bi-exp-clearance":
                fits["bi-exp-clearance"] = (got[0], got[1], 4)
                chosen, why = "bi-exp-clearance", "requested"
            elif _max_rel(y, pred) <= _POOR_FIT_REL:
                fits["bi-exp-clearance"] = (got[0], got[1], 4)
                why = (f"{chosen} misses a point by {100 * (worst or 0):.1f} % (> "
                       f"{100 * _POOR_FIT_REL:g} %); two-phase clearance fits all within "
                       f"{100 * _max_rel(y, pred):.2f} %")
                chosen = "bi-exp-clearance"
    p = fits[chosen][0]
    return TacFit(chosen, p, _r2(y, _curve(chosen, p, t)), _tia(chosen, p), *ty, lam_phys,
                  why, candidates)


def _tia(name: str, p: dict[str, float]) -> float:
    if name == "mono-exp":
        return float(p["a0_mbq"] / p["lambda_per_h"])
    if name == "bi-exp":
        return float(p["a0_mbq"] * (1.0 / p["lambda_washout_per_h"]
                                    - 1.0 / p["lambda_uptake_per_h"]))
    return float(p["a1_mbq"] / p["lambda_1_per_h"] + p["a2_mbq"] / p["lambda_2_per_h"])


def _max_rel(y: np.ndarray, pred: np.ndarray) -> float:
    scale = np.maximum(np.abs(y), 1e-12 * max(float(np.abs(y).max()), 1e-12))
    return float(np.max(np.abs(pred - y) / scale))


def _fit_clearance(t: np.ndarray, y: np.ndarray, lam_phys: float
                   ) -> tuple[dict[str, float], float] | None:
    """A₁e^(−λ₁t) + A₂e^(−λ₂t), λ₂ = λ₁ + δ (slow phase first), λ₁ ≥ λ_phys, A ≥ 0."""
    from scipy.optimize import least_squares

    w = 1.0 / np.maximum(y, 1e-9 * max(y.max(), 1e-12))

    def model(q: np.ndarray) -> np.ndarray:
        l1 = lam_phys + q[1]
        return q[0] * np.exp(-l1 * t) + q[2] * np.exp(-(l1 + q[3]) * t)

    def res(q: np.ndarray) -> np.ndarray:
        return (model(q) - y) * w

    # peeling: slow phase from the last two points, fast phase from what the first lacks
    pos = y > 0
    if pos.sum() < 2:
        return None
    tl, yl = t[pos][-2:], y[pos][-2:]
    l_slow = max(float(np.log(yl[0] / yl[1]) / (tl[1] - tl[0])) if yl[1] > 0 else 0.0,
                 lam_phys * 1.0001)
    a_slow = float(yl[1] * np.exp(l_slow * tl[1]))
    best = None
    for l_fast in (l_slow * 3, l_slow * 10, 0.3, 1.0):
        rest = max(float(y[0] - a_slow * np.exp(-l_slow * t[0])), 1e-6 * float(y.max()))
        a_fast = rest * np.exp(l_fast * t[0])
        try:
            r = least_squares(res, [a_slow, l_slow - lam_phys, a_fast,
                                    max(l_fast - l_slow, 1e-4)],
                              bounds=([0.0, 0.0, 0.0, 1e-6], [np.inf, 50.0, np.inf, 200.0]),
                              x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14,
                              max_nfev=8000)
        except ValueError:
            continue
        if best is None or r.cost < best.cost:
            best = r
    if best is None:
        return None
    a1, d1, a2, d2 = (float(v) for v in best.x)
    l1 = lam_phys + d1
    return {"a1_mbq": a1, "lambda_1_per_h": l1, "a2_mbq": a2, "lambda_2_per_h": l1 + d2,
            "effective_half_life_h": math.log(2.0) / l1}, float(best.cost)


def _curve(name: str, p: dict[str, float], t: np.ndarray) -> np.ndarray:
    if name == "mono-exp":
        return p["a0_mbq"] * np.exp(-p["lambda_per_h"] * t)
    if name == "bi-exp-clearance":
        return (p["a1_mbq"] * np.exp(-p["lambda_1_per_h"] * t)
                + p["a2_mbq"] * np.exp(-p["lambda_2_per_h"] * t))
    return p["a0_mbq"] * (np.exp(-p["lambda_washout_per_h"] * t)
                          - np.exp(-p["lambda_uptake_per_h"] * t))


def fit_from_json(fit: dict[str, Any], times_h: Sequence[float],
                  activities_mbq: Sequence[float], physical_half_life_h: float) -> TacFit:
    """Rebuild a :class:`TacFit` from its :meth:`TacFit.to_json` (for plots of stored runs)."""
    return TacFit(str(fit["model"]), {k: float(v) for k, v in fit["parameters"].items()},
                  fit.get("r2"), float("nan"), tuple(float(t) for t in times_h),
                  tuple(float(a) for a in activities_mbq),
                  math.log(2.0) / physical_half_life_h, str(fit.get("choice", "")))
