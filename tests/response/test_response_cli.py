"""``oncohybrid respond``: output formats; invalid input → specific error, exit 2, no stdout."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

CASE = {
    "criteria": "recist1.1",
    "options": {"confirmation": False, "min_sd_days": 42},
    "treatment_start": "2024-01-10",
    "timepoints": [
        {
            "date": "2024-01-05",
            "lesions": [
                {"id": "L1", "role": "target", "site": "liver", "nodal": False, "ld_mm": 32},
                {"id": "N1", "role": "target", "site": "lymph node", "nodal": True, "sa_mm": 18},
                {"id": "B1", "role": "non-target", "site": "bone", "state": "present"},
            ],
        },
        {
            "date": "2024-03-04",
            "lesions": [
                {"id": "L1", "ld_mm": "too_small"},
                {"id": "N1", "sa_mm": 9},
                {"id": "B1", "state": "present"},
                {"id": "X1", "role": "new", "site": "lung", "state": "unequivocal"},
            ],
        },
    ],
}


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))
    return CliRunner()


def write(tmp_path: Path, data, name="case.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def squash(text: str) -> str:
    return " ".join(text.split())


def test_json_output_contract(runner, tmp_path):
    result = runner.invoke(app, ["respond", str(write(tmp_path, CASE)), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["criteria"] == "recist1.1"
    fu = out["timepoints"][1]
    # L1 too small = 5 mm, N1 9 mm: sum 14 (−72%), target PR, but a new lesion → PD
    assert (fu["overall"], fu["target"], fu["non_target"], fu["new_lesions"]) == (
        "PD",
        "PR",
        "NON-CR/NON-PD",
        "Yes",
    )
    assert fu["sum_mm"] == 14 and fu["baseline_sum_mm"] == 50 and fu["nadir_sum_mm"] == 50
    assert fu["change_from_baseline_pct"] == -72
    assert any("PD: unequivocal new lesion(s) X1" in line for line in fu["trace"])
    assert out["best_overall_response"] == "PD"
    assert isinstance(out["warnings"], list)


def test_criteria_option_overrides_file(runner, tmp_path):
    result = runner.invoke(
        app, ["respond", str(write(tmp_path, CASE)), "--criteria", "irecist", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["criteria"] == "irecist"
    assert out["timepoints"][1]["overall"] == "iUPD"


def test_human_output_has_table_and_trace(runner, tmp_path):
    result = runner.invoke(app, ["respond", str(write(tmp_path, CASE))])
    assert result.exit_code == 0, result.stderr
    text = squash(result.stdout)
    assert "Best overall response: PD" in text
    assert "PD: unequivocal new lesion(s) X1" in text


def _bad(fn):
    data = copy.deepcopy(CASE)
    fn(data)
    return data


INVALID = [
    (
        "wrong-type",
        _bad(lambda d: d["timepoints"][1]["lesions"][1].update(sa_mm={"v": 9})),
        "timepoints[1].lesions[1].sa_mm: expected a number",
    ),
    (
        "unknown-lesion",
        _bad(lambda d: d["timepoints"][1]["lesions"][2].update(id="B7")),
        "timepoints[1].lesions[2].id: unknown lesion id 'B7'",
    ),
    (
        "dates-out-of-order",
        _bad(lambda d: d["timepoints"][1].update(date="2023-12-01")),
        "timepoints[1].date: dates out of order",
    ),
    ("missing-baseline", _bad(lambda d: d.update(timepoints=[])), "timepoints: no timepoints"),
    (
        "empty-baseline",
        _bad(
            lambda d: (
                d["timepoints"][0].update(lesions=[]),
                d["timepoints"][1].update(lesions=[{"id": "X1", "role": "new", "site": "lung"}]),
            )
        ),
        "timepoints[0].lesions: missing baseline",
    ),
    (
        "baseline-after-start",
        _bad(lambda d: d.update(treatment_start="2024-01-01")),
        "timepoints[0].date: missing baseline",
    ),
    (
        "negative-size",
        _bad(lambda d: d["timepoints"][1]["lesions"][0].update(ld_mm=-3)),
        "timepoints[1].lesions[0].ld_mm: negative length -3",
    ),
    (
        "unknown-criteria",
        _bad(lambda d: d.update(criteria="who")),
        "criteria: unknown criteria 'who'",
    ),
    ("bad-json", '{"criteria": "recist1.1",\n "timepoints": [}', "invalid JSON at line 2, column"),
]


@pytest.mark.parametrize(("name", "data", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_input_exit_2_empty_stdout(runner, tmp_path, name, data, message):
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["respond", str(write(tmp_path, data)), *extra])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert message in squash(result.stderr), result.stderr


def test_unknown_criteria_on_command_line(runner, tmp_path):
    result = runner.invoke(app, ["respond", str(write(tmp_path, CASE)), "--criteria", "bogus"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "criteria: unknown criteria 'bogus'" in squash(result.stderr)


def test_console_script_subprocess(tmp_path):
    """The installed entry point: exit 2, nothing on stdout, the path on stderr."""
    exe = Path(sys.executable).with_name("oncohybrid")
    bad = write(tmp_path, _bad(lambda d: d["timepoints"][1]["lesions"][0].update(ld_mm=-3)))
    proc = subprocess.run(
        [str(exe), "respond", str(bad), "--json"],
        capture_output=True,
        text=True,
        env={"ONCOHYBRID_HOME": str(tmp_path), "PATH": ""},
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "timepoints[1].lesions[0].ld_mm: negative length -3" in squash(proc.stderr)
    ok = subprocess.run(
        [str(exe), "respond", str(write(tmp_path, CASE, "ok.json")), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"ONCOHYBRID_HOME": str(tmp_path), "PATH": ""},
    )
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["best_overall_response"] == "PD"
