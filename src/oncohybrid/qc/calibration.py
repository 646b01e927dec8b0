"""Cross-calibration of PET against the dose calibrator with a uniform cylinder (issue #20).

The cylinder is filled with a known activity concentration (dose-calibrator activity /
fill volume). EARL FDG calibration QC (Boellaard et al. EJNMMI 2015, §"Calibration QC"):
the mean of a large volume of interest inside the cylinder must agree with the
dose-calibrator concentration within ±10 %. The VOI here: per slice, a disk of 75 % of the
cylinder's radius around its centroid, on the central 2/3 of the slices that contain the
cylinder (edges and end-slices excluded, where partial volume and scatter bias).
Reported: the ratio measured / expected, the axial profile (mean per slice), the
non-uniformity (max and min slice mean vs the mean, NEMA-style) and the voxel COV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.errors import InputError

__all__ = ["CALIBRATION_TOLERANCE", "CalibrationResult", "analyse_cylinder"]

#: EARL calibration tolerance: |measured / expected − 1| ≤ 10 %.
CALIBRATION_TOLERANCE: float = 0.10
VOI_RADIUS_FRACTION: float = 0.75


@dataclass(frozen=True)
class CalibrationResult:
    expected_bq_ml: float
    measured_bq_ml: float
    ratio: float
    tolerance: float
    passed: bool
    voxel_cov: float
    slice_means_bq_ml: list[float] = field(default_factory=list)
    max_slice_deviation_pct: float = 0.0
    voi_ml: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "expected_bq_ml": self.expected_bq_ml,
            "measured_bq_ml": self.measured_bq_ml,
            "ratio": self.ratio,
            "deviation_pct": (self.ratio - 1.0) * 100.0,
            "tolerance_pct": self.tolerance * 100.0,
            "passed": self.passed,
            "voxel_cov": self.voxel_cov,
            "max_slice_deviation_pct": self.max_slice_deviation_pct,
            "voi_ml": self.voi_ml,
            "slice_means_bq_ml": self.slice_means_bq_ml,
        }


def analyse_cylinder(image: np.ndarray, spacing_mm: Sequence[float], *, expected_bq_ml: float,
                     tolerance: float = CALIBRATION_TOLERANCE) -> CalibrationResult:
    """Measured vs dose-calibrator concentration of a uniform cylinder (array z, y, x)."""
    if not expected_bq_ml > 0:
        raise InputError(f"the dose-calibrator concentration must be positive, got "
                         f"{expected_bq_ml}")
    if not 0 < tolerance < 1:
        raise InputError(f"tolerance must be a fraction between 0 and 1, got {tolerance}")
    img = np.nan_to_num(np.asarray(image, dtype=np.float64))
    top = float(np.percentile(img, 99.0))
    if not top > 0:
        raise InputError("no uniform cylinder found: the image has no activity")
    filled = img > 0.5 * float(np.median(img[img > 0.2 * top]))
    per_slice = filled.reshape(filled.shape[0], -1).sum(axis=1)
    full = per_slice >= 0.5 * per_slice.max()
    ks = np.nonzero(full)[0]
    if len(ks) < 3:
        raise InputError("no uniform cylinder found: fewer than 3 slices contain it")
    k0, k1 = int(ks[0]), int(ks[-1])
    n = k1 - k0 + 1
    lo, hi = k0 + n // 6, k1 - n // 6
    dy, dx = float(spacing_mm[1]), float(spacing_mm[2])
    voxels: list[np.ndarray] = []
    means: list[float] = []
    for k in range(lo, hi + 1):
        m = ndimage.binary_fill_holes(filled[k])
        area_mm2 = float(m.sum()) * dy * dx
        if area_mm2 <= 0:
            continue
        radius = math.sqrt(area_mm2 / math.pi)
        cy, cx = ndimage.center_of_mass(m)
        yy, xx = np.ogrid[: m.shape[0], : m.shape[1]]
        disk = ((yy - cy) * dy) ** 2 + ((xx - cx) * dx) ** 2 <= (VOI_RADIUS_FRACTION * radius) ** 2
        vals = img[k][disk]
        voxels.append(vals)
        means.append(float(vals.mean()))
    allv = np.concatenate(voxels)
    measured = float(allv.mean())
    ratio = measured / expected_bq_ml
    dev = max(abs(v - measured) for v in means) / measured * 100.0 if measured > 0 else math.nan
    return CalibrationResult(
        expected_bq_ml=expected_bq_ml, measured_bq_ml=measured, ratio=ratio,
        tolerance=tolerance, passed=abs(ratio - 1.0) <= tolerance + 1e-12,
        voxel_cov=float(allv.std(ddof=1) / measured) if measured > 0 else math.nan,
        slice_means_bq_ml=means, max_slice_deviation_pct=dev,
        voi_ml=len(allv) * float(np.prod(spacing_mm)) / 1000.0,
    )
