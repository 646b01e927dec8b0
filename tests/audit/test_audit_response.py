"""Independent audit of the response engines against the criteria notes
(/work/shared/docs/criteria.md, cited as "criteria §x"), through the public entry points
``load_case(dict)`` + ``get_assessor(name)``.

Each expected answer is derived by hand from the paper's rules as summarised in the
notes (RECIST 1.1: Eisenhauer 2009; iRECIST: Seymour 2017); the arithmetic is written
out in the docstrings. These complement tests/response (which hold the notes' §14
vectors): long multi-timepoint sequences, nadir bookkeeping, NE combinations, lineage,
equivocal lesions and best-overall-response sequence rules.
"""

from __future__ import annotations

import datetime as dt

import pytest

from oncohybrid.response.parse import load_case
from oncohybrid.response.registry import get_assessor

D0 = dt.date(2024, 1, 1)


def case(timepoints, criteria="recist1.1", step=56, **options):
    return {
        "criteria": criteria,
        "options": options,
        "treatment_start": str(D0),
        "timepoints": [
            {"date": str(D0 + dt.timedelta(days=step * i)), "lesions": les}
            for i, les in enumerate(timepoints)
        ],
    }


def targets(*rows, nodal=False):
    """rows[0]: baseline values of targets T0..Tn (one organ each); later rows: values,
    None = lesion not listed at that visit."""
    f = "sa_mm" if nodal else "ld_mm"
    out = [[{"id": f"T{i}", "role": "target", "site": f"organ{i}", "nodal": nodal, f: v}
            for i, v in enumerate(rows[0])]]
    out += [[{"id": f"T{i}", f: v} for i, v in enumerate(row) if v is not None]
            for row in rows[1:]]
    return out


def run(data):
    return get_assessor(data["criteria"])(load_case(data))


def responses(data):
    return [t.overall for t in run(data).timepoints[1:]]


def day(n):
    return D0 + dt.timedelta(days=n)


# ------------------------------------------------------------------ RECIST 1.1 sequences


def test_nadir_updates_only_from_fully_evaluable_sums_over_five_visits():
    """Criteria §1.3/§2.5/§2.9: 100 → 80 (−20 %: SD; nadir 80) → 30 + NE (NE; the partial
    30 must not become the nadir) → 60 (−40 % vs BL: PR; nadir 60) → 72 (+20 % and +12 mm
    over nadir 60: PD). Had the partial 30 become the nadir, visit 4 would be PD."""
    a = run(case(targets([50, 50], [40, 40], [30, None], [30, 30], [36, 36])))
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "NE", "PR", "PD"]
    assert [t.numbers["nadir_sum_mm"] for t in a.timepoints[1:]] == [100, 80, 80, 60]
    assert a.best_overall_response == "PR"
    assert a.extra["progression_date"] == day(4 * 56)


def test_pd_needs_20_percent_and_5_mm_on_large_sums():
    """Criteria §2.5/§13: 200 → 200 (SD) → 239 (+19.5 %, +39 mm: SD) → 240 (+20 %: PD)."""
    assert responses(case(targets([200], [200], [239], [240]))) == ["SD", "SD", "PD"]


def test_nadir_includes_baseline_pd_at_first_follow_up():
    """Criteria §1.3: nadir includes baseline: 40 → 48 (+20 %, +8 mm) is PD at once."""
    assert responses(case(targets([40], [48]))) == ["PD"]


def test_exact_20_percent_and_exact_5_mm_is_pd():
    """Criteria §1.2/§13: both thresholds inclusive: 25 → 30 is +20 % and +5 mm → PD."""
    assert responses(case(targets([25], [30]))) == ["PD"]
    assert responses(case(targets([25], [29.9]))) == ["SD"]


def test_missing_target_row_is_ne_not_a_false_pr():
    """Criteria §2.9 and §15 (pyrecist sums only the rows present): 20+20+20 → 10+10 with
    the third target not reported: the partial 20 (−67 %) is NOT PR → NE."""
    a = run(case(targets([20, 20, 20], [10, 10, None])))
    assert a.timepoints[1].overall == "NE"
    assert a.timepoints[1].numbers["sum_mm"] is None


