"""Use-case: the reading room's viewer for MR diffusion, contrast ultrasound and dual-energy
CT iodine maps (issue #19).

A study's series are read once into a small cache and shown as *layers*, each with its own
window (centre/width in its own units):

- **DWI** (MR series with b-values, :func:`oncohybrid.dicom.diffusion.read_dwi`): one
  layer per b-value (the trace-weighted image; window from that image's 1st–99.5th
  percentiles of the non-zero voxels, since b = 0 and b = 800 differ ten-fold in signal),
  and the **ADC** map fitted over all b-values (:func:`oncohybrid.services.dwi.fit_series_adc`,
  µm²/s, window 1500/3000 µm²/s as the Parametric Map writes; background not fitted).
- **Other MR series** (:func:`oncohybrid.dicom.volume.load_series`): one layer, percentile
  window.
- **CEUS cine** (Ultrasound Multi-frame, :func:`oncohybrid.dicom.ultrasound.read_us_cine`):
  the frames with their times; the ROI's time-intensity curve and bolus fit come from
  :func:`oncohybrid.services.ceus.tic`.
- **DECT**: an iodine-density Parametric Map (UCUM ``mg/mL``) of a CT study is drawn as a
  colour overlay (0 … 10 mg/mL by default) on the study's CT (window 40/400 HU) after
  resampling to the CT grid.

ROIs on MR are discs on the shown axial slice (voxel centres within the radius, in mm,
in-plane); the ADC inside is summarised as ``oncohybrid dwi adc`` does
(:func:`oncohybrid.quant.adc.adc_histogram`).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from oncohybrid.config import Settings
from oncohybrid.errors import InputError, OncohybridError, StoreError
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Series, Study
from oncohybrid.store.queries import series_files

__all__ = ["ADC_WINDOW", "IODINE_RANGE", "StudyLayers", "frame_png", "layer_png", "probe",
           "roi_stats", "study_layers", "tic_of_roi"]

#: ADC display window (centre, width) in µm²/s: 0 … 3000 (report/parametric_map.py).
ADC_WINDOW = (1500.0, 3000.0)
#: Iodine overlay scale (mg/mL): transparent at 0, full colour at 10.
IODINE_RANGE = (0.0, 10.0)
CT_WINDOW = (40.0, 400.0)
CACHE_SIZE = 4
PARAMETRIC_MAP_SOP = "1.2.840.10008.5.1.4.1.1.30"


@dataclass
class Layer:
    """One displayable volume: array (slices, rows, columns), its window and units."""

    name: str
    label: str
    array: np.ndarray = field(repr=False)
    affine: np.ndarray = field(repr=False)
    window: tuple[float, float]
    units: str

    def info(self) -> dict[str, Any]:
        n_k, n_j, n_i = self.array.shape
        sp = np.linalg.norm(self.affine[:3, :3], axis=0)
        return {"name": self.name, "label": self.label, "units": self.units,
                "window": {"centre": round(self.window[0], 3), "width": round(self.window[1], 3)},
                "slices": int(n_k), "rows": int(n_j), "columns": int(n_i),
                "width_mm": float(n_i * sp[2]), "height_mm": float(n_j * sp[1])}


@dataclass
class SeriesView:
    """The layers of one series (``kind``: dwi, mr, ceus, dect) and what came with it."""

    series_uid: str
    kind: str
    description: str
    layers: dict[str, Layer] = field(default_factory=dict)
    b_values: list[float] = field(default_factory=list)
    b_value_source: str | None = None
    cine: Any = None  # dicom.ultrasound.UsCine
    overlay: Layer | None = None  # DECT iodine on the CT grid
    adc_mm2_s: np.ndarray | None = field(default=None, repr=False)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"series_uid": self.series_uid, "kind": self.kind,
                               "description": self.description,
                               "layers": [layer.info() for layer in self.layers.values()]}
        if self.kind == "dwi":
            out.update(b_values=self.b_values, b_value_source=self.b_value_source)
        if self.cine is not None:
            times = [round(float(t), 4) for t in self.cine.times_s]
            out["cine"] = {"frames": len(times), "times_s": times,
                           "rows": self.cine.rows, "columns": self.cine.columns,
                           "frame_time_source": self.cine.frame_time_source}
        if self.overlay is not None:
            out["overlay"] = {**self.overlay.info(), "range": list(IODINE_RANGE)}
        return out


@dataclass
class StudyLayers:
    study_uid: str
    series: dict[str, SeriesView]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self) -> dict[str, Any]:
        return {"study_uid": self.study_uid,
                "series": [s.info() for s in self.series.values()]}

    def get(self, series_uid: str) -> SeriesView:
        view = self.series.get(series_uid)
        if view is None:
            raise StoreError(f"series {series_uid}: not shown in this study's viewer")
        return view


_cache: OrderedDict[str, StudyLayers] = OrderedDict()
_cache_lock = threading.Lock()


def _percentile_window(arr: np.ndarray) -> tuple[float, float]:
    vals = arr[np.isfinite(arr) & (arr != 0)]
    if vals.size == 0:
        return 0.5, 1.0
    lo, hi = (float(v) for v in np.percentile(vals, [1.0, 99.5]))
    if hi <= lo:
        hi = lo + 1.0
    return (lo + hi) / 2, hi - lo


def _rows(settings: Settings, study_uid: str) -> list[tuple[str, str, str | None]]:
    with session_scope(settings) as s:
        pk = s.scalar(sa.select(Study.id).where(Study.study_instance_uid == study_uid))
        if pk is None:
            raise StoreError(f"study {study_uid}: not in the study database")
        return [(uid, mod or "", desc) for uid, mod, desc in s.execute(
            sa.select(Series.series_instance_uid, Series.modality, Series.series_description)
            .where(Series.study_pk == pk).order_by(Series.series_number, Series.id)).all()]


def _dwi_view(uid: str, desc: str, files: list[Path]) -> SeriesView | None:
    from oncohybrid.dicom.diffusion import DiffusionError, read_dwi
    from oncohybrid.services.dwi import fit_series_adc

    try:
        dwi = read_dwi(files)
    except DiffusionError:
        return None  # no b-value anywhere: a plain MR series
    view = SeriesView(uid, "dwi", desc, b_values=list(dwi.b_values),
                      b_value_source=dwi.b_value_source.value)
    for b in dwi.b_values:
        vol = dwi.trace(b)
        arr = np.asarray(vol.array, dtype=np.float32)
        view.layers[f"b{b:g}"] = Layer(f"b{b:g}", f"b = {b:g} s/mm²", arr,
                                       np.asarray(vol.affine), _percentile_window(arr),
                                       "signal")
    if len(dwi.b_values) >= 2:
        b, signals, ref = dwi.signals()
        fit = fit_series_adc(signals, b)
        view.adc_mm2_s = fit.adc_mm2_s
        adc = np.nan_to_num(fit.adc_mm2_s * 1e6, nan=0.0).astype(np.float32)
        view.layers["adc"] = Layer("adc", f"ADC (b = {', '.join(f'{v:g}' for v in b)})", adc,
                                   np.asarray(ref.affine), ADC_WINDOW, "µm²/s")
    return view


def _plain_view(uid: str, desc: str, modality: str, files: list[Path]) -> SeriesView:
    from oncohybrid.dicom.volume import load_series

    vol = load_series(files, dtype=np.float32)
    arr = np.asarray(vol.array, dtype=np.float32)
    kind = "mr" if modality == "MR" else "ct"
    window = _percentile_window(arr) if modality == "MR" else CT_WINDOW
    units = "signal" if modality == "MR" else "HU"
    view = SeriesView(uid, kind, desc)
    view.layers["image"] = Layer("image", desc or modality, arr, np.asarray(vol.affine), window,
                                 units)
    return view


def _iodine_overlay(files: list[Path], ct: SeriesView) -> Layer | None:
    """An iodine Parametric Map (mg/mL) resampled onto the CT layer's grid."""
    import highdicom as hd

    from oncohybrid.imaging.resample import resample_to

    try:
        pm = hd.pm.ParametricMap.from_file(files[0])
        vol = pm.get_volume(apply_real_world_transform=True)
    except Exception:  # noqa: BLE001 - not a readable map: no overlay
        return None
    base = ct.layers["image"]
    ref = hd.Volume(array=base.array, affine=base.affine, coordinate_system="PATIENT")
    try:
        on_ct = resample_to(vol.with_array(np.asarray(vol.array, np.float32)), ref,
                            default=0.0).array
    except OncohybridError:
        return None
    return Layer("iodine", "Iodine density", np.asarray(on_ct, np.float32), base.affine,
                 ((IODINE_RANGE[0] + IODINE_RANGE[1]) / 2, IODINE_RANGE[1] - IODINE_RANGE[0]),
                 "mg/mL")


