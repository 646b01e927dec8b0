"""Grey level co-occurrence matrix features (IBSI 1 §3.6), every aggregation.

Symmetric co-occurrence at Chebyshev distance 1: 4 in-plane directions for 2D / 2.5D, the
13 unique 3D directions for 3D. Matrices are N_g × N_g with N_g the number of discretised
levels (levels absent from the ROI keep their empty rows: IBSI trap on N_g). Counting is one
``np.bincount`` of pair codes per direction; the features are evaluated for a batch of
matrices at once.
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
from oncohybrid.radiomics.texture._matrix import mean_over

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


def _entropy(p: np.ndarray, axis: tuple[int, ...] | int) -> np.ndarray:
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log2(safe)).sum(axis=axis)


def glcm_matrix_features(m: np.ndarray) -> dict[str, np.ndarray]:
    """The 25 GLCM features of a batch ``m`` (B, N_g, N_g) of symmetric co-occurrence counts."""
    m = np.asarray(m, dtype=np.float64)
    b, n_g, _ = m.shape
    total = m.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = m / total[:, None, None]
        lv = np.arange(1, n_g + 1, dtype=np.float64)
        i = lv[:, None]
        j = lv[None, :]
        diff = np.abs(i - j)
        p_x = p.sum(axis=2)                      # p_i. (= p_.j for a symmetric matrix)
        p_y = p.sum(axis=1)
        mu_x = p_x @ lv
        mu_y = p_y @ lv
        # marginal of |i - j| (k = 0..N_g-1) and of i + j (k = 2..2 N_g) through one-hot sums
        flat = p.reshape(b, n_g * n_g)
        k_minus = diff.ravel().astype(np.int64)
        k_plus = (i + j).ravel().astype(np.int64) - 2
        onehot_minus = np.zeros((n_g * n_g, n_g))
        onehot_minus[np.arange(n_g * n_g), k_minus] = 1.0
        onehot_plus = np.zeros((n_g * n_g, 2 * n_g - 1))
        onehot_plus[np.arange(n_g * n_g), k_plus] = 1.0
        p_minus = flat @ onehot_minus
        p_plus = flat @ onehot_plus
        k_m = np.arange(n_g, dtype=np.float64)
        k_p = np.arange(2, 2 * n_g + 1, dtype=np.float64)
        diff_avg = p_minus @ k_m
        sum_avg = p_plus @ k_p
        var_x = (p_x * (lv[None, :] - mu_x[:, None]) ** 2).sum(axis=1)
        var_y = (p_y * (lv[None, :] - mu_y[:, None]) ** 2).sum(axis=1)
        centred_i = i[None] - mu_x[:, None, None]
        centred_j = j[None] - mu_y[:, None, None]
        cluster = centred_i + centred_j
        h_xy = _entropy(p, (1, 2))
        h_x = _entropy(p_x, 1)
        h_y = _entropy(p_y, 1)
        outer = p_x[:, :, None] * p_y[:, None, :]
        log_outer = np.log2(np.where(outer > 0, outer, 1.0))
        h_xy1 = -(p * log_outer).sum(axis=(1, 2))
        h_xy2 = -(outer * log_outer).sum(axis=(1, 2))
        inv_var_w = np.where(diff > 0, 1.0 / np.where(diff > 0, diff, 1.0) ** 2, 0.0)
        out = {
            "joint_max": p.max(axis=(1, 2)),
            "joint_avg": mu_x,
            "joint_var": var_x,
            "joint_entr": h_xy,
            "diff_avg": diff_avg,
            "diff_var": (p_minus * (k_m[None, :] - diff_avg[:, None]) ** 2).sum(axis=1),
            "diff_entr": _entropy(p_minus, 1),
            "sum_avg": sum_avg,
            "sum_var": (p_plus * (k_p[None, :] - sum_avg[:, None]) ** 2).sum(axis=1),
            "sum_entr": _entropy(p_plus, 1),
            "energy": (p * p).sum(axis=(1, 2)),
            "contrast": (p * diff**2).sum(axis=(1, 2)),
            "dissimilarity": diff_avg,
            "inv_diff": (p / (1.0 + diff)).sum(axis=(1, 2)),
            "inv_diff_norm": (p / (1.0 + diff / n_g)).sum(axis=(1, 2)),
            "inv_diff_mom": (p / (1.0 + diff**2)).sum(axis=(1, 2)),
            "inv_diff_mom_norm": (p / (1.0 + diff**2 / n_g**2)).sum(axis=(1, 2)),
            "inv_var": (p * inv_var_w).sum(axis=(1, 2)),
            "corr": (p * centred_i * centred_j).sum(axis=(1, 2)) / np.sqrt(var_x * var_y),
            "auto_corr": (p * (i * j)).sum(axis=(1, 2)),
            "clust_tend": (p * cluster**2).sum(axis=(1, 2)),
            "clust_shade": (p * cluster**3).sum(axis=(1, 2)),
            "clust_prom": (p * cluster**4).sum(axis=(1, 2)),
            "info_corr_1": (h_xy - h_xy1) / np.maximum(h_x, h_y),
            "info_corr_2": np.sqrt(np.clip(1.0 - np.exp(-2.0 * (h_xy2 - h_xy)), 0.0, None)),
        }
    return out


def glcm_matrices(grid: TextureGrid) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric co-occurrence counts: per slice and in-plane direction (n_slices, 4, N_g, N_g)
    and per 3D direction (13, N_g, N_g)."""
    n_g = grid.n_levels
    n_z = grid.n_slices
    per_slice = np.empty((n_z, N_IN_PLANE, n_g, n_g), dtype=np.float64)
    per_dir = np.empty((len(DIRECTIONS), n_g, n_g), dtype=np.float64)
    base = (grid.grey - 1) * n_g
    for k in range(len(DIRECTIONS)):
        nb = grid.neighbours[k]
        ok = nb > 0
        code = base[ok] + nb[ok] - 1
        if k < N_IN_PLANE:
            code = code + grid.slice_index[ok] * (n_g * n_g)
            counts = np.bincount(code, minlength=n_z * n_g * n_g).reshape(n_z, n_g, n_g)
            counts = counts + counts.transpose(0, 2, 1)
            per_slice[:, k] = counts
            per_dir[k] = counts.sum(axis=0)
        else:
            counts = np.bincount(code, minlength=n_g * n_g).reshape(n_g, n_g)
            per_dir[k] = counts + counts.T
    return per_slice, per_dir


