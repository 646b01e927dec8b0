"""Physiological FDG uptake among thresholded PET components (heart, bladder, kidneys, brain).

No organ segmentation model is used; the rules are heuristics on PET (and CT when given),
shared by ``oncohybrid assess`` and ``oncohybrid quantify`` (docs/record.md,
docs/pet-metrics.md). Physiological FDG uptake in brain, myocardium, kidneys and bladder is
described in Boellaard R et al., *FDG PET/CT: EANM procedure guidelines for tumour imaging:
version 2.0*, Eur J Nucl Med Mol Imaging 2015;42:328-354; PERCIST 1.0 (Wahl 2009) measures
lesions, not these organs.

A component is physiological when (a) its MTV is >= ``min_mtv_ml`` (150 ml: heart, bladder,
brain are larger than the lesions a threshold method measures reliably), or (b) most of it
lies in an *organ-like region*: a connected region of the PET smoothed with sigma
``organ_smoothing_mm`` above ``organ_uptake_x_liver`` x liver SUVmean that is >=
``organ_min_volume_ml`` but never exceeds ``organ_max_uptake_x_liver`` x liver SUVmean at
its 95th percentile (kidneys, myocardium: large, moderately avid, flat uptake; a tumour
that large is far hotter). Rule (b) needs the liver SUVmean.

:func:`guess_organ` names the organ a physiological component most likely is, from its
position: in the thorax (slices with lung on CT) the heart; above the lungs, or in the top
fifth of a field of view without CT, the brain; below the lungs (or in the lower part of
the field of view) a large midline component is the bladder and a lateral one a kidney.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

#: Organs ``--exclude-physiological`` accepts.
ORGANS: tuple[str, ...] = ("heart", "bladder", "kidneys", "brain")


@dataclass(frozen=True)
class PhysiologicalRules:
    """Thresholds of the two rules (module docstring); assess's defaults."""

    min_mtv_ml: float = 150.0
    organ_smoothing_mm: float = 4.0
    organ_uptake_x_liver: float = 1.3
    organ_min_volume_ml: float = 60.0
    organ_max_uptake_x_liver: float = 2.5


def organ_regions(arr: np.ndarray, spacing: Sequence[float], liver_mean: float,
                  rules: PhysiologicalRules) -> tuple[np.ndarray, list[str]]:
    """Label map of organ-like regions (rule b) and their descriptions."""
    from oncohybrid.imaging.resample import gaussian_filter

    sigma = [rules.organ_smoothing_mm / s for s in spacing]
    smooth = gaussian_filter(arr.astype(np.float32), sigma)  # scipy's, bit for bit (#11)
    lab, n = ndimage.label(smooth >= rules.organ_uptake_x_liver * liver_mean)
    if n == 0:
        return np.zeros(arr.shape, np.int32), []
    vox_ml = float(np.prod(spacing)) / 1000.0
    keep = np.zeros(n + 1, bool)
    desc = []
    for i, box in enumerate(ndimage.find_objects(lab), start=1):
        if box is None:
            continue
        region = lab[box] == i
        vol = region.sum() * vox_ml
        if vol < rules.organ_min_volume_ml:
            continue
        p95 = float(np.percentile(smooth[box][region], 95))
        if p95 <= rules.organ_max_uptake_x_liver * liver_mean:
            keep[i] = True
            desc.append(f"{vol:.0f} ml, SUV p95 {p95:.2f}")
    return np.where(keep[lab], lab, 0).astype(np.int32), desc


def organ_map(arr: np.ndarray, spacing: Sequence[float], liver_mean: float | None,
              rules: PhysiologicalRules | None = None) -> Callable[[], np.ndarray | None]:
    """:func:`organ_regions`'s label map, computed on first call and kept (None without a
    liver mean): one map serves every :func:`physiological_components` call on the same
    image (#11: detection's two thresholds), and none is computed when no component
    reaches rule (b)."""
    r = rules or PhysiologicalRules()
    memo: list[np.ndarray | None] = []

    def get() -> np.ndarray | None:
        if not memo:
            ok = liver_mean is not None and liver_mean > 0
            memo.append(organ_regions(arr, spacing, liver_mean, r)[0] if ok else None)
        return memo[0]

    return get