def test_node_cr_with_non_zero_sum_and_later_node_wobble():
    """Criteria §2.4/§2.5/§16.3: target nodes SA 20 + 16 → 9 + 8 (sum 17, every node
    < 10 mm: CR) → 9 + 9 (sum 18, +1 mm, still all < 10: CR). Confirmed (35 days apart):
    BOR CR."""
    a = run(case(targets([20, 16], [9, 8], [9, 9], nodal=True), step=35, confirmation=True))
    assert [t.overall for t in a.timepoints[1:]] == ["CR", "CR"]
    assert [t.numbers["sum_mm"] for t in a.timepoints[1:]] == [17, 18]
    assert a.best_overall_response == "CR"


def test_node_at_exactly_10_mm_is_not_cr():
    """Criteria §16.4: node CR is "< 10" (strict): 20 + 16 → 10 + 8 is PR (−50 %)."""
    assert responses(case(targets([20, 16], [10, 8], nodal=True))) == ["PR"]


def test_non_target_node_measured_below_10_mm_is_normal_even_if_marked_present():
    """Criteria §2.5/§2.6: CR needs every node, target or non-target, < 10 mm SA. A
    non-target node measured at 8 mm is normal although the reader ticked "present"
    (bug found by this audit: it kept the overall at PR); 11 mm keeps it non-CR → PR."""
    def data(sa):
        return case([
            [{"id": "L1", "role": "target", "site": "liver", "ld_mm": 40},
             {"id": "N2", "role": "non-target", "nodal": True, "sa_mm": 13}],
            [{"id": "L1", "ld_mm": 0}, {"id": "N2", "sa_mm": sa, "state": "present"}],
        ])
    assert responses(data(8)) == ["CR"]
    assert responses(data(11)) == ["PR"]


def test_too_small_default_5_mm_versus_measured_4_mm_as_nadir():
    """Criteria §2.4/§16.7: 30 → too small (counts 5; PR) → 9 (+4 mm over 5: not PD, PR);
    whereas 30 → measured 4 (kept as 4; nadir 4) → 9 (+125 %, +5 mm): PD."""
    assert responses(case(targets([30], ["too_small"], [9]))) == ["PR", "PR"]
    assert responses(case(targets([30], [4], [9]))) == ["PR", "PD"]
    a = run(case(targets([30], [4], ["too_small"])))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "PR"]  # 5 vs nadir 4: +1 mm
    assert a.timepoints[2].numbers["sum_mm"] == 5


def test_too_small_is_present_never_cr():
    """Criteria §16.7: a too-small lesion is present: 30 → too small is PR, not CR."""
    assert responses(case(targets([30], ["too_small"]))) == ["PR"]


def test_split_lesion_fragments_over_three_visits():
    """Criteria §2.4/§16.6: T0 30 + T1 20 (50). V1: T0 splits into 10 + too small (5) = 15,
    T1 10 → 25 (−50 %: PR; nadir 25). V2: 12 + absent, T1 10 → 22 (PR; nadir 22).
    V3: 15 + 8, T1 10 → 33 (+50 %, +11 mm over 22: PD)."""
    data = case([
        targets([30, 20])[0],
        [{"id": "F1", "split_from": "T0", "ld_mm": 10},
         {"id": "F2", "split_from": "T0", "ld_mm": "too_small"}, {"id": "T1", "ld_mm": 10}],
        [{"id": "F1", "split_from": "T0", "ld_mm": 12},
         {"id": "F2", "split_from": "T0", "ld_mm": "absent"}, {"id": "T1", "ld_mm": 10}],
        [{"id": "F1", "split_from": "T0", "ld_mm": 15},
         {"id": "F2", "split_from": "T0", "ld_mm": 8}, {"id": "T1", "ld_mm": 10}],
    ])
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "PR", "PD"]
    assert [t.numbers["sum_mm"] for t in a.timepoints[1:]] == [25, 22, 33]


