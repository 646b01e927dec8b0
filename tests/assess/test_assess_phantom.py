"""``oncohybrid assess`` end to end on small phantom patients with ground truth.

Acceptance (docs/record.md): ≥ 95 % of follow-up lesion decisions correct (matched to the
right lesion or rightly new) and, per criterion and timepoint, the category equals the one
the response engine gives on the phantom's ground-truth measurements: the true lesions
measured by a perfect reader on the images as acquired (true ld/sa of the cross-section
the CT slices show; PET values inside the true lesion ellipsoids; references in the
pipeline's VOIs where the noise-free image shows them valid, else at their true places;
same case builder and target selection; tests/assess/assess_truth.py). Against the
noise-free image of the same patients (what the scanner shows without noise) agreement may
only fall short where noise moves a value across a cut-off. Three 2-patient cohorts: seeds
5 and 11 with 3 timepoints, seed 13 with 5; faint lesions included.
"""

from __future__ import annotations

import json

import pytest
from assess_truth import (
    check_same_geometry,
    image_references,
    pet_suvbw,
    score_matches,
    true_identity,
    truth_course,
    valid_reference_centres,
)
from typer.testing import CliRunner

phantom = pytest.importorskip("oncohybrid.phantom")

CRITERIA = ["recist1.1", "percist", "lugano"]
#: (seed, timepoints) of each 2-patient cohort: the issue asks for 3-5 timepoints
COHORTS = ((5, 3), (11, 3), (13, 5))


