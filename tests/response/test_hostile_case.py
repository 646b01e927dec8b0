"""Hostile case files (issue #12 item 6): exit 2 naming the JSON path, never a traceback.

Each case file below was observed to crash ``oncohybrid respond`` (exit 1, traceback) or to
print invalid JSON. The files are written as raw text because most of them are not what
``json.dumps`` would produce (NaN, Infinity, 1e400, 5,000 digits, 100k-deep nesting, a lone
surrogate escape).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.errors import InputError
from oncohybrid.response import assess_case, load_case

BASE = {
    "criteria": "recist1.1",
    "treatment_start": "2024-01-10",
    "options": {"min_sd_days": 42},
    "timepoints": [
        {"date": "2024-01-05", "lesions": [{"id": "L1", "role": "target", "ld_mm": 32}]},
        {"date": "2024-03-04", "lesions": [{"id": "L1", "ld_mm": 20}]},
    ],
}
TEXT = json.dumps(BASE)
FU = '"ld_mm": 20'
RECIP = json.dumps(
    {
        "criteria": "recip",
        "timepoints": [
            {"date": "2024-01-05", "ttv_ml": 100},
            {"date": "2024-03-04", "ttv_ml": 140},
        ],
    }
)

HOSTILE = [
    ("nan", TEXT.replace(FU, '"ld_mm": NaN'), "timepoints[1].lesions[0].ld_mm"),
    ("infinity", TEXT.replace(FU, '"ld_mm": Infinity'), "timepoints[1].lesions[0].ld_mm"),
    ("1e400", TEXT.replace(FU, '"ld_mm": 1e400'), "timepoints[1].lesions[0].ld_mm"),
    ("5000-digits", TEXT.replace(FU, '"ld_mm": ' + "9" * 5000), "timepoints[1].lesions[0].ld_mm"),
    (
        "min_sd_days-1e20",
        TEXT.replace('"min_sd_days": 42', '"min_sd_days": 1' + "0" * 20),
        "options.min_sd_days",
    ),
    (
        "min_sd_days-float-1e20",
        TEXT.replace('"min_sd_days": 42', '"min_sd_days": 1e20'),
        "options.min_sd_days",
    ),
    ("treatment_start-9999", TEXT.replace("2024-01-10", "9999-12-31"), "treatment_start"),
    (
        "deep-nesting",
        TEXT.replace('"options": {', '"options": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", "),
        "options.x[0][0]",
    ),
    (
        "lone-surrogate-id",
        TEXT.replace('"L1"', '"L\\ud800"'),
        "timepoints[0].lesions[0].id",
    ),
    ("recip-ttv-nan", RECIP.replace('"ttv_ml": 140', '"ttv_ml": NaN'), "timepoints[1].ttv_ml"),
    ("recip-ttv-nan-baseline", RECIP.replace('"ttv_ml": 100', '"ttv_ml": NaN'),
     "timepoints[0].ttv_ml"),
    ("negative-infinity", TEXT.replace(FU, '"ld_mm": -Infinity'), "timepoints[1].lesions[0].ld_mm"),
    ("tiny", TEXT.replace(FU, '"ld_mm": 1e-400'), "timepoints[1].lesions[0].ld_mm"),
    (
        "confirm_days-huge",
        TEXT.replace('"min_sd_days": 42', '"confirmation": true, "confirm_days": 999999999999'),
        "options.confirm_days",
    ),
    (
        "min_sd_days-within-number-range",
        TEXT.replace('"min_sd_days": 42', '"min_sd_days": 999999999'),
        "options.min_sd_days: must be ≤ 3650",
    ),
    (
        "irecist-window-huge",
        TEXT.replace("recist1.1", "irecist").replace(
            '"min_sd_days": 42', '"irecist_max_confirm_days": 99999999999999'
        ),
        "options.irecist_max_confirm_days",
    ),
    ("nan-in-options", TEXT.replace('"min_sd_days": 42', '"too_small_mm": NaN'),
     "options.too_small_mm"),
    ("surrogate-in-key", TEXT.replace('"min_sd_days"', '"\\udfff"'), "options"),
    ("surrogate-patient-id", TEXT.replace('{"criteria"', '{"patient_id": "\\ud83d", "criteria"'),
     "patient_id"),
]


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize(("name", "text", "where"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_case_exits_2_naming_the_json_path(runner, tmp_path, name, text, where):
    path = tmp_path / "case.json"
    path.write_text(text, encoding="utf-8")
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["respond", str(path), *extra])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{name}: {result.exception!r}"
        )
        assert result.exit_code == 2, (name, result.stdout, result.stderr)
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        assert f"error: {where}" in " ".join(result.stderr.split()), result.stderr


@pytest.mark.parametrize(("name", "text", "where"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_case_is_an_input_error_from_load_case(tmp_path, name, text, where):
    path = tmp_path / "case.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        assess_case(load_case(path))
    assert str(info.value).startswith(where), str(info.value)


def test_hostile_values_in_a_dict_case_name_the_path():
    """Callers that pass an already-parsed dict (services, web) get the same checks."""
    bad = json.loads(TEXT)
    bad["timepoints"][1]["lesions"][0]["ld_mm"] = math.nan
    with pytest.raises(InputError, match=r"^timepoints\[1\]\.lesions\[0\]\.ld_mm: "):
        load_case(bad)
    bad["timepoints"][1]["lesions"][0]["ld_mm"] = math.inf
    with pytest.raises(InputError, match=r"^timepoints\[1\]\.lesions\[0\]\.ld_mm: "):
        load_case(bad)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    bad["options"]["x"] = deep
    with pytest.raises(InputError, match=r"^options\.x\[0\]"):
        load_case(bad)


def _strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("criteria", ["recip", "percist", "eortc", "recist1.1"])
def test_json_output_is_strict_json_for_extreme_but_valid_numbers(runner, tmp_path, criteria):
    """The largest and smallest accepted values still give standard JSON (no NaN/Infinity)."""
    case = {
        "criteria": criteria,
        "timepoints": [
            {
                "date": "2024-01-05",
                "ttv_ml": 1e-9,
                "references": {"liver_sul_mean": 1e-9, "liver_sul_sd": 0},
                "lesions": [{"id": "L1", "role": "target", "ld_mm": 1e-9, "sul_peak": 1e-9,
                             "suv_max": 1e-9}],
            },
            {
                "date": "2024-03-04",
                "ttv_ml": 1e9,
                "references": {"liver_sul_mean": 1e9, "liver_sul_sd": 0},
                "lesions": [{"id": "L1", "ld_mm": 1e9, "sul_peak": 1e9, "suv_max": 1e9}],
            },
        ],
    }
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    result = runner.invoke(app, ["respond", str(path), "--json"])
    assert result.exit_code in (0, 2), (result.exception, result.stderr)
    if result.exit_code == 0:
        out = _strict_loads(result.stdout)
        assert out["criteria"] == criteria
    else:
        assert result.stdout == "" and "Traceback" not in result.stderr


def test_lone_surrogate_in_console_script(tmp_path):
    """The real entry point with a UTF-8 stdout: the surrogate is refused before printing."""
    import subprocess
    import sys

    path = tmp_path / "case.json"
    path.write_text(HOSTILE[8][1], encoding="utf-8")
    exe = Path(sys.executable).with_name("oncohybrid")
    proc = subprocess.run(
        [str(exe), "respond", str(path), "--json"],
        capture_output=True,
        env={"ONCOHYBRID_HOME": str(tmp_path), "PATH": "", "PYTHONIOENCODING": "utf-8"},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == b""
    assert b"timepoints[0].lesions[0].id" in proc.stderr


KRENNING = json.dumps({"criteria": "krenning", "options": {"krenning_prrt_cutoff": 3},
                       "timepoints": [{"date": "2024-01-05", "lesions": [
                           {"id": "S1", "role": "target", "krenning": 3}]}]})


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # Found by the fuzz test: int("d…") raised ValueError (exit 1); int(3.7) truncated.
        (KRENNING.replace('"krenning_prrt_cutoff": 3', '"krenning_prrt_cutoff": "x"'),
         "options.krenning_prrt_cutoff: expected an integer"),
        (KRENNING.replace('"krenning_prrt_cutoff": 3', '"krenning_prrt_cutoff": 3.7'),
         "options.krenning_prrt_cutoff: expected an integer"),
        # bool("false") is True: a string must not switch the option on silently.
        (KRENNING.replace('"krenning_prrt_cutoff": 3', '"lugano_score3_positive": "false"')
         .replace('"krenning"', '"lugano-pet"', 1),
         "options.lugano_score3_positive: expected true or false"),
    ],
)
def test_option_types_are_checked_by_the_schema(runner, tmp_path, text, where):
    path = tmp_path / "case.json"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["respond", str(path), "--json"])
    assert result.exit_code == 2, (result.exception, result.stdout)
    assert result.stdout == ""
    assert f"error: {where}" in " ".join(result.stderr.split()), result.stderr


def test_to_jsonable_never_emits_nan_or_infinity():
    """Belt and braces behind the parser: a non-finite number in a result becomes null."""
    from decimal import Decimal

    from oncohybrid.response.model import to_jsonable

    out = to_jsonable({"a": Decimal("NaN"), "b": float("inf"), "c": [Decimal("-Infinity")],
                       "d": Decimal("2.50")})
    assert out == {"a": None, "b": None, "c": [None], "d": 2.5}
    json.dumps(out, allow_nan=False)
