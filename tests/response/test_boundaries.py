"""Inclusive/exclusive limits at exact equality, one per rule (issue #12 item 19 audit).

Each row puts a follow-up exactly on a published limit and states the category the primary
paper's wording gives (docs/criteria-reference.md and docs/criteria-nuclear.md, "Boundary
audit"). Numbers go through ``load_case`` as JSON text so they stay exact decimals.
"""

from __future__ import annotations

import json

import pytest

from oncohybrid.response import assess_case, load_case


def _overall(criteria: str, base: list[dict], fu: list[dict], base_tp=None, fu_tp=None) -> str:
    data = {
        "criteria": criteria,
        "timepoints": [
            {"date": "2024-01-05", "lesions": base, **(base_tp or {})},
            {"date": "2024-03-05", "lesions": fu, **(fu_tp or {})},
        ],
    }
    return assess_case(load_case(json.dumps(data))).timepoints[1].overall


def _t(lid: str, **kw) -> dict:
    return {"id": lid, "role": "target", **kw}


LIVER = {"references": {"liver_sul_mean": 2.0, "liver_sul_sd": 0.3}}

CASES = [
    # RECIST 1.1 (Eisenhauer 2009 §4.3.1): PR "at least 30 %" → 50 → 35 is PR.
    ("recist1.1 PR at -30 %", "recist1.1", [_t("L1", ld_mm=50)], [{"id": "L1", "ld_mm": 35}],
     None, None, "PR"),
    ("recist1.1 SD at -29.8 %", "recist1.1", [_t("L1", ld_mm=50)],
     [{"id": "L1", "ld_mm": 35.1}], None, None, "SD"),
    # PD "at least 20 %" and "at least 5 mm": 25 → 30 is both exactly.
    ("recist1.1 PD at +20 % and +5 mm", "recist1.1", [_t("L1", ld_mm=25)],
     [{"id": "L1", "ld_mm": 30}], None, None, "PD"),
    ("recist1.1 +20 % but +4 mm is SD", "recist1.1", [_t("L1", ld_mm=20)],
     [{"id": "L1", "ld_mm": 24}], None, None, "SD"),
    # Nodes: CR needs every target node < 10 mm; 10 mm is still pathological.
    ("recist1.1 node 10 mm is not CR", "recist1.1",
     [_t("N1", nodal=True, sa_mm=20)], [{"id": "N1", "sa_mm": 10}], None, None, "PR"),
    ("recist1.1 node 9.9 mm is CR", "recist1.1",
     [_t("N1", nodal=True, sa_mm=20)], [{"id": "N1", "sa_mm": 9.9}], None, None, "CR"),
    # mRECIST (Lencioni 2010): PD "at least 20 %", no 5 mm floor: 20 → 24 is PD.
    ("mrecist PD at +20 % without 5 mm", "mrecist",
     [_t("H1", ld_mm=30, viable_ld_mm=20)], [{"id": "H1", "ld_mm": 30, "viable_ld_mm": 24}],
     None, None, "PD"),
    # Choi 2007: size PR "≥ 10 %" decrease: 50 → 45.
    ("choi PR at -10 % size", "choi", [_t("G1", ld_mm=50, hu_mean=60)],
     [{"id": "G1", "ld_mm": 45, "hu_mean": 60}], None, None, "PR"),
    # Density PR "≥ 15 %" decrease: HU 60 → 51.
    ("choi PR at -15 % HU", "choi", [_t("G1", ld_mm=50, hu_mean=60)],
     [{"id": "G1", "ld_mm": 50, "hu_mean": 51}], None, None, "PR"),
    ("choi PD at +10 % size", "choi", [_t("G1", ld_mm=50, hu_mean=60)],
     [{"id": "G1", "ld_mm": 55, "hu_mean": 60}], None, None, "PD"),
    # EORTC 1999 (Young): PMD "greater than 25 %": exactly +25 % is not PMD.
    ("eortc +25 % is SMD", "eortc", [_t("E1", suv_max=8)], [{"id": "E1", "suv_max": 10}],
     None, {"cycles": 2}, "SMD"),
    ("eortc +25.1 % is PMD", "eortc", [_t("E1", suv_max=10)],
     [{"id": "E1", "suv_max": 12.51}], None, {"cycles": 2}, "PMD"),
    # PMR after 1 cycle: "a minimum of 15 %": exactly -15 % is PMR.
    ("eortc -15 % after 1 cycle is PMR", "eortc", [_t("E1", suv_max=10)],
     [{"id": "E1", "suv_max": 8.5}], None, {"cycles": 1}, "PMR"),
    # PMR after > 1 cycle: "greater than 25 %": exactly -25 % is not PMR.
    ("eortc -25 % after 2 cycles is SMD", "eortc", [_t("E1", suv_max=10)],
     [{"id": "E1", "suv_max": 7.5}], None, {"cycles": 2}, "SMD"),
    # PERCIST (Wahl 2009): PMR "minimum 30 %" and "at least 0.8 SUL"; PMD "> 30 %", "> 0.8".
    ("percist PMR at -30 % and -3 SUL", "percist", [_t("A", sul_peak=10)],
     [{"id": "A", "sul_peak": 7}], LIVER, LIVER, "PMR"),
    ("percist +30 % is not PMD", "percist", [_t("A", sul_peak=10)],
     [{"id": "A", "sul_peak": 13}], LIVER, LIVER, "SMD"),
    ("percist CMR needs less than liver", "percist", [_t("A", sul_peak=10)],
     [{"id": "A", "sul_peak": 2.0}], LIVER, LIVER, "PMR"),
]


@pytest.mark.parametrize(
    ("name", "criteria", "base", "fu", "base_tp", "fu_tp", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_limit_at_equality(name, criteria, base, fu, base_tp, fu_tp, expected):
    assert _overall(criteria, base, fu, base_tp, fu_tp) == expected, name
