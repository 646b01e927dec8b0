"""RECIST 1.1 worked examples of criteria.md §14.1 and §16 traps (vector ids in test names)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from oncohybrid.response import assess_case, load_case
from oncohybrid.response.recist import best_response

D0 = dt.date(2024, 1, 1)


def case(timepoints, criteria="recist1.1", step=56, **options):
    """timepoints: list of lesion lists; lesions as dicts (role only needed at first sight)."""
    return {
        "criteria": criteria,
        "options": options,
        "treatment_start": str(D0),
        "timepoints": [
            {"date": str(D0 + dt.timedelta(days=step * i)), "lesions": les}
            for i, les in enumerate(timepoints)
        ],
    }


def one_target(sums, **kw):
    tps = [[{"id": "L1", "role": "target", "site": "liver", "ld_mm": sums[0]}]]
    tps += [[{"id": "L1", "ld_mm": s}] for s in sums[1:]]
    return case(tps, **kw)


def run(data):
    return assess_case(load_case(data))


def overall(data):
    return [t.overall for t in run(data).timepoints[1:]]


def test_R02_five_mm_absolute_floor():
    """R-02: 40 → 10 (PR) → 14 (+40% but +4 mm: PR, not PD) → 16 (+60%, +6 mm: PD)."""
    a = run(one_target([40, 10, 14, 16]))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "PR", "PD"]
    wk16 = a.timepoints[2]
    assert wk16.numbers["nadir_sum_mm"] == 10
    assert wk16.numbers["change_from_nadir_mm"] == 4
    assert "PD: sum 16 mm is +60% and +6 mm over nadir 10 mm" in a.timepoints[3].trace[0]


def test_R04_continued_pr_change_from_nadir_does_not_decide_pr():
    """R-04 (WG FAQ): 165 → 63 (−61.8%) → 65 (+3.2% vs nadir, −60.6% vs BL): PR, PR."""
    a = run(one_target([165, 63, 65]))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "PR"]
    pct = a.timepoints[2].numbers["change_from_baseline_pct"]
    assert round(pct, 1) == Decimal("-60.6")


@pytest.mark.parametrize(
    ("sticky", "expected"), [(True, ["PR"] * 5), (False, ["PR", "PR", "SD", "SD", "SD"])]
)
def test_R05_sticky_pr_policy_on_and_off(sticky, expected):
    """R-05: 100 → 70 → 70 → 80 → 80 → 80; FAQ sticky PR vs literal Table 1."""
    a = run(one_target([100, 70, 70, 80, 80, 80], sticky_pr=sticky))
    assert [t.overall for t in a.timepoints[1:]] == expected
    if sticky:
        assert a.timepoints[3].numbers["overall_literal"] == "SD"


def test_R05_sticky_pr_waits_for_confirmation_when_required():
    """Sticky PR starts only once PR is confirmed (≥ 28 days) when confirmation is on."""
    a = run(one_target([100, 70, 80, 80], step=14, confirmation=True))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "SD", "SD"]


def _two(l1, l2):
    return case(
        [
            [
                {"id": "L1", "role": "target", "site": "liver", "ld_mm": 25},
                {"id": "L2", "role": "target", "site": "lung", "ld_mm": 15},
            ],
            [{"id": "L1", "ld_mm": l1}, {"id": "L2", "ld_mm": l2}],
        ]
    )


@pytest.mark.parametrize(
    ("l1", "l2", "total", "expected"),
    [
        ("too_small", "absent", 5, "PR"),
        (3, "absent", 3, "PR"),
        (0, 0, 0, "CR"),
        ("absent", "absent", 0, "CR"),
    ],
)
def test_R08_too_small_absent_and_measured_below_5mm(l1, l2, total, expected):
    """R-08: too small counts 5 mm (PR, never CR); measured 3 mm stays 3; 0 + 0 is CR."""
    a = run(_two(l1, l2))
    assert a.timepoints[1].numbers["sum_mm"] == total
    assert a.timepoints[1].overall == expected


def test_R11_new_lesion_overrides_shrinking_target():
    """R-11: SoD −50% with an unequivocal new liver lesion is PD."""
    data = case(
        [
            [
                {"id": "L1", "role": "target", "ld_mm": 40},
                {"id": "B1", "role": "non-target", "state": "present"},
            ],
            [
                {"id": "L1", "ld_mm": 20},
                {"id": "B1", "state": "present"},
                {"id": "X1", "role": "new", "site": "liver", "state": "unequivocal"},
            ],
        ]
    )
    tp = run(data).timepoints[1]
    assert (tp.target, tp.non_target, tp.new_lesions, tp.overall) == (
        "PR",
        "NON-CR/NON-PD",
        "Yes",
        "PD",
    )


@pytest.mark.parametrize("nt_state", ["present", "not_evaluable"])
def test_R12_target_cr_with_non_target_present_or_not_evaluated_is_pr(nt_state):
    """R-12 (Table 1): target CR + NT non-CR/non-PD → PR; + NT not evaluated → PR."""
    data = case(
        [
            [
                {"id": "L1", "role": "target", "ld_mm": 30},
                {"id": "B1", "role": "non-target", "state": "present"},
            ],
            [{"id": "L1", "ld_mm": "absent"}, {"id": "B1", "state": nt_state}],
        ]
    )
    tp = run(data).timepoints[1]
    assert tp.target == "CR"
    assert tp.overall == "PR"


def test_R14_split_lesion_sums_fragments():
    """R-14 split: L1 30 splits into 12 + 8 (=20), L2 20 → 18; SoD 38 (−24%) → SD."""
    data = case(
        [
            [
                {"id": "L1", "role": "target", "site": "liver", "ld_mm": 30},
                {"id": "L2", "role": "target", "site": "lung", "ld_mm": 20},
            ],
            [
                {"id": "L1a", "split_from": "L1", "ld_mm": 12},
                {"id": "L1b", "split_from": "L1", "ld_mm": 8},
                {"id": "L2", "ld_mm": 18},
            ],
        ]
    )
    tp = run(data).timepoints[1]
    assert tp.numbers["target_mm"] == {"L1": 20, "L2": 18}
    assert tp.numbers["sum_mm"] == 38
    assert tp.overall == "SD"


def test_R14_coalesced_lesions_record_zero_for_the_merged_one():
    """R-14 coalesced: L1 15 + L2 12 merge into 30 recorded on L1; L2 = 0; +11% → SD."""
    data = case(
        [
            [
                {"id": "L1", "role": "target", "site": "liver", "ld_mm": 15},
                {"id": "L2", "role": "target", "site": "liver", "ld_mm": 12},
            ],
            [{"id": "L1", "ld_mm": 30}, {"id": "L2", "merged_into": "L1"}],
        ]
    )
    tp = run(data).timepoints[1]
    assert tp.numbers["target_mm"] == {"L1": 30, "L2": 0}
    assert tp.overall == "SD"


def test_R14_merged_lesion_stays_zero_when_no_longer_listed():
    """Lineage, not counts: L2 merged into L1 at wk8 and is omitted at wk16 → still 0."""
    data = case(
        [
            [
                {"id": "L1", "role": "target", "site": "liver", "ld_mm": 15},
                {"id": "L2", "role": "target", "site": "liver", "ld_mm": 12},
            ],
            [{"id": "L1", "ld_mm": 30}, {"id": "L2", "merged_into": "L1"}],
            [{"id": "L1", "ld_mm": 31}],
        ]
    )
    a = run(data)
    assert a.timepoints[2].numbers["target_mm"] == {"L1": 31, "L2": 0}
    assert a.timepoints[2].overall == "SD"


def _nt_only(p1_state, **extra):
    return case(
        [
            [
                {"id": "P1", "role": "non-target", "site": "pleura", "state": "present"},
                {"id": "E1", "role": "non-target", "site": "pleural effusion", "state": "present"},
            ],
            [{"id": "P1", "state": p1_state}, {"id": "E1", **extra}],
        ]
    )


def test_R15_non_target_only_disease():
    """R-15 (Table 2): persisting NT → NON-CR/NON-PD; all gone → CR; effusion with cytology → PD."""
    assert overall(_nt_only("present", state="present")) == ["NON-CR/NON-PD"]
    data = _nt_only("absent", state="absent")
    data["timepoints"][1]["markers_normal"] = True
    assert overall(data) == ["CR"]
    grown = _nt_only("present", state="unequivocal_progression", cytology="positive")
    assert overall(grown) == ["PD"]


def test_R15_effusion_without_cytology_is_not_pd_and_markers_block_cr():
    assert overall(_nt_only("present", state="unequivocal_progression")) == ["NON-CR/NON-PD"]
    data = _nt_only("absent", state="absent")
    data["timepoints"][1]["markers_normal"] = False
    assert overall(data) == ["NON-CR/NON-PD"]


def _pet(baseline_pet, follow):
    data = case(
        [[{"id": "L1", "role": "target", "ld_mm": 30}]]
        + [[{"id": "L1", "ld_mm": 30}, *f] for f in follow]
    )
    data["timepoints"][0]["pet_done"] = baseline_pet
    return data


def test_R17_pet_positive_new_focus_with_negative_baseline_pet_is_pd():
    """R-17a: baseline PET negative, new focus > 2× surroundings → PD without CT correlate."""
    data = _pet(True, [[{"id": "P1", "role": "new", "pet_positive": True}]])
    assert overall(data) == ["PD"]


def test_R17_pet_focus_without_baseline_pet_needs_ct_and_dates_pd_to_pet():
    """R-17b: no baseline PET: not PD until CT confirms; then PD dated to the PET."""
    data = _pet(
        False,
        [
            [{"id": "P1", "role": "new", "pet_positive": True}],
            [{"id": "P1", "pet_positive": True, "ct_correlate": True}],
        ],
    )
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "PD"]
    assert a.extra["progression_date"] == a.timepoints[1].date


def test_R17_pet_focus_on_known_non_growing_lesion_is_not_pd():
    """R-17c: PET uptake in a known lesion that is not growing on CT is not PD."""
    data = case(
        [
            [
                {"id": "L1", "role": "target", "ld_mm": 30},
                {"id": "B1", "role": "non-target", "state": "present"},
            ],
            [{"id": "L1", "ld_mm": 30}, {"id": "B1", "state": "present", "pet_positive": True}],
        ]
    )
    assert overall(data) == ["SD"]


# --- §16 traps ---------------------------------------------------------------------


def test_trap1_pd_is_checked_before_pr_against_nadir():
    """100 → 50 → 65: −35% vs baseline but +30% / +15 mm over nadir 50 → PD, not PR."""
    assert overall(one_target([100, 50, 65])) == ["PR", "PD"]


def test_trap3_node_cr_with_non_zero_sum():
    """Node SA 20 → 8 and the liver target gone: sum 8 mm, target CR."""
    data = case(
        [
            [
                {"id": "N1", "role": "target", "nodal": True, "site": "lymph node", "sa_mm": 20},
                {"id": "L1", "role": "target", "site": "liver", "ld_mm": 20},
            ],
            [{"id": "N1", "sa_mm": 8}, {"id": "L1", "ld_mm": 0}],
        ]
    )
    tp = run(data).timepoints[1]
    assert tp.numbers["sum_mm"] == 8
    assert (tp.target, tp.overall) == ("CR", "CR")
    data["timepoints"][1]["lesions"][0]["sa_mm"] = 10
    assert run(data).timepoints[1].target == "PR"


def test_trap4_exact_plus_20_percent_is_pd_despite_float_error():
    """(49.8−41.5)/41.5 is 19.999…% in binary floats; exactly +20% and +8.3 mm must be PD."""
    assert (49.8 - 41.5) / 41.5 * 100 < 20  # the float trap this guards against
    assert overall(one_target([41.5, 41.5, 49.8])) == ["SD", "PD"]


def test_trap4_exact_minus_30_percent_is_pr():
    """(23.1−33.0)/33.0 is −29.999…% in floats; exactly −30% is PR (inclusive)."""
    assert overall(one_target([33.0, 23.1])) == ["PR"]
    assert overall(one_target([33.0, 23.2])) == ["SD"]


def test_trap4_sum_of_decimals_is_exact():
    """12.1 + 10.2 + 7.7 = 30.0 exactly (29.999… in floats): 42.9 → 30.0 is −30.07% → PR."""
    tps = [
        [
            {"id": f"L{i}", "role": "target", "site": f"o{i}", "ld_mm": v}
            for i, v in enumerate([17.3, 14.6, 11])
        ],
        [{"id": f"L{i}", "ld_mm": v} for i, v in enumerate([12.1, 10.2, 7.7])],
    ]
    tp = run(case(tps)).timepoints[1]
    assert tp.numbers["sum_mm"] == Decimal("30.0")
    assert tp.overall == "PR"


def test_trap5_partial_sum_proves_pd_paper_example():
    """§2.9 / RECIST 1.1 §4.4.2: baseline 50 mm over 3 targets; only 2 measured = 80 → PD."""
    tps = [
        [
            {"id": f"L{i}", "role": "target", "site": f"o{i}", "ld_mm": v}
            for i, v in enumerate([20, 15, 15])
        ],
        [
            {"id": "L0", "ld_mm": 45},
            {"id": "L1", "ld_mm": 35},
            {"id": "L2", "ld_mm": "not_evaluable"},
        ],
    ]
    tp = run(case(tps)).timepoints[1]
    assert tp.overall == "PD"
    assert tp.numbers["partial_sum_mm"] == 80


def test_trap5_partial_sum_is_ne_and_never_becomes_nadir():
    """A lesion not evaluated → NE; the partial sum (10) must not become the nadir."""
    tps = [
        [
            {"id": "L0", "role": "target", "site": "a", "ld_mm": 30},
            {"id": "L1", "role": "target", "site": "b", "ld_mm": 30},
        ],
        [{"id": "L0", "ld_mm": 10}],  # L1 missing: not evaluated
        [{"id": "L0", "ld_mm": 20}, {"id": "L1", "ld_mm": 30}],
    ]
    a = run(case(tps))
    assert [t.overall for t in a.timepoints[1:]] == ["NE", "SD"]
    assert a.timepoints[2].numbers["nadir_sum_mm"] == 60


def test_trap13_reappearance_after_unconfirmed_cr_raises_a_query():
    """CR (single scan) then lesion back at 4 mm: not automatically PD (WG FAQ)."""
    a = run(one_target([30, 0, 4]))
    assert [t.overall for t in a.timepoints[1:]] == ["CR", "PR"]
    assert any("query" in w for w in a.warnings)


def test_trap13_reappearance_after_confirmed_cr_is_pd():
    a = run(one_target([30, 0, 0, 4], step=35))
    assert [t.overall for t in a.timepoints[1:]] == ["CR", "CR", "PD"]


@pytest.mark.parametrize(
    ("policy", "expected"), [("pd", ["CR", "PD"]), ("ne", ["CR", "NE"]), ("pr", ["PR", "PR"])]
)
def test_cr_then_pr_policy_switch(policy, expected):
    assert overall(one_target([30, 0, 4], cr_then_pr=policy)) == expected


def test_trap14_modality_change_is_ne():
    data = one_target([30, 20])
    data["timepoints"][0]["modality"] = "CT"
    data["timepoints"][1]["modality"] = "MR"
    assert overall(data) == ["NE"]


def test_no_imaging_at_a_visit_is_ne():
    data = one_target([30, 20])
    data["timepoints"][1]["assessed"] = False
    assert overall(data) == ["NE"]


def test_new_node_rules():
    """New node: < 10 mm ignored; 10–15 mm re-assessed (equivocal); ≥ 15 mm PD (WG FAQ)."""
    for sa, expected in [(9, "SD"), (12, "SD"), (16, "PD")]:
        data = one_target([30, 30])
        data["timepoints"][1]["lesions"].append(
            {"id": "N9", "role": "new", "nodal": True, "sa_mm": sa}
        )
        assert overall(data) == [expected], sa


def test_equivocal_new_lesion_confirmed_later_dates_pd_to_first_appearance():
    data = one_target([30, 30, 30])
    data["timepoints"][1]["lesions"].append({"id": "X", "role": "new", "state": "equivocal"})
    data["timepoints"][2]["lesions"].append({"id": "X", "state": "unequivocal"})
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "PD"]
    assert a.extra["progression_date"] == a.timepoints[1].date


def test_baseline_selection_rules_are_reported():
    """≤5 targets, ≤2 per organ (nodes one organ), node SA ≥ 15, non-nodal LD ≥ 10."""
    les = [
        {"id": f"N{i}", "role": "target", "nodal": True, "site": f"station {i}", "sa_mm": 16}
        for i in range(3)
    ]
    les += [
        {"id": "L1", "role": "target", "site": "left lung", "ld_mm": 8},
        {"id": "L2", "role": "target", "site": "right lung", "ld_mm": 20},
        {"id": "L3", "role": "target", "site": "lung", "ld_mm": 20},
    ]
    data = case([les, [{"id": x["id"], "sa_mm" if x.get("nodal") else "ld_mm": 15} for x in les]])
    w = " | ".join(run(data).warnings)
    assert "6 target lesions; at most 5" in w
    assert "3 target lesions in lymph node" in w
    assert "3 target lesions in lung" in w
    assert "timepoints[0].lesions[3].ld_mm: target 'L1' 8 mm is below 10 mm" in w
    data["options"] = {"strict_baseline": True}
    from oncohybrid.errors import InputError

    with pytest.raises(InputError):
        run(data)


def test_slice_thickness_doubles_measurability_threshold():
    data = one_target([12, 12])
    data["timepoints"][0]["slice_thickness_mm"] = 7
    assert any("below 14 mm" in w for w in run(data).warnings)


# --- §14.2 best overall response -----------------------------------------------------

B09 = {
    1: (
        "2020-01-01",
        [
            ("2020-01-01", "PR"),
            ("2020-02-01", "CR"),
            ("2020-02-16", "NE"),
            ("2020-03-01", "CR"),
            ("2020-04-01", "SD"),
        ],
        ("CR", "2020-02-01"),
        ("PR", "2020-01-01"),
    ),
    2: (
        "2019-12-12",
        [("2020-01-01", "SD"), ("2020-02-01", "PR"), ("2020-03-01", "SD"), ("2020-03-13", "CR")],
        ("SD", "2020-02-01"),
        ("PR", "2020-02-01"),
    ),
    3: (
        "2019-11-11",
        [("2019-11-12", "CR"), ("2019-12-02", "CR"), ("2020-01-01", "SD")],
        ("SD", "2020-01-01"),
        ("CR", "2019-11-12"),
    ),
    4: (
        "2019-12-30",
        [
            ("2020-01-01", "PR"),
            ("2020-03-01", "SD"),
            ("2020-04-01", "SD"),
            ("2020-05-01", "PR"),
            ("2020-05-15", "NON-CR/NON-PD"),
        ],
        ("SD", "2020-03-01"),
        ("SD", "2020-03-01"),
    ),
    5: (
        "2020-01-01",
        [
            ("2020-01-01", "PR"),
            ("2020-01-10", "SD"),
            ("2020-01-20", "PR"),
            ("2020-05-15", "NON-CR/NON-PD"),
        ],
        ("NON-CR/NON-PD", "2020-05-15"),
        ("PR", "2020-01-01"),
    ),
    6: (
        "2020-02-02",
        [("2020-02-06", "PR"), ("2020-02-16", "CR"), ("2020-03-30", "PR")],
        ("SD", "2020-03-30"),
        ("SD", "2020-03-30"),
    ),
    7: (
        "2020-02-02",
        [("2020-02-06", "PR"), ("2020-02-16", "CR"), ("2020-04-01", "NE")],
        ("NE", "2020-02-06"),
        None,
    ),
    8: ("2020-04-01", [], ("MISSING", None), ("NE", None)),
    9: (
        "2020-02-01",
        [("2020-02-16", "PD"), ("2020-03-06", "SD")],
        ("PD", "2020-02-16"),
        ("PD", "2020-02-16"),
    ),
}


def _d(s):
    return dt.date.fromisoformat(s) if s else None


@pytest.mark.parametrize("subject", sorted(B09))
def test_B09_admiralonco_confirmed_bor_config_a(subject):
    """B-09 config A: ref_confirm 28, window 28, max_nr_ne 1, accept_sd FALSE."""
    start, recs, exp_a, _ = B09[subject]
    got = best_response(
        [(_d(d), r) for d, r in recs],
        _d(start),
        confirmation=True,
        confirm_days=28,
        min_sd_days=28,
        max_nr_ne=1,
        accept_sd=False,
    )
    assert got == (exp_a[0], _d(exp_a[1]))


@pytest.mark.parametrize("subject", sorted(B09))
def test_B09_admiralonco_confirmed_bor_config_b(subject):
    """B-09 config B: ref_confirm 14, max_nr_ne 0, accept_sd, missing_as_ne; subject 7 = ND."""
    start, recs, _, exp_b = B09[subject]
    if subject == 7:
        recs, exp_b = [("2020-04-02", "ND")], ("ND", "2020-04-02")
    got = best_response(
        [(_d(d), r) for d, r in recs],
        _d(start),
        confirmation=True,
        confirm_days=14,
        min_sd_days=28,
        max_nr_ne=0,
        accept_sd=True,
        missing_as_ne=True,
    )
    assert got == (exp_b[0], _d(exp_b[1]))


def test_bor_sd_minimum_duration_through_engine():
    """SD only before the minimum duration, then PD → BOR PD; then NE → BOR NE (§2.10)."""
    early_sd_then_pd = one_target([40, 40, 60], step=21, min_sd_days=42)
    a = run(early_sd_then_pd)
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "PD"]
    assert a.best_overall_response == "PD"
    data = one_target([40, 40, 40], step=21, min_sd_days=42)
    data["timepoints"][2]["lesions"][0]["ld_mm"] = "not_evaluable"
    assert run(data).best_overall_response == "NE"
    assert run(one_target([40, 40, 40], step=21, min_sd_days=42)).best_overall_response == "SD"


def test_bor_table3_cr_then_pd_with_confirmation():
    """Table 3: CR then PD → SD if the SD minimum duration was met, else PD."""
    late = one_target([30, 0, 10], step=50, confirmation=True, min_sd_days=42)
    assert run(late).best_overall_response == "SD"
    early = one_target([30, 0, 10], step=20, confirmation=True, min_sd_days=42)
    assert run(early).best_overall_response == "PD"


def test_bor_ignores_visits_after_new_therapy():
    data = one_target([40, 40, 10, 10], step=50)
    data["timepoints"][2]["new_therapy"] = True
    a = run(data)
    assert a.best_overall_response == "SD"
    assert any("new anticancer therapy" in w for w in a.warnings)
