"""The BI-RADS outcome audit on the hand-built data set of audit_data.py: every expected
number below is counted by hand from the row list in that module's docstring."""

from __future__ import annotations

import json
import math

import pytest
from audit_data import EXAMS, OUTCOMES
from typer.testing import CliRunner

from oncohybrid.breast.audit import audit, read_exams, read_outcomes
from oncohybrid.cli.main import app


def _run():
    exams, bad_e = read_exams(EXAMS)
    outcomes, bad_o = read_outcomes(OUTCOMES)
    return audit(exams, outcomes, bad_e + bad_o, by="radiologist")


def test_each_exam_is_judged_on_its_own_with_a_flat_365_day_window():
    verdicts = {e.exam_id: v for e, v in _run().judged}
    assert verdicts == {
        "E1": "FN",  # cancer exactly 365 days after: inside the window
        "E2": "TP", "E3": "TP",  # two exams before one cancer: both true positive
        "E4": "FP",  # category 3 at screening is positive
        "E5": "TN",  # cancer 366 days after: outside
        "E6": "TN",  # category 3 at diagnostic is negative
        "E13": "TP",  # same day
        "E14": "FP",  # 4B, benign
        "E15": "TN", "E17": "FP",  # cancer the day before the exam does not follow it
        "E18": "TN",
    }


def test_bad_rows_are_reported_by_data_row_number_and_the_audit_goes_on():
    r = _run()
    assert [b.row for b in r.bad_rows if b.file == "exams"] == [9, 10, 11, 12, 16]
    assert [b.row for b in r.bad_rows if b.file == "outcomes"] == [8, 9]
    reasons = {b.row: b.reason for b in r.bad_rows if b.file == "exams"}
    assert "modality" in reasons[9] and "date" in reasons[10]
    assert "assessment" in reasons[11] and "biopsy_recommended" in reasons[12]
    assert "purpose" in reasons[16]
    assert r.left_out == {"category 6": 1, "diagnostic category 0": 1,
                          "bad exam rows": 5, "bad outcome rows": 2}


def _cli(tmp_path, *extra):
    (tmp_path / "exams.csv").write_text(EXAMS)
    (tmp_path / "outcomes.csv").write_text(OUTCOMES)
    return CliRunner().invoke(app, ["breast", "audit", str(tmp_path / "exams.csv"),
                                    "--outcomes", str(tmp_path / "outcomes.csv"), *extra,
                                    "--json"])


def test_cli_audit_numbers_counted_by_hand(tmp_path):
    res = _cli(tmp_path)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    s, d = out["screening"], out["diagnostic"]
    # screens: E1 E2 E4 E5 E15 E17 E18 = 7; positive E2 E4 E17 = 3; TP E2; FN E1;
    # TN E5 E15 E18; FP E4 E17
    assert s["exams"] == 7
    assert s["recall_rate"] == pytest.approx(3 / 7)
    assert s["cdr_per_1000"] == pytest.approx(1000 / 7)
    assert s["ppv1"] == pytest.approx(1 / 3)
    assert s["sensitivity"] == pytest.approx(1 / 2)
    assert s["specificity"] == pytest.approx(3 / 5)
    # diagnostic: E3 E6 E13 E14 = 4; positive E3 E13 E14; TP E3 E13; TN E6; FP E14
    assert d["exams"] == 4
    assert d["abnormal_interpretation_rate"] == pytest.approx(3 / 4)
    assert d["sensitivity"] == pytest.approx(1.0)
    assert d["specificity"] == pytest.approx(1 / 2)
    # PPV2: biopsy recommended E3 (cancer), E13 (cancer), E14 (benign)
    assert d["ppv2"] == pytest.approx(2 / 3)
    # PPV3: valid outcome rows with a biopsy: rows 1-6, malignant rows 1-4
    assert d["ppv3"] == pytest.approx(4 / 6)
    assert out["bad_rows"] == [9, 10, 11, 12, 16]
    assert out["bad_outcome_rows"] == [8, 9]
    assert out["groups"] == {}
    # minimal cancers: screening TP E2 -> DCIS (minimal) 1/1; diagnostic TP E3 -> DCIS,
    # E13 -> invasive 12 mm: 1/2; node-negative invasive: diagnostic 1/1, screening none
    assert s["minimal_cancer_fraction"] == pytest.approx(1.0)
    assert d["minimal_cancer_fraction"] == pytest.approx(1 / 2)
    assert d["node_negative_invasive_fraction"] == pytest.approx(1.0)
    assert s["node_negative_invasive_fraction"] is None
    assert s["counts"] == {"positive": 3, "tp": 1, "fp": 2, "fn": 1, "tn": 3,
                           "cancers": 1, "minimal_cancers": 1,
                           "node_negative_invasive": 0, "invasive_nodes_known": 0}


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    # Wilson 1927, written out independently of oncohybrid.stats
    p = k / n
    c = (2 * n * p + z * z) / (2 * (n + z * z))
    h = z * math.sqrt(z * z + 4 * n * p * (1 - p)) / (2 * (n + z * z))
    return c - h, c + h


