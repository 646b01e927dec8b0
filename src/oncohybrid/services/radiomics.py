"""Radiomics use-cases: read an image and its ROI mask, run the IBSI pipeline, batch a table.

IMAGE is a DICOM series directory (:func:`oncohybrid.dicom.volume.load_series`) or a NIfTI
file (nibabel; RAS → LPS and array order (z, y, x)); MASK a DICOM SEG (highdicom; all
segments, or ``label``) referencing that series, or a NIfTI file on the same grid (voxels
equal to ``label``, or non-zero without one). The computation is :mod:`oncohybrid.radiomics`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oncohybrid.errors import InputError, OncohybridError
from oncohybrid.radiomics.configs import RadiomicsSettings, from_mapping, ibsi_config
from oncohybrid.radiomics.pipeline import RadiomicsResult, extract


@dataclass(frozen=True)
class LoadedImage:
    """Array (z, y, x), spacing (z, y, x) in mm, and the DICOM datasets when read from DICOM."""

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    datasets: list[Any] | None = None


def _is_nifti(path: Path) -> bool:
    return path.name.endswith((".nii", ".nii.gz"))


def read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """NIfTI array in (z, y, x) order with its spacing; the axes follow the stored voxel
    order (i, j, k) → (k, j, i), i.e. the LPS-flip of the RAS affine changes no voxel."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        arr = np.asarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for damaged files
        raise InputError(f"{path}: not a readable NIfTI file ({exc})") from None
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise InputError(f"{path}: NIfTI must be 3-D, got shape {arr.shape}")
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    return arr.transpose(2, 1, 0), (zooms[2], zooms[1], zooms[0])


def read_image(path: str | Path) -> LoadedImage:
    """IMAGE: a DICOM series directory or a NIfTI file (names the path when unreadable)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"IMAGE {p}: no such file or directory")
    if p.is_dir():
        from oncohybrid.dicom.volume import load_series, read_series

        datasets = read_series(p)
        vol = load_series(datasets)
        sp = tuple(float(s) for s in vol.spacing)
        return LoadedImage(np.asarray(vol.array, dtype=np.float64), (sp[0], sp[1], sp[2]),
                           datasets)
    if _is_nifti(p):
        arr, sp = read_nifti(p)
        return LoadedImage(arr, sp)
    raise InputError(f"IMAGE {p}: expected a DICOM series directory or a .nii/.nii.gz file")


def read_mask(path: str | Path, image: LoadedImage, label: int | None = None) -> np.ndarray:
    """MASK on the image grid: a NIfTI of the same shape, or a DICOM SEG of the series."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"--mask {p}: no such file")
    if _is_nifti(p):
        arr, _ = read_nifti(p)
        mask = arr == label if label is not None else arr > 0
    else:
        if image.datasets is None:
            raise InputError(f"--mask {p}: a DICOM SEG needs a DICOM IMAGE series (the SEG "
                             "references its instances); give a NIfTI mask for a NIfTI image")
        from oncohybrid.report.seg import read_segment_masks

        try:
            segments = read_segment_masks(p, image.datasets)
        except OncohybridError as exc:
            raise InputError(f"--mask {p}: {exc}") from None
        if label is not None:
            if label not in segments:
                raise InputError(f"--mask {p}: no segment number {label} "
                                 f"(has {sorted(segments)})")
            mask = segments[label]
        else:
            mask = np.zeros(image.array.shape, dtype=bool)
            for m in segments.values():
                mask |= np.asarray(m, dtype=bool)
    if mask.shape != image.array.shape:
        raise InputError(f"--mask {p}: shape {mask.shape} (z, y, x) differs from the "
                         f"image's {image.array.shape}")
    if not mask.any():
        raise InputError(f"--mask {p}: the mask is empty")
    return mask


def settings_for(ibsi_name: str | None, params: str | Path | None) -> RadiomicsSettings:
    """``--ibsi-config NAME`` or ``--params FILE.yaml`` (default: configuration C)."""
    if ibsi_name and params:
        raise InputError("give either --ibsi-config or --params, not both")
    if params:
        import yaml

        p = Path(params)
        try:
            data = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"--params {p}: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"--params {p}: expected a mapping of settings")
        return from_mapping(data, source=f"--params {p}")
    return ibsi_config(ibsi_name or "C")


