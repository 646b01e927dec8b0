"""DWI use-cases: ADC map of a series to a Parametric Map, with ROI statistics (issue #19).

``adc_map`` reads the series (:func:`oncohybrid.dicom.diffusion.read_dwi`), fits the
mono-exponential ADC over the chosen b-values (:func:`oncohybrid.quant.adc.fit_adc`,
weighted log-linear then non-linear least squares), writes the map in µm²/s as a DICOM
Parametric Map (:func:`oncohybrid.report.parametric_map.adc_parametric_map`) and, given a
spherical ROI (centre in LPS mm, radius in mm), returns its ADC histogram statistics.

Background: voxels whose lowest-b signal is below 10 % of that image's 99th percentile are
not fitted (NaN, stored 0 in the map), so air and noise do not enter ROI statistics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oncohybrid.dicom.diffusion import DiffusionError, DwiSeries, read_dwi
from oncohybrid.errors import InputError
from oncohybrid.quant.adc import AdcHistogram, adc_histogram, fit_adc
from oncohybrid.report.parametric_map import adc_parametric_map

__all__ = ["BACKGROUND_FRACTION", "AdcMapResult", "adc_map", "fit_series_adc",
           "roi_sphere_mask"]

#: Lowest-b signal below this fraction of its 99th percentile is background (not fitted).
BACKGROUND_FRACTION = 0.10


@dataclass(frozen=True)
class AdcMapResult:
    """What ``oncohybrid dwi adc`` reports: b-values used, their source, the ROI."""

    b_values: list[float]
    b_value_source: str
    roi: AdcHistogram | None
    out: Path
    n_fitted: int
    n_negative: int
    method: str


def _choose_b_values(dwi: DwiSeries, requested: Sequence[float] | None) -> list[float]:
    available = dwi.b_values
    if len(available) < 2:
        raise DiffusionError(
            f"{dwi.label}: only one b-value (b = {_fmt(available)} s/mm²); an ADC needs "
            "at least two different b-values")
    if requested is None:
        return available
    chosen = sorted({float(b) for b in requested})
    missing = [b for b in chosen if b not in available]
    if missing:
        raise DiffusionError(
            f"{dwi.label}: no image with b-value {_fmt(missing)} s/mm²; the series holds "
            f"b = {_fmt(available)} s/mm²")
    if len(chosen) < 2:
        raise InputError(f"--b-values: an ADC needs two different b-values, got "
                         f"b = {_fmt(chosen)} s/mm²")
    return chosen


def _fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def roi_sphere_mask(shape: tuple[int, int, int], affine: np.ndarray,
                    centre_lps_mm: Sequence[float], radius_mm: float) -> np.ndarray:
    """Voxels whose centres lie within ``radius_mm`` of ``centre_lps_mm`` (LPS mm)."""
    idx = np.indices(shape).reshape(3, -1).astype(np.float64)
    lps = affine[:3, :3] @ idx + affine[:3, 3:4]
    d2 = ((lps - np.asarray(centre_lps_mm, dtype=np.float64)[:, None]) ** 2).sum(0)
    return (d2 <= radius_mm ** 2).reshape(shape)


def fit_series_adc(signals: np.ndarray, b_values: Sequence[float], *,
                   refine: bool = True) -> Any:
    """:func:`oncohybrid.quant.adc.fit_adc` of a series' signals (lowest b first) with its
    background left out: lowest-b signal below :data:`BACKGROUND_FRACTION` of its 99th
    percentile is not fitted (NaN)."""
    low = signals[0]
    threshold = BACKGROUND_FRACTION * float(np.percentile(low, 99))
    return fit_adc(signals, np.asarray(b_values, dtype=np.float64), mask=low > threshold,
                   refine=refine)


def adc_map(series_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
            b_values: Sequence[float] | None = None,
            roi_centre_lps_mm: Sequence[float] | None = None,
            roi_radius_mm: float | None = None, refine: bool = True) -> AdcMapResult:
    """Fit the ADC of a DWI series, write it to ``out`` as a Parametric Map (µm²/s) and
    return the b-values used, their source and the ROI statistics.

    Raises :class:`DiffusionError` (exit 2) for a series with one or no b-value or a
    requested b-value it lacks, :class:`InputError` (exit 2) for an ROI without radius or
    outside the image.

    Example:
        >>> r = adc_map("DWI/", "ADC.dcm", b_values=[50, 400, 800],
        ...             roi_centre_lps_mm=(22, -22, 0), roi_radius_mm=8)  # doctest: +SKIP
        >>> r.roi.mean_um2_s  # doctest: +SKIP
    """
    if (roi_centre_lps_mm is None) != (roi_radius_mm is None):
        raise InputError("--roi-centre and --roi-radius-mm go together")
    if roi_radius_mm is not None and not roi_radius_mm > 0:
        raise InputError(f"--roi-radius-mm must be positive, got {roi_radius_mm}")
    if roi_centre_lps_mm is not None and len(roi_centre_lps_mm) != 3:
        raise InputError("--roi-centre needs three numbers X,Y,Z (LPS mm)")
    dwi = read_dwi(series_dir)
    chosen = _choose_b_values(dwi, b_values)
    b, signals, ref = dwi.signals(chosen)
    sphere = None
    if roi_centre_lps_mm is not None and roi_radius_mm is not None:
        sphere = roi_sphere_mask(ref.spatial_shape, ref.affine, roi_centre_lps_mm,
                                 roi_radius_mm)
        if not sphere.any():
            raise InputError(
                f"ROI centre ({_fmt(roi_centre_lps_mm)}) mm, radius {roi_radius_mm:g} mm "
                f"holds no voxel of the image")
    fit = fit_series_adc(signals, b, refine=refine)
    adc_um2_s = (fit.adc_mm2_s * 1e6).astype(np.float32)
    lowest = next(v for v in dwi.volumes if v.b_value == chosen[0])
    files = set(lowest.part.files)
    sources = [ds for ds in dwi.datasets
               if Path(str(getattr(ds, "filename", ""))).name in files
               or str(getattr(ds, "SOPInstanceUID", "")) in files] or list(dwi.datasets[:1])
    pm = adc_parametric_map(ref.with_array(adc_um2_s), sources,
                            explanation=f"ADC from b = {_fmt(chosen)} s/mm2")
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pm.save_as(out_path)
    roi = None if sphere is None else adc_histogram(fit.adc_mm2_s, sphere)
    return AdcMapResult(chosen, dwi.b_value_source.value, roi, out_path,
                        int(np.isfinite(fit.adc_mm2_s).sum()), fit.n_negative, fit.method)
