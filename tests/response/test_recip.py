"""RECIP 1.0 (Gafita JNM 2022) — categories and traps (criteria.md §9.2, §13)."""

from __future__ import annotations

import datetime as dt

import pytest

from oncohybrid.response.parse import load_case
from oncohybrid.response.recip import assess


def tp(day: int, ttv=None, new=False, **kw) -> dict:
    out = {"date": (dt.date(2024, 1, 1) + dt.timedelta(days=day)).isoformat(), **kw}
    if ttv is not None:
        out["ttv_ml"] = ttv
    if new:
        out["lesions"] = [{"id": "N1", "role": "new"}]
    return out


def cat(base_ttv, fu_ttv, new=False, **kw) -> str:
    data = {"criteria": "recip", "timepoints": [tp(0, base_ttv), tp(84, fu_ttv, new, **kw)]}
    return assess(load_case(data)).timepoints[1].overall


@pytest.mark.parametrize(
    ("fu", "new", "expected"),
    [
        (0, False, "CR"),  # no PSMA uptake anywhere
        (70, False, "PR"),  # exactly −30 %, inclusive
        (70.1, False, "SD"),
        (50, True, "SD"),  # ≥ 30 % fall but new lesion → SD
        (120, True, "PD"),  # exactly +20 % and new lesion, inclusive
        (119.9, True, "SD"),  # new lesion alone is not PD
        (200, False, "SD"),  # TTV growth alone is not PD
        (100, False, "SD"),
    ],
)
def test_recip_categories(fu, new, expected):
    """RECIP 1.0: PD needs TTV ≥ +20 % AND new lesions; PR ≥ −30 % and no new lesion."""
    assert cat(100, fu, new) == expected


def test_float_trap_exact_minus_30pct():
    """§1.2: (23.1 − 33.0)/33.0 is −29.999… in floats; exactly −30 % must be PR."""
    assert cat(33.0, 23.1) == "PR"
    assert cat(41.5, 49.8, new=True) == "PD"  # exactly +20 %


def test_missing_ttv_or_not_comparable_is_ne():
    assert cat(100, None) == "NE"
    assert cat(100, 50, comparable=False) == "NE"


def test_new_lesion_flag_and_trace_numbers():
    data = {"criteria": "recip", "timepoints": [
        tp(0, 100, segmentation="qPSMA 1.0"),
        tp(84, 150, new_lesions=True, segmentation="other")]}
    res = assess(load_case(data))
    t = res.timepoints[1]
    assert t.overall == "PD"
    assert t.numbers["change_pct"] == 50
    assert t.trace[0].startswith("PD: TTV 150 ml is +50% from baseline 100 ml")
    assert res.best_overall_response is None
    assert any("segmentation" in w for w in res.warnings)
