"""IBSI-1 texture families (IBSI 1 §3.6–§3.11) with every aggregation.

:func:`texture_features` takes the discretised grey levels of one ROI (int, axes (z, y, x),
0 outside the intensity mask, 1..``n_levels`` inside), the number of levels N_g and the
morphological mask, and returns ``{"ID/AGG": value}`` for GLCM, GLRLM, GLSZM, GLDZM, NGTDM
and NGLDM under every IBSI aggregation (see :mod:`oncohybrid.radiomics.roi`).

Example:
    >>> import numpy as np
    >>> levels = np.array([[[1, 2], [2, 2]]])
    >>> round(texture_features(levels, 2)["8ZQL/IAZD"], 3)   # GLCM energy, 3D merged
    0.375
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import numpy as np

from oncohybrid.radiomics.roi import Roi
from oncohybrid.radiomics.texture._grid import TextureGrid
from oncohybrid.radiomics.texture._matrix import wants
from oncohybrid.radiomics.texture._zones import zones_2d, zones_3d
from oncohybrid.radiomics.texture.glcm import glcm_features
from oncohybrid.radiomics.texture.gldzm import gldzm_features
from oncohybrid.radiomics.texture.glrlm import glrlm_features
from oncohybrid.radiomics.texture.glszm import glszm_features
from oncohybrid.radiomics.texture.ngldm import ngldm_features
from oncohybrid.radiomics.texture.ngtdm import ngtdm_features

FAMILIES: dict[str, Callable[..., dict[str, float]]] = {
    "glcm": glcm_features,
    "glrlm": glrlm_features,
    "glszm": glszm_features,
    "gldzm": gldzm_features,
    "ngtdm": ngtdm_features,
    "ngldm": ngldm_features,
}
_ZONE_FAMILIES = ("glszm", "gldzm")


def texture_features(levels: np.ndarray, n_levels: int, morph_mask: np.ndarray | None = None,
                     families: Iterable[str] | None = None,
                     dims: Collection[str] | None = None) -> dict[str, float]:
    """Texture features of one ROI keyed ``"ID/AGG"`` (IBSI 1 §3.6–§3.11).

    ``morph_mask`` (bool, same shape) is the morphological mask; GLDZM measures zone
    distances to its border (IBSI 1 §3.9). Absent, the intensity mask (``levels > 0``) is used.
    ``families`` restricts the output (names as in :data:`FAMILIES`); ``dims`` ("2D",
    "2.5D", "3D"; None: all) restricts it to the aggregations of those dimensionalities,
    and the matrices of the others are not computed (same values for those reported).
    """
    if dims is not None:
        bad = sorted(set(dims) - {"2D", "2.5D", "3D"})
        if bad:
            raise ValueError(f"unknown texture dimensionalities {bad}; known: 2D, 2.5D, 3D")
    grid = TextureGrid.from_levels(levels, n_levels, morph_mask)
    names = list(FAMILIES) if families is None else list(families)
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown texture families {unknown}; known: {sorted(FAMILIES)}")
    out: dict[str, float] = {}
    if any(name in _ZONE_FAMILIES for name in names):
        # GLSZM and GLDZM share the zones (IBSI 1 §3.8, §3.9): label them once
        z2 = zones_2d(grid) if wants(dims, "2D") or wants(dims, "2.5D") else None
        z3 = zones_3d(grid) if wants(dims, "3D") else None
        if "glszm" in names:
            out.update(glszm_features(grid, z2, z3, dims))
        if "gldzm" in names:
            out.update(gldzm_features(grid, z2, z3, dims))
    for name in names:
        if name not in _ZONE_FAMILIES:
            out.update(FAMILIES[name](grid, dims=dims))
    return out


def roi_texture_features(roi: Roi, families: Iterable[str] | None = None,
                         dims: Collection[str] | None = None) -> dict[str, float]:
    """:func:`texture_features` of a discretised :class:`Roi` (``levels`` and ``n_levels`` set),
    restricted to the aggregations of the texture dimensionalities ``dims`` (None: all)."""
    if roi.levels is None or roi.n_levels is None:
        raise ValueError("the Roi carries no discretised grey levels (levels, n_levels)")
    return texture_features(roi.levels, roi.n_levels, roi.morph_mask, families, dims)
