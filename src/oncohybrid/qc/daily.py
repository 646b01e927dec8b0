"""Daily QC log: measurements checked against tolerances (issue #20).

Default tolerances (a department sets its own with ``--tolerance NAME=LO:HI``):

- ``calibration_ratio`` (PET daily check source / cylinder vs dose calibrator):
  0.90–1.10, the EARL calibration QC tolerance (Boellaard et al. EJNMMI 2015).
- ``uniformity_cov_pct``: 0–15 %, EARL image-noise limit for the background COV.
- ``detector_efficiency_ratio`` (vendor daily QC, relative to the reference): 0.95–1.05.
- ``ct_water_hu`` (CT of the PET-CT, water): −4 to +4 HU (IEC 61223-3-5 constancy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from oncohybrid.errors import InputError

__all__ = ["DEFAULT_TOLERANCES", "DailyCheck", "evaluate", "parse_tolerance"]

DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "calibration_ratio": (0.90, 1.10),
    "uniformity_cov_pct": (0.0, 15.0),
    "detector_efficiency_ratio": (0.95, 1.05),
    "ct_water_hu": (-4.0, 4.0),
}


@dataclass(frozen=True)
class DailyCheck:
    name: str
    value: float
    low: float
    high: float

    @property
    def passed(self) -> bool:
        return self.low <= self.value <= self.high

    def sentence(self) -> str:
        return f"{self.name} {self.value:g} outside {self.low:g}–{self.high:g}"


def parse_tolerance(text: str) -> tuple[str, tuple[float, float]]:
    """``NAME=LO:HI`` -> (name, (lo, hi)).

    >>> parse_tolerance("calibration_ratio=0.95:1.05")
    ('calibration_ratio', (0.95, 1.05))
    """
    try:
        name, rng = text.split("=", 1)
        lo_s, hi_s = rng.split(":", 1)
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        raise InputError(f"--tolerance {text!r}: expected NAME=LOW:HIGH") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise InputError(f"--tolerance {text!r}: LOW must not exceed HIGH")
    return name.strip(), (lo, hi)


def evaluate(measures: Mapping[str, float],
             tolerances: Mapping[str, tuple[float, float]] | None = None) -> list[DailyCheck]:
    """Check each measure against its tolerance (given ones first, then the defaults);
    a measure without any tolerance is an error, so nothing is logged unchecked."""
    tol = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    if not measures:
        raise InputError("no measurement given (--measure NAME=VALUE)")
    out = []
    for name, value in measures.items():
        if name not in tol:
            raise InputError(f"measure {name!r} has no tolerance: give --tolerance "
                             f"{name}=LOW:HIGH (defaults exist for "
                             f"{', '.join(sorted(DEFAULT_TOLERANCES))})")
        if not math.isfinite(value):
            raise InputError(f"measure {name!r}: value {value} is not a finite number")
        lo, hi = tol[name]
        out.append(DailyCheck(name, float(value), lo, hi))
    return out
