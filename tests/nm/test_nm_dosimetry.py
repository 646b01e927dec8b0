"""``oncohybrid dosimetry``: a synthetic 4-time-point Lu-177 cycle with known kinetics gives
TIA and dose within 2 % of the analytic values with local deposition and within 5 % with
voxel S-values (issue #20 acceptance); invalid input exits 2 with the reason.

The analytic values are computed here from the phantom's kinetics (closed-form integrals of
its exponentials) and its organ masses (voxels × volume × density of the organ's HU).
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.phantom.spect import SpectCycle, SpectPhantom, write_spect_patient

runner = CliRunner()
LN2 = math.log(2)
E_LU177_J = 0.1479 * 1.602176634e-13  # electron energy per decay (ICRP 107)


def _analytic_tia(kin, scale):
    if kin[0] == "mono-exp":
        _, a0, teff = kin
        return scale * a0 * teff / LN2
    if kin[0] == "bi-exp-clearance":
        _, a1, t1, a2, t2 = kin
        return scale * (a1 * t1 + a2 * t2) / LN2
    _, a0, tw, tu = kin
    return scale * a0 * (tw / LN2 - tu / LN2)


def _analytic_dose(tia_mbq_h, mass_g):
    return tia_mbq_h * 1e6 * 3600 * E_LU177_J / (mass_g / 1000)


def _analytic_g(kin, repair_h=2.8):
    """Lea–Catcheside G of Σ cᵢ e^(−λᵢ t) in closed form (double integral done by hand)."""
    mu = LN2 / repair_h
    if kin[0] == "mono-exp":
        terms = [(1.0, LN2 / kin[2])]
    else:
        terms = [(1.0, LN2 / kin[2]), (-1.0, LN2 / kin[3])]
    num = sum(ci * cj / (mu - lj) * (1 / (li + lj) - 1 / (li + mu))
              for ci, li in terms for cj, lj in terms)
    total = sum(c / lam for c, lam in terms)
    return 2 * num / total**2


def _workspace(tmp_path_factory, monkeypatch, name):
    home = tmp_path_factory.mktemp(name)
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    monkeypatch.delenv("ONCOHYBRID_DATABASE_URL", raising=False)
    return home


def _ingest(root):
    res = runner.invoke(app, ["ingest", str(root)])
    assert res.exit_code == 0, res.output


def _run(*args):
    return runner.invoke(app, ["dosimetry", *args])


@pytest.mark.slow
def test_four_time_point_cycle_local_and_voxel_s_against_analytic(lu_cycle, tmp_path_factory,
                                                                   monkeypatch):
    root, truth = lu_cycle
    _workspace(tmp_path_factory, monkeypatch, "ws_bqml")
    _ingest(root)
    res = _run("NM-BQML", "--cycle", "1", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    names = {v["name"] for v in doc["vois"]}
    assert names == {"marrow", "liver", "spleen", "kidney_right", "kidney_left", "tumour_1",
                     "tumour_2"}
    local = {v["name"]: v for v in doc["vois"]}
    for name, v in local.items():
        assert set(v) >= {"name", "mass_g", "tia_mbq_h", "dose_gy", "fit"}
        assert set(v["fit"]) >= {"model", "parameters", "r2"}
        # one criterion for both models: the phantom's true model is the one chosen
        assert v["fit"]["model"] == truth["kinetics"][name][0], (name, v["fit"]["choice"])
        organ = truth["organs"][name]
        tia = _analytic_tia(truth["kinetics"][name], 1.0)
        assert v["mass_g"] == pytest.approx(organ["mass_g"], rel=1e-3)
        assert v["tia_mbq_h"] == pytest.approx(tia, rel=0.02), name
        assert v["dose_gy"] == pytest.approx(_analytic_dose(tia, organ["mass_g"]), rel=0.02)
    # the later time points were repositioned by whole voxels and registered back
    shifts = [tp["registration"]["translation_mm"] for tp in doc["timepoints"][1:]]
    assert shifts[0] == pytest.approx([4.8, 0.0, -4.8], abs=0.5)
    # kidney BED with α/β 2.6 Gy, T_rep 2.8 h: closed-form G of the true kinetics
    for kidney in ("kidney_left", "kidney_right"):
        kin = truth["kinetics"][kidney]
        d = _analytic_dose(_analytic_tia(kin, 1.0), truth["organs"][kidney]["mass_g"])
        bed = d * (1 + _analytic_g(kin) * d / 2.6)
        assert local[kidney]["bed_gy"] == pytest.approx(bed, rel=0.03)
        assert local[kidney]["bed_gy"] > local[kidney]["dose_gy"]
    assert local["liver"]["bed_gy"] is None
    # DVH of a uniform organ: D50 ≈ mean dose
    assert local["kidney_left"]["dvh"]["d50_gy"] == pytest.approx(
        local["kidney_left"]["dose_gy"], rel=0.05)

    vs = _run("NM-BQML", "--cycle", "1", "--method", "voxel-s", "--json")
    assert vs.exit_code == 0, vs.output
    vdoc = json.loads(vs.stdout)
    assert "Loevinger" in vdoc["constants"]["voxel_s_kernel"]["description"]
    for v in vdoc["vois"]:
        organ = truth["organs"][v["name"]]
        tia = _analytic_tia(truth["kinetics"][v["name"]], 1.0)
        assert v["dose_gy"] == pytest.approx(_analytic_dose(tia, organ["mass_g"]), rel=0.05)


@pytest.mark.slow
def test_counts_cycles_need_a_sensitivity_and_sum_across_cycles(lu_counts_two_cycles,
                                                                tmp_path_factory, monkeypatch):
    root, truth = lu_counts_two_cycles
    _workspace(tmp_path_factory, monkeypatch, "ws_counts")
    _ingest(root)
    bad = _run("NM-COUNTS", "--cycle", "1", "--json")
    assert bad.exit_code == 2
    assert bad.stdout == ""
    assert "sensitivity" in bad.stderr
    cal = runner.invoke(app, ["nm-calibrate", "PHANTOM-SPECT", "Lu-177", "11.5",
                              "--measured-on", "2025-12-01", "--json"])
    assert cal.exit_code == 0, cal.output
    docs = []
    for cycle in (1, 2):
        res = _run("NM-COUNTS", "--cycle", str(cycle), "--json")
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.stdout))
    c1 = {v["name"]: v for v in docs[0]["vois"]}
    c2 = {v["name"]: v for v in docs[1]["vois"]}
    assert docs[1]["injected_mbq"] == 3700.0
    assert [tp["time_h"] for tp in docs[1]["timepoints"]] == [6.0, 48.0, 120.0]
    # four points: the left kidney's two clearance phases are recognised and integrated
    assert c1["kidney_left"]["fit"]["model"] == "bi-exp-clearance"
    for name in ("kidney_left", "liver", "tumour_1"):
        kin = truth["kinetics"][name]
        mass = truth["organs"][name]["mass_g"]
        assert c1[name]["tia_mbq_h"] == pytest.approx(_analytic_tia(kin, 1.0), rel=0.02)
        assert c2[name]["tia_mbq_h"] == pytest.approx(_analytic_tia(kin, 0.5), rel=0.02)
        assert c2[name]["cumulative_dose_gy"] == pytest.approx(
            c1[name]["dose_gy"] + c2[name]["dose_gy"], rel=1e-6)
        assert c2[name]["cumulative_dose_gy"] == pytest.approx(
            _analytic_dose(_analytic_tia(kin, 1.5), mass), rel=0.02)
    assert c2["kidney_left"]["cumulative_bed_gy"] == pytest.approx(
        c1["kidney_left"]["bed_gy"] + c2["kidney_left"]["bed_gy"], rel=1e-6)
    # no cycle 3
    none = _run("NM-COUNTS", "--cycle", "3", "--json")
    assert none.exit_code == 2 and none.stdout == "" and "no cycle 3" in none.stderr


@pytest.mark.slow
def test_single_time_point_needs_hanscheid(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("nm_one")
    p = SpectPhantom(patient_id="NM-ONE",
                     cycles=(SpectCycle(dt.datetime(2026, 5, 4, 8, 0), 7400.0, (96.0,)),))
    truth = write_spect_patient(root, p)
    _workspace(tmp_path_factory, monkeypatch, "ws_one")
    _ingest(root)
    bad = _run("NM-ONE", "--cycle", "1", "--json")
    assert bad.exit_code == 2
    assert bad.stdout == ""
    assert "at least 2 time points" in bad.stderr
    bad_fit = _run("NM-ONE", "--cycle", "1", "--fit", "bi-exp", "--json")
    assert bad_fit.exit_code == 2 and bad_fit.stdout == ""
    ok = _run("NM-ONE", "--cycle", "1", "--fit", "hanscheid", "--json")
    assert ok.exit_code == 0, ok.output
    vois = {v["name"]: v for v in json.loads(ok.stdout)["vois"]}
    a96 = truth["cycles"][0]["timepoints"][0]["activity_mbq"]["kidney_left"]
    assert vois["kidney_left"]["fit"]["model"] == "hanscheid"
    assert vois["kidney_left"]["tia_mbq_h"] == pytest.approx(a96 * 2 * 96 / LN2, rel=1e-3)
    # a drawn sphere inside the liver (away from its tumour): liver concentration × volume
    drawn = _run("NM-ONE", "--cycle", "1", "--fit", "hanscheid", "--no-store", "--json",
                 "--sphere", "liver_ball=-95,-10,15,12")
    assert drawn.exit_code == 0, drawn.output
    ball = {v["name"]: v for v in json.loads(drawn.stdout)["vois"]}["liver_ball"]
    c_liver = truth["cycles"][0]["timepoints"][0]["activity_mbq"]["liver"] / \
        truth["organs"]["liver"]["volume_ml"]
    assert ball["activities_mbq"][0] == pytest.approx(c_liver * ball["volume_ml"], rel=1e-3)
    assert 4 / 3 * math.pi * 1.2**3 * 0.7 < ball["volume_ml"] < 4 / 3 * math.pi * 1.2**3 * 1.3
    clash = _run("NM-ONE", "--cycle", "1", "--fit", "hanscheid", "--json",
                 "--sphere", "liver=0,0,0,10")
    assert clash.exit_code == 2 and "already has a VOI" in clash.stderr
    bad = _run("NM-ONE", "--cycle", "1", "--fit", "hanscheid", "--json", "--sphere", "x=1,2")
    assert bad.exit_code == 2 and bad.stdout == ""


def test_invalid_options_and_unknown_patient_exit_2(tmp_path_factory, monkeypatch):
    _workspace(tmp_path_factory, monkeypatch, "ws_empty")
    for args, reason in ((["NOBODY", "--cycle", "1", "--json"], "not in the workspace"),
                         (["NOBODY", "--cycle", "1", "--method", "mc", "--json"], "--method"),
                         (["NOBODY", "--cycle", "0", "--json"], "--cycle"),
                         (["NOBODY", "--cycle", "1", "--fit", "spline", "--json"], "--fit")):
        res = _run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stdout == ""
        assert reason in res.stderr


@pytest.mark.slow
def test_time_points_without_ct_are_used_unregistered_with_a_note(tmp_path_factory,
                                                                  monkeypatch):
    import shutil

    root = tmp_path_factory.mktemp("nm_noct")
    p = SpectPhantom(patient_id="NM-NOCT", shifts_vox=((0, 0, 0),),
                     cycles=(SpectCycle(dt.datetime(2026, 6, 1, 8, 0), 7400.0, (24.0, 120.0)),))
    truth = write_spect_patient(root, p)
    shutil.rmtree(root / "cycle1" / "tp2" / "CT")  # the later SPECT comes without its CT
    _workspace(tmp_path_factory, monkeypatch, "ws_noct")
    _ingest(root)
    res = _run("NM-NOCT", "--cycle", "1", "--fit", "mono-exp", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert any("NOT registered" in n for n in doc["notes"])
    assert doc["timepoints"][1]["registration"]["method"].startswith("none")
    kid = {v["name"]: v for v in doc["vois"]}["kidney_right"]
    a1, a2 = (tp["activity_mbq"]["kidney_right"] for tp in truth["cycles"][0]["timepoints"])
    lam = math.log(a1 / a2) / 96.0
    assert kid["tia_mbq_h"] == pytest.approx(a1 * math.exp(lam * 24.0) / lam, rel=0.01)


@pytest.mark.slow
def test_vois_of_an_earlier_cycle_are_registered_to_a_repositioned_cycle(tmp_path_factory,
                                                                        monkeypatch):
    root = tmp_path_factory.mktemp("nm_segreg")
    write_spect_patient(root / "c1", SpectPhantom(
        patient_id="NM-SEGREG", shifts_vox=((0, 0, 0),),
        cycles=(SpectCycle(dt.datetime(2026, 1, 5, 9, 0), 7400.0, (24.0, 96.0)),)))
    # cycle 2 lies elsewhere on the table (x +2, y −1, z +1 voxels) and brings no SEG
    truth2 = write_spect_patient(root / "c2", SpectPhantom(
        patient_id="NM-SEGREG", shifts_vox=((1, -1, 2), (0, 1, 0)),
        cycles=(SpectCycle(dt.datetime(2026, 3, 5, 9, 0), 7400.0, (24.0, 96.0)),)), seg=False)
    _workspace(tmp_path_factory, monkeypatch, "ws_segreg")
    _ingest(root)
    res = _run("NM-SEGREG", "--cycle", "2", "--fit", "mono-exp", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert any("registered rigidly" in n for n in doc["notes"])
    for v in doc["vois"]:
        a1, a2 = (tp["activity_mbq"][v["name"]] for tp in truth2["cycles"][0]["timepoints"])
        lam = math.log(a1 / a2) / 72.0
        assert v["tia_mbq_h"] == pytest.approx(a1 * math.exp(lam * 24.0) / lam, rel=0.02)
        assert v["mass_g"] == pytest.approx(truth2["organs"][v["name"]]["mass_g"], rel=1e-3)
