"""Lugano 2014 (Cheson JCO 2014) and Deauville 5PS — vectors L-01…L-05 (criteria.md §14.7)
plus constructed vectors for the per-lesion PD rule, spleen and the PET/CT combination."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from oncohybrid.response.deauville import score_from_suv
from oncohybrid.response.lugano import assess
from oncohybrid.response.parse import load_case


def tp(day: int, lesions: list[dict] | None = None, **kw) -> dict:
    return {"date": (dt.date(2024, 1, 1) + dt.timedelta(days=day)).isoformat(),
            "lesions": lesions or [], **kw}


def node(lid: str, ldi, sdi, role: str | None = "target", **kw) -> dict:
    out = {"id": lid, "ldi_mm": ldi, "sdi_mm": sdi, "nodal": True, **kw}
    if role:
        out["role"] = role
    return out


def run(criteria: str, *tps, options=None, treatment_start=None):
    data = {"criteria": criteria, "timepoints": list(tps), "options": options or {}}
    if treatment_start:
        data["treatment_start"] = treatment_start
    return assess(load_case(data))


def cats(res) -> list[str]:
    return [t.overall for t in res.timepoints]


# --- L-01 Deauville decision support -----------------------------------------------------

@pytest.mark.parametrize(("suv", "score"), [("1.8", 2), ("2.5", 3), ("4.0", 4), ("8.5", 5)])
def test_l01_deauville_from_suvmax(suv, score):
    """L-01: MBP 2.0, liver 2.8 → 1.8:2, 2.5:3, 4.0:4, 8.5:5 (> 3 × liver)."""
    assert score_from_suv(D(suv), D("2.0"), D("2.8")) == score


@pytest.mark.parametrize(("suv", "score"), [("2.6", 2), ("2.8", 3)])
def test_l01_mbp_at_or_above_liver_compares_with_liver_only(suv, score):
    """L-01: MBP 3.0 ≥ liver 2.8 → 2.6 scores 2, 2.8 scores 3."""
    assert score_from_suv(D(suv), D("3.0"), D("2.8")) == score


def test_l01_cleared_site_scores_1_and_scores_flow_into_pet_engine():
    refs = {"mediastinum_suv_max": 2.0, "liver_suv_max": 2.8}
    res = run("lugano-pet",
              tp(0, [{"id": "A", "role": "target", "suv_max": 12}], references=refs),
              tp(60, [{"id": "A", "suv_max": "absent"}], references=refs))
    assert res.timepoints[1].numbers["deauville"] == {"A": 1}
    assert res.timepoints[1].overall == "CMR"


def test_score5_multiple_is_configurable():
    """2× liver (autods-pet default) moves 6.0 to score 5; 3× keeps it 4."""
    refs = {"mediastinum_suv_max": 2.0, "liver_suv_max": 2.8}
    tps = (tp(0, [{"id": "A", "role": "target", "suv_max": 6.0}], references=refs),)
    assert run("lugano-pet", *tps).timepoints[0].numbers["deauville"] == {"A": 4}
    res = run("lugano-pet", *tps, options={"deauville_score5_liver_multiple": 2})
    assert res.timepoints[0].numbers["deauville"] == {"A": 5}


# --- L-02 CT SPD -------------------------------------------------------------------------

@pytest.mark.parametrize(("fu_cm2", "expected"), [(45, "PR"), (50, "PR"), (55, "SD")])
def test_l02_spd_pr_is_inclusive(fu_cm2, expected):
    """L-02: baseline SPD 100 cm²; 45 → PR, 50 → PR (inclusive), 55 → SD (6 targets)."""
    # Six targets: five 20×20 mm (4 cm² each = 20 cm²) and one sized to reach 100 cm².
    base = [node(f"T{i}", 20, 20) for i in range(5)] + [node("T5", 100, 80)]
    # Follow-up keeps the five at 20×20 (20 cm²) and sets T5 to make fu_cm2 in total.
    rest_mm2 = (fu_cm2 - 20) * 100
    fu = [node(f"T{i}", 20, 20, role=None) for i in range(5)] + [
        node("T5", 100, D(rest_mm2) / 100, role=None)]
    res = run("lugano-ct", tp(0, base), tp(60, fu))
    assert res.timepoints[0].numbers["spd_mm2"] == 10000
    assert res.timepoints[1].numbers["spd_mm2"] == fu_cm2 * 100
    assert res.timepoints[1].overall == expected


# --- per-lesion PD (trap §16 item 11) ------------------------------------------------------

def test_pd_is_per_lesion_not_spd_50pct():
    """Lugano CT PD is lesion-level: SPD +60 % spread over lesions without any single lesion
    meeting LDi > 15 mm + PPD ≥ 50 % + increment is SD, not PD (IWG 2007 trap)."""
    base = [node("A", 20, 10), node("B", 20, 10)]
    # PPD 200 → 308 (+54 %), LDi 22 > 15 mm, but LDi/SDi +2/+4 mm are not > 5 mm.
    fu = [node("A", 22, 14, role=None), node("B", 22, 14, role=None)]
    res = run("lugano-ct", tp(0, base), tp(60, fu))
    assert res.timepoints[1].numbers["change_from_baseline_pct"] > 50
    assert res.timepoints[1].overall == "SD"


def test_pd_small_lesion_needs_more_than_5mm_increment():
    """Lesion ≤ 20 mm at nadir: 12×10 → 17×15: LDi 17 > 15, PPD 255 vs 120 (+112 %), but
    LDi +5 / SDi +5 mm is not > 5 mm → no PD; 12×10 → 18×10 (+6 mm LDi) → PD."""
    base = [node("A", 12, 10), node("B", 30, 30)]
    no = run("lugano-ct", tp(0, base), tp(60, [node("A", 17, 15, None), node("B", 30, 30, None)]))
    assert no.timepoints[1].overall == "SD"
    yes = run("lugano-ct", tp(0, base), tp(60, [node("A", 18, 10, None),
                                                node("B", 30, 30, None)]))
    assert yes.timepoints[1].overall == "PD"
    assert "lesion A" in yes.timepoints[1].trace[0]


def test_pd_large_lesion_needs_more_than_10mm_increment():
    """Lesion > 20 mm: 30×20 → 40×25: PPD 1000 vs 600 (+67 %), LDi +10 not > 10 → SD;
    30×20 → 41×25 → PD."""
    res = run("lugano-ct", tp(0, [node("A", 30, 20)]), tp(60, [node("A", 40, 25, None)]))
    assert res.timepoints[1].overall == "SD"
    res = run("lugano-ct", tp(0, [node("A", 30, 20)]), tp(60, [node("A", 41, 25, None)]))
    assert res.timepoints[1].overall == "PD"


def test_pd_measured_against_the_lesions_own_nadir():
    """Nadir is per lesion: A 30×30 → 12×10 (nadir 120) → 20×14 (PPD 280, +133 %, LDi +8
    > 5 since ≤ 20 mm at nadir) → PD although the SPD is still below baseline."""
    res = run("lugano-ct", tp(0, [node("A", 30, 30), node("B", 40, 40)]),
              tp(60, [node("A", 12, 10, None), node("B", 40, 40, None)]),
              tp(120, [node("A", 20, 14, None), node("B", 40, 40, None)]))
    assert cats(res) == ["baseline", "SD", "PD"]
    assert res.timepoints[2].numbers["spd_mm2"] < res.timepoints[0].numbers["spd_mm2"]


def test_ppd_50pct_is_inclusive():
    """PPD exactly +50 % over nadir: 20×10 (200) → 30×10 (300), LDi +10 > 10? No (lesion
    ≤ 20 mm → 5 mm): +10 > 5 → PD at exactly +50 %."""
    res = run("lugano-ct", tp(0, [node("A", 20, 10)]), tp(60, [node("A", 30, 10, None)]))
    assert res.timepoints[1].overall == "PD"


def test_too_small_is_5x5_and_absent_is_0():
    res = run("lugano-ct", tp(0, [node("A", 30, 20), {"id": "E", "role": "target",
                                                      "ldi_mm": 25, "sdi_mm": 20}]),
              tp(60, [node("A", "too_small", "too_small", None),
                      {"id": "E", "ldi_mm": "absent", "sdi_mm": "absent"}]))
    assert res.timepoints[1].numbers["spd_mm2"] == 25
    assert res.timepoints[1].overall == "CR"  # node 5 mm ≤ 15 mm, extranodal gone


def test_cr_needs_nodes_at_most_15mm():
    base = [node("A", 40, 30)]
    def fu(ldi):
        return run("lugano-ct", tp(0, base), tp(60, [node("A", ldi, 10, None)])).timepoints[1]

    assert fu(15).overall == "CR"
    assert fu(16).overall == "PR"


def test_regrowth_of_resolved_lesion_is_pd():
    res = run("lugano-ct", tp(0, [node("A", 40, 30), node("B", 30, 30)]),
              tp(60, [node("A", "absent", "absent", None), node("B", 20, 20, None)]),
              tp(120, [node("A", 10, 8, None), node("B", 20, 20, None)]))
    assert cats(res)[2] == "PD"


def test_new_lesions_size_rules():
    """(e): new node > 15 mm or extranodal > 10 mm is PD; smaller needs unequivocal lymphoma."""
    base = [node("A", 40, 30)]
    fu = [node("A", 30, 20, None)]
    small = run("lugano-ct", tp(0, base), tp(60, fu + [node("N", 14, 10, "new")]))
    assert small.timepoints[1].overall != "PD"
    big = run("lugano-ct", tp(0, base), tp(60, fu + [node("N", 16, 10, "new")]))
    assert big.timepoints[1].overall == "PD"
    extra = run("lugano-ct", tp(0, base), tp(60, fu + [
        {"id": "N", "role": "new", "ldi_mm": 11, "sdi_mm": 8}]))
    assert extra.timepoints[1].overall == "PD"
    unequivocal = run("lugano-ct", tp(0, base), tp(60, fu + [
        {"id": "N", "role": "new", "ldi_mm": 8, "sdi_mm": 6, "state": "unequivocal"}]))
    assert unequivocal.timepoints[1].overall == "PD"


def test_non_measured_progression_and_marrow():
    base = [node("A", 40, 30), {"id": "M", "role": "non-target", "state": "present"}]
    prog = run("lugano-ct", tp(0, base), tp(60, [
        node("A", 30, 20, None), {"id": "M", "state": "unequivocal_progression"}]))
    assert prog.timepoints[1].overall == "PD"
    marrow = run("lugano-ct", tp(0, [node("A", 40, 30)], marrow="negative"),
                 tp(60, [node("A", 30, 20, None)], marrow="new"))
    assert marrow.timepoints[1].overall == "PD"


def test_missing_target_is_ne_unless_pd():
    base = [node("A", 40, 30), node("B", 30, 20)]
    ne = run("lugano-ct", tp(0, base), tp(60, [node("A", 10, 8, None),
                                              node("B", "not_evaluable", "not_evaluable", None)]))
    assert ne.timepoints[1].overall == "NE"
    pd = run("lugano-ct", tp(0, base), tp(60, [node("A", 60, 45, None),
                                              node("B", "not_evaluable", "not_evaluable", None)]))
    assert pd.timepoints[1].overall == "PD"


# --- L-04 spleen ----------------------------------------------------------------------------

@pytest.mark.parametrize(("length", "expected"), [(160, "SD"), (161, "PD")])
def test_l04_spleen_15cm_pd_if_over_16cm(length, expected):
    """L-04: baseline 15 cm (2 cm above 13): PD if > 16 cm."""
    res = run("lugano-ct", tp(0, [node("A", 30, 20)], spleen_length_mm=150),
              tp(60, [node("A", 30, 20, None)], spleen_length_mm=length))
    assert res.timepoints[1].overall == expected


@pytest.mark.parametrize(("length", "expected"), [(150, "SD"), (149, "PR")])
def test_l04_spleen_17cm_pr_needs_under_15cm(length, expected):
    """L-04: baseline 17 cm: PR requires > 50 % regression of the 4 cm excess, i.e. < 15 cm."""
    res = run("lugano-ct", tp(0, [node("A", 40, 30)], spleen_length_mm=170),
              tp(60, [node("A", 20, 20, None)], spleen_length_mm=length))
    assert res.timepoints[1].overall == expected


def test_l04_normal_spleen_plus_2cm_is_pd():
    """L-04: 11 cm (normal) → 13.5 cm (+2.5 ≥ 2 cm) → PD (also new splenomegaly);
    exactly +2 cm is PD (≥); +1.9 cm is not."""
    def spleen_cat(length):
        return run("lugano-ct", tp(0, [node("A", 30, 20)], spleen_length_mm=110),
                   tp(60, [node("A", 30, 20, None)], spleen_length_mm=length)).timepoints[1]
    res = spleen_cat(135)
    assert res.overall == "PD" and "new splenomegaly" in res.trace[0]
    assert spleen_cat(130).overall == "PD"
    assert spleen_cat(129).overall == "SD"


def test_recurrent_splenomegaly_is_pd():
    res = run("lugano-ct", tp(0, [node("A", 40, 30)], spleen_length_mm=150),
              tp(60, [node("A", 20, 20, None)], spleen_length_mm=125),
              tp(120, [node("A", 20, 20, None)], spleen_length_mm=135))
    assert cats(res)[2] == "PD"


# --- L-05 PET categories -------------------------------------------------------------------

def pet_case(base_score, fu_score, *, base_suv=None, fu_suv=None, **fu_kw):
    b = {"id": "A", "role": "target", "deauville": base_score}
    f = {"id": "A", "deauville": fu_score}
    if base_suv is not None:
        b["suv_max"] = base_suv
    if fu_suv is not None:
        f["suv_max"] = fu_suv
    return tp(0, [b]), tp(60, [f], **fu_kw)


def test_l05_end_of_treatment_score3_residual_mass_is_cmr():
    """L-05: EoT residual 3 cm mass at score 3, no new lesions, marrow clear → CMR."""
    b = tp(0, [{"id": "A", "role": "target", "deauville": 5, "ldi_mm": 60, "sdi_mm": 50,
                "nodal": True}], marrow="involved")
    f = tp(120, [{"id": "A", "deauville": 3, "ldi_mm": 30, "sdi_mm": 25}], marrow="negative",
           phase="end_of_treatment")
    res = run("lugano-pet", b, f)
    assert res.timepoints[1].overall == "CMR"
    combined = run("lugano", b, f)
    assert combined.timepoints[1].overall == "CR"  # PET overrides the CT (30 mm node: PR)
    assert combined.timepoints[1].numbers["ct_response"] == "PR"
    assert combined.extra["end_of_treatment"]["response"] == "CR"


def test_l05_interim_score4_reduced_is_pmr_unchanged_is_nmr():
    """L-05: score 4 with reduced uptake → PMR; score 4 with unchanged uptake → NMR."""
    assert run("lugano-pet", *pet_case(5, 4)).timepoints[1].overall == "PMR"
    assert run("lugano-pet", *pet_case(4, 4, base_suv=9, fu_suv=5)).timepoints[1].overall == "PMR"
    assert run("lugano-pet", *pet_case(4, 4, base_suv=6, fu_suv=5.8)).timepoints[1].overall == "NMR"
    assert run("lugano-pet", *pet_case(4, 4)).timepoints[1].overall == "NMR"
    visual = run("lugano-pet", *pet_case(4, 4, uptake_change="reduced"))
    assert visual.timepoints[1].overall == "PMR"


def test_l05_score5_increased_is_pmd():
    """L-05: score 5 with increased uptake → PMD."""
    assert run("lugano-pet", *pet_case(4, 5)).timepoints[1].overall == "PMD"
    assert run("lugano-pet", *pet_case(5, 5, base_suv=10, fu_suv=15)).timepoints[1].overall == "PMD"


def test_l05_pet_overrides_ct():
    """L-05: PET-based response overrides CT (CT PD by size, PET CMR → CR)."""
    b = tp(0, [node("A", 20, 15, deauville=5)])
    f = tp(60, [node("A", 40, 30, None, deauville=2)])
    res = run("lugano", b, f)
    assert res.timepoints[1].numbers["ct_response"] == "PD"
    assert res.timepoints[1].overall == "CR"


def test_new_fdg_avid_focus_is_pmd_and_deauville_x_is_not():
    b = tp(0, [{"id": "A", "role": "target", "deauville": 5}])
    res = run("lugano-pet", b, tp(60, [{"id": "A", "deauville": 2},
                                       {"id": "N", "role": "new", "deauville": 5}]))
    assert res.timepoints[1].overall == "PMD"
    res = run("lugano-pet", b, tp(60, [{"id": "A", "deauville": 2},
                                       {"id": "N", "role": "new", "deauville": "X"}]))
    assert res.timepoints[1].overall == "CMR"


def test_marrow_rules_pet():
    b = tp(0, [{"id": "A", "role": "target", "deauville": 5}], marrow="involved")
    assert run("lugano-pet", b, tp(60, [{"id": "A", "deauville": 2}], marrow="reduced")
               ).timepoints[1].overall == "PMR"
    assert run("lugano-pet", b, tp(60, [{"id": "A", "deauville": 2}], marrow="unchanged")
               ).timepoints[1].overall == "NMR"
    assert run("lugano-pet", b, tp(60, [{"id": "A", "deauville": 2}], marrow="reactive")
               ).timepoints[1].overall == "CMR"
    assert run("lugano-pet", b, tp(60, [{"id": "A", "deauville": 2}], marrow="recurrent")
               ).timepoints[1].overall == "PMD"


def test_physiological_uptake_exception_allows_cmr():
    """Waldeyer's ring / activated marrow: uptake no higher than surrounding tissue → CMR."""
    b = tp(0, [{"id": "W", "role": "target", "deauville": 5, "site": "waldeyer"}])
    f = tp(60, [{"id": "W", "deauville": 4, "physiological_background": True}])
    res = run("lugano-pet", b, f)
    assert res.timepoints[1].overall == "CMR"
    assert any("physiological" in line for line in res.timepoints[1].trace)