def glcm_features(grid: TextureGrid) -> dict[str, float]:
    """All GLCM features under the six IBSI aggregations, keyed ``"ID/AGG"`` (IBSI 1 §3.6)."""
    per_slice, per_dir = glcm_matrices(grid)
    n_z, n_d, n_g, _ = per_slice.shape
    results: dict[str, dict[str, float]] = {}
    # 2D averaged: one matrix per slice and direction
    flat2d = per_slice.reshape(n_z * n_d, n_g, n_g)
    results[AGG_2D_AVG] = mean_over(glcm_matrix_features(flat2d), flat2d.sum(axis=(1, 2)) > 0)
    # 2D slice-merged: directions merged within each slice
    merged = per_slice.sum(axis=1)
    results[AGG_2D_SMRG] = mean_over(glcm_matrix_features(merged), merged.sum(axis=(1, 2)) > 0)
    # 2.5D direction-merged: slices merged per direction; 2.5D merged: everything
    in_plane = per_dir[:N_IN_PLANE]
    results[AGG_25D_DMRG] = mean_over(glcm_matrix_features(in_plane),
                                  in_plane.sum(axis=(1, 2)) > 0)
    both = in_plane.sum(axis=0)[None]
    results[AGG_25D_MRG] = mean_over(glcm_matrix_features(both), both.sum(axis=(1, 2)) > 0)
    # 3D averaged over the 13 directions; 3D merged
    results[AGG_3D_AVG] = mean_over(glcm_matrix_features(per_dir), per_dir.sum(axis=(1, 2)) > 0)
    all3d = per_dir.sum(axis=0)[None]
    results[AGG_3D_MRG] = mean_over(glcm_matrix_features(all3d), all3d.sum(axis=(1, 2)) > 0)
    return {f"{FEATURE_IDS[name]}/{agg}": value
            for agg, values in results.items() for name, value in values.items()}
