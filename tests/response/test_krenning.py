"""Krenning score (Kwekkeboom/Krenning) — vector K-01 (criteria.md §14.8)."""

from __future__ import annotations

import datetime as dt

import pytest

from oncohybrid.errors import InputError
from oncohybrid.response.krenning import assess
from oncohybrid.response.parse import load_case

REFS = {"liver_suv_max": 8.0, "spleen_suv_max": 20.0}


def run(lesions: list[dict], refs=None, options=None):
    data = {"criteria": "krenning", "options": options or {}, "timepoints": [
        {"date": dt.date(2024, 1, 1).isoformat(), "references": refs or REFS,
         "lesions": lesions}]}
    return assess(load_case(data)).timepoints[0]


@pytest.mark.parametrize(
    ("suv", "grade"),
    [(4.0, 1), (8.0, 2), (7.5, 2), (12.0, 3), (25.0, 4), ("absent", 0)],
)
def test_k01_grade_from_uptake_vs_liver_and_spleen(suv, grade):
    """K-01: below liver → 1; ≈ liver → 2; above liver below spleen → 3; above spleen → 4."""
    res = run([{"id": "A", "role": "target", "suv_max": suv}])
    assert res.numbers["lesion_scores"] == {"A": grade}
    assert res.overall == str(grade)


def test_k01_prrt_cutoff_3_only_grades_3_and_4_eligible():
    """K-01: with a PRRT cut-off of ≥ 3 only grades 3–4 are eligible; the cut-off is an option."""
    assert run([{"id": "A", "role": "target", "suv_max": 8.0}]).numbers["prrt_eligible"] is False
    assert run([{"id": "A", "role": "target", "suv_max": 12.0}]).numbers["prrt_eligible"] is True
    two = run([{"id": "A", "role": "target", "suv_max": 8.0}], options={"krenning_prrt_cutoff": 2})
    assert two.numbers["prrt_eligible"] is True


def test_patient_score_is_maximum_and_visual_wins():
    res = run([{"id": "A", "role": "target", "suv_max": 4.0},
               {"id": "B", "role": "target", "suv_max": 4.0, "krenning": 4}])
    assert res.numbers["lesion_scores"] == {"A": 1, "B": 4}
    assert res.overall == "4"


def test_kidney_fallback_and_bad_visual_grade():
    res = run([{"id": "A", "role": "target", "suv_max": 15.0}],
              refs={"liver_suv_max": 8.0, "kidney_suv_max": 12.0})
    assert res.overall == "4"
    with pytest.raises(InputError, match="krenning"):
        run([{"id": "A", "role": "target", "krenning": 7}])
