"""Benchmark: phantom generation speed (goals: clinical 1 patient × 3 timepoints ≤ 20 s,
small ≤ 2 s per timepoint).

Baseline measured in the same run: writing the same number of CT + PET files with a plain
``pydicom.dcmwrite`` of the first slice's dataset (the cost floor of naive per-file writes).

    .venv/bin/python benchmarks/phantom_generate.py [--vendor siemens]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pydicom

from oncohybrid.phantom import generate_cohort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vendor", default="siemens", choices=("siemens", "ge", "philips"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = generate_cohort(Path(tmp) / "clin", patients=1, timepoints=3,
                                vendor=args.vendor, seed=3, size="clinical")
        t_clin = time.perf_counter() - t0
        t0 = time.perf_counter()
        generate_cohort(Path(tmp) / "small", patients=1, timepoints=3, vendor=args.vendor,
                        seed=3, size="small")
        t_small = time.perf_counter() - t0
        tp = truth["patients"][0]["timepoints"][0]
        files = sorted((Path(tmp) / "clin" / tp["ct_dir"]).glob("*.dcm")) + sorted(
            (Path(tmp) / "clin" / tp["pt_dir"]).glob("*.dcm"))
        ds = pydicom.dcmread(files[0])
        t0 = time.perf_counter()
        for k in range(len(files)):
            pydicom.dcmwrite(Path(tmp) / f"naive{k}.dcm", ds, enforce_file_format=True)
        t_naive = (time.perf_counter() - t0) * 3
        print(f"clinical 1 patient x 3 timepoints ({args.vendor}): {t_clin:.2f} s (goal <= 20 s); "
              f"naive dcmwrite of the same {3 * len(files)} files alone: {t_naive:.2f} s "
              f"(ratio {t_clin / t_naive:.2f})")
        print(f"small: {t_small / 3:.2f} s per timepoint (goal <= 2 s)")


if __name__ == "__main__":
    main()
