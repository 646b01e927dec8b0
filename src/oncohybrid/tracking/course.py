"""The longitudinal types of one patient's assessment: detections per timepoint, tracks, course.

Pure data shared by the detection layer (:mod:`oncohybrid.detect`), the assess use-case
(``services/assess.py``, which fills them) and the record (``services/record.py``, which
stores and rebuilds them); neither service imports the other for them. A :class:`Course`
is the neutral per-lesion table the response cases are built from (docs/record.md): one
:class:`Track` per lesion with ``values[k]`` its measurements at timepoint k (None:
absent), in the units of the case files (RECIST 1.1, Eisenhauer et al., Eur J Cancer
2009; PERCIST 1.0, Wahl et al., J Nucl Med 2009).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Course",
    "DetectedLesion",
    "TimepointAnalysis",
    "TimepointInput",
    "Track",
    "case_references",
]


@dataclass
class TimepointInput:
    """One PET/CT visit: the series to read and where they come from."""

    date: dt.date
    pet_files: list[Path]
    ct_files: list[Path]
    study_uid: str | None = None
    pet_series_uid: str | None = None
    ct_series_uid: str | None = None
    frame_of_reference_uid: str | None = None
    #: an AI model's label SEG for this PET series (lesion and organ labels; issue #18)
    ai_labels_file: Path | None = None


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


@dataclass
class DetectedLesion:
    """A lesion found at one timepoint: PET metrics, CT measurement, guessed site."""

    label: str
    pet: Any  # quant.pet.LesionMetrics
    ct: Any | None  # quant.ct.CTMeasurement
    ct_mask: Any | None  # highdicom.Volume (uint8) on a CT sub-grid
    site: str
    nodal: bool
    ct_method: dict[str, Any]
    pvc: dict[str, Any] | None = None  # corrected suv_max/suv_peak/sul_peak + parameters
    pet_mask: Any | None = None  # highdicom.Volume (uint8), PET (sub-)grid: voxels measured

    def measurements(self) -> dict[str, float | None]:
        """The case-file measurements (PVC-corrected PET values when corrected)."""
        p, c = self.pet, self.ct
        out = {
            "ld_mm": None if c is None else c.ld_mm,
            "sa_mm": None if c is None else c.sa_mm,
            "ppd_mm2": None if c is None else c.ppd_mm2,
            "volume_ml": None if c is None else c.volume_ml,
            "hu_mean": None if c is None else c.hu_mean,
            "suv_max": p.suv_max,
            "suv_peak": _finite(p.suv_peak.value),
            "sul_peak": _finite(p.sul_peak),
            "mtv_ml": p.mtv_ml,
            "tlg_suv_ml": p.tlg_suv_ml,
        }
        if self.pvc is not None:
            out.update({k: self.pvc[k] for k in ("suv_max", "suv_peak", "sul_peak")})
        return out


def case_references(liver: Any | None, blood_pool: Any | None) -> dict[str, float]:
    """The case-file reference numbers read in a liver and a blood-pool VOI
    (``quant.references.ReferenceRegion``; None: not available)."""
    refs: dict[str, float] = {}
    if liver is not None:
        mean, sd = liver.mean_sd_sul
        refs["liver_sul_mean"], refs["liver_sul_sd"] = mean, sd
        # Deauville compares with the liver; the reference VOI mean is used (docs/record.md).
        refs["liver_suv_max"] = liver.suv_mean
    if blood_pool is not None:
        mean, sd = blood_pool.mean_sd_sul
        refs["blood_pool_sul_mean"], refs["blood_pool_sul_sd"] = mean, sd
        refs["mediastinum_suv_max"] = blood_pool.suv_mean
    return refs


@dataclass
class TimepointAnalysis:
    """What one timepoint's analysis found: CT, references, threshold, lesions, notes."""

    input: TimepointInput
    ct: Any  # highdicom.Volume
    sul_per_suv: float | None
    liver: Any | None
    blood_pool: Any | None
    threshold: Any | None
    lesions: list[DetectedLesion]
    segmentation: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    pet: Any = None  # highdicom.Volume in SUVbw
    pet_datasets: Any = None  # the PET datasets as read (the SEG reuses their headers, #11)

    def references(self) -> dict[str, float]:
        """Reference numbers for the case files (SUL for PERCIST, SUV for Deauville)."""
        return case_references(self.liver, self.blood_pool)


@dataclass
class Track:
    """One lesion across timepoints: ``values[k]`` is None when absent at timepoint k."""

    id: str
    site: str
    nodal: bool
    first: int
    values: list[dict[str, float | None] | None]
    labels: list[str | None] = field(default_factory=list)


@dataclass
class Course:
    """What the cases are built from: dates, references per timepoint, and tracks."""

    patient_id: str
    dates: list[dt.date]
    references: list[dict[str, float]]
    tracks: list[Track]
    slice_thickness_mm: float = 5.0
    ttv_ml: list[float] = field(default_factory=list)