def _is_iodine_map(files: list[Path]) -> bool:
    import pydicom

    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    if str(ds.get("SOPClassUID", "")) != PARAMETRIC_MAP_SOP:
        return False
    for item in ds.get("SharedFunctionalGroupsSequence", [{}])[0].get(
            "RealWorldValueMappingSequence", []) if ds.get(
            "SharedFunctionalGroupsSequence") else []:
        units = item.get("MeasurementUnitsCodeSequence")
        if units and str(units[0].CodeValue).lower() == "mg/ml":
            return True
    return "IODINE" in str(ds.get("ContentLabel", "")).upper()


def _load(settings: Settings, study_uid: str) -> StudyLayers:
    from oncohybrid.dicom.ultrasound import read_us_cine

    series: dict[str, SeriesView] = {}
    iodine_maps: list[list[Path]] = []
    for uid, modality, desc in _rows(settings, study_uid):
        files = series_files(uid, settings)
        if not files:
            continue
        try:
            if modality == "MR":
                view = _dwi_view(uid, desc or "", files) or _plain_view(uid, desc or "", "MR",
                                                                       files)
            elif modality == "US":
                cine = read_us_cine(files[0])
                view = SeriesView(uid, "ceus", desc or "Ultrasound cine", cine=cine)
            elif _is_iodine_map(files):
                iodine_maps.append(files)
                continue
            elif modality == "CT":
                view = _plain_view(uid, desc or "", "CT", files)
            else:
                continue
        except OncohybridError:
            continue  # a series the viewer cannot show (e.g. a SEG, a localiser)
        series[uid] = view
    cts = [v for v in series.values() if v.kind == "ct"]
    for files in iodine_maps:
        for ct in cts:
            overlay = _iodine_overlay(files, ct)
            if overlay is not None:
                ct.overlay, ct.kind = overlay, "dect"
                break
    if not series:
        raise InputError(f"study {study_uid}: no MR, ultrasound cine or CT series to display")
    return StudyLayers(study_uid, series)


