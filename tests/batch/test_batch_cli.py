"""``oncohybrid batch``: the --json contract, retries, reruns that skip, invalid input (#17).

The batch result of a patient must be exactly what ``oncohybrid assess PATIENT_ID --json``
prints: the test runs that command itself and compares.
"""

from __future__ import annotations

import json

import pytest
from batch_cohort import ingest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()


def test_batch_result_is_the_assess_output_failures_retry_and_reruns_skip(cohort_dir,
                                                                            monkeypatch):
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    data, ids = cohort_dir
    ingest(data)
    args = ["batch", "assess", "--patients", f"{ids[0]},NO-SUCH-PATIENT", "--workers", "0",
            "--retries", "2", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 1, first.output  # a task failed; the batch still completed
    doc = json.loads(first.stdout)
    assert set(doc) == {"tasks", "summary"}
    assert doc["summary"] == {"done": 1, "failed": 1, "skipped": 0}
    ok, bad = doc["tasks"]
    assert {"patient_id", "status", "attempts", "seconds", "result"} <= set(ok)
    assert (ok["patient_id"], ok["status"], ok["attempts"]) == (ids[0], "done", 1)
    assert ok["seconds"] > 0
    # a task that always fails: reported after K attempts in all (--retries 2), with the reason
    assert (bad["patient_id"], bad["status"], bad["attempts"]) == ("NO-SUCH-PATIENT", "failed", 2)
    assert bad["result"] is None and "no stored series" in bad["error"]

    single = runner.invoke(app, ["assess", ids[0], "--json"])
    assert single.exit_code == 0, single.output
    assert ok["result"] == json.loads(single.stdout)

    rerun = runner.invoke(app, args)
    assert rerun.exit_code == 1
    doc2 = json.loads(rerun.stdout)
    assert doc2["summary"] == {"done": 0, "failed": 1, "skipped": 1}
    ok2, bad2 = doc2["tasks"]
    assert (ok2["status"], ok2["attempts"]) == ("skipped", 0)
    assert ok2["result"] == ok["result"]  # read from what the first task stored
    assert (bad2["status"], bad2["attempts"]) == ("failed", 2)


@pytest.mark.parametrize(("args", "reason"), [
    (["--patients", "A", "--workers", "2"], "ONCOHYBRID_DATABASE_URL"),
    (["--patients", "A", "--scheduler", "tcp://127.0.0.1:1"], "ONCOHYBRID_DATABASE_URL"),
    ([], "exactly one of"),
    (["--patients", "A", "--all"], "exactly one of"),
    (["--patients", "A", "--retries", "-1"], "--retries"),
    (["--patients", "A", "--retries", "0"], "attempts of a task in all"),
    (["--patients", "A", "--workers", "-1"], "--workers"),
    (["--patients", "A", "--workers", "0", "--scheduler", "127.0.0.1:8786"], "--scheduler"),
    (["--all"], "no patient"),
    (["--cohort", "lymphoma"], "--cohort"),
])
def test_invalid_input_exits_2_with_the_reason_and_nothing_on_stdout(args, reason, monkeypatch):
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["batch", "assess", *args, "--json"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert reason in result.stderr


def test_quantify_reports_a_patient_without_pet_instead_of_dropping_it(cohort_dir, monkeypatch):
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    data, ids = cohort_dir
    ingest(data / ids[1] / "TP1" / "CT")  # this patient has a CT but no PET stored
    result = runner.invoke(app, ["batch", "quantify", "--patients",
                                 f"{ids[1]},NO-SUCH-PATIENT", "--workers", "0",
                                 "--retries", "3", "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["summary"] == {"done": 0, "failed": 2, "skipped": 0}
    ct_only, unknown = doc["tasks"]
    # reported with the reason, not dropped; nothing to retry (no attempt was possible)
    assert (ct_only["patient_id"], ct_only["status"], ct_only["attempts"]) == (ids[1], "failed", 0)
    assert "no PET series stored (modalities: CT)" in ct_only["error"]
    assert ct_only["unit"] == ids[1] and ct_only["result"] is None
    assert unknown["status"] == "failed" and "not in the study database" in unknown["error"]


def test_retries_k_is_the_number_of_attempts_in_all(cohort_dir, monkeypatch):
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    for k in (1, 4):
        result = runner.invoke(app, ["batch", "assess", "--patients", "NO-SUCH-PATIENT",
                                     "--workers", "0", "--retries", str(k), "--json"])
        assert result.exit_code == 1, result.output
        (task,) = json.loads(result.stdout)["tasks"]
        assert (task["status"], task["attempts"]) == ("failed", k)
