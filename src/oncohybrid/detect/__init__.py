"""Lesion detection: which voxels are a lesion, before anything is measured.

Pure image analysis (no storage, no services), between the measurements it calls
(:mod:`oncohybrid.quant`: PET metrics, CT measurement) and the assess use-case that
orchestrates it (``services/assess.py``). Modules, each named for what it holds:

- :mod:`.pet_lesions` — the tiered PET detection of one timepoint: components above the
  PERCIST threshold (Wahl et al., J Nucl Med 2009), fainter foci confirmed on CT, lesions
  found on CT alone; physiological uptake excluded.
- :mod:`.physiological` — physiological FDG uptake among thresholded components
  (heart, bladder, kidneys, brain; heuristics on PET and CT).
- :mod:`.ct_lesions` — the CT extent, site and CT confirmation of a PET-located lesion.
- :mod:`.ct_detection` — lesions found on CT that PET missed (third tier) and tracked
  lesions re-detected on CT at their registered position.
- :mod:`.pvc` — recovery-coefficient partial-volume correction (Hoetjes et al. 2010).

The longitudinal types these return (:class:`~oncohybrid.tracking.course.DetectedLesion`)
live in :mod:`oncohybrid.tracking.course`.
"""