def physiological_components(seg_labels: np.ndarray, boxes: Sequence[Any], arr: np.ndarray,
                             spacing: Sequence[float], liver_mean: float | None,
                             rules: PhysiologicalRules | None = None, *,
                             organs: Callable[[], np.ndarray | None] | None = None,
                             ) -> dict[int, str]:
    """Lesion label -> reason, for components judged physiological uptake (rules a, b).

    ``organs``: an :func:`organ_map` of the same ``arr``, ``spacing``, ``liver_mean`` and
    ``rules`` to share (made here otherwise)."""
    r = rules or PhysiologicalRules()
    vox_ml = float(np.prod(spacing)) / 1000.0
    out: dict[int, str] = {}
    if organs is None:
        organs = organ_map(arr, spacing, liver_mean, r)
    for i, box in enumerate(boxes, start=1):
        if box is None:
            continue
        m = seg_labels[box] == i
        mtv = m.sum() * vox_ml
        if mtv >= r.min_mtv_ml:
            out[i] = (f"MTV {mtv:.0f} ml ≥ {r.min_mtv_ml:g} ml "
                      "(heart, bladder or brain)")
            continue
        regions = organs()
        if regions is not None and np.count_nonzero(regions[box][m]) > 0.5 * m.sum():
            out[i] = ("inside an organ-like region of flat moderate uptake (kidney, myocardium; "
                      f"smoothed SUV ≥ {r.organ_uptake_x_liver:g} × liver, ≥ "
                      f"{r.organ_min_volume_ml:g} ml, "
                      f"p95 ≤ {r.organ_max_uptake_x_liver:g} × liver)")
    return out


def guess_organ(centroid_lps_mm: Sequence[float], mtv_ml: float, *, z_range_mm: tuple[float, float],
                body_mid_x_mm: float, lung_z_range_mm: tuple[float, float] | None,
                rules: PhysiologicalRules | None = None) -> str:
    """Which of :data:`ORGANS` a physiological component most likely is (module docstring).

    >>> guess_organ((0, -40, 100), 300, z_range_mm=(0, 700), body_mid_x_mm=0,
    ...             lung_z_range_mm=(435, 650))
    'bladder'
    >>> guess_organ((-75, 48, 300), 90, z_range_mm=(0, 700), body_mid_x_mm=0,
    ...             lung_z_range_mm=(435, 650))
    'kidneys'
    """
    r = rules or PhysiologicalRules()
    x, _y, z = (float(v) for v in centroid_lps_mm)
    lateral = abs(x - body_mid_x_mm) > 40.0
    if lung_z_range_mm is not None:
        lo, hi = lung_z_range_mm
        if z > hi:
            return "brain"
        if z >= lo:
            return "heart"
        return "kidneys" if lateral else ("bladder" if mtv_ml >= r.min_mtv_ml else "kidneys")
    z0, z1 = z_range_mm
    frac = (z - z0) / (z1 - z0) if z1 > z0 else 0.5
    if frac > 0.8 and not lateral:
        return "brain"
    if lateral:
        return "kidneys"
    return "bladder" if frac < 0.35 else "heart"


def parse_organs(text: str | None) -> tuple[str, ...]:
    """``"heart,bladder"`` -> ("heart", "bladder"); ValueError naming an unknown organ."""
    if text is None:
        return ORGANS
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    aliases = {"kidney": "kidneys", "myocardium": "heart", "urinary bladder": "bladder"}
    out = []
    for n in names:
        n = aliases.get(n, n)
        if n not in ORGANS:
            raise ValueError(f"unknown organ {n!r}; choose from {', '.join(ORGANS)}")
        out.append(n)
    return tuple(dict.fromkeys(out))
