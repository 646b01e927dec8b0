"""DICOM Segmentation of the tracked lesions of one timepoint (highdicom).

One binary segment per lesion (PS3.3 A.51 Segmentation IOD, C.8.20.4 Segment
Description): the segment label is the lesion id, and (0062,0020) *Tracking ID* /
(0062,0021) *Tracking UID* carry the lesion's patient-level identity, identical in every
timepoint's SEG and in the SR (TID 1500) that references the segments. The SEG references
the PET source images (Derivation Image / Referenced Series sequences built by
highdicom), whose grid the masks are defined on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from oncohybrid import __version__
from oncohybrid.errors import GeometryError, InputError, OncohybridError
from oncohybrid.report.data import LesionInfo, TimepointImages

__all__ = ["build_lesion_seg", "site_code", "SITE_CODES", "read_lesion_masks",
           "read_segment_masks"]


def _site_codes() -> dict[str, object]:
    from pydicom.sr.codedict import codes

    return {
        "liver": codes.SCT.Liver,
        "lung": codes.SCT.Lung,
        "lymph node": codes.SCT.LymphNode,
        "bone": codes.SCT.Bone,
        "spleen": codes.SCT.Spleen,
        "adrenal": codes.SCT.AdrenalGland,
        "brain": codes.SCT.Brain,
        "kidney": codes.SCT.Kidney,
        "pancreas": codes.SCT.Pancreas,
        "peritoneum": codes.SCT.PeritoneumSerousMembraneStructure,
        "soft tissue": codes.SCT.SoftTissue,
        "pleura": codes.SCT.Pleura,
        "breast": codes.SCT.Breast,
        "prostate": codes.SCT.Prostate,
    }


#: SNOMED CT finding-site codes by the site names lesions are recorded with (CID 4 /
#: CID 7151 anatomic structures); filled lazily by :func:`site_code`.
SITE_CODES: dict[str, object] = {}


def site_code(site: str | None) -> object | None:
    """SNOMED CT code of a lesion site name (``"lymph node"`` → 59441001), or ``None``."""
    if not SITE_CODES:
        SITE_CODES.update(_site_codes())
    if site is None:
        return None
    return SITE_CODES.get(site.strip().lower())


_IOD_MEMO: dict[tuple[str, str, tuple[str, ...] | None], bool] = {}


def _memoise_iod_lookups() -> None:
    """Memoise ``highdicom._standard_utils.is_attribute_in_iod`` (once per process).

    highdicom asks it once per source image (``is_multiframe_image``: 234 PET slices →
    ~0.3 ms each, a third of building a SEG). The answer is a pure function of its
    arguments over the standard's tables shipped with highdicom (loaded once,
    ``lru_cache``), so the memo returns exactly what the scan would; errors (an unknown
    SOP class) are not memoised and raise as before.
    """
    import highdicom._standard_utils as su

    if getattr(su.is_attribute_in_iod, "_oncohybrid_memo", False):
        return
    scan = su.is_attribute_in_iod

    def is_attribute_in_iod(attribute: str, sop_class_uid: str,
                            exclude_path_elements: Sequence[str] | None = None) -> bool:
        key = (str(attribute), str(sop_class_uid),
               None if exclude_path_elements is None else tuple(exclude_path_elements))
        hit = _IOD_MEMO.get(key)
        if hit is None:
            hit = _IOD_MEMO[key] = scan(attribute, sop_class_uid, exclude_path_elements)
        return hit

    is_attribute_in_iod._oncohybrid_memo = True  # type: ignore[attr-defined]
    is_attribute_in_iod._oncohybrid_scan = scan  # type: ignore[attr-defined]
    is_attribute_in_iod.__doc__ = scan.__doc__
    su.is_attribute_in_iod = is_attribute_in_iod


def _segment_lesions(images: TimepointImages, lesions: Sequence[LesionInfo]) -> list[LesionInfo]:
    return [les for les in lesions if les.lesion_id in images.lesion_masks
            and bool(np.any(images.lesion_masks[les.lesion_id]))]


def build_lesion_seg(images: TimepointImages, lesions: Sequence[LesionInfo], *,
                     series_number: int = 3001, series_description: str = "Lesions (tracked)",
                     content_label: str = "LESIONS", label_with_site: bool = True,
                     automatic: bool = False,
                     algorithm_name: str = "oncohybrid lesion record"):  # noqa: ANN201
    """Build a binary ``highdicom.seg.Segmentation`` of the lesions with a mask.

    Segment ``k`` (1-based) is the ``k``-th lesion of ``lesions`` that has a non-empty
    mask in ``images.lesion_masks``; the order is returned by :func:`segment_order`.
    The segment label is ``"<lesion id> (<site>)"``, or the lesion id alone with
    ``label_with_site=False`` (the stored masks of the record, docs/record.md);
    ``automatic`` sets the (0062,0008) *Segment Algorithm Type* AUTOMATIC instead of
    SEMIAUTOMATIC (PS3.3 C.8.20.2).

    Raises :class:`InputError` when no lesion has a mask or the PET source images are
    missing, :class:`GeometryError` when the masks do not fit the source grid.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from oncohybrid.dicom.volume import sort_slices

    if not images.pet_datasets:
        raise InputError("DICOM SEG: the PET source images of the timepoint are not available")
    chosen = _segment_lesions(images, lesions)
    if not chosen:
        raise InputError("DICOM SEG: no lesion of this timepoint has a mask")
    sources = sort_slices(images.pet_datasets)
    shape = images.pet_suv.spatial_shape
    if len(sources) != shape[0]:
        raise GeometryError(
            f"DICOM SEG: {len(sources)} PET images but the PET volume has {shape[0]} slices; "
            "SEG export needs single-frame PET images")
    # (slice, row, column, segment) as highdicom wants it, but stored segment-major: the
    # same values (highdicom reads them by index, and tobytes/packbits copy in logical
    # order), while its overlap check (sum over the last axis) and the per-segment frame
    # slicing run over contiguous planes instead of strided 1-byte steps.
    stack = np.zeros((len(chosen), *shape), dtype=bool)
    for k, les in enumerate(chosen):
        mask = np.asarray(images.lesion_masks[les.lesion_id], dtype=bool)
        if mask.shape != tuple(shape):
            raise GeometryError(
                f"DICOM SEG: mask of lesion {les.lesion_id} has shape {mask.shape}, "
                f"PET grid is {tuple(shape)}")
        stack[k] = mask
    stack = np.moveaxis(stack, 0, -1)
    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, version=__version__,
        # CID 7162 has no "thresholding"; histogram analysis is the nearest family.
        family=codes.cid7162.HistogramAnalysis,
    )
    descriptions = []
    for k, les in enumerate(chosen, start=1):
        site = site_code(les.site)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=(f"{les.lesion_id} ({les.site or 'lesion'})" if label_with_site
                           else les.lesion_id)[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if automatic
                            else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC),
            algorithm_identification=algo,
            tracking_uid=les.tracking_uid,
            tracking_id=les.lesion_id,
            anatomic_regions=[site] if site is not None else None,
        ))
    ref = sources[0]
    _memoise_iod_lookups()
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="oncohybrid",
        manufacturer_model_name="oncohybrid report",
        software_versions=__version__,
        device_serial_number="0",
        series_description=series_description,
        content_label=content_label,
        content_description=f"Tracked lesions of {getattr(ref, 'StudyDate', '')}"[:64],
    )


