"""Grey level run length matrix features (IBSI 1 §3.7), every aggregation.

Runs are maximal straight lines of equal grey level along one of the 4 in-plane (2D, 2.5D) or
13 (3D) directions. To find them without a Python loop over lines, each direction's voxels are
placed in a sheared array whose last axis runs along the direction (hand-written: no library
offers run lengths along arbitrary lattice diagonals); a voxel starts a run when its
predecessor differs and ends it when its successor differs, and the k-th start and k-th end
in memory order delimit the same run.

For the merged aggregations N_v, the voxel count of the run percentage, is summed over the
merged matrices (one N_v per direction), as IBSI 1 §3.7 prescribes.
"""

from __future__ import annotations

import numpy as np

from oncohybrid.radiomics.roi import (
    AGG_2D_AVG,
    AGG_2D_SMRG,
    AGG_3D_AVG,
    AGG_3D_MRG,
    AGG_25D_DMRG,
    AGG_25D_MRG,
)
from oncohybrid.radiomics.texture._grid import DIRECTIONS, N_IN_PLANE, TextureGrid
from oncohybrid.radiomics.texture._matrix import matrix_features, mean_over

#: IBSI identifiers of the 16 GLRLM features (IBSI 1 §3.7.1 … §3.7.16)
FEATURE_IDS = {
    "se": "22OV", "le": "W4KF", "lge": "V3SW", "hge": "G3QZ", "slge": "HTZT",
    "shge": "GD3A", "llge": "IVPO", "lhge": "3KUM", "glnu": "R5YN", "glnu_norm": "OVBL",
    "jnu": "W92Y", "jnu_norm": "IC23", "perc": "9ZK5", "gl_var": "8CE5", "j_var": "SXLW",
    "j_entr": "HJ9O",
}


def runs(grid: TextureGrid, direction: tuple[int, int, int]
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey level, length and slice of every run along ``direction``."""
    shape = grid.padded.shape
    coords = np.unravel_index(grid.flat, shape)
    d = np.asarray(direction)
    axis = int(np.flatnonzero(d)[-1])          # the line parameter: last non-zero axis
    d = d * d[axis]                            # orient so the parameter increases
    n_p = shape[axis]
    c_p = coords[axis]
    sidx = np.zeros_like(grid.flat)
    stride = 1
    sizes = []
    for q in range(3):
        if q == axis:
            continue
        if d[q] == 0:
            key, size = coords[q], shape[q]
        elif d[q] > 0:
            key, size = coords[q] - c_p + (n_p - 1), shape[q] + n_p - 1
        else:
            key, size = coords[q] + c_p, shape[q] + n_p - 1
        sizes.append(size)
        sidx = sidx * size + key
    sidx = sidx * n_p + c_p
    stride = sizes[1] * n_p
    sheared = np.zeros(sizes[0] * sizes[1] * n_p + 1, dtype=grid.padded.dtype)
    sheared[sidx] = grid.grey
    starts = np.sort(sidx[sheared[sidx - 1] != grid.grey])
    ends = np.sort(sidx[sheared[sidx + 1] != grid.grey])
    lengths = ends - starts + 1
    grey = sheared[starts]
    slice_of = starts // stride - 1 if d[0] == 0 else np.zeros_like(starts)
    return grey, lengths, slice_of


def glrlm_features(grid: TextureGrid) -> dict[str, float]:
    """All GLRLM features under the six IBSI aggregations, keyed ``"ID/AGG"`` (IBSI 1 §3.7)."""
    n_g, n_z = grid.n_levels, grid.n_slices
    found = [runs(grid, direction) for direction in DIRECTIONS]
    n_r = int(max(int(r[1].max()) for r in found))
    per_slice = np.empty((n_z, N_IN_PLANE, n_g, n_r))
    per_dir = np.empty((len(DIRECTIONS), n_g, n_r))
    for k, (grey, lengths, slice_of) in enumerate(found):
        code = (grey - 1) * n_r + lengths - 1
        if k < N_IN_PLANE:
            counts = np.bincount(code + slice_of * (n_g * n_r),
                                 minlength=n_z * n_g * n_r).reshape(n_z, n_g, n_r)
            per_slice[:, k] = counts
            per_dir[k] = counts.sum(axis=0)
        else:
            per_dir[k] = np.bincount(code, minlength=n_g * n_r).reshape(n_g, n_r)
    voxels_slice = np.bincount(grid.slice_index, minlength=n_z).astype(np.float64)
    n_v = float(grid.flat.size)
    results: dict[str, dict[str, float]] = {}
    flat2d = per_slice.reshape(n_z * N_IN_PLANE, n_g, n_r)
    results[AGG_2D_AVG] = mean_over(
        matrix_features(flat2d, np.repeat(voxels_slice, N_IN_PLANE)),
        flat2d.sum(axis=(1, 2)) > 0)
    merged = per_slice.sum(axis=1)
    results[AGG_2D_SMRG] = mean_over(matrix_features(merged, N_IN_PLANE * voxels_slice),
                                     voxels_slice > 0)
    in_plane = per_dir[:N_IN_PLANE]
    results[AGG_25D_DMRG] = mean_over(matrix_features(in_plane, np.full(N_IN_PLANE, n_v)),
                                      np.ones(N_IN_PLANE, bool))
    results[AGG_25D_MRG] = mean_over(
        matrix_features(in_plane.sum(axis=0)[None], np.array([N_IN_PLANE * n_v])),
        np.ones(1, bool))
    n_d = len(DIRECTIONS)
    results[AGG_3D_AVG] = mean_over(matrix_features(per_dir, np.full(n_d, n_v)),
                                    np.ones(n_d, bool))
    results[AGG_3D_MRG] = mean_over(
        matrix_features(per_dir.sum(axis=0)[None], np.array([n_d * n_v])), np.ones(1, bool))
    return {f"{FEATURE_IDS[name]}/{agg}": value
            for agg, values in results.items() for name, value in values.items()
            if name in FEATURE_IDS}
