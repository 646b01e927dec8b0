"""Benchmark: ``assess_patient`` end to end on a phantom cohort, seconds per patient by stage.

    .venv/bin/python benchmarks/assess.py                   # 20 patients x 3 timepoints, small
    .venv/bin/python benchmarks/assess.py --patients 4 --timepoints 4
    .venv/bin/python benchmarks/assess.py --pvc-fwhm-mm 6   # partial-volume corrected SUVs
    .venv/bin/python benchmarks/assess.py --size clinical --patients 2   # the #11 goal

Prints the cohort generation and ingest time (not part of the assessment), then per
patient the wall time of ``assess_patient`` and where it goes (load, references,
segmentation, PET metrics, CT measurement, registration, tracking, store, criteria),
and the agreement with the ground truth: lesion-match decisions correct and criteria
categories equal to those on the ground-truth measurements (tests/assess/assess_truth.py:
PET values of the noise-free image of the same cohort inside the true lesions; the older
"painted SUV" truth is reported alongside for comparison). The baseline in the same run
is the stage ``load`` (reading the series from disk), so ratios are "× reading the data".

Parallel vs sequential (#11): each patient is first assessed on one thread (``workers=1``,
the sequential path, baseline) and then with the default thread pool (timepoints and
registration pairs in parallel; ``$ONCOHYBRID_ASSESS_WORKERS`` or the CPU count); the
wall times, their ratio, the ratio to the 4 s per patient goal, and whether both runs
gave identical criteria, cases and tracks are printed. ``--sequential`` times only the
sequential path; ``--no-sequential-baseline`` only the parallel one. Stage times are
summed over threads (with several threads they add up to more than the wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "assess"))

CRITERIA = ["recist1.1", "percist", "lugano"]
#: Seconds per patient the #11 goal allows at clinical size (256² × 281 CT, 3 timepoints).
GOAL_S = 4.0


def _fingerprint(res) -> str:
    """What must not depend on the threads: criteria, cases, roles and tracks."""
    tracks = [[t.id, t.site, t.nodal, t.first, t.values, t.labels] for t in res.course.tracks]
    return json.dumps([res.criteria, res.cases, res.roles, tracks, res.notes],
                      sort_keys=True, default=str)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--timepoints", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--size", default="small", choices=["small", "clinical"])
    ap.add_argument("--pvc-fwhm-mm", type=float, default=None,
                    help="Partial-volume correction of the PET metrics (phantom: 6 mm).")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--sequential", action="store_true",
                      help="Time only the sequential path (workers=1).")
    mode.add_argument("--no-sequential-baseline", action="store_true",
                      help="Time only the parallel path (no baseline in this run).")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="oncohybrid-bench-assess-") as tmp:
        os.environ["ONCOHYBRID_HOME"] = str(Path(tmp) / "home")
        from assess_truth import (
                    check_same_geometry,
            pet_suvbw,
            score_matches,
            true_identity,
            truth_course,
            valid_reference_centres,
        )

        from oncohybrid.phantom import generate_cohort
        from oncohybrid.services.assess import (
            AssessParams,
            assess_patient,
            assess_workers,
            run_criteria,
        )
        from oncohybrid.services.ingest import Ingestor
        from oncohybrid.services.record import patient_record

        t0 = time.perf_counter()
        truth = generate_cohort(Path(tmp) / "data", patients=args.patients,
                                timepoints=args.timepoints, vendor="mixed", seed=args.seed,
                                size=args.size)
        t1 = time.perf_counter()
        with Ingestor() as ing:
            ing.ingest_paths([Path(tmp) / "data"])
        t2 = time.perf_counter()
        clean = Path(tmp) / "noise_free"
        nf = generate_cohort(clean, patients=args.patients, timepoints=args.timepoints,
                             vendor="mixed", seed=args.seed, size=args.size, noise_free=True)
        check_same_geometry(truth, nf)
        t3 = time.perf_counter()
        print(f"pvc_fwhm_mm={args.pvc_fwhm_mm}; "
              f"cohort: {args.patients} patients x {args.timepoints} timepoints ({args.size}); "
              f"generate {t1 - t0:.1f} s, ingest {t2 - t1:.1f} s, "
              f"noise-free truth cohort {t3 - t2:.1f} s")
        # Import what assess_patient imports lazily before timing, so the first patient's
        # first (sequential) run does not pay the one-time imports (scipy.stats alone ~1 s).
        import importlib

        for mod in ("oncohybrid.dicom.suv", "oncohybrid.dicom.volume", "oncohybrid.dicom.tracer",
                    "oncohybrid.imaging.register", "oncohybrid.imaging.resample",
                    "oncohybrid.quant.pet", "oncohybrid.quant.ct", "oncohybrid.quant.references",
                    "oncohybrid.segment.threshold", "oncohybrid.tracking",
                    "oncohybrid.response", "oncohybrid.response.selection",
                    "oncohybrid.response.applicability", "oncohybrid.services.quantify",
                    "oncohybrid.services.record", "oncohybrid.services.masks",
                    "scipy.signal", "scipy.spatial.distance"):
            importlib.import_module(mod)
        stages: dict[str, float] = {}
        walls = []
        seq_walls: list[float] = []
        identical = 0
        match_ok = match_n = cat_ok = cat_n = painted_ok = nf_ok = vois_ok = vois_n = 0
        detections = false_pos = 0
        diffs = []
        for p in truth["patients"]:
            params = AssessParams(pvc_fwhm_mm=args.pvc_fwhm_mm)
            seq = None
            if not args.no_sequential_baseline:
                s0 = time.perf_counter()
                seq = assess_patient(p["patient_id"], CRITERIA, params=params, workers=1)
                seq_walls.append(time.perf_counter() - s0)
            if args.sequential:
                res, wall = seq, seq_walls[-1]
            else:
                s0 = time.perf_counter()
                res = assess_patient(p["patient_id"], CRITERIA, params=params)
                wall = time.perf_counter() - s0
                identical += seq is not None and _fingerprint(seq) == _fingerprint(res)
            walls.append(wall)
            for k, v in res.timings_s.items():
                stages[k] = stages.get(k, 0.0) + v
            rec = patient_record(p["patient_id"])
            dates = [tp["date"] for tp in p["timepoints"]]
            cents: list[dict] = [{} for _ in dates]
            for les in rec["lesions"]:
                for o in les["observations"]:
                    if o["present"] and o["label"] and o["source"] == "automatic":
                        cents[dates.index(o["date"])][o["label"]] = o["centroid_lps_mm"]
            for k, labels in enumerate(cents):
                for c in labels.values():
                    detections += 1
                    false_pos += true_identity(c, p["timepoints"][k]) is None
            c, n = score_matches(res.course, cents, p)
            match_ok, match_n = match_ok + c, match_n + n
            nf_pet = pet_suvbw(clean, p)
            centres = valid_reference_centres(nf_pet, p, res.reference_vois)
            vois_ok += sum(a and b for _l, _b, a, b in centres)
            vois_n += len(centres)
            for k, (_l, _b, liver_ok, blood_ok) in enumerate(centres):
                if not (liver_ok and blood_ok):
                    diffs.append(f"{p['patient_id']} timepoint {k}: reference VOI not in "
                                 f"uniform tissue: {'' if liver_ok else 'liver '}"
                                 f"{'' if blood_ok else 'blood pool'}")
            gt = run_criteria(truth_course(p, pet=pet_suvbw(Path(tmp) / "data", p),
                                           references_from_image=True,
                                           reference_centres=centres), CRITERIA)
            noise_free = run_criteria(truth_course(p, pet=nf_pet), CRITERIA)
            painted = run_criteria(truth_course(p), CRITERIA)
            for name in CRITERIA:
                ours = [tp["overall"] for tp in res.criteria[name]["timepoints"]][1:]
                ref = [tp["overall"] for tp in gt[name][1]["timepoints"]][1:]
                nf_ref = [tp["overall"] for tp in noise_free[name][1]["timepoints"]][1:]
                old = [tp["overall"] for tp in painted[name][1]["timepoints"]][1:]
                cat_ok += sum(a == b for a, b in zip(ours, ref, strict=True))
                nf_ok += sum(a == b for a, b in zip(ours, nf_ref, strict=True))
                painted_ok += sum(a == b for a, b in zip(ours, old, strict=True))
                cat_n += len(ref)
                if ours != ref:
                    diffs.append(f"{p['patient_id']} ({p['response_pattern']}) {name}: "
                                 f"pipeline {ours} vs truth {ref}")
                if ours != nf_ref:
                    diffs.append(f"{p['patient_id']} ({p['response_pattern']}) {name}: "
                                 f"pipeline {ours} vs noise-free truth {nf_ref}")
            print(f"  {p['patient_id']} {p['response_pattern']:10s} {wall:6.1f} s", flush=True)
        total = sum(walls)
        n = len(walls)
        workers = 1 if args.sequential else assess_workers(args.timepoints)
        print(f"\nassess_patient ({workers} thread{'s' if workers > 1 else ''}): "
              f"{total / n:.1f} s per patient (min {min(walls):.1f}, "
              f"max {max(walls):.1f}), {total:.0f} s for {n} patients; "
              f"{total / n / GOAL_S:.2f} x the {GOAL_S:g} s goal")
        if seq_walls and not args.sequential:
            seq_mean = sum(seq_walls) / len(seq_walls)
            print(f"sequential path (workers=1, same run): {seq_mean:.1f} s per patient; "
                  f"parallel / sequential = {total / n / seq_mean:.2f} "
                  f"({seq_mean / (total / n):.2f}x faster); identical results: "
                  f"{identical}/{n} patients")
        base = stages.get("load", 0.0) or 1e-9
        print(f"{'stage':14s} {'s/patient':>10s} {'share':>7s} {'x load':>7s}")
        for k, v in sorted(stages.items(), key=lambda kv: -kv[1]):
            print(f"{k:14s} {v / n:10.2f} {v / total:7.1%} {v / base:7.2f}")
        print(f"\nlesion matches correct: {match_ok}/{match_n} = {match_ok / max(match_n, 1):.1%}")
        print(f"detections that are no true lesion: {false_pos}/{detections}")
        print(f"timepoints whose liver and blood-pool VOIs lie in uniform tissue: "
              f"{vois_ok}/{vois_n}")
        print(f"categories equal to ground truth: {cat_ok}/{cat_n} = {cat_ok / max(cat_n, 1):.1%}")
        print(f"(equal to the noise-free-image truth: {nf_ok}/{cat_n} "
              f"= {nf_ok / max(cat_n, 1):.1%};"
              f" to the painted-SUV truth, not a scanner measurement: {painted_ok}/{cat_n} "
              f"= {painted_ok / max(cat_n, 1):.1%})")
        for d in diffs:
            print("  differs:", d)
        print(json.dumps({"s_per_patient": total / n, "workers": workers,
                          "sequential_s_per_patient":
                              sum(seq_walls) / len(seq_walls) if seq_walls else None,
                          "x_goal": total / n / GOAL_S,
                          "identical_to_sequential": [identical, n],
                          "stages_s_per_patient":
                          {k: v / n for k, v in stages.items()},
                          "match_correct": [match_ok, match_n],
                          "categories_equal": [cat_ok, cat_n],
                          "categories_equal_noise_free_truth": [nf_ok, cat_n],
                          "categories_equal_painted_truth": [painted_ok, cat_n],
                          "false_detections": [false_pos, detections],
                          "valid_reference_vois": [vois_ok, vois_n]}))
        from oncohybrid.store.db import dispose_engines

        dispose_engines()


if __name__ == "__main__":
    main()
