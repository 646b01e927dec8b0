"""``batch segment`` and ``batch radiomics`` (#17): each task's result is what the
single-unit command prints, run by the test itself (``oncohybrid segment … --json``,
``oncohybrid radiomics --patient ID --json``); reruns skip; a changed model is recomputed."""

from __future__ import annotations

import json
from pathlib import Path

from batch_cohort import ingest, threshold_model
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


def _without_run_specifics(doc: dict) -> dict:
    """A segment result less the output path and the wall-clock timings."""
    return {k: v for k, v in doc.items() if k not in ("seg_file", "timings_s")}


def test_batch_segment_is_the_segment_output_with_its_seg_in_the_store(cohort_dir, tmp_path,
                                                                        monkeypatch):
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    data, ids = cohort_dir
    ingest(data / ids[0])
    tp1 = data / ids[0] / "TP1"
    model = threshold_model(tmp_path / "model", tp1 / "PT")
    args = ["batch", "segment", "--model", str(model), "--patients", ids[0], "--workers", "0",
            "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["summary"] == {"done": 2, "failed": 0, "skipped": 0}  # one task per PET study
    single = runner.invoke(app, ["segment", str(tp1 / "PT"), "--ct", str(tp1 / "CT"),
                                 "--model", str(model), "--out", str(tmp_path / "s.dcm"),
                                 "--json"])
    assert single.exit_code == 0, single.output
    expected = json.loads(single.stdout)
    assert expected["labels"]["1"]["voxels"] > 0
    results = [t["result"] for t in doc["tasks"]]
    assert _without_run_specifics(expected) in [_without_run_specifics(r) for r in results]
    for r in results:
        seg = Path(r["seg_file"])
        assert seg.is_file() and seg.parent.name == "segment" and seg.suffix == ".dcm"
        assert not list(seg.parent.glob(".*partial*"))  # nothing half-written left behind

    rerun = json.loads(runner.invoke(app, args).stdout)
    assert rerun["summary"] == {"done": 0, "failed": 0, "skipped": 2}
    assert [t["result"] for t in rerun["tasks"]] == results
    # another model (threshold 3.0) is another parameter set: computed again
    other = threshold_model(tmp_path / "model", tp1 / "PT", threshold=3.0)
    again = json.loads(runner.invoke(app, args[:3] + [str(other)] + args[4:]).stdout)
    assert again["summary"] == {"done": 2, "failed": 0, "skipped": 0}


def test_batch_segment_needs_a_model_and_gpu_is_for_segment_only(monkeypatch, tmp_path):
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    r = runner.invoke(app, ["batch", "segment", "--model", str(tmp_path / "none"),
                            "--patients", "A", "--json"])
    assert r.exit_code == 2 and r.stdout == "" and "not a folder" in r.stderr
    r = runner.invoke(app, ["batch", "segment", "--patients", "A", "--json"])
    assert r.exit_code == 2 and r.stdout == "" and "--model" in r.stderr


def test_batch_radiomics_is_the_radiomics_patient_output(cohort_dir, monkeypatch):
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    data, ids = cohort_dir
    ingest(data / ids[0])
    args = ["--patients", ids[0], "--workers", "0", "--json"]
    before = runner.invoke(app, ["batch", "radiomics", *args])
    assert before.exit_code == 1  # not assessed yet: the reason, not a silent gap
    (task,) = json.loads(before.stdout)["tasks"]
    assert task["status"] == "failed" and "run oncohybrid assess first" in task["error"]

    assert runner.invoke(app, ["batch", "assess", *args]).exit_code == 0
    first = runner.invoke(app, ["batch", "radiomics", *args])
    assert first.exit_code == 0, first.output
    (task,) = json.loads(first.stdout)["tasks"]
    single = runner.invoke(app, ["radiomics", "--patient", ids[0], "--json"])
    assert single.exit_code == 0, single.output
    expected = json.loads(single.stdout)
    # as JSON text: undefined features are NaN in both (and NaN != NaN as floats);
    # the timings of the two runs differ
    assert expected and _text(task["result"]) == _text(expected)
    assert {row["lesion"] for row in task["result"]}  # one row per stored lesion mask

    rerun = json.loads(runner.invoke(app, ["batch", "radiomics", *args]).stdout)
    assert rerun["summary"] == {"done": 0, "failed": 0, "skipped": 1}
    assert _text(rerun["tasks"][0]["result"]) == _text(expected)


def _text(doc: object) -> str:
    """JSON text less the wall-clock timings the feature settings carry."""
    def strip(x: object) -> object:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if "timing" not in k}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(doc), sort_keys=True, allow_nan=True)
