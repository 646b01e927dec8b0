"""Dual-energy CT: two-material (water/iodine) decomposition from a phantom calibration.

Image-based two-material decomposition of registered low- and high-kV CT images
(Johnson TRC et al., *Material differentiation by dual energy CT: initial experience*,
Eur Radiol 2007;17:1510-1517; McCollough CH, Leng S, Yu L, Fletcher JG, *Dual- and
multi-energy CT: principles, technical approaches, and clinical applications*, Radiology
2015;276:637-653, "Material decomposition").

Model. In each voxel the linear attenuation relative to water at tube spectrum ``k``
(``1 + HU_k / 1000``) is a sum of two basis materials: water-equivalent matter of density
``w`` (g/ml; 1 for water) and iodine of concentration ``c`` (mg/ml)::

    1000 + HU_k = A_k · w + S_k · c          k ∈ {low, high}

``A_k`` (HU+1000 of unit-density water) and ``S_k`` (HU per mg/ml iodine) form the 2×2
basis matrix ``[[A_low, S_low], [A_high, S_high]]``. They are measured, not assumed: on a
phantom with iodine inserts of known concentration in water (``w = 1``), each spectrum's
insert means are fitted by least squares to ``A_k + S_k · c``
(:func:`calibrate`). Solving the 2×2 system per voxel (:func:`decompose`) gives

- the iodine density map ``c`` (mg/ml);
- the virtual non-contrast image ``VNC = 1000 · (w − 1)`` (HU of the water-equivalent part);
- a virtual monoenergetic image at ``E`` keV from the same basis and the NIST mass
  attenuation coefficients of water and iodine (Hubbell JH, Seltzer SM, NIST Standard
  Reference Database 126, 1996/2004): ``VMI_E = 1000 · (w − 1) + c · (μ/ρ)_I(E) /
  (μ/ρ)_water(E)`` (the iodine volume displacing water is neglected, < 0.3 % at 20 mg/ml).

In lesion VOIs: iodine mean (mg/ml), normalised iodine concentration ``NIC = c_lesion /
c_aorta`` (the aorta at the same phase), and the dual-energy ratio ``DER = HU_low / HU_high``
of the VOI means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DectCalibration",
    "Decomposition",
    "IodineVoiStats",
    "VMI_KEV_RANGE",
    "calibrate",
    "decompose",
    "dual_energy_ratio",
    "iodine_hu_per_mg_ml",
    "mass_attenuation_cm2_g",
    "normalised_iodine_concentration",
    "virtual_monoenergetic",
    "voi_stats",
]

# NIST XCOM / SRD 126 mass attenuation coefficients μ/ρ (cm²/g), total with coherent
# scattering, above the iodine K edge (33.17 keV).
_ENERGY_KEV = np.array([40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
_MU_RHO_WATER = np.array([0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505])
_MU_RHO_IODINE = np.array([22.10, 12.32, 7.583, 3.510, 1.942, 0.6978])

#: Energies (keV) for which virtual monoenergetic images are computed (table range).
VMI_KEV_RANGE = (40.0, 150.0)


def mass_attenuation_cm2_g(material: str, energy_kev: float) -> float:
    """μ/ρ (cm²/g) of ``"water"`` or ``"iodine"`` at ``energy_kev`` (40-150 keV), log-log
    interpolation of the NIST table (Hubbell & Seltzer, NIST SRD 126).

    Example:
        >>> round(mass_attenuation_cm2_g("iodine", 60.0), 3)
        7.583
    """
    table = {"water": _MU_RHO_WATER, "iodine": _MU_RHO_IODINE}.get(material)
    if table is None:
        raise ValueError(f"material must be 'water' or 'iodine', got {material!r}")
    e = float(energy_kev)
    if not VMI_KEV_RANGE[0] <= e <= VMI_KEV_RANGE[1]:
        raise ValueError(f"energy must be within {VMI_KEV_RANGE[0]:g}-{VMI_KEV_RANGE[1]:g} keV,"
                         f" got {e:g}")
    return float(np.exp(np.interp(np.log(e), np.log(_ENERGY_KEV), np.log(table))))


def iodine_hu_per_mg_ml(energy_kev: float) -> float:
    """HU added by 1 mg/ml iodine in water at a monoenergetic ``energy_kev``:
    ``(μ/ρ)_I / (μ/ρ)_water`` (1 mg/ml = 10⁻³ g/ml, × 1000 HU).

    Example:
        >>> round(iodine_hu_per_mg_ml(70.0), 1)
        25.9
    """
    return mass_attenuation_cm2_g("iodine", energy_kev) / mass_attenuation_cm2_g(
        "water", energy_kev)


@dataclass(frozen=True)
class DectCalibration:
    """The calibrated basis: ``1000 + HU_k = water_k · w + iodine_k · c`` for k = low, high.

    ``kvp_low``/``kvp_high`` (and the tin filter flags) name the spectra it was measured at;
    applying it to other spectra is refused by the service. ``residual_hu`` is the RMS
    residual of the insert fit per spectrum.
    """

    kvp_low: float
    kvp_high: float
    water_low: float
    water_high: float
    iodine_low_hu_per_mg_ml: float
    iodine_high_hu_per_mg_ml: float
    tin_low: bool = False
    tin_high: bool = False
    n_inserts: int = 0
    residual_low_hu: float = 0.0
    residual_high_hu: float = 0.0

    def __post_init__(self) -> None:
        if not self.kvp_low < self.kvp_high and not (self.kvp_low == self.kvp_high
                                                      and self.tin_high and not self.tin_low):
            raise ValueError(f"kvp_low ({self.kvp_low:g}) must be below kvp_high "
                             f"({self.kvp_high:g})")
        det = (self.water_low * self.iodine_high_hu_per_mg_ml
               - self.water_high * self.iodine_low_hu_per_mg_ml)
        if not np.isfinite(det) or abs(det) < 1e-6 * abs(self.water_low * self.water_high):
            raise ValueError("the basis matrix is singular: the iodine contrast is the same "
                             "at both spectra")
        if self.iodine_low_hu_per_mg_ml <= self.iodine_high_hu_per_mg_ml:
            raise ValueError("iodine must attenuate more at the low-kV spectrum "
                             f"({self.iodine_low_hu_per_mg_ml:.3g} ≤ "
                             f"{self.iodine_high_hu_per_mg_ml:.3g} HU per mg/ml)")

    @property
    def basis(self) -> np.ndarray:
        """2×2 basis matrix, rows (low, high), columns (water g/ml, iodine mg/ml)."""
        return np.array([[self.water_low, self.iodine_low_hu_per_mg_ml],
                         [self.water_high, self.iodine_high_hu_per_mg_ml]])

    def to_json(self) -> dict[str, object]:
        return {
            "model": "1000 + HU_k = water_k * w + iodine_k * c",
            "kvp_low": self.kvp_low, "kvp_high": self.kvp_high,
            "tin_low": self.tin_low, "tin_high": self.tin_high,
            "water_low": self.water_low, "water_high": self.water_high,
            "iodine_low_hu_per_mg_ml": self.iodine_low_hu_per_mg_ml,
            "iodine_high_hu_per_mg_ml": self.iodine_high_hu_per_mg_ml,
            "n_inserts": self.n_inserts,
            "residual_low_hu": self.residual_low_hu,
            "residual_high_hu": self.residual_high_hu,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> DectCalibration:
        """Inverse of :meth:`to_json`; raises ``KeyError``/``ValueError``/``TypeError``."""
        def num(key: str) -> float:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number, got {value!r}")
            return float(value)

        return cls(
            kvp_low=num("kvp_low"), kvp_high=num("kvp_high"),
            water_low=num("water_low"), water_high=num("water_high"),
            iodine_low_hu_per_mg_ml=num("iodine_low_hu_per_mg_ml"),
            iodine_high_hu_per_mg_ml=num("iodine_high_hu_per_mg_ml"),
            tin_low=bool(data.get("tin_low", False)), tin_high=bool(data.get("tin_high", False)),
            n_inserts=int(data.get("n_inserts", 0)),  # type: ignore[call-overload]
            residual_low_hu=float(data.get("residual_low_hu", 0.0)),  # type: ignore[arg-type]
            residual_high_hu=float(data.get("residual_high_hu", 0.0)),  # type: ignore[arg-type]
        )


def calibrate(hu_low: Sequence[float], hu_high: Sequence[float],
              iodine_mg_ml: Sequence[float], *, kvp_low: float, kvp_high: float,
              tin_low: bool = False, tin_high: bool = False) -> DectCalibration:
    """Fit the basis from insert means: per spectrum, least squares of ``1000 + HU`` on
    ``[1, c]`` over the inserts (iodine in water, ``w = 1``); at least two distinct
    concentrations are needed.

    Example:
        >>> cal = calibrate([0, 195, 390], [0, 75, 150], [0, 5, 10], kvp_low=80, kvp_high=150)
        >>> round(cal.iodine_low_hu_per_mg_ml, 6), round(cal.water_high, 6)
        (39.0, 1000.0)
    """
    lo = np.asarray(hu_low, dtype=np.float64)
    hi = np.asarray(hu_high, dtype=np.float64)
    c = np.asarray(iodine_mg_ml, dtype=np.float64)
    if not lo.shape == hi.shape == c.shape or lo.ndim != 1:
        raise ValueError("hu_low, hu_high and iodine_mg_ml must be 1-D of one length")
    if np.unique(c).size < 2:
        raise ValueError("calibration needs inserts of at least two iodine concentrations")
    design = np.column_stack([np.ones_like(c), c])
    coef_lo, *_ = np.linalg.lstsq(design, 1000.0 + lo, rcond=None)
    coef_hi, *_ = np.linalg.lstsq(design, 1000.0 + hi, rcond=None)
    res_lo = float(np.sqrt(np.mean((design @ coef_lo - 1000.0 - lo) ** 2)))
    res_hi = float(np.sqrt(np.mean((design @ coef_hi - 1000.0 - hi) ** 2)))
    return DectCalibration(
        kvp_low=float(kvp_low), kvp_high=float(kvp_high), tin_low=tin_low, tin_high=tin_high,
        water_low=float(coef_lo[0]), water_high=float(coef_hi[0]),
        iodine_low_hu_per_mg_ml=float(coef_lo[1]), iodine_high_hu_per_mg_ml=float(coef_hi[1]),
        n_inserts=int(c.size), residual_low_hu=res_lo, residual_high_hu=res_hi)


@dataclass(frozen=True)
class Decomposition:
    """Per-voxel basis images: water-equivalent density ``w`` (g/ml) and iodine (mg/ml)."""

    water_g_ml: np.ndarray
    iodine_mg_ml: np.ndarray

    @property
    def vnc_hu(self) -> np.ndarray:
        """Virtual non-contrast image (HU): ``1000 · (w − 1)``."""
        return 1000.0 * (self.water_g_ml - 1.0)


def decompose(hu_low: np.ndarray, hu_high: np.ndarray,
              calibration: DectCalibration) -> Decomposition:
    """Solve the 2×2 system per voxel (Cramer's rule on the calibrated basis).

    Example:
        >>> cal = calibrate([0, 195, 390], [0, 75, 150], [0, 5, 10], kvp_low=80, kvp_high=150)
        >>> d = decompose(np.array([40 + 39 * 3.0]), np.array([40 + 15 * 3.0]), cal)
        >>> round(float(d.iodine_mg_ml[0]), 6), round(float(d.vnc_hu[0]), 6)
        (3.0, 40.0)
    """
    lo = 1000.0 + np.asarray(hu_low, dtype=np.float64)
    hi = 1000.0 + np.asarray(hu_high, dtype=np.float64)
    if lo.shape != hi.shape:
        raise ValueError(f"low and high kV images differ in shape: {lo.shape} vs {hi.shape}")
    (a, b), (cc, d) = calibration.basis
    det = a * d - b * cc
    water = (d * lo - b * hi) / det
    iodine = (a * hi - cc * lo) / det
    return Decomposition(water_g_ml=water, iodine_mg_ml=iodine)


def virtual_monoenergetic(decomposition: Decomposition, energy_kev: float) -> np.ndarray:
    """Virtual monoenergetic image (HU) at ``energy_kev`` from the basis images."""
    return decomposition.vnc_hu + decomposition.iodine_mg_ml * iodine_hu_per_mg_ml(energy_kev)


def normalised_iodine_concentration(lesion_mg_ml: float, aorta_mg_ml: float) -> float:
    """NIC = lesion iodine / aortic iodine (same phase); NaN when the aorta has none."""
    if not np.isfinite(aorta_mg_ml) or aorta_mg_ml <= 0:
        return float("nan")
    return float(lesion_mg_ml) / float(aorta_mg_ml)


def dual_energy_ratio(hu_low_mean: float, hu_high_mean: float) -> float:
    """DER = HU_low / HU_high of the VOI means; NaN when the high-kV mean is 0."""
    if hu_high_mean == 0:
        return float("nan")
    return float(hu_low_mean) / float(hu_high_mean)


@dataclass(frozen=True)
class IodineVoiStats:
    """Means in one VOI."""

    n_voxels: int
    iodine_mean_mg_ml: float
    iodine_sd_mg_ml: float
    vnc_mean_hu: float
    hu_low_mean: float
    hu_high_mean: float

    @property
    def dual_energy_ratio(self) -> float:
        return dual_energy_ratio(self.hu_low_mean, self.hu_high_mean)


def voi_stats(mask: np.ndarray, hu_low: np.ndarray, hu_high: np.ndarray,
              decomposition: Decomposition) -> IodineVoiStats:
    """Iodine, VNC and per-spectrum HU means in ``mask`` (boolean, image grid)."""
    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n == 0:
        raise ValueError("the VOI holds no voxel")
    io = decomposition.iodine_mg_ml[m]
    return IodineVoiStats(
        n_voxels=n, iodine_mean_mg_ml=float(io.mean()),
        iodine_sd_mg_ml=float(io.std(ddof=1)) if n > 1 else 0.0,
        vnc_mean_hu=float(decomposition.vnc_hu[m].mean()),
        hu_low_mean=float(np.asarray(hu_low)[m].mean()),
        hu_high_mean=float(np.asarray(hu_high)[m].mean()))