def test_merged_lesions_then_growth_against_merged_nadir():
    """Criteria §2.4: T0 15 + T1 12 (27) → merged mass 20 on T0, T1 = 0 (20: −25.9 %, SD;
    nadir 20) → T0 24, T1 no longer listed (still 0): +20 % but +4 mm → SD → T0 25
    (+25 %, +5 mm): PD."""
    data = case([
        [{"id": "T0", "role": "target", "site": "liver", "ld_mm": 15},
         {"id": "T1", "role": "target", "site": "liver", "ld_mm": 12}],
        [{"id": "T0", "ld_mm": 20}, {"id": "T1", "merged_into": "T0"}],
        [{"id": "T0", "ld_mm": 24}],
        [{"id": "T0", "ld_mm": 25}],
    ])
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "SD", "PD"]
    assert a.timepoints[2].numbers["target_mm"] == {"T0": 24, "T1": 0}


def test_reappearing_target_is_judged_by_sum_arithmetic():
    """Criteria §2.7 (reappearance) / §2.5: T0 30 + T1 20 → 0 + 20 (PR; nadir 20; not CR
    because T1 persists) → 5 + 20 (25: +25 %, +5 mm over nadir 20): PD."""
    assert responses(case(targets([30, 20], [0, 20], [5, 20]))) == ["PR", "PD"]


@pytest.mark.parametrize(("target_value", "nt_state", "new", "expected"), [
    ("not_evaluable", "present", False, "NE"),   # Table A: NE / non-PD / no → NE
    ("not_evaluable", "present", True, "PD"),    # any / any / yes → PD
    ("not_evaluable", "unequivocal_progression", False, "PD"),  # any / PD → PD
    (40, "not_evaluable", False, "SD"),          # SD / not all evaluated → SD
    (20, "not_evaluable", False, "PR"),          # PR / not all evaluated → PR
    (0, "not_evaluable", False, "PR"),           # CR / not evaluated → PR
    (0, "absent", False, "CR"),                  # CR / CR / no → CR
    (20, "unequivocal_progression", False, "PD"),  # PR targets but NT PD → PD
    (40, "increased", False, "SD"),              # a modest increase is not unequivocal
])
def test_table_a_ne_and_non_target_combinations(target_value, nt_state, new, expected):
    """Criteria §2.8 Table A and §1.5 (NE unless PD is established by another category);
    baseline target 40 mm, one non-target."""
    fu = [{"id": "T0", "ld_mm": target_value}, {"id": "B1", "state": nt_state}]
    if new:
        fu.append({"id": "X1", "role": "new", "site": "liver"})
    data = case([[{"id": "T0", "role": "target", "site": "lung", "ld_mm": 40},
                  {"id": "B1", "role": "non-target", "site": "bone", "state": "present"}], fu])
    assert responses(data) == [expected]


@pytest.mark.parametrize(("nt_state", "new", "expected"), [
    ("present", False, "NON-CR/NON-PD"),
    ("absent", False, "CR"),
    ("not_evaluable", False, "NE"),
    ("present", True, "PD"),
    ("unequivocal_progression", False, "PD"),
])
def test_table_b_non_target_only(nt_state, new, expected):
    """Criteria §2.8 Table B: non-target disease only."""
    fu = [{"id": "B1", "state": nt_state}]
    if new:
        fu.append({"id": "X1", "role": "new", "site": "liver"})
    data = case([[{"id": "B1", "role": "non-target", "site": "bone", "state": "present"}], fu])
    assert responses(data) == [expected]


def test_modality_change_visit_is_ne_and_does_not_set_the_nadir():
    """Criteria §2.11/§16.14: CT 50 → MR 20 (NE, not comparable) → CT 30: against nadir 50
    (not 20) it is −40 %: PR. Using the MR value as nadir would have made it PD."""
    data = case(targets([50], [20], [30]))
    for tp, mod in zip(data["timepoints"], ("CT", "MR", "CT"), strict=True):
        tp["modality"] = mod
    assert responses(data) == ["NE", "PR"]