def test_cli_audit_has_wilson_cis_and_cited_benchmarks(tmp_path):
    out = json.loads(_cli(tmp_path).stdout)
    s, d = out["screening"], out["diagnostic"]
    assert s["ci95"]["recall_rate"] == pytest.approx(list(_wilson(3, 7)))
    lo, hi = _wilson(1, 7)
    assert s["ci95"]["cdr_per_1000"] == pytest.approx([1000 * lo, 1000 * hi])
    assert d["ci95"]["ppv3"] == pytest.approx(list(_wilson(4, 6)))
    assert s["ci95"]["sensitivity"] == pytest.approx(list(_wilson(1, 2)))
    b = s["benchmarks"]["recall_rate"]
    assert b["range"] == [0.05, 0.12] and "Radiology 2010" in b["source"]
    assert b["within_range"] is False  # 3/7 = 43 %
    assert "Radiology 2017" in d["benchmarks"]["ppv2"]["bcsc_source"]
    assert s["benchmarks"]["cdr_per_1000"]["within_range"] is True  # 142.9 >= 2.5
    # BCSC means as published (Lehman 2017, Sprague 2017 abstracts)
    assert s["benchmarks"]["ppv1"]["bcsc"] == 0.044 and d["benchmarks"]["sensitivity"]["bcsc"] \
        == 0.878
    assert d["benchmarks"]["minimal_cancer_fraction"]["within_range"] is None  # no range


def test_cli_audit_by_radiologist(tmp_path):
    out = json.loads(_cli(tmp_path, "--by", "radiologist").stdout)
    a, b = out["groups"]["drA"], out["groups"]["drB"]
    # drA screens E1 (FN) E2 (TP) E5 (TN) E17 (FP); diagnostic E14 (FP)
    assert a["screening"]["exams"] == 4
    assert a["screening"]["recall_rate"] == pytest.approx(2 / 4)
    assert a["screening"]["cdr_per_1000"] == pytest.approx(250.0)
    assert a["screening"]["ppv1"] == pytest.approx(1 / 2)
    assert a["screening"]["sensitivity"] == pytest.approx(1 / 2)
    assert a["screening"]["specificity"] == pytest.approx(1 / 2)
    assert a["diagnostic"]["exams"] == 1
    assert a["diagnostic"]["sensitivity"] is None
    assert a["diagnostic"]["specificity"] == 0.0
    assert a["diagnostic"]["ppv2"] == 0.0
    # drA's biopsies: P1 (E1, 365 d before), P2 (E2), P13 (E14); not P4 (366 d)
    assert a["diagnostic"]["ppv3"] == pytest.approx(2 / 3)
    # drB screens E4 (FP) E15 (TN) E18 (TN); diagnostic E3 (TP) E6 (TN) E13 (TP)
    assert b["screening"]["exams"] == 3
    assert b["screening"]["recall_rate"] == pytest.approx(1 / 3)
    assert b["screening"]["cdr_per_1000"] == 0.0
    assert b["screening"]["ppv1"] == 0.0
    assert b["screening"]["sensitivity"] is None
    assert b["screening"]["specificity"] == pytest.approx(2 / 3)
    assert b["diagnostic"]["abnormal_interpretation_rate"] == pytest.approx(2 / 3)
    assert b["diagnostic"]["ppv2"] == pytest.approx(1.0)
    assert b["diagnostic"]["ppv3"] == pytest.approx(2 / 3)  # P2 DCIS, P12 invasive, P3 high-risk


def test_cli_audit_by_modality_and_the_dm_dbt_cem_comparison(tmp_path):
    out = json.loads(_cli(tmp_path, "--by", "modality").stdout)
    g = out["groups"]
    assert sorted(g) == ["CEM", "DBT", "MG", "MRI", "US"]
    # MG screens: E1 (FN) E4 (FP) E15 (TN) E17 (FP) E18 (TN)
    assert g["MG"]["screening"]["exams"] == 5
    assert g["MG"]["screening"]["recall_rate"] == pytest.approx(2 / 5)
    assert g["DBT"]["screening"]["cdr_per_1000"] == pytest.approx(1000.0)
    cmp = out["modality_comparison"]["screening"]
    assert [row["modality"] for row in cmp["modalities"]] == ["MG", "DBT", "CEM"]
    assert [row["exams"] for row in cmp["modalities"]] == [5, 1, 1]


def test_cli_audit_invalid_input_exits_2_with_nothing_on_stdout(tmp_path):
    (tmp_path / "exams.csv").write_text("exam_id,patient_id,date\nE1,P1,2024-01-01\n")
    (tmp_path / "outcomes.csv").write_text(OUTCOMES)
    res = CliRunner().invoke(app, ["breast", "audit", str(tmp_path / "exams.csv"),
                                   "--outcomes", str(tmp_path / "outcomes.csv"), "--json"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert "radiologist" in res.stderr
    res = CliRunner().invoke(app, ["breast", "audit", str(tmp_path / "nope.csv"),
                                   "--outcomes", str(tmp_path / "outcomes.csv"), "--json"])
    assert res.exit_code == 2 and res.stdout == "" and "nope.csv" in res.stderr
    res = _cli(tmp_path, "--by", "hospital")
    assert res.exit_code == 2 and res.stdout == ""


def test_funnel_plots_per_radiologist(tmp_path):
    res = _cli(tmp_path, "--by", "radiologist", "--plots", str(tmp_path / "plots"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["funnel_cdr.png", "funnel_ppv1.png",
                                      "funnel_recall_rate.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert sorted(out["plots"]) == sorted(str(p) for p in pngs)


def test_semicolon_separated_windows_1252_export_is_read(tmp_path):
    # a French spreadsheet export: ";" separators, an accented reader name in cp1252
    exams = EXAMS.replace(",", ";").replace("drA", "Dr Hélène").encode("cp1252")
    (tmp_path / "exams.csv").write_bytes(exams)
    (tmp_path / "outcomes.csv").write_text(OUTCOMES)
    res = CliRunner().invoke(app, ["breast", "audit", str(tmp_path / "exams.csv"), "--outcomes",
                                   str(tmp_path / "outcomes.csv"), "--by", "radiologist",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["screening"]["exams"] == 7
    assert out["groups"]["Dr Hélène"]["screening"]["exams"] == 4
