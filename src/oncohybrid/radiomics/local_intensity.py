"""Local intensity features (IBSI 1 §3.2): local (VJGA) and global (0F91) intensity peak.

The peak is the mean intensity in a 1 cm³ sphere (radius (3/(4π))^(1/3) cm ≈ 6.2 mm) centred
on a voxel; a voxel belongs to the sphere when its centre lies within the radius (world
distances, so anisotropic spacing gives an ellipsoid in voxel units). The sphere takes every
image voxel it covers, inside the ROI or not (IBSI 1 §3.2.1); near the image border only the
voxels that exist are averaged.

Example (the peak of a uniform image is its intensity):

>>> import numpy as np
>>> from oncohybrid.radiomics.roi import Roi
>>> img = np.full((5, 5, 5), 7.0)
>>> m = np.zeros(img.shape, bool); m[2, 2, 2] = True
>>> f = local_intensity_features(Roi(img, m, m, (2.0, 2.0, 2.0)))
>>> round(f["VJGA"], 9), round(f["0F91"], 9)
(7.0, 7.0)
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from .roi import Roi

__all__ = ["PEAK_RADIUS_MM", "local_intensity_features", "sphere_offsets"]

#: radius of a 1 cm³ sphere in mm (IBSI 1 §3.2)
PEAK_RADIUS_MM = float((3000.0 / (4.0 * np.pi)) ** (1.0 / 3.0))


def sphere_offsets(spacing_mm: tuple[float, float, float],
                   radius_mm: float = PEAK_RADIUS_MM) -> np.ndarray:
    """Boolean kernel (odd shape, centred) of the voxels whose centres are within the radius."""
    half = [int(np.floor(radius_mm / s)) for s in spacing_mm]
    axes = [np.arange(-h, h + 1) * s for h, s in zip(half, spacing_mm, strict=True)]
    dz, dy, dx = np.meshgrid(*axes, indexing="ij")
    return dz * dz + dy * dy + dx * dx <= radius_mm * radius_mm * (1 + 1e-12)


def local_intensity_features(roi: Roi, *, radius_mm: float = PEAK_RADIUS_MM) -> dict[str, float]:
    """IBSI 1 §3.2: VJGA local intensity peak and 0F91 global intensity peak.

    VJGA: the sphere mean around the intensity-mask voxel of maximum intensity; when several
    voxels share the maximum, the highest of their sphere means (§3.2.1). 0F91: the highest
    sphere mean over all voxels of the intensity mask (§3.2.2), computed as one FFT
    convolution of the box around the ROI (sums and voxel counts, so the image border is
    handled as for the local peak).
    """
    mask = np.asarray(roi.int_mask, dtype=bool)
    if not mask.any():
        raise ValueError("the ROI's intensity mask is empty: no local intensity features")
    image = np.asarray(roi.image, dtype=np.float64)
    kernel = sphere_offsets(roi.spacing_mm, radius_mm)
    half = [k // 2 for k in kernel.shape]
    # box around the ROI plus the kernel's reach, clipped to the image
    nz = np.nonzero(mask)
    lo = [max(int(a.min()) - h, 0) for a, h in zip(nz, half, strict=True)]
    hi = [min(int(a.max()) + h + 1, n) for a, h, n in zip(nz, half, image.shape, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    img, m = image[box], mask[box]
    kern = kernel.astype(np.float64)
    sums = fftconvolve(img, kern, mode="same")
    interior = all(a - h >= 0 and b + h <= n for a, b, h, n in
                   zip(lo, hi, half, image.shape, strict=True)) and all(
        int(a.min()) - h >= 0 and int(a.max()) + h < n
        for a, h, n in zip(nz, half, image.shape, strict=True))
    if interior:  # every sphere around a ROI voxel lies inside the image
        means = sums[m] / float(kern.sum())
    else:
        counts = fftconvolve(np.ones_like(img), kern, mode="same")
        means = sums[m] / np.rint(counts[m])
    vals = img[m]
    local = float(means[vals == vals.max()].max())
    return {"VJGA": local, "0F91": float(means.max())}