def test_equivocal_new_lesion_confirmed_dates_pd_and_ends_bor_at_first_appearance():
    """Criteria §1.6/§2.7: SD (day 56) with an equivocal new lesion → confirmed at day 112:
    PD dated to day 56. BOR is the best response until PD, so the SD of day 56 (the PD
    date itself) cannot be BOR: BOR = PD (bug found by this audit: BOR was SD).
    Reading chosen: the timepoint responses stay as assessed then (SD, PD); only the PD date
    and the BOR window move (RECIST 1.1 §4.3.5 "declared using the date of the initial
    scan")."""
    data = case(targets([50], [50], [50]))
    data["timepoints"][1]["lesions"].append({"id": "X", "role": "new", "state": "equivocal"})
    data["timepoints"][2]["lesions"].append({"id": "X", "state": "unequivocal"})
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "PD"]
    assert a.extra["progression_date"] == day(56)
    assert a.best_overall_response == "PD"
    assert a.extra["best_overall_response_date"] == day(56)


def test_equivocal_new_lesion_after_pr_keeps_bor_pr():
    """Criteria §1.6/§2.10: PR (day 56) → PR with an equivocal new lesion (day 112) →
    confirmed (day 168): PD dated day 112; the PR before it is BOR."""
    data = case(targets([50], [30], [30], [30]))
    data["timepoints"][2]["lesions"].append({"id": "X", "role": "new", "state": "equivocal"})
    data["timepoints"][3]["lesions"].append({"id": "X", "state": "unequivocal"})
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "PR", "PD"]
    assert a.extra["progression_date"] == day(112)
    assert (a.best_overall_response, a.extra["best_overall_response_date"]) == ("PR", day(56))


def test_equivocal_lesion_that_resolved_does_not_backdate_a_later_new_lesion():
    """Criteria §2.7: an equivocal finding that disappeared was never confirmed; a lesion at
    that place later is new then: PD dated to its own visit (day 168), not day 56."""
    data = case(targets([50], [50], [50], [50]))
    data["timepoints"][1]["lesions"].append({"id": "X", "role": "new", "state": "equivocal"})
    data["timepoints"][2]["lesions"].append({"id": "X", "state": "absent"})
    data["timepoints"][3]["lesions"].append({"id": "X", "state": "unequivocal"})
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "SD", "PD"]
    assert a.extra["progression_date"] == day(168)


def test_new_node_10_to_15_mm_reassessed_then_confirmed():
    """Criteria §2.7 (WG FAQ): new node SA 12 mm is re-assessed (not PD); next visit 16 mm:
    PD, dated to the first appearance."""
    data = case(targets([50], [50], [50]))
    data["timepoints"][1]["lesions"].append(
        {"id": "N9", "role": "new", "nodal": True, "site": "axilla", "sa_mm": 12})
    data["timepoints"][2]["lesions"].append({"id": "N9", "sa_mm": 16})
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["SD", "PD"]
    assert a.extra["progression_date"] == day(56)


def test_visits_after_pd_are_ignored_for_bor():
    """Criteria §2.10: BOR until PD: PD (day 56) then PR (day 112): BOR PD."""
    a = run(case(targets([40], [50], [20])))
    assert a.best_overall_response == "PD"
    assert a.extra["best_overall_response_date"] == day(56)


def test_bor_pr_then_sd_then_pd_without_confirmation_is_pr():
    """Criteria §2.10 (randomised trial: no confirmation): 100 → 60 PR → 71 (−29 %: SD by
    literal table; sticky PR off) → 80 (+33 %, +20 mm over 60: PD): BOR PR."""
    a = run(case(targets([100], [60], [71], [80]), sticky_pr=False))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "SD", "PD"]
    assert a.best_overall_response == "PR"


@pytest.mark.parametrize(("step", "bor"), [(42, "SD"), (41, "NE")])
def test_sd_minimum_duration_boundary_is_inclusive(step, bor):
    """Criteria §2.10: SD counts only at or after the minimum interval (42 days here): a
    single SD on day 42 counts; on day 41 it does not (BOR NE)."""
    assert run(case(targets([50], [50]), step=step, min_sd_days=42)).best_overall_response == bor


