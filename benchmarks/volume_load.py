"""Benchmark: ``load_series`` against SimpleITK's ImageSeriesReader on phantom series.

Writes one clinical-size phantom timepoint (CT 256×256×281, PET 128×128×~215) and loads
each series with both readers (best of ``--repeat`` runs, same files, float32 output).
Prints seconds, the time ratio (goal ≤ 1.5×) and ``load_series``' peak traced memory
relative to the float32 volume (goal ≤ 2.5×; tracemalloc sees NumPy and pydicom buffers).

    .venv/bin/python benchmarks/volume_load.py [--vendor ge] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from oncohybrid.dicom.volume import load_series
from oncohybrid.phantom import generate_cohort


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vendor", default="ge", choices=("siemens", "ge", "philips"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="SimpleITK threads")
    args = ap.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = generate_cohort(tmp, patients=1, timepoints=1, vendor=args.vendor, seed=1,
                                size="clinical")
        print(f"phantom (1 patient, 1 timepoint, clinical, {args.vendor}): "
              f"{time.perf_counter() - t0:.2f} s")
        tp = truth["patients"][0]["timepoints"][0]
        for name in ("ct_dir", "pt_dir"):
            directory = Path(tmp) / tp[name]
            files = sorted(str(p) for p in directory.glob("*.dcm"))
            reader = sitk.ImageSeriesReader()
            sorted_files = reader.GetGDCMSeriesFileNames(str(directory))

            def read_sitk(sorted_files=sorted_files) -> np.ndarray:
                return sitk.GetArrayViewFromImage(sitk.ReadImage(sorted_files, sitk.sitkFloat32))

            def read_ours(files=files) -> np.ndarray:
                return load_series(files).array

            t_sitk = best_of(read_sitk, args.repeat)
            t_ours = best_of(read_ours, args.repeat)
            tracemalloc.start()
            arr = read_ours()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"{name[:2].upper()} {arr.shape}: load_series {t_ours:.3f} s, "
                  f"SimpleITK {t_sitk:.3f} s (incl. GDCM sort: no), ratio {t_ours / t_sitk:.2f}"
                  f" (goal <= 1.5); peak memory {peak / 2**20:.0f} MiB = "
                  f"{peak / arr.nbytes:.2f} x float32 volume (goal <= 2.5)")


if __name__ == "__main__":
    main()
