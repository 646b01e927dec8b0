"""LYRIC (Cheson, Blood 2016) — vector Y-01 (criteria.md §14.7) and IR resolution."""

from __future__ import annotations

import datetime as dt

from oncohybrid.response.lyric import assess
from oncohybrid.response.parse import load_case

START = dt.date(2024, 1, 1)


def tp(day: int, lesions: list[dict], **kw) -> dict:
    return {"date": (START + dt.timedelta(days=day)).isoformat(), "lesions": lesions, **kw}


def node(lid: str, ldi, sdi, role: str | None = None, **kw) -> dict:
    out = {"id": lid, "ldi_mm": ldi, "sdi_mm": sdi, "nodal": True, **kw}
    if role:
        out["role"] = role
    return out


def run(*tps):
    data = {"criteria": "lyric", "treatment_start": START.isoformat(), "timepoints": list(tps)}
    return assess(load_case(data))


BASE = tp(0, [node("A", 30, 20, "target"), node("B", 30, 20, "target")])  # SPD 1200 mm²


def test_y01_spd_plus_124pct_at_week3_clinically_stable_is_ir1():
    """Y-01 (LYRIC Fig. 3): SPD +124 % at week 3, patient clinically stable → IR1, not PD."""
    # A: 30×20 → 58×36 (2088); B unchanged 600 → SPD 2688 = +124 % over 1200.
    res = run(BASE, tp(21, [node("A", 58, 36), node("B", 30, 20)]))
    t = res.timepoints[1]
    assert t.numbers["change_from_nadir_pct"] == 124
    assert t.overall == "IR1"
    assert t.numbers["underlying"] == "PD"


def test_ir1_after_week_12_or_with_deterioration_is_pd():
    fu = [node("A", 58, 36), node("B", 30, 20)]
    assert run(BASE, tp(90, fu)).timepoints[1].overall == "PD"
    assert run(BASE, tp(21, fu, clinical_deterioration=True)).timepoints[1].overall == "PD"


def test_y01_week20_spd_plus20_and_new_node_is_ir2():
    """Y-01: week 20, SPD +20 % vs nadir and a new 1.8 cm node → IR2."""
    # Nadir at week 8: 20×15 twice = 600; week 20: 20×18 twice = 720 (+20 %) + new 18 mm node.
    res = run(BASE, tp(56, [node("A", 20, 15), node("B", 20, 15)]),
              tp(140, [node("A", 20, 18), node("B", 20, 18), node("N", 18, 12, "new")]))
    t = res.timepoints[2]
    assert t.numbers["change_from_nadir_pct"] == 20
    assert t.overall == "IR2"


def test_y01_uptake_score_4_to_5_unchanged_size_is_ir3():
    """Y-01: Deauville 4 → 5 with unchanged size → IR3."""
    b = tp(0, [node("A", 30, 20, "target", deauville=4)])
    f = tp(60, [node("A", 30, 20, deauville=5)])
    res = run(b, f)
    assert res.timepoints[1].overall == "IR3"
    assert res.timepoints[1].numbers["underlying"] == "PD"


def test_ir1_confirmed_by_further_10pct_spd_rise_dated_to_ir():
    """LYRIC [V]: IR1 becomes PD on a further ≥ 10 % SPD rise over the IR SPD
    (2688 → ≥ 2956.8); the PD is dated to the IR timepoint."""
    ir = tp(21, [node("A", 58, 36), node("B", 30, 20)])  # SPD 2688
    # 60×25 + 600 = 2100: below the IR SPD, lesion A still PD vs its nadir → IR1 continues.
    res = run(BASE, ir, tp(63, [node("A", 60, 25), node("B", 30, 20)]))
    assert [t.overall for t in res.timepoints] == ["baseline", "IR1", "IR1"]
    res = run(BASE, ir, tp(63, [node("A", 60, 38), node("B", 30, 20)]))  # 2880: +7 %
    assert res.timepoints[2].overall == "IR1"
    res = run(BASE, ir, tp(63, [node("A", 64, 40), node("B", 30, 20)]))  # 3160 ≥ 2956.8
    assert res.timepoints[2].overall == "PD"
    assert res.timepoints[2].numbers["progression_date"].isoformat() == ir["date"]
    assert res.best_overall_response == "PD"


def test_ir_resolves_when_lugano_no_longer_pd():
    res = run(BASE, tp(21, [node("A", 58, 36), node("B", 30, 20)]),
              tp(63, [node("A", 20, 10), node("B", 20, 10)]))
    assert [t.overall for t in res.timepoints] == ["baseline", "IR1", "PR"]
    assert res.best_overall_response == "PR"
