"""Ingest of a synthetic phantom cohort (5 patients × 3 timepoints, 3 vendors) plus junk."""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

phantom = pytest.importorskip("oncohybrid.phantom")

N_PATIENTS, N_TIMEPOINTS = 5, 3


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "cohort"
    phantom.generate_cohort(
        out, patients=N_PATIENTS, timepoints=N_TIMEPOINTS, vendor="mixed", seed=7, size="small"
    )
    junk = out / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("not an image\n")
    first = sorted(out.rglob("*.dcm"))[0]
    data = first.read_bytes()
    (junk / "cut.dcm").write_bytes(data[: len(data) // 2])
    shutil.copy(first, junk / "copy_of_first.dcm")  # same SOP Instance UID: a duplicate
    return out


def _truth(root: Path) -> dict:
    """Series → (patient, modality, manufacturer, count), read independently with pydicom."""
    series: dict[str, dict] = {}
    studies: dict[str, set[str]] = defaultdict(set)
    sops: set[str] = set()
    for path in sorted(root.rglob("*.dcm")):
        if path.parent.name == "junk":
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        sops.add(ds.SOPInstanceUID)
        studies[ds.PatientID].add(ds.StudyInstanceUID)
        s = series.setdefault(
            ds.SeriesInstanceUID,
            {
                "patient_id": ds.PatientID,
                "modality": ds.Modality,
                "manufacturer": ds.Manufacturer,
                "instances": 0,
            },
        )
        s["instances"] += 1
    return {"series": series, "studies": studies, "sops": sops}


@pytest.fixture(scope="module")
def truth(cohort_dir) -> dict:
    return _truth(cohort_dir)


def test_phantom_cohort_ingests_every_instance_once_and_reports_junk(backend, cohort_dir, truth):
    assert len(truth["studies"]) == N_PATIENTS
    assert all(len(v) == N_TIMEPOINTS for v in truth["studies"].values())

    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(cohort_dir), "--in-place", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["new"] == len(truth["sops"])
    assert report["duplicate"] == 1  # junk/copy_of_first.dcm
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert "truncated" in skipped[str(cohort_dir / "junk" / "cut.dcm")]
    assert str(cohort_dir / "junk" / "readme.txt") in skipped
    # everything else skipped is a non-DICOM sidecar (the ground truth JSON)
    others = set(skipped) - {str(cohort_dir / "junk" / n) for n in ("cut.dcm", "readme.txt")}
    assert others and all(p.endswith(".json") for p in others)

    listed = json.loads(runner.invoke(app, ["ls", "series", "--json"]).stdout)
    got = {s["series_uid"]: s for s in listed}
    assert set(got) == set(truth["series"])
    for uid, t in truth["series"].items():
        for key, value in t.items():
            assert got[uid][key] == value, (uid, key)
    assert len({t["manufacturer"] for t in truth["series"].values()}) == 3  # mixed vendors

    studies = json.loads(runner.invoke(app, ["ls", "studies", "--json"]).stdout)
    per_patient = Counter(s["patient_id"] for s in studies)
    assert per_patient == {p: N_TIMEPOINTS for p in truth["studies"]}

    again = json.loads(runner.invoke(app, ["ingest", str(cohort_dir), "--json"]).stdout)
    assert (again["new"], again["duplicate"]) == (0, len(truth["sops"]) + 1)