@pytest.fixture(scope="module")
def assessed(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("ONCOHYBRID_HOME")
    os.environ["ONCOHYBRID_HOME"] = str(home)
    try:
        from oncohybrid.services.assess import assess_patient
        from oncohybrid.services.ingest import Ingestor
        from oncohybrid.services.record import patient_record

        runs = {}
        # Per seed: patient 1 responds (lesions shrink, some below PET detectability, one
        # vanishes), patient 2 progresses (lesions grow, new ones appear); each visit is
        # repositioned (shifts up to 25/20/40 mm, 4°). Seed 11 has a faint new ~10 mm bone
        # lesion (true SUV ≈ 5) that PET alone misses at follow-up 1 (found on CT).
        for seed, n_tp in COHORTS:
            data = tmp_path_factory.mktemp(f"phantom{seed}")
            clean = tmp_path_factory.mktemp(f"noise_free{seed}")
            truth = phantom.generate_cohort(data, patients=2, timepoints=n_tp, vendor="mixed",
                                            seed=seed, size="small")
            nf = phantom.generate_cohort(clean, patients=2, timepoints=n_tp, vendor="mixed",
                                         seed=seed, size="small", noise_free=True)
            check_same_geometry(truth, nf)
            with Ingestor() as ing:
                ing.ingest_paths([data])
            for p in truth["patients"]:
                res = assess_patient(p["patient_id"], CRITERIA)
                nf_pet = pet_suvbw(clean, p)
                centres = valid_reference_centres(nf_pet, p, res.reference_vois)
                gt = {
                    "acquired": truth_course(p, pet=pet_suvbw(data, p),
                                             references_from_image=True,
                                             reference_centres=centres),
                    "noise_free": truth_course(p, pet=nf_pet),
                    "reference_centres": centres,
                    "data": data,
                }
                runs[p["patient_id"]] = (p, res, patient_record(p["patient_id"]), gt)
        yield home, runs
    finally:
        from oncohybrid.store.db import dispose_engines

        dispose_engines()
        if old is None:
            os.environ.pop("ONCOHYBRID_HOME", None)
        else:
            os.environ["ONCOHYBRID_HOME"] = old


def _centroids(p, rec):
    dates = [tp["date"] for tp in p["timepoints"]]
    out = [{} for _ in dates]
    for les in rec["lesions"]:
        for o in les["observations"]:
            if o["present"] and o["label"] and o["source"] == "automatic":
                out[dates.index(o["date"])][o["label"]] = o["centroid_lps_mm"]
    return out


def test_phantom_lesion_matches_are_at_least_95_percent_correct(assessed):
    _home, runs = assessed
    correct = total = 0
    for p, res, rec, _gt in runs.values():
        c, t = score_matches(res.course, _centroids(p, rec), p)
        correct, total = correct + c, total + t
    assert total >= 5
    assert correct / total >= 0.95, (correct, total)


def test_every_detection_is_a_true_lesion_not_physiological_uptake(assessed):
    # The heart, kidneys and noise of the phantom are excluded by the pipeline's heuristic
    # (ground truth is used here only to check, never by the pipeline).
    _home, runs = assessed
    n = 0
    for p, _res, rec, _gt in runs.values():
        for k, labels in enumerate(_centroids(p, rec)):
            for label, c in labels.items():
                assert true_identity(c, p["timepoints"][k]) is not None, (p["patient_id"], k,
                                                                           label, c)
                n += 1
    assert n >= 10


def test_phantom_categories_equal_those_on_ground_truth_measurements(assessed):
    from oncohybrid.services.assess import run_criteria

    _home, runs = assessed
    differ, noise_free_equal, n = [], 0, 0
    for p, res, _rec, courses in runs.values():
        gt = run_criteria(courses["acquired"], CRITERIA)
        nf = run_criteria(courses["noise_free"], CRITERIA)
        for name in CRITERIA:
            ours = [tp["overall"] for tp in res.criteria[name]["timepoints"]]
            ref = [tp["overall"] for tp in gt[name][1]["timepoints"]]
            if ours != ref:
                differ.append((p["patient_id"], name, ours, ref))
            nf_ref = [tp["overall"] for tp in nf[name][1]["timepoints"]]
            noise_free_equal += sum(a == b for a, b in zip(ours, nf_ref, strict=True))
            n += len(ours)
    assert len(runs) == 2 * len(COHORTS)
    assert differ == []
    assert noise_free_equal >= 0.95 * n, (noise_free_equal, n)
    # The faint lesions are in play: at least one was found on CT alone (third tier).
    assert any("found on CT only" in n for _p, res, _rec, _c in runs.values() for n in res.notes)


def test_noise_free_truth_is_what_the_scanner_shows(assessed):
    # The truth's PET values are partial-volume limited: never above the painted SUV, and
    # for lesions ≥ 25 mm across close to it (recovery ≥ 0.9 of SUVmax).
    _home, runs = assessed
    n = 0
    for p, _res, _rec, courses in runs.values():
        for t in courses["noise_free"].tracks:
            for k, v in enumerate(t.values):
                if v is None:
                    continue
                les = next(x for x in p["timepoints"][k]["lesions"] if x["id"] == t.id)
                assert v["suv_peak"] <= v["suv_max"] * 1.0001 <= les["true_suv"] * 1.001
                if min(les["axes_mm"]) >= 12.5:
                    assert v["suv_max"] >= 0.9 * les["true_suv"], (t.id, v, les)
                n += 1
    assert n >= 20


def test_acquired_truth_reads_the_references_and_lesions_on_the_noisy_image(assessed):
    # The pipeline's reference VOIs lie in uniform liver / blood (checked on the noise-free
    # image); read there, liver and blood pool agree with the painted values within the
    # noise of a 14 ml sphere / 1.6 ml cylinder, and the liver SD is the phantom's noise
    # (about 10 % of the mean). Lesion SUVmax on the noisy image is at least the noise-free
    # one minus the noise (the maximum of noisy voxels is biased upwards, never far down).
    _home, runs = assessed
    blood_ok = n_tp = 0
    for p, _res, _rec, courses in runs.values():
        # every liver sphere in uniform liver; a blood-pool cylinder may sit off the axis of
        # the aorta and read low (docs/record.md, 1 of 60 in a seed-5 cohort) - rarely
        assert all(liver_ok for _l, _b, liver_ok, _ok in courses["reference_centres"])
        blood_ok += sum(ok for *_r, ok in courses["reference_centres"])
        n_tp += len(courses["reference_centres"])
        for k, tp in enumerate(p["timepoints"]):
            refs = courses["acquired"].references[k]
            ratio = tp["sul_factor"] / tp["suvbw_factor"]
            assert refs["liver_sul_mean"] / ratio == pytest.approx(tp["liver_suv_mean"], rel=0.06)
            assert 0.05 < refs["liver_sul_sd"] / refs["liver_sul_mean"] < 0.2
            # a 1.6 ml cylinder holds ~25 PET voxels of correlated noise: ±20 %
            assert refs["mediastinum_suv_max"] == pytest.approx(tp["blood_pool_suv"], rel=0.2)
        for acq, nf in zip(courses["acquired"].tracks, courses["noise_free"].tracks,
                           strict=True):
            for a, b in zip(acq.values, nf.values, strict=True):
                assert (a is None) == (b is None)
                if a is not None:
                    assert a["suv_max"] >= 0.8 * b["suv_max"]
                    assert a["ld_mm"] == b["ld_mm"]
    assert blood_ok >= 0.9 * n_tp, (blood_ok, n_tp)


def test_stored_cases_give_back_the_assessments_through_respond(assessed, tmp_path,
                                                                monkeypatch):
    from oncohybrid.cli.main import app
    from oncohybrid.services.record import latest_assessments

    home, runs = assessed
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    runner = CliRunner()
    for pid, (_p, res, _rec, _gt) in runs.items():
        out = res.to_json()
        assert set(out) == {"patient_id", "criteria", "tracers"} and out["patient_id"] == pid
        assert all(t["family"] == "FDG" and t["imaging"] == "PET" for t in out["tracers"])
        assert list(out["criteria"]) == CRITERIA
        stored = latest_assessments(pid)
        for name, obj in out["criteria"].items():
            assert stored[name]["result"] == obj
            case_file = tmp_path / f"{pid}-{name}.json"
            case_file.write_text(json.dumps(stored[name]["case"]))
            resp = runner.invoke(app, ["respond", str(case_file), "--json"])
            assert resp.exit_code == 0, resp.output
            assert json.loads(resp.stdout) == obj
            assert obj["timepoints"][0]["overall"] == "baseline"


def test_assess_cli_json_shape(assessed, monkeypatch):
    """``assess --json`` prints exactly ``AssessResult.to_json()`` and passes the criteria."""
    import oncohybrid.services.assess as svc
    from oncohybrid.cli.main import app

    _home, runs = assessed
    pid, (_p, res, _rec, _gt) = next(iter(runs.items()))
    seen = {}

    def fake(patient_id, criteria=None, settings=None, **kw):
        seen.update(patient_id=patient_id, criteria=svc.parse_criteria(criteria))
        return res

    monkeypatch.setattr(svc, "assess_patient", fake)
    out = CliRunner().invoke(app, ["assess", pid, "--criteria", "percist, recist1.1", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == res.to_json()
    assert seen == {"patient_id": pid, "criteria": ["percist", "recist1.1"]}
    table = CliRunner().invoke(app, ["assess", pid])
    assert table.exit_code == 0, table.output
    for name in CRITERIA:
        assert f"{pid} — {name}" in table.stdout
        assert f"Best overall response ({name})" in table.stdout


def test_assess_cli_errors_name_the_problem(assessed, monkeypatch):
    from oncohybrid.cli.main import app

    home, runs = assessed
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    runner = CliRunner()
    res = runner.invoke(app, ["assess", "NOBODY", "--json"])
    assert res.exit_code == 1 and res.stdout == ""
    assert "NOBODY" in res.stderr
    res = runner.invoke(app, ["assess", next(iter(runs)), "--criteria", "mrecist"])
    assert res.exit_code == 2 and "mrecist" in res.stderr


def test_reader_placed_reference_vois_are_used_and_recorded(assessed):
    from oncohybrid.services.assess import AssessParams, assess_patient

    _home, runs = assessed
    pid, (p, res_auto, _rec, courses) = next(iter(runs.items()))
    tp = p["timepoints"][1]
    liver, blood = tp["liver_reference_centre_lps_mm"], tp["blood_pool_centre_lps_mm"]
    params = AssessParams(reference_centres={
        tp["date"]: {"liver": tuple(liver), "blood_pool": tuple(blood)}})
    res = assess_patient(pid, ["percist"], params=params, store=False)
    vois = res.reference_vois
    assert vois[1]["liver"]["placement"] == "manual"
    assert vois[1]["liver"]["centre_lps_mm"] == pytest.approx(liver)
    assert vois[1]["blood_pool"]["placement"] == "manual"
    assert vois[1]["blood_pool"]["centre_lps_mm"] == pytest.approx(blood)
    assert vois[0]["liver"]["placement"].startswith("auto")
    assert res_auto.reference_vois[1]["liver"]["placement"].startswith("auto")
    # the case's references are those read there (phantom's own SUV/SUL factors)
    expected = image_references(pet_suvbw(courses["data"], p)[1], tp, liver, blood)
    got = res.course.references[1]
    for key in ("liver_sul_mean", "liver_sul_sd", "blood_pool_sul_mean", "mediastinum_suv_max"):
        assert got[key] == pytest.approx(expected[key], rel=1e-3), key


def test_assess_cli_reference_voi_options_name_the_problem(assessed, monkeypatch):
    from oncohybrid.cli.main import app

    home, runs = assessed
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    pid, (p, *_rest) = next(iter(runs.items()))
    runner = CliRunner()
    bad = runner.invoke(app, ["assess", pid, "--blood-pool-centre", "2024-13-01=1,2,3"])
    assert bad.exit_code == 2 and "--blood-pool-centre" in bad.stderr and bad.stdout == ""
    bad = runner.invoke(app, ["assess", pid, "--liver-centre", f"{p['timepoints'][0]['date']}=1,2"])
    assert bad.exit_code == 2 and "DATE=X,Y,Z" in bad.stderr
    none = runner.invoke(app, ["assess", pid, "--liver-centre", "1999-01-01=1,2,3", "--json"])
    assert none.exit_code == 2 and "no timepoint on that date" in none.stderr
    assert p["timepoints"][0]["date"] in none.stderr
