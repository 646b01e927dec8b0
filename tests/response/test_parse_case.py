"""``response.parse.load_case``: exact numbers, carry-forward, and errors naming the JSON path."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from oncohybrid.errors import InputError
from oncohybrid.response.model import Role, Special, State
from oncohybrid.response.parse import json_path, load_case, schema

EXAMPLE = {
    "criteria": "recist1.1",
    "options": {"confirmation": False, "min_sd_days": 42},
    "treatment_start": "2024-01-10",
    "timepoints": [
        {
            "date": "2024-01-05",
            "references": {
                "liver_sul_mean": 2.0,
                "liver_sul_sd": 0.3,
                "mediastinum_suv_max": 1.8,
                "liver_suv_max": 2.9,
            },
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


def test_issue_example_parses_and_carries_role_site_nodal_forward():
    case = load_case(copy.deepcopy(EXAMPLE))
    fu = case.timepoints[1].lesions
    assert fu["N1"].role is Role.TARGET and fu["N1"].nodal and fu["N1"].site == "lymph node"
    assert fu["L1"].ld_mm is Special.TOO_SMALL
    assert fu["X1"].role is Role.NEW and fu["X1"].state is State.UNEQUIVOCAL
    assert case.baseline.references["liver_sul_sd"] == Decimal("0.3")
    assert case.options["min_sd_days"] == 42
    assert case.criteria == "recist1.1"


def test_json_text_numbers_are_exact_decimals(tmp_path):
    text = json.dumps(EXAMPLE).replace('"ld_mm": 32', '"ld_mm": 49.8')
    case = load_case(text)
    assert case.baseline.lesions["L1"].ld_mm == Decimal("49.8")
    path = tmp_path / "case.json"
    path.write_text(text)
    assert load_case(path).baseline.lesions["L1"].ld_mm == Decimal("49.8")
    assert load_case(str(path)).baseline.lesions["L1"].ld_mm == Decimal("49.8")


def test_dict_floats_become_their_shortest_decimal():
    data = copy.deepcopy(EXAMPLE)
    data["timepoints"][0]["lesions"][0]["ld_mm"] = 41.5
    assert load_case(data).baseline.lesions["L1"].ld_mm == Decimal("41.5")


def test_criteria_argument_overrides_file():
    assert load_case(copy.deepcopy(EXAMPLE), criteria="iRECIST").criteria == "irecist"


def test_split_fragments_inherit_role_and_unknown_fields_warn():
    data = copy.deepcopy(EXAMPLE)
    data["timepoints"][1]["lesions"].append(
        {"id": "L1a", "split_from": "L1", "ld_mm": 3, "colour": "red"}
    )
    case = load_case(data)
    assert case.timepoints[1].lesions["L1a"].role is Role.TARGET
    assert case.warnings == ["timepoints[1].lesions[4].colour: unknown field ignored"]


def test_json_path_format():
    assert json_path(["timepoints", 2, "lesions", 0, "ld_mm"]) == "timepoints[2].lesions[0].ld_mm"


def _mutate(fn):
    data = copy.deepcopy(EXAMPLE)
    fn(data)
    return data


def _les(i, j):
    return lambda d: d["timepoints"][i]["lesions"][j]


ERRORS = [
    (
        "negative",
        lambda d: _les(1, 0)(d).update(ld_mm=-3),
        "timepoints[1].lesions[0].ld_mm: negative length -3",
    ),
    (
        "wrong-type",
        lambda d: _les(1, 1).__call__(d).update(sa_mm=[1]),
        "timepoints[1].lesions[1].sa_mm: expected a number or one of",
    ),
    (
        "bad-special",
        lambda d: _les(1, 0)(d).update(ld_mm="tiny"),
        'timepoints[1].lesions[0].ld_mm: a measurement is a number or one of "too_small"',
    ),
    (
        "bool-not-number",
        lambda d: _les(0, 0)(d).update(ld_mm=True),
        "timepoints[0].lesions[0].ld_mm: expected a number",
    ),
    (
        "unknown-id",
        lambda d: _les(1, 2)(d).update(id="B9"),
        "timepoints[1].lesions[2].id: unknown lesion id 'B9'",
    ),
    (
        "dates-out-of-order",
        lambda d: d["timepoints"][1].update(date="2024-01-01"),
        "timepoints[1].date: dates out of order",
    ),
    (
        "same-date",
        lambda d: d["timepoints"][1].update(date="2024-01-05"),
        "timepoints[1].date: dates out of order",
    ),
    (
        "bad-date-format",
        lambda d: d["timepoints"][0].update(date="05/01/2024"),
        "timepoints[0].date: bad date format, expected YYYY-MM-DD",
    ),
    (
        "impossible-date",
        lambda d: d["timepoints"][0].update(date="2024-02-30"),
        "timepoints[0].date: bad date '2024-02-30'",
    ),
    ("no-timepoints", lambda d: d.update(timepoints=[]), "timepoints: no timepoints"),
    (
        "baseline-after-start",
        lambda d: d.update(treatment_start="2023-12-01"),
        "timepoints[0].date: missing baseline",
    ),
    (
        "unknown-criteria",
        lambda d: d.update(criteria="recist2"),
        "criteria: unknown criteria 'recist2'",
    ),
    ("missing-criteria", lambda d: d.pop("criteria"), "criteria: missing"),
    (
        "deauville-range",
        lambda d: _les(0, 0)(d).update(deauville=6),
        "timepoints[0].lesions[0].deauville: deauville score out of range",
    ),
    (
        "deauville-string",
        lambda d: _les(0, 0)(d).update(deauville="x"),
        "timepoints[0].lesions[0].deauville: deauville score must be 1-5",
    ),
    (
        "duplicate-id",
        lambda d: d["timepoints"][1]["lesions"].append({"id": "L1"}),
        "timepoints[1].lesions[4].id: duplicate lesion id 'L1'",
    ),
    (
        "missing-id",
        lambda d: _les(1, 0)(d).pop("id"),
        "timepoints[1].lesions[0]: missing required field 'id'",
    ),
    (
        "bad-state",
        lambda d: _les(1, 2)(d).update(state="gone"),
        "timepoints[1].lesions[2].state: expected one of",
    ),
    (
        "bad-role",
        lambda d: _les(0, 2)(d).update(role="nontarget"),
        "timepoints[0].lesions[2].role: expected one of",
    ),
    (
        "role-change",
        lambda d: _les(1, 2)(d).update(role="target"),
        "timepoints[1].lesions[2].role: lesion 'B1' was 'non-target'",
    ),
    (
        "split-unknown",
        lambda d: d["timepoints"][1]["lesions"].append({"id": "Q", "split_from": "ZZ"}),
        "timepoints[1].lesions[4].split_from: unknown lesion id 'ZZ'",
    ),
    (
        "negative-reference",
        lambda d: d["timepoints"][0]["references"].update(liver_sul_mean=-1),
        "timepoints[0].references.liver_sul_mean: negative value -1",
    ),
    (
        "options-type",
        lambda d: d["options"].update(confirmation="yes"),
        "options.confirmation: expected true or false",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_invalid_input_names_json_path_and_problem(name, mutate, message):
    with pytest.raises(InputError) as info:
        load_case(_mutate(mutate))
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.exit_code == 2


def test_invalid_json_text_names_line_and_column():
    with pytest.raises(InputError, match=r"invalid JSON at line 2, column 3"):
        load_case('{"criteria": "recist1.1",\n  ,}')


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such case file"):
        load_case(tmp_path / "nope.json")


def test_schema_is_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())


def test_target_first_seen_at_follow_up_is_rejected_by_recist():
    from oncohybrid.response import assess_case

    data = _mutate(
        lambda d: d["timepoints"][1]["lesions"].append({"id": "T9", "role": "target", "ld_mm": 20})
    )
    with pytest.raises(
        InputError, match=r"timepoints\[1\]\.lesions\[4\]\.role: target lesion 'T9'"
    ):
        assess_case(load_case(data))


def test_target_without_baseline_measurement_is_rejected():
    from oncohybrid.response import assess_case

    data = _mutate(lambda d: _les(0, 0)(d).update(ld_mm="too_small"))
    with pytest.raises(
        InputError, match=r"timepoints\[0\]\.lesions\[0\]\.ld_mm: target lesion 'L1' needs"
    ):
        assess_case(load_case(data))
