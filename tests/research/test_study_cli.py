"""The ``oncohybrid study`` command-line contract (exit codes, JSON, stdout/stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

DATA = Path(__file__).parent / "data"


@pytest.fixture()
def run(rws, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(rws.settings.home))
    runner = CliRunner()

    def go(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input)

    return go


def test_study_cli_end_to_end(run, rws, tmp_path):
    r = run("study", "create", "cli1", "--title", "CLI study", "--protocol",
            str(DATA / "protocol.yaml"), "--ethics-number", "EC-9", "--ethics-date",
            "2024-02-01", "--investigator", "pia:pi", "--dag", "north", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["study"] == "cli1" and doc["ethics"]["number"] == "EC-9"
    r = run("study", "cohort", "cli1", "pet", "--include", "PET: [modality(pt)] = '1'",
            "--exclude", "old: [age] > 200", "--figure", str(tmp_path / "f.png"), "--json")
    assert r.exit_code == 0, r.output
    flow = json.loads(r.stdout)["flow"]
    assert (flow["assessed"], flow["included"]) == (3, 3)
    assert (tmp_path / "f.png").stat().st_size > 0
    r = run("study", "crf", "import", "cli1", str(DATA / "dictionary.csv"), "--repeat",
            "imaging=timepoint", "--json")
    assert r.exit_code == 0, r.output
    data = tmp_path / "data.csv"
    data.write_text("record_id,tumour_type,weight,height,prior_tx___2,demographics_complete\n"
                    "1,1,80,180,1,2\n2,2,60,160,0,0\n")
    r = run("study", "crf", "import", "cli1", str(data), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["forms_saved"] == 2
    r = run("study", "crf", "lock", "cli1", "1", "demographics", "--user", "pia",
            "--password-stdin", "--json", input="pia-strong-pass-42\n")
    assert r.exit_code == 0, r.output
    r = run("study", "schedule", "cli1", "--today", "2026-01-01", "--json")
    assert r.exit_code == 0
    sch = json.loads(r.stdout)
    assert len(sch["records"]) == 3 and set(sch["counts"]) == {"baseline", "interim",
                                                               "end of treatment"}
    r = run("study", "crf", "export", "cli1", "--out", str(tmp_path / "crf.csv"))
    assert r.exit_code == 0
    lines = (tmp_path / "crf.csv").read_text().splitlines()
    row1 = [x for x in lines if x.startswith("1,,,")][0]
    assert ",24.7," in row1  # BMI 80 / 1.8² = 24.69 → 24.7, calculated on import
    r = run("study", "export", "cli1", "--out", str(tmp_path / "exp"), "--format", "csv",
            "--deidentify", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["deidentified"] is True and res["patients"] == 3
    assert set(res["rows"]) == {"patients", "timepoints", "lesions", "measurements",
                                "responses", "crf"}
    assert {"data_dictionary.csv", "manifest.json", "crf.csv"} <= set(res["files"])


@pytest.mark.parametrize("args", [
    ("study", "export", "nosuch", "--out", "X"),
    ("study", "export", "cli1", "--out", "X", "--format", "xlsx"),
    ("study", "create", "k1", "--ethics-date", "yesterday"),
    ("study", "create", "k2", "--investigator", "pia:janitor"),
    ("study", "cohort", "cli1", "c", "--include", "[age] >>> 3"),
    ("study", "crf", "import", "cli1", "/nonexistent.csv"),
    ("study", "schedule", "cli1", "--today", "yesterday"),
])
def test_invalid_input_exits_2_with_nothing_on_stdout(run, args, tmp_path):
    args = tuple(str(tmp_path / "x") if a == "X" else a for a in args)
    r = run(*args, "--json")
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert "error:" in r.stderr


def test_a_title_given_as_the_key_gets_a_key_and_still_finds_the_study(run):
    r = run("study", "create", "Interim PET in lymphoma", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["study"] == "Interim-PET-in-lymphoma"
    assert doc["title"] == "Interim PET in lymphoma"
    r = run("study", "show", "Interim PET in lymphoma", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["study"] == "Interim-PET-in-lymphoma"


def test_export_as_a_researcher_is_deidentified_and_members_only(run, tmp_path):
    r = run("study", "create", "cli3", "--investigator", "pia:pi", "--json")
    assert r.exit_code == 0, r.output
    assert run("study", "cohort", "cli3", "all", "--include", "[n_exams] >= 1").exit_code == 0
    r = run("study", "export", "cli3", "--out", str(tmp_path / "a"), "--user", "rita",
            "--json")
    assert r.exit_code == 2 and r.stdout == "" and "no research study" in r.stderr
    assert run("study", "member", "cli3", "rita", "statistician").exit_code == 0
    r = run("study", "export", "cli3", "--out", str(tmp_path / "b"), "--user", "rita",
            "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["deidentified"] is True and doc["patients"] == 3
    header = (tmp_path / "b" / "patients.csv").read_text().splitlines()[0]
    assert "pseudonym" in header and "patient_id" not in header