def study_layers(settings: Settings, study_uid: str) -> StudyLayers:
    """The study's layers, read on first use and cached (:data:`CACHE_SIZE` studies); a
    series added to the study later (e.g. an iodine map) makes it read again."""
    key = study_uid + "|" + ",".join(sorted(uid for uid, _m, _d in _rows(settings, study_uid)))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    loaded = _load(settings, study_uid)
    with _cache_lock:
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _layer(view: SeriesView, name: str) -> Layer:
    layer = view.layers.get(name)
    if layer is None:
        raise InputError(f"layer {name!r}: this series has {', '.join(view.layers)}")
    return layer


def _slice(layer: Layer, index: int) -> np.ndarray:
    if not 0 <= index < layer.array.shape[0]:
        raise InputError(f"slice {index} outside 0..{layer.array.shape[0] - 1}")
    return layer.array[index]


def layer_png(view: SeriesView, name: str, index: int, *, centre: float | None = None,
              width: float | None = None, overlay: bool = True) -> bytes:
    """PNG of one axial slice of a layer in its window (or the given one); a DECT series
    gets its iodine overlay (hot colours, 0 … 10 mg/mL)."""
    from oncohybrid.imaging import render

    layer = _layer(view, name)
    c, w = layer.window if centre is None or width is None else (float(centre), float(width))
    if not w > 0:
        raise InputError(f"window width must be positive, got {w}")
    rgb = render.grey_rgb(render.window_ct(_slice(layer, index), c, w))
    if overlay and view.overlay is not None:
        iodine = _slice(view.overlay, index)
        idx = render.scale_pet(iodine, *IODINE_RANGE)
        rgb = render.fuse(rgb, render.apply_lut(idx, render.colormap_lut("hot")), idx, 0.6)
    return _png(rgb)


