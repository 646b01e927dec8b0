"""PERCIST 1.0 (Wahl JNM 2009; Practical PERCIST, O Radiology 2016) — worked vectors.

Vectors named P-xx are from shared criteria.md §14.6; the others are constructed from the
rule text (§6, §13, §16 item 10). Cases go through ``parse.load_case`` as JSON dicts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from oncohybrid.errors import InputError
from oncohybrid.response.parse import load_case
from oncohybrid.response.percist import assess, measurability_threshold
from oncohybrid.response.registry import get_assessor

LIVER = {"liver_sul_mean": 1.0, "liver_sul_sd": 0.1}  # threshold 1.5 + 0.2 = 1.7


def tp(day: int, lesions: dict[str, object], refs=None, **kw) -> dict:
    """A timepoint ``day`` days after 2024-01-01; lesions as id → SULpeak (or dict)."""
    out = []
    for lid, v in lesions.items():
        entry = {"id": lid, "role": "target" if not lid.startswith("N") else "new"}
        if isinstance(v, dict):
            entry.update(v)
        else:
            entry["sul_peak"] = v
        out.append(entry)
    return {
        "date": (dt.date(2024, 1, 1) + dt.timedelta(days=day)).isoformat(),
        "lesions": out,
        "references": dict(LIVER if refs is None else refs),
        **kw,
    }


def run(*tps, options=None):
    data = {"criteria": "percist", "timepoints": list(tps)}
    if options:
        data["options"] = options
    return assess(load_case(data))


def cats(result) -> list[str]:
    return [t.overall for t in result.timepoints]


# --- P-01 measurability --------------------------------------------------------------

def test_p01_liver_threshold_is_1_5_mean_plus_2_sd():
    """P-01: liver SULmean 2.0, SD 0.3 → threshold 3.6."""
    assert measurability_threshold("liver", Decimal("2.0"), Decimal("0.3")) == Decimal("3.6")


def test_p01_blood_pool_threshold_is_2_mean_plus_2_sd():
    """P-01: blood pool mean 1.6, SD 0.25 → 2.0·1.6 + 2·0.25 = 3.7."""
    assert measurability_threshold("blood_pool", Decimal("1.6"), Decimal("0.25")) == Decimal("3.7")


def test_p01_lesion_3_5_not_measurable_6_0_measurable():
    """P-01: with threshold 3.6 a SULpeak of 3.5 is not measurable (follow-up NE), 6.0 is."""
    refs = {"liver_sul_mean": 2.0, "liver_sul_sd": 0.3}
    low = run(tp(0, {"A": 3.5}, refs), tp(60, {"A": 1.0}, refs))
    assert cats(low) == ["baseline", "NE"]
    assert low.timepoints[0].numbers["measurability_threshold"] == Decimal("3.6")
    assert low.timepoints[0].numbers["measurable"] is False
    assert any("no measurable lesion" in w for w in low.warnings)
    high = run(tp(0, {"A": 6.0}, refs), tp(60, {"A": 3.0}, refs))
    assert cats(high) == ["baseline", "PMR"]
    assert high.timepoints[0].numbers["measurable"] is True


def test_p01_blood_pool_used_when_liver_abnormal():
    """P-01 blood-pool branch: liver abnormal → 2.0 × blood-pool mean + 2 SD = 3.7."""
    refs = {"liver_sul_mean": 2.0, "liver_sul_sd": 0.3, "blood_pool_sul_mean": 1.6,
            "blood_pool_sul_sd": 0.25}
    res = run(tp(0, {"A": 3.65}, refs, liver_abnormal=True),
              tp(60, {"A": 1.0}, refs, liver_abnormal=True))
    assert res.timepoints[0].numbers["measurability_threshold"] == Decimal("3.7")
    assert res.timepoints[0].numbers["reference"] == "blood_pool"
    assert cats(res)[1] == "NE"  # 3.65 < 3.7: not measurable


def test_follow_up_hottest_lesion_measured_even_below_threshold():
    """§6.3: at follow-up the hottest SULpeak is used whether or not above the threshold."""
    res = run(tp(0, {"A": 5.0}), tp(60, {"A": 1.2}))  # 1.2 < 1.7 threshold, > liver 1.0
    assert cats(res)[1] == "PMR"
    assert res.timepoints[1].numbers["sul_peak"] == Decimal("1.2")


# --- P-05 comparability gate ---------------------------------------------------------

def test_p05_liver_change_25pct_not_comparable():
    """P-05: liver SULmean 2.0 → 2.5 (+25 %, +0.5): not comparable → NE, warning."""
    res = run(tp(0, {"A": 8.0}, {"liver_sul_mean": 2.0, "liver_sul_sd": 0.2}),
              tp(60, {"A": 4.0}, {"liver_sul_mean": 2.5, "liver_sul_sd": 0.2}))
    assert cats(res)[1] == "NE"
    assert res.timepoints[1].numbers["comparable"] is False
    assert any("not comparable" in w for w in res.warnings)


def test_p05_liver_change_11pct_comparable():
    """P-05: 2.2 → 2.45 (+11.4 %, +0.25): comparable."""
    res = run(tp(0, {"A": 8.0}, {"liver_sul_mean": 2.2, "liver_sul_sd": 0.2}),
              tp(60, {"A": 4.0}, {"liver_sul_mean": 2.45, "liver_sul_sd": 0.2}))
    assert cats(res)[1] == "PMR"
    assert res.timepoints[1].numbers["comparable"] is True


def test_liver_gate_needs_both_20pct_and_0_3_sul_by_default():
    """§6.2 [V]: both conditions by default. 1.0 → 1.25 is +25 % but only +0.25 SUL."""
    a = {"liver_sul_mean": 1.0, "liver_sul_sd": 0.1}
    b = {"liver_sul_mean": 1.25, "liver_sul_sd": 0.1}
    both = run(tp(0, {"A": 8.0}, a), tp(60, {"A": 4.0}, b))
    assert cats(both)[1] == "NE"
    either = run(tp(0, {"A": 8.0}, a), tp(60, {"A": 4.0}, b),
                 options={"percist_liver_gate": "either"})
    assert cats(either)[1] == "PMR"


def test_liver_gate_boundary_exactly_20pct_and_0_3_is_comparable():
    """'within 20 % / 0.3 SUL' read inclusively: 1.5 → 1.8 is exactly +20 % and +0.3."""
    res = run(tp(0, {"A": 8.0}, {"liver_sul_mean": 1.5, "liver_sul_sd": 0.1}),
              tp(60, {"A": 4.0}, {"liver_sul_mean": 1.8, "liver_sul_sd": 0.1}))
    assert res.timepoints[1].numbers["comparable"] is True


def test_uptake_time_difference_over_15_min_not_comparable():
    """Practical PERCIST: follow-up uptake time within ±15 min of baseline."""
    ok = run(tp(0, {"A": 8.0}, uptake_min=60), tp(60, {"A": 4.0}, uptake_min=75))
    assert cats(ok)[1] == "PMR"
    bad = run(tp(0, {"A": 8.0}, uptake_min=60), tp(60, {"A": 4.0}, uptake_min=76))
    assert cats(bad)[1] == "NE"
    assert any("uptake time" in w for w in bad.warnings)


def test_different_sul_formula_not_comparable():
    """§6.1: never compare SUL values computed with different LBM formulas."""
    res = run(tp(0, {"A": 8.0}, sul_formula="james"),
              tp(60, {"A": 4.0}, sul_formula="janmahasatian"))
    assert cats(res)[1] == "NE"


def test_soft_quality_findings_warn_but_classify():
    """Glucose ≥ 200 mg/dL, another scanner: warnings only."""
    res = run(tp(0, {"A": 8.0}, scanner="A", glucose_mg_dl=100),
              tp(60, {"A": 4.0}, scanner="B", glucose_mg_dl=210))
    assert cats(res)[1] == "PMR"
    assert any("glucose" in w for w in res.warnings)
    assert any("scanner" in w for w in res.warnings)


def test_not_comparable_does_not_hide_new_lesion_pmd():
    """NE never hides an already-met PMD: new FDG-avid lesion with a failed liver gate."""
    res = run(tp(0, {"A": 8.0}, {"liver_sul_mean": 2.0, "liver_sul_sd": 0.2}),
              tp(60, {"A": 4.0, "N1": 5.0}, {"liver_sul_mean": 2.5, "liver_sul_sd": 0.2}))
    assert cats(res)[1] == "PMD"


# --- P-06 new lesions ---------------------------------------------------------------

def test_p06_new_lesion_wins_over_50pct_fall():
    """P-06: hottest lesion −50 % plus a new FDG-avid lesion typical of tumour → PMD."""
    res = run(tp(0, {"A": 8.0}), tp(60, {"A": 4.0, "N1": 3.0}))
    assert cats(res)[1] == "PMD"
    assert "new FDG-avid" in res.timepoints[1].trace[0]


def test_p06_new_uptake_typical_of_infection_needs_reader():
    """P-06: a new focus suggesting infection/treatment effect is not PMD; reader decision."""
    res = run(tp(0, {"A": 8.0}),
              tp(60, {"A": 4.0, "N1": {"sul_peak": 3.0, "typical_of_tumour": False}}))
    assert cats(res)[1] == "PMR"  # the doubtful focus is not a new tumour lesion
    assert any("reader decision" in w for w in res.warnings)
    eq = run(tp(0, {"A": 8.0}), tp(60, {"A": 4.0, "N1": {"state": "equivocal"}}))
    assert cats(eq)[1] != "PMD"


def test_new_lesion_flag_without_detail_is_pmd():
    res = run(tp(0, {"A": 8.0}), tp(60, {"A": 4.0}, new_lesions=True))
    assert cats(res)[1] == "PMD"


# --- exact thresholds (§1.2, §6.5, §13) ---------------------------------------------

def test_pmr_exactly_0_8_sul_drop_counts():
    """§1.2: 2.4 − 1.6 = 0.8 exactly (0.7999… in floats) → PMR (−33 %, −0.8)."""
    res = run(tp(0, {"A": 2.4}), tp(60, {"A": 1.6}))
    assert cats(res)[1] == "PMR"
    assert res.timepoints[1].numbers["delta_sul"] == Decimal("-0.8")
    assert res.timepoints[1].trace[-1].startswith(
        "PMR: SULpeak 1.6 is -33.3% and -0.8 SUL from baseline 2.4")


def test_pmr_exactly_minus_30pct_is_inclusive():
    """PMR ≥ 30 %: 5.0 → 3.5 is exactly −30 % and −1.5 SUL."""
    assert cats(run(tp(0, {"A": 5.0}), tp(60, {"A": 3.5})))[1] == "PMR"
    assert cats(run(tp(0, {"A": 5.0}), tp(60, {"A": 3.51})))[1] == "SMD"


def test_pmr_needs_both_30pct_and_0_8_sul():
    """2.0 → 1.3 is −35 % but only −0.7 SUL → SMD (both conditions required)."""
    assert cats(run(tp(0, {"A": 2.0}), tp(60, {"A": 1.3})))[1] == "SMD"


def test_pmd_is_strict_exactly_plus_30pct_is_smd():
    """PMD > 30 %: 5.0 → 6.5 (+30 %, +1.5) is SMD; 6.51 is PMD."""
    assert cats(run(tp(0, {"A": 5.0}), tp(60, {"A": 6.5})))[1] == "SMD"
    assert cats(run(tp(0, {"A": 5.0}), tp(60, {"A": 6.51})))[1] == "PMD"


def test_pmd_is_strict_exactly_plus_0_8_sul_is_smd():
    """PMD > 0.8 SUL: 2.0 → 2.8 (+40 %, +0.8 exactly) is SMD; 2.81 is PMD."""
    assert cats(run(tp(0, {"A": 2.0}), tp(60, {"A": 2.8})))[1] == "SMD"
    res = run(tp(0, {"A": 2.0}), tp(60, {"A": 2.81}))
    assert cats(res)[1] == "PMD"
    assert res.timepoints[1].trace[0].startswith("PMD: SULpeak 2.81 (A) is +40.5%")


def test_hottest_lesion_may_change_between_scans():
    """§6.4: baseline hottest A 6.0; follow-up A 2.0 but B (3.0 → 9.0) is hottest → PMD."""
    res = run(tp(0, {"A": 6.0, "B": 3.0}), tp(60, {"A": 2.0, "B": 9.0}))
    assert cats(res)[1] == "PMD"
    assert res.timepoints[1].numbers["sul_peak_lesion"] == "B"
    assert res.timepoints[1].numbers["baseline_sul_peak"] == Decimal("6.0")


def test_pmr_blocked_by_a_lesion_more_than_30pct_hotter():
    """PMR: no lesion with > 30 % SUL increase. A 10 → 5 (PMR) but B 3.0 → 4.0 (+33 %)."""
    res = run(tp(0, {"A": 10.0, "B": 3.0}), tp(60, {"A": 5.0, "B": 4.0}))
    assert cats(res)[1] == "SMD"
    assert "hotter or larger" in res.timepoints[1].trace[-1]


def test_pmr_blocked_by_a_lesion_more_than_30pct_larger():
    res = run(tp(0, {"A": {"sul_peak": 10.0, "ld_mm": 20}}),
              tp(60, {"A": {"sul_peak": 5.0, "ld_mm": 27}}))
    assert cats(res)[1] == "SMD"


def test_cmr_uptake_below_liver_mean():
    """CMR: uptake < mean liver; resolved lesions read as background."""
    res = run(tp(0, {"A": 8.0, "B": 4.0}), tp(60, {"A": 0.9, "B": "absent"}))
    assert cats(res)[1] == "CMR"
    # At the liver mean (1.0) it is not CMR (Wahl 2009: "less than mean liver activity").
    res_eq = run(tp(0, {"A": 8.0, "B": 4.0}), tp(60, {"A": 1.0, "B": "absent"}))
    assert cats(res_eq)[1] == "PMR"
    res2 = run(tp(0, {"A": 8.0}), tp(60, {"A": 1.01}))
    assert cats(res2)[1] == "PMR"


def test_cmr_needs_uptake_strictly_below_liver_mean_equality_is_pmr():
    """Issue #12 item 19. PERCIST 1.0 (Wahl 2009, CMR definition): "complete resolution of
    18F-FDG uptake within the measurable target lesion so that it is less than mean liver
    activity". Liver SULmean 2.0 and a target at SULpeak 2.0 (baseline 8.0: −75 %, −6.0 SUL)
    is PMR, not CMR; 1.99 is CMR."""
    refs = {"liver_sul_mean": 2.0, "liver_sul_sd": 0.3}
    equal = run(tp(0, {"A": 8.0}, refs), tp(60, {"A": 2.0}, refs))
    assert cats(equal)[1] == "PMR"
    assert not any(line.startswith("CMR") for line in equal.timepoints[1].trace)
    below = run(tp(0, {"A": 8.0}, refs), tp(60, {"A": 1.99}, refs))
    assert cats(below)[1] == "CMR"
    assert "1.99 < liver SULmean 2" in below.timepoints[1].trace[0]


def test_pmd_by_tlg_increase_75pct_without_fall_in_sul():
    """§6.5 [V]: TLG ≥ +75 % over up to 5 lesions with no fall in SUL → PMD."""
    res = run(tp(0, {"A": {"sul_peak": 5.0, "tlg": 100}}),
              tp(60, {"A": {"sul_peak": 5.5, "tlg": 175}}))
    assert cats(res)[1] == "PMD"
    res2 = run(tp(0, {"A": {"sul_peak": 5.0, "tlg": 100}}),
               tp(60, {"A": {"sul_peak": 4.9, "tlg": 200}}))
    assert cats(res2)[1] == "SMD"


def test_missing_lesion_value_gives_ne_unless_pmd_already_met():
    """§16 item 5: a baseline lesion without a follow-up value → NE; PMD still shows."""
    res = run(tp(0, {"A": 8.0, "B": 6.0}), tp(60, {"A": 3.0, "B": "not_evaluable"}))
    assert cats(res)[1] == "NE"
    res2 = run(tp(0, {"A": 8.0, "B": 6.0}), tp(60, {"A": 12.0, "B": "not_evaluable"}))
    assert cats(res2)[1] == "PMD"


def test_unlisted_lesion_assumed_not_hottest_with_warning_by_default():
    """The reader reports the hottest lesion; an unlisted baseline lesion gives a warning
    (default), or NE with ``percist_unlisted_lesions: "ne"`` (PMD still shows)."""
    res = run(tp(0, {"A": 8.0, "B": 6.0}), tp(60, {"A": 3.0}))
    assert cats(res)[1] == "PMR"
    assert any("not reported" in w for w in res.warnings)
    strict = {"percist_unlisted_lesions": "ne"}
    assert cats(run(tp(0, {"A": 8.0, "B": 6.0}), tp(60, {"A": 3.0}), options=strict))[1] == "NE"
    assert cats(run(tp(0, {"A": 8.0, "B": 6.0}), tp(60, {"A": 12.0}), options=strict))[1] == "PMD"
    quiet = run(tp(0, {"A": 8.0, "B": 6.0}), tp(60, {"A": 3.0}),
                options={"percist_unlisted_lesions": "ignore"})
    assert cats(quiet)[1] == "PMR" and not quiet.warnings


def test_sum_of_5_hottest_option_two_per_organ():
    """Secondary measure: Σ SULpeak of ≤ 5 hottest, ≤ 2 per organ."""
    base = {f"L{i}": {"sul_peak": v, "site": s} for i, (v, s) in enumerate(
        [(9, "liver"), (8, "liver"), (7, "liver"), (6, "lung"), (5, "bone"), (4, "node"),
         (3, "node")])}
    fu = {k: {"sul_peak": float(v["sul_peak"]) / 2, "site": v["site"]} for k, v in base.items()}
    res = run(tp(0, base), tp(60, fu), options={"percist_measure": "sum5"})
    # liver 9+8 (7 skipped), lung 6, bone 5, node 4 → 32; follow-up 16 → −50 %.
    assert res.timepoints[0].numbers["sum_sul_peak"] == Decimal(32)
    assert res.timepoints[1].numbers["sum_sul_peak"] == Decimal(16)
    assert cats(res)[1] == "PMR"


def test_pmd_reference_nadir_option():
    """§6.5 [V]: nadir referencing is an option; default baseline."""
    tps = [tp(0, {"A": 10.0}), tp(60, {"A": 4.0}), tp(120, {"A": 6.0})]
    assert cats(run(*tps)) == ["baseline", "PMR", "PMR"]  # 6.0 is still −40 % vs baseline
    res = run(*tps, options={"percist_pmd_reference": "nadir"})
    assert cats(res) == ["baseline", "PMR", "PMD"]  # 4.0 → 6.0: +50 %, +2.0
    assert res.timepoints[2].numbers["nadir_sul_peak"] == Decimal("4.0")


def test_best_overall_response_until_pmd():
    """BOR: best response from the start of treatment until PMD."""
    res = run(tp(0, {"A": 10.0}), tp(60, {"A": 9.0}), tp(120, {"A": 6.0}),
              tp(180, {"A": 14.0}), tp(240, {"A": 0.5}))
    assert cats(res) == ["baseline", "SMD", "PMR", "PMD", "CMR"]
    assert res.best_overall_response == "PMR"


def test_bor_ne_when_nothing_evaluable():
    res = run(tp(0, {"A": 10.0}), tp(60, {"A": "not_evaluable"}))
    assert res.best_overall_response == "NE"


def test_trace_and_numbers_carried():
    res = run(tp(0, {"A": 5.3}), tp(60, {"A": 3.1}))
    t = res.timepoints[1]
    assert t.overall == "PMR"
    assert t.numbers["baseline_sul_peak"] == Decimal("5.3")
    assert t.numbers["delta_sul"] == Decimal("-2.2")
    assert t.numbers["liver_sul_mean"] == Decimal("1.0")
    assert t.numbers["measurability_threshold"] == Decimal("1.7")
    assert t.trace[-1].startswith("PMR: SULpeak 3.1 is -41.5% and -2.2 SUL from baseline 5.3")
    assert t.to_json()["change_pct"] == pytest.approx(-41.5094, abs=1e-4)


def test_registry_maps_percist():
    assert get_assessor("PERCIST") is assess


def test_bad_option_is_input_error():
    with pytest.raises(InputError, match="percist_measure"):
        run(tp(0, {"A": 5.0}), options={"percist_measure": "max"})


def test_p06_reader_pattern_infection_is_not_pmd():
    """P-06: ``pattern: "infection"`` on the new focus → not PMD, reader decision warning."""
    res = run(tp(0, {"A": 8.0}),
              tp(60, {"A": 4.0, "N1": {"sul_peak": 6.0, "pattern": "infection"}}))
    assert cats(res)[1] == "PMR"
    assert any("reader decision" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("sex", "w", "h_cm", "james", "janma"),
    [
        ("M", 80, 180, "62.72", "61.73"),
        ("F", 60, 165, "44.63", "39.29"),
        ("M", 150, 175, "70.96", "80.56"),
        ("F", 150, 160, "30.42", "60.26"),
        ("F", 200, 160, "-17.25", "66.59"),
    ],
)
def test_p07_lbm_formulas_for_sul(sex, w, h_cm, james, janma):
    """P-07 (§14.6): James and Janmahasatian LBM behind SUL (formulas live in
    ``dicom.bodysize``; James fails at high BMI and goes negative at 200 kg / 160 cm)."""
    from oncohybrid.dicom.bodysize import james_lbm_kg, janmahasatian_lbm_kg

    assert round(james_lbm_kg(w, h_cm / 100, sex), 2) == pytest.approx(float(james), abs=0.006)
    assert round(janmahasatian_lbm_kg(w, h_cm / 100, sex), 2) == pytest.approx(
        float(janma), abs=0.006)
