"""Use-case: read and write the longitudinal oncology record (docs/record.md).

Rules kept here, for every writer (the assess pipeline, the web app, scripts):

- Automatic values never overwrite manual ones. An automatic re-run replaces the
  previous *automatic* observation of a lesion at a timepoint; a manual observation
  (:func:`add_manual_observation`) is a new row that supersedes the automatic one, takes
  ``in_use`` and keeps it across re-runs. Both rows stay in the database.
- Roles decided manually (``source="manual"``) are never replaced by proposals.
- Lineage (:func:`add_lineage`) records splits and merges between lesion identities.
- Deleting a study keeps every observation (its numbers and UIDs); only the link
  (``study_pk``) becomes NULL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from pydicom.uid import generate_uid
from sqlalchemy.orm import Session

from oncohybrid import __version__
from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, OncohybridError, StoreError
from oncohybrid.services import masks
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Study
from oncohybrid.store.models_record import (
    MEASUREMENTS,
    AssessmentRecord,
    Lesion,
    LesionLineage,
    LesionRole,
    Observation,
    Timepoint,
    TimepointStudy,
)

log = logging.getLogger(__name__)

#: Roles a lesion may have under a criterion.
ROLES = ("target", "non-target", "new", "not-recorded")


def patient_pk(session: Session, patient_id: str) -> int:
    """Primary key of the patient with this (0010,0020) *Patient ID* (StoreError if 0 or 2+)."""
    pks = session.scalars(sa.select(Patient.id).where(Patient.patient_id == patient_id)).all()
    if not pks:
        raise StoreError(f"patient {patient_id}: not in the study database")
    if len(pks) > 1:
        raise StoreError(f"patient {patient_id}: several issuers of this Patient ID are stored")
    return pks[0]


def _label(k: int) -> str:
    return "baseline" if k == 0 else f"follow-up {k}"


def upsert_timepoint(session: Session, ppk: int, k: int, date: dt.date, baseline: dt.date,
                     *, study_uid: str | None = None, kind: str = "PET/CT",
                     pet_series_uid: str | None = None, ct_series_uid: str | None = None,
                     frame_of_reference_uid: str | None = None) -> Timepoint:
    tp = session.scalar(sa.select(Timepoint).where(Timepoint.patient_pk == ppk,
                                                   Timepoint.scan_date == date))
    if tp is None:
        tp = Timepoint(patient_pk=ppk, scan_date=date)
        session.add(tp)
    tp.tp_index, tp.label = k, _label(k)
    tp.days_since_baseline = (date - baseline).days
    session.flush()
    if study_uid:
        link = session.scalar(sa.select(TimepointStudy).where(
            TimepointStudy.timepoint_pk == tp.id, TimepointStudy.study_instance_uid == study_uid))
        if link is None:
            link = TimepointStudy(timepoint_pk=tp.id, study_instance_uid=study_uid, kind=kind)
            session.add(link)
        link.study_pk = session.scalar(sa.select(Study.id).where(
            Study.study_instance_uid == study_uid))
        link.pet_series_uid, link.ct_series_uid = pet_series_uid, ct_series_uid
        link.frame_of_reference_uid = frame_of_reference_uid
    return tp


def upsert_lesion(session: Session, ppk: int, key: str, site: str, nodal: bool,
                  first_timepoint_pk: int | None) -> Lesion:
    les = session.scalar(sa.select(Lesion).where(Lesion.patient_pk == ppk, Lesion.key == key))
    if les is None:
        les = Lesion(patient_pk=ppk, key=key, tracking_uid=generate_uid())
        session.add(les)
    les.site, les.nodal, les.first_timepoint_pk = site, nodal, first_timepoint_pk
    session.flush()
    return les


def set_role(session: Session, lesion: Lesion, criterion: str, role: str, *,
             source: str = "automatic", reasons: list[str] | None = None) -> LesionRole:
    """Set a role; an automatic proposal never replaces a manual decision."""
    if role not in ROLES:
        raise InputError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    row = session.scalar(sa.select(LesionRole).where(LesionRole.lesion_pk == lesion.id,
                                                     LesionRole.criterion == criterion))
    if row is None:
        row = LesionRole(lesion_pk=lesion.id, criterion=criterion)
        session.add(row)
    elif row.source == "manual" and source != "manual":
        return row
    row.role, row.source, row.reasons = role, source, list(reasons or [])
    row.decided_at = dt.datetime.now(dt.UTC)
    return row


def put_automatic_observation(session: Session, lesion: Lesion, tp: Timepoint,
                              values: Mapping[str, float | None] | None, *,
                              methods: Mapping[str, Any] | None = None, label: str | None = None,
                              study_uid: str | None = None, pet_series_uid: str | None = None,
                              ct_series_uid: str | None = None,
                              centroid_lps_mm: list[float] | None = None) -> Observation:
    """Write (or replace) the automatic observation; ``values=None`` records absence.

    The new automatic row is in use unless a manual row of the same lesion and timepoint
    is; a previous automatic row is updated in place (its history is the re-run).
    """
    rows = session.scalars(sa.select(Observation).where(
        Observation.lesion_pk == lesion.id, Observation.timepoint_pk == tp.id)).all()
    auto = next((r for r in rows if r.source == "automatic"), None)
    manual_in_use = any(r.source == "manual" and r.in_use for r in rows)
    if auto is None:
        auto = Observation(lesion_pk=lesion.id, timepoint_pk=tp.id, source="automatic")
        session.add(auto)
    auto.present = values is not None
    for name in MEASUREMENTS:
        setattr(auto, name, None if values is None else _num(values.get(name)))
    auto.methods = dict(methods or {})
    auto.label = label
    auto.study_instance_uid = study_uid
    auto.study_pk = None if study_uid is None else session.scalar(
        sa.select(Study.id).where(Study.study_instance_uid == study_uid))
    auto.pet_series_uid, auto.ct_series_uid = pet_series_uid, ct_series_uid
    auto.centroid_lps_mm = centroid_lps_mm
    auto.reader = "oncohybrid " + __version__
    auto.measured_at = dt.datetime.now(dt.UTC)
    auto.in_use = not manual_in_use
    session.flush()
    return auto


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def add_manual_observation(lesion_key: str, scan_date: dt.date, values: Mapping[str, Any], *,
                           patient_id: str, reader: str, note: str | None = None,
                           present: bool = True, settings: Settings | None = None) -> int:
    """Record a reader's measurement; it supersedes (never overwrites) the automatic one.

    Unspecified measurements are copied from the observation in use, so a reader who
    corrects only ``ld_mm`` keeps the automatic SUVs. Returns the new row's id.
    """
    unknown = set(values) - set(MEASUREMENTS)
    if unknown:
        raise InputError(f"values: unknown measurement(s) {sorted(unknown)}; "
                         f"expected some of {', '.join(MEASUREMENTS)}")
    if not reader.strip():
        raise InputError("reader: required for a manual observation")
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        les = s.scalar(sa.select(Lesion).where(Lesion.patient_pk == ppk, Lesion.key == lesion_key))
        tp = s.scalar(sa.select(Timepoint).where(Timepoint.patient_pk == ppk,
                                                 Timepoint.scan_date == scan_date))
        if les is None or tp is None:
            raise StoreError(f"patient {patient_id}: no lesion {lesion_key!r} or no timepoint "
                             f"on {scan_date}")
        current = s.scalar(sa.select(Observation).where(
            Observation.lesion_pk == les.id, Observation.timepoint_pk == tp.id,
            Observation.in_use))
        row = Observation(lesion_pk=les.id, timepoint_pk=tp.id, source="manual", reader=reader,
                          note=note, present=present, in_use=True, methods={})
        if current is not None:
            row.supersedes_pk = current.id
            for attr in ("study_pk", "study_instance_uid", "pet_series_uid", "ct_series_uid",
                         "label", "centroid_lps_mm", "mask_segment_number"):
                setattr(row, attr, getattr(current, attr))
            row.methods = {k: v for k, v in (current.methods or {}).items() if k not in values}
            for name in MEASUREMENTS:
                setattr(row, name, getattr(current, name))
            current.in_use = False
            s.flush()  # the partial unique index allows one row in use
        for name, v in values.items():
            setattr(row, name, _num(v))
            row.methods[name] = {"method": "manual", "parameters": {}, "reader": reader}
        s.add(row)
        s.flush()
        return row.id


def add_lineage(patient_id: str, parents: list[str], children: list[str], *, kind: str,
                scan_date: dt.date | None = None, reader: str = "oncohybrid",
                note: str | None = None, settings: Settings | None = None) -> int:
    """Record a split (one parent → several children) or a merge (several → one)."""
    if kind == "split" and len(parents) != 1:
        raise InputError("split: exactly one parent lesion")
    if kind == "merge" and len(children) != 1:
        raise InputError("merge: exactly one child lesion")
    if kind not in ("split", "merge"):
        raise InputError(f"kind: expected split or merge, got {kind!r}")
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        keys = {les.key: les for les in s.scalars(sa.select(Lesion).where(
            Lesion.patient_pk == ppk, Lesion.key.in_(parents + children)))}
        missing = [k for k in parents + children if k not in keys]
        if missing:
            raise StoreError(f"patient {patient_id}: unknown lesion(s) {missing}")
        tp_pk = None
        if scan_date is not None:
            tp_pk = s.scalar(sa.select(Timepoint.id).where(Timepoint.patient_pk == ppk,
                                                           Timepoint.scan_date == scan_date))
        n = 0
        for p in parents:
            for c in children:
                s.add(LesionLineage(parent_pk=keys[p].id, child_pk=keys[c].id, kind=kind,
                                    timepoint_pk=tp_pk, reader=reader, note=note))
                n += 1
        return n


def lineage(patient_id: str, settings: Settings | None = None) -> list[dict[str, Any]]:
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        parent, child = sa.orm.aliased(Lesion), sa.orm.aliased(Lesion)
        rows = s.execute(
            sa.select(LesionLineage, parent.key, child.key)
            .join(parent, LesionLineage.parent_pk == parent.id)
            .join(child, LesionLineage.child_pk == child.id)
            .where(parent.patient_pk == ppk).order_by(LesionLineage.id)
        ).all()
        return [{"kind": r.kind, "parent": pk, "child": ck, "reader": r.reader, "note": r.note}
                for r, pk, ck in rows]


# ---------------------------------------------------------------------------------------
# The assess pipeline's writes
# ---------------------------------------------------------------------------------------


def save_course(patient_id: str, analyses: list[Any], course: Any,
                roles: dict[str, dict[str, str]], params: Any,
                settings: Settings | None = None) -> Any:
    """Store timepoints, lesions, roles and automatic observations of an assess run,
    and each timepoint's measured lesion masks as a DICOM SEG (:mod:`.masks`).

    Returns the course rebuilt from the observations *in use*, so that manual
    corrections made earlier are what the criteria read.
    """
    from oncohybrid.tracking.course import Course, Track

    baseline = course.dates[0]
    settings = settings or get_settings()
    replaced: list[str] = []
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        tps = []
        for k, a in enumerate(analyses):
            tin = a.input
            tps.append(upsert_timepoint(
                s, ppk, k, tin.date, baseline, study_uid=tin.study_uid,
                pet_series_uid=tin.pet_series_uid, ct_series_uid=tin.ct_series_uid,
                frame_of_reference_uid=tin.frame_of_reference_uid))
        by_label = [{les.label: les for les in a.lesions} for a in analyses]
        lesions: dict[str, Lesion] = {}
        # Per timepoint: lesion key -> (measured mask, its automatic observation row).
        measured: list[dict[str, tuple[Any, Observation]]] = [{} for _ in analyses]
        for t in course.tracks:
            les = upsert_lesion(s, ppk, t.id, t.site, t.nodal, tps[t.first].id)
            lesions[t.id] = les
            for crit, rmap in roles.items():
                if t.id in rmap:
                    set_role(s, les, crit, rmap[t.id])
            for k in range(t.first, len(analyses)):
                lab = t.labels[k] if k < len(t.labels) else None
                det = by_label[k].get(lab) if lab is not None else None
                tin = analyses[k].input
                methods = _methods(analyses[k], det) if det is not None else {
                    "absence": {"method": "not detected at this timepoint (tracking)",
                                "parameters": {}}}
                auto = put_automatic_observation(
                    s, les, tps[k], t.values[k], methods=methods, label=lab,
                    study_uid=tin.study_uid, pet_series_uid=tin.pet_series_uid,
                    ct_series_uid=tin.ct_series_uid,
                    centroid_lps_mm=None if det is None else
                    [round(float(v), 2) for v in det.pet.centroid_lps_mm])
                mask = getattr(det, "pet_mask", None)
                if mask is not None and t.values[k] is not None:
                    measured[k][t.id] = (mask, auto)
        s.flush()
        for k, a in enumerate(analyses):
            old = _store_masks(s, settings, a, tps[k], measured[k], lesions)
            if old:
                replaced.append(old)
        s.flush()
        # Rebuild the values from the rows in use (manual corrections win).
        tracks = []
        for t in course.tracks:
            les = lesions[t.id]
            values: list[dict[str, float | None] | None] = [None] * len(analyses)
            for obs, tp in s.execute(sa.select(Observation, Timepoint).join(
                    Timepoint, Observation.timepoint_pk == Timepoint.id).where(
                    Observation.lesion_pk == les.id, Observation.in_use)).all():
                idx = next((k for k, x in enumerate(tps) if x.id == tp.id), None)
                if idx is not None and obs.present:
                    values[idx] = obs.measurements()
            tracks.append(Track(t.id, les.site, les.nodal, t.first, values, list(t.labels)))
    # The superseded SEGs are no longer referenced once the new rows are committed.
    for rel in replaced:
        with contextlib.suppress(OSError):
            masks.seg_path(settings, rel).unlink()
    return Course(course.patient_id, course.dates, course.references, tracks,
                  course.slice_thickness_mm, course.ttv_ml)


def _store_masks(s: Session, settings: Settings, analysis: Any, tp: Timepoint,
                 measured: Mapping[str, tuple[Any, Observation]],
                 lesions: Mapping[str, Lesion]) -> str | None:
    """Write one timepoint's measured masks as a SEG and reference it from the record.

    The timepoint row points at the SEG; every observation of a lesion at this timepoint
    (the automatic one and manual rows superseding it) gets the lesion's segment number,
    since the mask belongs to the timepoint's measurement, not to one set of numbers.
    Returns the previous SEG's relative path (to delete after the commit).
    """
    old = tp.mask_seg_path
    stored = None
    if measured and analysis.pet is not None:
        order = {key: (lesions[key].tracking_uid, lesions[key].site) for key in measured}
        try:
            stored = masks.write_timepoint_seg(
                settings, analysis.pet,
                getattr(analysis, "pet_datasets", None) or analysis.input.pet_files,
                {key: m for key, (m, _row) in measured.items()}, order)
        except OncohybridError as exc:  # e.g. multi-frame PET: outputs re-derive masks
            log.warning("%s: lesion masks not stored: %s", tp.scan_date, exc)
    tp.mask_seg_path = None if stored is None else stored.rel_path
    tp.mask_seg_sop_uid = None if stored is None else stored.sop_instance_uid
    numbers = {} if stored is None else stored.segment_numbers
    for key, les in lesions.items():
        for row in s.scalars(sa.select(Observation).where(
                Observation.lesion_pk == les.id, Observation.timepoint_pk == tp.id)):
            row.mask_segment_number = numbers.get(key)
    return old if old and old != tp.mask_seg_path else None


def _methods(analysis: Any, det: Any) -> dict[str, Any]:
    seg = {"method": ("PERCIST liver threshold (docs/record.md)"
                      if analysis.segmentation.get("method") != "ai-label" else
                      f"AI model label (model {analysis.segmentation.get('model')}; "
                      "docs/ai-segmentation.md)"),
           "parameters": {**analysis.segmentation,
                          "threshold": None if analysis.threshold is None
                          else analysis.threshold.to_json()}}
    peak = {"method": "SUVpeak, 1 cm3 sphere (PERCIST)",
            "parameters": det.pet.suv_peak.to_json()}
    ct = det.ct_method or {"method": "none", "parameters": {}}
    out: dict[str, Any] = {}
    for name in ("suv_max", "mtv_ml", "tlg_suv_ml"):
        out[name] = seg
    out["suv_peak"] = out["sul_peak"] = peak
    for name in ("ld_mm", "sa_mm", "ppd_mm2", "volume_ml", "hu_mean"):
        out[name] = ct
    if det.pvc is not None:
        pvc = {"method": "recovery-coefficient partial-volume correction (docs/record.md)",
               "parameters": det.pvc["parameters"]}
        for name in ("suv_max", "suv_peak", "sul_peak"):
            out[name] = {**out[name], "correction": pvc}
    return out


def load_roles(patient_id: str, settings: Settings | None = None) -> dict[str, dict[str, str]]:
    """criterion → lesion key → role, as stored (manual decisions included)."""
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        out: dict[str, dict[str, str]] = {}
        for crit, key, role in s.execute(
                sa.select(LesionRole.criterion, Lesion.key, LesionRole.role)
                .join(Lesion, LesionRole.lesion_pk == Lesion.id)
                .where(Lesion.patient_pk == ppk)).all():
            out.setdefault(crit, {})[key] = role
        return out


def save_assessments(patient_id: str, results: Mapping[str, tuple[dict, dict]],
                     settings: Settings | None = None) -> str:
    """Store each criterion's case and assessment JSON under one run UID (returned)."""
    run_uid = generate_uid()
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        for name, (case, result) in results.items():
            s.add(AssessmentRecord(
                patient_pk=ppk, criterion=name, run_uid=run_uid, case_json=case,
                result_json=result, best_overall_response=result.get("best_overall_response"),
                software_version=__version__))
    return run_uid


