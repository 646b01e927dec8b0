"""Use-case: quantify a PET series (SUV, references, lesions, whole body), optional DICOM SEG.

Glue between :mod:`oncohybrid.dicom` (series -> SUV volume), :mod:`oncohybrid.imaging`
(CT onto the PET grid) and the pure computations of :mod:`oncohybrid.quant` and
:mod:`oncohybrid.segment`. The JSON document is described in ``docs/pet-metrics.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oncohybrid.detect.physiological import ORGANS
from oncohybrid.dicom.tracer import FDG, TracerInfo, identify_tracer
from oncohybrid.errors import GeometryError, InputError, OncohybridError
from oncohybrid.quant.pet import LesionMetrics, WholeBodyMetrics, lesion_metrics, whole_body_metrics
from oncohybrid.quant.references import (
    PercistThreshold,
    ReferenceRegion,
    blood_pool_reference,
    liver_reference,
    percist_threshold,
)
from oncohybrid.response.applicability import check_criteria
from oncohybrid.segment.grid import GridImage, grid_image
from oncohybrid.segment.threshold import (
    PRESETS,
    LesionSegmentation,
    ThresholdMethod,
    drop_lesions,
    segment_lesions,
)

METHODS = tuple(PRESETS)  # percist, suv2.5, suv4, 41pct


_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_POINT = {"type": "array", "items": _NUM, "minItems": 3, "maxItems": 3}
_POINT_OR_NULL = {"type": ["array", "null"], "items": _NUM, "minItems": 3, "maxItems": 3}
_REFERENCE = {
    "type": ["object", "null"],
    "required": [
        "name",
        "shape",
        "centre_lps_mm",
        "placement",
        "n_voxels",
        "volume_ml",
        "suv_mean",
        "suv_sd",
        "sul_mean",
        "sul_sd",
        "inside_image",
        "notes",
    ],
    "properties": {
        "name": {"enum": ["liver", "blood_pool"]},
        "centre_lps_mm": _POINT,
        "placement": {"enum": ["manual", "auto-ct", "auto-pet"]},
        "anatomy_checks": {"type": "array", "items": {"type": "string"}},
        "n_voxels": {"type": "integer", "minimum": 2},
        "suv_mean": _NUM,
        "suv_sd": _NUM,
        "sul_mean": _NUM_OR_NULL,
        "sul_sd": _NUM_OR_NULL,
        "inside_image": {"type": "boolean"},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
#: JSON schema of ``oncohybrid quantify --json`` (checked in tests/quant).
QUANTIFY_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "oncohybrid quantify --json",
    "type": "object",
    "required": [
        "pet_series",
        "suv",
        "image",
        "sul_per_suv",
        "bsa_m2",
        "references",
        "segmentation",
        "lesions",
        "whole_body",
        "notes",
        "seg_file",
        "tracer",
        "physiological_exclusion",
    ],
    "properties": {
        "pet_series": {"type": "string"},
        "suv": {"type": "object", "required": ["suvbw_factor", "provenance"]},
        "image": {
            "type": "object",
            "required": ["unit", "shape", "spacing_mm", "affine", "frame_of_reference_uid"],
            "properties": {"unit": {"const": "SUVbw"}},
        },
        "sul_per_suv": _NUM_OR_NULL,
        "bsa_m2": _NUM_OR_NULL,
        "references": {
            "type": "object",
            "required": ["liver", "blood_pool", "percist_threshold"],
            "properties": {
                "liver": _REFERENCE,
                "blood_pool": _REFERENCE,
                "percist_threshold": {
                    "type": ["object", "null"],
                    "required": ["reference", "threshold_sul", "threshold_suv", "formula"],
                    "properties": {"reference": {"enum": ["liver", "blood_pool"]}},
                },
            },
        },
        "segmentation": {
            "type": "object",
            "required": [
                "method",
                "rule",
                "threshold_suv",
                "fraction_of_suvmax",
                "connectivity",
                "min_volume_ml",
                "n_lesions",
            ],
            "properties": {
                "method": {"type": "string"},
                "rule": {"enum": ["fixed", "relative", "percist"]},
                "connectivity": {"enum": [6, 18, 26]},
                "n_lesions": {"type": "integer", "minimum": 0},
            },
        },
        "lesions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "lesion_id",
                    "n_voxels",
                    "suv_max",
                    "suv_max_lps_mm",
                    "suv_mean",
                    "suv_sd",
                    "suv_peak",
                    "mtv_ml",
                    "tlg_suv_ml",
                    "centroid_lps_mm",
                    "extent_min_lps_mm",
                    "extent_max_lps_mm",
                    "sul_max",
                    "sul_peak",
                    "sul_mean",
                ],
                "properties": {
                    "lesion_id": {"type": "integer", "minimum": 1},
                    "suv_max_lps_mm": _POINT,
                    "centroid_lps_mm": _POINT,
                    "suv_peak": {
                        "type": "object",
                        "required": [
                            "value",
                            "centre_lps_mm",
                            "mode",
                            "weights",
                            "constrain",
                            "radius_mm",
                            "kernel_volume_ml",
                        ],
                        "properties": {
                            "value": _NUM_OR_NULL,
                            "centre_lps_mm": _POINT_OR_NULL,
                            "mode": {"enum": ["percist", "global", "local"]},
                        },
                    },
                    "mtv_ml": _NUM,
                    "tlg_suv_ml": _NUM,
                },
            },
        },
        "whole_body": {
            "type": "object",
            "required": [
                "lesion_count",
                "tmtv_ml",
                "total_tlg_suv_ml",
                "dmax_mm",
                "dmax_lesion_ids",
                "sdmax_per_m",
                "bsa_m2",
            ],
            "properties": {
                "lesion_count": {"type": "integer"},
                "tmtv_ml": _NUM,
                "dmax_mm": _NUM_OR_NULL,
                "sdmax_per_m": _NUM_OR_NULL,
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
        "seg_file": {"type": ["string", "null"]},
        "tracer": {
            "type": ["object", "null"],
            "required": ["modality", "family", "radionuclide", "imaging", "summary",
                         "problems"],
            "properties": {
                "family": {"enum": ["FDG", "SSTR", "PSMA", "FAPI", "FLT", "amino acid",
                                    "other", "unknown"]},
                "radionuclide": {"type": ["string", "null"]},
                "imaging": {"type": "string"},
                "problems": {"type": "array", "items": {"type": "string"}},
            },
        },
        "physiological_exclusion": {
            "type": "object",
            "required": ["organs", "default", "excluded"],
            "properties": {
                "organs": {"type": "array",
                           "items": {"enum": ["heart", "bladder", "kidneys", "brain"]}},
                "default": {"type": "boolean"},
                "excluded": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["component", "organ", "reason", "suv_max", "mtv_ml",
                                     "centroid_lps_mm"],
                        "properties": {"centroid_lps_mm": _POINT},
                    },
                },
            },
        },
    },
}


@dataclass
class QuantifyResult:
    """Everything ``oncohybrid quantify`` reports, plus the label volume for SEG export."""

    pet_source: str
    suv_json: dict[str, Any]
    unit: str
    sul_per_suv: float | None
    bsa_m2: float | None
    grid_json: dict[str, Any]
    liver: ReferenceRegion | None
    blood_pool: ReferenceRegion | None
    threshold: PercistThreshold | None
    segmentation: LesionSegmentation
    lesions: list[LesionMetrics]
    whole_body: WholeBodyMetrics
    notes: list[str] = field(default_factory=list)
    #: dicom.tracer.TracerInfo JSON of the PET series (None: header unreadable)
    tracer: dict[str, Any] | None = None
    #: physiological-uptake exclusion: organs asked for, components excluded and why
    physiological: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        seg = self.segmentation
        return {
            "tracer": self.tracer,
            "physiological_exclusion": self.physiological,
            "pet_series": self.pet_source,
            "suv": self.suv_json,
            "image": {"unit": self.unit, **self.grid_json},
            "sul_per_suv": self.sul_per_suv,
            "bsa_m2": self.bsa_m2,
            "references": {
                "liver": None if self.liver is None else self.liver.to_json(),
                "blood_pool": None if self.blood_pool is None else self.blood_pool.to_json(),
                "percist_threshold": None if self.threshold is None else self.threshold.to_json(),
            },
            "segmentation": {**seg.parameters(), "n_lesions": seg.n_lesions},
            "lesions": [_clean(m.to_json()) for m in self.lesions],
            "whole_body": _clean(self.whole_body.to_json()),
            "notes": list(self.notes),
        }


def _clean(obj: Any) -> Any:
    """Replace NaN/inf by None so that the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def quantify_pet(
    pet_source: str | os.PathLike[str],
    *,
    ct_source: str | os.PathLike[str] | None = None,
    method: str = "percist",
    liver_centre_lps_mm: Sequence[float] | None = None,
    blood_pool_centre_lps_mm: Sequence[float] | None = None,
    connectivity: int = 26,
    min_volume_ml: float = 0.5,
    background_corrected: bool = False,
    exclude_physiological: Sequence[str] | None = None,
    allow_tracer_mismatch: bool = False,
    progress: Callable[[str], None] | None = None,
) -> QuantifyResult:
    """Load the PET as SUVbw, place references, segment lesions and compute every metric.

    ``percist`` thresholds at the PERCIST liver (or blood-pool) threshold; ``41pct``
    preselects lesions at that threshold (SUV 2.5 without references) and cuts each at 41%
    of its own SUVmax (``background_corrected``: of SUVmax minus the local background).

    The tracer and radionuclide are read from the header (:mod:`oncohybrid.dicom.tracer`);
    ``percist`` on a tracer PERCIST is not valid for (not FDG PET, e.g. Lu-177 stored as
    PT) raises InputError unless ``allow_tracer_mismatch``; an unknown tracer is a note.
    ``exclude_physiological``: organs (``detect.physiological.ORGANS``) whose physiological
    uptake is removed before labelling; None = all of them for whole-body FDG, none
    otherwise; () = none.
    """
    from oncohybrid.dicom.suv import Normalisation, suv_volume

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    step = progress or (lambda _msg: None)
    notes: list[str] = []
    header = _first_header(pet_source)
    tracer = None if header is None else identify_tracer(header)
    if method == "percist":
        notes.extend(check_criteria(["percist"], tracer, allow_mismatch=allow_tracer_mismatch))
    elif tracer is not None:
        notes.extend(tracer.problems)
    whole_body_fdg = (tracer is not None and tracer.family == FDG and tracer.imaging == "PET"
                      and _is_whole_body(header))
    organs = tuple(exclude_physiological) if exclude_physiological is not None else (
        ORGANS if whole_body_fdg else ())
    step("SUV")
    vol, scaling = suv_volume(pet_source, normalisation=Normalisation.BW)
    # The one conversion of the PET to the quant/segment volume type: every step below
    # takes this GridImage as it is (issue #11: it was converted again at each call).
    img = grid_image(vol)
    f = scaling.factors
    sul_per_suv = None
    if Normalisation.BW in f and Normalisation.LBM_JANMA in f:
        sul_per_suv = f[Normalisation.LBM_JANMA] / f[Normalisation.BW]  # = LBM / weight
    bsa_m2 = None
    if Normalisation.BW in f and Normalisation.BSA in f and scaling.weight_kg:
        # BSA factor (cm^2/Bq) / BW factor (g/Bq) x weight (g) = BSA in cm^2.
        bsa_m2 = f[Normalisation.BSA] / f[Normalisation.BW] * scaling.weight_kg * 1000 / 1e4
    ct_on_pet = None
    if ct_source is not None:
        step("CT")
        from oncohybrid.dicom.volume import load_series
        from oncohybrid.imaging.resample import resample_to

        ct = load_series(ct_source)
        ct_on_pet = resample_to(ct, vol, default=-1000.0).array
    step("references")
    liver = blood = None
    try:
        liver = liver_reference(
            img, ct=ct_on_pet, centre_lps_mm=liver_centre_lps_mm, sul_per_suv=sul_per_suv
        )
    except GeometryError as exc:
        notes.append(f"liver reference unavailable: {exc}")
    if ct_on_pet is not None or blood_pool_centre_lps_mm is not None:
        try:
            blood = blood_pool_reference(
                img, ct=ct_on_pet, centre_lps_mm=blood_pool_centre_lps_mm, sul_per_suv=sul_per_suv
            )
        except GeometryError as exc:
            notes.append(f"blood-pool reference unavailable: {exc}")
    threshold = None
    liver_ok = liver is not None and liver.inside_image and not liver.notes
    if liver is not None or blood is not None:
        try:
            threshold = percist_threshold(
                liver, blood, sul_per_suv=sul_per_suv, liver_usable=liver_ok or blood is None
            )
        except InputError as exc:
            notes.append(str(exc))
    if threshold is not None and threshold.reference == "blood_pool":
        why = "not placed" if liver is None else "; ".join(liver.notes) or "not usable"
        notes.append(f"PERCIST threshold from the blood pool: the liver reference is {why}")
    step("segmentation")
    if method == "percist":
        if threshold is None:
            reasons = "; ".join(n for n in notes if "reference" in n) or "no reference placed"
            raise InputError(
                "--method percist needs a proven liver or blood-pool reference and none is "
                f"available ({reasons}); give reader-placed centres: --liver-centre X,Y,Z "
                "or --blood-pool-centre X,Y,Z (LPS mm)"
            )
        seg = segment_lesions(
            img,
            method="percist",
            threshold_suv=threshold.threshold_suv,
            connectivity=connectivity,
            min_volume_ml=min_volume_ml,
        )
    elif method == "41pct":
        pre = threshold.threshold_suv if threshold is not None else 2.5
        if threshold is None:
            notes.append("41pct preselection at SUV 2.5: no PERCIST threshold (no proven "
                         "liver or blood-pool reference)")
        seg = segment_lesions(
            img,
            method="41pct",
            preselect_suv=pre,
            background_corrected=background_corrected,
            connectivity=connectivity,
            min_volume_ml=min_volume_ml,
        )
    else:
        seg = segment_lesions(
            img, method=method, connectivity=connectivity, min_volume_ml=min_volume_ml
        )
    physio: dict[str, Any] = {"organs": list(organs), "default": exclude_physiological is None,
                              "rules": "docs/pet-metrics.md (physiological uptake)",
                              "excluded": []}
    if organs and seg.n_lesions:
        step("physiological uptake")
        seg, physio["excluded"] = _exclude_physiological(
            img, seg, organs, ct_on_pet, None if liver is None else liver.suv_mean,
            method=method, threshold=threshold, background_corrected=background_corrected,
            connectivity=connectivity, min_volume_ml=min_volume_ml)
        for e in physio["excluded"]:
            notes.append(f"excluded as physiological uptake ({e['organ']}): SUVmax "
                         f"{e['suv_max']:.2f}, {e['mtv_ml']:.0f} ml - {e['reason']}")
    step("metrics")
    mets = lesion_metrics(img, seg.labels, sul_per_suv=sul_per_suv, boxes=seg.boxes)
    wb = whole_body_metrics(img, seg.labels, bsa_m2=bsa_m2, metrics=mets)
    grid = img.grid
    return QuantifyResult(
        pet_source=str(pet_source),
        suv_json=scaling.to_json(),
        unit="SUVbw",
        sul_per_suv=sul_per_suv,
        bsa_m2=bsa_m2,
        grid_json={
            "shape": list(grid.shape),
            "spacing_mm": list(grid.spacing_mm),
            "affine": grid.affine.tolist(),
            "frame_of_reference_uid": vol.frame_of_reference_uid,
        },
        liver=liver,
        blood_pool=blood,
        threshold=threshold,
        segmentation=seg,
        lesions=mets,
        whole_body=wb,
        notes=notes,
        tracer=None if tracer is None else tracer.to_json(),
        physiological=physio,
    )


