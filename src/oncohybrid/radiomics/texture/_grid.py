"""The voxel grid shared by the texture families (IBSI 1 §3.6, "texture matrix aggregation").

Every texture family looks at the same cropped, zero-padded grey-level array and the same
neighbour directions, so :class:`TextureGrid` prepares them once per ROI: the bounding box of
the ROI with one voxel of zero padding on every side (0 = outside the intensity mask), the
flat indices of the ROI voxels, their grey levels and their slice. Neighbour look-ups are
then flat-index offsets, which keeps every family vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: The 13 unique directions at Chebyshev distance 1 in (z, y, x) order (IBSI 1 §3.6.1). The
#: first four lie in the slice plane (used by the 2D and 2.5D aggregations).
DIRECTIONS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 1), (0, 1, 1), (0, 1, 0), (0, 1, -1),
    (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (1, 0, -1),
    (1, -1, 0), (1, -1, -1), (1, 1, -1), (1, -1, 1),
)
N_IN_PLANE = 4


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Smallest box holding ``mask`` (projections, cheaper than listing the voxels)."""
    zs = np.flatnonzero(mask.any(axis=(1, 2)))
    if zs.size == 0:
        return None
    sub = mask[zs[0]:zs[-1] + 1]
    ys = np.flatnonzero(sub.any(axis=(0, 2)))
    xs = np.flatnonzero(sub.any(axis=(0, 1)))
    return (slice(int(zs[0]), int(zs[-1]) + 1), slice(int(ys[0]), int(ys[-1]) + 1),
            slice(int(xs[0]), int(xs[-1]) + 1))


@dataclass(frozen=True)
class TextureGrid:
    """Grey levels of one ROI, cropped to its bounding box and padded with one zero voxel.

    ``padded``: int array (z, y, x), 0 outside the ROI; ``flat``: flat indices of the ROI
    voxels in ``padded`` (C order, hence sorted by slice); ``grey``: their grey levels
    (1..``n_levels``); ``slice_index``: their slice, 0..``n_slices - 1``.
    """

    padded: np.ndarray
    flat: np.ndarray
    grey: np.ndarray
    slice_index: np.ndarray
    n_levels: int
    n_slices: int
    morph_padded: np.ndarray

    @classmethod
    def from_levels(cls, levels: np.ndarray, n_levels: int,
                    morph_mask: np.ndarray | None = None) -> TextureGrid:
        """Crop ``levels`` (int, 0 outside, 1..n_levels inside; axes z, y, x) to the ROI."""
        levels = np.asarray(levels)
        if levels.ndim != 3:
            raise ValueError(f"levels must be 3-D (z, y, x), got shape {levels.shape}")
        n_levels = int(n_levels)
        inside = levels > 0
        if morph_mask is None:
            morph = inside
        else:
            morph = np.asarray(morph_mask, dtype=bool)
            if morph.shape != levels.shape:
                raise ValueError(f"morph_mask shape {morph.shape} differs from {levels.shape}")
            morph = morph | inside
        box = _bounding_box(morph)
        if box is None:
            raise ValueError("the ROI holds no voxel (levels are all 0)")
        cropped = levels[box]
        if not inside[box].any():
            raise ValueError("the ROI holds no voxel (levels are all 0)")
        top, bottom = int(cropped.max()), int(cropped.min())
        if top > n_levels or bottom < 0:
            raise ValueError(f"grey levels must lie in 0..{n_levels}, got {bottom}..{top}")
        padded = np.pad(cropped.astype(np.int64), 1)
        morph_padded = np.pad(morph[box], 1)
        flat = np.flatnonzero(padded)
        grey = padded.ravel()[flat]
        plane = padded.shape[1] * padded.shape[2]
        slice_index = flat // plane - 1
        return cls(padded, flat, grey, slice_index, n_levels, padded.shape[0] - 2,
                   morph_padded)

    def offset(self, direction: tuple[int, int, int]) -> int:
        """Flat-index step of one voxel along ``direction`` in ``padded``."""
        _, ny, nx = self.padded.shape
        dz, dy, dx = direction
        return (dz * ny + dy) * nx + dx

    def neighbour_grey(self, direction: tuple[int, int, int]) -> np.ndarray:
        """Grey level of each ROI voxel's neighbour along ``direction`` (0 = outside)."""
        return self.padded.ravel()[self.flat + self.offset(direction)]

    @cached_property
    def coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, y, x) indices of the ROI voxels in ``padded``."""
        return np.unravel_index(self.flat, self.padded.shape)  # type: ignore[return-value]

    @cached_property
    def neighbours_back(self) -> tuple[np.ndarray, ...]:
        """Grey level of each ROI voxel's neighbour against each of :data:`DIRECTIONS`."""
        flat = self.padded.ravel()
        return tuple(flat[self.flat - self.offset(direction)] for direction in DIRECTIONS)

    @cached_property
    def neighbours(self) -> tuple[np.ndarray, ...]:
        """:meth:`neighbour_grey` for each of :data:`DIRECTIONS`, computed once per ROI."""
        return tuple(self.neighbour_grey(direction) for direction in DIRECTIONS)
