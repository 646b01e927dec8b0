"""mRECIST (HCC) vectors: criteria.md §14.4 M-03 and §4 rules (no 5 mm floor, viable LD)."""

from __future__ import annotations

import datetime as dt

from oncohybrid.response import assess_case, load_case

D0 = dt.date(2024, 1, 1)


def case(timepoints, **options):
    return {
        "criteria": "mrecist",
        "options": options,
        "timepoints": [
            {"date": str(D0 + dt.timedelta(days=56 * i)), "lesions": les}
            for i, les in enumerate(timepoints)
        ],
    }


def hcc(viable, extra=None):
    tps = [
        [{"id": "H1", "role": "target", "site": "liver", "ld_mm": 50, "viable_ld_mm": viable[0]}]
    ]
    tps += [[{"id": "H1", "ld_mm": 50, "viable_ld_mm": v}] for v in viable[1:]]
    for i, les in (extra or {}).items():
        tps[i] = tps[i] + les
    return case(tps)


def overall(data):
    return [t.overall for t in assess_case(load_case(data)).timepoints[1:]]


def test_viable_diameter_is_measured_not_total_diameter():
    """Total LD unchanged at 50 mm, viable 40 → 20 (−50%) → PR (Lencioni 2010)."""
    a = assess_case(load_case(hcc([40, 20])))
    assert a.timepoints[1].overall == "PR"
    assert a.timepoints[1].numbers["sum_mm"] == 20


def test_no_5_mm_floor_in_mrecist_pd():
    """Viable 20 → 10 → 12: +20% but only +2 mm: PD in mRECIST (no floor), PR in RECIST 1.1."""
    assert overall(hcc([20, 10, 12])) == ["PR", "PD"]
    data = hcc([20, 10, 12])
    data["criteria"] = "recist1.1"
    for tp in data["timepoints"]:
        tp["lesions"][0]["ld_mm"] = tp["lesions"][0].pop("viable_ld_mm")
    assert overall(data) == ["PR", "PR"]


def test_no_arterial_enhancement_is_cr_and_nt_ir_sd_label():
    data = case(
        [
            [
                {"id": "H1", "role": "target", "site": "liver", "viable_ld_mm": 30},
                {"id": "P1", "role": "non-target", "site": "portal vein", "state": "present"},
            ],
            [{"id": "H1", "viable_ld_mm": 0}, {"id": "P1", "state": "present"}],
        ]
    )
    tp = assess_case(load_case(data)).timepoints[1]
    assert (tp.target, tp.non_target, tp.overall) == ("CR", "IR/SD", "PR")


def test_M03a_new_porta_hepatis_node_18mm_is_not_pd():
    """M-03a: new porta hepatis node SA 18 mm is not malignant in cirrhosis (needs ≥ 20)."""
    node = {"id": "N1", "role": "new", "site": "porta hepatis", "nodal": True, "sa_mm": 18}
    assert overall(hcc([40, 40], {1: [node]})) == ["SD"]
    node20 = dict(node, sa_mm=20)
    assert overall(hcc([40, 40], {1: [node20]})) == ["PD"]


def test_M03b_new_ascites_without_cytology_is_not_pd():
    """M-03b: new ascites without cytology is not PD; with positive cytology it is."""
    asc = {"id": "A1", "role": "new", "site": "ascites", "state": "unequivocal"}
    assert overall(hcc([40, 40], {1: [asc]})) == ["SD"]
    assert overall(hcc([40, 40], {1: [dict(asc, cytology="positive")]})) == ["PD"]


def test_M03c_equivocal_nodule_confirmed_as_typical_hcc_dates_pd_to_first_appearance():
    """M-03c: new 8 mm enhancing nodule without washout is equivocal; next scan a typical
    ≥ 10 mm HCC → PD dated to the first appearance [V]."""
    data = hcc(
        [40, 40, 40],
        {
            1: [{"id": "X1", "role": "new", "site": "liver", "ld_mm": 8, "hcc_typical": False}],
            2: [{"id": "X1", "ld_mm": 12, "hcc_typical": True}],
        },
    )
    a = assess_case(load_case(data))
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "PD"]
    assert a.extra["progression_date"] == a.timepoints[1].date


def test_atypical_nodule_counts_once_grown_10mm():
    data = hcc(
        [40, 40, 40, 40],
        {
            1: [{"id": "X1", "role": "new", "site": "liver", "ld_mm": 12, "hcc_typical": False}],
            2: [{"id": "X1", "ld_mm": 18, "hcc_typical": False}],
            3: [{"id": "X1", "ld_mm": 22, "hcc_typical": False}],
        },
    )
    assert overall(data) == ["SD", "SD", "PD"]


def test_M03d_no_late_arterial_phase_is_ne():
    """M-03d: a follow-up CT without a late-arterial phase cannot be assessed → NE."""
    data = hcc([40, 20])
    data["timepoints"][1]["arterial_phase"] = False
    assert overall(data) == ["NE"]