def _first_header(source: str | os.PathLike[str]) -> Any | None:
    """Header of the first readable DICOM file of a series folder (or file list)."""
    import pydicom

    paths: list[Path]
    if isinstance(source, list | tuple):
        paths = [Path(p) for p in source]
    else:
        root = Path(source)
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths[:50]:
        try:
            return pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM: try the next file
            continue
    return None


def _is_whole_body(header: Any) -> bool:
    """(0054,1000) Series Type value 1 WHOLE BODY (PS3.3 C.8.9.1.1.1)."""
    st = getattr(header, "SeriesType", None)
    if st is None:
        return False
    first = st if isinstance(st, str) else (st[0] if len(st) else "")
    return str(first or "").strip().upper() == "WHOLE BODY"


def tracer_summary(series_uid: str, settings: Any = None) -> dict[str, Any]:
    """Tracer, radionuclide and imaging modality of a stored series (for the web app).

    Returns :meth:`TracerInfo.to_json` (``summary`` is the one-line display text). Raises
    :class:`InputError` when the series has no readable file.
    """
    return series_tracer(series_uid, settings).to_json()


def series_tracer(series_uid: str, settings: Any = None) -> TracerInfo:
    """:class:`TracerInfo` of a stored series, read from its first readable header.

    Raises :class:`InputError` when the series has no readable file.
    """
    from oncohybrid.store.queries import series_files

    header = _first_header(series_files(series_uid, settings))
    if header is None:
        raise InputError(f"series {series_uid}: no readable DICOM file")
    return identify_tracer(header)


