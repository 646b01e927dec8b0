"""Neighbouring grey level dependence matrix features (IBSI 1 §3.11): 2D, 2.5D and 3D.

Coarseness parameter alpha = 0 and Chebyshev distance 1: a voxel's dependence count is 1 (the
voxel itself) plus the number of its ROI neighbours with the same grey level (8 in-plane
neighbours for 2D / 2.5D, 26 in 3D). Counted from the neighbour look-ups shared with GLCM.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from oncohybrid.radiomics.roi import AGG_2D, AGG_3D, AGG_25D
from oncohybrid.radiomics.texture._grid import DIRECTIONS, N_IN_PLANE, TextureGrid
from oncohybrid.radiomics.texture._matrix import matrix_features, mean_over, wants

#: IBSI identifiers of the 17 NGLDM features (IBSI 1 §3.11.1 … §3.11.17)
FEATURE_IDS = {
    "se": "SODN", "le": "IMOQ", "lge": "TL9H", "hge": "OAE7", "slge": "EQ3F",
    "shge": "JA6D", "llge": "NBZI", "lhge": "9QMG", "glnu": "FP8K", "glnu_norm": "5SPA",
    "jnu": "Z87G", "jnu_norm": "OKJI", "perc": "6XV8", "gl_var": "1PFV", "j_var": "DNX2",
    "j_entr": "FCBV", "energy": "CAS9",
}


def dependence_counts(grid: TextureGrid) -> tuple[np.ndarray, np.ndarray]:
    """Dependence count of every ROI voxel in the slice plane and in 3D (centre included)."""
    count = np.ones(grid.flat.size, dtype=np.int64)
    in_plane = count
    for k in range(len(DIRECTIONS)):
        if k == N_IN_PLANE:
            in_plane = count.copy()
        count += grid.neighbours[k] == grid.grey
        count += grid.neighbours_back[k] == grid.grey
    return in_plane, count


def ngldm_features(grid: TextureGrid, dims: Collection[str] | None = None) -> dict[str, float]:
    """NGLDM features keyed ``"ID/AGG"``: the three IBSI aggregations, or those of ``dims``."""
    n_g, n_z = grid.n_levels, grid.n_slices
    dep2, dep3 = dependence_counts(grid)
    n_j2, n_j3 = 3**2, 3**3
    n_v = np.array([float(grid.flat.size)])
    results: dict[str, dict[str, float]] = {}
    if wants(dims, "2D") or wants(dims, "2.5D"):
        code2 = (grid.slice_index * n_g + grid.grey - 1) * n_j2 + dep2 - 1
        per_slice = np.bincount(code2, minlength=n_z * n_g * n_j2).reshape(n_z, n_g, n_j2)
        if wants(dims, "2D"):
            voxels_slice = np.bincount(grid.slice_index, minlength=n_z).astype(np.float64)
            results[AGG_2D] = mean_over(matrix_features(per_slice, voxels_slice),
                                        voxels_slice > 0)
        if wants(dims, "2.5D"):
            results[AGG_25D] = mean_over(matrix_features(per_slice.sum(axis=0)[None], n_v),
                                         np.ones(1, bool))
    if wants(dims, "3D"):
        whole = np.bincount((grid.grey - 1) * n_j3 + dep3 - 1,
                            minlength=n_g * n_j3).reshape(1, n_g, n_j3)
        results[AGG_3D] = mean_over(matrix_features(whole, n_v), np.ones(1, bool))
    return {f"{FEATURE_IDS[name]}/{agg}": value
            for agg, values in results.items() for name, value in values.items()}
