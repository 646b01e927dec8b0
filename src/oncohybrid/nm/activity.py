"""Activity concentration (Bq/ml) and SUV of a SPECT reconstruction, with provenance.

Two routes, the first that the series allows (recorded in :class:`SpectActivity`):

1. **Vendor quantitative reconstruction**: the pixels are Bq/ml already
   ((0054,1001) ``BQML`` or a Real World Value Mapping in Bq/ml;
   :mod:`oncohybrid.dicom.nm`), referred to the acquisition start as the vendors'
   quantitative SPECT does (e.g. Siemens xSPECT Quant, GE Q.Metrix); a series whose
   (0054,1102) *Decay Correction* is ``ADMIN`` is decayed back to the acquisition start.
2. **Counts × calibration**: C (Bq/ml) = N / (S · T) · 10⁶ / V_voxel · λT/(1 − e^(−λT)),
   with N the reconstructed counts of a voxel, S the system's tomographic sensitivity
   (cps/MBq, measured on a phantom of the same isotope, energy window and
   reconstruction; EANM/MIRD guideline for quantitative ¹⁷⁷Lu SPECT, Ljungberg et al.,
   J Nucl Med 2016;57:151–162, MIRD Pamphlet 26), T the acquisition duration (s) from the
   Rotation Information Sequence and the last factor the physical decay during the
   acquisition, so that C is the concentration at the acquisition start.

SPECT SUV (body weight) = C · weight(g) / (administered activity decayed to the
acquisition start), the same definition as PET SUVbw (PS3.3 C.8.9.1.1.3 *SUV Type* BW);
(0018,1074) *Radionuclide Total Dose* is in MBq for NM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from oncohybrid.dicom.nm import NmSeries
from oncohybrid.errors import InputError
from oncohybrid.nm.isotopes import Isotope, find_isotope

__all__ = ["SpectActivity", "series_isotope", "spect_activity"]


@dataclass(frozen=True)
class SpectActivity:
    """Bq/ml volume (highdicom Volume) at ``reference_time``, SUV factor (g/Bq × …) or
    None with ``suv_reason``, and ``provenance``: one sentence per decision."""

    bq_ml: Any
    isotope: Isotope
    source: str
    sensitivity_cps_mbq: float | None
    acquisition_duration_s: float | None
    decay_during_acquisition: float | None
    reference_time: str | None
    suv_factor: float | None
    suv_reason: str | None
    provenance: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"isotope": self.isotope.symbol, "activity_source": self.source,
                "sensitivity_cps_mbq": self.sensitivity_cps_mbq,
                "acquisition_duration_s": self.acquisition_duration_s,
                "decay_during_acquisition_factor": (
                    None if self.decay_during_acquisition is None
                    else round(self.decay_during_acquisition, 8)),
                "reference_time": self.reference_time,
                "suv_bw_factor_ml_per_bq": self.suv_factor, "suv_unavailable": self.suv_reason,
                "provenance": list(self.provenance)}


def series_isotope(nm: NmSeries, isotope: str | None = None) -> Isotope:
    """The isotope given by the user, else from the Radionuclide Code Sequence or the
    half-life of the header."""
    if isotope:
        return find_isotope(isotope)
    if not nm.radionuclide and not nm.radionuclide_half_life_s and not nm.radiopharmaceutical:
        raise InputError(f"{nm.label}: no radionuclide in (0054,0016) Radiopharmaceutical "
                         "Information Sequence; give --isotope")
    try:
        return find_isotope(nm.radionuclide or nm.radiopharmaceutical,
                            half_life_s=nm.radionuclide_half_life_s)
    except InputError as exc:
        raise InputError(f"{nm.label}: {exc}; give --isotope") from None


def spect_activity(nm: NmSeries, *, sensitivity_cps_mbq: float | None = None,
                   acquisition_duration_s: float | None = None, isotope: str | None = None,
                   weight_kg: float | None = None, injected_mbq: float | None = None
                   ) -> SpectActivity:
    """Convert ``nm`` to Bq/ml (module docstring). A counts series without a sensitivity,
    or without an acquisition duration, raises :class:`InputError` saying which.

    Example:
        >>> act = spect_activity(read_nm("NM/"), sensitivity_cps_mbq=9.2)  # doctest: +SKIP
        >>> act.bq_ml.array.max(), act.provenance  # doctest: +SKIP
    """
    iso = series_isotope(nm, isotope)
    notes: list[str] = list(nm.notes)
    if sensitivity_cps_mbq is not None and not (math.isfinite(sensitivity_cps_mbq)
                                                and sensitivity_cps_mbq > 0):
        raise InputError(f"--sensitivity-cps-mbq must be a positive number, got "
                         f"{sensitivity_cps_mbq}")
    duration = acquisition_duration_s if acquisition_duration_s is not None \
        else nm.acquisition_duration_s
    if acquisition_duration_s is not None:
        if not acquisition_duration_s > 0:
            raise InputError(f"--duration-s must be positive, got {acquisition_duration_s}")
        notes.append(f"acquisition duration {acquisition_duration_s:g} s given by the user")
    decay = None
    if nm.pixel_units == "BQML":
        values = nm.volume.array
        source = "vendor"
        notes.append(f"pixels are Bq/ml: {nm.units_source}")
        if sensitivity_cps_mbq is not None:
            notes.append("sensitivity ignored: the reconstruction is already in Bq/ml")
            sensitivity_cps_mbq = None
    else:
        if sensitivity_cps_mbq is None:
            raise InputError(
                f"{nm.label}: the SPECT values are reconstructed counts ({nm.units_source}) "
                "and no system sensitivity was given; activity needs "
                "--sensitivity-cps-mbq (cps/MBq for this isotope, window and reconstruction)")
        if not duration:
            raise InputError(
                f"{nm.label}: counts need the acquisition duration, but (0054,0052) Rotation "
                "Information Sequence lacks (0054,0053) Number of Frames in Rotation or "
                "(0018,1242) Actual Frame Duration; give --duration-s")
        lam = math.log(2.0) / (iso.half_life_h * 3600.0)
        decay = lam * duration / (1.0 - math.exp(-lam * duration))
        values = (nm.volume.array / (sensitivity_cps_mbq * duration) * 1e6 / nm.voxel_ml
                  * decay)
        source = "counts/sensitivity"
        notes.append(f"Bq/ml = counts / ({sensitivity_cps_mbq:g} cps/MBq × {duration:g} s) "
                     f"/ {nm.voxel_ml:.4f} ml × {decay:.6f} (decay during acquisition, "
                     f"{iso.symbol} T½ {iso.half_life_h:g} h)")
    if nm.decay_correction == "ADMIN":
        # values referred to the administration: back to the acquisition start
        if nm.administration is None or nm.acquisition_start is None:
            raise InputError(f"{nm.label}: (0054,1102) Decay Correction ADMIN but the "
                             "administration or acquisition time is missing")
        hours = (nm.acquisition_start - nm.administration).total_seconds() / 3600.0
        values = values * iso.decay_factor(hours)
        notes.append(f"(0054,1102) Decay Correction ADMIN: × {iso.decay_factor(hours):.6f} "
                     f"(decay over {hours:.2f} h) to the acquisition start")
    bq_ml = nm.volume.with_array(np.asarray(values, dtype=np.float64))
    ref = nm.acquisition_start.isoformat() if nm.acquisition_start else None
    if ref:
        notes.append(f"concentration at the acquisition start {ref}")
    # SUV
    w = weight_kg if weight_kg is not None else nm.patient_weight_kg
    a0 = injected_mbq if injected_mbq is not None else nm.injected_mbq
    suv_factor = None
    reason = None
    if w is None or not w > 0:
        reason = "no (0010,1030) Patient Weight"
    elif a0 is None or not a0 > 0:
        reason = "no (0018,1074) Radionuclide Total Dose"
    elif nm.administration is None or nm.acquisition_start is None:
        reason = "no administration or acquisition time"
    else:
        hours = (nm.acquisition_start - nm.administration).total_seconds() / 3600.0
        if hours < 0:
            reason = (f"acquisition {nm.acquisition_start} before the administration "
                      f"{nm.administration}")
        else:
            a_bq = a0 * 1e6 * iso.decay_factor(hours)
            suv_factor = w * 1000.0 / a_bq
            notes.append(f"SUVbw: {w:g} kg, {a0:g} MBq administered {hours:.2f} h before "
                         f"the acquisition, decayed to {a_bq / 1e6:.3f} MBq")
    return SpectActivity(bq_ml, iso, source, sensitivity_cps_mbq, duration, decay, ref,
                         suv_factor, reason, tuple(notes))