def test_bor_confirmed_pr_needs_second_pr_28_days_later():
    """Criteria §2.10/§14.2: PR day 28, PR day 56 (28 days later): confirmed PR dated day 28."""
    a = run(case(targets([50], [30], [30]), step=28, confirmation=True))
    assert (a.best_overall_response, a.extra["best_overall_response_date"]) == ("PR", day(28))


@pytest.mark.parametrize(("accept_sd", "expected"), [(False, ("SD", 56)), (True, ("PR", 28))])
def test_bor_confirmation_with_sd_in_between(accept_sd, expected):
    """Criteria §14.2 (admiralonco rules): 100 → 60 (PR d28) → 71 (−29 %, +18 % over 60:
    SD d56) → 60 (PR d84) (literal values; sticky off). Without accept_sd the SD breaks
    confirmation: BOR SD on day 56 (the PR of day 28 is before the 42-day window, the one of
    day 84 is unconfirmed); with accept_sd one SD is allowed: PR d28 confirmed by d84."""
    data = case(targets([100], [60], [71], [60]), step=28, confirmation=True, sticky_pr=False,
                accept_sd=accept_sd)
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "SD", "PR"]
    assert (a.best_overall_response, a.extra["best_overall_response_date"]) == (
        expected[0], day(expected[1]))


def test_cr_after_pr_confirmed_and_unconfirmed():
    """Criteria §2.10 Table C (PR → CR → CR): CR from day 56, confirmed on day 84: BOR CR.
    Without confirmation PR then CR: BOR CR at once."""
    a = run(case(targets([50], [30], [0], [0]), step=28, confirmation=True))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "CR", "CR"]
    assert (a.best_overall_response, a.extra["best_overall_response_date"]) == ("CR", day(56))
    assert run(case(targets([50], [30], [0]))).best_overall_response == "CR"


@pytest.mark.parametrize(("step", "bor"), [(49, "SD"), (28, "NE")])
def test_table_c_cr_then_ne(step, bor):
    """Criteria §2.10 Table C: CR then NE → SD if the SD minimum duration (42 d) was met,
    otherwise NE."""
    data = case(targets([50], [0], ["not_evaluable"]), step=step, confirmation=True,
                min_sd_days=42)
    assert run(data).best_overall_response == bor


def test_table_c_pr_then_pd_before_sd_window_is_pd():
    """Criteria §2.10 Table C: PR (day 28, unconfirmed) then PD → PD when the SD minimum
    duration (42 d) was not met."""
    a = run(case(targets([50], [30], [40]), step=28, confirmation=True))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "PD"]
    assert a.best_overall_response == "PD"


def test_sticky_pr_survives_an_ne_visit():
    """Criteria §2.10 (sticky PR, WG FAQ): 100 → 70 (PR) → NE → 80 (−20 %, not PD over 70):
    PR stays PR; literal table value SD."""
    a = run(case(targets([50, 50], [40, 30], [None, 30], [45, 35])))
    assert [t.overall for t in a.timepoints[1:]] == ["PR", "NE", "PR"]
    assert a.timepoints[3].numbers["overall_literal"] == "SD"


# ------------------------------------------------------------------ iRECIST


def icase(tps, **options):
    return case(tps, criteria="irecist", step=42, **options)


def test_irecist_increments_add_up_to_icpd():
    """Criteria §3.4: 50 → 60 (iUPD: +20 %, +10 mm) → 64 (+4 since iUPD: iUPD) → 65
    (+1 more, +5 in total: iCPD). PD date = the iUPD (day 42)."""
    a = run(icase(targets([50], [60], [64], [65])))
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "iUPD", "iCPD"]
    assert a.extra["progression_date"] == day(42)


def test_irecist_bar_reset_needs_new_rcist_pd_against_nadir():
    """Criteria §3.4 reset: 50 → 60 (iUPD) → 50 (iSD: reset) → 60 (+20 %, +10 over nadir
    50: a fresh iUPD, not iCPD)."""
    assert responses(icase(targets([50], [60], [50], [60]))) == ["iUPD", "iSD", "iUPD"]


