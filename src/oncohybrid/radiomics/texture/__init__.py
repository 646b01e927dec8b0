"""IBSI-1 texture families (IBSI 1 §3.6–§3.11) with every aggregation.

:func:`texture_features` takes the discretised grey levels of one ROI (int, axes (z, y, x),
0 outside the intensity mask, 1..``n_levels`` inside), the number of levels N_g and the
morphological mask, and returns ``{"ID/AGG": value}`` for GLCM, GLRLM, GLSZM, GLDZM, NGTDM
and NGLDM under every IBSI aggregation (see :mod:`oncohybrid.radiomics.roi`).

Example:
    >>> import numpy as np
    >>> levels = np.array([[[1, 2], [2, 2]]])
    >>> round(texture_features(levels, 2)["8ZQL/IAZD"], 3)   # GLCM energy, 3D merged
    0.5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from oncohybrid.radiomics.roi import Roi
from oncohybrid.radiomics.texture._grid import TextureGrid
from oncohybrid.radiomics.texture.glcm import glcm_features
from oncohybrid.radiomics.texture.glrlm import glrlm_features

FAMILIES: dict[str, Callable[[TextureGrid], dict[str, float]]] = {
    "glcm": glcm_features,
    "glrlm": glrlm_features,
}


def texture_features(levels: np.ndarray, n_levels: int, morph_mask: np.ndarray | None = None,
                     families: Iterable[str] | None = None) -> dict[str, float]:
    """Texture features of one ROI keyed ``"ID/AGG"`` (IBSI 1 §3.6–§3.11).

    ``morph_mask`` (bool, same shape) is the morphological mask; GLDZM measures zone
    distances to its border (IBSI 1 §3.9). Absent, the intensity mask (``levels > 0``) is used.
    ``families`` restricts the output (names as in :data:`FAMILIES`).
    """
    grid = TextureGrid.from_levels(levels, n_levels, morph_mask)
    chosen = FAMILIES if families is None else {name: FAMILIES[name] for name in families}
    out: dict[str, float] = {}
    for compute in chosen.values():
        out.update(compute(grid))
    return out


def roi_texture_features(roi: Roi, families: Iterable[str] | None = None) -> dict[str, float]:
    """:func:`texture_features` of a discretised :class:`Roi` (``levels`` and ``n_levels`` set)."""
    if roi.levels is None or roi.n_levels is None:
        raise ValueError("the Roi carries no discretised grey levels (levels, n_levels)")
    return texture_features(roi.levels, roi.n_levels, roi.morph_mask, families)
