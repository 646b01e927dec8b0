"""Grey level size zone matrix features (IBSI 1 §3.8): 2D, 2.5D and 3D.

The matrix counts zones by grey level and size; only the sizes that occur are kept as
columns (their sizes are passed to the feature formulas), which keeps per-slice matrices
small for large ROIs.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from oncohybrid.radiomics.roi import AGG_2D, AGG_3D, AGG_25D
from oncohybrid.radiomics.texture._grid import TextureGrid
from oncohybrid.radiomics.texture._matrix import matrix_features, mean_over, wants
from oncohybrid.radiomics.texture._zones import Zones, zones_2d, zones_3d

#: IBSI identifiers of the 16 GLSZM features (IBSI 1 §3.8.1 … §3.8.16)
FEATURE_IDS = {
    "se": "5QRC", "le": "48P8", "lge": "XMSY", "hge": "5GN9", "slge": "5RAI",
    "shge": "HW1V", "llge": "YH51", "lhge": "J17V", "glnu": "JNSA", "glnu_norm": "Y1RO",
    "jnu": "4JP3", "jnu_norm": "VB3A", "perc": "P30P", "gl_var": "BYLV", "j_var": "3NSA",
    "j_entr": "GU8N",
}


def zone_matrices(grey: np.ndarray, second: np.ndarray, group: np.ndarray, n_groups: int,
                  n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts (n_groups, N_g, N_j) of zones by group (slice), grey level and second index,
    keeping only the values of ``second`` that occur; returns (matrices, those values)."""
    present = np.bincount(second) > 0          # sizes are small integers: no sort needed
    values = np.flatnonzero(present)
    column = (np.cumsum(present) - 1)[second]
    n_j = values.size
    code = (group * n_levels + grey - 1) * n_j + column
    counts = np.bincount(code, minlength=n_groups * n_levels * n_j)
    return counts.reshape(n_groups, n_levels, n_j).astype(np.float64), values


def aggregate(zones2d: Zones | None, zones3d: Zones | None, second2d: np.ndarray | None,
              second3d: np.ndarray | None, grid: TextureGrid, feature_ids: dict[str, str],
              dims: Collection[str] | None = None) -> dict[str, float]:
    """Features of zone-type matrices under 2D (per slice, averaged), 2.5D (slices merged)
    and 3D aggregation (IBSI 1 §3.8, §3.9); only those of ``dims`` ("2D", "2.5D", "3D";
    None: all), whose zones (2D zones for 2D and 2.5D) must then be given."""
    n_g, n_z = grid.n_levels, grid.n_slices
    n_v = float(grid.flat.size)
    results: dict[str, dict[str, float]] = {}
    if wants(dims, "2D") or wants(dims, "2.5D"):
        if zones2d is None or second2d is None:
            raise ValueError("2D and 2.5D aggregation need the 2D zones and their second index")
        per_slice, values = zone_matrices(zones2d.grey, second2d, zones2d.slice_of, n_z, n_g)
        if wants(dims, "2D"):
            voxels_slice = np.bincount(grid.slice_index, minlength=n_z).astype(np.float64)
            results[AGG_2D] = mean_over(matrix_features(per_slice, voxels_slice, values),
                                        voxels_slice > 0)
        if wants(dims, "2.5D"):
            results[AGG_25D] = mean_over(matrix_features(per_slice.sum(axis=0)[None],
                                                         np.array([n_v]), values),
                                         np.ones(1, bool))
    if wants(dims, "3D"):
        if zones3d is None or second3d is None:
            raise ValueError("3D aggregation needs the 3D zones and their second index")
        whole, values3 = zone_matrices(zones3d.grey, second3d, np.zeros_like(zones3d.grey), 1,
                                       n_g)
        results[AGG_3D] = mean_over(matrix_features(whole, np.array([n_v]), values3),
                                    np.ones(1, bool))
    return {f"{feature_ids[name]}/{agg}": value
            for agg, values_ in results.items() for name, value in values_.items()
            if name in feature_ids}


def glszm_features(grid: TextureGrid, zones2d: Zones | None = None,
                   zones3d: Zones | None = None, dims: Collection[str] | None = None
                   ) -> dict[str, float]:
    """GLSZM features keyed ``"ID/AGG"``: the three IBSI aggregations, or those of ``dims``."""
    z2 = z3 = None
    if wants(dims, "2D") or wants(dims, "2.5D"):
        z2 = zones_2d(grid) if zones2d is None else zones2d
    if wants(dims, "3D"):
        z3 = zones_3d(grid) if zones3d is None else zones3d
    return aggregate(z2, z3, None if z2 is None else z2.size, None if z3 is None else z3.size,
                     grid, FEATURE_IDS, dims)
