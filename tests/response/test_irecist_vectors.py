"""iRECIST worked examples of criteria.md §14.3 (I-01, I-04 … I-08) and §3 rules."""

from __future__ import annotations

import datetime as dt

import pytest

from oncohybrid.response import assess_case, load_case
from oncohybrid.response.irecist import best_iresponse

D0 = dt.date(2024, 1, 1)


def case(timepoints, days=None, **options):
    days = days or [56 * i for i in range(len(timepoints))]
    return {
        "criteria": "irecist",
        "options": options,
        "treatment_start": str(D0),
        "timepoints": [
            {"date": str(D0 + dt.timedelta(days=d)), "lesions": les}
            for d, les in zip(days, timepoints, strict=True)
        ],
    }


def target_series(sums, extra=None, days=None):
    """One liver target; extra: {timepoint index: [additional lesion dicts]}."""
    extra = extra or {}
    tps = [[{"id": "L1", "role": "target", "site": "liver", "ld_mm": sums[0]}]]
    tps += [[{"id": "L1", "ld_mm": s}] for s in sums[1:]]
    for i, les in extra.items():
        tps[i] = tps[i] + les
    return case(tps, days=days)


def run(data):
    return assess_case(load_case(data))


def overall(data):
    return [t.overall for t in run(data).timepoints[1:]]


I01 = [
    ("ex1", ["iCR", "iCR", "iPR", "iUPD", "iCPD"], "iCR"),
    ("ex1-ne", ["iCR", "NE", "iUPD", "iUPD", "iCPD"], "iCR"),
    ("ex2", ["iUPD", "iPR", "iCR", "iUPD", "iCPD"], "iCR"),
    ("ex2-ne", ["iUPD", "NE", "iCR", "NE", "iCPD"], "iCR"),
    ("ex3", ["iUPD", "iPR", "iSD", "iCPD", "iSD"], "iPR"),
    ("ex4", ["iUPD", "iSD", "iPR", "iUPD", "iCPD"], "iPR"),
    ("ex4-ne", ["iUPD", "NE", "iPR", "NE", "iSD"], "iPR"),
    ("ex5", ["iUPD", "iSD", "iSD", "iCPD", "iPR"], "iSD"),
    ("ex5-upd", ["iUPD", "iSD", "NE", "iUPD", "iCPD"], "iSD"),
    ("ex6", ["iUPD", "iCPD", "iPR", "iCR", "iCR"], "iCPD"),
    ("ex7", ["iUPD", "iUPD", "iCPD", "iCR", "iSD"], "iCPD"),
    ("ex8", ["iUPD", "NE", "NE", "NE", "NE"], "iUPD"),
]


@pytest.mark.parametrize(("ex", "seq", "expected"), I01, ids=[r[0] for r in I01])
def test_I01_paper_table3_ibor(ex, seq, expected):
    """I-01: Seymour 2017 Table 3 iBOR scenarios (randomised: no confirmation)."""
    recs = [(D0 + dt.timedelta(days=56 * (i + 1)), r) for i, r in enumerate(seq)]
    assert best_iresponse(recs, D0)[0] == expected


def test_I04_scenario_f_pr_then_new_lesion_unchanged_stays_iupd():
    """I-04: 100 → 60 (iPR) → 60 + new 12 mm (iUPD) → 60, new unchanged → iUPD, not iPR."""
    new = {"id": "X1", "role": "new", "site": "liver", "ld_mm": 12}
    data = target_series([100, 60, 60, 60], {2: [new], 3: [{"id": "X1", "ld_mm": 12}]})
    assert overall(data) == ["iPR", "iUPD", "iUPD"]


def test_I05_scenario_b_continued_shrinkage_resets_to_ipr_and_icr_needs_new_gone():
    """I-05: 100 → 90 + new (iUPD) → 65 (−35%), new unchanged → iPR; iCR needs X1 gone."""
    new = {"id": "X1", "role": "new", "site": "liver", "ld_mm": 12}
    data = target_series(
        [100, 90, 65, 0, 0],
        {
            1: [new],
            2: [{"id": "X1", "ld_mm": 12}],
            3: [{"id": "X1", "ld_mm": 12}],
            4: [{"id": "X1", "ld_mm": "absent"}],
        },
    )
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "iPR", "iPR", "iCR"]
    assert a.best_overall_response == "iCR"
    assert a.timepoints[2].numbers["nl_som_mm"] == 12


