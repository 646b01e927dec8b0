"""Second independent audit of the response engines against the criteria notes
(/work/shared/docs/criteria.md, cited "criteria §x"): iRECIST, mRECIST, Choi, PERCIST,
EORTC, Lugano 2014 (PET, CT, combined), LYRIC, RECIP 1.0 and Krenning.

Cases go through the public entry points ``load_case(dict)`` + ``get_assessor(name)`` and a
few through ``oncohybrid respond --json``. Every expected answer is worked out by hand from
the rule text in the docstring (exact decimal arithmetic), never from running the engine.
tests/audit/test_audit_response.py covers RECIST 1.1 and tests/response the notes' §14
vectors; this file adds multi-timepoint sequences (reference / nadir tracking, confirmation,
reset, best response) and exact boundaries.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.response.parse import load_case
from oncohybrid.response.registry import get_assessor

D0 = dt.date(2024, 1, 1)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def tp(n: int, lesions: list[dict], **kw) -> dict:
    """A timepoint ``n`` days after treatment start (= baseline date)."""
    return {"date": str(day(n)), "lesions": lesions, **kw}


def case(criteria: str, *tps: dict, **options) -> dict:
    return {"criteria": criteria, "treatment_start": str(D0), "options": options,
            "timepoints": list(tps)}


def run(criteria: str, *tps: dict, **options):
    data = case(criteria, *tps, **options)
    return get_assessor(criteria)(load_case(data))


def cats(res) -> list[str]:
    return [t.overall for t in res.timepoints[1:]]


def lesion(lid: str, role: str | None = None, **kw) -> dict:
    out: dict = {"id": lid, **kw}
    if role:
        out["role"] = role
    return out


def tgt(*lds, first: bool = False) -> list[dict]:
    """Non-nodal targets T0..Tn (one organ each); ``first``: baseline rows with role."""
    return [lesion(f"T{i}", "target" if first else None, site=f"organ{i}", ld_mm=v)
            for i, v in enumerate(lds)]


def node(lid: str, ldi, sdi, role: str | None = None, **kw) -> dict:
    return lesion(lid, role, nodal=True, ldi_mm=ldi, sdi_mm=sdi, **kw)


# =========================================================================== iRECIST (§3)

def test_irecist_iupd_ne_then_confirmation_dates_pd_to_the_iupd():
    """criteria §3.4–3.6: BL 50 → d56 40 (−20 %: iSD; nadir 40) → d112 50 (+25 %, +10 mm
    over nadir 40: iUPD) → d168 not imaged (NE; the iUPD stays pending) → d224 55 (+5 mm over
    the iUPD sum 50: iCPD). iBOR = iSD (d56 ≥ 42 days); PD date = the iUPD (d112)."""
    res = run("irecist", tp(0, tgt(50, first=True)), tp(56, tgt(40)), tp(112, tgt(50)),
              tp(168, [], assessed=False), tp(224, tgt(55)))
    assert cats(res) == ["iSD", "iUPD", "NE", "iCPD"]
    assert res.best_overall_response == "iSD"
    assert res.extra["progression_date"] == day(112)
    assert res.timepoints[4].numbers["confirmed_iupd_date"] == day(112)


def test_irecist_reset_keeps_pre_iupd_nadir_and_needs_fresh_recist_pd():
    """criteria §3.4 "bar reset", §1.3: BL 50 → d56 40 (nadir 40) → d112 50 (iUPD) → d168 44
    (+10 %, +4 mm vs nadir 40: not PD → iSD, the iUPD lapses; 44 > 40 so nadir stays 40) →
    d224 49 (+22.5 %, +9 mm vs 40: a *new* iUPD, not iCPD although 49 − 44 = 5) → d280 54
    (+5 mm over 49: iCPD). PD date = the second iUPD (d224), as in vector I-08."""
    res = run("irecist", tp(0, tgt(50, first=True)), tp(56, tgt(40)), tp(112, tgt(50)),
              tp(168, tgt(44)), tp(224, tgt(49)), tp(280, tgt(54)))
    assert cats(res) == ["iSD", "iUPD", "iSD", "iUPD", "iCPD"]
    assert res.extra["progression_date"] == day(224)
    assert res.best_overall_response == "iSD"


def test_irecist_new_lesion_iupd_reset_then_nl_som_progression_and_confirmation():
    """criteria §3.2–3.4: d56 new liver lesion N1 LD 12 (measurable → NLT, NL-SOM 12): iUPD.
    d112 targets 48 → 45 (shrinking further, scenario B), N1 unchanged: reset → iSD (−10 %).
    d168 N1 18: NL-SOM +6 mm and +50 % over its own nadir 12 → fresh iUPD (§3.4 after a
    reset). d224 N1 23: NL-SOM +5 mm over 18 at the iUPD → iCPD; PD date d168."""
    base = tp(0, tgt(50, first=True))
    res = run("irecist", base,
              tp(56, tgt(48) + [lesion("N1", "new", site="liver", ld_mm=12)]),
              tp(112, tgt(45) + [lesion("N1", ld_mm=12)]),
              tp(168, tgt(45) + [lesion("N1", ld_mm=18)]),
              tp(224, tgt(45) + [lesion("N1", ld_mm=23)]))
    assert cats(res) == ["iUPD", "iSD", "iUPD", "iCPD"]
    assert res.timepoints[1].numbers["nl_som_mm"] == 12
    assert res.timepoints[1].numbers["sum_mm"] == 48  # NL-SOM never added to the target SOM
    assert res.extra["progression_date"] == day(168)


def test_irecist_early_scan_cannot_confirm_growth_then_4_week_scan_does():
    """criteria §3.4 timing: iUPD d56 (40 → 50 after nadir 40). d70 (14 days later, no
    clinical trigger) shows 60 (+10 mm): cannot confirm → iUPD. d112 (56 days after the iUPD)
    still 60: +10 mm over the iUPD sum 50 → iCPD, dated to d56."""
    res = run("irecist", tp(0, tgt(40, first=True)), tp(56, tgt(50)), tp(70, tgt(60)),
              tp(112, tgt(60)))
    assert cats(res) == ["iUPD", "iUPD", "iCPD"]
    assert res.extra["progression_date"] == day(56)
    assert any("cannot confirm" in line for line in res.timepoints[2].trace)


def test_irecist_new_lesion_on_early_scan_confirms_at_the_4_week_scan():
    """criteria §3.4 (timing; "a category that had not met iUPD now meets RECIST 1.1 PD"):
    iUPD from the targets at d56 (40 → 50). A new liver lesion appears on an unscheduled d70
    scan without a clinical trigger (14 days: cannot confirm → iUPD). At the proper d112 scan
    (8 weeks after the iUPD) the new lesion is still there → iCPD, dated to the iUPD."""
    res = run("irecist", tp(0, tgt(40, first=True)), tp(56, tgt(50)),
              tp(70, tgt(50) + [lesion("N1", "new", site="liver", ld_mm=12)]),
              tp(112, tgt(50) + [lesion("N1", ld_mm=12)]))
    assert cats(res) == ["iUPD", "iUPD", "iCPD"]
    assert res.extra["progression_date"] == day(56)


def test_irecist_new_lesion_gone_by_the_confirmation_scan_does_not_confirm():
    """criteria §3.4/§3.5: as above, but the d70 lesion is gone at d112 and the targets are
    unchanged (still PD vs nadir 40) → neither confirmed nor reset → iUPD."""
    res = run("irecist", tp(0, tgt(40, first=True)), tp(56, tgt(50)),
              tp(70, tgt(50) + [lesion("N1", "new", site="liver", ld_mm=12)]),
              tp(112, tgt(50) + [lesion("N1", ld_mm="absent")]))
    assert cats(res) == ["iUPD", "iUPD", "iUPD"]


@pytest.mark.parametrize(("nt_state", "expected"), [("present", "iSD"), ("increased", "iUPD")])
def test_irecist_no_bar_reset_while_a_non_target_grows(nt_state, expected):
    """criteria §3.5 (reset needs "no further growth in any category"): iUPD from the targets
    (40 → 50, +25 %, +10 mm). Next visit 44 (+10 %, +4 mm vs nadir 40: target iSD). With the
    bone non-target unchanged → reset to iSD; with it increased (not unequivocally, so not
    RECIST PD and not iCPD for a category that did not cause the iUPD) → stays iUPD."""
    nt = [lesion("B1", "non-target", site="bone", state="present")]
    res = run("irecist", tp(0, tgt(40, first=True) + nt),
              tp(56, tgt(50) + [lesion("B1", state="present")]),
              tp(112, tgt(44) + [lesion("B1", state=nt_state)]))
    assert cats(res) == ["iUPD", expected]


@pytest.mark.parametrize(("nl_ld", "expected"), [(12, "iSD"), (15, "iUPD"), (17, "iCPD")])
def test_irecist_scenario_b_reset_only_if_the_new_lesion_did_not_grow(nl_ld, expected):
    """criteria §3.5 (Scenario B: targets shrink further *and the new lesion did not grow*;
    §3.4: NL-SOM +≥ 5 mm confirms): iUPD from new liver lesion N1 (LD 12 → NLT, NL-SOM 12),
    targets 48. Next: targets 45 (shrank). N1 12 → reset iSD (−10 % vs baseline 50); N1 15
    (+3 mm: growth, not ≥ 5) → stays iUPD; N1 17 (+5 mm) → iCPD."""
    res = run("irecist", tp(0, tgt(50, first=True)),
              tp(56, tgt(48) + [lesion("N1", "new", site="liver", ld_mm=12)]),
              tp(112, tgt(45) + [lesion("N1", ld_mm=nl_ld)]))
    assert cats(res) == ["iUPD", expected]


def test_irecist_icr_only_when_new_lesions_have_gone_too():
    """criteria §3.4 "iCR requires every lesion, baseline and new, to disappear": d56 new
    lesion (iUPD); d112 targets 0 but N1 still there → iPR (reset, targets shrank); d168 N1
    absent as well → iCR. iBOR iCR."""
    res = run("irecist", tp(0, tgt(50, first=True)),
              tp(56, tgt(40) + [lesion("N1", "new", site="liver", ld_mm=12)]),
              tp(112, tgt(0) + [lesion("N1", ld_mm=12)]),
              tp(168, tgt(0) + [lesion("N1", ld_mm="absent")]))
    assert cats(res) == ["iUPD", "iPR", "iCR"]
    assert res.best_overall_response == "iCR"


def test_irecist_non_target_iupd_persisting_then_only_ne_gives_ibor_iupd():
    """criteria §3.5/§3.6: NT unequivocal progression at d56 → iUPD; d112 NT present but not
    further increased, target stable → stays iUPD (Table 2: remains iUPD unless a further NT
    increase); d168 not imaged → NE. iBOR = iUPD (iUPD followed only by NE/iUPD)."""
    base = tp(0, tgt(50, first=True) + [lesion("B1", "non-target", site="bone",
                                               state="present")])
    res = run("irecist", base,
              tp(56, tgt(50) + [lesion("B1", state="unequivocal_progression")]),
              tp(112, tgt(50) + [lesion("B1", state="present")]),
              tp(168, [], assessed=False))
    assert cats(res) == ["iUPD", "iUPD", "NE"]
    assert res.best_overall_response == "iUPD"
    assert res.extra["progression_date"] is None


def test_irecist_non_target_only_disease_category_spelling():
    """criteria §3.1: non-target-only disease that persists is "non-iCR/non-iUPD" (not iSD);
    it counts for iBOR from day 42 (d56 here)."""
    res = run("irecist", tp(0, [lesion("B1", "non-target", site="bone", state="present")]),
              tp(56, [lesion("B1", state="present")]))
    assert cats(res) == ["non-iCR/non-iUPD"]
    assert res.best_overall_response == "non-iCR/non-iUPD"


def test_irecist_exact_5_mm_confirms_and_4_9_does_not():
    """criteria §3.4 (≥ 5 mm, the paper's "> 5 mm" row is a typo): iUPD sum 41.5 (nadir 33.2:
    +25 %, +8.3 mm); confirmation 46.4 is +4.9 mm → stays iUPD; 46.5 is +5.0 → iCPD."""
    base = tp(0, tgt(33.2, first=True))
    no = run("irecist", base, tp(56, tgt(41.5)), tp(112, tgt(46.4)))
    yes = run("irecist", base, tp(56, tgt(41.5)), tp(112, tgt(46.5)))
    assert cats(no) == ["iUPD", "iUPD"]
    assert cats(yes) == ["iUPD", "iCPD"]


# =========================================================================== mRECIST (§4)

def viable(*vals, first: bool = False) -> list[dict]:
    return [lesion(f"T{i}", "target" if first else None, site="liver" if i < 2 else f"o{i}",
                   viable_ld_mm=v) for i, v in enumerate(vals)]


def test_mrecist_no_arterial_phase_visit_is_ne_and_not_the_nadir():
    """criteria §4.2/§4.3, trap 14: viable 40 → d56 20 (−50 %: PR; nadir 20) → d112 without
    arterial phase (viable 10 recorded, unusable): NE, the nadir stays 20 → d168 23 (+15 % vs
    nadir 20: not PD; −42.5 % vs baseline: PR). With a nadir of 10, 23 would wrongly be PD."""
    res = run("mrecist", tp(0, viable(40, first=True)), tp(56, viable(20)),
              tp(112, viable(10), arterial_phase=False), tp(168, viable(23)))
    assert cats(res) == ["PR", "NE", "PR"]


def test_mrecist_pd_without_5_mm_floor_over_three_visits():
    """criteria §4.3 (no absolute floor), trap 2: viable 30 → 15 (PR) → 18 (+20 % over the
    nadir 15 and only +3 mm) → PD in mRECIST; RECIST 1.1 on the same LDs would stay PR."""
    res = run("mrecist", tp(0, viable(30, first=True)), tp(56, viable(15)), tp(112, viable(18)))
    assert cats(res) == ["PR", "PD"]
    assert res.best_overall_response == "PR"
    rec = run("recist1.1", tp(0, tgt(30, first=True)), tp(56, tgt(15)), tp(112, tgt(18)))
    assert cats(rec) == ["PR", "PR"]


def test_mrecist_cr_needs_no_enhancement_in_targets_and_non_targets():
    """criteria §4.3/§4.4: all targets viable 0 and the non-target no longer enhancing
    (absent) → CR; the non-target still enhancing → PR (target CR + NT IR/SD)."""
    base = tp(0, viable(25, 15, first=True) + [lesion("PV", "non-target", site="liver",
                                                      state="present")])
    cr = run("mrecist", base, tp(56, viable(0, 0) + [lesion("PV", state="absent")]))
    pr = run("mrecist", base, tp(56, viable(0, 0) + [lesion("PV", state="present")]))
    assert cats(cr) == ["CR"]
    assert cats(pr) == ["PR"]
    assert pr.timepoints[1].non_target == "IR/SD"


def test_mrecist_porta_hepatis_node_counts_only_from_20_mm():
    """criteria §4.5, vector M-03(a): a new porta hepatis node SA 18 mm is not malignant (no
    PD); at the next visit SA 20 mm → PD."""
    base = tp(0, viable(40, first=True))
    res = run("mrecist", base,
              tp(56, viable(38) + [lesion("P1", "new", site="porta hepatis", nodal=True,
                                          sa_mm=18)]),
              tp(112, viable(38) + [lesion("P1", sa_mm=20)]))
    assert cats(res) == ["SD", "PD"]


# =========================================================================== Choi (§5)

def choi_t(sizes, hus, first=False):
    return [lesion(f"T{i}", "target" if first else None, site=f"o{i}", ld_mm=s, hu_mean=h)
            for i, (s, h) in enumerate(zip(sizes, hus, strict=True))]


def test_choi_default_baseline_reference_vs_nadir_option():
    """criteria §5.2 ("the paper compares with baseline"; nadir configurable [V]): size 80 /
    60 HU → d56 70 / 50 HU (−12.5 % size: PR) → d112 80 / 60 HU: vs baseline 0 % → SD; vs
    the nadir 70 it is +14.3 % with no density fall → PD under ``choi_reference: nadir``."""
    tps = (tp(0, choi_t([40, 40], [60, 60], True)), tp(56, choi_t([35, 35], [50, 50])),
           tp(112, choi_t([40, 40], [60, 60])))
    assert cats(run("choi", *tps)) == ["PR", "SD"]
    assert cats(run("choi", *tps, choi_reference="nadir")) == ["PR", "PD"]


@pytest.mark.parametrize(
    ("size", "hu", "choi", "mchoi"),
    [
        (72, 60, "PR", "SD"),   # size exactly −10 %: PR (inclusive), density 0 %
        (80, 51, "PR", "SD"),   # density exactly −15 %: PR
        (88, 55, "PD", "PD"),   # size exactly +10 %, density −8.3 %: PD
        (88, 51, "PR", "SD"),   # size +10 % but density −15 %: PR by density, not PD
        (72, 51, "PR", "PR"),   # both met exactly: mChoi PR
        (73, 52, "SD", "SD"),   # −8.75 % / −13.3 %: neither
    ],
)
def test_choi_and_mchoi_exact_boundaries(size, hu, choi, mchoi):
    """criteria §5.2 / §13 (Choi PR size ≤ −10 % or HU ≤ −15 %; mChoi both; PD size ≥ +10 %
    and not PR by density). Baseline one target 80 mm, 60 HU."""
    tps = (tp(0, choi_t([80], [60], True)), tp(56, choi_t([size], [hu])))
    assert cats(run("choi", *tps)) == [choi]
    assert cats(run("choi", *tps, choi_variant="mchoi")) == [mchoi]


def test_choi_no_portal_venous_phase_density_not_evaluable():
    """criteria §5.1 / trap 14: no portal-venous phase → density unusable. Size −5 % cannot be
    decided between PR-by-density and SD → NE; size −12.5 % is PR on size alone."""
    base = tp(0, choi_t([80], [60], True))
    assert cats(run("choi", base, tp(56, choi_t([76], [40]), portal_venous_phase=False))) == [
        "NE"]
    assert cats(run("choi", base, tp(56, choi_t([70], [40]), portal_venous_phase=False))) == [
        "PR"]


# =========================================================================== PERCIST (§6)

LIVER = {"liver_sul_mean": 2.0, "liver_sul_sd": 0.3}  # threshold 1.5·2.0 + 2·0.3 = 3.6


def sul(lid: str, value, role: str | None = None, site: str | None = None) -> dict:
    return lesion(lid, role, site=site, sul_peak=value) if role else lesion(lid, sul_peak=value)


def pet(n: int, lesions: list[dict], refs: dict | None = None, **kw) -> dict:
    return tp(n, lesions, references=refs if refs is not None else LIVER, **kw)


def test_percist_sequence_pmr_cmr_then_new_lesion_pmd_bor_cmr():
    """criteria §6.5: SULpeak 10.0 → 6.9 (−31 %, −3.1 SUL: PMR; 69 ≤ 70) → 1.9 (≤ liver mean
    2.0: CMR) → a new FDG-avid lesion typical of tumour: PMD. BOR = CMR (best before PMD)."""
    res = run("percist", pet(0, [sul("A", 10.0, "target", "lung")]), pet(56, [sul("A", 6.9)]),
              pet(112, [sul("A", 1.9)]),
              pet(168, [sul("A", 1.9), lesion("X", "new", site="bone", sul_peak=5.0)]))
    assert cats(res) == ["PMR", "CMR", "PMD"]
    assert res.best_overall_response == "CMR"


def test_percist_hottest_switch_to_a_lesion_30pct_hotter_blocks_pmr():
    """criteria §6.4/§6.5: baseline A 8.0 (hottest, measurable), B 2.0 (below 3.6). Follow-up
    A 3.0, B 5.0: the hottest lesion is now B, 5.0 vs 8.0 = −37.5 % and −3.0 SUL, but B rose
    +150 % (> 30 % hotter) → no PMR → SMD; not PMD (5.0 < baseline hottest)."""
    res = run("percist", pet(0, [sul("A", 8.0, "target", "lung"), sul("B", 2.0, "target",
                                                                         "bone")]),
              pet(56, [sul("A", 3.0), sul("B", 5.0)]))
    assert cats(res) == ["SMD"]
    t = res.timepoints[1]
    assert t.numbers["sul_peak_lesion"] == "B"
    assert t.numbers["sul_peak"] == 5


@pytest.mark.parametrize(("base", "expected"), [(3.6, "PMR"), (3.5, "NE")])
def test_percist_measurability_boundary_is_inclusive(base, expected):
    """criteria §6.3, vector P-01: threshold 1.5 × 2.0 + 2 × 0.3 = 3.6. Baseline 3.6 is
    measurable (≥); follow-up 2.5 is −30.6 % and −1.1 SUL → PMR (2.5 > liver 2.0, not CMR).
    Baseline 3.5 is not measurable → the follow-up is NE."""
    res = run("percist", pet(0, [sul("A", base, "target", "lung")]), pet(56, [sul("A", 2.5)]))
    assert cats(res) == [expected]
    assert res.timepoints[0].numbers["measurability_threshold"] == Decimal("3.6")


@pytest.mark.parametrize(("uptake", "expected"), [(75, "SMD"), (45, "SMD"), (76, "NE")])
def test_percist_uptake_time_within_15_min_is_comparable(uptake, expected):
    """criteria §6.2: follow-up uptake time within ± 15 min of the baseline 60 min is
    comparable (75 and 45 are exactly 15 min off); 76 min is not → NE. SULpeak 10 → 10."""
    res = run("percist", pet(0, [sul("A", 10, "target", "lung")], uptake_min=60),
              pet(56, [sul("A", 10)], uptake_min=uptake))
    assert cats(res) == [expected]


def test_percist_cmr_uses_the_follow_up_liver_reference():
    """criteria §6.5 CMR "≤ mean liver": liver 2.0 → 2.2 (+10 %, +0.2: comparable); hottest
    2.1 ≤ follow-up liver mean 2.2 → CMR although it is above the baseline liver 2.0."""
    res = run("percist", pet(0, [sul("A", 10, "target", "lung")]),
              pet(56, [sul("A", 2.1)], {"liver_sul_mean": 2.2, "liver_sul_sd": 0.3}))
    assert cats(res) == ["CMR"]


def test_percist_bor_stops_at_first_pmd_and_ignores_ne():
    """criteria §6.5 "BOR: best response from start of treatment until PMD": 10 → 6.0 (PMR)
    → liver 2.0→2.6 (+30 %: not comparable, NE) → 8.0 (−20 %: SMD) → 13.5 (+35 %, +3.5:
    PMD) → 1.0 (CMR after PMD, ignored). BOR PMR."""
    res = run("percist", pet(0, [sul("A", 10, "target", "lung")]), pet(56, [sul("A", 6.0)]),
              pet(84, [sul("A", 6.0)], {"liver_sul_mean": 2.6, "liver_sul_sd": 0.3}),
              pet(112, [sul("A", 8.0)]), pet(168, [sul("A", 13.5)]), pet(224, [sul("A", 1.0)]))
    assert cats(res) == ["PMR", "NE", "SMD", "PMD", "CMR"]
    assert res.best_overall_response == "PMR"
    assert res.timepoints[2].numbers["comparable"] is False


def test_percist_pmd_strict_on_float_trap_values():
    """criteria §1.2/§6.5: 2.4 → 3.2 is exactly +0.8 SUL (+33.3 %) → not PMD (strict) → SMD;
    2.4 → 3.21 → PMD. Liver 1.2/0.1 (threshold 2.0) keeps 2.4 measurable."""
    refs = {"liver_sul_mean": 1.2, "liver_sul_sd": 0.1}
    base = pet(0, [sul("A", 2.4, "target", "lung")], refs)
    assert cats(run("percist", base, pet(56, [sul("A", 3.2)], refs))) == ["SMD"]
    assert cats(run("percist", base, pet(56, [sul("A", 3.21)], refs))) == ["PMD"]


# =========================================================================== EORTC (§7)

def suv(lid: str, value, role: str | None = None, **kw) -> dict:
    return lesion(lid, role, suv_max=value, **kw)


def test_eortc_cycle_dependent_thresholds_over_a_sequence():
    """criteria §7.2 / §13: baseline SUV 10. Cycle 1: 8.5 (exactly −15 %) → PMR. Cycle 2: 7.5
    (exactly −25 %, needs > 25 %) → SMD. Cycle 3: 7.4 (−26 %) → PMR. Cycle 4: 12.5 (exactly
    +25 %, PMD needs > 25 %) → SMD. Cycle 5: 12.6 (+26 %) → PMD. BOR PMR."""
    res = run("eortc", tp(0, [suv("A", 10, "target")]),
              tp(21, [suv("A", 8.5)], cycles=1), tp(42, [suv("A", 7.5)], cycles=2),
              tp(63, [suv("A", 7.4)], cycles=3), tp(84, [suv("A", 12.5)], cycles=4),
              tp(105, [suv("A", 12.6)], cycles=5))
    assert cats(res) == ["PMR", "SMD", "PMR", "SMD", "PMD"]
    assert res.best_overall_response == "PMR"


@pytest.mark.parametrize(("ld", "expected"), [(60, "SMD"), (61, "PMD")])
def test_eortc_extent_increase_must_exceed_20pct(ld, expected):
    """criteria §7.2: PMD when the extent visibly increases > 20 % in the longest dimension:
    50 → 60 mm is exactly +20 % → not PMD (SUV unchanged → SMD); 61 mm → PMD."""
    res = run("eortc", tp(0, [suv("A", 10, "target", ld_mm=50)]),
              tp(42, [suv("A", 10, ld_mm=ld)], cycles=2))
    assert cats(res) == [expected]


def test_eortc_sum_with_one_lesion_resolved_is_pmr_and_all_resolved_is_cmr():
    """criteria §7.1/§7.2: baseline SUV sum A 6 + B 4 = 10. After 2 cycles A 5, B gone (0):
    sum 5 (−50 %, > 25 %) → PMR. Later A and B both gone → CMR."""
    res = run("eortc", tp(0, [suv("A", 6, "target"), suv("B", 4, "target")]),
              tp(42, [suv("A", 5), suv("B", "absent")], cycles=2),
              tp(84, [suv("A", "absent"), suv("B", "absent")], cycles=4))
    assert cats(res) == ["PMR", "CMR"]
    assert res.timepoints[1].numbers["suv"] == 5


# =========================================================================== Lugano PET (§8.1–8.2)

def ds(lid: str, score, role: str | None = None, **kw) -> dict:
    return lesion(lid, role, deauville=score, **kw)


def test_lugano_pet_interim_pmr_then_end_of_treatment_cmr():
    """criteria §8.1/§8.2, vector L-05: baseline A 5, B 4. Interim: A 4 (score fell: reduced
    uptake), B 3 → PMR ("responding disease"). End of treatment: A 3, B 2 → CMR (score 3 is
    negative at EOT). BOR CMR; end-of-treatment response CMR read at the EOT scan."""
    res = run("lugano-pet", tp(0, [ds("A", 5, "target"), ds("B", 4, "target")]),
              tp(56, [ds("A", 4), ds("B", 3)], phase="interim"),
              tp(140, [ds("A", 3), ds("B", 2)], phase="end_of_treatment"))
    assert cats(res) == ["PMR", "CMR"]
    assert any("responding disease" in line for line in res.timepoints[1].trace)
    assert res.best_overall_response == "CMR"
    eot = res.extra["end_of_treatment"]
    assert eot["response"] == "CMR" and eot["basis"] == "end_of_treatment"
    assert eot["date"] == day(140)


def test_lugano_pet_end_of_treatment_pmr_is_residual_disease():
    """criteria §8.2 PMR row: at end of treatment a reduced score 4–5 means residual
    disease (category PMR)."""
    res = run("lugano-pet", tp(0, [ds("A", 5, "target")]),
              tp(140, [ds("A", 4)], phase="end_of_treatment"))
    assert cats(res) == ["PMR"]
    assert any("residual disease" in line for line in res.timepoints[1].trace)


def test_lugano_pet_site_recorded_as_gone_scores_1_and_gives_cmr():
    """criteria §8.1 (score 1 = no uptake above background) / §1.1 (absent = 0): a follow-up
    PET that records every site as ``state: absent`` is CMR, not "no PET"."""
    res = run("lugano-pet", tp(0, [ds("A", 5, "target"), ds("B", 4, "target")]),
              tp(140, [lesion("A", state="absent"), lesion("B", state="absent")]))
    assert cats(res) == ["CMR"]
    assert res.timepoints[1].numbers["deauville"] == {"A": 1, "B": 1}


def test_lugano_pet_sequence_nmr_pmr_pmd_bor_pmr():
    """criteria §8.2 / §8.4 (BOR = best before progression): baseline A score 5 SUVmax 10.
    d56 score 5, SUVmax 9 (−10 %, no score change, no reader call → no significant change):
    NMR. d112 score 4 (reduced): PMR. d168 new FDG-avid focus X score 5: PMD. d224 A score 1:
    CMR after PMD, ignored. BOR PMR."""
    res = run("lugano-pet", tp(0, [ds("A", 5, "target", suv_max=10)]),
              tp(56, [ds("A", 5, suv_max=9)]), tp(112, [ds("A", 4)]),
              tp(168, [ds("A", 4), ds("X", 5, "new")]), tp(224, [ds("A", 1)]))
    assert cats(res) == ["NMR", "PMR", "PMD", "CMR"]
    assert [t.new_lesions for t in res.timepoints[1:]] == ["No", "No", "Yes", "No"]
    assert res.best_overall_response == "PMR"


def test_lugano_pet_marrow_reduced_is_pmr_and_reactive_is_cmr():
    """criteria §8.2 marrow column: baseline marrow involved. Nodes score 2 with marrow
    uptake reduced but above normal → PMR; with diffuse reactive uptake → CMR."""
    base = tp(0, [ds("A", 5, "target")], marrow="involved")
    assert cats(run("lugano-pet", base, tp(56, [ds("A", 2)], marrow="reduced"))) == ["PMR"]
    assert cats(run("lugano-pet", base, tp(56, [ds("A", 2)], marrow="reactive"))) == ["CMR"]


# =========================================================================== Lugano CT (§8.3)

def test_lugano_ct_new_splenomegaly_from_normal_baseline_is_pd():
    """criteria §8.3 (b) ("new or recurrent splenomegaly"), vector L-04: normal spleen 120 mm
    → 135 mm (+15 mm, under the +2 cm rule, but > 130 mm = new splenomegaly) → PD although the
    node SPD fell −50 % (600 → 300 mm²). 120 → 129 mm with the same nodes → PR."""
    base = tp(0, [node("A", 30, 20, "target")], spleen_length_mm=120)
    pd = run("lugano-ct", base, tp(56, [node("A", 20, 15)], spleen_length_mm=135))
    pr = run("lugano-ct", base, tp(56, [node("A", 20, 15)], spleen_length_mm=129))
    assert cats(pd) == ["PD"]
    assert any("splenomegaly" in line and "135" in line for line in pd.timepoints[1].trace)
    assert cats(pr) == ["PR"]


def test_lugano_ct_ldi_exactly_15_mm_is_cr_and_not_pd_then_16_mm_is_pd():
    """criteria §8.3, trap 4/11: node A 30×20 → d56 10×8 (LDi ≤ 15: CR; per-lesion nadir
    PPD 80, LDi 10, SDi 8) → d112 15×14 (PPD 210 = +162 % and SDi +6 > 5 mm, but LDi 15 is
    not > 15 mm: no PD; LDi ≤ 15: still CR) → d168 16×14 (LDi 16 > 15, PPD 224 ≥ 120, LDi +6
    > 5 mm for a lesion ≤ 2 cm at nadir) → PD. BOR CR."""
    res = run("lugano-ct", tp(0, [node("A", 30, 20, "target")]), tp(56, [node("A", 10, 8)]),
              tp(112, [node("A", 15, 14)]), tp(168, [node("A", 16, 14)]))
    assert cats(res) == ["CR", "CR", "PD"]
    assert res.best_overall_response == "CR"


def test_lugano_ct_cr_needs_extranodal_lesion_gone():
    """criteria §8.3 CR row ("no extralymphatic disease"): node A 30×20 + liver lesion E 20×15
    (SPD 900). Follow-up A 12×10, E too small (5×5): SPD 145 (−83.9 %) → PR, not CR. Next, E
    gone → CR."""
    base = tp(0, [node("A", 30, 20, "target"),
                  lesion("E", "target", site="liver", ldi_mm=20, sdi_mm=15)])
    res = run("lugano-ct", base,
              tp(56, [node("A", 12, 10), lesion("E", ldi_mm="too_small", sdi_mm="too_small")]),
              tp(112, [node("A", 12, 10), lesion("E", ldi_mm="absent", sdi_mm="absent")]))
    assert cats(res) == ["PR", "CR"]
    assert res.timepoints[1].numbers["spd_mm2"] == 145


def test_lugano_ct_spleen_regression_gates_pr_cr_and_recurrence_is_pd():
    """criteria §8.3, L-04: baseline spleen 150 mm (excess 20 over 130), node 30×20.
    d56 node 10×10, spleen 141: regressed 9 mm, not > 10 (50 % of 20) → SD despite SPD
    −83 %. d112 spleen 139 (−11 > 10) → PR (spleen > 130 blocks CR). d168 130 → CR.
    d224 135: recurrent splenomegaly after normalisation → PD. BOR CR."""
    res = run("lugano-ct", tp(0, [node("A", 30, 20, "target")], spleen_length_mm=150),
              tp(56, [node("A", 10, 10)], spleen_length_mm=141),
              tp(112, [node("A", 10, 10)], spleen_length_mm=139),
              tp(168, [node("A", 10, 10)], spleen_length_mm=130),
              tp(224, [node("A", 10, 10)], spleen_length_mm=135))
    assert cats(res) == ["SD", "PR", "CR", "PD"]
    assert res.best_overall_response == "CR"


def test_lugano_ct_size_class_of_increment_read_at_the_nadir():
    """criteria §8.3 (a) [V: size class at nadir, documented]: node 40×30 → nadir 18×12
    (≤ 2 cm: 0.5 cm increment applies) → 25×14: LDi 25 > 15, PPD 350 vs 216 (+62 %), LDi
    +7 > 5 mm → PD. Under ``lugano_increment_basis: current`` the lesion is > 2 cm now, the
    increment must be > 10 mm (LDi +7, SDi +2): no PD, and SPD 350 vs 1200 (−70.8 %) → PR."""
    tps = (tp(0, [node("A", 40, 30, "target")]), tp(56, [node("A", 18, 12)]),
           tp(112, [node("A", 25, 14)]))
    assert cats(run("lugano-ct", *tps)) == ["PR", "PD"]
    assert cats(run("lugano-ct", *tps, lugano_increment_basis="current")) == ["PR", "PR"]


# =========================================================================== combined (§8.4)

def test_lugano_combined_ct_when_pet_not_done_and_pet_precedence_over_ct_pd():
    """criteria §8.4: d56 CT only (node 30×20 → 20×15, SPD −50 %): PET not done → CT PR.
    d112 PET Deauville 3 (CMR) while CT shows per-lesion PD (45×30: LDi 45, PPD +350 % over
    its nadir 300, LDi +25 mm) → PET takes precedence → CR. BOR CR."""
    res = run("lugano", tp(0, [node("A", 30, 20, "target", deauville=5)]),
              tp(56, [node("A", 20, 15)]), tp(112, [node("A", 45, 30, deauville=3)]))
    assert cats(res) == ["PR", "CR"]
    t = res.timepoints[2]
    assert t.numbers["pet_response"] == "CMR" and t.numbers["ct_response"] == "PD"
    assert res.best_overall_response == "CR"


# =========================================================================== LYRIC (§8.5)

LYRIC_BASE = tp(0, [node("A", 30, 20, "target"), node("B", 30, 20, "target")])  # SPD 1200


@pytest.mark.parametrize(("n", "expected"), [(84, "IR1"), (85, "PD")])
def test_lyric_ir1_window_is_the_first_12_weeks(n, expected):
    """criteria §8.5 IR(1) "within the first 12 weeks": A 30×20 → 58×36 (SPD 2688, +124 %,
    A meets per-lesion PD) on day 84 (= 12 weeks) → IR1; on day 85 → PD."""
    res = run("lyric", LYRIC_BASE, tp(n, [node("A", 58, 36), node("B", 30, 20)]))
    assert cats(res) == [expected]
    assert res.timepoints[1].numbers["underlying"] == "PD"


def test_lyric_ir2_confirmed_when_new_lesion_added_to_spd_reaches_50pct():
    """criteria §8.5 IR(2) and its [V] resolution: d140 new node X 18×12 (> 15 mm: Lugano PD)
    with SPD unchanged (0 %) → IR2. d196 X 30×22 (PPD 660): SPD with the new lesion 1200 + 660
    = 1860 = +55 % over the nadir 1200 → PD, dated to the first IR (d140)."""
    res = run("lyric", LYRIC_BASE,
              tp(140, [node("A", 30, 20), node("B", 30, 20), node("X", 18, 12, "new")]),
              tp(196, [node("A", 30, 20), node("B", 30, 20), node("X", 30, 22)]))
    assert cats(res) == ["IR2", "PD"]
    assert res.timepoints[2].numbers["progression_date"] == day(140)
    assert res.best_overall_response == "PD"


def test_lyric_ir3_uptake_only_then_size_progression_is_pd():
    """criteria §8.5 IR(3) (vector Y-01): Deauville 4 → 5 with unchanged size (30×20) → IR3;
    next, A 42×30 (PPD 1260 = +110 % over nadir 600, LDi +12 > 10 mm) → PD dated to the IR3."""
    res = run("lyric", tp(0, [node("A", 30, 20, "target", deauville=4)]),
              tp(56, [node("A", 30, 20, deauville=5)]),
              tp(112, [node("A", 42, 30, deauville=5)]))
    assert cats(res) == ["IR3", "PD"]
    assert res.timepoints[2].numbers["progression_date"] == day(56)


def test_lyric_spleen_progression_is_never_indeterminate():
    """criteria §8.5: IR covers SPD growth, new lesions and uptake only. A normal spleen 120 →
    145 mm (+25 ≥ 20 mm) at week 4 is Lugano PD and stays PD under LYRIC."""
    res = run("lyric", tp(0, [node("A", 30, 20, "target")], spleen_length_mm=120),
              tp(28, [node("A", 30, 20)], spleen_length_mm=145))
    assert cats(res) == ["PD"]


# =========================================================================== RECIP (§9)

@pytest.mark.parametrize(
    ("ttv", "new", "expected"),
    [
        (120, True, "PD"),    # exactly +20 % and a new lesion
        (120, False, "SD"),   # TTV growth alone is not PD
        (119.9, True, "SD"),  # new lesion alone is not PD
        (70, False, "PR"),    # exactly −30 %, no new lesion
        (70, True, "SD"),     # ≥ 30 % fall but new lesion
        (70.1, False, "SD"),
        (0, False, "CR"),
    ],
)
def test_recip_boundaries(ttv, new, expected):
    """criteria §9.2 / §13 (RECIP 1.0, ≥ inclusive): baseline TTV 100 ml."""
    res = run("recip", tp(0, [], ttv_ml=100), tp(84, [], ttv_ml=ttv, new_lesions=new))
    assert cats(res) == [expected]
    assert res.best_overall_response is None  # RECIP defines no BOR


# =========================================================================== Krenning (§10)

@pytest.mark.parametrize(
    ("value", "grade"),
    [("absent", 0), (7.1, 1), (7.2, 2), (8.8, 2), (8.9, 3), (20, 3), (20.1, 4)],
)
def test_krenning_proxy_grades(value, grade):
    """criteria §10 / K-01: liver SUVmax 8 (≈ liver band ±10 % = 7.2–8.8), spleen 20: below →
    1, ≈ liver → 2, above liver → 3, above spleen → 4, no uptake → 0."""
    res = run("krenning", tp(0, [suv("A", value, "target")],
                             references={"liver_suv_max": 8, "spleen_suv_max": 20}))
    assert res.timepoints[0].overall == str(grade)


def test_krenning_patient_score_is_maximum_and_cutoff_configurable():
    """criteria §10: patient score = max over lesions (visual grade wins); PRRT cut-off ≥ 3
    by default, ≥ 2 as an option."""
    lesions = [lesion("A", "target", krenning=2), lesion("B", "target", krenning=1)]
    default = run("krenning", tp(0, lesions))
    relaxed = run("krenning", tp(0, lesions), krenning_prrt_cutoff=2)
    assert default.timepoints[0].overall == "2"
    assert default.timepoints[0].numbers["prrt_eligible"] is False
    assert relaxed.timepoints[0].numbers["prrt_eligible"] is True


# =========================================================================== CLI --json

@pytest.fixture()
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(tmp_path / "home"))

    def invoke(data: dict) -> dict:
        path = tmp_path / "case.json"
        path.write_text(json.dumps(data))
        result = CliRunner().invoke(app, ["respond", str(path), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return invoke


def test_cli_json_irecist_sequence_shape(cli):
    """criteria §3.6 / §1.1 output: categories spelled iSD/iUPD/iCPD, confirmed iUPD date and
    progression date in the JSON, trace lines carry the numbers (sum, +mm)."""
    out = cli(case("irecist", tp(0, tgt(50, first=True)), tp(56, tgt(40)), tp(112, tgt(50)),
                   tp(168, tgt(56))))
    assert [t["overall"] for t in out["timepoints"]] == ["baseline", "iSD", "iUPD", "iCPD"]
    assert out["best_overall_response"] == "iSD"
    assert out["progression_date"] == str(day(112))
    last = out["timepoints"][3]
    assert last["confirmed_iupd_date"] == str(day(112))
    assert last["sum_mm"] == 56 and last["nadir_sum_mm"] == 40
    assert any("+6 mm" in line for line in last["trace"])


def test_cli_json_lugano_ct_shape(cli):
    """criteria §8.3 output: SPD and per-lesion PD explained with numbers (LDi, PPD, nadir,
    increment) in the trace; categories CR/PR/SD/PD; end-of-treatment block."""
    out = cli(case("lugano-ct", tp(0, [node("A", 30, 20, "target")], spleen_length_mm=120),
                   tp(56, [node("A", 12, 10)], spleen_length_mm=120),
                   tp(112, [node("A", 18, 10)], spleen_length_mm=120)))
    fu1, fu2 = out["timepoints"][1:]
    assert fu1["overall"] == "CR" and fu1["spd_mm2"] == 120 and fu1["baseline_spd_mm2"] == 600
    assert fu2["overall"] == "PD" and fu2["new_lesions"] == "No"
    line = next(x for x in fu2["trace"] if x.startswith("PD"))
    for text in ("18 mm", "180 mm²", "120 mm²", "> 5 mm"):
        assert text in line
    assert out["best_overall_response"] == "CR"
    assert out["end_of_treatment"]["response"] == "PD"


def test_cli_json_lyric_and_percist_category_spelling(cli):
    """Category vocabulary as in the papers: LYRIC IR1 (criteria §8.5), PERCIST PMR
    (criteria §6.5) with SULpeak numbers in the trace."""
    ly = cli(case("lyric", LYRIC_BASE, tp(21, [node("A", 58, 36), node("B", 30, 20)])))
    assert ly["timepoints"][1]["overall"] == "IR1"
    pc = cli(case("percist", pet(0, [sul("A", 10.0, "target", "lung")]),
                  pet(56, [sul("A", 6.9)])))
    t = pc["timepoints"][1]
    assert t["overall"] == "PMR" and t["sul_peak"] == 6.9 and t["baseline_sul_peak"] == 10
    assert t["new_lesions"] == "No"  # spelled as the RECIST family output
    assert any("6.9" in x and "-31%" in x for x in t["trace"])


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ({"ldi_mm": "too_small", "sdi_mm": "too_small"}, "PR"),
        ({"ldi_mm": "too_small", "sdi_mm": "too_small", "state": "unequivocal"}, "PD"),
        ({"ldi_mm": 10, "sdi_mm": 8}, "PR"),
        ({"ldi_mm": 11, "sdi_mm": 8}, "PD"),
    ],
)
def test_lugano_ct_small_new_extranodal_lesion_needs_to_be_unequivocal(new, expected):
    """criteria §8.3 (e): a new extranodal site > 1.0 cm is PD; below that (too small to
    measure = 5 × 5 mm; exactly 10 mm is not > 1.0 cm) it must be unequivocally lymphoma.
    Node 30×20 → 20×15 (SPD −50 %: PR otherwise)."""
    res = run("lugano-ct", tp(0, [node("A", 30, 20, "target")]),
              tp(56, [node("A", 20, 15), lesion("X", "new", site="liver", **new)]))
    assert cats(res) == [expected]


def test_recip_not_comparable_or_missing_ttv_is_ne_and_segmentation_change_warns():
    """criteria §9.2 traps: a failed segmentation (no TTV) or a non-comparable study → NE;
    a different segmentation method from baseline is flagged."""
    res = run("recip", tp(0, [], ttv_ml=100, segmentation="qPSMA 1.0"),
              tp(84, [], new_lesions=True),
              tp(168, [], ttv_ml=150, new_lesions=True, comparable=False),
              tp(252, [], ttv_ml=150, new_lesions=True, segmentation="other 2.0"))
    assert cats(res) == ["NE", "NE", "PD"]
    assert any("segmentation" in w for w in res.warnings)


def test_eortc_hottest_aggregate_uses_the_single_hottest_baseline_roi():
    """criteria §7.1 (number of lesions left to the protocol; recorded): baseline A 10, B 4.
    Follow-up A 7.4, B 4.5: "sum" 14 → 11.9 (−15 %, needs > 25 % after 2 cycles: SMD);
    "hottest" 10 → 7.4 (−26 %, > 25 %: PMR)."""
    tps = (tp(0, [suv("A", 10, "target"), suv("B", 4, "target")]),
           tp(42, [suv("A", 7.4), suv("B", 4.5)], cycles=2))
    assert cats(run("eortc", *tps)) == ["SMD"]
    assert cats(run("eortc", *tps, eortc_aggregate="hottest")) == ["PMR"]
