"""Grey level co-occurrence matrix features (IBSI 1 §3.6), every aggregation.

Symmetric co-occurrence at Chebyshev distance 1: 4 in-plane directions for 2D / 2.5D, the
13 unique 3D directions for 3D. Matrices are N_g × N_g with N_g the number of discretised
levels (levels absent from the ROI keep their empty rows: IBSI trap on N_g). Counting is one
``np.bincount`` of pair codes per direction; the features are evaluated for a batch of
matrices at once.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

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
from oncohybrid.radiomics.texture._matrix import mean_over, wants

#: IBSI identifiers of the 25 GLCM features (IBSI 1 §3.6.1 … §3.6.25)
FEATURE_IDS = {
    "joint_max": "GYBY", "joint_avg": "60VM", "joint_var": "UR99", "joint_entr": "TU9B",
    "diff_avg": "TF7R", "diff_var": "D3YU", "diff_entr": "NTRS", "sum_avg": "ZGXS",
    "sum_var": "OEEB", "sum_entr": "P6QZ", "energy": "8ZQL", "contrast": "ACUI",
    "dissimilarity": "8S9J", "inv_diff": "IB1Z", "inv_diff_norm": "NDRX",
    "inv_diff_mom": "WF0Z", "inv_diff_mom_norm": "1QCO", "inv_var": "E8JP", "corr": "NI2N",
    "auto_corr": "QWB0", "clust_tend": "DG8W", "clust_shade": "7NFM", "clust_prom": "AE86",
    "info_corr_1": "R8DG", "info_corr_2": "JN9H",
}


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits along the last axis (0 log 0 = 0)."""
    logs = np.zeros_like(p)
    np.log2(p, out=logs, where=p > 0)
    return -np.einsum("...k,...k->...", p, logs)


@lru_cache(maxsize=8)
def _linear_weights(n_g: int) -> np.ndarray:
    """Columns that turn a flattened matrix into its marginals in one product: p_{i-j}
    (k = 0..N_g-1), p_{i+j} (k = 2..2 N_g), p_i., p_.j, and the weight i j."""
    lv = np.arange(1, n_g + 1)
    i, j = np.meshgrid(lv, lv, indexing="ij")
    rows = np.arange(n_g * n_g)
    w = np.zeros((n_g * n_g, 5 * n_g))
    w[rows, np.abs(i - j).ravel()] = 1.0
    w[rows, n_g + (i + j).ravel() - 2] = 1.0
    w[rows, 3 * n_g - 1 + i.ravel() - 1] = 1.0
    w[rows, 4 * n_g - 1 + j.ravel() - 1] = 1.0
    w[:, 5 * n_g - 1] = (i * j).ravel()
    return w


def glcm_matrix_features(m: np.ndarray) -> dict[str, np.ndarray]:
    """The 25 GLCM features of a batch ``m`` (B, N_g, N_g) of co-occurrence counts.

    Every feature is written through the marginals p_{i-j}, p_{i+j}, p_i., p_.j (IBSI 1
    §3.6), obtained for the whole batch with one matrix product; only the joint maximum,
    energy and joint entropy need the full matrix. Empty matrices give NaN.
    """
    b, n_g, _ = m.shape
    flat = np.asarray(m, dtype=np.float64).reshape(b, n_g * n_g)
    total = flat.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = flat / total[:, None]
        marg = p @ _linear_weights(n_g)
        p_minus = marg[:, :n_g]
        p_plus = marg[:, n_g:3 * n_g - 1]
        p_x = marg[:, 3 * n_g - 1:4 * n_g - 1]
        p_y = marg[:, 4 * n_g - 1:5 * n_g - 1]
        auto_corr = marg[:, 5 * n_g - 1]
        lv = np.arange(1, n_g + 1, dtype=np.float64)
        k_m = np.arange(n_g, dtype=np.float64)
        k_p = np.arange(2, 2 * n_g + 1, dtype=np.float64)
        mu_x = p_x @ lv
        mu_y = p_y @ lv
        var_x = p_x @ lv**2 - mu_x**2
        var_y = p_y @ lv**2 - mu_y**2
        diff_avg = p_minus @ k_m
        sum_avg = p_plus @ k_p
        cluster = k_p[None, :] - (mu_x + mu_y)[:, None]
        h_xy = _entropy(p)
        h_x = _entropy(p_x)
        h_y = _entropy(p_y)
        # HXY1 = HXY2 = HX + HY: the sums of p log(p_i p_j) split into the marginals
        h_xy1 = h_x + h_y
        inv_k2 = np.zeros(n_g)
        inv_k2[1:] = 1.0 / k_m[1:] ** 2
        out = {
            "joint_max": p.max(axis=1),
            "joint_avg": mu_x,
            "joint_var": var_x,
            "joint_entr": h_xy,
            "diff_avg": diff_avg,
            "diff_var": (p_minus * (k_m[None, :] - diff_avg[:, None]) ** 2).sum(axis=1),
            "diff_entr": _entropy(p_minus),
            "sum_avg": sum_avg,
            "sum_var": (p_plus * (k_p[None, :] - sum_avg[:, None]) ** 2).sum(axis=1),
            "sum_entr": _entropy(p_plus),
            "energy": np.einsum("bk,bk->b", p, p),
            "contrast": p_minus @ k_m**2,
            "dissimilarity": diff_avg,
            "inv_diff": p_minus @ (1.0 / (1.0 + k_m)),
            "inv_diff_norm": p_minus @ (1.0 / (1.0 + k_m / n_g)),
            "inv_diff_mom": p_minus @ (1.0 / (1.0 + k_m**2)),
            "inv_diff_mom_norm": p_minus @ (1.0 / (1.0 + k_m**2 / n_g**2)),
            "inv_var": p_minus @ inv_k2,
            "corr": (auto_corr - mu_x * mu_y) / np.sqrt(var_x * var_y),
            "auto_corr": auto_corr,
            "clust_tend": (p_plus * cluster**2).sum(axis=1),
            "clust_shade": (p_plus * cluster**3).sum(axis=1),
            "clust_prom": (p_plus * cluster**4).sum(axis=1),
            "info_corr_1": (h_xy - h_xy1) / np.maximum(h_x, h_y),
            "info_corr_2": np.sqrt(np.clip(1.0 - np.exp(-2.0 * (h_xy1 - h_xy)), 0.0, None)),
        }
    return out


