"""``services.record.patient_record`` reads a patient in a fixed number of queries.

The patient page calls it on every request; it read the observations once per lesion and
the roles and timepoint studies lazily once per lesion and per timepoint (issue #11:
patient page p95). The oracle below is the previous implementation (git b870863,
unchanged but for its name): same JSON on SQLite and PostgreSQL, for records with
several criteria, superseded (manual) observations, unlinked studies and a patient
without lesions; and the number of statements does not grow with lesions/timepoints.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from oncohybrid.config import Settings, get_settings
from oncohybrid.services.record import patient_pk, patient_record
from oncohybrid.store.db import get_engine, session_scope
from oncohybrid.store.models import Patient, Study
from oncohybrid.store.models_record import (
    Lesion,
    LesionRole,
    Observation,
    Timepoint,
    TimepointStudy,
)


def _old_patient_record(patient_id: str, settings: Settings | None = None) -> dict[str, Any]:
    with session_scope(settings) as s:
        ppk = patient_pk(s, patient_id)
        tps = s.scalars(sa.select(Timepoint).where(Timepoint.patient_pk == ppk)
                        .order_by(Timepoint.scan_date)).all()
        tp_by_pk = {t.id: t for t in tps}
        lesions = s.scalars(sa.select(Lesion).where(Lesion.patient_pk == ppk)
                            .order_by(Lesion.id)).all()
        out_l = []
        for les in lesions:
            obs = s.scalars(sa.select(Observation).where(Observation.lesion_pk == les.id)
                            .order_by(Observation.timepoint_pk, Observation.id)).all()
            out_l.append({
                "key": les.key, "tracking_uid": les.tracking_uid, "site": les.site,
                "nodal": les.nodal,
                "roles": {r.criterion: {"role": r.role, "source": r.source} for r in les.roles},
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
                             "linked": ts.study_pk is not None} for ts in t.studies],
            } for t in tps],
            "lesions": out_l,
        }


def _record(pid: str, n_tp: int, n_lesions: int) -> None:
    with session_scope() as db:
        p = Patient(patient_id=pid)
        db.add(p)
        db.flush()
        tps = []
        # Timepoints written out of date order, so the order_by matters.
        for k in reversed(range(n_tp)):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=90 * k)
            st = Study(study_instance_uid=f"1.2.826.0.4.{pid}.{k}", patient_pk=p.id,
                       study_date=day)
            db.add(st)
            db.flush()
            tp = Timepoint(patient_pk=p.id, tp_index=k, label=f"tp {k}", scan_date=day,
                           days_since_baseline=90 * k, mask_seg_path=f"seg/{pid}/{k}.dcm")
            db.add(tp)
            db.flush()
            db.add(TimepointStudy(timepoint_pk=tp.id, study_pk=st.id, kind="PET/CT",
                                  study_instance_uid=st.study_instance_uid))
            db.add(TimepointStudy(timepoint_pk=tp.id, study_pk=None, kind="CT",
                                  study_instance_uid=f"1.2.826.0.4.{pid}.{k}.gone"))
            tps.append(tp)
        for n in range(n_lesions):
            les = Lesion(patient_pk=p.id, key=f"L{n + 1}", tracking_uid=f"2.25.{pid}{n}".replace(
                "P", "9"), site="lung" if n % 2 else "node", nodal=bool(n % 2 == 0))
            db.add(les)
            db.flush()
            for crit in ("recist1.1", "percist1.0")[: 1 + n % 2]:
                db.add(LesionRole(lesion_pk=les.id, criterion=crit, role="target",
                                  source="manual" if n % 3 == 0 else "automatic"))
            for tp in tps:
                auto = Observation(lesion_pk=les.id, timepoint_pk=tp.id, ld_mm=10.0 + n,
                                   suv_max=3.5 + tp.tp_index, label=f"{n}",
                                   centroid_lps_mm=[1.0, 2.0, 3.0], mask_segment_number=n + 1,
                                   methods={"ld_mm": {"method": "m"}})
                db.add(auto)
                db.flush()
                if (n + tp.tp_index) % 3 == 0:  # a reader's value supersedes it
                    auto.in_use = False
                    db.flush()
                    db.add(Observation(lesion_pk=les.id, timepoint_pk=tp.id, source="manual",
                                       supersedes_pk=auto.id, ld_mm=11.0, reader="dr x"))
                    db.flush()


def test_patient_record_equals_the_previous_one_in_a_fixed_number_of_queries(backend):
    settings = get_settings()
    _record("P1", 2, 2)
    _record("P2", 4, 7)
    with session_scope() as db:
        db.add(Patient(patient_id="P3"))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_engine(settings)
    counts = {}
    for pid in ("P1", "P2", "P3"):
        want = _old_patient_record(pid, settings)
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            statements.clear()
            got = patient_record(pid, settings)
            counts[pid] = len(statements)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert got == want, pid
    assert len(patient_record("P2", settings)["lesions"]) == 7
    # No query per lesion or per timepoint: 7 lesions × 4 timepoints cost what 2 × 2 cost.
    assert counts["P2"] == counts["P1"] == counts["P3"], counts
