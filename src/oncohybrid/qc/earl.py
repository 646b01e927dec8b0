"""EARL recovery-coefficient bands for the NEMA NU 2 / IEC body phantom (issue #20).

EARL1 ("EARL FDG-PET/CT accreditation", the bands of the EANM FDG PET/CT procedure
guideline v2.0): Boellaard R, Delgado-Bolton R, Oyen WJG, et al. FDG PET/CT: EANM procedure
guidelines for tumour imaging: version 2.0. Eur J Nucl Med Mol Imaging 2015;42:328–354,
Table 8 (RCmax and RCmean(A50) per sphere; 10:1 sphere-to-background ratio).

EARL2 (the 2019 EARL specification for state-of-the-art PSF/TOF systems): Kaalep A, Sera T,
Rijnsdorp S, et al. Feasibility of state of the art PET/CT systems performance
harmonisation. Eur J Nucl Med Mol Imaging 2018;45:1344–1361, Table 3 (proposed RCmax,
RCmean; RCpeak from the same work).

The band values below are those quoted in the project's PET quantification notes
(``shared/docs/pet-quantification.md`` §3.5), which mark them *recalled — verify against
the EARL specification sheets*: a physicist should confirm them against the current EARL
documents before accreditation use (see docs/qc.md).

Compliance (EARL accreditation): every sphere's RCmax **and** RCmean inside the band
(inclusive). EARL2 RCpeak bands are checked and reported separately (``rcpeak_ok``); EARL
accreditation decisions rest on RCmax and RCmean.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from oncohybrid.errors import InputError

__all__ = ["BANDS", "Band", "EarlStandard", "band_check"]


class EarlStandard(StrEnum):
    EARL1 = "earl1"
    EARL2 = "earl2"


@dataclass(frozen=True)
class Band:
    """Inclusive acceptance interval of one recovery coefficient."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _b(lo: float, hi: float) -> Band:
    return Band(lo, hi)


#: BANDS[standard][metric][sphere diameter mm] -> Band; metrics "rc_max", "rc_mean",
#: "rc_peak" (EARL2 only). Sources in the module docstring.
BANDS: dict[EarlStandard, dict[str, dict[float, Band]]] = {
    EarlStandard.EARL1: {
        "rc_max": {37.0: _b(0.95, 1.16), 28.0: _b(0.91, 1.13), 22.0: _b(0.83, 1.09),
                   17.0: _b(0.73, 1.01), 13.0: _b(0.59, 0.85), 10.0: _b(0.34, 0.57)},
        "rc_mean": {37.0: _b(0.76, 0.89), 28.0: _b(0.72, 0.85), 22.0: _b(0.63, 0.78),
                    17.0: _b(0.57, 0.73), 13.0: _b(0.44, 0.60), 10.0: _b(0.27, 0.43)},
    },
    EarlStandard.EARL2: {
        "rc_max": {37.0: _b(1.05, 1.29), 28.0: _b(1.01, 1.26), 22.0: _b(1.01, 1.32),
                   17.0: _b(1.00, 1.38), 13.0: _b(0.85, 1.22), 10.0: _b(0.52, 0.88)},
        "rc_mean": {37.0: _b(0.85, 1.00), 28.0: _b(0.82, 0.97), 22.0: _b(0.80, 0.99),
                    17.0: _b(0.76, 0.97), 13.0: _b(0.63, 0.86), 10.0: _b(0.39, 0.61)},
        "rc_peak": {37.0: _b(0.99, 1.07), 28.0: _b(0.95, 1.07), 22.0: _b(0.90, 1.09),
                    17.0: _b(0.75, 0.99), 13.0: _b(0.45, 0.60), 10.0: _b(0.27, 0.38)},
    },
}

#: Metrics that decide compliance (EARL accreditation: RCmax and RCmean).
COMPLIANCE_METRICS: tuple[str, ...] = ("rc_max", "rc_mean")


def band_check(standard: EarlStandard | str, metric: str, diameter_mm: float,
               value: float) -> bool:
    """Whether ``value`` of ``metric`` for the sphere of ``diameter_mm`` is in the band.

    >>> band_check("earl1", "rc_max", 37, 1.0), band_check("earl2", "rc_max", 37, 1.0)
    (True, False)
    """
    std = EarlStandard(standard)
    try:
        band = BANDS[std][metric][float(diameter_mm)]
    except KeyError:
        raise InputError(f"no {std.value} band for {metric} of a {diameter_mm} mm sphere") \
            from None
    return band.contains(value)