def glcm_matrices(grid: TextureGrid, by_slice: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric co-occurrence counts: per slice and in-plane direction (n_slices, 4, N_g, N_g)
    and per 3D direction (13, N_g, N_g). ``by_slice`` False counts the in-plane directions
    over the whole ROI at once (same per-direction counts) and gives (0, 4, N_g, N_g)."""
    n_g = grid.n_levels
    n_z = grid.n_slices if by_slice else 0
    per_slice = np.empty((n_z, N_IN_PLANE, n_g, n_g), dtype=np.float64)
    per_dir = np.empty((len(DIRECTIONS), n_g, n_g), dtype=np.float64)
    base = (grid.grey - 1) * n_g
    for k in range(len(DIRECTIONS)):
        nb = grid.neighbours[k]
        ok = nb > 0
        code = base[ok] + nb[ok] - 1
        if k < N_IN_PLANE and by_slice:
            code = code + grid.slice_index[ok] * (n_g * n_g)
            counts = np.bincount(code, minlength=n_z * n_g * n_g).reshape(n_z, n_g, n_g)
            counts = counts + counts.transpose(0, 2, 1)
            per_slice[:, k] = counts
            per_dir[k] = counts.sum(axis=0)
        else:
            counts = np.bincount(code, minlength=n_g * n_g).reshape(n_g, n_g)
            per_dir[k] = counts + counts.T
    return per_slice, per_dir


def glcm_features(grid: TextureGrid, dims: Collection[str] | None = None) -> dict[str, float]:
    """GLCM features keyed ``"ID/AGG"`` (IBSI 1 §3.6): the six IBSI aggregations, or those of
    the texture dimensionalities ``dims`` ("2D", "2.5D", "3D"; None: all)."""
    per_slice, per_dir = glcm_matrices(grid, by_slice=wants(dims, "2D"))
    n_z, n_d, n_g, _ = per_slice.shape
    results: dict[str, dict[str, float]] = {}
    if wants(dims, "2D"):
        # 2D averaged: one matrix per slice and direction
        flat2d = per_slice.reshape(n_z * n_d, n_g, n_g)
        flat2d = flat2d[flat2d.sum(axis=(1, 2)) > 0]      # empty matrices do not take part
        results[AGG_2D_AVG] = mean_over(glcm_matrix_features(flat2d),
                                        np.ones(len(flat2d), bool))
        # 2D slice-merged: directions merged within each slice
        merged = per_slice.sum(axis=1)
        merged = merged[merged.sum(axis=(1, 2)) > 0]
        results[AGG_2D_SMRG] = mean_over(glcm_matrix_features(merged),
                                         np.ones(len(merged), bool))
    if wants(dims, "2.5D"):
        # 2.5D direction-merged: slices merged per direction; 2.5D merged: everything
        in_plane = per_dir[:N_IN_PLANE]
        results[AGG_25D_DMRG] = mean_over(glcm_matrix_features(in_plane),
                                          in_plane.sum(axis=(1, 2)) > 0)
        both = in_plane.sum(axis=0)[None]
        results[AGG_25D_MRG] = mean_over(glcm_matrix_features(both),
                                         both.sum(axis=(1, 2)) > 0)
    if wants(dims, "3D"):
        # 3D averaged over the 13 directions; 3D merged
        results[AGG_3D_AVG] = mean_over(glcm_matrix_features(per_dir),
                                        per_dir.sum(axis=(1, 2)) > 0)
        all3d = per_dir.sum(axis=0)[None]
        results[AGG_3D_MRG] = mean_over(glcm_matrix_features(all3d),
                                        all3d.sum(axis=(1, 2)) > 0)
    return {f"{FEATURE_IDS[name]}/{agg}": value
            for agg, values in results.items() for name, value in values.items()}