def _filter(filter_id: str | None) -> Callable[[np.ndarray, tuple[float, float, float]],
                                                np.ndarray] | None:
    if filter_id is None:
        return None
    try:
        from oncohybrid.radiomics import filters  # type: ignore[attr-defined]
    except ImportError:
        raise InputError(f"--filter {filter_id}: the IBSI 2 filters are not installed "
                         "in this build yet") from None
    make = getattr(filters, "response_filter", None)
    if make is None:
        raise InputError(f"--filter {filter_id}: oncohybrid.radiomics.filters has no "
                         "response_filter(id) yet")
    try:
        return make(filter_id)
    except (KeyError, ValueError) as exc:
        raise InputError(f"--filter {filter_id}: {exc}") from None


def radiomics_of_files(image: str | Path, mask: str | Path, settings: RadiomicsSettings, *,
                       filter_id: str | None = None, label: int | None = None
                       ) -> RadiomicsResult:
    """Features of one IMAGE/MASK pair (the CLI's single-ROI path)."""
    img = read_image(image)
    m = read_mask(mask, img, label)
    result = extract(img.array, m, img.spacing_mm, settings,
                     response_filter=_filter(filter_id), filter_name=filter_id)
    result.settings["image"] = str(image)
    result.settings["mask"] = str(mask)
    return result


def radiomics_table(table: str | Path, settings: RadiomicsSettings, *,
                    filter_id: str | None = None,
                    rename: Callable[[dict[str, float]], dict[str, float]] | None = None
                    ) -> str:
    """``--table LIST.csv`` (columns ``image``, ``mask``, any others): one output row per
    input row, the extra columns first, then every feature; paths relative to the table."""
    p = Path(table)
    try:
        with p.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError(f"--table {p}: {exc}") from None
    if not rows or not {"image", "mask"} <= set(rows[0]):
        raise InputError(f"--table {p}: needs a header with the columns image and mask")
    extra = [c for c in rows[0] if c not in ("image", "mask")]
    out_rows: list[dict[str, Any]] = []
    keys: list[str] = []
    for n, row in enumerate(rows, start=2):
        def resolve(v: str) -> Path:
            q = Path(v)
            return q if q.is_absolute() else p.parent / q
        try:
            res = radiomics_of_files(resolve(row["image"]), resolve(row["mask"]), settings,
                                     filter_id=filter_id)
        except InputError as exc:
            raise InputError(f"--table {p} line {n}: {exc}") from None
        feats = rename(res.features) if rename else res.features
        for k in feats:
            if k not in keys:
                keys.append(k)
        out_rows.append({**{c: row[c] for c in extra}, "image": row["image"],
                         "mask": row["mask"], **feats})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*extra, "image", "mask", *keys],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(out_rows)
    return buf.getvalue()


#: Settings of ``--patient`` when neither --ibsi-config nor --params is given: PET in SUVbw
#: on its own grid (lesions of a few voxels would not survive resampling), intensities
#: from SUV 0 (negative noise re-segmented away, so fixed bins start at 0: IBSI 1 §2.7.2),
#: fixed bin size 0.25 SUV for texture and the intensity histogram, 0.1 SUV for the
#: intensity-volume histogram (continuous calibrated intensities, IBSI 1 §3.5), 3D texture.
PET_SUV_SETTINGS = RadiomicsSettings(
    name="pet-suvbw", resegment_range=(0.0, None), discretisation="fbs", bin_width=0.25,
    ivh_discretisation="fbs", ivh_bin_width=0.1, mask_interpolation="none",
    texture_dims=("3D",))

#: identifying columns of a ``--patient`` row, before the features
PATIENT_ROW_COLUMNS = ("patient_id", "timepoint", "timepoint_label", "scan_date", "lesion",
                       "study_uid", "pet_series_uid", "n_voxels")


