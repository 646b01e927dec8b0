"""Nuclear-medicine use-cases (issue #20): SPECT activity/SUV of one series, and MIRD
dosimetry of a radionuclide-therapy cycle from the SPECT-CT time points in the workspace.

**Cycle.** The patient's NM reconstructions (RECON TOMO) are grouped by administration:
same radionuclide and (0018,1078) *Radiopharmaceutical Start DateTime* (to the minute).
Cycles are numbered 1, 2, … in administration order; the time of a point is its
acquisition start minus the administration (hours).

**Geometry.** Every time point is brought onto the first time point's SPECT grid: its CT
(same (0020,0052) *Frame of Reference UID* as its SPECT) is registered rigidly to the
first CT (:func:`oncohybrid.imaging.register.register_ct`) and its Bq/ml volume resampled
with that transform (linear). A point that shares the first point's frame of reference is
used as it is.

**VOIs.** The segments of a DICOM SEG (``--seg`` or the patient's stored SEG on the
frame of reference of one of the cycle's time points; segment label = VOI name). Each
SPECT voxel is sampled at 2×2×2 points; it belongs to a VOI when at least half of its
points fall in the segment, and its density is the mean of
:func:`oncohybrid.nm.dose.density_g_ml` over the CT at those points. VOI mass = Σ ρ·V.

**Dose.** VOI activities per time point → :func:`oncohybrid.nm.kinetics.fit_tac` (model
recorded) → TIA → local deposition (default) or voxel-S (the voxel TIA map — voxel-wise
trapezoid with physical tail, rescaled in each VOI to the VOI's fitted TIA — convolved
with :func:`oncohybrid.nm.dose.voxel_s_kernel`; VOI dose = mass-weighted mean). DVHs from
the dose map of the chosen method. Kidney VOIs (name containing "kidney") get a BED with
α/β 2.6 Gy and repair half-time 2.8 h. Results are stored per run; cumulative values sum
the latest run of every cycle up to this one with the same method.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from oncohybrid.config import Settings, get_settings
from oncohybrid.dicom.nm import NmSeries, read_nm, read_nm_dataset
from oncohybrid.errors import InputError, OncohybridError
from oncohybrid.nm.activity import SpectActivity, series_isotope, spect_activity
from oncohybrid.nm.dose import (
    DECAYS_PER_MBQ_H,
    KIDNEY_ALPHA_BETA_GY,
    KIDNEY_REPAIR_HALF_TIME_H,
    bed_gy,
    density_g_ml,
    dvh,
    g_factor,
    local_dose_gy,
    voxel_s_dose_map,
    voxel_s_kernel,
)
from oncohybrid.nm.isotopes import J_PER_MEV, Isotope
from oncohybrid.nm.kinetics import MODELS, TacFit, fit_tac
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Instance, Patient, Series, Study
from oncohybrid.store.models_nm import NmCalibration, NmDosimetryRun, NmDosimetryVoi

__all__ = ["METHODS", "dosimetry", "list_cycles", "patient_runs", "set_calibration",
           "spect_series", "sphere_mask"]

METHODS = ("local", "voxel-s")
_SUB = 2  # sub-samples per axis of a SPECT voxel for VOI membership and density


# ------------------------------------------------------------------ one series
def sphere_mask(shape: Sequence[int], affine: np.ndarray, centre_lps_mm: Sequence[float],
                radius_mm: float) -> np.ndarray:
    """Voxels whose centres lie within ``radius_mm`` of ``centre_lps_mm``."""
    idx = np.indices(tuple(shape)).reshape(3, -1).astype(np.float64)
    lps = affine[:3, :3] @ idx + affine[:3, 3:4]
    d2 = ((lps - np.asarray(centre_lps_mm, float)[:, None]) ** 2).sum(0)
    return (d2 <= radius_mm**2).reshape(tuple(shape))


def _finite(v: float | None, digits: int = 6) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def spect_series(source: str | Path, *, sensitivity_cps_mbq: float | None = None,
                 duration_s: float | None = None, isotope: str | None = None,
                 weight_kg: float | None = None, roi_centre_lps_mm: Sequence[float] | None = None,
                 roi_radius_mm: float | None = None) -> dict[str, Any]:
    """Activity concentration and SUV of one NM reconstruction (``oncohybrid spect``).

    Returns ``{"series_uid", "patient_id", "isotope", "pixel_units", "activity_source",
    "sensitivity_cps_mbq", "acquisition_duration_s", "reference_time",
    "total_activity_mbq", "max_bq_ml", "suv_max", "suv_unavailable", "energy_windows",
    "rotations", "provenance", "roi"}``.
    """
    if (roi_centre_lps_mm is None) != (roi_radius_mm is None):
        raise InputError("--roi-centre and --roi-radius-mm go together")
    if roi_radius_mm is not None and not roi_radius_mm > 0:
        raise InputError(f"--roi-radius-mm must be positive, got {roi_radius_mm}")
    nm = read_nm(source)
    act = spect_activity(nm, sensitivity_cps_mbq=sensitivity_cps_mbq,
                         acquisition_duration_s=duration_s, isotope=isotope,
                         weight_kg=weight_kg)
    arr = act.bq_ml.array
    v_ml = nm.voxel_ml
    roi = None
    if roi_centre_lps_mm is not None and roi_radius_mm is not None:
        m = sphere_mask(arr.shape, act.bq_ml.affine, roi_centre_lps_mm, roi_radius_mm)
        if not m.any():
            raise InputError(f"ROI centre {list(roi_centre_lps_mm)} mm, radius "
                             f"{roi_radius_mm:g} mm holds no voxel of the SPECT")
        vals = arr[m]
        roi = {"n_voxels": int(m.sum()), "volume_ml": _finite(m.sum() * v_ml),
               "mean_bq_ml": _finite(float(vals.mean())), "max_bq_ml": _finite(float(vals.max())),
               "activity_mbq": _finite(float(vals.sum()) * v_ml / 1e6),
               "suv_mean": _finite(float(vals.mean()) * act.suv_factor)
               if act.suv_factor else None,
               "suv_max": _finite(float(vals.max()) * act.suv_factor)
               if act.suv_factor else None}
    doc = {"series_uid": nm.series_uid, "patient_id": nm.patient_id,
           "pixel_units": nm.pixel_units, **act.to_json(),
           "total_activity_mbq": _finite(float(arr.sum()) * v_ml / 1e6),
           "max_bq_ml": _finite(float(arr.max())),
           "suv_max": _finite(float(arr.max()) * act.suv_factor) if act.suv_factor else None,
           "injected_mbq": nm.injected_mbq,
           "administration": nm.administration.isoformat() if nm.administration else None,
           "energy_windows": [w.to_json() for w in nm.energy_windows],
           "rotations": list(nm.rotations),
           "voxel_spacing_mm": [float(s) for s in nm.volume.spacing], "roi": roi}
    return doc


# ------------------------------------------------------------------ the workspace
@dataclass
class _Stored:
    series_uid: str
    study_uid: str
    modality: str
    frame_of_reference_uid: str | None
    files: list[Path]


def _patient(s: Any, patient_id: str) -> Patient:
    rows = s.scalars(sa.select(Patient).where(Patient.patient_id == patient_id)).all()
    if not rows:
        raise InputError(f"patient {patient_id!r}: not in the workspace (ingest its SPECT-CT "
                         "studies first: oncohybrid ingest DIR)")
    if len(rows) > 1:
        raise InputError(f"patient {patient_id!r}: {len(rows)} patients with this ID "
                         "(different issuers)")
    return rows[0]


def _stored_series(settings: Settings, patient_id: str) -> tuple[int, list[_Stored]]:
    with session_scope(settings) as s:
        p = _patient(s, patient_id)
        rows = s.execute(
            sa.select(Series.id, Series.series_instance_uid, Study.study_instance_uid,
                      Series.modality, Series.frame_of_reference_uid)
            .join(Study, Series.study_pk == Study.id)
            .where(Study.patient_pk == p.id, Series.modality.in_(("NM", "CT", "SEG")))
            .order_by(Study.study_date, Series.id)).all()
        out = []
        for pk, uid, study_uid, modality, for_uid in rows:
            files = s.scalars(sa.select(Instance.file_path).where(Instance.series_pk == pk)
                              .order_by(Instance.instance_number, Instance.id)).all()
            out.append(_Stored(uid, study_uid, modality, for_uid, [Path(f) for f in files]))
        return p.id, out


@dataclass
class _Point:
    nm: NmSeries
    stored: _Stored
    time_h: float


def _nm_reconstructions(stored: list[_Stored]) -> tuple[list[tuple[NmSeries, _Stored]], list[str]]:
    import pydicom

    out, notes = [], []
    for st in stored:
        if st.modality != "NM":
            continue
        for f in st.files:
            try:
                head = pydicom.dcmread(f, stop_before_pixels=True)
            except Exception as exc:  # unreadable file: say so, go on
                notes.append(f"{f}: unreadable ({exc})")
                continue
            types = [str(v).upper() for v in (head.get("ImageType") or [])]
            if len(types) < 3 or types[2] not in ("RECON TOMO", "RECON GATED TOMO"):
                continue
            out.append((read_nm_dataset(pydicom.dcmread(f), label=str(f)), st))
    return out, notes


def _cycles(recons: list[tuple[NmSeries, _Stored]], isotope: str | None
            ) -> tuple[list[tuple[tuple[str, dt.datetime], list[tuple[NmSeries, _Stored]]]],
                       list[str]]:
    groups: dict[tuple[str, dt.datetime], list[tuple[NmSeries, _Stored]]] = {}
    notes = []
    for nm, st in recons:
        if nm.administration is None:
            notes.append(f"series {nm.series_uid}: no (0018,1078) administration time; "
                         "not placed in a cycle")
            continue
        iso = series_isotope(nm, isotope)
        key = (iso.symbol, nm.administration.replace(second=0, microsecond=0))
        groups.setdefault(key, []).append((nm, st))
    ordered = sorted(groups.items(), key=lambda kv: kv[0][1])
    return ordered, notes


def list_cycles(patient_id: str, *, settings: Settings | None = None,
                isotope: str | None = None) -> list[dict[str, Any]]:
    """The patient's therapy cycles: number, isotope, administration, injected MBq and
    time points (hours, series UID, pixel units)."""
    settings = settings or get_settings()
    _, stored = _stored_series(settings, patient_id)
    recons, _ = _nm_reconstructions(stored)
    cycles, _ = _cycles(recons, isotope)
    out = []
    for n, ((symbol, admin), items) in enumerate(cycles, start=1):
        pts = [(((nm.acquisition_start - nm.administration).total_seconds() / 3600.0
                 if nm.acquisition_start and nm.administration else float("nan")), nm)
               for nm, _ in items]
        pts.sort(key=lambda tn: (tn[0], tn[1].series_uid))
        out.append({"cycle": n, "isotope": symbol, "administration": admin.isoformat(),
                     "injected_mbq": items[0][0].injected_mbq,
                     "timepoints": [{"time_h": round(t, 3), "series_uid": nm.series_uid,
                                     "pixel_units": nm.pixel_units} for t, nm in pts]})
    return out


def _calibration(settings: Settings, nm: NmSeries, isotope: Isotope) -> float | None:
    with session_scope(settings) as s:
        rows = s.scalars(sa.select(NmCalibration)
                         .where(NmCalibration.station == nm.station,
                                NmCalibration.isotope == isotope.symbol)
                         .order_by(NmCalibration.measured_on.desc(),
                                   NmCalibration.id.desc())).all()
        when = nm.acquisition_start.date() if nm.acquisition_start else None
        for r in rows:
            if when is None or r.measured_on is None or r.measured_on <= when:
                return float(r.sensitivity_cps_mbq)
    return None


def set_calibration(station: str, isotope: str, sensitivity_cps_mbq: float, *,
                    measured_on: dt.date | None = None, model: str | None = None,
                    serial: str | None = None, note: str | None = None, actor: str = "cli",
                    settings: Settings | None = None) -> dict[str, Any]:
    """Record a camera's tomographic sensitivity (cps/MBq) for an isotope."""
    from oncohybrid.nm.isotopes import find_isotope
    from oncohybrid.services import audit

    settings = settings or get_settings()
    iso = find_isotope(isotope)
    if not (math.isfinite(sensitivity_cps_mbq) and sensitivity_cps_mbq > 0):
        raise InputError(f"sensitivity must be a positive number of cps/MBq, got "
                         f"{sensitivity_cps_mbq}")
    if not station.strip():
        raise InputError("station: the (0008,1010) Station Name of the camera is required")
    with session_scope(settings) as s:
        row = NmCalibration(station=station.strip()[:64], model=model, serial=serial,
                            isotope=iso.symbol, sensitivity_cps_mbq=float(sensitivity_cps_mbq),
                            measured_on=measured_on, note=note, created_by=actor[:64])
        s.add(row)
        s.flush()
        pk = row.id
    audit.record(settings, actor, "nm.calibration", f"nm-calibration:{pk}",
                 {"station": station, "isotope": iso.symbol,
                  "sensitivity_cps_mbq": sensitivity_cps_mbq})
    return {"id": pk, "station": station, "isotope": iso.symbol,
            "sensitivity_cps_mbq": sensitivity_cps_mbq,
            "measured_on": measured_on.isoformat() if measured_on else None}