def latest_assessments(patient_id: str, settings: Settings | None = None) -> dict[str, dict]:
    """criterion → {"case", "result", "run_uid", "created_at"} of the latest run."""
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        rows = s.scalars(sa.select(AssessmentRecord).where(AssessmentRecord.patient_pk == ppk)
                         .order_by(AssessmentRecord.id)).all()
        out = {}
        for r in rows:
            out[r.criterion] = {"case": r.case_json, "result": r.result_json,
                                "run_uid": r.run_uid, "created_at": r.created_at.isoformat()}
        return out


def patient_record(patient_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The whole record of a patient as JSON-ready dicts (for the web app and tests)."""
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        tps = s.scalars(sa.select(Timepoint).where(Timepoint.patient_pk == ppk)
                        .order_by(Timepoint.scan_date)).all()
        tp_by_pk = {t.id: t for t in tps}
        lesions = s.scalars(sa.select(Lesion).where(Lesion.patient_pk == ppk)
                            .order_by(Lesion.id)).all()
        # One query each for the observations, roles and timepoint studies of the whole
        # patient (was one per lesion and per timepoint: the patient page's p95, #11).
        obs_of: dict[int, list[Observation]] = {les.id: [] for les in lesions}
        roles_of: dict[int, list[LesionRole]] = {les.id: [] for les in lesions}
        studies_of: dict[int, list[TimepointStudy]] = {t.id: [] for t in tps}
        for o in s.scalars(sa.select(Observation).join(Lesion, Observation.lesion_pk == Lesion.id)
                           .where(Lesion.patient_pk == ppk)
                           .order_by(Observation.lesion_pk, Observation.timepoint_pk,
                                     Observation.id)):
            obs_of[o.lesion_pk].append(o)
        for r in s.scalars(sa.select(LesionRole).join(Lesion, LesionRole.lesion_pk == Lesion.id)
                           .where(Lesion.patient_pk == ppk).order_by(LesionRole.id)):
            roles_of[r.lesion_pk].append(r)
        for ts in s.scalars(sa.select(TimepointStudy)
                            .join(Timepoint, TimepointStudy.timepoint_pk == Timepoint.id)
                            .where(Timepoint.patient_pk == ppk).order_by(TimepointStudy.id)):
            studies_of[ts.timepoint_pk].append(ts)
        out_l = []
        for les in lesions:
            obs = obs_of[les.id]
            out_l.append({
                "key": les.key, "tracking_uid": les.tracking_uid, "site": les.site,
                "nodal": les.nodal,
                "roles": {r.criterion: {"role": r.role, "source": r.source}
                          for r in roles_of[les.id]},
                "observations": [{
                    "id": o.id,
                    "date": tp_by_pk[o.timepoint_pk].scan_date.isoformat(),
                    "source": o.source, "in_use": o.in_use, "present": o.present,
                    "supersedes": o.supersedes_pk, "reader": o.reader,
                    "study_uid": o.study_instance_uid, "study_linked": o.study_pk is not None,
                    "label": o.label, "centroid_lps_mm": o.centroid_lps_mm,
                    "mask_segment_number": o.mask_segment_number,
                    **o.measurements(), "methods": o.methods,
                } for o in obs],
            })
        return {
            "patient_id": patient_id,
            "timepoints": [{
                "index": t.tp_index, "label": t.label, "date": t.scan_date.isoformat(),
                "days_since_baseline": t.days_since_baseline,
                "treatment_line": t.treatment_line, "treatment_event": t.treatment_event,
                "mask_seg_path": t.mask_seg_path, "mask_seg_sop_uid": t.mask_seg_sop_uid,
                "studies": [{"study_uid": ts.study_instance_uid, "kind": ts.kind,
                             "linked": ts.study_pk is not None} for ts in studies_of[t.id]],
            } for t in tps],
            "lesions": out_l,
        }
