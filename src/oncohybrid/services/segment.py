"""AI segmentation of a PET(/CT) study with a user-supplied model, written as DICOM SEG, and
the autoPET evaluation of a predicted mask against a reference.

:func:`segment_study`: PET loaded as SUVbw (:func:`oncohybrid.dicom.suv.suv_volume`), CT in
HU (:func:`oncohybrid.dicom.volume.load_series`) resampled onto the PET grid (air, −1000 HU,
outside the CT), channels ordered as the model card's ``inputs``
(:mod:`oncohybrid.ai.loaders`), label map from :func:`oncohybrid.ai.runner.segment_arrays`,
written as a binary DICOM SEG (highdicom; PS3.3 A.51) on the PET source images, one segment
per model label, (0062,0008) *Segment Algorithm Type* AUTOMATIC with the model's name in the
(0066,002F) *Algorithm Identification Sequence* (family: Artificial Intelligence).

:func:`evaluate_masks`: prediction and reference read from DICOM SEG or NIfTI, the
prediction put on the reference grid (nearest neighbour) when the grids differ, then
:func:`oncohybrid.ai.evaluation.autopet_metrics`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from oncohybrid import __version__
from oncohybrid.errors import GeometryError, InputError, OncohybridError

__all__ = ["AI_LABELS_DIR", "AiLabels", "ai_lesions", "ai_reference_vois", "evaluate_masks",
           "read_mask", "read_timepoint_labels", "segment_study", "store_labels",
           "stored_labels_file"]

_LESION_WORDS = ("lesion", "tumor", "tumour", "metast", "node", "cancer", "malignan")


def _segment_codes(name: str) -> tuple[Any, Any]:
    """(category, type) codes of a label: lesions as SCT Lesion, organs by their SCT name
    (``liver`` → 10200004 Liver) when pydicom's code dictionary has it, else SCT Organ."""
    from pydicom.sr.codedict import codes

    lowered = name.lower()
    if any(w in lowered for w in _LESION_WORDS):
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion
    keyword = "".join(part.capitalize() for part in lowered.replace("_", " ").split())
    try:
        return codes.SCT.AnatomicalStructure, getattr(codes.SCT, keyword)
    except AttributeError:
        return codes.SCT.AnatomicalStructure, codes.SCT.Organ


