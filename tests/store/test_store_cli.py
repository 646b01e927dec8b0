"""``oncohybrid ingest`` / ``ls`` / ``db``: JSON fields, filters and exit codes."""

from __future__ import annotations

import json

import pydicom
from dicomfactory import build_cohort
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_ingest_json_counts_and_exit_codes(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in")
    res = _run("ingest", str(tmp_path / "in"), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # stdout holds JSON only (no progress bar)
    assert (out["new"], out["duplicate"], out["n_skipped"]) == (
        cohort.n_valid,
        0,
        len(cohort.bad),
    )
    assert {s["path"] for s in out["skipped"]} == set(cohort.bad)

    res = _run("ingest", str(tmp_path / "in"), "--json")
    out = json.loads(res.stdout)
    assert (out["new"], out["duplicate"]) == (0, cohort.n_valid)

    res = _run("ingest", str(tmp_path / "does-not-exist"))
    assert res.exit_code == 2
    assert "does-not-exist" in res.stderr

    res = _run("ls", "studies", "--date-from", "last week")
    assert res.exit_code == 2
    assert "--date-from" in res.stderr


def test_ingest_without_json_prints_summary_and_skips(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in")
    res = _run("ingest", str(tmp_path / "in" / "junk"))
    assert res.exit_code == 0
    assert f"{len(cohort.zip_members) + len(cohort.raw_valid)} new" in res.stdout
    assert "truncated.dcm" in res.stdout


def _series_truth(cohort) -> dict[str, dict]:
    """Expected series fields, read independently from the written files."""
    truth: dict[str, dict] = {}
    for path in (cohort.root / "good").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        t = truth.setdefault(
            ds.SeriesInstanceUID,
            {
                "patient_id": ds.PatientID,
                "study_uid": ds.StudyInstanceUID,
                "modality": ds.Modality,
                "manufacturer": ds.Manufacturer,
                "frame_of_reference_uid": ds.FrameOfReferenceUID,
                "body_part": ds.BodyPartExamined,
                "description": ds.SeriesDescription,
                "radiopharmaceutical": (
                    ds.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical
                    if "RadiopharmaceuticalInformationSequence" in ds
                    else None
                ),
                "instances": 0,
            },
        )
        t["instances"] += 1
    return truth


def test_ls_json_lists_series_patients_and_studies_with_filters(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in", junk=False)
    assert _run("ingest", str(tmp_path / "in"), "--json").exit_code == 0
    truth = _series_truth(cohort)

    res = _run("ls", "series", "--json")
    assert res.exit_code == 0
    series = json.loads(res.stdout)
    assert isinstance(series, list)
    got = {s["series_uid"]: s for s in series}
    assert set(got) == set(truth)
    for uid, expected in truth.items():
        for key, value in expected.items():
            assert got[uid][key] == value, (uid, key)

    pet = json.loads(_run("ls", "series", "--modality", "PT", "--json").stdout)
    assert {s["series_uid"] for s in pet} == {u for u, t in truth.items() if t["modality"] == "PT"}
    assert all(s["radiopharmaceutical"] == "Fluorodeoxyglucose" for s in pet)

    pat1 = json.loads(_run("ls", "series", "--patient-id", "PAT001", "--json").stdout)
    assert {s["series_uid"] for s in pat1} == {
        u for u, t in truth.items() if t["patient_id"] == "PAT001"
    }

    patients = json.loads(_run("ls", "patients", "--json").stdout)
    by_id = {p["patient_id"]: p for p in patients}
    expected_studies: dict[str, int] = {}
    for st in cohort.studies:
        expected_studies[st.patient_id] = expected_studies.get(st.patient_id, 0) + 1
    assert {k: v["studies"] for k, v in by_id.items()} == expected_studies
    assert by_id["PAT002"]["name"] == "Roe^Rich"
    assert by_id["PAT002"]["sex"] == "M"
    assert by_id["PAT002"]["birth_date"] == "1960-01-01"

    studies = json.loads(
        _run("ls", "studies", "--date-from", "2024-01-01", "--date-to", "20240331", "--json").stdout
    )
    in_range = [st for st in cohort.studies if "20240101" <= st.study_date <= "20240331"]
    assert {s["study_uid"] for s in studies} == {st.study_uid for st in in_range}
    for s in studies:
        assert s["modalities"] == ["CT", "PT"]
        assert s["date"].startswith("2024-0")

    one = cohort.studies[0]
    res = _run("ls", "series", "--study-uid", one.study_uid, "--json")
    assert {s["series_uid"] for s in json.loads(res.stdout)} == {se.series_uid for se in one.series}

    table = _run("ls", "series")
    assert table.exit_code == 0
    assert "PAT003" in table.stdout


def test_db_upgrade_and_adopt_commands(backend):
    from oncohybrid.store.db import head_revision

    res = _run("db", "upgrade")
    assert res.exit_code == 0
    assert f"revision {head_revision()}" in res.stdout
    res = _run("db", "adopt", "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["new"] == 0