def _exclude_physiological(img: GridImage, seg: LesionSegmentation, organs: Sequence[str],
                           ct_on_pet: np.ndarray | None, liver_mean: float | None, *,
                           method: str, threshold: PercistThreshold | None,
                           background_corrected: bool, connectivity: int,
                           min_volume_ml: float) -> tuple[LesionSegmentation, list[dict]]:
    """Drop components judged physiological (detect.physiological) whose guessed organ is in
    ``organs`` (ids stay 1..n by SUVmax).

    ``fixed``/``percist``: the components are removed from the labels
    (:func:`oncohybrid.segment.threshold.drop_lesions`, the same labels as segmenting again
    with their dilated masks excluded, without the second segmentation); ``relative`` (41%)
    is segmented again with the masks excluded, since removing a component changes the
    other lesions' preselection VOIs."""
    from scipy import ndimage

    from oncohybrid.detect.physiological import guess_organ, physiological_components

    arr = img.array
    grid = img.grid
    spacing = tuple(float(v) for v in grid.spacing_mm)
    drop = physiological_components(seg.labels, seg.boxes, arr, spacing, liver_mean)
    if not drop:
        return seg, []
    # geometry for the organ guess: FOV head-foot range, body midline, lung range (CT)
    body = arr > 0.1 * float(np.percentile(arr[::2, ::2, ::2], 99.5))
    com = grid.index_to_lps(np.asarray(ndimage.center_of_mass(body)))
    corners = grid.index_to_lps(np.array([[0, 0, 0], np.asarray(grid.shape) - 1], float))
    z_range = (float(corners[:, 2].min()), float(corners[:, 2].max()))
    lung_range = None
    if ct_on_pet is not None:
        from oncohybrid.quant.references import LUNG_MIN_AREA_MM2, _thorax

        th = _thorax(ct_on_pet, grid)
        zs = th.z_mm[(th.right_mm2 + th.left_mm2) >= 2 * LUNG_MIN_AREA_MM2]
        if zs.size:
            lung_range = (float(zs.min()), float(zs.max()))
    vox_ml = grid.voxel_volume_ml
    relative = seg.rule == ThresholdMethod.RELATIVE
    masks: dict[str, np.ndarray] = {}  # organ -> components (only to segment 41% again)
    excluded = []
    for k, why in sorted(drop.items()):
        box = seg.boxes[k - 1]
        m = seg.labels[box] == k
        idx = np.argwhere(m).mean(axis=0) + [b.start for b in box]
        centroid = grid.index_to_lps(idx)
        mtv = float(m.sum() * vox_ml)
        organ = guess_organ(centroid, mtv, z_range_mm=z_range, body_mid_x_mm=float(com[0]),
                            lung_z_range_mm=lung_range)
        if organ not in organs:
            continue
        if relative:
            full = masks.setdefault(organ, np.zeros(grid.shape, bool))
            full[box] |= m
        excluded.append({"component": k, "organ": organ, "reason": why,
                         "suv_max": float(arr[box][m].max()), "mtv_ml": mtv,
                         "centroid_lps_mm": [round(float(v), 1) for v in centroid]})
    if not excluded:
        return seg, []
    if not relative:
        # Same labels, ids, boxes and excluded_regions as segmenting again with the
        # dilated masks excluded (see drop_lesions), without the second segmentation.
        regions = list(dict.fromkeys(e["organ"] for e in excluded))
        return drop_lesions(seg, [e["component"] for e in excluded], regions), excluded
    # dilate by one voxel: the re-segmentation must not keep the component's blurred rim
    masks = {o: ndimage.binary_dilation(m) for o, m in masks.items()}
    return segment_lesions(
        img, method="41pct", background_corrected=background_corrected,
        preselect_suv=threshold.threshold_suv if threshold is not None else 2.5,
        connectivity=connectivity, min_volume_ml=min_volume_ml, exclude=masks), excluded