def test_score3_positive_option():
    assert run("lugano-pet", *pet_case(5, 3)).timepoints[1].overall == "CMR"
    res = run("lugano-pet", *pet_case(5, 3), options={"lugano_score3_positive": True})
    assert res.timepoints[1].overall == "PMR"


def test_combined_pet_ne_carries_forward_and_ct_pd_wins():
    """§8.4 (sponsor convention): PET NE + CT PD → PD; PET NE + CT non-PD → last PET."""
    b = tp(0, [node("A", 40, 30, deauville=5)])
    f1 = tp(60, [node("A", 30, 20, None, deauville=4)])  # PMR → PR
    f2 = tp(120, [node("A", 25, 20, None, suv_max="not_evaluable")], pet=True)  # PET NE
    res = run("lugano", b, f1, f2)
    assert cats(res)[1:] == ["PR", "PR"]
    f3 = tp(120, [node("A", 60, 45, None, suv_max="not_evaluable")], pet=True)
    res = run("lugano", b, f1, f3)
    assert cats(res)[1:] == ["PR", "PD"]
    f4 = tp(120, [node("A", 15, 10, None)])  # no PET → CT
    res = run("lugano", b, f1, f4)
    assert cats(res)[2] == "CR"


def test_bor_best_before_progression():
    b = tp(0, [node("A", 40, 30)])
    res = run("lugano-ct", b, tp(60, [node("A", 35, 30, None)]), tp(120, [node("A", 20, 20, None)]),
              tp(180, [node("A", 40, 35, None)]), tp(240, [node("A", 10, 5, None)]))
    assert cats(res)[1:] == ["SD", "PR", "PD", "CR"]
    assert res.best_overall_response == "PR"


def test_l04_spleen_only_disease_pr_and_pd():
    """L-04 with the spleen as the only measured disease: 17 → 14.9 cm PR, 15 → 16.1 cm PD."""
    assert cats(run("lugano-ct", tp(0, spleen_length_mm=170),
                    tp(60, spleen_length_mm=149)))[1] == "PR"
    assert cats(run("lugano-ct", tp(0, spleen_length_mm=170),
                    tp(60, spleen_length_mm=150)))[1] == "SD"
    assert cats(run("lugano-ct", tp(0, spleen_length_mm=150),
                    tp(60, spleen_length_mm=161)))[1] == "PD"


def test_mbp_reference_alias():
    refs = {"mbp_suv_max": 2.0, "liver_suv_max": 2.8}
    res = run("lugano-pet", tp(0, [{"id": "A", "role": "target", "suv_max": 2.5}],
                               references=refs))
    assert res.timepoints[0].numbers["deauville"] == {"A": 3}
