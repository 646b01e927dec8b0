"""The longitudinal record on SQLite and PostgreSQL: round trip, manual edits, lineage, deletion."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from oncohybrid.errors import InputError
from oncohybrid.services import record
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Study
from oncohybrid.store.models_record import Observation, Timepoint, TimepointStudy

D0, D1 = dt.date(2024, 1, 10), dt.date(2024, 3, 12)


def _seed() -> dict[str, int]:
    """A patient with two studies, two timepoints, one lesion observed at both."""
    with session_scope() as s:
        p = Patient(patient_id="REC1", issuer_of_patient_id="")
        s.add(p)
        s.flush()
        for uid, date in (("1.2.3.1", D0), ("1.2.3.2", D1)):
            s.add(Study(study_instance_uid=uid, patient_pk=p.id, study_date=date))
        s.flush()
        t0 = record.upsert_timepoint(s, p.id, 0, D0, D0, study_uid="1.2.3.1",
                                     pet_series_uid="1.2.3.1.4", ct_series_uid="1.2.3.1.2")
        t1 = record.upsert_timepoint(s, p.id, 1, D1, D0, study_uid="1.2.3.2")
        les = record.upsert_lesion(s, p.id, "L1", "lung", False, t0.id)
        record.set_role(s, les, "recist1.1", "target", reasons=["largest"])
        record.set_role(s, les, "percist", "non-target")
        record.put_automatic_observation(
            s, les, t0, {"ld_mm": 31.5, "sa_mm": 30.0, "suv_max": 12.25, "sul_peak": 7.5},
            methods={"ld_mm": {"method": "ct", "parameters": {"margin_mm": 10}}},
            study_uid="1.2.3.1", centroid_lps_mm=[1.0, 2.0, 3.0], label="d1")
        record.put_automatic_observation(s, les, t1, {"ld_mm": 20.0, "suv_max": 6.0},
                                         study_uid="1.2.3.2", label="d2")
        les2 = record.upsert_lesion(s, p.id, "L2", "liver", False, t0.id)
        record.put_automatic_observation(s, les2, t0, {"ld_mm": 15.0}, study_uid="1.2.3.1")
        record.put_automatic_observation(s, les2, t1, None, study_uid="1.2.3.2")  # vanished
        return {"patient": p.id}


def test_record_round_trip(backend):
    _seed()
    rec = record.patient_record("REC1")
    assert [(t["label"], t["date"], t["days_since_baseline"]) for t in rec["timepoints"]] == [
        ("baseline", "2024-01-10", 0), ("follow-up 1", "2024-03-12", 62)]
    assert rec["timepoints"][0]["studies"] == [
        {"study_uid": "1.2.3.1", "kind": "PET/CT", "linked": True}]
    l1, l2 = rec["lesions"]
    assert (l1["key"], l1["site"], l1["nodal"]) == ("L1", "lung", False)
    assert l1["tracking_uid"].count(".") > 3 and l1["tracking_uid"] != l2["tracking_uid"]
    assert l1["roles"] == {"recist1.1": {"role": "target", "source": "automatic"},
                           "percist": {"role": "non-target", "source": "automatic"}}
    o0 = l1["observations"][0]
    assert (o0["ld_mm"], o0["sa_mm"], o0["suv_max"], o0["sul_peak"]) == (31.5, 30.0, 12.25, 7.5)
    assert o0["methods"]["ld_mm"] == {"method": "ct", "parameters": {"margin_mm": 10}}
    assert o0["centroid_lps_mm"] == [1.0, 2.0, 3.0] and o0["label"] == "d1"
    assert [o["present"] for o in l2["observations"]] == [True, False]
    assert l2["observations"][1]["ld_mm"] is None


def test_manual_edit_keeps_both_values_and_survives_a_rerun(backend):
    _seed()
    new_pk = record.add_manual_observation("L1", D1, {"ld_mm": 22.5}, patient_id="REC1",
                                           reader="dr.a", note="caliper on lung window")
    obs = record.patient_record("REC1")["lesions"][0]["observations"]
    at_d1 = [o for o in obs if o["date"] == D1.isoformat()]
    auto, manual = sorted(at_d1, key=lambda o: o["source"])
    assert (auto["source"], auto["in_use"], auto["ld_mm"]) == ("automatic", False, 20.0)
    assert (manual["source"], manual["in_use"], manual["ld_mm"]) == ("manual", True, 22.5)
    assert manual["id"] == new_pk and manual["supersedes"] == auto["id"]
    assert manual["suv_max"] == 6.0  # unspecified values carried from the automatic row
    assert manual["methods"]["ld_mm"]["method"] == "manual"

    # An automatic re-run updates the automatic row only; the manual row stays in use.
    with session_scope() as s:
        ppk = record.patient_pk(s, "REC1")
        tp = s.scalar(sa.select(Timepoint).where(Timepoint.scan_date == D1))
        les = s.scalar(sa.select(record.Lesion).where(record.Lesion.key == "L1"))
        record.put_automatic_observation(s, les, tp, {"ld_mm": 19.0})
        assert ppk
    obs = record.patient_record("REC1")["lesions"][0]["observations"]
    at_d1 = {o["source"]: o for o in obs if o["date"] == D1.isoformat()}
    assert at_d1["automatic"]["ld_mm"] == 19.0 and not at_d1["automatic"]["in_use"]
    assert at_d1["manual"]["ld_mm"] == 22.5 and at_d1["manual"]["in_use"]

    # A manual role is not replaced by a later automatic proposal.
    with session_scope() as s:
        les = s.scalar(sa.select(record.Lesion).where(record.Lesion.key == "L1"))
        record.set_role(s, les, "percist", "target", source="manual")
        record.set_role(s, les, "percist", "non-target")
    assert record.load_roles("REC1")["percist"]["L1"] == "target"


def test_two_observations_in_use_are_refused(backend):
    _seed()
    with pytest.raises(sa.exc.IntegrityError), session_scope() as s:
        row = s.scalar(sa.select(Observation).where(Observation.in_use))
        s.add(Observation(lesion_pk=row.lesion_pk, timepoint_pk=row.timepoint_pk,
                          source="manual", in_use=True, present=True, methods={},
                          reader="x"))
        s.flush()


def test_lineage_split_and_merge(backend):
    _seed()
    with session_scope() as s:
        ppk = record.patient_pk(s, "REC1")
        for key in ("L1a", "L1b"):
            record.upsert_lesion(s, ppk, key, "lung", False, None)
    assert record.add_lineage("REC1", ["L1"], ["L1a", "L1b"], kind="split", scan_date=D1) == 2
    assert record.add_lineage("REC1", ["L1a", "L2"], ["L1b"], kind="merge") == 2
    got = {(r["kind"], r["parent"], r["child"]) for r in record.lineage("REC1")}
    assert got == {("split", "L1", "L1a"), ("split", "L1", "L1b"), ("merge", "L1a", "L1b"),
                   ("merge", "L2", "L1b")}
    with pytest.raises(InputError, match="exactly one parent"):
        record.add_lineage("REC1", ["L1", "L2"], ["L1a"], kind="split")


@pytest.mark.parametrize("how", ["sql", "orm"])
def test_deleting_a_study_keeps_the_observations_and_drops_only_the_link(backend, how):
    _seed()
    with session_scope() as s:
        if how == "sql":
            s.execute(sa.delete(Study).where(Study.study_instance_uid == "1.2.3.2"))
        else:  # through the ORM: series and instances go by the database's cascade
            s.delete(s.scalar(sa.select(Study).where(Study.study_instance_uid == "1.2.3.2")))
    rec = record.patient_record("REC1")
    obs = [o for o in rec["lesions"][0]["observations"] if o["date"] == D1.isoformat()]
    assert len(obs) == 1
    assert (obs[0]["ld_mm"], obs[0]["suv_max"]) == (20.0, 6.0)
    assert obs[0]["study_uid"] == "1.2.3.2" and obs[0]["study_linked"] is False
    assert rec["timepoints"][1]["studies"] == [
        {"study_uid": "1.2.3.2", "kind": "PET/CT", "linked": False}]
    with session_scope() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(TimepointStudy)) == 2
        # The untouched baseline study is still linked.
        assert s.scalar(sa.select(sa.func.count()).select_from(Observation)
                        .where(Observation.study_pk.is_not(None))) == 2


def test_assessments_keep_the_input_case(backend):
    _seed()
    case = {"criteria": "recist1.1", "timepoints": [{"date": "2024-01-10", "lesions": []}]}
    result = {"criteria": "recist1.1", "timepoints": [], "best_overall_response": "PR"}
    run = record.save_assessments("REC1", {"recist1.1": (case, result)})
    got = record.latest_assessments("REC1")["recist1.1"]
    assert got["case"] == case and got["result"] == result and got["run_uid"] == run
