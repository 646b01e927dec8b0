"""Features shared by the run-, zone-, distance- and dependence-matrix families.

GLRLM (IBSI 1 §3.7), GLSZM (§3.8), GLDZM (§3.9) and NGLDM (§3.11) all define the same
features on a matrix ``m[i, j]``: grey level ``i`` = 1..N_g by a second index ``j`` = 1..N_j
(run length, zone size, zone distance or dependence count). This module computes them for a
batch of matrices at once, so one slice or one direction per row costs no Python loop.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

#: short names of the shared features in the order IBSI lists them for GLRLM / GLSZM / GLDZM
SHARED = ("se", "le", "lge", "hge", "slge", "shge", "llge", "lhge", "glnu", "glnu_norm",
          "jnu", "jnu_norm", "perc", "gl_var", "j_var", "j_entr")


def matrix_features(m: np.ndarray, n_voxels: np.ndarray,
                    j_values: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The IBSI features of a batch ``m`` (B, N_g, N_j) of counts; one value per matrix.

    ``n_voxels`` (B,) is N_v, the number of voxels the matrix was counted over (run, zone
    and dependence-count percentage). ``j_values`` gives the second index of each column
    when the matrix keeps only the columns that occur (zone sizes); default 1..N_j.
    Rows of an empty matrix give NaN.
    """
    m = np.asarray(m, dtype=np.float64)
    n_s = m.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = m / n_s[:, None, None]
        i = np.arange(1, m.shape[1] + 1, dtype=np.float64)
        j = (np.arange(1, m.shape[2] + 1, dtype=np.float64) if j_values is None
             else np.asarray(j_values, dtype=np.float64))
        i2 = (i * i)[:, None]
        j2 = (j * j)[None, :]
        p_i = p.sum(axis=2)
        p_j = p.sum(axis=1)
        mu_i = p_i @ i
        mu_j = p_j @ j
        plogp = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
        out = {
            "se": (p / j2).sum(axis=(1, 2)),
            "le": (p * j2).sum(axis=(1, 2)),
            "lge": (p / i2).sum(axis=(1, 2)),
            "hge": (p * i2).sum(axis=(1, 2)),
            "slge": (p / (i2 * j2)).sum(axis=(1, 2)),
            "shge": (p * i2 / j2).sum(axis=(1, 2)),
            "llge": (p * j2 / i2).sum(axis=(1, 2)),
            "lhge": (p * i2 * j2).sum(axis=(1, 2)),
            "glnu": (p_i * p_i).sum(axis=1) * n_s,
            "glnu_norm": (p_i * p_i).sum(axis=1),
            "jnu": (p_j * p_j).sum(axis=1) * n_s,
            "jnu_norm": (p_j * p_j).sum(axis=1),
            "perc": n_s / np.asarray(n_voxels, dtype=np.float64),
            "gl_var": (p_i * (i[None, :] - mu_i[:, None]) ** 2).sum(axis=1),
            "j_var": (p_j * (j[None, :] - mu_j[:, None]) ** 2).sum(axis=1),
            "j_entr": -plogp.sum(axis=(1, 2)),
            "energy": (p * p).sum(axis=(1, 2)),
        }
    empty = n_s == 0
    if empty.any():
        for value in out.values():
            value[empty] = np.nan
    return out


def wants(dims: Collection[str] | None, dim: str) -> bool:
    """Whether the texture dimensionality ``dim`` ("2D", "2.5D", "3D") is asked for;
    ``dims`` None asks for all three. Families skip the matrices of the others."""
    return dims is None or dim in dims


def mean_over(values: dict[str, np.ndarray], valid: np.ndarray) -> dict[str, float]:
    """Average each feature over the non-empty matrices ``valid`` (IBSI "averaged" and 2D
    aggregations: a slice or direction without any entry contributes nothing)."""
    if not valid.any():
        return {name: float("nan") for name in values}
    means = np.stack(list(values.values()))[:, valid].mean(axis=1)
    return dict(zip(values, means.tolist(), strict=True))
