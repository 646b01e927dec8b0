"""Benchmark: lesion tracking (registration + matching) on synthetic phantom patients.

Generates a small phantom cohort (``oncohybrid.phantom.generate_cohort``), uses the
ground-truth lesions of each timepoint as detections (masks rasterised on that
timepoint's CT grid, labels shuffled), registers every follow-up CT to the baseline CT
and tracks the lesions. Each follow-up CT is additionally moved by a random 20–40 mm
shift (affine, CT and masks together) so that every pair needs ≥ 2 cm of correction
on top of the phantom's own repositioning (±25/±20 mm, ±4°).

Prints, against a baseline measured in the same run (matching on scanner coordinates
without registration): the fraction of correct lesion decisions, registration error at
the lesion centres, and seconds per registration (SimpleITK limited to one thread).
A second run with the same registrations uses PET threshold components (SUV ≥ 3.5,
≥ 3 voxels) as detections; components overlapping no ground-truth lesion
(physiological uptake) are tracked but not scored.

    .venv/bin/python benchmarks/tracking_phantom.py [--patients 4] [--timepoints 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tracking"))

from tracking_phantom_harness import lesion_mask, run_patient  # noqa: E402

from oncohybrid.dicom.volume import load_series  # noqa: E402
from oncohybrid.phantom import generate_cohort  # noqa: E402
from oncohybrid.quant.ct import measure_ct_lesion  # noqa: E402


def ct_measurement_errors(root: Path, ptruth: dict) -> list[tuple[float, float, float]]:
    """(LD error, SA error, in-plane voxel diagonal) in mm for each baseline lesion.

    The truth's ld_mm/sa_mm are the ellipsoid's full in-plane axes; the CT slices may
    miss the centre by up to half a slice, which shortens the largest section a little.
    """
    tp = ptruth["timepoints"][0]
    ct = load_series(root / tp["ct_dir"])
    diag = float(np.hypot(*ct.spacing[1:]))
    out = []
    for les in tp["lesions"]:
        if not les["present"]:
            continue
        m = lesion_mask(ct, les["centre_lps_mm"], les["axes_mm"], tp["rotation_deg"])
        if m.sum() < 2:
            continue
        r = measure_ct_lesion(m, affine=ct.affine)
        out.append((r.ld_mm - les["ld_mm"], r.sa_mm - les["sa_mm"], diag))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=4)
    ap.add_argument("--timepoints", type=int, default=4)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="small", choices=("small", "clinical"))
    args = ap.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = generate_cohort(tmp, patients=args.patients, timepoints=args.timepoints,
                                vendor="mixed", seed=args.seed, size=args.size)
        print(f"cohort: {args.patients} patients x {args.timepoints} timepoints "
              f"({args.size}) generated in {time.perf_counter() - t0:.1f} s")
        totals = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
        pet_tot = [0, 0, 0, 0]
        errs, times, shifts, rots, ct_err = [], [], [], [], []
        for p in truth["patients"]:
            ct_err += ct_measurement_errors(Path(tmp), p)
            for use_reg in (True, False):
                # Same extra motion and label shuffle for both methods of a patient.
                rng = np.random.default_rng([args.seed, truth["patients"].index(p)])
                s = run_patient(Path(tmp), p, rng, extra_shift_mm=(20.0, 40.0),
                                use_registration=use_reg, pet=use_reg)
                tot = totals[use_reg]
                tot[0] += s["correct"]
                tot[1] += s["total"]
                tot[2] += s["disappeared_correct"]
                tot[3] += s["disappeared_total"]
                if use_reg:
                    ps = s["pet"]
                    for i, key in enumerate(("correct", "total", "disappeared_correct",
                                             "disappeared_total")):
                        pet_tot[i] += ps[key]
                    for e in ps["errors"]:
                        print(f"  {p['patient_id']} (PET detections): {e}")
                    errs += s["reg_err_mm"]
                    times += s["reg_time_s"]
                    shifts += s["rel_shift_mm"]
                    rots += s["rel_rotation_deg"]
                    for e in s["errors"]:
                        print(f"  {p['patient_id']}: {e}")
    print(f"follow-up pairs: {len(times)}; relative shift {min(shifts):.0f}–{max(shifts):.0f} mm "
          f"(median {np.median(shifts):.0f}), relative rotation ≤ {max(rots):.1f}°")
    print(f"registration error at lesion centres: median {np.median(errs):.2f} mm, "
          f"95th pct {np.percentile(errs, 95):.2f} mm, max {max(errs):.2f} mm")
    print(f"registration time per pair ({args.threads} thread): median {np.median(times):.2f} s, "
          f"max {max(times):.2f} s")
    for use_reg, name in ((True, "registration + matching"),
                          (False, "baseline: matching without registration")):
        c, n, dc, dn = totals[use_reg]
        print(f"{name}: lesion decisions {c}/{n} = {100 * c / max(n, 1):.1f} % correct; "
              f"disappeared {dc}/{dn} correct")
    e = np.array(ct_err)
    print(f"CT diameters of {len(e)} baseline lesion masks vs phantom truth: LD error "
          f"median {np.median(e[:, 0]):+.2f} mm (max |{np.abs(e[:, 0]).max():.2f}|), SA error "
          f"median {np.median(e[:, 1]):+.2f} mm (max |{np.abs(e[:, 1]).max():.2f}|); "
          f"in-plane voxel diagonal {e[0, 2]:.2f} mm")
    c, n, dc, dn = pet_tot
    print(f"registration + matching, PET threshold components (SUV >= 3.5) as detections: "
          f"{c}/{n} = {100 * c / max(n, 1):.1f} % correct; disappeared {dc}/{dn} correct")
    c1, n1 = totals[True][:2]
    c0, n0 = totals[False][:2]
    if c0:
        print(f"ratio correct (with / without registration): {(c1 / n1) / (c0 / n0):.2f}")


if __name__ == "__main__":
    main()
