"""REDCap logic, calculations and data dictionaries (pure, no database)."""

from __future__ import annotations

import io
import math

import pytest

from oncohybrid.errors import InputError
from oncohybrid.research import logic, redcap

HEADER = ",".join(f'"{c}"' for c in redcap.COLUMNS)


def _dict(*rows: str) -> redcap.DataDictionary:
    return redcap.parse_dictionary("\n".join((HEADER, *rows)) + "\n")


DD = _dict(
    "record_id,baseline,,text,Record ID,,,,,,,,,,,,,",
    "mrn,baseline,,text,MRN,,,,,,y,,,,,,,",
    'tumour,baseline,,radio,Tumour,"1, Lymphoma | 2, Lung | 3, Other",,,,,,,y,,,,,',
    "tumour_other,baseline,,text,Other,,,,,,,[tumour] = '3',y,,,,,",
    "weight,baseline,,text,Weight,,,number,30,250,,,,,,,,",
    "height,baseline,,text,Height,,,integer,100,230,,,,,,,,",
    'bmi,baseline,,calc,BMI,"round([weight]/(([height]/100)^2),1)",,,,,,,,,,,,',
    "dx,baseline,,text,Diagnosis,,,date_ymd,2000-01-01,,,,,,,,,",
    'meds,baseline,,checkbox,Meds,"1, A | 2, B",,,,,,,,,,,,',
    "why_b,baseline,,notes,Why B,,,,,,,[meds(2)] = '1',,,,,,",
    "suv,imaging,,text,SUVmax,,,number,,,,,,,,,,@IMAGING=suvmax_max",
)


def test_comparisons_are_numeric_when_both_sides_are_numbers():
    assert logic.is_true("[a] > 9", {"a": "10"})  # 10 > 9, not '10' < '9'
    assert logic.is_true("[a] = '10.0'", {"a": "10"})
    assert not logic.is_true("[a] > 9", {"a": ""})  # blank compares false
    assert logic.is_true("[a] = ''", {"a": ""})
    assert logic.is_true("[a] <> 'x' and not ([b] = 'y')", {"a": "z", "b": "q"})


def test_checkbox_event_prefix_and_functions():
    v = {"meds___2": "1", "d1": "2024-01-01", "d2": "2024-03-01"}
    assert logic.is_true("[meds(2)] = '1' and [meds(1)] = '0'", v)
    assert logic.is_true("[baseline_arm_1][meds(2)] = '1'", v)
    assert logic.evaluate('datediff([d1], [d2], "d")', v) == 60.0
    assert logic.evaluate('datediff([d2], [d1], "d", "ymd", true)', v) == -60.0
    assert logic.evaluate("if([x] > 1, 'hi', 'lo')", {"x": "2"}) == "hi"
    assert logic.evaluate("sum([a], [b], [c])", {"a": "1", "b": "", "c": "2.5"}) == 3.5
    assert logic.evaluate("[a] + [b]", {"a": "1", "b": ""}) == ""  # REDCap: blank


def test_evaluator_refuses_code_and_today():
    for bad in ("__import__('os')", "[a] ; 1", "exec([a])", "[a] = "):
        with pytest.raises(InputError):
            logic.parse(bad)
    with pytest.raises(InputError, match="today"):
        logic.evaluate('datediff([d], "today", "d")', {"d": "2024-01-01"})


def test_bmi_calculation_matches_an_independent_computation():
    got = DD.check_form("baseline", {"weight": "81.3", "height": "178"}).values["bmi"]
    assert float(got) == round(81.3 / 1.78 ** 2, 1) == 25.7


def test_validation_ranges_choices_and_dates():
    check = DD.check_form("baseline", {"weight": "20", "height": "17.5", "tumour": "9",
                                       "dx": "1999-12-31"})
    assert set(check.errors) == {"weight", "height", "tumour", "dx"}
    assert "below the minimum 30" in check.errors["weight"]
    assert "whole number" in check.errors["height"]


def test_branching_hides_and_clears_then_required_applies():
    c = DD.check_form("baseline", {"tumour": "1", "tumour_other": "typed anyway"})
    assert c.values["tumour_other"] == "" and "tumour_other" in c.hidden
    assert c.missing_required == []
    c = DD.check_form("baseline", {"tumour": "3"})
    assert c.missing_required == ["tumour_other"]
    c = DD.check_form("baseline", {"meds": ["1"], "why_b": "text"})
    assert "why_b" in c.hidden and c.values["meds"] == "1"


def test_dictionary_round_trip_keeps_every_cell():
    buf = io.StringIO()
    redcap.write_dictionary(DD, buf)
    again = redcap.parse_dictionary(buf.getvalue())
    assert [f.row() for f in again.fields] == [f.row() for f in DD.fields]
    assert DD.forms == ["baseline", "imaging"]
    assert DD.get("mrn").identifier and DD.get("why_b").free_text
    assert DD.get("suv").imaging_source == "suvmax_max" and not DD.get("suv").entered
    assert DD.columns(["baseline"])[-3:] == ["meds___1", "meds___2", "why_b"]


@pytest.mark.parametrize("row, message", [
    ("x,f,,banana,X,,,,,,,,,,,,,", "unknown type"),
    ("Bad Name,f,,text,X,,,,,,,,,,,,,", "field name"),
    ("x,f,,radio,X,,,,,,,,,,,,,", "no choices"),
    ("x,f,,text,X,,,,,,,[nope] = '1',,,,,,", "unknown field"),
    ("x,f,,text,X,,,,,,,,,,,,,@IMAGING=colour", "unknown @IMAGING"),
    ("x,f,,text,X,,,zipcodes,,,,,,,,,,", "unknown validation"),
])
def test_bad_dictionaries_name_the_row_and_problem(row, message):
    with pytest.raises(InputError, match=message):
        _dict("record_id,f,,text,ID,,,,,,,,,,,,,", row)


def test_not_a_dictionary():
    with pytest.raises(InputError, match="not a REDCap data dictionary"):
        redcap.parse_dictionary("a,b\n1,2\n")


def test_format_calc():
    assert logic.format_calc(3.0) == "3" and logic.format_calc(math.nan) == ""
