"""Scanner QC and harmonisation use-cases (issue #20): IEC phantom and cylinder analysis of
a PET series on disk, the equipment registry built from the stored instances, QC results
per scanner and date, and the harmonisation flags of a patient's studies.

Flag rule ("a scanner out of tolerance flags its studies of that period"): a study
acquired on day D on scanner S is *not harmonised* when

- a QC result of S failed in the ISO week (Monday–Sunday) of D, or
- for any QC kind (iec, calibration, daily), the latest result of S on or before D
  failed (the scanner was out of tolerance and no passing QC of that kind has followed).

A PET series' reconstruction is compared with the scanner's EARL-compliant protocol: the
reconstruction attributes (:data:`oncohybrid.qc.registry.RECON_ATTRIBUTES`) of the
phantom series whose IEC analysis passed EARL2 (or EARL1), recorded with ``--record``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import sqlalchemy as sa
from pydicom.dataset import Dataset

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, OncohybridError
from oncohybrid.qc.registry import (
    ScannerIdentity,
    compare_recon,
    recon_attributes,
    scanner_identity,
)

__all__ = [
    "F18_HALF_LIFE_S",
    "analyse_calibration_dir",
    "analyse_iec_dir",
    "list_results",
    "list_scanners",
    "patient_notes",
    "patient_status",
    "record_daily",
    "refresh_registry",
    "report_notes",
    "study_status",
    "trend_plot",
]

#: F-18 half-life 109.77 min (NNDC / DDEP).
F18_HALF_LIFE_S: float = 109.77 * 60.0
#: Philips (7053,xx09) Activity Concentration Scale Factor (CNTS → Bq/ml).
_PHILIPS_CREATOR = "Philips PET Private Group"


# ---------------------------------------------------------------------------------------
# Reading a phantom series
# ---------------------------------------------------------------------------------------


@dataclass
class _PhantomSeries:
    image: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    first: Dataset
    reference_time: dt.datetime | None
    reference_source: str
    half_life_s: float
    notes: list[str] = field(default_factory=list)


def _read_headers(pet_dir: Path) -> list[Dataset]:
    if not pet_dir.exists():
        raise InputError(f"{pet_dir}: no such directory")
    if not pet_dir.is_dir():
        raise InputError(f"{pet_dir}: not a directory (give the folder of one PET series)")
    out = []
    for p in sorted(pet_dir.rglob("*")):
        if not p.is_file():
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM: skipped, counted below
            continue
        if "SOPInstanceUID" in ds:
            ds.filename = str(p)  # type: ignore[attr-defined]
            out.append(ds)
    if not out:
        raise InputError(f"{pet_dir}: no DICOM files")
    return out


def _parse_da_tm(da: Any, tm: Any) -> dt.datetime | None:
    if not da or not tm:
        return None
    try:
        t = str(tm).strip().split(".")[0].ljust(6, "0")
        return dt.datetime.strptime(str(da).strip() + t[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None


def _load_pet(pet_dir: str | Path) -> _PhantomSeries:
    from oncohybrid.dicom.volume import load_series

    pet_dir = Path(pet_dir)
    headers = _read_headers(pet_dir)
    first = headers[0]
    modality = str(first.get("Modality", "")).strip()
    if modality != "PT":
        raise InputError(f"{pet_dir}: (0008,0060) Modality is {modality or 'missing'!r}, not "
                         "PT: the IEC/cylinder analysis needs a PET series")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in headers}
    if len(series) > 1:
        raise InputError(f"{pet_dir}: {len(series)} series in the folder; give one PET series")
    units = str(first.get("Units", "")).strip().upper()
    notes: list[str] = []
    try:
        vol = load_series([ds.filename for ds in headers])  # type: ignore[attr-defined]
    except OncohybridError as exc:
        raise InputError(f"{pet_dir}: the PET series cannot form a volume: {exc}") from exc
    image = np.asarray(vol.array, dtype=np.float64)
    if units == "BQML":
        pass
    elif units == "CNTS":
        block = None
        try:
            block = first.private_block(0x7053, _PHILIPS_CREATOR)
        except KeyError:
            block = None
        if block is None or 0x09 not in block:
            raise InputError(f"{pet_dir}: (0054,1001) Units CNTS without the Philips (7053,xx09) "
                             "Activity Concentration Scale Factor: no Bq/ml")
        image = image * float(block[0x09].value)
        notes.append("CNTS scaled to Bq/ml by the Philips (7053,xx09) factor")
    else:
        raise InputError(f"{pet_dir}: (0054,1001) Units {units or 'missing'!r}: the phantom "
                         "analysis needs activity concentration (BQML)")
    dc = str(first.get("DecayCorrection", "")).strip().upper()
    half = F18_HALF_LIFE_S
    rp = (first.get("RadiopharmaceuticalInformationSequence") or [None])[0]
    if rp is not None and rp.get("RadionuclideHalfLife") not in (None, ""):
        try:
            hl = float(rp.RadionuclideHalfLife)
            if math.isfinite(hl) and hl > 0:
                half = hl
        except (TypeError, ValueError):
            pass
    ref: dt.datetime | None = None
    source = ""
    try:
        from oncohybrid.dicom.suv import compute_suv

        scaling = compute_suv(headers)
        if scaling.reference_time is not None:
            ref = scaling.reference_time.replace(tzinfo=None)
            source = f"decay-correction reference ({scaling.reference_time_source})"
    except OncohybridError:
        ref = None
    if ref is None and dc in ("START", ""):
        ref = _parse_da_tm(first.get("SeriesDate"), first.get("SeriesTime"))
        source = "(0008,0021)/(0008,0031) Series Date/Time (Decay Correction START)"
    if ref is None and dc == "ADMIN" and rp is not None:
        ref = _parse_da_tm(first.get("SeriesDate"), rp.get("RadiopharmaceuticalStartTime"))
        source = "administration time (Decay Correction ADMIN)"
    sp = tuple(float(s) for s in vol.spacing)
    return _PhantomSeries(image=image, spacing=sp, affine=np.asarray(vol.affine),  # type: ignore[arg-type]
                          first=first, reference_time=ref, reference_source=source,
                          half_life_s=half, notes=notes)


def _parse_at(at: str | dt.datetime | None) -> dt.datetime | None:
    if at is None or isinstance(at, dt.datetime):
        return at
    try:
        value = dt.datetime.fromisoformat(at.strip())
    except ValueError:
        raise InputError(f"--at {at!r}: not an ISO 8601 date-time (e.g. 2026-11-02T08:00:00)") \
            from None
    return value


def _decay_to_reference(activity: float, at: dt.datetime | None, ref: dt.datetime | None,
                        half_life_s: float) -> tuple[float, float]:
    """Activity at the image reference time from the activity at ``at`` (F-18 decay);
    returns (activity at reference, seconds from reference to ``at``)."""
    if at is None or ref is None:
        return activity, 0.0
    if at.tzinfo is not None:
        at = at.replace(tzinfo=None)  # DICOM times here are local and naive
    dt_s = (at - ref).total_seconds()
    if abs(dt_s) > 48 * 3600:
        raise InputError(f"--at {at.isoformat()} is {dt_s / 3600:.1f} h from the image's "
                         f"reference time {ref.isoformat()}: check the date")
    return activity * 2.0 ** (dt_s / half_life_s), dt_s


def _suv_peak(image: np.ndarray, mask: np.ndarray, affine: np.ndarray) -> float:
    """RCpeak's numerator: quant's SUVpeak (1 cm³ sphere, exact partial-volume weights,
    centre anywhere in the sphere VOI: IBSI global / PERCIST placement)."""
    from oncohybrid.quant.pet import PeakMode, suv_peak

    return float(suv_peak(image, mask, affine=affine, mode=PeakMode.GLOBAL).value)


def analyse_iec_dir(pet_dir: str | Path, *, sphere_bq_ml: float, background_bq_ml: float,
                    at: str | dt.datetime | None = None, settings: Settings | None = None,
                    record: bool = False, actor: str = "cli",
                    plot: str | Path | None = None) -> dict[str, Any]:
    """The ``oncohybrid qc iec`` JSON of one IEC phantom PET series (see qc/iec.py).

    ``sphere_bq_ml``/``background_bq_ml`` are the true concentrations at ``at`` (ISO
    time; default the series' decay-correction reference time), decay-corrected (F-18)
    to the reference time of the image. With ``record`` the result is stored for the
    scanner named in the headers, and an EARL-compliant reconstruction becomes the
    scanner's EARL protocol.
    """
    from oncohybrid.qc.iec import analyse_iec

    for name, v in (("--sphere-activity-bq-ml", sphere_bq_ml),
                    ("--background-activity-bq-ml", background_bq_ml)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive number of Bq/ml, got {v}")
    at_dt = _parse_at(at)
    pet = _load_pet(pet_dir)
    a_ref, dt_s = _decay_to_reference(sphere_bq_ml, at_dt, pet.reference_time, pet.half_life_s)
    b_ref, _ = _decay_to_reference(background_bq_ml, at_dt, pet.reference_time,
                                   pet.half_life_s)
    result = analyse_iec(pet.image, pet.spacing, pet.affine, sphere_bq_ml=a_ref,
                         background_bq_ml=b_ref, peak=_suv_peak)
    out = result.to_json()
    out["reference_time"] = pet.reference_time.isoformat() if pet.reference_time else None
    out["reference_time_source"] = pet.reference_source
    out["activities_at"] = at_dt.isoformat() if at_dt else out["reference_time"]
    out["decay_correction_s"] = dt_s
    out["half_life_s"] = pet.half_life_s
    ident = scanner_identity(pet.first)
    out["scanner"] = {"key": ident.key, "label": ident.label}
    out["reconstruction"] = recon_attributes(pet.first)
    if pet.notes:
        out["notes"] = pet.notes
    if plot is not None:
        from oncohybrid.qc.plots import recovery_curves_png

        Path(plot).write_bytes(recovery_curves_png(out["spheres"], title=ident.label))
        out["plot"] = str(plot)
    if record:
        summary = "" if result.earl1 or result.earl2 else _earl_summary(out)
        day = (pet.reference_time or dt.datetime.now()).date()
        passed = bool(result.earl1 or result.earl2)
        values = {k: out[k] for k in ("spheres", "earl1", "earl2", "background_cv",
                                      "lung_residual_pct", "measured_background_bq_ml")}
        protocols = {}
        if result.earl2:
            protocols["earl2"] = out["reconstruction"]
        if result.earl1:
            protocols["earl1"] = out["reconstruction"]
        out["result_id"] = _record(settings, pet.first, kind="iec", day=day, passed=passed,
                                   summary=summary, values=values,
                                   tolerances={"standard": "EARL1 or EARL2 bands"},
                                   source=str(pet_dir), actor=actor, protocols=protocols)
    return out


def _earl_summary(out: dict[str, Any]) -> str:
    parts = []
    for std in ("earl1", "earl2"):
        fails = out["earl_detail"][std]["failures"]
        txt = ", ".join(f"{f['metric']} {f['diameter_mm']:g} mm {f['value']:.2f} "
                        f"(band {f['band'][0]:.2f}–{f['band'][1]:.2f})" for f in fails[:3])
        more = f" and {len(fails) - 3} more" if len(fails) > 3 else ""
        parts.append(f"{std.upper()}: {txt}{more}")
    return "IEC phantom outside the EARL bands — " + "; ".join(parts)


def analyse_calibration_dir(pet_dir: str | Path, *, activity_bq_ml: float,
                            at: str | dt.datetime | None = None, tolerance: float = 0.10,
                            settings: Settings | None = None, record: bool = False,
                            actor: str = "cli") -> dict[str, Any]:
    """Cross-calibration of a uniform-cylinder PET series against the dose calibrator
    (``activity_bq_ml`` at ``at``, decay-corrected to the image reference time)."""
    from oncohybrid.qc.calibration import analyse_cylinder

    if not (math.isfinite(activity_bq_ml) and activity_bq_ml > 0):
        raise InputError(f"--activity-bq-ml must be a positive number, got {activity_bq_ml}")
    at_dt = _parse_at(at)
    pet = _load_pet(pet_dir)
    a_ref, dt_s = _decay_to_reference(activity_bq_ml, at_dt, pet.reference_time,
                                      pet.half_life_s)
    res = analyse_cylinder(pet.image, pet.spacing, expected_bq_ml=a_ref, tolerance=tolerance)
    out = res.to_json()
    out["reference_time"] = pet.reference_time.isoformat() if pet.reference_time else None
    out["decay_correction_s"] = dt_s
    ident = scanner_identity(pet.first)
    out["scanner"] = {"key": ident.key, "label": ident.label}
    if record:
        day = (pet.reference_time or dt.datetime.now()).date()
        summary = "" if res.passed else (
            f"cross-calibration {out['deviation_pct']:+.1f} % vs the dose calibrator "
            f"(tolerance ±{tolerance * 100:g} %)")
        values = {k: out[k] for k in ("expected_bq_ml", "measured_bq_ml", "ratio",
                                      "voxel_cov", "max_slice_deviation_pct")}
        out["result_id"] = _record(settings, pet.first, kind="calibration", day=day,
                                   passed=res.passed, summary=summary, values=values,
                                   tolerances={"ratio": [1 - tolerance, 1 + tolerance]},
                                   source=str(pet_dir), actor=actor)
    return out


# ---------------------------------------------------------------------------------------
# Registry and results (database)
# ---------------------------------------------------------------------------------------


def _upsert_scanner(s: Any, ident: ScannerIdentity, modality: str | None,
                    day: dt.date | None) -> Any:
    from oncohybrid.store.models_qc import QCScanner

    sc = s.scalar(sa.select(QCScanner).where(QCScanner.key == ident.key))
    if sc is None:
        sc = QCScanner(key=ident.key, manufacturer=ident.manufacturer, model=ident.model,
                       serial_number=ident.serial_number, station_name=ident.station_name,
                       earl_protocols={}, first_seen=day, last_seen=day, modalities="")
        s.add(sc)
        s.flush()
    if ident.software_versions:
        sc.software_versions = ident.software_versions[:255]
    if ident.station_name:
        sc.station_name = ident.station_name[:64]
    if ident.ae_title:
        sc.ae_title = ident.ae_title[:16]
    if modality:
        mods = set(filter(None, (sc.modalities or "").split(",")))
        mods.add(modality)
        sc.modalities = ",".join(sorted(mods))[:64]
    if day is not None:
        sc.first_seen = min(filter(None, [sc.first_seen, day]))
        sc.last_seen = max(filter(None, [sc.last_seen, day]))
    return sc


def _record(settings: Settings | None, first: Dataset, *, kind: str, day: dt.date,
            passed: bool, summary: str, values: dict[str, Any], tolerances: dict[str, Any],
            source: str | None, actor: str, protocols: dict[str, Any] | None = None) -> int:
    from oncohybrid.services import audit
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_qc import QCResult

    settings = settings or get_settings()
    ident = scanner_identity(first)
    with session_scope(settings) as s:
        sc = _upsert_scanner(s, ident, str(first.get("Modality", "")).strip() or None, None)
        if protocols:
            sc.earl_protocols = {**(sc.earl_protocols or {}), **protocols}
        res = QCResult(scanner_pk=sc.id, kind=kind, performed_on=day, passed=passed,
                       summary=summary, values=_finite(values), tolerances=tolerances,
                       source=source, recorded_by=actor[:64])
        s.add(res)
        s.flush()
        rid, skey = res.id, sc.key
    audit.record(settings, actor, f"qc.{kind}", f"scanner:{skey}",
                 {"result": rid, "passed": passed, "date": day.isoformat()})
    return rid


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _scanner_by_key(s: Any, key: str) -> Any:
    from oncohybrid.store.models_qc import QCScanner

    sc = s.scalar(sa.select(QCScanner).where(QCScanner.key == key.upper()))
    if sc is None and key.isdigit():
        sc = s.get(QCScanner, int(key))
    if sc is None:
        known = ", ".join(s.scalars(sa.select(QCScanner.key)).all()) or "none yet"
        raise InputError(f"scanner {key!r} is not in the registry (known: {known}); run "
                         "`oncohybrid qc registry refresh` after ingesting its studies")
    return sc


def record_daily(scanner: str, day: dt.date | str, measures: Mapping[str, float],
                 tolerances: Mapping[str, tuple[float, float]] | None = None, *,
                 settings: Settings | None = None, actor: str = "cli") -> dict[str, Any]:
    """Log one day's QC measurements of ``scanner`` (registry key or id) and check them."""
    from oncohybrid.qc.daily import evaluate
    from oncohybrid.services import audit
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_qc import QCResult

    settings = settings or get_settings()
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise InputError(f"--date {day!r}: not an ISO date (YYYY-MM-DD)") from None
    checks = evaluate(measures, tolerances)
    passed = all(c.passed for c in checks)
    summary = "" if passed else "daily QC out of tolerance: " + "; ".join(
        c.sentence() for c in checks if not c.passed)
    with session_scope(settings) as s:
        sc = _scanner_by_key(s, scanner)
        res = QCResult(scanner_pk=sc.id, kind="daily", performed_on=day, passed=passed,
                       summary=summary, values={c.name: c.value for c in checks},
                       tolerances={c.name: [c.low, c.high] for c in checks},
                       source=None, recorded_by=actor[:64])
        s.add(res)
        s.flush()
        rid, key = res.id, sc.key
    audit.record(settings, actor, "qc.daily", f"scanner:{key}",
                 {"result": rid, "passed": passed, "date": day.isoformat()})
    return {"result_id": rid, "scanner": key, "date": day.isoformat(), "passed": passed,
            "checks": [{"name": c.name, "value": c.value, "tolerance": [c.low, c.high],
                        "passed": c.passed} for c in checks], "summary": summary}


def refresh_registry(settings: Settings | None = None, *, rebuild: bool = False,
                     actor: str = "cli") -> dict[str, Any]:
    """Link every stored series to its scanner, reading one stored instance's header per
    series (General Equipment module); series already linked are skipped unless
    ``rebuild``. Returns counts and the scanners."""
    from oncohybrid.services import audit
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance, Series
    from oncohybrid.store.models_qc import QCSeriesLink

    settings = settings or get_settings()
    linked = unreadable = 0
    with session_scope(settings) as s:
        if rebuild:
            s.execute(sa.delete(QCSeriesLink))
        done = set(s.scalars(sa.select(QCSeriesLink.series_pk)).all())
        rows = s.execute(sa.select(Series.id, Series.study_pk, Series.modality)
                         .order_by(Series.id)).all()
        for series_pk, study_pk, modality in rows:
            if series_pk in done:
                continue
            path = s.scalar(sa.select(Instance.file_path).where(Instance.series_pk == series_pk)
                            .order_by(Instance.instance_number, Instance.id).limit(1))
            if path is None:
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - a missing/corrupt file is counted, not fatal
                unreadable += 1
                continue
            day = None
            for da in (ds.get("AcquisitionDate"), ds.get("SeriesDate"), ds.get("StudyDate")):
                if da:
                    try:
                        day = dt.datetime.strptime(str(da).strip()[:8], "%Y%m%d").date()
                        break
                    except ValueError:
                        continue
            sc = _upsert_scanner(s, scanner_identity(ds), modality, day)
            s.add(QCSeriesLink(series_pk=series_pk, study_pk=study_pk, scanner_pk=sc.id,
                               modality=modality, acquired_on=day,
                               recon=recon_attributes(ds) if modality == "PT" else {}))
            linked += 1
        total = s.scalar(sa.select(sa.func.count()).select_from(QCSeriesLink)) or 0
    audit.record(settings, actor, "qc.registry.refresh", None,
                 {"linked": linked, "unreadable": unreadable})
    return {"linked": linked, "unreadable": unreadable, "series_linked_total": int(total),
            "scanners": list_scanners(settings)}


def list_scanners(settings: Settings | None = None) -> list[dict[str, Any]]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_qc import QCResult, QCScanner, QCSeriesLink

    with session_scope(settings) as s:
        out = []
        for sc in s.scalars(sa.select(QCScanner).order_by(QCScanner.id)).all():
            n_studies = s.scalar(sa.select(sa.func.count(sa.distinct(QCSeriesLink.study_pk)))
                                 .where(QCSeriesLink.scanner_pk == sc.id)) or 0
            last = s.scalar(sa.select(QCResult).where(QCResult.scanner_pk == sc.id)
                            .order_by(QCResult.performed_on.desc(), QCResult.id.desc())
                            .limit(1))
            out.append({
                "id": sc.id, "key": sc.key, "manufacturer": sc.manufacturer,
                "model": sc.model, "serial_number": sc.serial_number,
                "station_name": sc.station_name, "software_versions": sc.software_versions,
                "ae_title": sc.ae_title, "modalities": sc.modalities,
                "first_seen": sc.first_seen.isoformat() if sc.first_seen else None,
                "last_seen": sc.last_seen.isoformat() if sc.last_seen else None,
                "studies": int(n_studies),
                "earl_protocols": sc.earl_protocols or {},
                "last_qc": None if last is None else {
                    "kind": last.kind, "date": last.performed_on.isoformat(),
                    "passed": last.passed, "summary": last.summary},
            })
    return out


def list_results(scanner: str | None = None, settings: Settings | None = None, *,
                 kind: str | None = None) -> list[dict[str, Any]]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_qc import QCResult, QCScanner

    with session_scope(settings) as s:
        stmt = sa.select(QCResult, QCScanner.key).join(QCScanner,
                                                       QCResult.scanner_pk == QCScanner.id)
        if scanner:
            stmt = stmt.where(QCResult.scanner_pk == _scanner_by_key(s, scanner).id)
        if kind:
            stmt = stmt.where(QCResult.kind == kind)
        rows = s.execute(stmt.order_by(QCResult.performed_on, QCResult.id)).all()
        return [{"id": r.id, "scanner": key, "kind": r.kind,
                 "date": r.performed_on.isoformat(), "passed": r.passed,
                 "summary": r.summary, "values": r.values, "tolerances": r.tolerances,
                 "source": r.source} for r, key in rows]


def trend_plot(scanner: str, out: str | Path, settings: Settings | None = None) -> Path:
    """PNG of the scanner's daily-QC measures and calibration ratios over time, with
    their tolerance bands."""
    from oncohybrid.qc.plots import trend_png

    results = list_results(scanner, settings)
    series: dict[str, list[tuple[dt.date, float]]] = {}
    tols: dict[str, tuple[float, float]] = {}
    for r in results:
        day = dt.date.fromisoformat(r["date"])
        if r["kind"] == "daily":
            for name, v in r["values"].items():
                series.setdefault(name, []).append((day, float(v)))
                lo, hi = r["tolerances"].get(name, [None, None])
                if lo is not None:
                    tols[name] = (float(lo), float(hi))
        elif r["kind"] == "calibration" and r["values"].get("ratio") is not None:
            series.setdefault("calibration_ratio (cylinder)", []).append(
                (day, float(r["values"]["ratio"])))
            lo, hi = r["tolerances"].get("ratio", [0.9, 1.1])
            tols["calibration_ratio (cylinder)"] = (float(lo), float(hi))
    if not series:
        raise InputError(f"scanner {scanner!r}: no daily or calibration QC results to plot")
    path = Path(out)
    path.write_bytes(trend_png(series, tols, title=f"QC trend — {scanner}"))
    return path


# ---------------------------------------------------------------------------------------
# Harmonisation status of a patient's studies
# ---------------------------------------------------------------------------------------


def _failing(s: Any, scanner_pk: int, day: dt.date) -> list[Any]:
    """The failed QC results that make a study of ``day`` not harmonised (module doc)."""
    from oncohybrid.store.models_qc import QCResult

    monday = day - dt.timedelta(days=day.weekday())
    sunday = monday + dt.timedelta(days=6)
    week = s.scalars(sa.select(QCResult).where(
        QCResult.scanner_pk == scanner_pk, QCResult.passed.is_(False),
        QCResult.performed_on >= monday, QCResult.performed_on <= sunday)).all()
    found = {r.id: r for r in week}
    for kind in ("iec", "calibration", "daily"):
        last = s.scalar(sa.select(QCResult).where(
            QCResult.scanner_pk == scanner_pk, QCResult.kind == kind,
            QCResult.performed_on <= day)
            .order_by(QCResult.performed_on.desc(), QCResult.id.desc()).limit(1))
        if last is not None and not last.passed:
            found[last.id] = last
    return sorted(found.values(), key=lambda r: (r.performed_on, r.id))


_KIND_WORDS = {"iec": "IEC phantom (EARL)", "calibration": "cross-calibration",
               "daily": "daily"}


def study_status(patient_pk: int, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Per study of the patient (by date): its scanner(s), the failed QC that makes its
    SUV not harmonised, and whether each PET series' reconstruction matches the
    scanner's EARL-compliant protocol."""
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Series, Study
    from oncohybrid.store.models_qc import QCScanner, QCSeriesLink

    settings = settings or get_settings()
    out: list[dict[str, Any]] = []
    with session_scope(settings) as s:
        rows = s.execute(
            sa.select(QCSeriesLink, QCScanner, Study, Series)
            .join(QCScanner, QCSeriesLink.scanner_pk == QCScanner.id)
            .join(Study, QCSeriesLink.study_pk == Study.id)
            .join(Series, QCSeriesLink.series_pk == Series.id)
            .where(Study.patient_pk == patient_pk)
            .order_by(Study.study_date, Study.id, Series.id)).all()
        by_study: dict[int, dict[str, Any]] = {}
        for link, sc, st, se in rows:
            day = link.acquired_on or st.study_date
            entry = by_study.setdefault(st.id, {
                "study_pk": st.id, "study_uid": st.study_instance_uid,
                "description": st.study_description,
                "date": day.isoformat() if day else None, "scanners": [],
                "qc_failures": [], "harmonised": True, "pet": []})
            label = ScannerIdentity(sc.manufacturer, sc.model, sc.serial_number,
                                    sc.station_name, None, None).label
            if sc.key not in [x["key"] for x in entry["scanners"]]:
                entry["scanners"].append({"key": sc.key, "label": label})
                if day is not None:
                    for r in _failing(s, sc.id, day):
                        entry["qc_failures"].append({
                            "scanner": sc.key, "scanner_label": label, "kind": r.kind,
                            "date": r.performed_on.isoformat(), "summary": r.summary,
                            "same_week": r.performed_on.isocalendar()[:2]
                            == day.isocalendar()[:2]})
                        entry["harmonised"] = False
            if se.modality == "PT":
                protocols = sc.earl_protocols or {}
                pet: dict[str, Any] = {"series_uid": se.series_instance_uid,
                                       "scanner": sc.key, "earl_protocol": None,
                                       "matches": None, "differences": []}
                for std in ("earl2", "earl1"):
                    if std in protocols:
                        diffs = compare_recon(link.recon or {}, protocols[std])
                        pet["earl_protocol"] = std
                        pet["matches"] = not diffs
                        pet["differences"] = diffs
                        if not diffs:
                            break
                entry["pet"].append(pet)
        out = list(by_study.values())
    return out


def _notes(statuses: Sequence[dict[str, Any]], labels: Mapping[str, str] | None,
           with_dates: bool) -> list[str]:
    notes: list[str] = []
    for st in statuses:
        name = (labels or {}).get(st["study_uid"]) or (
            f"the study of {st['date']}" if with_dates and st["date"] else "a study")
        for f in st["qc_failures"]:
            if with_dates:
                when = f" on {f['date']}"
            elif f["same_week"]:
                when = " in the week of the scan"
            else:
                when = " before the scan, with no passing QC of that kind since"
            notes.append(f"SUV not harmonised: {name} was acquired on {f['scanner_label']}, "
                         f"whose {_KIND_WORDS.get(f['kind'], f['kind'])} QC failed{when}"
                         f"{' (' + f['summary'] + ')' if f['summary'] else ''}.")
        for pet in st["pet"]:
            if pet["earl_protocol"] is None:
                continue
            std = pet["earl_protocol"].upper()
            if pet["matches"]:
                notes.append(f"EARL: the PET reconstruction of {name} matches the scanner's "
                             f"{std}-compliant protocol.")
            else:
                notes.append(f"EARL: the PET reconstruction of {name} does not match the "
                             f"scanner's {std}-compliant protocol ("
                             f"{'; '.join(pet['differences'][:3])}); its SUVs are not "
                             f"{std}-harmonised.")
    return notes


def patient_notes(settings: Settings, patient_pk: int) -> list[str]:
    """Sentences for the reading room's patient page (web ``ctx.patient_notes``). Studies
    are named by their rank and description, without calendar dates: the page is also
    shown to researchers, who see pseudonymised data only."""
    try:
        statuses = study_status(patient_pk, settings)
    except sa.exc.OperationalError:  # database without the QC tables (not upgraded)
        return []
    n = len(statuses)
    labels = {st["study_uid"]: f"study {i + 1} of {n}"
              + (f" ({st['description']})" if st.get("description") else "")
              for i, st in enumerate(statuses)}
    return _notes(statuses, labels, with_dates=False)


def report_notes(settings: Settings, patient_pk: int,
                 labels: Mapping[str, str] | None = None) -> list[str]:
    """Sentences for the patient PDF report: studies named by their timepoint label
    (``{study_uid: "TP1"}``) and without calendar dates, so a pseudonymised report stays
    free of them."""
    try:
        return _notes(study_status(patient_pk, settings), labels, with_dates=False)
    except sa.exc.OperationalError:
        return []


def patient_status(patient_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """``oncohybrid qc status PATIENT_ID``: the studies' harmonisation and the notes."""
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient

    settings = settings or get_settings()
    with session_scope(settings) as s:
        pks = s.scalars(sa.select(Patient.id).where(Patient.patient_id == patient_id)).all()
    if not pks:
        raise InputError(f"patient {patient_id!r} is not in the database")
    studies = [st for pk in pks for st in study_status(pk, settings)]
    return {"patient_id": patient_id, "studies": studies,
            "notes": _notes(studies, None, with_dates=True)}
