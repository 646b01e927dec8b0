"""The PSMA/SSTR lesion table: the record's lesions at a PET date get the PROMISE V2 miPSMA
expression score for a PSMA ligand and the Krenning score for an SSTR ligand, the tracer
read from the stored PET series; missing references leave the score empty with the reason."""

from __future__ import annotations

import datetime as dt

import pytest

from oncohybrid.config import get_settings
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Series, Study


def _record(date: str, suvs: dict[str, float]) -> dict:
    return {"patient_id": "P1", "timepoints": [{"date": date}],
            "lesions": [{"key": k, "site": "bone", "observations": [
                {"date": date, "in_use": True, "suv_max": v}]} for k, v in suvs.items()]}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    settings = get_settings(tmp_path)

    def add(pid: str, date: str, tracer: str) -> None:
        with session_scope(settings) as s:
            p = Patient(patient_id=pid, issuer_of_patient_id="")
            s.add(p)
            s.flush()
            st = Study(study_instance_uid=f"1.2.3.{pid}", patient_pk=p.id,
                       study_date=dt.date.fromisoformat(date))
            s.add(st)
            s.flush()
            s.add(Series(series_instance_uid=f"1.2.3.{pid}.1", study_pk=st.id, modality="PT",
                         radiopharmaceutical=tracer))
    return settings, add


def test_psma_ligand_gets_the_promise_score(workspace, monkeypatch):
    from oncohybrid.services import nm, record

    settings, add = workspace
    add("P1", "2026-05-04", "Ga68-PSMA-11")
    monkeypatch.setattr(record, "patient_record",
                        lambda pid, s=None: _record("2026-05-04", {"L1": 1.2, "L2": 4.0,
                                                                   "L3": 9.0, "L4": 20.0}))
    t = nm.tracer_lesion_table(settings, "P1", blood_pool_suv_mean=1.5, liver_suv_mean=6.0,
                               parotid_suv_mean=15.0)
    assert t["family"] == "PSMA" and "PROMISE" in t["score_name"]
    assert [r["score"] for r in t["rows"]] == [0, 1, 2, 3]
    missing = nm.tracer_lesion_table(settings, "P1", blood_pool_suv_mean=1.5)
    assert all(r["score"] is None and "parotid" in r["reason"] for r in missing["rows"])


def test_sstr_ligand_gets_the_krenning_score(workspace, monkeypatch):
    from oncohybrid.services import nm, record

    settings, add = workspace
    add("P1", "2026-05-04", "Ga-68 DOTATATE")
    monkeypatch.setattr(record, "patient_record",
                        lambda pid, s=None: _record("2026-05-04", {"L1": 4.0, "L2": 8.2,
                                                                   "L3": 12.0, "L4": 30.0}))
    t = nm.tracer_lesion_table(settings, "P1", liver_suv_max=8.0, spleen_suv_max=20.0)
    assert t["family"] == "SSTR" and t["score_name"] == "Krenning score"
    assert [r["score"] for r in t["rows"]] == [1, 2, 3, 4]


def test_fdg_gets_no_tracer_score(workspace, monkeypatch):
    from oncohybrid.services import nm, record

    settings, add = workspace
    add("P1", "2026-05-04", "FDG -- fluorodeoxyglucose")
    monkeypatch.setattr(record, "patient_record",
                        lambda pid, s=None: _record("2026-05-04", {"L1": 4.0}))
    t = nm.tracer_lesion_table(settings, "P1", liver_suv_max=8.0)
    assert t["rows"][0]["score"] is None and "FDG" in t["reason"]
