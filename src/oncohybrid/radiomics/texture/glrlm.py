"""Grey level run length matrix features (IBSI 1 §3.7), every aggregation.

Runs are maximal straight lines of equal grey level along one of the 4 in-plane (2D, 2.5D) or
13 (3D) directions. They are found without a Python loop over lines or voxels (hand-written: no
well-kept library offers run lengths along lattice diagonals), see :func:`runs`.

For the merged aggregations N_v, the voxel count of the run percentage, is summed over the
merged matrices (one N_v per direction), as IBSI 1 §3.7 prescribes.
"""

from __future__ import annotations

from collections.abc import Collection

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
from oncohybrid.radiomics.texture._matrix import matrix_features, mean_over, wants

#: IBSI identifiers of the 16 GLRLM features (IBSI 1 §3.7.1 … §3.7.16)
FEATURE_IDS = {
    "se": "22OV", "le": "W4KF", "lge": "V3SW", "hge": "G3QZ", "slge": "HTZT",
    "shge": "GD3A", "llge": "IVPO", "lhge": "3KUM", "glnu": "R5YN", "glnu_norm": "OVBL",
    "jnu": "W92Y", "jnu_norm": "IC23", "perc": "9ZK5", "gl_var": "8CE5", "j_var": "SXLW",
    "j_entr": "HJ9O",
}


def runs(grid: TextureGrid, n_directions: int = len(DIRECTIONS)
         ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Runs along the first ``n_directions`` of the 13 directions (all; 4: the in-plane
    ones): counts of the runs of length 1 by (direction, slice, grey level), shape
    (n_directions, n_slices, N_g); and direction, grey level, length and slice of every
    longer run.

    A voxel starts a run when the voxel behind it (against the direction) has another grey
    level, and ends it when the voxel ahead differs; a voxel that does both is a run of
    length 1 (most runs in noisy images), counted at once. The longer runs of all
    directions then advance together, one voxel per step, while the next voxel along their
    direction keeps their grey level; each step only touches the runs still growing.
    """
    n_g, n_z = grid.n_levels, grid.n_slices
    slice_grey = grid.slice_index * n_g + grid.grey - 1
    singles = np.empty((n_directions, n_z * n_g))
    longer, direction, offsets = [], [], []
    for k, d in enumerate(DIRECTIONS[:n_directions]):
        starts = grid.neighbours_back[k] != grid.grey
        ends = grid.neighbours[k] != grid.grey
        singles[k] = np.bincount(slice_grey[starts & ends], minlength=n_z * n_g)
        more = np.flatnonzero(starts & ~ends)
        longer.append(more)
        direction.append(np.full(more.size, k, dtype=np.int64))
        offsets.append(grid.offset(d))
    voxel = np.concatenate(longer)
    run_dir = np.concatenate(direction)
    run_grey = grid.grey[voxel]
    lengths = np.empty(voxel.size, dtype=np.int64)
    alive = np.arange(voxel.size)
    stride = np.asarray(offsets, dtype=np.int64)[run_dir]
    here = grid.flat[voxel] + stride          # the second voxel, known to match
    grey = run_grey
    padded = grid.padded.ravel()
    length = 2
    while alive.size:
        here += stride                        # a fresh array each step (take below)
        grows = padded.take(here) == grey
        lengths[alive[~grows]] = length
        keep = np.flatnonzero(grows)          # take with indices: faster than a bool mask
        alive, here = alive.take(keep), here.take(keep)
        grey, stride = grey.take(keep), stride.take(keep)
        length += 1
    return (singles.reshape(n_directions, n_z, n_g),
            (run_dir, run_grey, lengths, grid.slice_index[voxel]))


def glrlm_features(grid: TextureGrid, dims: Collection[str] | None = None) -> dict[str, float]:
    """GLRLM features keyed ``"ID/AGG"`` (IBSI 1 §3.7): the six IBSI aggregations, or those of
    the texture dimensionalities ``dims`` ("2D", "2.5D", "3D"; None: all)."""
    n_g, n_z = grid.n_levels, grid.n_slices
    n_d = len(DIRECTIONS) if wants(dims, "3D") else N_IN_PLANE
    singles, (run_dir, grey, lengths, slice_of) = runs(grid, n_d)
    # the longest run over the directions computed: N_r only sizes the matrices (empty
    # columns add nothing to any feature)
    n_r = int(lengths.max()) if lengths.size else 1
    code = (grey - 1) * n_r + lengths - 1
    per_dir = np.bincount(code + run_dir * (n_g * n_r),
                          minlength=n_d * n_g * n_r).reshape(n_d, n_g, n_r).astype(np.float64)
    per_dir[..., 0] += singles.sum(axis=1)
    n_v = float(grid.flat.size)
    results: dict[str, dict[str, float]] = {}
    if wants(dims, "2D"):
        plane = run_dir < N_IN_PLANE
        per_slice = np.bincount(
            code[plane] + (slice_of[plane] * N_IN_PLANE + run_dir[plane]) * (n_g * n_r),
            minlength=n_z * N_IN_PLANE * n_g * n_r).reshape(n_z, N_IN_PLANE, n_g, n_r)
        per_slice = per_slice.astype(np.float64)
        per_slice[..., 0] += singles[:N_IN_PLANE].transpose(1, 0, 2)
        voxels_slice = np.bincount(grid.slice_index, minlength=n_z).astype(np.float64)
        flat2d = per_slice.reshape(n_z * N_IN_PLANE, n_g, n_r)
        results[AGG_2D_AVG] = mean_over(
            matrix_features(flat2d, np.repeat(voxels_slice, N_IN_PLANE)),
            flat2d.sum(axis=(1, 2)) > 0)
        merged = per_slice.sum(axis=1)
        results[AGG_2D_SMRG] = mean_over(matrix_features(merged, N_IN_PLANE * voxels_slice),
                                         voxels_slice > 0)
    if wants(dims, "2.5D"):
        in_plane = per_dir[:N_IN_PLANE]
        results[AGG_25D_DMRG] = mean_over(matrix_features(in_plane, np.full(N_IN_PLANE, n_v)),
                                          np.ones(N_IN_PLANE, bool))
        results[AGG_25D_MRG] = mean_over(
            matrix_features(in_plane.sum(axis=0)[None], np.array([N_IN_PLANE * n_v])),
            np.ones(1, bool))
    if wants(dims, "3D"):
        results[AGG_3D_AVG] = mean_over(matrix_features(per_dir, np.full(n_d, n_v)),
                                        np.ones(n_d, bool))
        results[AGG_3D_MRG] = mean_over(
            matrix_features(per_dir.sum(axis=0)[None], np.array([n_d * n_v])),
            np.ones(1, bool))
    return {f"{FEATURE_IDS[name]}/{agg}": value
            for agg, values in results.items() for name, value in values.items()
            if name in FEATURE_IDS}