def frame_png(view: SeriesView, frame: int) -> bytes:
    """PNG of one ultrasound cine frame as stored (grey levels)."""
    cine = view.cine
    if cine is None:
        raise InputError("this series is not an ultrasound cine")
    if not 0 <= frame < cine.grey.shape[0]:
        raise InputError(f"frame {frame} outside 0..{cine.grey.shape[0] - 1}")
    grey = np.clip(cine.grey[frame] / max(cine.max_grey, 1.0) * 255.0, 0, 255).astype(np.uint8)
    return _png(np.repeat(grey[..., None], 3, axis=2))


def _point(layer: Layer, fx: float, fy: float) -> tuple[float, float]:
    """Continuous (row, column) of a fractional position in the slice image."""
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise InputError(f"position must be fractions within [0, 1], got ({fx}, {fy})")
    n_j, n_i = layer.array.shape[1:]
    return fy * n_j - 0.5, fx * n_i - 0.5


def probe(view: SeriesView, name: str, index: int, fx: float, fy: float) -> dict[str, Any]:
    """Every layer's value at a point of the axial slice (nearest voxel) and its LPS mm."""
    layer = _layer(view, name)
    _slice(layer, index)
    r, c = _point(layer, fx, fy)
    j = min(max(int(round(r)), 0), layer.array.shape[1] - 1)
    i = min(max(int(round(c)), 0), layer.array.shape[2] - 1)
    lps = layer.affine @ np.array([index, j, i, 1.0])
    values = {n: round(float(lay.array[index, j, i]), 3) for n, lay in view.layers.items()
              if lay.array.shape == layer.array.shape}
    if view.overlay is not None:
        values["iodine"] = round(float(view.overlay.array[index, j, i]), 3)
    return {"voxel": [index, j, i], "lps_mm": [round(float(v), 2) for v in lps[:3]],
            "values": values}


def roi_stats(view: SeriesView, name: str, index: int, fx: float, fy: float,
              radius_mm: float) -> dict[str, Any]:
    """Disc ROI on an axial slice: voxels whose centres lie within ``radius_mm`` in-plane.

    Returns ``{"n_voxels", "centre_lps_mm", "radius_mm", "means": {layer: mean}, "adc":
    {adc_mean_um2_s, adc_median_um2_s, adc_sd_um2_s, p10, p90, n_fitted} | None}`` (ADC over
    the fitted voxels only, as ``oncohybrid dwi adc``)."""
    from oncohybrid.quant.adc import adc_histogram

    if not radius_mm > 0:
        raise InputError(f"ROI radius must be positive, got {radius_mm}")
    layer = _layer(view, name)
    _slice(layer, index)
    r, c = _point(layer, fx, fy)
    sp = np.linalg.norm(layer.affine[:3, :3], axis=0)
    n_j, n_i = layer.array.shape[1:]
    jj, ii = np.meshgrid(np.arange(n_j), np.arange(n_i), indexing="ij")
    disc2d = ((jj - r) * sp[1]) ** 2 + ((ii - c) * sp[2]) ** 2 <= radius_mm ** 2
    if not disc2d.any():
        raise InputError(f"ROI of radius {radius_mm:g} mm holds no voxel")
    mask = np.zeros(layer.array.shape, bool)
    mask[index] = disc2d
    centre = layer.affine @ np.array([index, r, c, 1.0])
    out: dict[str, Any] = {
        "n_voxels": int(disc2d.sum()), "radius_mm": radius_mm, "slice": index,
        "centre_lps_mm": [round(float(v), 2) for v in centre[:3]],
        "means": {n: round(float(lay.array[mask].mean()), 3) for n, lay in view.layers.items()
                  if lay.array.shape == layer.array.shape},
        "adc": None,
    }
    if view.overlay is not None:
        out["means"]["iodine"] = round(float(view.overlay.array[mask].mean()), 3)
    if view.adc_mm2_s is not None and view.adc_mm2_s.shape == mask.shape:
        fitted = mask & np.isfinite(view.adc_mm2_s)
        if fitted.any():
            h = adc_histogram(view.adc_mm2_s, fitted)
            out["adc"] = {"adc_mean_um2_s": round(h.mean_um2_s, 1),
                          "adc_median_um2_s": round(h.median_um2_s, 1),
                          "adc_sd_um2_s": round(h.sd_um2_s, 1),
                          "adc_p10_um2_s": round(h.percentiles_um2_s[10], 1),
                          "adc_p90_um2_s": round(h.percentiles_um2_s[90], 1),
                          "n_voxels": int(fitted.sum())}
    return out