# ------------------------------------------------------------------ geometry helpers
def _sub_offsets(sub: int) -> list[np.ndarray]:
    f = (np.arange(sub) + 0.5) / sub - 0.5
    return [np.array([a, b, c]) for a in f for b in f for c in f]


def _voxel_points(affine: np.ndarray, shape: tuple[int, int, int], offset: np.ndarray
                  ) -> np.ndarray:
    idx = np.indices(shape).reshape(3, -1).astype(np.float64) + offset[:, None]
    return (affine[:3, :3] @ idx + affine[:3, 3:4]).T  # (N, 3) LPS


def _indices(vol_affine: np.ndarray, shape: Sequence[int], pts: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest voxel indices of LPS points in a grid, and which fall inside it."""
    inv = np.linalg.inv(vol_affine)
    ijk = np.rint((inv[:3, :3] @ pts.T + inv[:3, 3:4]).T).astype(np.int64)
    ok = np.all((ijk >= 0) & (ijk < np.asarray(shape[:3])), axis=1)
    return ijk, ok


def _lookup(vol_affine: np.ndarray, array: np.ndarray, pts: np.ndarray, default: float,
            cache: dict[tuple[bytes, tuple[int, ...]], tuple[np.ndarray, np.ndarray]] | None
            = None) -> np.ndarray:
    """Nearest-neighbour values of ``array`` at LPS points (``default`` outside); the
    index computation is shared through ``cache`` by grids of the same geometry."""
    key = (np.asarray(vol_affine, float).tobytes(), tuple(array.shape[:3]))
    if cache is not None and key in cache:
        ijk, ok = cache[key]
    else:
        ijk, ok = _indices(vol_affine, array.shape, pts)
        if cache is not None:
            cache[key] = (ijk, ok)
    out = np.full(pts.shape[0], default, dtype=np.float64)
    out[ok] = array[ijk[ok, 0], ijk[ok, 1], ijk[ok, 2]]
    return out


def _map_points(matrix: np.ndarray | None, pts: np.ndarray) -> np.ndarray:
    """Baseline LPS → the space of ``matrix`` (follow-up → baseline), inverted."""
    if matrix is None:
        return pts
    inv = np.linalg.inv(matrix)
    return (inv[:3, :3] @ pts.T + inv[:3, 3:4]).T


# ------------------------------------------------------------------ dosimetry
def _read_vois(path: Path) -> tuple[str | None, dict[str, Any]]:
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
        for_uid = str(seg.get("FrameOfReferenceUID", "") or "") or None
        out = {}
        for item in seg.SegmentSequence:
            number = int(item.SegmentNumber)
            vol = seg.get_volume(segment_numbers=[number], combine_segments=True,
                                 skip_overlap_checks=True)
            if vol is None:
                continue
            out[str(item.SegmentLabel)] = vol
    except OncohybridError:
        raise
    except Exception as exc:  # highdicom/pydicom raise several types
        raise InputError(f"{path}: the VOI SEG cannot be read: {exc}") from exc
    if not out:
        raise InputError(f"{path}: the VOI SEG has no segment")
    return for_uid, out


def _tia_map(stack: np.ndarray, times_h: np.ndarray, lam_phys: float) -> np.ndarray:
    """Voxel-wise trapezoid from A(0) = 0 plus the physical tail (MBq·h per voxel)."""
    xs = np.concatenate([[0.0], times_h])
    vs = np.concatenate([np.zeros((1, *stack.shape[1:])), stack], axis=0)
    area = np.sum((vs[1:] + vs[:-1]) * np.diff(xs)[:, None, None, None] / 2.0, axis=0)
    return area + stack[-1] / lam_phys


def _round(v: float | None, digits: int = 6) -> float | None:
    return _finite(v, digits)


def dosimetry(patient_id: str, cycle: int, *, method: str = "local", fit: str = "auto",
              sensitivity_cps_mbq: float | None = None, seg_path: str | Path | None = None,
              spheres: dict[str, Sequence[float]] | None = None,
              isotope: str | None = None, hanscheid_time_h: float | None = None,
              trapezoid_start: str = "zero", store: bool = True, actor: str = "cli",
              settings: Settings | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """MIRD dosimetry of ``cycle`` of ``patient_id`` (module docstring).

    Returns ``{"patient_id", "cycle", "method", "isotope", "administration",
    "injected_mbq", "timepoints": […], "vois": [{"name", "mass_g", "volume_ml",
    "tia_mbq_h", "dose_gy", "dose_gy_per_gbq", "activities_mbq", "fit": {"model",
    "parameters", "r2", "choice"}, "bed_gy", "cumulative_dose_gy", "cumulative_bed_gy",
    "dvh"}], "constants", "notes"}``.

    VOIs: the segments of ``seg_path`` or of the patient's stored SEG, plus ``spheres``
    drawn on the first time point ({name: (x, y, z, radius)} in LPS mm).

    Raises :class:`InputError` (exit 2) for an unknown patient or cycle, a counts series
    without sensitivity, fewer than two time points for a fit, no VOIs.

    Example:
        >>> doc = dosimetry("NM-PHANTOM-1", 1, method="local")  # doctest: +SKIP
        >>> [(v["name"], v["dose_gy"]) for v in doc["vois"]]  # doctest: +SKIP
    """
    from oncohybrid.dicom.volume import load_series
    from oncohybrid.imaging.register import register_ct, resample_to_baseline

    settings = settings or get_settings()
    say = progress or (lambda _m: None)
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if fit not in MODELS:
        raise InputError(f"--fit must be one of {', '.join(MODELS)}, got {fit!r}")
    if cycle < 1:
        raise InputError(f"--cycle must be 1 or more, got {cycle}")
    patient_pk, stored = _stored_series(settings, patient_id)
    recons, notes = _nm_reconstructions(stored)
    if not recons:
        raise InputError(f"patient {patient_id!r}: no NM reconstruction (RECON TOMO) stored")
    cycles, more = _cycles(recons, isotope)
    notes += more
    if cycle > len(cycles):
        raise InputError(f"patient {patient_id!r}: no cycle {cycle}; the workspace holds "
                         f"{len(cycles)} cycle(s) "
                         f"({', '.join(a.isoformat() for (_, a), _ in cycles) or 'none'})")
    (symbol, admin), items = cycles[cycle - 1]
    iso = series_isotope(items[0][0], isotope or symbol)
    # one reconstruction per acquisition: prefer Bq/ml over counts
    by_time: dict[str, tuple[NmSeries, _Stored]] = {}
    for nm, st in items:
        key = nm.acquisition_start.isoformat() if nm.acquisition_start else nm.series_uid
        have = by_time.get(key)
        if have is None or (have[0].pixel_units != "BQML" and nm.pixel_units == "BQML"):
            if have is not None:
                notes.append(f"series {have[0].series_uid} not used: the Bq/ml reconstruction "
                             f"{nm.series_uid} of the same acquisition is")
            by_time[key] = (nm, st)
    points = []
    for nm, st in by_time.values():
        if nm.acquisition_start is None:
            raise InputError(f"series {nm.series_uid}: no acquisition date/time; its time "
                             "after administration is unknown")
        t_h = (nm.acquisition_start - nm.administration).total_seconds() / 3600.0
        if t_h <= 0:
            raise InputError(f"series {nm.series_uid}: acquired {t_h:.2f} h after the "
                             "administration (not after it)")
        points.append(_Point(nm, st, t_h))
    points.sort(key=lambda p: p.time_h)
    n_needed = 1 if fit == "hanscheid" else 2
    if len(points) < n_needed:
        raise InputError(
            f"patient {patient_id!r} cycle {cycle}: {len(points)} SPECT time point(s); a "
            f"time-activity fit needs at least 2 time points (use --fit hanscheid for the "
            f"single-time-point method)")
    if fit == "bi-exp" and len(points) < 3:
        raise InputError(f"patient {patient_id!r} cycle {cycle}: {len(points)} SPECT time "
                         "points; a bi-exponential fit needs at least 3 time points")
    if fit == "bi-exp-clearance" and len(points) < 4:
        raise InputError(f"patient {patient_id!r} cycle {cycle}: {len(points)} SPECT time "
                         "points; a two-phase clearance fit needs at least 4 time points")
    # activity of every point
    acts: list[SpectActivity] = []
    for p in points:
        sens = sensitivity_cps_mbq
        if p.nm.pixel_units != "BQML" and sens is None:
            sens = _calibration(settings, p.nm, iso)
            if sens is not None:
                notes.append(f"series {p.nm.series_uid}: sensitivity {sens:g} cps/MBq from the "
                             f"calibration of station {p.nm.station!r}")
        acts.append(spect_activity(p.nm, sensitivity_cps_mbq=sens, isotope=iso.symbol))
    # CTs and registration
    cts = {st.frame_of_reference_uid: st for st in stored
           if st.modality == "CT" and st.frame_of_reference_uid}
    base = points[0]
    base_for = base.nm.volume.frame_of_reference_uid
    base_ct_st = cts.get(base_for)
    base_ct = load_series(base_ct_st.files) if base_ct_st else None
    grid = acts[0].bq_ml
    shape = tuple(int(v) for v in grid.array.shape)
    v_ml = float(np.prod(grid.spacing)) / 1000.0
    stack = [acts[0].bq_ml.array * v_ml / 1e6]  # MBq per voxel
    matrices: dict[str, np.ndarray | None] = {str(base_for): None}
    tp_docs = [{"time_h": _round(base.time_h), "series_uid": base.nm.series_uid,
                "study_uid": base.stored.study_uid, "activity_source": acts[0].source,
                "registration": None}]
    for p, act in zip(points[1:], acts[1:], strict=True):
        p_for = p.nm.volume.frame_of_reference_uid
        reg = None
        if p_for and p_for == base_for:
            vol = act.bq_ml if act.bq_ml.array.shape == grid.array.shape and np.allclose(
                act.bq_ml.affine, grid.affine) else resample_to_baseline(
                None, act.bq_ml, grid, interpolator="linear")
            reg_doc: dict[str, Any] | None = {"method": "same frame of reference"}
        else:
            ct_st = cts.get(p_for)
            if ct_st is None or base_ct is None:
                # nothing to register with: scanner coordinates taken as they are, said so
                vol = resample_to_baseline(None, act.bq_ml, grid, interpolator="linear")
                matrices[str(p_for)] = None
                notes.append(f"time point {p.time_h:g} h NOT registered: no CT on its frame "
                             "of reference or on the first one; scanner coordinates assumed "
                             "aligned (check the patient's position)")
                stack.append(np.asarray(vol.array, dtype=np.float64) * v_ml / 1e6)
                tp_docs.append({"time_h": _round(p.time_h), "series_uid": p.nm.series_uid,
                                "study_uid": p.stored.study_uid,
                                "activity_source": act.source,
                                "registration": {"method": "none (no CT): scanner "
                                                           "coordinates"}})
                continue
            say(f"register {p.time_h:.1f} h CT to the first CT")
            reg = register_ct(base_ct, load_series(ct_st.files), stages=("rigid",))
            vol = resample_to_baseline(reg, act.bq_ml, grid, interpolator="linear")
            matrices[str(p_for)] = reg.matrix_lps
            reg_doc = {"method": "rigid CT-CT (Mattes MI)",
                       "translation_mm": [round(float(v), 2) for v in reg.translation_mm],
                       "rotation_deg": round(reg.rotation_deg, 3)}
        stack.append(np.asarray(vol.array, dtype=np.float64) * v_ml / 1e6)
        tp_docs.append({"time_h": _round(p.time_h), "series_uid": p.nm.series_uid,
                        "study_uid": p.stored.study_uid, "activity_source": act.source,
                        "registration": reg_doc})
    activity = np.stack(stack)  # (T, z, y, x) MBq per voxel
    times = np.array([p.time_h for p in points])
    # VOIs
    spheres = dict(spheres or {})
    for name, sph in spheres.items():
        if len(sph) != 4 or not all(math.isfinite(v) for v in sph) or not sph[3] > 0:
            raise InputError(f"--sphere {name}: expected X,Y,Z,R (LPS mm, R > 0), got {sph}")
    seg_for: str | None = None
    vois: dict[str, Any] = {}
    seg_sources: list[str] = []
    if seg_path is not None:
        sp = Path(seg_path)
        if not sp.is_file():
            raise InputError(f"--seg {sp}: no such file")
        seg_for, vois = _read_vois(sp)
        seg_sources.append(str(sp))
    else:
        # the cycle's own SEG first, else the latest one on a frame with a CT (registered)
        segs = [st for st in stored if st.modality == "SEG" and st.files]
        own = [st for st in segs if st.frame_of_reference_uid in matrices]
        # only SEGs drawn on another SPECT-CT (not, e.g., PET-CT lesion masks)
        spect_frames = {nm.volume.frame_of_reference_uid for nm, _ in recons}
        other = [st for st in segs if st.frame_of_reference_uid in cts
                 and st.frame_of_reference_uid in spect_frames]
        if not own and not other and not spheres:
            raise InputError(
                f"patient {patient_id!r} cycle {cycle}: no VOIs — no stored DICOM SEG on the "
                "frame of reference of a SPECT-CT; ingest one (organs and tumours, segment "
                "label = VOI name), give --seg FILE or draw spheres with --sphere")
        if own or other:
            seg_st = (own or other)[-1]
            seg_for, vois = _read_vois(seg_st.files[0])
            seg_sources.append(f"SEG series {seg_st.series_uid}")
    if seg_for is not None and seg_for not in matrices:
        ct_st = cts.get(seg_for)
        if ct_st is None or base_ct is None:
            matrices[seg_for] = None
            notes.append(f"VOIs from {seg_sources[0]} on frame of reference {seg_for}, not one "
                         "of the cycle's, and no CT to register: scanner coordinates assumed "
                         "aligned")
        else:
            say("register the VOIs' CT to the first CT")
            reg = register_ct(base_ct, load_series(ct_st.files), stages=("rigid",))
            matrices[seg_for] = reg.matrix_lps
            notes.append(f"VOIs from {seg_sources[0]} on another study, registered rigidly to "
                         f"the cycle's first CT (shift "
                         f"{np.round(reg.translation_mm, 1).tolist()} mm)")
    clash = sorted(set(spheres) & set(vois))
    if clash:
        raise InputError(f"--sphere {', '.join(clash)}: the SEG already has a VOI of this name")
    if spheres:
        seg_sources.append(f"{len(spheres)} drawn sphere(s) on the first time point")
    seg_source = " + ".join(seg_sources)
    seg_matrix = matrices.get(str(seg_for)) if seg_for else None
    fractions = {name: np.zeros(int(np.prod(shape))) for name in [*vois, *spheres]}
    rho_sum = np.zeros(int(np.prod(shape)))
    ct_arr = np.asarray(base_ct.array, dtype=np.float64) if base_ct is not None else None
    offsets = _sub_offsets(_SUB)
    for off in offsets:
        pts = _voxel_points(grid.affine, shape, off)
        if ct_arr is not None:
            rho_sum += density_g_ml(_lookup(base_ct.affine, ct_arr, pts, -1000.0))
        seg_pts = _map_points(seg_matrix, pts)
        cache: dict[tuple[bytes, tuple[int, ...]], tuple[np.ndarray, np.ndarray]] = {}
        for name, vol in vois.items():
            fractions[name] += _lookup(vol.affine, np.asarray(vol.array), seg_pts, 0.0,
                                       cache) > 0
        for name, (x, y, z, r) in spheres.items():
            fractions[name] += ((pts - np.array([x, y, z])) ** 2).sum(axis=1) <= r * r
    density = (rho_sum / len(offsets)).reshape(shape) if ct_arr is not None \
        else np.ones(shape)
    if ct_arr is None:
        notes.append("no CT for the first time point: unit density (1 g/ml) assumed")
    masks = {name: (f / len(offsets) >= 0.5).reshape(shape) for name, f in fractions.items()}
    empty = [n for n, m in masks.items() if not m.any()]
    for n in empty:
        notes.append(f"VOI {n!r}: no SPECT voxel (smaller than half a voxel); skipped")
        masks.pop(n)
    if not masks:
        raise InputError(f"{seg_source}: no VOI covers a SPECT voxel")
    # fits
    fits: dict[str, TacFit] = {}
    acts_voi: dict[str, list[float]] = {}
    for name, m in masks.items():
        a = [float(activity[k][m].sum()) for k in range(len(points))]
        if min(a) < 0:  # reconstruction undershoot in a cold VOI: no negative activity
            notes.append(f"VOI {name!r}: negative summed activity {min(a):.3g} MBq set to 0")
            a = [max(v, 0.0) for v in a]
        acts_voi[name] = a
        try:
            fits[name] = fit_tac(times, a, physical_half_life_h=iso.half_life_h, model=fit,
                                 trapezoid_start=trapezoid_start,
                                 hanscheid_time_h=hanscheid_time_h)
        except InputError as exc:
            raise InputError(f"VOI {name!r}: {exc}") from None
    voxel_mass_g = density * v_ml  # g
    lam_phys = iso.decay_constant_per_h
    tia_map = _tia_map(activity, times, lam_phys)
    for name, m in masks.items():
        s = float(tia_map[m].sum())
        if s > 0:
            tia_map[m] *= fits[name].tia_mbq_h / s
    kernel = None
    if method == "voxel-s":
        say("voxel S-value kernel")
        kernel = voxel_s_kernel(iso, tuple(float(s) for s in grid.spacing))
        dose_map = voxel_s_dose_map(tia_map, density, kernel)
    else:
        e_j = tia_map * DECAYS_PER_MBQ_H * iso.electron_mev * J_PER_MEV
        dose_map = e_j / (np.maximum(voxel_mass_g, 1e-6) * 1e-3)
    # earlier cycles
    earlier = _latest_runs(settings, patient_pk, method, exclude_cycle=cycle, up_to=cycle)
    voi_docs = []
    for name, m in masks.items():
        f = fits[name]
        mass = float(voxel_mass_g[m].sum())
        if not mass > 0:
            notes.append(f"VOI {name!r}: mass 0 g (outside the first CT or in air); skipped")
            continue
        if method == "local":
            dose = local_dose_gy(f.tia_mbq_h, mass, iso)
        else:
            dose = float((dose_map[m] * voxel_mass_g[m]).sum() / voxel_mass_g[m].sum())
        bed = None
        if "kidney" in name.lower():
            g = g_factor(f, KIDNEY_REPAIR_HALF_TIME_H)
            bed = bed_gy(dose, g, KIDNEY_ALPHA_BETA_GY)
        cum_dose = dose + sum(r.get(name, {}).get("dose_gy", 0.0) for r in earlier.values())
        cum_bed = None
        if bed is not None:
            cum_bed = bed + sum(r.get(name, {}).get("bed_gy") or 0.0 for r in earlier.values())
        h = dvh(dose_map, m, voxel_mass_g)
        inj = items[0][0].injected_mbq
        voi_docs.append({
            "name": name, "mass_g": _round(mass), "volume_ml": _round(float(m.sum()) * v_ml),
            "tia_mbq_h": _round(f.tia_mbq_h), "dose_gy": _round(dose),
            "dose_gy_per_gbq": _round(dose / (inj / 1000.0)) if inj else None,
            "activities_mbq": [_round(v) for v in acts_voi[name]],
            "fit": f.to_json(), "bed_gy": _round(bed),
            "cumulative_dose_gy": _round(cum_dose), "cumulative_bed_gy": _round(cum_bed),
            "cycles_in_cumulative": sorted([*earlier, cycle]), "dvh": h.to_json(41)})
    if not voi_docs:
        raise InputError(f"{seg_source}: every VOI has zero mass on the first CT")
    constants = {
        "isotope": iso.to_json(), "method": method,
        "local_deposition": "electron (non-penetrating) energy per decay absorbed in the "
                            "VOI; photons escape (MIRD Pamphlet 21)",
        "density": "ρ = 1 + HU/1000 g/ml (≤ 100 HU), 1.1 + 0.00058·(HU − 100) above",
        "kidney_bed": {"alpha_beta_gy": KIDNEY_ALPHA_BETA_GY,
                       "repair_half_time_h": KIDNEY_REPAIR_HALF_TIME_H,
                       "source": "Wessels et al., J Nucl Med 2008;49:1884; BED Dale 1985"},
        "voi_source": seg_source, "fit_request": fit,
        "voxel_tia": "voxel-wise trapezoid + physical tail, rescaled per VOI to its fit",
    }
    if kernel is not None:
        constants["voxel_s_kernel"] = {
            "description": kernel.description,
            "s_self_mgy_per_mbq_s": round(kernel.s_self_mgy_per_mbq_s, 6)}
    doc = {"patient_id": patient_id, "cycle": cycle, "method": method,
           "isotope": iso.symbol, "administration": admin.isoformat(),
           "injected_mbq": items[0][0].injected_mbq,
           "radiopharmaceutical": items[0][0].radiopharmaceutical,
           "timepoints": tp_docs, "vois": voi_docs, "constants": constants,
           "activity_provenance": [list(a.provenance) for a in acts], "notes": notes}
    if store:
        _store_run(settings, patient_pk, doc, fit, actor, admin)
    return doc


def _latest_runs(settings: Settings, patient_pk: int, method: str, *, exclude_cycle: int,
                 up_to: int) -> dict[int, dict[str, dict[str, float | None]]]:
    """{cycle: {voi name: {"dose_gy", "bed_gy"}}} of the latest stored run per earlier cycle."""
    out: dict[int, dict[str, dict[str, float | None]]] = {}
    with session_scope(settings) as s:
        runs = s.scalars(sa.select(NmDosimetryRun)
                         .where(NmDosimetryRun.patient_pk == patient_pk,
                                NmDosimetryRun.method == method,
                                NmDosimetryRun.cycle != exclude_cycle,
                                NmDosimetryRun.cycle <= up_to)
                         .order_by(NmDosimetryRun.created_at.desc(),
                                   NmDosimetryRun.id.desc())).all()
        for r in runs:
            if r.cycle in out:
                continue
            out[r.cycle] = {v.name: {"dose_gy": v.dose_gy, "bed_gy": v.bed_gy} for v in r.vois}
    return out


def _store_run(settings: Settings, patient_pk: int, doc: dict[str, Any], fit: str, actor: str,
               admin: dt.datetime) -> None:
    from oncohybrid.services import audit

    with session_scope(settings) as s:
        run = NmDosimetryRun(patient_pk=patient_pk, cycle=doc["cycle"], method=doc["method"],
                             fit_request=fit, isotope=doc["isotope"], administration=admin,
                             injected_mbq=doc["injected_mbq"], created_by=actor[:64],
                             result_json=json.dumps(doc))
        for v in doc["vois"]:
            run.vois.append(NmDosimetryVoi(name=v["name"][:64], mass_g=v["mass_g"],
                                           tia_mbq_h=v["tia_mbq_h"], dose_gy=v["dose_gy"],
                                           bed_gy=v["bed_gy"], fit=v["fit"], dvh=v["dvh"]))
        s.add(run)
        s.flush()
        pk = run.id
    audit.record(settings, actor, "nm.dosimetry", f"nm-dosimetry:{pk}",
                 {"cycle": doc["cycle"], "method": doc["method"], "vois": len(doc["vois"])})


def patient_runs(settings: Settings, patient_pk: int) -> list[dict[str, Any]]:
    """Stored dosimetry runs of a patient (latest first) with their JSON documents."""
    with session_scope(settings) as s:
        runs = s.scalars(sa.select(NmDosimetryRun)
                         .where(NmDosimetryRun.patient_pk == patient_pk)
                         .order_by(NmDosimetryRun.cycle, NmDosimetryRun.created_at.desc(),
                                   NmDosimetryRun.id.desc())).all()
        return [{"id": r.id, "cycle": r.cycle, "method": r.method, "isotope": r.isotope,
                 "created_at": r.created_at.isoformat() if r.created_at else None,
                 "created_by": r.created_by, "doc": json.loads(r.result_json)} for r in runs]


def run_by_id(settings: Settings, run_id: int) -> dict[str, Any] | None:
    """One stored dosimetry run (with its JSON document) or None."""
    with session_scope(settings) as s:
        r = s.get(NmDosimetryRun, run_id)
        if r is None:
            return None
        return {"id": r.id, "patient_pk": r.patient_pk, "cycle": r.cycle, "method": r.method,
                "isotope": r.isotope, "created_by": r.created_by,
                "created_at": r.created_at.isoformat() if r.created_at else None,
                "doc": json.loads(r.result_json)}


def nm_patients(settings: Settings) -> list[dict[str, Any]]:
    """Patients with stored NM series: pk, Patient ID, number of NM series and of
    dosimetry runs (for the reading room's dosimetry list)."""
    with session_scope(settings) as s:
        rows = s.execute(
            sa.select(Patient.id, Patient.patient_id, sa.func.count(sa.distinct(Series.id)))
            .join(Study, Study.patient_pk == Patient.id)
            .join(Series, Series.study_pk == Study.id)
            .where(Series.modality == "NM")
            .group_by(Patient.id, Patient.patient_id).order_by(Patient.patient_id)).all()
        runs = dict(s.execute(sa.select(NmDosimetryRun.patient_pk, sa.func.count())
                              .group_by(NmDosimetryRun.patient_pk)).all())
    return [{"pk": pk, "patient_id": pid, "nm_series": n, "runs": int(runs.get(pk, 0))}
            for pk, pid, n in rows]


def tracer_lesion_table(settings: Settings, patient_id: str, *, scan_date: str | None = None,
                        blood_pool_suv_mean: float | None = None,
                        liver_suv_mean: float | None = None,
                        parotid_suv_mean: float | None = None,
                        spleen_suv_mean: float | None = None,
                        liver_suv_max: float | None = None,
                        spleen_suv_max: float | None = None) -> dict[str, Any]:
    """The record's lesions at one PET date with the tracer-specific score: the PROMISE V2
    miPSMA expression score for PSMA ligands (:func:`oncohybrid.nm.psma.expression_score`)
    or the Krenning grade for SSTR ligands (:func:`oncohybrid.response.krenning.grade_from_suv`,
    SUVmax against liver and spleen SUVmax). References not given leave the score empty
    with the reason."""
    from decimal import Decimal

    from pydicom import Dataset

    from oncohybrid.dicom.tracer import PSMA, SSTR, identify_tracer
    from oncohybrid.nm.psma import expression_score
    from oncohybrid.response.krenning import grade_from_suv
    from oncohybrid.services.record import patient_record

    try:
        rec = patient_record(patient_id, settings)
    except OncohybridError:
        return {"date": None, "tracer": None, "family": None, "rows": [], "reason":
                "no longitudinal record for this patient (run the assessment first)"}
    dates = [t["date"] for t in rec["timepoints"]]
    if not dates:
        return {"date": None, "tracer": None, "family": None, "rows": [],
                "reason": "no PET time point in the record"}
    date = scan_date if scan_date in dates else dates[-1]
    tracer = None
    with session_scope(settings) as s:
        tracer = s.scalar(sa.select(Series.radiopharmaceutical)
                          .join(Study, Series.study_pk == Study.id)
                          .join(Patient, Study.patient_pk == Patient.id)
                          .where(Patient.patient_id == patient_id, Series.modality == "PT",
                                 Study.study_date == dt.date.fromisoformat(date))
                          .limit(1))
    ds = Dataset()
    ds.Modality = "PT"
    item = Dataset()
    item.Radiopharmaceutical = tracer or ""
    ds.RadiopharmaceuticalInformationSequence = [item]
    family = identify_tracer(ds).family if tracer else "unknown"
    reason = None
    rows = []
    for les in rec["lesions"]:
        obs = [o for o in les["observations"] if o["date"] == date and o["in_use"]]
        if not obs:
            continue
        suv = obs[-1].get("suv_max")
        score = None
        why = None
        if suv is None:
            why = "no SUVmax"
        elif family == PSMA:
            if None in (blood_pool_suv_mean, parotid_suv_mean) or (
                    liver_suv_mean is None and spleen_suv_mean is None):
                why = "blood pool, liver (spleen for PSMA-1007) and parotid SUVmean needed"
            else:
                try:
                    score = expression_score(float(suv), blood_pool_suv_mean=blood_pool_suv_mean,
                                             liver_suv_mean=liver_suv_mean,
                                             parotid_suv_mean=parotid_suv_mean,
                                             spleen_suv_mean=spleen_suv_mean,
                                             tracer=tracer or "")
                except InputError as exc:
                    why = str(exc)
        elif family == SSTR:
            if liver_suv_max is None:
                why = "liver SUVmax needed (spleen SUVmax for grade 4)"
            else:
                score = grade_from_suv(Decimal(str(suv)), Decimal(str(liver_suv_max)),
                                       None if spleen_suv_max is None
                                       else Decimal(str(spleen_suv_max)))
        else:
            why = f"tracer family {family}: no PSMA or SSTR score"
        rows.append({"key": les["key"], "site": les["site"], "suv_max": suv, "score": score,
                     "reason": why})
    if family not in (PSMA, SSTR):
        reason = f"the PET of {date} is {tracer or 'of unknown tracer'} ({family})"
    return {"date": date, "dates": dates, "tracer": tracer, "family": family,
            "score_name": ("miPSMA expression score (PROMISE V2)" if family == PSMA
                           else "Krenning score" if family == SSTR else None),
            "rows": rows, "reason": reason}


#: Kidney BED limits for PRRT (Bodei et al., Eur J Nucl Med Mol Imaging 2008;35:1847):
#: 40 Gy without and 28 Gy with risk factors (hypertension, diabetes, …).
KIDNEY_BED_LIMITS_GY = (28.0, 40.0)


def kidney_notes(settings: Settings, patient_pk: int) -> list[str]:
    """Patient-page sentences on the cumulative kidney BED of the stored dosimetry (latest
    run of each cycle, local deposition preferred), against the limits of Bodei 2008."""
    latest: dict[int, dict[str, Any]] = {}
    for r in patient_runs(settings, patient_pk):
        have = latest.get(r["cycle"])
        if have is None or (have["method"] != "local" and r["method"] == "local"):
            latest[r["cycle"]] = r
    if not latest:
        return []
    sums: dict[str, float] = {}
    for r in latest.values():
        for v in r["doc"]["vois"]:
            if v.get("bed_gy") is not None:
                sums[v["name"]] = sums.get(v["name"], 0.0) + float(v["bed_gy"])
    cycles = ", ".join(str(c) for c in sorted(latest))
    out = []
    for name, bed in sorted(sums.items()):
        if bed > KIDNEY_BED_LIMITS_GY[1]:
            level = f"above {KIDNEY_BED_LIMITS_GY[1]:g} Gy (renal limit, Bodei 2008)"
        elif bed > KIDNEY_BED_LIMITS_GY[0]:
            level = (f"above {KIDNEY_BED_LIMITS_GY[0]:g} Gy (renal limit with risk factors, "
                     "Bodei 2008)")
        else:
            level = f"below {KIDNEY_BED_LIMITS_GY[0]:g} Gy"
        out.append(f"Dosimetry: {name} cumulative BED {bed:.1f} Gy over cycle(s) {cycles}: "
                   f"{level}.")
    return out
