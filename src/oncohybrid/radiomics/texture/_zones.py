"""Zones of equal grey level, shared by GLSZM (IBSI 1 §3.8) and GLDZM (§3.9).

A zone is a connected group of voxels with the same grey level: 8-connected within a slice
for the 2D / 2.5D aggregations, 26-connected in 3D. One ``skimage.measure.label`` call
labels all grey levels at once (it links neighbours only when their values are equal); for
2D zones the slices are interleaved with empty ones so no zone crosses a slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.measure import label

from oncohybrid.radiomics.texture._grid import TextureGrid


@dataclass(frozen=True)
class Zones:
    """One entry per zone: ``grey`` level, ``size`` in voxels, ``slice_of`` (2D zones; 0 in
    3D); ``voxel_zone`` maps each ROI voxel (order of ``TextureGrid.flat``) to its zone."""

    grey: np.ndarray
    size: np.ndarray
    slice_of: np.ndarray
    voxel_zone: np.ndarray


def _zones_of(labels_at_voxels: np.ndarray, grid: TextureGrid, by_slice: bool) -> Zones:
    n = int(labels_at_voxels.max())
    zone = labels_at_voxels - 1
    size = np.bincount(zone, minlength=n)
    grey = np.empty(n, dtype=np.int64)
    grey[zone] = grid.grey
    slice_of = np.zeros(n, dtype=np.int64)
    if by_slice:
        slice_of[zone] = grid.slice_index
    return Zones(grey, size, slice_of, zone)


def zones_3d(grid: TextureGrid) -> Zones:
    """26-connected zones of equal grey level."""
    labels = label(grid.padded, background=0, connectivity=3)
    return _zones_of(labels.ravel()[grid.flat], grid, by_slice=False)


def zones_2d(grid: TextureGrid) -> Zones:
    """8-connected zones of equal grey level within each slice."""
    nz, ny, nx = grid.padded.shape
    spread = np.zeros((2 * nz, ny, nx), dtype=grid.padded.dtype)
    spread[::2] = grid.padded
    labels = label(spread, background=0, connectivity=3)
    plane = ny * nx
    spread_flat = grid.flat + (grid.flat // plane) * plane
    return _zones_of(labels.ravel()[spread_flat], grid, by_slice=True)
