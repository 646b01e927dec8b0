"""Fill the longitudinal-record tables of a test database from phantom ground truth.

Stands in for ``services.assess`` so that the report service is tested against the
record schema (``store.models_record``) with numbers known independently.
"""

from __future__ import annotations

import datetime as dt
import json

import report_data
import sqlalchemy as sa
from pydicom.uid import generate_uid

from oncohybrid.response.parse import load_case
from oncohybrid.response.registry import get_assessor
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Study
from oncohybrid.store.models_record import (
    AssessmentRecord,
    Lesion,
    LesionRole,
    Observation,
    Timepoint,
    TimepointStudy,
)


def populate(settings, patient: dict) -> dict[str, str]:
    """Write timepoints, lesions, roles, observations and RECIST 1.1 assessment rows.

    Returns lesion id → Tracking UID.
    """
    role_of = report_data.roles(patient)
    uids = {lid: generate_uid(entropy_srcs=["record", patient["patient_id"], lid])
            for lid in patient["lesion_ids"]}
    base_date = dt.date.fromisoformat(patient["timepoints"][0]["date"])
    with session_scope(settings) as s:
        p = s.scalar(sa.select(Patient).where(Patient.patient_id == patient["patient_id"]))
        tps = []
        for tp in patient["timepoints"]:
            date = dt.date.fromisoformat(tp["date"])
            row = Timepoint(patient_pk=p.id, tp_index=tp["index"],
                            label="baseline" if tp["index"] == 0 else f"follow-up {tp['index']}",
                            scan_date=date, days_since_baseline=(date - base_date).days)
            study_pk = s.scalar(sa.select(Study.id).where(
                Study.study_instance_uid == tp["study_uid"]))
            row.studies.append(TimepointStudy(
                study_pk=study_pk, study_instance_uid=tp["study_uid"], kind="PET/CT",
                pet_series_uid=tp["pt_series_uid"], ct_series_uid=tp["ct_series_uid"],
                frame_of_reference_uid=tp["frame_of_reference_uid"]))
            s.add(row)
            tps.append(row)
        s.flush()
        lesions = {}
        for lid in patient["lesion_ids"]:
            first = next(t for t in patient["timepoints"]
                         if next(x for x in t["lesions"] if x["id"] == lid)["present"])
            info = next(x for x in first["lesions"] if x["id"] == lid)
            les = Lesion(patient_pk=p.id, key=lid, tracking_uid=uids[lid], site=info["site"],
                         nodal=info["nodal"], first_timepoint_pk=tps[first["index"]].id)
            les.roles.append(LesionRole(criterion="recist1.1", role=role_of[lid]))
            s.add(les)
            lesions[lid] = les
        s.flush()
        for tp, row in zip(patient["timepoints"], tps, strict=True):
            for x in tp["lesions"]:
                if role_of[x["id"]] == "new" and not x["present"] and not x["new"]:
                    continue  # a new lesion before it appeared: not looked for
                s.add(Observation(
                    lesion_pk=lesions[x["id"]].id, timepoint_pk=row.id,
                    study_instance_uid=tp["study_uid"], pet_series_uid=tp["pt_series_uid"],
                    present=x["present"], ld_mm=x["ld_mm"] if x["present"] else None,
                    sa_mm=x["sa_mm"] if x["present"] else None,
                    volume_ml=x["volume_ml"] if x["present"] else None,
                    suv_max=x["true_suv"], centroid_lps_mm=list(x["centre_lps_mm"]),
                    methods={"ld_mm": {"method": "phantom ground truth"}}))
        case = report_data.recist_case(patient, role_of)
        result = get_assessor("recist1.1")(load_case(json.dumps(case))).to_json()
        s.add(AssessmentRecord(patient_pk=p.id, criterion="recist1.1", run_uid=generate_uid(),
                               case_json=case, result_json=result,
                               best_overall_response=result["best_overall_response"],
                               software_version="test"))
    return uids
