"""Shear-wave elastography (SWE) of breast lesions: Young's modulus from shear-wave speed,
Emax, Emean and the lesion-to-fat ratio.

Soft tissue is taken as incompressible, isotropic and purely elastic, so Young's modulus
is ``E = 3 ρ c²`` with the shear-wave speed ``c`` and ``ρ = 1000 kg/m³`` (Bercoff J,
Tanter M, Fink M. Supersonic shear imaging. IEEE Trans Ultrason Ferroelectr Freq Control
2004;51:396-409; Barr RG et al. WFUMB guidelines and recommendations for clinical use of
ultrasound elastography: part 2: breast. Ultrasound Med Biol 2015;41:1148-1160). So
1 m/s ↔ 3 kPa and 5 m/s ↔ 75 kPa.

Measurements are converted one by one into the unit asked for before they are averaged:
the mean of the moduli is not ``3 ρ`` times the square of the mean speed.
Emax is the largest lesion value, Emean the mean of the lesion values and the
lesion-to-fat ratio the lesion Emean over the mean of the fat reference values (the
"Q-box ratio" of the WFUMB guideline).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from oncohybrid.errors import InputError

__all__ = ["DENSITY_KG_M3", "SWEResult", "kpa_from_speed", "speed_from_kpa", "swe_summary"]

#: Tissue density used by the scanners' SWE conversion.
DENSITY_KG_M3 = 1000.0
#: Plausible upper bounds (no scanner displays more than 300 kPa, i.e. 10 m/s).
MAX_KPA = 300.0
MAX_SPEED_M_S = 10.0


def kpa_from_speed(speed_m_s: float, density_kg_m3: float = DENSITY_KG_M3) -> float:
    """Young's modulus in kPa from the shear-wave speed in m/s.

    >>> kpa_from_speed(5.0)
    75.0
    """
    return 3.0 * density_kg_m3 * speed_m_s**2 / 1000.0


def speed_from_kpa(modulus_kpa: float, density_kg_m3: float = DENSITY_KG_M3) -> float:
    """Shear-wave speed in m/s from Young's modulus in kPa.

    >>> speed_from_kpa(75.0)
    5.0
    """
    return math.sqrt(modulus_kpa * 1000.0 / (3.0 * density_kg_m3))


@dataclass(frozen=True)
class SWEResult:
    emax_kpa: float
    emean_kpa: float
    emax_m_s: float
    emean_m_s: float
    fat_mean_kpa: float | None
    lesion_to_fat_ratio: float | None
    n_lesion: int
    n_fat: int

    def as_dict(self) -> dict[str, object]:
        return {"emax_kpa": self.emax_kpa, "emean_kpa": self.emean_kpa,
                "emax_m_s": self.emax_m_s, "emean_m_s": self.emean_m_s,
                "fat_mean_kpa": self.fat_mean_kpa,
                "lesion_to_fat_ratio": self.lesion_to_fat_ratio,
                "n_lesion": self.n_lesion, "n_fat": self.n_fat}


def _to_kpa(values: Sequence[object], unit: str, where: str) -> list[float]:
    out = []
    for i, v in enumerate(values):
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError(f"{where}[{i}]: {v!r} is not a number") from None
        if not math.isfinite(x) or x <= 0:
            raise InputError(f"{where}[{i}]: {v!r} must be a positive number")
        if unit == "m/s":
            if x > MAX_SPEED_M_S:
                raise InputError(f"{where}[{i}]: {x} m/s exceeds {MAX_SPEED_M_S} m/s "
                                 "(was the value entered in kPa?)")
            x = kpa_from_speed(x)
        elif x > MAX_KPA:
            raise InputError(f"{where}[{i}]: {x} kPa exceeds {MAX_KPA} kPa")
        out.append(x)
    return out


def swe_summary(lesion: Sequence[object], fat: Sequence[object] = (), unit: str = "kPa",
                where: str = "elastography") -> SWEResult:
    """Emax, Emean (kPa and m/s) and the lesion-to-fat ratio of SWE measurements.

    >>> r = swe_summary([4.0, 6.0], fat=[1.0], unit="m/s")
    >>> r.emax_kpa, r.emean_kpa, r.lesion_to_fat_ratio
    (108.0, 78.0, 26.0)
    """
    if unit not in ("kPa", "m/s"):
        raise InputError(f"{where}.unit: {unit!r} is not kPa or m/s")
    if not lesion:
        raise InputError(f"{where}.lesion: at least one lesion measurement is needed")
    les = _to_kpa(lesion, unit, f"{where}.lesion")
    fat_kpa = _to_kpa(fat, unit, f"{where}.fat")
    emax, emean = max(les), sum(les) / len(les)
    fat_mean = sum(fat_kpa) / len(fat_kpa) if fat_kpa else None
    return SWEResult(emax_kpa=emax, emean_kpa=emean, emax_m_s=speed_from_kpa(emax),
                     emean_m_s=speed_from_kpa(emean), fat_mean_kpa=fat_mean,
                     lesion_to_fat_ratio=emean / fat_mean if fat_mean else None,
                     n_lesion=len(les), n_fat=len(fat_kpa))
