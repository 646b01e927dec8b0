"""Slice-stack geometry decisions: is a stack uniform, tilted, and how to make it regular.

A series of parallel image planes forms a regular volume when every plane lies on one
line along the slice normal ``n = row cosines × column cosines`` of (0020,0037) *Image
Orientation (Patient)* and the planes' distances along ``n`` (the projection of (0020,0032)
*Image Position (Patient)*, PS3.3 C.7.6.2.1.1) form a uniform grid.

Real scanners break both a little and sometimes a lot:

- *Spacing.* A whole-body PET is acquired in overlapping beds; at each bed junction the
  step differs slightly (GE Discovery ST: 3.29 mm or 3.19 mm between 3.27 mm slices).
  We judge spacing by each plane's deviation from the least-squares uniform grid
  ``d_k ≈ a + k·s`` (a fraction :data:`SPACING_DEVIATION_FRACTION` of ``s``), not by
  step-to-step ratios: the bed-junction stack above is nowhere more than 0.04 mm off its
  fitted grid and loads as is (SimpleITK and dcm2niix load it too). Beyond that fraction
  the stack is resampled linearly along ``n`` onto a uniform grid
  (:func:`resample_along_normal`) and the volume says so in its provenance notes.
- *Gantry tilt.* A CT acquired with a tilted gantry stores tilted planes whose positions
  move with the table, not along the normal; the stack is sheared. As dcm2niix does
  (``nii_gantry_tilt`` correction), each plane is shifted within its own plane by its
  offset from the normal line through the first plane (:func:`shift_planes`), which puts
  the voxels on an orthogonal grid with the same row/column axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "SPACING_DEVIATION_FRACTION",
    "UniformFit",
    "fit_uniform_grid",
    "resample_along_normal",
    "shift_planes",
    "tilt_angle_deg",
]

#: A plane may lie this fraction of the fitted spacing off the uniform grid and still be
#: used as is (no resampling). 10 % of a voxel is well under any PET/CT reconstruction's
#: resolution and accepts GE/Siemens bed-junction rounding.
SPACING_DEVIATION_FRACTION = 0.10


@dataclass(frozen=True)
class UniformFit:
    """Least-squares uniform grid ``d_k ≈ origin_mm + k · spacing_mm`` of sorted plane
    distances along the normal, with the largest absolute deviation of a plane from it."""

    origin_mm: float
    spacing_mm: float
    max_deviation_mm: float
    worst_index: int

    @property
    def uniform(self) -> bool:
        """True when every plane is within :data:`SPACING_DEVIATION_FRACTION` of a voxel."""
        return self.max_deviation_mm <= SPACING_DEVIATION_FRACTION * abs(self.spacing_mm)


def fit_uniform_grid(distances_mm: np.ndarray) -> UniformFit:
    """Fit ``d_k = a + k·s`` by least squares to sorted plane distances ``d`` (mm).

    Example:
        >>> fit = fit_uniform_grid(np.array([0.0, 3.27, 6.56, 9.83]))
        >>> round(fit.spacing_mm, 3), fit.uniform
        (3.278, True)
    """
    d = np.asarray(distances_mm, dtype=np.float64)
    k = np.arange(d.size, dtype=np.float64)
    if d.size < 2:
        return UniformFit(float(d[0]) if d.size else 0.0, 0.0, 0.0, 0)
    spacing, origin = np.polyfit(k, d, 1)
    dev = np.abs(d - (origin + k * spacing))
    worst = int(np.argmax(dev))
    return UniformFit(float(origin), float(spacing), float(dev[worst]), worst)


def resample_along_normal(
    stack: np.ndarray, distances_mm: np.ndarray, targets_mm: np.ndarray
) -> np.ndarray:
    """Linearly interpolate planes of ``stack`` (axis 0 at sorted ``distances_mm``) to the
    distances ``targets_mm`` (inside ``[d_0, d_-1]``). Returns floating-point planes
    (float32 for float32 or integer input, float64 for float64).

    Linear interpolation along the normal keeps a constant region's value (concentrations,
    HU) and is what dcm2niix and ITK use for slice equalisation.
    """
    d = np.asarray(distances_mm, dtype=np.float64)
    t = np.clip(np.asarray(targets_mm, dtype=np.float64), d[0], d[-1])
    hi = np.clip(np.searchsorted(d, t, side="right"), 1, d.size - 1)
    lo = hi - 1
    w = (t - d[lo]) / (d[hi] - d[lo])
    out = np.empty((t.size, *stack.shape[1:]), dtype=np.result_type(stack.dtype, np.float32))
    for j in range(t.size):
        a, b = stack[lo[j]], stack[hi[j]]
        out[j] = a if w[j] == 0 else (1.0 - w[j]) * a + w[j] * b
    return out


def shift_planes(stack: np.ndarray, shifts_rc: np.ndarray, *, fill: float) -> np.ndarray:
    """Shift each plane of ``stack`` by ``shifts_rc[k] = (rows, columns)`` (pixels, linear
    interpolation); pixels shifted in from outside the acquired plane get ``fill``.
    Returns floating-point planes (float32 unless ``stack`` is float64).

    Output pixel ``(r, c)`` of plane ``k`` takes input pixel ``(r, c) - shifts_rc[k]``.
    """
    out = np.empty(stack.shape, dtype=np.result_type(stack.dtype, np.float32))
    for k in range(stack.shape[0]):
        dr, dc = (float(v) for v in shifts_rc[k])
        if abs(dr) < 1e-6 and abs(dc) < 1e-6:
            out[k] = stack[k]
        else:
            # mode="constant": points outside the acquired plane get ``fill`` exactly, no
            # blending with it at the border (scipy >= 1.6 semantics).
            ndimage.shift(stack[k].astype(out.dtype), (dr, dc), output=out[k], order=1,
                          mode="constant", cval=fill)
    return out


def tilt_angle_deg(in_plane_mm: np.ndarray, along_normal_mm: np.ndarray) -> float:
    """Largest angle between the stack's axis (plane k's offset from plane 0) and the
    normal, from the in-plane and along-normal parts of that offset."""
    along = np.abs(np.asarray(along_normal_mm, dtype=np.float64))
    drift = np.linalg.norm(np.asarray(in_plane_mm, dtype=np.float64), axis=-1)
    mask = along > 0
    if not mask.any():
        return 0.0
    return float(np.degrees(np.arctan2(drift[mask], along[mask])).max())