def radiomics_of_patient(patient: str, settings: RadiomicsSettings, app_settings: Any = None,
                         *, filter_id: str | None = None
                         ) -> tuple[list[dict[str, Any]], list[str]]:
    """``--patient ID``: features per (timepoint, lesion) of the stored assessment.

    For every record timepoint in order, the PET series the lesions were measured on is
    read as SUVbw and each lesion's stored measured mask (``services.masks.stored_masks``:
    the timepoint's lesion SEG, docs/record.md "stored masks") is the ROI. Returns the rows
    (identifiers of :data:`PATIENT_ROW_COLUMNS`, ``features``, ``settings``) and notes for
    timepoints that could not be used (no PET, no SUV, no stored masks). Raises
    :class:`InputError` when the patient is unknown or no lesion mask is stored at all.
    """
    import pydicom
    import sqlalchemy as sa

    from oncohybrid.config import get_settings
    from oncohybrid.dicom.suv import suv_volume
    from oncohybrid.errors import DicomError, StoreError
    from oncohybrid.services.masks import stored_masks
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient
    from oncohybrid.store.models_record import Timepoint, TimepointStudy
    from oncohybrid.store.queries import series_files

    app = app_settings or get_settings()
    with session_scope(app) as s:
        pks = s.scalars(sa.select(Patient.id).where(Patient.patient_id == patient)).all()
        if not pks:
            raise InputError(f"--patient {patient}: not in the study database")
        if len(pks) > 1:
            raise InputError(f"--patient {patient}: ambiguous (several issuers)")
        tps = s.execute(
            sa.select(Timepoint.id, Timepoint.tp_index, Timepoint.label, Timepoint.scan_date,
                      TimepointStudy.study_instance_uid, TimepointStudy.pet_series_uid)
            .join(TimepointStudy, TimepointStudy.timepoint_pk == Timepoint.id)
            .where(Timepoint.patient_pk == pks[0], TimepointStudy.pet_series_uid.is_not(None))
            .order_by(Timepoint.tp_index)).all()
    if not tps:
        raise InputError(f"--patient {patient}: no assessed PET timepoint in the record "
                         "(run oncohybrid assess first)")
    from oncohybrid.services.segment_jobs import progress_sink

    say = progress_sink.get() or (lambda _m: None)  # a reading-room job's progress
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for tp_pk, index, label, date, study_uid, pet_uid in tps:
        name = f"TP{index}"
        say(f"{name}: reading PET")
        try:
            files = series_files(pet_uid, app)
            pet, _ = suv_volume(files)
        except (StoreError, DicomError) as exc:
            notes.append(f"{name}: PET {pet_uid} not usable as SUVbw ({exc})")
            continue
        headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        masks = stored_masks(app, tp_pk, headers)
        if masks is None:
            notes.append(f"{name}: no stored lesion masks (record written before masks "
                         "were stored, or SEG unreadable): re-run oncohybrid assess")
            continue
        image = np.asarray(pet.array, dtype=np.float64)
        spacing = tuple(float(v) for v in pet.spacing)
        for lesion in sorted(masks, key=_lesion_order):
            mask = np.asarray(masks[lesion], dtype=bool)
            if mask.shape != image.shape:
                notes.append(f"{name} {lesion}: mask shape {mask.shape} is not the PET "
                             f"grid {image.shape}; skipped")
                continue
            say(f"{name}: lesion {lesion}")
            result = extract(image, mask, (spacing[0], spacing[1], spacing[2]), settings,
                             response_filter=_filter(filter_id), filter_name=filter_id)
            rows.append({"patient_id": patient, "timepoint": name, "timepoint_label": label,
                         "scan_date": date.isoformat() if date else None, "lesion": lesion,
                         "study_uid": study_uid, "pet_series_uid": pet_uid,
                         "n_voxels": int(mask.sum()), "features": result.features,
                         "settings": result.settings})
    if not rows:
        raise InputError(f"--patient {patient}: no stored lesion mask to compute on"
                         + (f" ({'; '.join(notes)})" if notes else ""))
    return rows, notes


def _lesion_order(key: str) -> tuple[int, str]:
    digits = "".join(ch for ch in key if ch.isdigit())
    return (int(digits) if digits else 1 << 30, key)


def patient_rows_csv(rows: list[dict[str, Any]],
                     rename: Callable[[dict[str, float]], dict[str, float]] | None = None
                     ) -> str:
    """The ``--patient`` rows as CSV: identifiers, then every feature (union, in order)."""
    keys: list[str] = []
    flat: list[dict[str, Any]] = []
    for row in rows:
        feats = rename(row["features"]) if rename else row["features"]
        for k in feats:
            if k not in keys:
                keys.append(k)
        flat.append({**{c: row[c] for c in PATIENT_ROW_COLUMNS}, **feats})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*PATIENT_ROW_COLUMNS, *keys], lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()
