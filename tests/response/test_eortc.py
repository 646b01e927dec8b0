"""EORTC 1999 PET criteria (Young, Eur J Cancer 1999) — vector E-01 (criteria.md §14.6)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from oncohybrid.response.eortc import assess
from oncohybrid.response.parse import load_case


def tp(day: int, lesions: dict[str, object], **kw) -> dict:
    out = []
    for lid, v in lesions.items():
        entry = {"id": lid, "role": "new" if lid.startswith("N") else "target"}
        entry.update(v if isinstance(v, dict) else {"suv_max": v})
        out.append(entry)
    return {"date": (dt.date(2024, 1, 1) + dt.timedelta(days=day)).isoformat(),
            "lesions": out, **kw}


def cat(*tps, options=None) -> str:
    data = {"criteria": "eortc", "timepoints": list(tps), "options": options or {}}
    return assess(load_case(data)).timepoints[-1].overall


@pytest.mark.parametrize(
    ("suv", "cycles", "expected"),
    [
        ("6.6", 1, "PMR"),  # E-01: −17.5 % after 1 cycle (≥ 15 %)
        ("6.4", 3, "SMD"),  # E-01: −20 % after 3 cycles (needs > 25 %)
        ("10.1", 3, "PMD"),  # E-01: +26.3 %
        ("9.9", 3, "SMD"),  # E-01: +23.8 %
    ],
)
def test_e01_eortc_vectors(suv, cycles, expected):
    """E-01: baseline SUV 8.0; cycle-dependent PMR; PMD > +25 %."""
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": Decimal(suv)}, cycles=cycles)) == expected


def test_boundaries_exact():
    """−15 % after 1 cycle is PMR (≥); −25 % after 2 cycles is SMD (needs >); +25 % is SMD."""
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": 6.8}, cycles=1)) == "PMR"
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": 6.81}, cycles=1)) == "SMD"
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": 6.0}, cycles=2)) == "SMD"
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": 5.99}, cycles=2)) == "PMR"
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": 10.0}, cycles=2)) == "SMD"
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": 10.01}, cycles=2)) == "PMD"


def test_extent_increase_over_20pct_longest_dimension_is_pmd():
    b = {"A": {"suv_max": 8.0, "ld_mm": 20}}
    assert cat(tp(0, b), tp(30, {"A": {"suv_max": 8.0, "ld_mm": 24.1}}, cycles=2)) == "PMD"
    assert cat(tp(0, b), tp(30, {"A": {"suv_max": 8.0, "ld_mm": 24}}, cycles=2)) == "SMD"


def test_new_fdg_avid_metastasis_is_pmd():
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": 4.0, "N1": 5.0}, cycles=2)) == "PMD"


def test_cmr_when_uptake_resolved():
    assert cat(tp(0, {"A": 8.0}), tp(30, {"A": "absent"}, cycles=2)) == "CMR"


def test_missing_cycles_warns_and_uses_strict_threshold():
    data = {"criteria": "eortc", "timepoints": [tp(0, {"A": 8.0}), tp(30, {"A": 6.6})]}
    res = assess(load_case(data))
    assert res.timepoints[1].overall == "SMD"
    assert any("cycles" in w for w in res.warnings)


def test_sum_over_baseline_lesions_and_missing_value():
    """Default aggregate: sum over baseline lesions; missing → NE unless PMD is proven."""
    b = tp(0, {"A": 4.0, "B": 4.0})
    assert cat(b, tp(30, {"A": 3.0, "B": 2.9}, cycles=2)) == "PMR"  # 5.9 vs 8: −26 %
    assert cat(b, tp(30, {"A": 3.0, "B": "not_evaluable"}, cycles=2)) == "NE"
    assert cat(b, tp(30, {"A": 10.5, "B": "not_evaluable"}, cycles=2)) == "PMD"


def test_bor_and_numbers():
    data = {"criteria": "eortc", "timepoints": [
        tp(0, {"A": 8.0}), tp(30, {"A": 6.6}, cycles=1), tp(90, {"A": 11.0}, cycles=3)]}
    res = assess(load_case(data))
    assert [t.overall for t in res.timepoints] == ["baseline", "PMR", "PMD"]
    assert res.best_overall_response == "PMR"
    assert res.timepoints[1].numbers["change_pct"] == Decimal("-17.5")
    assert "after 1 cycle" in res.timepoints[1].trace[-1]


def test_sulpeak_used_when_no_suvmax_given():
    """E-01 with SULpeak values only: the metric falls back to ``sul_peak``."""
    b = tp(0, {"A": {"sul_peak": 8.0}})
    assert cat(b, tp(30, {"A": {"sul_peak": 6.6}}, cycles=1)) == "PMR"