def test_I06a_non_target_iupd_confirmed_by_any_further_increase():
    """I-06a: iUPD from unequivocal NT progression; next visit NT increased → iCPD."""
    tps = [
        [
            {"id": "L1", "role": "target", "ld_mm": 40},
            {"id": "B1", "role": "non-target", "state": "present"},
        ],
        [{"id": "L1", "ld_mm": 40}, {"id": "B1", "state": "unequivocal_progression"}],
        [{"id": "L1", "ld_mm": 40}, {"id": "B1", "state": "increased"}],
    ]
    assert overall(case(tps)) == ["iUPD", "iCPD"]
    tps[2][1]["state"] = "present"  # no further change: neither confirmed nor reset
    assert overall(case(tps)) == ["iUPD", "iUPD"]


def _nl(som1, som2, nlnt2="present"):
    return target_series(
        [50, 50, 50],
        {
            1: [
                {"id": "X1", "role": "new", "site": "liver", "ld_mm": som1},
                {"id": "X2", "role": "new", "site": "bone", "state": "unequivocal"},
            ],
            2: [{"id": "X1", "ld_mm": som2}, {"id": "X2", "state": nlnt2}],
        },
    )


def test_I06b_nl_som_up_6_mm_confirms():
    """I-06b: iUPD from new lesions, NL-SOM 12 → 18 (+6) → iCPD."""
    a = run(_nl(12, 18))
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "iCPD"]
    assert a.timepoints[1].numbers["new_lesion_targets"] == ["X1"]
    assert a.timepoints[1].numbers["new_lesion_non_targets"] == ["X2"]
    assert a.timepoints[2].numbers["sum_mm"] == 50  # never added to the target sum


def test_I06c_nl_som_up_3_but_nlnt_increased_confirms():
    """I-06c: NL-SOM 12 → 15 (+3 only) but an NLNT grew → iCPD; without that: iUPD."""
    assert overall(_nl(12, 15, "increased")) == ["iUPD", "iCPD"]
    assert overall(_nl(12, 15, "present")) == ["iUPD", "iUPD"]


def test_I06d_target_iupd_then_new_lesion_confirms():
    """I-06d: iUPD from targets; a new lesion at the next visit (other category) → iCPD."""
    data = target_series(
        [50, 70, 70], {2: [{"id": "X1", "role": "new", "site": "lung", "ld_mm": 8}]}
    )
    assert overall(data) == ["iUPD", "iCPD"]


def test_I07_early_scan_confirms_only_with_symptoms_and_additional_new_lesion():
    """I-07: day-14 scan for symptoms with a new lesion at a new site may be iCPD;
    day-14 growth of the existing new lesions alone is not — repeat at 4–8 weeks."""
    new = {"id": "X1", "role": "new", "site": "liver", "ld_mm": 15}
    early = target_series(
        [50, 50, 50],
        {
            1: [new],
            2: [
                {"id": "X1", "ld_mm": 15},
                {"id": "X2", "role": "new", "site": "lung", "ld_mm": 12},
            ],
        },
        days=[0, 56, 70],
    )
    early["timepoints"][2]["clinical_trigger"] = True
    assert overall(early) == ["iUPD", "iCPD"]
    growth = target_series(
        [50, 50, 50], {1: [new], 2: [{"id": "X1", "ld_mm": 25}]}, days=[0, 56, 70]
    )
    growth["timepoints"][2]["clinical_trigger"] = True
    a = run(growth)
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "iUPD"]
    assert any("cannot confirm" in line for line in a.timepoints[2].trace)


def test_I08_pd_date_is_first_iupd_and_increments_add_up():
    """I-08: iUPD (d1), iUPD (+3 mm), iCPD (+6 mm cumulative): PD date = d1."""
    a = run(target_series([100, 130, 133, 136]))
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "iUPD", "iCPD"]
    assert a.extra["progression_date"] == a.timepoints[1].date
    assert a.best_overall_response == "iCPD"


def test_I08_pd_date_after_bar_reset_is_second_iupd():
    """I-08: SD, SD, iUPD, PR, PR, iUPD (d6), iCPD → PD date d6; the pre-iUPD nadir is kept."""
    a = run(target_series([100, 95, 95, 120, 60, 60, 75, 81]))
    assert [t.overall for t in a.timepoints[1:]] == [
        "iSD",
        "iSD",
        "iUPD",
        "iPR",
        "iPR",
        "iUPD",
        "iCPD",
    ]
    assert a.extra["progression_date"] == a.timepoints[6].date
    assert a.best_overall_response == "iPR"


def test_R05_sticky_pr_in_irecist():
    """R-05: 100 → 70 → 70 → 80 → 80 → 80 gives iPR ×5 (WG FAQ)."""
    assert overall(target_series([100, 70, 70, 80, 80, 80])) == ["iPR"] * 5


def test_iupd_followed_only_by_ne_gives_ibor_iupd():
    data = target_series([50, 70, 70])
    data["timepoints"][2]["assessed"] = False
    a = run(data)
    assert [t.overall for t in a.timepoints[1:]] == ["iUPD", "NE"]
    assert a.best_overall_response == "iUPD"
