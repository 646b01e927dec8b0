"""Neighbourhood grey tone difference matrix features (IBSI 1 §3.10): 2D, 2.5D and 3D.

For every ROI voxel the average grey level of its neighbours at Chebyshev distance 1 that lie
in the ROI (8 in-plane neighbours for 2D / 2.5D, 26 in 3D; the centre excluded) is summed from
the neighbour look-ups shared with GLCM. Voxels without any
neighbour in the ROI do not count (IBSI 1 §3.10). ``s_i`` sums |i - average| over the voxels
of grey level i, ``n_i`` counts them.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from oncohybrid.radiomics.roi import AGG_2D, AGG_3D, AGG_25D
from oncohybrid.radiomics.texture._grid import DIRECTIONS, N_IN_PLANE, TextureGrid
from oncohybrid.radiomics.texture._matrix import mean_over, wants

#: IBSI identifiers of the 5 NGTDM features (IBSI 1 §3.10.1 … §3.10.5)
FEATURE_IDS = {"coarseness": "QCDE", "contrast": "65HE", "busyness": "NQ30",
               "complexity": "HDEZ", "strength": "1X9X"}

#: IBSI 1 §3.10.1: coarseness when sum p_i s_i = 0 (a single grey level)
COARSENESS_MAX = 1.0e6


def neighbour_sums(grid: TextureGrid) -> tuple[np.ndarray, ...]:
    """Sum of the grey levels and number of the ROI neighbours of each ROI voxel, in the
    slice plane (8-neighbourhood) and in 3D (26-neighbourhood): (sum2, n2, sum3, n3)."""
    total = np.zeros(grid.flat.size, dtype=np.int64)
    count = np.zeros(grid.flat.size, dtype=np.int64)
    in_plane: tuple[np.ndarray, np.ndarray] = (total, count)
    for k in range(len(DIRECTIONS)):
        if k == N_IN_PLANE:
            in_plane = (total.copy(), count.copy())
        for nb in (grid.neighbours[k], grid.neighbours_back[k]):
            total += nb
            count += nb > 0
    return in_plane[0], in_plane[1], total, count


def ngtdm_vectors(grid: TextureGrid, total: np.ndarray, count: np.ndarray, by_slice: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``s_i`` and ``n_i`` per slice (n_slices, N_g) when ``by_slice``, else (1, N_g), from
    each voxel's neighbour grey-level sum and neighbour count."""
    ok = count > 0
    s = np.abs(grid.grey[ok] - total[ok] / count[ok])
    n_g = grid.n_levels
    group = grid.slice_index[ok] if by_slice else np.zeros(int(ok.sum()), dtype=np.int64)
    n_groups = grid.n_slices if by_slice else 1
    code = group * n_g + grid.grey[ok] - 1
    s_i = np.bincount(code, weights=s, minlength=n_groups * n_g).reshape(n_groups, n_g)
    n_i = np.bincount(code, minlength=n_groups * n_g).reshape(n_groups, n_g).astype(np.float64)
    return s_i, n_i


def ngtdm_vector_features(s_i: np.ndarray, n_i: np.ndarray) -> dict[str, np.ndarray]:
    """The 5 NGTDM features of a batch (B, N_g) of ``s_i`` and ``n_i`` (IBSI 1 §3.10)."""
    n_vc = n_i.sum(axis=1)
    lv = np.arange(1, s_i.shape[1] + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = n_i / n_vc[:, None]
        present = p > 0
        pair = present[:, :, None] & present[:, None, :]
        n_gp = present.sum(axis=1).astype(np.float64)
        ps = (p * s_i).sum(axis=1)
        s_sum = s_i.sum(axis=1)
        d = lv[:, None] - lv[None, :]
        p_i = p[:, :, None]
        p_j = p[:, None, :]
        contrast = ((p_i * p_j * d**2).sum(axis=(1, 2)) / (n_gp * (n_gp - 1.0))
                    * s_sum / n_vc)
        busy_den = np.where(pair, np.abs(lv[:, None] * p_i - lv[None, :] * p_j), 0.0)
        busy_den = busy_den.sum(axis=(1, 2))
        ps_i = (p * s_i)[:, :, None]
        ps_j = (p * s_i)[:, None, :]
        cplx = np.where(pair, np.abs(d) * (ps_i + ps_j) / np.where(pair, p_i + p_j, 1.0), 0.0)
        strength_num = np.where(pair, (p_i + p_j) * d**2, 0.0).sum(axis=(1, 2))
        out = {
            "coarseness": np.where(ps > 0, 1.0 / ps, COARSENESS_MAX),
            "contrast": np.where(n_gp > 1, contrast, 0.0),
            "busyness": np.where(busy_den > 0, ps / busy_den, 0.0),
            "complexity": cplx.sum(axis=(1, 2)) / n_vc,
            "strength": np.where(s_sum > 0, strength_num / s_sum, 0.0),
        }
    empty = n_vc == 0
    for value in out.values():
        value[empty] = np.nan
    return out


def ngtdm_features(grid: TextureGrid, dims: Collection[str] | None = None) -> dict[str, float]:
    """NGTDM features keyed ``"ID/AGG"``: the three IBSI aggregations, or those of ``dims``."""
    sum2, cnt2, sum3, cnt3 = neighbour_sums(grid)
    results: dict[str, dict[str, float]] = {}
    if wants(dims, "2D") or wants(dims, "2.5D"):
        s2, n2 = ngtdm_vectors(grid, sum2, cnt2, by_slice=True)
        if wants(dims, "2D"):
            results[AGG_2D] = mean_over(ngtdm_vector_features(s2, n2), n2.sum(axis=1) > 0)
        if wants(dims, "2.5D"):
            results[AGG_25D] = {k: float(v[0]) for k, v in ngtdm_vector_features(
                s2.sum(axis=0)[None], n2.sum(axis=0)[None]).items()}
    if wants(dims, "3D"):
        s3, n3 = ngtdm_vectors(grid, sum3, cnt3, by_slice=False)
        results[AGG_3D] = {k: float(v[0]) for k, v in ngtdm_vector_features(s3, n3).items()}
    return {f"{FEATURE_IDS[name]}/{agg}": value
            for agg, values in results.items() for name, value in values.items()}
