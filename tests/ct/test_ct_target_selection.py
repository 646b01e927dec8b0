"""Baseline target proposals: RECIST 1.1 §2.2–2.3, PERCIST §6.3–6.4, Lugano CT §8.3."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oncohybrid.errors import InputError
from oncohybrid.response.selection import Candidate, ProposedRole, propose_targets

T, NT, NR = ProposedRole.TARGET, ProposedRole.NON_TARGET, ProposedRole.NOT_RECORDED


def roles(sel):
    return {p.id: p.role for p in sel.proposals}


def test_recist_measurability_thresholds_are_inclusive_and_exact():
    sel = propose_targets([
        Candidate("ld10", "lung", ld_mm=10.0),
        Candidate("ld9.9", "liver", ld_mm=9.9),
        Candidate("sa15", "hilum", nodal=True, sa_mm=15.0, ld_mm=22),
        Candidate("sa14.9", "axilla", nodal=True, sa_mm=14.9),
        Candidate("sa10", "groin", nodal=True, sa_mm=10),
        Candidate("sa9.9", "neck", nodal=True, sa_mm=9.9),
    ], "recist1.1")
    assert roles(sel) == {"ld10": T, "ld9.9": NT, "sa15": T, "sa14.9": NT, "sa10": NT,
                          "sa9.9": NR}
    assert "short axis 9.9 mm < 10 mm is normal" in sel.proposals[5].reasons[0]


def test_recist_thick_slices_need_twice_the_slice_thickness():
    cands = [Candidate("a", "lung", ld_mm=12), Candidate("b", "liver", ld_mm=14)]
    sel = propose_targets(cands, "recist1.1", slice_thickness_mm=7)
    assert roles(sel) == {"a": NT, "b": T}
    assert "14 mm (2 × slice thickness 7 mm)" in sel.proposals[0].reasons[0]


def test_recist_lymph_nodes_are_one_organ_and_at_most_two_per_organ_five_total():
    cands = [
        Candidate("N1", "mediastinum", nodal=True, sa_mm=30),
        Candidate("N2", "axilla", nodal=True, sa_mm=25),
        Candidate("N3", "retroperitoneum", nodal=True, sa_mm=20),
        Candidate("H1", "liver", ld_mm=50), Candidate("H2", "liver", ld_mm=40),
        Candidate("H3", "liver", ld_mm=35),
        Candidate("P1", "lung", ld_mm=18), Candidate("A1", "adrenal", ld_mm=15),
    ]
    sel = propose_targets(cands, "recist1.1")
    # One per organ first (liver 50, nodes 30, lung 18, adrenal 15), then the next largest.
    assert sel.targets == ["H1", "N1", "P1", "A1", "H2"]
    r = roles(sel)
    assert [r[k] for k in ("N2", "N3", "H3")] == [NT, NT, NT]
    why = {p.id: " ".join(p.reasons) for p in sel.proposals}
    assert "5 targets are already chosen" in why["N2"]
    assert "organ 'liver' already has 2 larger targets" in why["H3"]
    assert sum(1 for t in sel.targets if t.startswith("N")) <= 2


def test_recist_not_measurable_and_not_reproducible_lesions_are_not_targets():
    sel = propose_targets([
        Candidate("B1", "bone", ld_mm=40, measurable=False, note="blastic"),
        Candidate("L1", "liver", ld_mm=30, reproducible=False),
        Candidate("L2", "liver", ld_mm=20),
    ], "recist1.1")
    assert sel.targets == ["L2"]
    assert "blastic" in sel.proposals[0].reasons[0]


def test_percist_hottest_is_primary_and_sum_takes_five_with_two_per_organ():
    cands = [
        Candidate("a", "liver", sul_peak=9.0), Candidate("b", "liver", sul_peak=8.0),
        Candidate("c", "liver", sul_peak=7.5), Candidate("d", "lung", sul_peak=6.0),
        Candidate("e", "bone", sul_peak=5.0), Candidate("f", "bone", sul_peak=4.0),
        Candidate("g", "spleen", sul_peak=3.7), Candidate("h", "node", sul_peak=3.59),
    ]
    sel = propose_targets(cands, "percist", liver_sul_mean=2.0, liver_sul_sd=0.3)
    assert sel.targets == ["a", "b", "d", "e", "f"]
    assert [p.id for p in sel.proposals if p.primary] == ["a"]
    r = roles(sel)
    assert r["c"] == NT and r["g"] == NT and r["h"] == NT
    # Threshold 1.5 × 2.0 + 2 × 0.3 = 3.6 exactly: 3.6 is measurable, 3.59 is not.
    sel2 = propose_targets([Candidate("x", "liver", sul_peak=Decimal("3.6"))], "percist",
                           liver_sul_mean="2.0", liver_sul_sd="0.3")
    assert sel2.targets == ["x"]
    assert "3.59 < measurability threshold" in sel.proposals[7].reasons[0]


def test_percist_needs_a_reference():
    with pytest.raises(InputError, match="PERCIST"):
        propose_targets([Candidate("a", "liver", sul_peak=5)], "percist")
    sel = propose_targets([Candidate("a", "liver", sul_peak=5)], "percist",
                          blood_pool_sul_mean=1.5, blood_pool_sul_sd=0.5)
    assert sel.targets == ["a"]  # 2.0 × 1.5 + 2 × 0.5 = 4.0


def test_lugano_strict_size_rules_and_six_largest_regions_first():
    cands = [
        Candidate("n15", "neck", nodal=True, ld_mm=15),  # not > 15
        Candidate("e10", "lung", ld_mm=10),  # not > 10
        Candidate("e10.1", "lung", ld_mm=10.1),
    ] + [Candidate(f"m{i}", "mediastinum", nodal=True, ld_mm=60 - i) for i in range(5)] + [
        Candidate("r1", "retroperitoneum", nodal=True, ld_mm=20),
        Candidate("a1", "axilla", nodal=True, ld_mm=16),
    ]
    sel = propose_targets(cands, "lugano-ct")
    r = roles(sel)
    assert r["n15"] == NT and r["e10"] == NT
    assert len(sel.targets) == 6
    # Regions represented first: mediastinum, retroperitoneum, axilla, lung, then largest.
    assert sel.targets[:4] == ["m0", "r1", "a1", "e10.1"]
    assert sel.targets[4:] == ["m1", "m2"]
    assert r["m3"] == NT and "6 targets are already chosen" in " ".join(
        next(p for p in sel.proposals if p.id == "m3").reasons)


def test_invalid_input_names_the_field():
    with pytest.raises(InputError, match=r"candidates\[0\].sa_mm"):
        propose_targets([Candidate("n", "neck", nodal=True)], "recist1.1")
    with pytest.raises(InputError, match="criterion"):
        propose_targets([], "who")
    with pytest.raises(InputError, match="duplicate"):
        propose_targets([Candidate("a", "x", ld_mm=1), Candidate("a", "y", ld_mm=2)], "recist")
    with pytest.raises(InputError, match=r"candidates\[0\].ld_mm"):
        propose_targets([Candidate("a", "x", ld_mm=-3)], "recist1.1")