def segment_order(images: TimepointImages, lesions: Sequence[LesionInfo]) -> dict[str, int]:
    """Lesion id → segment number as :func:`build_lesion_seg` assigns them."""
    return {les.lesion_id: k for k, les in enumerate(_segment_lesions(images, lesions), start=1)}


def read_lesion_masks(path: str | os.PathLike[str], pet_datasets: Sequence[object]
                      ) -> dict[str, tuple[str, np.ndarray]]:
    """Read a lesion SEG back: Tracking ID → (Tracking UID, mask on the PET grid).

    ``pet_datasets`` are the source PET images (any order); masks come back in
    :func:`~oncohybrid.dicom.volume.load_series` slice order.
    """
    import highdicom as hd

    from oncohybrid.dicom.volume import sort_slices

    try:
        seg = hd.seg.segread(path)
    except (OSError, ValueError, AttributeError) as exc:
        raise OncohybridError(f"{path}: cannot read DICOM SEG: {exc}") from exc
    sources = sort_slices(list(pet_datasets))
    uids = [str(ds.SOPInstanceUID) for ds in sources]
    out: dict[str, tuple[str, np.ndarray]] = {}
    for desc in seg.SegmentSequence:
        number = int(desc.SegmentNumber)
        arr = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, segment_numbers=[number],
            assert_missing_frames_are_empty=True,
        )
        out[str(desc.TrackingID)] = (str(desc.TrackingUID), arr[..., 0].astype(bool))
    return out


def read_segment_masks(path: str | os.PathLike[str], pet_datasets: Sequence[object]
                       ) -> dict[int, np.ndarray]:
    """Read every segment of a SEG: (0062,0004) *Segment Number* → mask on the PET grid.

    Same grid and slice order as :func:`read_lesion_masks`; segments without a frame
    come back empty. Raises :class:`OncohybridError` when the file is not a readable SEG
    or does not reference these PET images.
    """
    import highdicom as hd

    from oncohybrid.dicom.volume import sort_slices

    try:
        seg = hd.seg.segread(path)
        sources = sort_slices(list(pet_datasets))
        uids = [str(ds.SOPInstanceUID) for ds in sources]
        numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
        arr = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, segment_numbers=numbers,
            assert_missing_frames_are_empty=True,
        )
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise OncohybridError(f"{path}: cannot read DICOM SEG: {exc}") from exc
    return {n: arr[..., k].astype(bool) for k, n in enumerate(numbers)}


def write_dataset(ds, out: str | os.PathLike[str]) -> Path:  # noqa: ANN001 - pydicom Dataset
    """Save a DICOM object, turning file-system errors into :class:`OncohybridError`."""
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    except OSError as exc:
        raise OncohybridError(f"cannot write {path}: {exc}") from exc
    return path
