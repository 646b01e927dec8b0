"""Grey level distance zone matrix features (IBSI 1 §3.9): 2D, 2.5D and 3D.

Zones as for GLSZM; a zone's distance is the smallest distance to the ROI border over its
voxels. The distance map is taken on the morphological mask (IBSI 1 §3.9) with 4-connectivity
in the slice plane (2D, 2.5D) or 6-connectivity in 3D, a border voxel lying at distance 1:
the taxicab chamfer distance of ``scipy.ndimage.distance_transform_cdt`` on the zero-padded
mask.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy import ndimage

from oncohybrid.radiomics.texture._grid import TextureGrid
from oncohybrid.radiomics.texture._matrix import wants
from oncohybrid.radiomics.texture._zones import Zones, zones_2d, zones_3d
from oncohybrid.radiomics.texture.glszm import aggregate

#: IBSI identifiers of the 16 GLDZM features (IBSI 1 §3.9.1 … §3.9.16)
FEATURE_IDS = {
    "se": "0GBI", "le": "MB4I", "lge": "S1RA", "hge": "K26C", "slge": "RUVG",
    "shge": "DKNJ", "llge": "A7WM", "lhge": "KLTH", "glnu": "VFT7", "glnu_norm": "7HP3",
    "jnu": "V294", "jnu_norm": "IATH", "perc": "VIWW", "gl_var": "QK93", "j_var": "7WT1",
    "j_entr": "GBDU",
}

_IN_PLANE_CROSS = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE_CROSS[1] = ndimage.generate_binary_structure(2, 1)


def border_distance(grid: TextureGrid, in_plane: bool) -> np.ndarray:
    """Distance of each ROI voxel (order of ``grid.flat``) to the morphological border."""
    metric = _IN_PLANE_CROSS if in_plane else ndimage.generate_binary_structure(3, 1)
    dist = ndimage.distance_transform_cdt(grid.morph_padded, metric=metric)
    return dist.ravel()[grid.flat]


def zone_distance(zones: Zones, voxel_distance: np.ndarray) -> np.ndarray:
    """Smallest voxel distance within each zone."""
    out = np.full(zones.size.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, zones.voxel_zone, voxel_distance.astype(np.int64))
    return out


def gldzm_features(grid: TextureGrid, zones2d: Zones | None = None,
                   zones3d: Zones | None = None, dims: Collection[str] | None = None
                   ) -> dict[str, float]:
    """GLDZM features keyed ``"ID/AGG"``: the three IBSI aggregations, or those of ``dims``."""
    z2 = z3 = d2 = d3 = None
    if wants(dims, "2D") or wants(dims, "2.5D"):
        z2 = zones_2d(grid) if zones2d is None else zones2d
        d2 = zone_distance(z2, border_distance(grid, in_plane=True))
    if wants(dims, "3D"):
        z3 = zones_3d(grid) if zones3d is None else zones3d
        d3 = zone_distance(z3, border_distance(grid, in_plane=False))
    return aggregate(z2, z3, d2, d3, grid, FEATURE_IDS, dims)
