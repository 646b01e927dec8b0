"""Use-case: the stored lesion masks of the longitudinal record (docs/record.md).

Every assess run stores, per timepoint, the mask each lesion's PET metrics were measured
in (the PERCIST-threshold component, or the CT mask resampled to PET for lesions found
on CT) as one DICOM Segmentation (PS3.3 A.51, binary, one segment per lesion, segment
label = lesion key, (0062,0020)/(0062,0021) Tracking ID/UID = the lesion's identity)
that references the timepoint's PET source images. The file lies in the derived store
(``<home>/derived/masks/<Study>/<Series>/<SOP>.dcm``); the timepoint row keeps its path
and SOP Instance UID and each observation its (0062,0004) *Segment Number*.

The report contours, the ``report --seg`` output and the web contours read these masks,
so every output shows what was measured and later uses (teaching files, radiomics, AI
evaluation) can read them. Records written before masks were stored have none: the
outputs then fall back to re-deriving a mask around the centroid and say so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from oncohybrid.config import Settings
from oncohybrid.errors import OncohybridError

__all__ = ["StoredSeg", "write_timepoint_seg", "full_grid_mask", "stored_masks",
           "stored_masks_for_study", "seg_path", "MASKS_DIR"]

log = logging.getLogger(__name__)

#: Folder of the stored lesion SEGs below the derived store.
MASKS_DIR = "masks"


@dataclass(frozen=True)
class StoredSeg:
    """A written timepoint SEG: path relative to the derived store, SOP UID, segments."""

    rel_path: str
    sop_instance_uid: str
    segment_numbers: dict[str, int]  # lesion key -> (0062,0004) Segment Number


def seg_path(settings: Settings, rel_path: str) -> Path:
    """Absolute path of a stored SEG (paths are kept relative so a workspace can move)."""
    return settings.derived_dir / rel_path


def full_grid_mask(mask: Any, pet: Any) -> np.ndarray:
    """A mask volume (``highdicom.Volume`` on the PET grid or a box of it) as a boolean
    array on the whole PET grid.

    A box of the same grid (same direction and spacing, integer offset) is pasted in
    place, exactly; any other grid is resampled (nearest neighbour).
    """
    arr = np.asarray(mask.array) > 0
    if arr.shape == tuple(pet.spatial_shape) and np.allclose(mask.affine, pet.affine):
        return arr
    off = np.linalg.solve(np.asarray(pet.affine, float),
                          np.asarray(mask.affine, float)[:, 3])[:3]
    if np.allclose(mask.affine[:3, :3], pet.affine[:3, :3]) and np.allclose(
            off, np.rint(off), atol=1e-3):
        out = np.zeros(tuple(pet.spatial_shape), bool)
        lo = np.rint(off).astype(int)
        a = np.maximum(lo, 0)
        b = np.minimum(lo + np.asarray(arr.shape), np.asarray(out.shape))
        if np.all(b > a):
            out[a[0]:b[0], a[1]:b[1], a[2]:b[2]] = arr[a[0] - lo[0]:b[0] - lo[0],
                                                       a[1] - lo[1]:b[1] - lo[1],
                                                       a[2] - lo[2]:b[2] - lo[2]]
        return out
    from oncohybrid.imaging.resample import resample_to

    return resample_to(mask.with_array(arr.astype(np.uint8)), pet,
                       interpolation="nearest").array > 0


def write_timepoint_seg(settings: Settings, pet: Any, pet_files: Sequence[Any],
                        masks: Mapping[str, Any], lesions: Mapping[str, tuple[str, str | None]]
                        ) -> StoredSeg | None:
    """Write the measured masks of one timepoint as a SEG into the derived store.

    ``pet`` is the timepoint's PET volume (the measurement grid), ``pet_files`` its source
    files or the datasets already read from them (their headers are used as they are),
    ``masks`` lesion key → mask volume (:func:`full_grid_mask`), ``lesions`` lesion key →
    (Tracking UID, site), in segment order. Returns ``None`` when no lesion has a
    mask. Raises :class:`OncohybridError` when the SEG cannot be built or written (e.g.
    multi-frame PET).
    """
    import pydicom

    from oncohybrid.report.data import LesionInfo, TimepointImages
    from oncohybrid.report.seg import build_lesion_seg, segment_order
    from oncohybrid.store.filestore import FileStore

    infos = [LesionInfo(lesion_id=key, tracking_uid=uid, site=site)
             for key, (uid, site) in lesions.items() if key in masks]
    if not infos:
        return None
    images = TimepointImages(
        pet_suv=pet,
        lesion_masks={les.lesion_id: full_grid_mask(masks[les.lesion_id], pet) for les in infos},
        pet_datasets=[f if isinstance(f, pydicom.Dataset)
                      else pydicom.dcmread(f, stop_before_pixels=True) for f in pet_files])
    if not any(m.any() for m in images.lesion_masks.values()):
        return None
    ds = build_lesion_seg(images, infos, series_number=3000,
                          series_description="Lesion masks (measured)",
                          content_label="MEASURED", label_with_site=False, automatic=True,
                          algorithm_name="oncohybrid assess")
    numbers = segment_order(images, infos)
    store = FileStore(settings.derived_dir / MASKS_DIR)
    dest = store.path_for(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                          str(ds.SOPInstanceUID))
    store.write_atomic(dest, lambda fh: ds.save_as(fh, enforce_file_format=True))
    return StoredSeg(dest.relative_to(settings.derived_dir).as_posix(),
                     str(ds.SOPInstanceUID), numbers)


def stored_masks(settings: Settings, timepoint_pk: int, pet_datasets: Sequence[Any]
                 ) -> dict[str, np.ndarray] | None:
    """Lesion key → stored measured mask (PET grid) of a record timepoint.

    Reads the timepoint's SEG and maps each observation in use to its segment. ``None``
    when the timepoint has no stored SEG (older records) or it cannot be read.
    """
    from oncohybrid.report.seg import read_segment_masks
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_record import Lesion, Observation, Timepoint

    with session_scope(settings) as s:
        rel = s.scalar(sa.select(Timepoint.mask_seg_path).where(Timepoint.id == timepoint_pk))
        if not rel:
            return None
        rows = s.execute(
            sa.select(Lesion.key, Observation.mask_segment_number)
            .join(Lesion, Observation.lesion_pk == Lesion.id)
            .where(Observation.timepoint_pk == timepoint_pk, Observation.in_use,
                   Observation.present, Observation.mask_segment_number.is_not(None))
            .order_by(Observation.mask_segment_number)
        ).all()
    path = seg_path(settings, rel)
    try:
        by_number = read_segment_masks(path, pet_datasets)
    except OncohybridError as exc:
        log.warning("stored lesion masks unreadable, re-deriving: %s", exc)
        return None
    return {key: by_number[n] for key, n in rows if n in by_number and by_number[n].any()}


def stored_masks_for_study(settings: Settings, patient_pk: int, study_uid: str,
                           pet_series_uid: str | None, pet_datasets: Sequence[Any]
                           ) -> dict[str, np.ndarray] | None:
    """The stored masks of the record timepoint holding ``study_uid``, if that
    timepoint's measured PET series is ``pet_series_uid`` (the grid the masks are on)."""
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_record import Timepoint, TimepointStudy

    if pet_series_uid is None:
        return None
    with session_scope(settings) as s:
        tp_pk = s.scalar(
            sa.select(Timepoint.id)
            .join(TimepointStudy, TimepointStudy.timepoint_pk == Timepoint.id)
            .where(Timepoint.patient_pk == patient_pk,
                   TimepointStudy.study_instance_uid == study_uid,
                   TimepointStudy.pet_series_uid == pet_series_uid,
                   Timepoint.mask_seg_path.is_not(None)))
    return None if tp_pk is None else stored_masks(settings, tp_pk, pet_datasets)