def tic_of_roi(view: SeriesView, x: int, y: int, width: int, height: int, *,
               model: str = "lognormal", dynamic_range_db: float = 60.0) -> dict[str, Any]:
    """Time-intensity curve and bolus fit of a rectangle of the cine
    (:func:`oncohybrid.services.ceus.tic`), with the fitted curve at the frame times."""
    from oncohybrid.quant.ceus import Roi
    from oncohybrid.services.ceus import tic

    if view.cine is None:
        raise InputError("this series is not an ultrasound cine")
    res = tic(view.cine.path, Roi(x, y, width, height), dynamic_range_db=dynamic_range_db,
              model=model)
    doc = res.as_dict(with_curve=True)
    t = np.asarray(res.times_s, dtype=np.float64)
    doc["curve"]["fitted"] = [round(float(v), 6) for v in res.fit.curve(t)]  # type: ignore[index]
    return doc


def has_layers(settings: Settings, study_uid: str) -> bool:
    """Whether a study holds something only this viewer shows: MR or ultrasound series, or
    a DECT iodine map."""
    rows = _rows(settings, study_uid)
    if {m for _uid, m, _d in rows} & {"MR", "US"}:
        return True
    for uid, modality, _d in rows:
        if modality not in ("CT", "PT", "MR", "US", "SEG", "SR"):
            files = series_files(uid, settings)
            if files and _is_iodine_map(files):
                return True
    return False


def shows(settings: Settings, study_uid: str) -> bool:
    """Whether the study opens in this viewer rather than the PET/CT viewer: it has no PET
    series and holds MR, ultrasound or a DECT iodine map (a PET/MR or PET/CT study stays in
    the PET/CT viewer, which links here)."""
    rows = _rows(settings, study_uid)
    if any(m == "PT" for _uid, m, _d in rows):
        return False
    return has_layers(settings, study_uid) or not any(m == "CT" for _uid, m, _d in rows)


# ---------------------------------------------------------------------------------------
# Measurements kept for the report: a reader saves an ROI (ADC, iodine, signal) or a TIC
# fit; the numbers are recomputed here from the images, never taken from the browser.
# ---------------------------------------------------------------------------------------

#: Folder below the derived store: one JSON list of saved measurements per study.
MEASUREMENTS_DIR = "advanced-measurements"
_save_lock = threading.Lock()


def _measurements_path(settings: Settings, study_uid: str) -> Path:
    import re

    if not re.fullmatch(r"[0-9.]{1,64}", study_uid):
        raise InputError(f"not a Study Instance UID: {study_uid!r}")
    return Path(settings.derived_dir) / MEASUREMENTS_DIR / f"{study_uid}.json"


def study_measurements(settings: Settings, study_uid: str) -> list[dict[str, Any]]:
    """The measurements saved on a study, oldest first."""
    import json

    path = _measurements_path(settings, study_uid)
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")))