def test_irecist_target_iupd_then_non_target_pd_is_icpd():
    """Criteria §3.4: a category that had not met iUPD now meets RECIST PD ⇒ iCPD."""
    data = icase([
        [{"id": "T0", "role": "target", "site": "lung", "ld_mm": 50},
         {"id": "B1", "role": "non-target", "site": "bone", "state": "present"}],
        [{"id": "T0", "ld_mm": 60}, {"id": "B1", "state": "present"}],
        [{"id": "T0", "ld_mm": 60}, {"id": "B1", "state": "unequivocal_progression"}],
    ])
    assert responses(data) == ["iUPD", "iCPD"]


def test_irecist_new_lesion_som_is_never_added_to_target_sum():
    """Criteria §3.2: a measurable new lesion (12 mm) is an NLT; NL-SOM 12 is kept apart
    and the target SOM stays 50; unchanged at the next visit ⇒ still iUPD."""
    data = icase([
        [{"id": "T0", "role": "target", "site": "lung", "ld_mm": 50}],
        [{"id": "T0", "ld_mm": 50}, {"id": "X1", "role": "new", "site": "liver", "ld_mm": 12}],
        [{"id": "T0", "ld_mm": 50}, {"id": "X1", "ld_mm": 12}],
    ])
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "iUPD"]
    assert [t.numbers["sum_mm"] for t in a.timepoints[1:]] == [50, 50]


def test_irecist_third_new_lesion_in_one_organ_is_nlnt_and_its_increase_confirms():
    """Criteria §3.2/§3.4: new liver lesions 20, 15, 12 mm: NLT are the first two (≤ 2 per
    organ; NL-SOM 35), the 12 mm one is an NLNT. Next visit: NL-SOM unchanged but the NLNT
    increased (any increase) ⇒ iCPD."""
    new = [{"id": f"X{i}", "role": "new", "site": "liver", "ld_mm": v}
           for i, v in enumerate((20, 15, 12))]
    data = icase([
        [{"id": "T0", "role": "target", "site": "lung", "ld_mm": 50}],
        [{"id": "T0", "ld_mm": 50}, *new],
        [{"id": "T0", "ld_mm": 50}, {"id": "X0", "ld_mm": 20}, {"id": "X1", "ld_mm": 15},
         {"id": "X2", "ld_mm": 12, "state": "increased"}],
    ])
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "iCPD"]
    assert a.timepoints[1].numbers["nl_som_mm"] == 35
    assert a.timepoints[1].numbers["new_lesion_non_targets"] == ["X2"]


# ------------------------------------------------------------------ PERCIST sequence


def test_percist_sequence_hottest_lesion_changes_and_pmd_is_strict():
    """Criteria §6.4/§6.5/§13: baseline hottest A 5.0 (B 3.0). V1 A 3.4 (−32 %, −1.6 SUL:
    PMR). V2 hottest is now B 4.5 (−10 % vs baseline 5.0: SMD). V3 B 6.5 (exactly +30 %,
    +1.5: PMD is strict > 30 % ⇒ SMD). V4 B 6.6 (+32 %, +1.6: PMD). BOR PMR."""
    def tp(days, sul):
        return {"date": str(day(days)),
                "references": {"liver_sul_mean": 1.0, "liver_sul_sd": 0.1},
                "lesions": [{"id": k, **({"role": "target"} if days == 0 else {}),
                             "sul_peak": v} for k, v in sul.items()]}
    data = {"criteria": "percist", "timepoints": [
        tp(0, {"A": 5.0, "B": 3.0}), tp(60, {"A": 3.4, "B": 2.0}), tp(120, {"A": 2.0, "B": 4.5}),
        tp(180, {"A": 2.0, "B": 6.5}), tp(240, {"A": 2.0, "B": 6.6})]}
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["PMR", "SMD", "SMD", "PMD"]
    assert a.best_overall_response == "PMR"