def build_label_seg(pet_datasets: list[Any], labels: np.ndarray, names: dict[int, str], *,
                    model_name: str, series_number: int = 4001) -> Any:
    """Binary DICOM SEG of a label map on the PET grid (segment k = label value k)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from oncohybrid.dicom.volume import sort_slices

    sources = sort_slices(pet_datasets)
    if len(sources) != labels.shape[0]:
        raise GeometryError(f"DICOM SEG: {len(sources)} PET images but the PET volume has "
                            f"{labels.shape[0]} slices; SEG export needs single-frame PET")
    algo = hd.AlgorithmIdentificationSequence(
        name=(model_name or "user model")[:64], version=__version__,
        family=codes.cid7162.ArtificialIntelligence)
    values = sorted(names)
    stack = np.stack([labels == v for v in values], axis=-1)
    descriptions = []
    for k, value in enumerate(values, start=1):
        category, kind = _segment_codes(names[value])
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=k, segment_label=names[value][:64],
            segmented_property_category=category, segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo))
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="oncohybrid", manufacturer_model_name="oncohybrid segment",
        software_versions=__version__, device_serial_number="0",
        series_description=f"AI {model_name}"[:64], content_label="AISEG",
        content_description=f"Model {model_name}"[:64],
        omit_empty_frames=False)


def segment_study(pet_dir: str | os.PathLike[str], model_dir: str | os.PathLike[str],
                  out: str | os.PathLike[str], *, ct_dir: str | os.PathLike[str] | None = None,
                  device: str = "auto", connectivity: int = 18,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Segment one PET(/CT) study with the model in ``model_dir`` and write a DICOM SEG.

    Returns ``{"seg_file", "model", "layout", "labels": {value: {"name", "voxels",
    "volume_ml", "n_components", "components": […]}}, "spacing_mm", "shape", "timings_s"}``
    (components with ``connectivity``, :func:`oncohybrid.ai.evaluation.label_summary`).

    Example:
        >>> doc = segment_study("PT", "models/lesions", "seg.dcm", ct_dir="CT")  # doctest: +SKIP
        >>> doc["labels"]["1"]["volume_ml"]  # doctest: +SKIP
    """
    from oncohybrid.ai.card import Modality
    from oncohybrid.ai.evaluation import label_summary
    from oncohybrid.ai.loaders import load_model
    from oncohybrid.ai.runner import segment_arrays
    from oncohybrid.dicom.suv import Normalisation, suv_volume
    from oncohybrid.dicom.volume import load_series, read_series
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.report.seg import write_dataset
    from oncohybrid.services.segment_jobs import progress_sink

    say = progress or progress_sink.get() or (lambda _m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model = load_model(model_dir)
    modalities = {ch.modality for ch in model.card.inputs}
    if Modality.CT in modalities and ct_dir is None:
        raise InputError(f"the model {model.card.name or model_dir} needs a CT channel: "
                         "give --ct CT_DIR")
    predictor = model.predictor(device)
    timings["load_model"] = time.perf_counter() - t0
    say("reading PET")
    t = time.perf_counter()
    pet_datasets = read_series(pet_dir)
    pet, _scaling = suv_volume(pet_datasets, normalisation=Normalisation.BW)
    arrays: dict[Modality, np.ndarray] = {Modality.PT: pet.array}
    if Modality.CT in modalities:
        say("reading CT")
        ct = load_series(ct_dir, dtype=np.float32)  # type: ignore[arg-type]
        arrays[Modality.CT] = resample_to(ct, pet, default=-1000.0).array
    timings["load_images"] = time.perf_counter() - t
    spacing = tuple(float(s) for s in pet.spacing)
    t = time.perf_counter()

    def tiles(done: int, total: int) -> None:
        say(f"inference: tile {done}/{total}")

    try:
        labels = segment_arrays(model.card, predictor,
                                [arrays[ch.modality] for ch in model.card.inputs], spacing,
                                progress=tiles)
    except ValueError as exc:  # output shape/channel mismatch with the card
        raise InputError(f"{model_dir}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t
    assert isinstance(labels, np.ndarray)
    say("writing DICOM SEG")
    t = time.perf_counter()
    seg = build_label_seg(pet_datasets, labels, model.card.labels,
                          model_name=model.card.name or Path(model_dir).name)
    path = write_dataset(seg, out)
    timings["write_seg"] = time.perf_counter() - t
    return {
        "seg_file": str(path),
        "model": model.card.name or Path(model_dir).name,
        "layout": model.layout,
        "shape": list(labels.shape),
        "spacing_mm": list(spacing),
        "labels": label_summary(labels, spacing, model.card.labels, connectivity=connectivity),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _nifti_volume(path: Path) -> Any:
    """NIfTI (RAS+ affine, array i, j, k = x, y, z) as a highdicom Volume in (z, y, x), LPS."""
    import highdicom as hd
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises several types
        raise InputError(f"{path}: cannot read NIfTI: {exc}") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path}: expected a 3-D mask, got shape {data.shape}")
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(img.affine, dtype=np.float64)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = lps[:3, 2], lps[:3, 1], lps[:3, 0]
    affine[:3, 3] = lps[:3, 3]
    return hd.Volume(array=np.ascontiguousarray(np.transpose(data, (2, 1, 0))), affine=affine,
                     coordinate_system="PATIENT")


def read_mask(path: str | os.PathLike[str]) -> Any:
    """A mask file as a highdicom Volume (non-zero = foreground): DICOM SEG (all segments
    combined) or NIfTI (``.nii``, ``.nii.gz``)."""
    import highdicom as hd

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such mask file")
    if p.name.endswith((".nii", ".nii.gz")):
        return _nifti_volume(p)
    try:
        seg = hd.seg.segread(p)
        vol = seg.get_volume(combine_segments=True, relabel=True, skip_overlap_checks=True)
    except (OSError, ValueError, AttributeError, KeyError, RuntimeError) as exc:
        raise InputError(f"{p}: neither NIfTI nor a readable DICOM SEG with a regular grid: "
                         f"{exc}") from exc
    return vol


def evaluate_masks(pred_path: str | os.PathLike[str], gt_path: str | os.PathLike[str], *,
                   connectivity: int = 18) -> dict[str, Any]:
    """autoPET metrics of a predicted mask against a reference (files: SEG or NIfTI).

    The prediction is put on the reference grid: rearranged (axis order, flips, padding,
    cropping: ``highdicom.Volume.match_geometry``) when the grids coincide, else resampled
    (nearest neighbour); the voxel volume is the reference's.
    """
    from oncohybrid.ai.evaluation import autopet_metrics
    from oncohybrid.imaging.resample import resample_to

    pred, gt = read_mask(pred_path), read_mask(gt_path)
    pred = pred.with_array((np.asarray(pred.array) != 0).astype(np.uint8))
    resampled = False
    try:
        # Same grid up to axis order, flips, padding or cropping (e.g. a SEG whose frames
        # run head-first against a NIfTI running feet-first): rearranged, not resampled.
        matched = pred.match_geometry(gt, tol=1e-3)
    except (RuntimeError, ValueError):
        try:
            matched = resample_to(pred, gt, interpolation="nearest")
        except OncohybridError:
            raise
        except Exception as exc:
            raise GeometryError(f"{pred_path} cannot be put on the grid of {gt_path}: {exc}"
                                ) from exc
        resampled = True
    pred_arr = np.asarray(matched.array) != 0
    doc = autopet_metrics(pred_arr, np.asarray(gt.array) != 0,
                          tuple(float(s) for s in gt.spacing), connectivity=connectivity)
    doc.update(prediction=str(pred_path), ground_truth=str(gt_path),
               resampled_to_ground_truth=resampled)
    return doc


# ---------------------------------------------------------------------------------------
# Model labels in the longitudinal record (issue #18): lesion labels become the record's
# lesions, organ labels place the PERCIST reference VOIs.
# ---------------------------------------------------------------------------------------

#: Folder below the derived store holding one AI label SEG per PET series
#: (``<derived>/ai-labels/<PET Series Instance UID>.dcm``); ``assess`` reads it.
AI_LABELS_DIR = "ai-labels"


def _labels_path(settings: Any, pet_series_uid: str) -> Path:
    import re

    if not re.fullmatch(r"[0-9.]{1,64}", pet_series_uid):
        raise InputError(f"not a Series Instance UID: {pet_series_uid!r}")
    return Path(settings.derived_dir) / AI_LABELS_DIR / f"{pet_series_uid}.dcm"


def stored_labels_file(settings: Any, pet_series_uid: str | None) -> Path | None:
    """The AI label SEG stored for a PET series, or None."""
    if not pet_series_uid:
        return None
    try:
        path = _labels_path(settings, pet_series_uid)
    except InputError:
        return None
    return path if path.is_file() else None


def store_labels(seg_file: str | os.PathLike[str], settings: Any = None) -> dict[str, Any]:
    """Keep a model's label SEG (:func:`segment_study`) for the PET series it segments, so
    that ``oncohybrid assess`` uses its lesion and organ labels (docs/ai-segmentation.md).

    The SEG must reference a PET series of the workspace ((0008,1115) *Referenced Series
    Sequence*); a later SEG of the same series replaces the earlier one. Returns
    ``{"pet_series_uid", "patient_id", "stored", "labels": {number: name}}``.
    """
    import shutil

    import pydicom

    from oncohybrid.config import get_settings
    from oncohybrid.store.queries import Filters, list_series

    settings = settings or get_settings()
    src = Path(seg_file)
    try:
        ds = pydicom.dcmread(src, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises several types on a non-DICOM file
        raise InputError(f"{src}: not a readable DICOM file: {exc}") from exc
    if str(ds.get("Modality", "")) != "SEG":
        raise InputError(f"{src}: not a DICOM SEG (Modality {ds.get('Modality')!r})")
    refs = ds.get("ReferencedSeriesSequence") or []
    if not refs:
        raise InputError(f"{src}: (0008,1115) Referenced Series Sequence is empty: the SEG "
                         "does not say which PET series it segments")
    series_uid = str(refs[0].SeriesInstanceUID)
    rows = [r for r in list_series(Filters(patient_id=str(ds.get("PatientID", ""))), settings)
            if r["series_uid"] == series_uid]
    if not rows or rows[0]["modality"] != "PT":
        raise InputError(f"{src}: the segmented series {series_uid} is not a PET series of "
                         f"patient {ds.get('PatientID', '?')} in this workspace (ingest it first)")
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in ds.SegmentSequence}
    dest = _labels_path(settings, series_uid)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    shutil.copyfile(src, partial)
    os.replace(partial, dest)
    return {"pet_series_uid": series_uid, "patient_id": str(ds.get("PatientID", "")),
            "stored": str(dest), "labels": labels}


class AiLabels:
    """The labels of one AI SEG on a PET grid: ``masks`` segment label → boolean array."""

    def __init__(self, model: str, masks: dict[str, np.ndarray], source: Path) -> None:
        from oncohybrid.ai.organs import label_role

        self.model, self.masks, self.source = model, masks, source
        self.roles = {name: label_role(name) for name in masks}

    def of_role(self, role: str) -> list[str]:
        return [name for name, r in self.roles.items() if r == role]


def read_timepoint_labels(path: str | os.PathLike[str], pet: Any) -> AiLabels:
    """Each segment of an AI label SEG as a boolean mask on the PET grid (a SEG on another
    grid is resampled, nearest neighbour; :func:`oncohybrid.services.masks.full_grid_mask`)."""
    import highdicom as hd

    from oncohybrid.services.masks import full_grid_mask

    p = Path(path)
    try:
        seg = hd.seg.segread(p)
        model = ""
        masks: dict[str, np.ndarray] = {}
        for item in seg.SegmentSequence:
            number = int(item.SegmentNumber)
            algo = item.get("SegmentationAlgorithmIdentificationSequence") or []
            if algo and not model:
                model = str(algo[0].get("AlgorithmName", ""))
            vol = seg.get_volume(segment_numbers=[number], combine_segments=True,
                                 skip_overlap_checks=True)
            masks[str(item.SegmentLabel)] = full_grid_mask(vol, pet)
    except OncohybridError:
        raise
    except Exception as exc:  # highdicom/pydicom raise several types
        raise InputError(f"{p}: stored AI label SEG cannot be read on the PET grid: {exc}"
                         ) from exc
    return AiLabels(model or str(seg.get("SeriesDescription", "AI model")), masks, p)


def ai_reference_vois(labels: AiLabels, pet: Any) -> dict[str, Any]:
    """PERCIST reference VOI placements from the organ labels: region ("liver",
    "blood_pool") → :class:`oncohybrid.ai.organs.OrganVoi` (the first non-empty label of
    each role; :mod:`oncohybrid.ai.organs`)."""
    from oncohybrid.ai.organs import blood_pool_centre, liver_centre

    out: dict[str, Any] = {}
    for region, place in (("liver", liver_centre), ("blood_pool", blood_pool_centre)):
        for name in labels.of_role(region):
            if labels.masks[name].any():
                out[region] = place(labels.masks[name], label=name, affine=pet.affine)
                break
    return out


def ai_lesions(pet: Any, ct: Any, labels: AiLabels, sul_per_suv: float | None,
               params: Any) -> tuple[list[Any], list[str]] | None:
    """The lesions of one timepoint from the model's lesion labels, or None without one.

    Each connected component (``params.connectivity``) of the union of the lesion labels
    of at least ``params.min_volume_ml`` is one lesion, measured as the PERCIST-threshold
    components are (:func:`oncohybrid.quant.pet.lesion_metrics`, CT extent
    :func:`oncohybrid.detect.ct_lesions.ct_extent`, partial-volume correction when asked):
    the model's mask replaces the threshold segmentation and the physiological-uptake,
    faint-focus and CT-only tiers (the model decided what is a lesion). Returns
    ``(lesions, notes)``.
    """
    from oncohybrid.detect.ct_lesions import ct_extent
    from oncohybrid.detect.pvc import apply_pvc
    from oncohybrid.quant.pet import lesion_metrics
    from oncohybrid.segment.components import label_lesions
    from oncohybrid.tracking.course import DetectedLesion

    names = labels.of_role("lesion")
    if not names:
        return None
    union = np.zeros(tuple(pet.spatial_shape), bool)
    for name in names:
        union |= labels.masks[name]
    voxel_ml = float(abs(np.linalg.det(np.asarray(pet.affine)[:3, :3]))) / 1000.0
    n_all = int(label_lesions(union, pet.array, connectivity=params.connectivity)[1])
    # ids in descending SUVmax, as the threshold detection numbers its components
    lab, n, boxes = label_lesions(union, pet.array, connectivity=params.connectivity,
                                  min_voxels=int(np.ceil(params.min_volume_ml / voxel_ml - 1e-9)))
    notes = [f"lesions from AI label(s) {', '.join(repr(x) for x in names)} (model "
             f"{labels.model}): {n} of {n_all} component(s) of at least "
             f"{params.min_volume_ml} ml"]
    mets = lesion_metrics(pet, lab, sul_per_suv=sul_per_suv, boxes=boxes)
    lesions = []
    for m, box in zip(mets, boxes, strict=True):
        pet_mask = pet[box].with_array((lab[box] == m.lesion_id).astype(np.uint8))
        try:
            cmask, meas, site, nodal, method = ct_extent(pet_mask, ct, m.centroid_lps_mm,
                                                         params.ct)
        except (GeometryError, InputError) as exc:
            notes.append(f"AI lesion {m.lesion_id}: no CT measurement ({exc})")
            cmask, meas, site, nodal, method = None, None, "soft tissue", False, {}
        method = {**method, "detection": f"AI label (model {labels.model})"}
        det = DetectedLesion(f"ai{m.lesion_id}", m, meas, cmask, site, nodal, method,
                             pet_mask=pet_mask)
        if params.pvc_fwhm_mm:
            apply_pvc(det, pet, lab == m.lesion_id, sul_per_suv, params.pvc_fwhm_mm)
        lesions.append(det)
    return lesions, notes