def write_lesion_seg(
    result: QuantifyResult, pet_source: str | os.PathLike[str], out: str | os.PathLike[str]
) -> Path:
    """Write the lesion labels as a binary DICOM SEG, one segment per lesion (PS3.3 A.51).

    The SEG references the PET source images (highdicom builds the Derivation Image and
    Referenced Series sequences from them); segment ``k`` is lesion id ``k``.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from oncohybrid import __version__
    from oncohybrid.dicom.volume import read_series, sort_slices

    seg = result.segmentation
    if seg.n_lesions == 0:
        raise InputError("no lesions were segmented: nothing to write to --seg-out")
    datasets = sort_slices(read_series(pet_source))
    if len(datasets) != seg.grid.shape[0]:
        raise GeometryError(
            f"{pet_source}: {len(datasets)} PET images but {seg.grid.shape[0]} volume slices; "
            "SEG export needs single-frame images"
        )
    algo = hd.AlgorithmIdentificationSequence(
        name=f"oncohybrid quantify ({seg.method})",
        version=__version__,
        # CID 7162 has no "thresholding"; histogram analysis is the nearest family.
        family=codes.cid7162.HistogramAnalysis,
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=f"Lesion {k}",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
        )
        for k in range(1, seg.n_lesions + 1)
    ]
    dtype = np.uint16 if seg.n_lesions < 65536 else np.uint32
    ref = datasets[0]
    obj = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=seg.labels.astype(dtype),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=int(getattr(ref, "SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="oncohybrid",
        manufacturer_model_name="oncohybrid quantify",
        software_versions=__version__,
        device_serial_number="0",
        series_description=f"PET lesions ({seg.method})",
    )
    path = Path(out)
    try:
        obj.save_as(path)
    except OSError as exc:
        raise OncohybridError(f"cannot write {path}: {exc}") from exc
    return path
