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
    # a task that always fails: reported after 1 + K attempts, with the reason
    assert (bad["patient_id"], bad["status"], bad["attempts"]) == ("NO-SUCH-PATIENT", "failed", 3)
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
    assert (bad2["status"], bad2["attempts"]) == ("failed", 3)


@pytest.mark.parametrize(("args", "reason"), [
    (["--patients", "A", "--workers", "2"], "ONCOHYBRID_DATABASE_URL"),
    (["--patients", "A", "--scheduler", "tcp://127.0.0.1:1"], "ONCOHYBRID_DATABASE_URL"),
    ([], "exactly one of"),
    (["--patients", "A", "--all"], "exactly one of"),
    (["--patients", "A", "--retries", "-1"], "--retries"),
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
