"""Segmentation evaluation the autoPET way, and per-label volumes and components.

autoPET (reference code ``lab-midas/autoPET/val_script.py``; Gatidis et al., autoPET
challenges 2022–2024), per case on binary foreground masks (all lesion labels merged):

* **Dice** ``2|P∩G| / (|P| + |G|)``; undefined (``None``) when both are empty.
* **False-positive volume** (ml): total volume of the *predicted* connected components that
  share no voxel with G.
* **False-negative volume** (ml): total volume of the *ground-truth* components that share
  no voxel with P.
* Components with **18-connectivity** (faces and edges, as autoPET's ``cc3d`` call).

Lesion-wise detection (rule stated, as there is no single standard): a GT lesion (18-connected
component) is *detected* when it overlaps the prediction by ≥ 1 voxel; **sensitivity** =
detected / GT lesions (``None`` without GT lesions); **false positives per scan** = number of
predicted components with no GT overlap (the components of the FP volume).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["autopet_metrics", "components", "connectivity_structure", "label_summary"]


def connectivity_structure(connectivity: int) -> np.ndarray:
    """3-D neighbourhood for 6-, 18- or 26-connectivity (faces, + edges, + corners)."""
    ranks = {6: 1, 18: 2, 26: 3}
    if connectivity not in ranks:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    return ndimage.generate_binary_structure(3, ranks[connectivity])


def components(mask: np.ndarray, connectivity: int = 18) -> tuple[np.ndarray, int]:
    """Connected components of a binary mask: (label array, number of components)."""
    labelled, n = ndimage.label(np.asarray(mask, dtype=bool),
                                structure=connectivity_structure(connectivity))
    return labelled, int(n)


def _voxel_ml(spacing_mm: Sequence[float]) -> float:
    return float(np.prod([float(s) for s in spacing_mm])) / 1000.0


def autopet_metrics(pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float], *,
                    connectivity: int = 18) -> dict[str, Any]:
    """Dice, FP/FN volume (ml), lesion-wise sensitivity and FP lesions of one case.

    ``pred`` and ``gt`` are masks on one grid (any non-zero label is foreground);
    ``spacing_mm`` the voxel size (z, y, x).

    >>> p = np.zeros((1, 1, 10), bool); g = p.copy()
    >>> p[0, 0, [0, 1, 5]] = True; g[0, 0, [1, 2, 8]] = True
    >>> m = autopet_metrics(p, g, (10, 10, 10))   # 1 ml voxels
    >>> m["dice"], m["false_positive_volume_ml"], m["false_negative_volume_ml"]
    (0.3333333333333333, 1.0, 1.0)
    """
    p = np.asarray(pred) != 0
    g = np.asarray(gt) != 0
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} are on different "
                         "grids")
    vox_ml = _voxel_ml(spacing_mm)
    n_p, n_g = int(p.sum()), int(g.sum())
    inter = int(np.logical_and(p, g).sum())
    dice = 2.0 * inter / (n_p + n_g) if (n_p + n_g) else None
    p_lab, p_n = components(p, connectivity)
    g_lab, g_n = components(g, connectivity)
    # Components touching the other mask: labels present under it.
    p_hit = np.zeros(p_n + 1, dtype=bool)
    p_hit[np.unique(p_lab[g])] = True
    g_hit = np.zeros(g_n + 1, dtype=bool)
    g_hit[np.unique(g_lab[p])] = True
    p_sizes = np.bincount(p_lab.ravel(), minlength=p_n + 1)
    g_sizes = np.bincount(g_lab.ravel(), minlength=g_n + 1)
    fp_ids = [k for k in range(1, p_n + 1) if not p_hit[k]]
    fn_ids = [k for k in range(1, g_n + 1) if not g_hit[k]]
    detected = g_n - len(fn_ids)
    return {
        "dice": dice,
        "false_positive_volume_ml": float(p_sizes[fp_ids].sum()) * vox_ml,
        "false_negative_volume_ml": float(g_sizes[fn_ids].sum()) * vox_ml,
        "prediction_volume_ml": n_p * vox_ml,
        "ground_truth_volume_ml": n_g * vox_ml,
        "gt_lesions": g_n,
        "predicted_lesions": p_n,
        "detected_lesions": detected,
        "sensitivity": detected / g_n if g_n else None,
        "false_positive_lesions": len(fp_ids),
        "connectivity": connectivity,
        "detection_rule": "GT lesion detected when it overlaps the prediction by >= 1 voxel",
    }


def label_summary(labels: np.ndarray, spacing_mm: Sequence[float],
                  names: Mapping[int, str], *, connectivity: int = 18) -> dict[str, Any]:
    """Per label of ``names``: voxels, volume (ml) and connected components (each with its
    voxels, volume and centroid voxel index (z, y, x)), largest first."""
    vox_ml = _voxel_ml(spacing_mm)
    out: dict[str, Any] = {}
    for value, name in names.items():
        mask = np.asarray(labels) == value
        lab, n = components(mask, connectivity)
        sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        centroids = ndimage.center_of_mass(mask, lab, range(1, n + 1)) if n else []
        comps = [{"voxels": int(sizes[k]), "volume_ml": float(sizes[k]) * vox_ml,
                  "centroid_zyx": [round(float(c), 2) for c in centroids[k]]}
                 for k in range(n)]
        comps.sort(key=lambda c: -c["voxels"])
        out[str(value)] = {"name": name, "voxels": int(mask.sum()),
                           "volume_ml": float(mask.sum()) * vox_ml,
                           "n_components": n, "components": comps}
    return out
