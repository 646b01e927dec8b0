"""The lesions of one PET/CT timepoint: three detection tiers, physiological uptake excluded.

1. Components above the **PERCIST threshold** (1.5 × liver SULmean + 2 SD, or the blood
   pool's; Wahl et al., J Nucl Med 2009;50 Suppl 1:122S), minus physiological uptake
   (:mod:`.physiological`), each measured on PET (:func:`lesion_metrics`) and on CT
   (:func:`~.ct_lesions.ct_extent`).
2. Fainter foci (≥ ``low_threshold_fraction`` × the PERCIST threshold and
   ``low_threshold_min_x_liver`` × liver SUVmean) touching no tier-1 component, kept only
   when the CT shows a distinct lesion (:func:`~.ct_lesions.ct_confirms`).
3. FDG-avid lesions found on CT alone in lung, bone and fat
   (:func:`~.ct_detection.detect_on_ct`).

A tier-1 component with no CT correlate whose SULpeak is below the PERCIST threshold is
dropped (most often a fragment of physiological uptake or noise). docs/record.md gives
the reasons for every default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oncohybrid.detect.ct_detection import CTDetectionRules, detect_on_ct
from oncohybrid.detect.ct_lesions import CTRules, ct_confirms, ct_extent
from oncohybrid.detect.physiological import (
    PhysiologicalRules,
    organ_map,
    physiological_components,
)
from oncohybrid.detect.pvc import apply_pvc
from oncohybrid.errors import GeometryError, InputError
from oncohybrid.tracking.course import DetectedLesion, _finite

__all__ = ["DetectionParams", "LesionDetection", "detect_lesions"]


@dataclass(frozen=True)
class DetectionParams:
    """Parameters of the three tiers (assess's defaults; docs/record.md)."""

    min_volume_ml: float = 0.5
    connectivity: int = 26
    physiological: PhysiologicalRules = field(default_factory=PhysiologicalRules)
    ct: CTRules = field(default_factory=CTRules)
    low_threshold_fraction: float = 0.75
    low_threshold_min_x_liver: float = 1.2
    low_min_volume_ml: float = 0.1
    ct_detect: bool = True
    ct_detection: CTDetectionRules = field(default_factory=CTDetectionRules)
    #: effective PET FWHM for partial-volume correction; None keeps the raw values
    pvc_fwhm_mm: float | None = None


@dataclass
class LesionDetection:
    """The lesions of one timepoint, the notes on what was dropped or added and why, and
    the segmentation provenance (threshold method, components, faint-focus threshold)."""

    lesions: list[DetectedLesion]
    notes: list[str]
    segmentation: dict[str, Any]


def _no_clock(_stage: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


def detect_lesions(pet: Any, ct: Any, threshold: Any, liver_suv_mean: float | None,
                   sul_per_suv: float | None, params: DetectionParams | None = None, *,
                   stage: Callable[[str], AbstractContextManager[Any]] | None = None,
                   ) -> LesionDetection:
    """Detect and measure the lesions of one timepoint (module docstring).

    ``pet``: SUVbw ``highdicom.Volume``; ``ct``: the CT ``Volume`` of the same frame of
    reference; ``threshold``: :class:`oncohybrid.quant.references.PercistThreshold`;
    ``stage``: optional timer, entered as ``stage("segmentation")``, ``"pet_metrics"``,
    ``"ct_measure"``, ``"ct_detect"``.
    """
    from oncohybrid.quant.pet import lesion_metrics
    from oncohybrid.segment.threshold import segment_lesions

    p = params or DetectionParams()
    clock = stage or _no_clock
    notes: list[str] = []
    with clock("segmentation"):
        seg = segment_lesions(pet, method="percist", threshold_suv=threshold.threshold_suv,
                              connectivity=p.connectivity, min_volume_ml=p.min_volume_ml)
        spacing = tuple(float(s) for s in seg.grid.spacing_mm)
        # one organ map for both thresholds (same image, liver mean and rules)
        organs = organ_map(pet.array, spacing, liver_suv_mean, p.physiological)
        drop = physiological_components(seg.labels, seg.boxes, pet.array, spacing,
                                        liver_suv_mean, p.physiological, organs=organs)
        for k, why in drop.items():
            notes.append(f"PET component {k} excluded as physiological uptake: {why}")
        labels = seg.labels.copy()
        keep = [k for k in range(1, seg.n_lesions + 1) if k not in drop]
        remap = np.zeros(seg.n_lesions + 1, np.int32)
        for new, old in enumerate(keep, start=1):
            remap[old] = new
        labels = remap[labels]
        boxes = [seg.boxes[k - 1] for k in keep]
        # Tier 2: fainter foci (between low_threshold_fraction x the PERCIST threshold and
        # it) that touch no tier-1 component; kept only if the CT confirms a lesion.
        tier2: set[int] = set()
        low = p.low_threshold_fraction * threshold.threshold_suv
        if liver_suv_mean is not None:
            low = max(low, p.low_threshold_min_x_liver * liver_suv_mean)
        if p.low_threshold_fraction < 1.0 and low < threshold.threshold_suv:
            seg2 = segment_lesions(pet, method="fixed", threshold_suv=low,
                                   connectivity=p.connectivity,
                                   min_volume_ml=min(p.low_min_volume_ml, p.min_volume_ml))
            drop2 = physiological_components(seg2.labels, seg2.boxes, pet.array, spacing,
                                             liver_suv_mean, p.physiological, organs=organs)
            for k2, box2 in enumerate(seg2.boxes, start=1):
                if box2 is None or k2 in drop2:
                    continue
                m2 = seg2.labels[box2] == k2
                if np.any(seg.labels[box2][m2] > 0):
                    continue
                new_id = len(boxes) + 1
                labels[box2][m2] = new_id
                boxes.append(box2)
                tier2.add(new_id)
    with clock("pet_metrics"):
        mets = lesion_metrics(pet, labels, sul_per_suv=sul_per_suv, boxes=boxes)
    lesions: list[DetectedLesion] = []
    with clock("ct_measure"):
        for m, box in zip(mets, boxes, strict=True):
            sub = pet[box]
            pet_mask = sub.with_array((labels[box] == m.lesion_id).astype(np.uint8))
            try:
                cmask, meas, site, nodal, method = ct_extent(pet_mask, ct, m.centroid_lps_mm,
                                                             p.ct)
            except (GeometryError, InputError) as exc:
                notes.append(f"lesion {m.lesion_id}: no CT measurement ({exc})")
                cmask, meas, site, nodal, method = None, None, "soft tissue", False, {}
            peak = _finite(m.sul_peak) if m.sul_peak is not None else _finite(m.suv_peak.value)
            limit = threshold.threshold_sul if m.sul_peak is not None else threshold.threshold_suv
            if m.lesion_id in tier2 and not ct_confirms(method, meas, p.ct):
                notes.append(f"faint PET focus {m.lesion_id} (SUVmax {m.suv_max:.2f}) dropped: "
                             "no distinct CT lesion")
                continue
            if method.get("method", "").startswith("PET mask") and (peak or 0.0) < limit:
                # A faint focus below PERCIST measurability with no CT correlate: most
                # often a fragment of physiological uptake (myocardium) or noise.
                notes.append(f"PET component {m.lesion_id} excluded: SULpeak {peak or 0:.2f} "
                             f"below the PERCIST threshold {limit:.2f} and no CT correlate")
                continue
            if m.lesion_id in tier2:
                method = {**method, "detection": f"faint focus ≥ {low:.2f} SUV confirmed on CT"}
            det = DetectedLesion(f"d{m.lesion_id}", m, meas, cmask, site, nodal, method,
                                 pet_mask=pet_mask)
            if p.pvc_fwhm_mm:
                full = np.zeros(labels.shape, bool)
                full[box] = labels[box] == m.lesion_id
                apply_pvc(det, pet, full, sul_per_suv, p.pvc_fwhm_mm)
            lesions.append(det)
    if p.ct_detect:
        with clock("ct_detect"):
            extra = detect_on_ct(ct, pet, lesions, liver_suv_mean, sul_per_suv,
                                 p.ct_detection, p.ct, pvc_fwhm_mm=p.pvc_fwhm_mm)
        for det in extra:
            notes.append(f"{det.label}: found on CT only ({det.site}, {det.ct.ld_mm:.1f} mm, "
                         f"SUVmax {det.pet.suv_max:.2f})")
        lesions.extend(extra)
    segmentation = {**seg.parameters(), "n_components": seg.n_lesions,
                    "n_lesions": len(lesions), "low_threshold_suv": low}
    return LesionDetection(lesions, notes, segmentation)