def save_measurement(settings: Settings, study_uid: str, series_uid: str,
                     body: dict[str, Any], actor: str) -> dict[str, Any]:
    """Recompute and keep one measurement for the report.

    ``body``: ``{"kind": "roi", "layer", "index", "fx", "fy", "radius_mm"}`` (disc ROI on
    MR/CT: ADC statistics, layer means, iodine) or ``{"kind": "tic", "x", "y", "w", "h",
    "model"}`` (CEUS bolus fit). Returns the stored entry.
    """
    import datetime as dt
    import json
    import os

    view = study_layers(settings, study_uid).get(series_uid)
    kind = body.get("kind")
    try:
        if kind == "roi":
            layer = str(body["layer"])
            res = roi_stats(view, layer, int(body["index"]), float(body["fx"]),
                            float(body["fy"]), float(body["radius_mm"]))
            values: dict[str, Any] = {"n_voxels": res["n_voxels"],
                                      "radius_mm": round(float(body["radius_mm"]), 2),
                                      "slice": res["slice"], "centre_lps_mm": res["centre_lps_mm"],
                                      "means": res["means"], "adc": res["adc"]}
            label = _layer(view, layer).label
        elif kind == "tic":
            model = str(body.get("model") or "lognormal")
            res = tic_of_roi(view, int(body["x"]), int(body["y"]), int(body["w"]),
                             int(body["h"]), model=model)
            values = {"model": res["model"], "r2": res["r2"], "parameters": res["parameters"],
                      "roi": res["roi"]}
            label = "CEUS time-intensity curve"
        else:
            raise InputError(f"measurement kind {kind!r}: expected roi or tic")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"measurement: missing or invalid field ({exc})") from None
    entry = {"kind": kind, "series_kind": view.kind, "series_uid": series_uid, "label": label,
             "values": values, "reader": actor,
             "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    path = _measurements_path(settings, study_uid)
    with _save_lock:
        items = study_measurements(settings, study_uid)
        items.append(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(items, indent=1), encoding="utf-8")
        os.replace(partial, path)
    return entry


def _summary(entry: dict[str, Any]) -> str:
    """One line of numbers of a saved measurement, as the report prints it."""
    v = entry["values"]
    if entry["kind"] == "tic":
        p = v["parameters"]
        bits = [f"{v['model']} fit, R² {v['r2']:.3f}"]
        for key, name, unit in (("peak_enhancement", "PE", ""), ("time_to_peak_s", "TTP", " s"),
                                ("rise_time_s", "RT", " s"), ("mean_transit_time_s", "mTT", " s"),
                                ("wash_in_rate_per_s", "WiR", "/s"),
                                ("wash_in_perfusion_index", "WiPI", "")):
            if p.get(key) is not None:
                bits.append(f"{name} {p[key]:.3g}{unit}")
        return "; ".join(bits)
    bits = [f"disc r {v['radius_mm']:g} mm, {v['n_voxels']} voxels"]
    if v.get("adc"):
        a = v["adc"]
        bits.append(f"ADC mean {a['adc_mean_um2_s']:.0f}, median {a['adc_median_um2_s']:.0f} "
                    f"µm²/s (10–90 %: {a['adc_p10_um2_s']:.0f}–{a['adc_p90_um2_s']:.0f})")
    if "iodine" in v["means"]:
        bits.append(f"iodine {v['means']['iodine']:.2f} mg/mL")
    if entry["series_kind"] in ("ct", "dect") and "image" in v["means"]:
        bits.append(f"CT {v['means']['image']:.0f} HU")
    return "; ".join(bits)


def report_rows(settings: Settings, patient_pk: int) -> list[dict[str, Any]]:
    """The saved measurements of a patient's studies for the PDF report, by study date:
    ``[{"date": datetime.date | None, "what": str, "values": str}]`` (no identifiers)."""
    with session_scope(settings) as s:
        studies = s.execute(sa.select(Study.study_instance_uid, Study.study_date)
                            .where(Study.patient_pk == patient_pk)
                            .order_by(Study.study_date)).all()
    kinds = {"dwi": "MR diffusion", "mr": "MR", "dect": "DECT", "ct": "CT", "ceus": "CEUS"}
    rows = []
    for uid, date in studies:
        for entry in study_measurements(settings, uid):
            what = f"{kinds.get(entry['series_kind'], entry['series_kind'])}: {entry['label']}"
            rows.append({"date": date, "what": what, "values": _summary(entry)})
    return rows
