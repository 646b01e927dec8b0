"""Radionuclides of SPECT-CT and radionuclide therapy: half-lives and energy per decay.

Half-lives from the NNDC NuDat 3 / ENSDF evaluations (Tc-99m, In-111, I-123, I-131) and
ICRP Publication 107 (Lu-177, 6.647 d, as tabulated with its decay data in EJNMMI Phys
2020, doi:10.1186/s40658-020-00301-2, Table 1). Mean energies emitted per nuclear
transformation (MeV/decay) follow ICRP 107 as summarised by Falzone N et al., J Nucl Med
2015 (its Table 1 as reproduced in Front Pharmacol 2018;9:996, Table 1):

- ``electron_mev`` = β± + internal-conversion + Auger/Coster–Kronig electrons, the
  *non-penetrating* emissions deposited locally (MIRD Pamphlet 21, Bolch et al., J Nucl
  Med 2009;50:477–484: Δ_np);
- ``photon_mev`` = γ + X-ray energy per decay (*penetrating*).

I-131 (not in Falzone's table) from ICRP 107 directly: β mean 0.1819 MeV with conversion
and Auger electrons 0.1916 MeV in all, photons 0.3816 MeV [V: transcribed, not
re-checked against the ICRP 107 files].

>>> round(LU177.half_life_h, 3)
159.528
>>> round(LU177.decay_factor(24.0), 6)
0.900973
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from oncohybrid.errors import InputError

__all__ = ["I123", "I131", "IN111", "ISOTOPES", "LU177", "TC99M", "Isotope", "find_isotope"]

#: J per MeV (CODATA 2018, exact since the 2019 SI).
J_PER_MEV = 1.602176634e-13


@dataclass(frozen=True)
class Isotope:
    """One radionuclide: ``half_life_h`` (hours), mean energies per decay (MeV), the
    principal imaging photopeaks (keV) and the maximum β energy (MeV; 0 for EC/IT) that
    the voxel S-value kernel uses; ``source`` names the table each value came from."""

    symbol: str
    half_life_h: float
    electron_mev: float
    photon_mev: float
    photopeaks_kev: tuple[float, ...]
    beta_max_mev: float
    source: str
    aliases: tuple[str, ...] = ()

    @property
    def decay_constant_per_h(self) -> float:
        """λ = ln 2 / T½ (1/h)."""
        return math.log(2.0) / self.half_life_h

    def decay_factor(self, hours: float) -> float:
        """Fraction left after ``hours``: exp(−λ t)."""
        return math.exp(-self.decay_constant_per_h * hours)

    def to_json(self) -> dict[str, object]:
        return {"symbol": self.symbol, "half_life_h": round(self.half_life_h, 6),
                "electron_mev_per_decay": self.electron_mev,
                "photon_mev_per_decay": self.photon_mev, "source": self.source}


_FALZONE = ("T½ NNDC NuDat 3; energies ICRP 107 via Falzone JNM 2015 "
            "(Front Pharmacol 2018;9:996 Table 1)")
TC99M = Isotope("Tc-99m", 6.0067, 0.0161, 0.127, (140.5,), 0.0,
                _FALZONE,
                ("99mTc", "Tc99m", "Technetium-99m", "^99m^Technetium"))
IN111 = Isotope("In-111", 2.8047 * 24, 0.0348, 0.386, (171.3, 245.4), 0.0,
                _FALZONE,
                ("111In", "In111", "Indium-111", "^111^Indium"))
I123 = Isotope("I-123", 13.2234, 0.0282, 0.173, (159.0,), 0.0,
               _FALZONE,
               ("123I", "I123", "Iodine-123", "^123^Iodine"))
I131 = Isotope("I-131", 8.0252 * 24, 0.1916, 0.3816, (364.5,), 0.6063,
               "T½ NNDC NuDat 3; energies ICRP 107",
               ("131I", "I131", "Iodine-131", "^131^Iodine"))
LU177 = Isotope("Lu-177", 6.647 * 24, 0.1479, 0.0351, (112.9, 208.4), 0.4983,
                "ICRP 107 (T½ 6.647 d; electrons 147.9 keV, photons 35.1 keV per decay; "
                "EJNMMI Phys 2020, doi:10.1186/s40658-020-00301-2, Table 1)",
                ("177Lu", "Lu177", "Lutetium-177", "^177^Lutetium"))

ISOTOPES: dict[str, Isotope] = {i.symbol: i for i in (TC99M, IN111, I123, I131, LU177)}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


_LOOKUP = {_key(a): iso for iso in ISOTOPES.values() for a in (iso.symbol, *iso.aliases)}


def find_isotope(text: str | None, *, half_life_s: float | None = None) -> Isotope:
    """The isotope named by ``text`` (``Lu-177``, ``177Lu``, ``^177^Lutetium``, a DICOM
    Radionuclide code meaning …) or, failing that, the one whose half-life is within 1 %
    of ``half_life_s`` ((0018,1075) *Radionuclide Half Life*).

    >>> find_isotope("^177^Lutetium").symbol
    'Lu-177'
    """
    if text:
        key = _key(text)
        if key in _LOOKUP:
            return _LOOKUP[key]
        for alias, iso in _LOOKUP.items():
            if alias and alias in key:
                return iso
    if half_life_s:
        for iso in ISOTOPES.values():
            if abs(half_life_s / 3600.0 - iso.half_life_h) <= 0.01 * iso.half_life_h:
                return iso
    raise InputError(
        f"radionuclide {text!r} (half-life {half_life_s!r} s) is not one of "
        f"{', '.join(ISOTOPES)}")
