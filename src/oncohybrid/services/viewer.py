"""Use-case: PET/CT slice rendering for the web viewer (PNG tiles, voxel read-out, MIP).

A study's CT and PET series are loaded once into a small LRU cache keyed by the series
UIDs: the CT volume in HU (:func:`oncohybrid.dicom.volume.load_series`), the PET volume
in SUVbw (:func:`oncohybrid.dicom.suv.suv_volume`) on its own grid, and the PET
resampled once onto the CT grid (:func:`oncohybrid.imaging.resample.resample_to`) for
fusion. Every tile after the first is then a slice, a lookup table and a PNG encode
(Pillow, ``compress_level=1``: ~5× faster than the default for ~20 % larger files).

The voxel read-out reports the CT value of the CT voxel under the cursor and the SUV of
the *native* PET voxel that contains the same patient point (no interpolation), so the
numbers are those a reader would find in the original series. Nothing here logs patient
identifiers.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import highdicom as hd
import numpy as np
import sqlalchemy as sa
from PIL import Image

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, StoreError
from oncohybrid.imaging import render
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Series, Study
from oncohybrid.store.queries import series_files

__all__ = [
    "StudyVolumes",
    "study_volumes",
    "render_plane_png",
    "render_mip_png",
    "probe",
    "point_lps",
    "viewer_info",
    "clear_cache",
    "lesion_label_volume",
    "MIP_ANGLES",
    "PNG_COMPRESS_LEVEL",
]

#: Number of precomputed MIP projections over a full turn (every 15°).
MIP_ANGLES = 24
PNG_COMPRESS_LEVEL = 1
#: Studies kept in memory (a clinical-size PET/CT is ~200 MB as float32).
CACHE_SIZE = 4
_IMAGE_MODALITIES = ("CT", "PT")


@dataclass
class StudyVolumes:
    """The loaded volumes of one PET/CT study (display grid = CT grid, else PET grid)."""

    key: str
    ct_series_uid: str | None
    pt_series_uid: str | None
    ct: hd.Volume | None
    pet: hd.Volume | None  # SUVbw on the PET grid
    pet_on_grid: np.ndarray | None  # SUVbw on the display grid
    grid: hd.Volume  # geometry of the display grid (array = CT or PET on its grid)
    suv_p99: float = 0.0
    mips: dict[int, np.ndarray] = field(default_factory=dict)
    #: Derived display data of other layers (lesion contours), dropped with the entry.
    extras: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.grid.spatial_shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in self.grid.spacing)  # type: ignore[return-value]


_cache: OrderedDict[str, StudyVolumes] = OrderedDict()
_cache_lock = threading.Lock()
_load_locks: dict[str, threading.Lock] = {}


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _load_locks.clear()


def _study_series(settings: Settings, study_uid: str) -> tuple[str | None, str | None]:
    """The (CT, PT) series UIDs of a study: the one with most instances of each."""
    with session_scope(settings) as s:
        study_pk = s.scalar(sa.select(Study.id).where(Study.study_instance_uid == study_uid))
        if study_pk is None:
            raise StoreError(f"study {study_uid}: not in the study database")
        rows = s.execute(
            sa.select(Series.series_instance_uid, Series.modality)
            .where(Series.study_pk == study_pk, Series.modality.in_(_IMAGE_MODALITIES))
            .order_by(Series.number_of_instances.desc(), Series.id)
        ).all()
    ct = next((uid for uid, m in rows if m == "CT"), None)
    pt = next((uid for uid, m in rows if m == "PT"), None)
    if ct is None and pt is None:
        raise InputError(f"study {study_uid}: has no CT or PET image series to display")
    return ct, pt


def _load(settings: Settings, key: str, ct_uid: str | None, pt_uid: str | None) -> StudyVolumes:
    from oncohybrid.dicom.suv import suv_volume
    from oncohybrid.dicom.volume import load_series
    from oncohybrid.imaging.resample import resample_to

    ct = load_series(series_files(ct_uid, settings)) if ct_uid else None
    pet = None
    if pt_uid:
        pet, _scaling = suv_volume(series_files(pt_uid, settings))
    grid = ct if ct is not None else pet
    assert grid is not None
    pet_on_grid = None
    if pet is not None:
        pet_on_grid = pet.array if ct is None else resample_to(pet, ct).array
    p99 = float(np.percentile(pet.array, 99.9)) if pet is not None else 0.0
    return StudyVolumes(key, ct_uid, pt_uid, ct, pet, pet_on_grid, grid, suv_p99=p99)


def study_volumes(study_uid: str, settings: Settings | None = None) -> StudyVolumes:
    """The cached volumes of a study, loading them on first use (one loader per study)."""
    settings = settings or get_settings()
    ct_uid, pt_uid = _study_series(settings, study_uid)
    key = f"{ct_uid}|{pt_uid}"
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
        load_lock = _load_locks.setdefault(key, threading.Lock())
    with load_lock:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                return hit
        vols = _load(settings, key, ct_uid, pt_uid)
        with _cache_lock:
            _cache[key] = vols
            while len(_cache) > CACHE_SIZE:
                old, _ = _cache.popitem(last=False)
                _load_locks.pop(old, None)
        return vols


def viewer_info(vols: StudyVolumes) -> dict[str, Any]:
    """Dimensions and physical aspect of each orientation for the client."""
    n_k, n_j, n_i = vols.shape
    s_k, s_j, s_i = vols.spacing_mm
    info: dict[str, Any] = {
        "shape": [n_k, n_j, n_i],
        "spacing_mm": [s_k, s_j, s_i],
        "has_ct": vols.ct is not None,
        "has_pet": vols.pet is not None,
        "suv_max_default": round(max(5.0, min(vols.suv_p99, 15.0)), 1) if vols.pet else None,
        "planes": {
            "axial": {"count": n_k, "width_mm": n_i * s_i, "height_mm": n_j * s_j},
            "coronal": {"count": n_j, "width_mm": n_i * s_i, "height_mm": n_k * s_k},
            "sagittal": {"count": n_i, "width_mm": n_j * s_j, "height_mm": n_k * s_k},
        },
        "mip_angles": MIP_ANGLES if vols.pet is not None else 0,
        "ct_presets": {k: {"centre": c, "width": w} for k, (c, w) in render.CT_PRESETS.items()},
        "colormaps": list(render.PET_COLORMAPS),
    }
    if vols.pet is not None:
        pk, pj, pi = (float(s) for s in vols.pet.spacing)
        nk, nj, ni = vols.pet.spatial_shape
        info["mip"] = {"width_mm": ni * pi, "height_mm": nk * pk}
    return info


def _encode_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _ct_window(window: str | None, centre: float | None, width: float | None
               ) -> tuple[float, float]:
    if centre is not None and width is not None:
        return float(centre), float(width)
    name = window or "soft"
    if name not in render.CT_PRESETS:
        raise InputError(f"window must be one of {', '.join(render.CT_PRESETS)}, got {name!r}")
    return render.CT_PRESETS[name]


def render_plane_rgb(vols: StudyVolumes, orientation: str, index: int, *, mode: str = "fused",
                     window: str | None = "soft", centre: float | None = None,
                     width: float | None = None, cmap: str = "hot", suv_min: float = 0.0,
                     suv_max: float = 8.0, alpha: float = 0.6,
                     labels: np.ndarray | None = None,
                     label_colours: dict[int, tuple[int, int, int]] | None = None,
                     label_names: dict[int, str] | None = None) -> np.ndarray:
    """RGB image of one plane: ``mode`` ``ct``, ``pet`` or ``fused``."""
    if mode not in ("ct", "pet", "fused"):
        raise InputError(f"mode must be ct, pet or fused, got {mode!r}")
    if cmap not in render.PET_COLORMAPS:
        raise InputError(f"cmap must be one of {', '.join(render.PET_COLORMAPS)}, got {cmap!r}")
    try:
        ct_plane = (render.plane(vols.ct.array, orientation, index)
                    if vols.ct is not None else None)
        pet_plane = (render.plane(vols.pet_on_grid, orientation, index)
                     if vols.pet_on_grid is not None else None)
    except (IndexError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if mode != "ct" and pet_plane is None:
        mode = "ct"
    if mode != "pet" and ct_plane is None:
        mode = "pet"
    if mode == "ct":
        rgb = render.grey_rgb(render.window_ct(ct_plane, *_ct_window(window, centre, width)))
    else:
        idx = render.scale_pet(pet_plane, suv_min, suv_max)
        if mode == "pet":
            rgb = render.apply_lut(idx, render.colormap_lut(cmap))
        else:
            fused_cmap = "hot" if cmap.startswith("grey") else cmap
            ct_rgb = render.grey_rgb(render.window_ct(ct_plane, *_ct_window(window, centre,
                                                                             width)))
            rgb = render.fuse(ct_rgb, render.apply_lut(idx, render.colormap_lut(fused_cmap)),
                              idx, alpha)
    if labels is not None:
        lab = render.plane(labels, orientation, index)
        rgb = render.draw_contours(rgb, lab, label_colours or {})
        if label_names:
            rgb = render.label_regions(rgb, lab, label_names, label_colours or {})
    return rgb


def render_plane_png(vols: StudyVolumes, orientation: str, index: int, **kw: Any) -> bytes:
    """PNG bytes of :func:`render_plane_rgb`."""
    return _encode_png(render_plane_rgb(vols, orientation, index, **kw))


def mip_array(vols: StudyVolumes, angle_index: int) -> np.ndarray:
    """The SUV MIP at ``angle_index`` × 360°/:data:`MIP_ANGLES` (computed once, cached)."""
    if vols.pet is None:
        raise InputError("this study has no PET series: no MIP")
    if not 0 <= angle_index < MIP_ANGLES:
        raise InputError(f"MIP angle index must be within 0..{MIP_ANGLES - 1}, got {angle_index}")
    with vols.lock:
        m = vols.mips.get(angle_index)
    if m is None:
        m = render.mip(vols.pet.array, angle_index * 360.0 / MIP_ANGLES)
        with vols.lock:
            vols.mips[angle_index] = m
    return m


def render_mip_png(vols: StudyVolumes, angle_index: int, *, cmap: str = "grey_inv",
                   suv_max: float = 8.0) -> bytes:
    if cmap not in render.PET_COLORMAPS:
        raise InputError(f"cmap must be one of {', '.join(render.PET_COLORMAPS)}, got {cmap!r}")
    idx = render.scale_pet(mip_array(vols, angle_index), 0.0, suv_max)
    return _encode_png(render.apply_lut(idx, render.colormap_lut(cmap)))


def voxel_of(vols: StudyVolumes, orientation: str, index: int, fx: float, fy: float
             ) -> tuple[int, int, int]:
    """Display-grid voxel ``(k, j, i)`` under the fractional image position ``(fx, fy)``."""
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise InputError(f"click position must be fractions within [0, 1], got ({fx}, {fy})")
    n_k, n_j, n_i = vols.shape

    def pick(f: float, n: int) -> int:
        return min(int(f * n), n - 1)

    if orientation == "axial":
        k, j, i = index, pick(fy, n_j), pick(fx, n_i)
    elif orientation == "coronal":
        k, j, i = n_k - 1 - pick(fy, n_k), index, pick(fx, n_i)
    elif orientation == "sagittal":
        k, j, i = n_k - 1 - pick(fy, n_k), pick(fx, n_j), index
    else:
        raise InputError(f"orientation must be axial, coronal or sagittal, got {orientation!r}")
    if not (0 <= k < n_k and 0 <= j < n_j and 0 <= i < n_i):
        raise InputError(f"{orientation} index {index} outside the volume")
    return k, j, i


def point_lps(vols: StudyVolumes, orientation: str, index: int, fx: float, fy: float
              ) -> np.ndarray:
    """LPS mm of a fractional image position (continuous, not snapped to voxel centres)."""
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise InputError(f"point must be fractions within [0, 1], got ({fx}, {fy})")
    n_k, n_j, n_i = vols.shape
    count = {"axial": n_k, "coronal": n_j, "sagittal": n_i}.get(orientation)
    if count is not None and not 0 <= index < count:
        raise InputError(f"index: {orientation} slice {index} outside 0..{count - 1}")
    # Fractions → continuous voxel coordinates; voxel centres sit at (n + 0.5) / N.
    if orientation == "axial":
        kji = (index, fy * n_j - 0.5, fx * n_i - 0.5)
    elif orientation == "coronal":
        kji = (n_k - 0.5 - fy * n_k, index, fx * n_i - 0.5)
    elif orientation == "sagittal":
        kji = (n_k - 0.5 - fy * n_k, fx * n_j - 0.5, index)
    else:
        raise InputError(f"orientation must be axial, coronal or sagittal, got {orientation!r}")
    return (vols.grid.affine @ np.array([*kji, 1.0]))[:3]


def probe(vols: StudyVolumes, orientation: str, index: int, fx: float, fy: float
          ) -> dict[str, Any]:
    """HU and SUV at a click: ``{voxel, lps_mm, hu, suv, pet_voxel}``."""
    k, j, i = voxel_of(vols, orientation, index, fx, fy)
    lps = (vols.grid.affine @ np.array([k, j, i, 1.0]))[:3]
    out: dict[str, Any] = {
        "voxel": [k, j, i],
        "lps_mm": [round(float(v), 2) for v in lps],
        "hu": None,
        "suv": None,
        "pet_voxel": None,
    }
    if vols.ct is not None:
        out["hu"] = round(float(vols.ct.array[k, j, i]), 1)
    if vols.pet is not None:
        pk = np.rint(np.linalg.solve(vols.pet.affine, np.append(lps, 1.0))[:3]).astype(int)
        if all(0 <= int(v) < n for v, n in zip(pk, vols.pet.spatial_shape, strict=True)):
            out["pet_voxel"] = [int(v) for v in pk]
            out["suv"] = round(float(vols.pet.array[tuple(pk)]), 3)
    return out


def stored_label_volume(settings: Settings, vols: StudyVolumes, patient_pk: int | None,
                        study_uid: str) -> tuple[np.ndarray, dict[int, str]] | None:
    """The record's stored measured lesion masks of a study on the display grid.

    Returns (labels, label → lesion key), labels numbered 1..n in segment order, or
    ``None`` when the record holds no stored masks for this study's PET series (older
    records: the caller re-derives contours). The masks are on the PET grid; they are
    brought to the display grid with one nearest-neighbour resampling of a label volume.
    """
    import pydicom

    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.services.masks import stored_masks_for_study

    if patient_pk is None or vols.pet is None or vols.pt_series_uid is None:
        return None
    headers = [pydicom.dcmread(f, stop_before_pixels=True)
               for f in series_files(vols.pt_series_uid, settings)]
    masks = stored_masks_for_study(settings, patient_pk, study_uid, vols.pt_series_uid, headers)
    if not masks:
        return None
    on_pet = np.zeros(tuple(vols.pet.spatial_shape), np.uint16)
    names: dict[int, str] = {}
    for n, (key, mask) in enumerate(masks.items(), start=1):
        on_pet[mask & (on_pet == 0)] = n
        names[n] = key
    if vols.ct is None:  # the PET grid is the display grid
        return on_pet, names
    labels = resample_to(vols.pet.with_array(on_pet), vols.grid, interpolation="nearest",
                         default=0).array.astype(np.uint16)
    return labels, names


#: Contour colours of the lesion labels 1, 2, ... (cycled).
LABEL_PALETTE = [(56, 224, 123), (80, 170, 255), (255, 196, 0), (255, 99, 196),
                 (0, 230, 230), (200, 140, 255)]


def _threshold_suv(methods: dict[str, Any] | None) -> float | None:
    try:
        return float(methods["suv_max"]["parameters"]["threshold"]["threshold_suv"])
    except (KeyError, TypeError, ValueError):
        return None


def lesion_label_volume(settings: Settings, vols: StudyVolumes, study_uid: str
                        ) -> tuple[np.ndarray | None, dict[int, tuple[int, int, int]] | None,
                                   dict[int, str] | None]:
    """Lesion labels on the viewer's display grid, colours and names (computed once per
    loaded study, kept in ``vols.extras``); ``(None, None, None)`` without PET or lesions.

    The contours are the record's stored measured masks (one DICOM SEG per timepoint,
    docs/record.md; :func:`stored_label_volume`). Only for records without stored masks is
    the contour re-derived: the connected region of the (display-grid) PET at or above the
    segmentation threshold stored in the observation's provenance (PERCIST liver
    threshold, Wahl 2009), grown from the hottest voxel within 5 mm of the recorded
    centroid; 41 % of that voxel's SUV when no threshold is stored (EANM guideline
    isocontour, Boellaard 2015).
    """
    from scipy import ndimage

    from oncohybrid.services.worklist import patient_pk_of_study
    from oncohybrid.store.models_record import Lesion, Observation, Timepoint, TimepointStudy

    cache = vols.extras.get("labels")
    if cache is not None:
        return cache
    result: tuple[Any, Any, Any] = (None, None, None)
    names: dict[int, str] = {}
    if vols.pet_on_grid is not None:
        ppk = patient_pk_of_study(study_uid, settings)
        with session_scope(settings) as s:
            rows = s.execute(
                sa.select(Lesion.key, Observation.centroid_lps_mm, Observation.methods,
                          Observation.present)
                .join(Lesion, Observation.lesion_pk == Lesion.id)
                .join(Timepoint, Observation.timepoint_pk == Timepoint.id)
                .join(TimepointStudy, TimepointStudy.timepoint_pk == Timepoint.id)
                .where(Lesion.patient_pk == ppk, Observation.in_use,
                       TimepointStudy.study_instance_uid == study_uid)
                .order_by(Lesion.id)
            ).all()
        pet = vols.pet_on_grid
        labels = np.zeros(pet.shape, dtype=np.uint16)
        inv = np.linalg.inv(vols.grid.affine)
        spacing = np.asarray(vols.spacing_mm)
        half = np.maximum(np.ceil(5.0 / spacing).astype(int), 1)
        n = 0
        stored = stored_label_volume(settings, vols, ppk, study_uid)
        if stored is not None:  # the measured masks; the derivation below is the fallback
            labels, names = stored
            n, rows = len(names), []
        for key, centroid, methods, present in rows:
            if not present or centroid is None:
                continue
            c = np.rint((inv @ np.append(centroid, 1.0))[:3]).astype(int)
            lo = np.maximum(c - half, 0)
            hi = np.minimum(c + half + 1, pet.shape)
            if np.any(hi <= lo):
                continue
            box = pet[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
            peak = np.array(np.unravel_index(int(np.argmax(box)), box.shape)) + lo
            thr = _threshold_suv(methods) or 0.41 * float(pet[tuple(peak)])
            # Grow within a bounded box so that a low threshold cannot flood the body.
            reach = np.ceil(60.0 / spacing).astype(int)
            blo = np.maximum(peak - reach, 0)
            bhi = np.minimum(peak + reach + 1, pet.shape)
            sub = pet[blo[0]:bhi[0], blo[1]:bhi[1], blo[2]:bhi[2]] >= thr
            comp, _ = ndimage.label(sub)
            lab = comp[tuple(peak - blo)]
            if lab == 0:
                continue
            n += 1
            region = labels[blo[0]:bhi[0], blo[1]:bhi[1], blo[2]:bhi[2]]
            region[(comp == lab) & (region == 0)] = n
            names[n] = key
        if n:
            colours = {i: LABEL_PALETTE[(i - 1) % len(LABEL_PALETTE)] for i in range(1, n + 1)}
            result = (labels, colours, names)
    vols.extras["labels"] = result
    return result


def study_tracer(study_uid: str, settings: Settings | None = None,
                 criteria: Sequence[str] = ()) -> dict[str, Any] | None:
    """Tracer of a study's PET series and the criteria it does not suit, for the reading room.

    ``None`` for a study without PET. ``warnings`` holds the header problems (e.g. a
    non-positron radionuclide stored as PT) and, for each of ``criteria`` that is not valid
    for this tracer or modality, the reason (response.applicability; issue #12).
    """
    from oncohybrid.response.applicability import check_criterion
    from oncohybrid.services.quantify import series_tracer

    settings = settings or get_settings()
    _ct_uid, pt_uid = _study_series(settings, study_uid)
    if pt_uid is None:
        return None
    try:
        tracer = series_tracer(pt_uid, settings)
    except InputError:  # no readable PET file: nothing to show
        return None
    warnings = list(tracer.problems)
    for c in criteria:
        verdict = check_criterion(c, tracer)
        if verdict.level != "ok":
            warnings.append(verdict.message)
    return {"summary": tracer.summary(), "warnings": warnings}
