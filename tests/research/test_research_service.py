"""Studies, cohorts, schedule, CRFs, locking and export on an ingested phantom cohort."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from oncohybrid.errors import InputError
from oncohybrid.research.cohort import parse_criterion
from oncohybrid.services import research as r

DATA = Path(__file__).parent / "data"
PW = "pia-strong-pass-42"


def _age(birth: str, first: str) -> int:
    b, f = dt.date.fromisoformat(birth), dt.date.fromisoformat(first)
    return f.year - b.year - ((f.month, f.day) < (b.month, b.day))


def _study(rws, key: str, **kw) -> None:
    r.create_study(key, f"Study {key}", protocol=r.load_protocol_file(DATA / "protocol.yaml"),
                   ethics_number="EC-2024-17", ethics_date="2024-01-02",
                   investigators=[("pia", "pi", None), ("rita", "investigator", "north"),
                                  ("rolf", "investigator", "south")],
                   dags=["north", "south"], settings=rws.settings, **kw)


def test_cohort_reasons_and_flow_against_the_phantom_truth(rws, tmp_path):
    _study(rws, "cohort1")
    truth = rws.truth["patients"]
    ages = {p["patient_id"]: _age(p["birth_date"], p["timepoints"][0]["date"]) for p in truth}
    cut = sorted(ages.values())[1]  # the middle age: one patient is younger
    res = r.save_cohort("cohort1", "older",
                        [parse_criterion("include", "FDG PET: [tracer(fdg)] = '1'"),
                         parse_criterion("include", f"age: [age] >= {cut}"),
                         parse_criterion("exclude", "men: [sex] = 'M'")],
                        figure=tmp_path / "consort.svg", settings=rws.settings)
    expect = {p["patient_id"]: ages[p["patient_id"]] >= cut and p["sex"] != "M"
              for p in truth}
    got = {p["patient"]: p["included"] for p in res["patients"]}
    assert got == expect
    flow = res["flow"]
    assert flow["assessed"] == 3 and flow["included"] == sum(expect.values())
    assert flow["excluded"] == 3 - flow["included"]
    for p in res["patients"]:
        if not p["included"]:
            assert p["reasons"] and all(x.startswith(("inclusion not met", "exclusion"))
                                        for x in p["reasons"])
    assert "<svg" in (tmp_path / "consort.svg").read_text()
    ids = r.cohort_patient_ids(rws.settings, "cohort1/older")
    assert ids == sorted(k for k, v in expect.items() if v)
    # batch --cohort resolves through the same function
    from oncohybrid.services.batch import resolve_patients

    assert resolve_patients(None, "cohort1/older", False, rws.settings) == ids


def test_schedule_crf_locking_and_audit_trail(rws):
    _study(rws, "crf1")
    r.save_cohort("crf1", "all", [parse_criterion("include", "PET: [modality(pt)] = '1'")],
                  dag="north", settings=rws.settings)
    r.import_dictionary("crf1", DATA / "dictionary.csv", repeating={"imaging": "timepoint"},
                        settings=rws.settings)
    truth = rws.truth["patients"]
    sch = r.schedule("crf1", today=dt.date.fromisoformat(truth[0]["timepoints"][1]["date"])
                     + dt.timedelta(days=400), settings=rws.settings)
    for rec, p in zip(sch["records"], truth, strict=True):
        gap = (dt.date.fromisoformat(p["timepoints"][1]["date"])
               - dt.date.fromisoformat(p["timepoints"][0]["date"])).days
        tps = {t["timepoint"]: t for t in rec["timepoints"]}
        assert tps["baseline"]["status"] == "done"
        assert tps["baseline"]["exam_date"] == p["timepoints"][0]["date"]
        want = "done" if 35 <= gap <= 49 else ("out of window" if gap < 81 else None)
        if want:
            assert tps["interim"]["status"] == want, (gap, tps["interim"])
        assert tps["end of treatment"]["status"] in ("missing", "done", "out of window")
    # imaging values flowed into the timepoint-repeating form without typing
    view = r.form_view("crf1", "1", "imaging", instance=1, settings=rws.settings)
    vals = {f["name"]: f["value"] for f in view["fields"]}
    rec = __import__("oncohybrid.services.record", fromlist=["x"]).patient_record(
        truth[0]["patient_id"], settings=rws.settings)
    suvs = [o["suv_max"] for les in rec["lesions"] for o in les["observations"]
            if o["date"] == truth[0]["timepoints"][0]["date"] and o["in_use"]
            and o["present"] and o["suv_max"] is not None]
    assert float(vals["suvmax"]) == pytest.approx(max(suvs), rel=1e-3)
    assert vals["scan_date"] == truth[0]["timepoints"][0]["date"]
    assert len(view["instances"]) == 2
    # entry: validation, branching, calc
    with pytest.raises(InputError, match="weight"):
        r.save_form("crf1", "1", "demographics", {"weight": "abc"}, settings=rws.settings)
    with pytest.raises(InputError, match="tumour_other: required"):
        r.save_form("crf1", "1", "demographics", {"tumour_type": "3"}, complete=True,
                    settings=rws.settings)
    out = r.save_form("crf1", "1", "demographics",
                      {"tumour_type": "1", "weight": "70", "height": "175",
                       "mrn": "H-1"}, complete=True, settings=rws.settings)
    assert out["status"] == "complete"
    assert {f["name"]: f["value"] for f in r.form_view(
        "crf1", "1", "demographics", settings=rws.settings)["fields"]}["bmi"] == "22.9"
    # e-signature: the wrong password is refused, the right one locks
    with pytest.raises(InputError, match="refused"):
        r.lock_form("crf1", "1", "demographics", username="pia", password="wrong",
                    settings=rws.settings)
    lock = r.lock_form("crf1", "1", "demographics", username="pia", password=PW,
                       settings=rws.settings)
    assert len(lock["signature_sha256"]) == 64
    with pytest.raises(InputError, match="locked"):
        r.save_form("crf1", "1", "demographics", {"weight": "71"}, settings=rws.settings)
    hist = r.crf_history("crf1", "1", settings=rws.settings)
    assert hist[0]["action"] == "lock" and hist[0]["user"] == "pia"
    assert any(h["field"] == "weight" and h["new"] == "70" and h["old"] is None
               for h in hist)
    r.unlock_form("crf1", "1", "demographics", reason="typo in weight",
                  settings=rws.settings)
    r.save_form("crf1", "1", "demographics", {"weight": "71", "tumour_type": "1",
                                              "height": "175"}, settings=rws.settings)
    hist = r.crf_history("crf1", "1", settings=rws.settings)
    assert any(h["field"] == "weight" and h["old"] == "70" and h["new"] == "71"
               for h in hist)
    from oncohybrid.services.audit import list_entries

    actions = {e["action"] for e in list_entries(rws.settings, limit=500)}
    assert {"research.crf.save", "research.crf.lock", "research.crf.unlock"} <= actions
    text = json.dumps(list_entries(rws.settings, limit=500))
    assert "H-1" not in text and truth[0]["patient_id"] not in text


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_deidentified_export_uses_the_image_key_store(rws, tmp_path):
    _study(rws, "exp1")
    r.save_cohort("exp1", "all", [parse_criterion("include", "[n_pet] >= 1")],
                  dag="north", settings=rws.settings)
    r.import_dictionary("exp1", DATA / "dictionary.csv", repeating={"imaging": "timepoint"},
                        settings=rws.settings)
    r.save_form("exp1", "1", "demographics", {"tumour_type": "2", "mrn": "MRN-77",
                                              "diag_date": "2024-03-01",
                                              "comments": "seen by Dr Who"},
                settings=rws.settings)
    res = r.export_study("exp1", tmp_path / "out", deidentify=True, settings=rws.settings)
    assert res["patients"] == 3 and res["deidentified"]
    # the images' de-identification gives the same pseudonyms and date shifts
    from oncohybrid.deid import parse_options
    from oncohybrid.services.deid import deidentify_patients

    img = deidentify_patients(rws.patient_ids, tmp_path / "img", options=parse_options(None),
                              dry_run=True, settings=rws.settings)
    shift = {p["pseudonym"]: p["date_shift_days"] for p in img["patients"]}
    patients = _rows(tmp_path / "out" / "patients.csv")
    truth = {p["patient_id"]: p for p in rws.truth["patients"]}
    assert {p["pseudonym"] for p in patients} == set(shift)
    for p, t in zip(patients, truth.values(), strict=True):
        first = dt.date.fromisoformat(t["timepoints"][0]["date"])
        assert p["first_exam"] == (first + dt.timedelta(days=shift[p["pseudonym"]])).isoformat()
    crf = [x for x in _rows(tmp_path / "out" / "crf.csv") if x["record_id"] == "1"
           and not x["redcap_repeat_instrument"]][0]
    assert "mrn" not in crf and "comments" not in crf and crf["tumour_type"] == "2"
    p1 = next(p for p in patients if p["record_id"] == "1")
    want = dt.date(2024, 3, 1) + dt.timedelta(days=shift[p1["pseudonym"]])
    assert crf["diag_date"] == want.isoformat()
    blob = "".join(f.read_text(errors="ignore") for f in (tmp_path / "out").iterdir())
    for t in truth.values():
        for needle in (t["patient_id"], t["patient_name"], t["birth_date"],
                       t["timepoints"][0]["study_uid"], t["timepoints"][0]["date"]):
            assert needle not in blob
    assert "MRN-77" not in blob and "Dr Who" not in blob
    dd = (tmp_path / "out" / "data_dictionary.csv").read_text()
    assert "mrn" not in dd.split("\n", 1)[1] and "comments" not in dd


def test_export_codebook_describes_every_imaging_column(rws, tmp_path):
    _study(rws, "exp_vars")
    r.save_cohort("exp_vars", "all", [parse_criterion("include", "[n_pet] >= 1")],
                  settings=rws.settings)
    out = tmp_path / "out"
    r.export_study("exp_vars", out, deidentify=True, settings=rws.settings)
    variables = _rows(out / "variables.csv")
    described = {(v["table"], v["column"]) for v in variables if v["description"]}
    for table in ("patients", "timepoints", "lesions", "measurements", "responses"):
        with open(out / f"{table}.csv", encoding="utf-8") as fh:
            header = fh.readline().strip().split(",")
        assert {(table, c) for c in header} <= described, table
    assert not any(v["column"] == "patient_id" for v in variables)  # de-identified layout


def test_parquet_export_equals_csv(rws, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    _study(rws, "exp2")
    r.save_cohort("exp2", "all", [parse_criterion("include", "[n_pet] >= 1")],
                  settings=rws.settings)
    r.export_study("exp2", tmp_path / "c", settings=rws.settings)
    r.export_study("exp2", tmp_path / "p", fmt="parquet", settings=rws.settings)
    for t in ("patients", "measurements", "responses"):
        rows = _rows(tmp_path / "c" / f"{t}.csv")
        table = pq.read_table(tmp_path / "p" / f"{t}.parquet").to_pylist()
        assert len(rows) == len(table) > 0
    m = pq.read_table(tmp_path / "p" / "measurements.parquet").to_pylist()
    c = _rows(tmp_path / "c" / "measurements.csv")
    assert [x["suv_max"] for x in m] == [float(x["suv_max"]) if x["suv_max"] else None
                                         for x in c]


def test_dag_isolation_and_researcher_exports(rws, tmp_path):
    _study(rws, "dag1")
    r.save_cohort("dag1", "n", [parse_criterion("include", "[sex] = 'F'")], dag="north",
                  settings=rws.settings)
    r.save_cohort("dag1", "s", [parse_criterion("include", "[sex] <> 'F'")], dag="south",
                  settings=rws.settings)
    r.import_dictionary("dag1", DATA / "dictionary.csv", repeating={"imaging": "timepoint"},
                        settings=rws.settings)
    rita, rolf = r.Viewer("rita", "researcher"), r.Viewer("rolf", "researcher")
    n_north = sum(p["sex"] == "F" for p in rws.truth["patients"])
    sch_n = r.schedule("dag1", viewer=rita, settings=rws.settings)
    sch_s = r.schedule("dag1", viewer=rolf, settings=rws.settings)
    assert len(sch_n["records"]) == n_north and len(sch_s["records"]) == 3 - n_north
    assert not {x["record_id"] for x in sch_n["records"]} & {
        x["record_id"] for x in sch_s["records"]}
    south_rec = sch_s["records"][0]["record_id"]
    with pytest.raises(InputError, match="no record"):
        r.form_view("dag1", south_rec, "demographics", viewer=rita, settings=rws.settings)
    res = r.export_study("dag1", tmp_path / "rita", viewer=rita, settings=rws.settings)
    assert res["deidentified"] and res["patients"] == n_north
    # a non-member learns nothing, not even that the study exists
    with pytest.raises(InputError, match="no research study"):
        r.study_info("dag1", r.Viewer("fred", "fellow"), rws.settings)
    from oncohybrid.services.audit import list_entries

    ex = [e for e in list_entries(rws.settings, limit=500, action="research.export")
          if e["target"] == "study:dag1"]
    assert ex and ex[0]["username"] == "rita" and ex[0]["details"]["deidentified"] is True


def test_logbook_entries_shared_interface(rws):
    _study(rws, "log1")
    r.save_cohort("log1", "c", [parse_criterion("include", "[n_pet] >= 1")],
                  viewer=r.Viewer("pia", "physician"), settings=rws.settings)
    today = dt.date.today()
    entries = r.logbook_entries(rws.settings, "pia", today - dt.timedelta(days=1),
                                today + dt.timedelta(days=1))
    assert entries and all(set(e) == {"date", "source", "category", "title", "detail",
                                      "score"} and e["source"] == "research" for e in entries)
    assert any(e["title"].startswith("Cohort defined: c") for e in entries)
    assert r.logbook_entries(rws.settings, "pia", dt.date(2000, 1, 1),
                             dt.date(2000, 12, 31)) == []
