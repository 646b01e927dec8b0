"""Benchmark: IBSI 1 features of the CT radiomics phantom's GTV, seconds per ROI, one thread.

    .venv/bin/python benchmarks/radiomics.py                 # config C, all families
    .venv/bin/python benchmarks/radiomics.py --config A --repeat 5
    .venv/bin/python benchmarks/radiomics.py --no-moran      # without Moran's I / Geary's C

Reads the IBSI CT phantom (shared/data/ibsi-radiomics, CC BY-NC, benchmark data only; GTV
125 256 voxels at 0.977 × 0.977 × 3 mm), runs the whole pipeline (preprocessing of the
configuration, then every installed family and aggregation) ``--repeat`` times after one
warm-up, and prints the best and median wall time per ROI, the time per stage, how many
IBSI reference rows of that configuration pass, and the ratio to the 0.1 s goal (#18).
Thread pools of NumPy/SciPy's BLAS are pinned to one thread before NumPy is imported.

MIRP runs in the same process on the same files when it is importable (it is not a
project dependency: install it in the benchmark's own environment); otherwise the
benchmark prints "MIRP not installed" and the anchor from radiomics-ai.md (6.7 s/ROI).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.1
AGG = {"2D, averaged": "BTW3", "2D, slice-merged": "SUJT", "2.5D, direction-merged": "JJUI",
       "2.5D, merged": "ZW7Z", "3D, averaged": "ITBB", "3D, merged": "IAZD", "2D": "8QNN",
       "2.5D": "62GR", "3D": "KOBO"}
IVH = {"ivh.V10": "BC2M/V10", "ivh.V90": "BC2M/V90", "ivh.I10": "GBPN/I10",
       "ivh.I90": "GBPN/I90", "ivh.V10minusV90": "DDTU/V10-V90",
       "ivh.I10minusI90": "CNV2/I10-I90"}


def _data_dir() -> Path:
    env = os.environ.get("ONCOHYBRID_SHARED_DATA")
    base = Path(env) if env else ROOT.parent / "shared" / "data"
    return base / "ibsi-radiomics"


def _score(features: dict[str, float], dataset: str, table: Path) -> tuple[int, int]:
    ok = total = 0
    with table.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["dataset"] != dataset or not r["value"].strip():
                continue
            key = IVH[r["math_tag"]] if r["family"] == "ivh" else (
                r["ibsi_id"] + ("/" + AGG[r["aggregation"]] if r["aggregation"] else ""))
            total += 1
            if key in features:
                x = features[key]
                r3 = float(f"{x:.3g}")
                ok += abs(r3 - float(r["value"])) <= float(r["tolerance"] or 0) * (1 + 1e-9)
    return ok, total


def _mirp(image: Path, mask: Path, config: str) -> float | None:
    try:
        import mirp  # noqa: F401
    except ImportError:
        return None
    from mirp import extract_features

    kw = dict(image=str(image), mask=str(mask), image_modality="ct",
              base_feature_families="all", base_discretisation_method="fixed_bin_size",
              base_discretisation_bin_width=25.0, new_spacing=2.0,
              resegmentation_intensity_range=[-1000.0, 400.0], ivh_discretisation_method=
              "fixed_bin_size", ivh_discretisation_bin_width=2.5)
    if config != "C":
        print(f"  (MIRP runs with config C settings; --config {config} is not mapped)")
    t0 = time.perf_counter()
    extract_features(**kw)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="C", help="IBSI configuration A-E (default C)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-moran", action="store_true",
                    help="skip Moran's I / Geary's C (morphology N365/NPT7)")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from oncohybrid.radiomics.configs import ibsi_config
    from oncohybrid.radiomics.pipeline import extract
    from oncohybrid.services.radiomics import read_nifti

    d = _data_dir()
    image_path = d / "ibsi1_ct_radiomics_phantom" / "image.nii.gz"
    mask_path = d / "ibsi1_ct_radiomics_phantom" / "mask.nii.gz"
    if not image_path.exists():
        print(f"IBSI CT phantom not found under {d} (set ONCOHYBRID_SHARED_DATA)")
        return 1
    image, sp = read_nifti(image_path)
    mask, _ = read_nifti(mask_path)
    settings = ibsi_config(args.config)
    print(f"IBSI CT phantom GTV: {int((mask > 0).sum())} voxels, spacing {sp} mm, "
          f"config {settings.name}, one thread, {args.repeat} runs after a warm-up")
    run = lambda: extract(image, mask, sp, settings,  # noqa: E731
                          spatial_autocorr=not args.no_moran)
    res = run()
    times, stages = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t0)
        stages.append(res.settings["timing_s"])
    best, med = min(times), statistics.median(times)
    print(f"oncohybrid: best {best:.3f} s/ROI, median {med:.3f} s/ROI "
          f"({len(res.features)} features; goal {GOAL_S} s: x{best / GOAL_S:.2f})")
    keys = [k for k in stages[0] if k != "total"]
    for k in keys:
        print(f"  {k:28s} {statistics.median(s[k] for s in stages):.4f} s")
    if res.settings["families_missing"]:
        print(f"  not installed: {res.settings['families_missing']}")
    ok, total = _score(res.features, f"config_{settings.name}", d / "ibsi1_reference_values.csv")
    print(f"IBSI reference rows of config {settings.name}: {ok}/{total} within tolerance")
    mirp_s = _mirp(image_path, mask_path, settings.name)
    if mirp_s is None:
        print("MIRP not installed (anchor, radiomics-ai.md: 6.7 s/ROI on this machine class)")
    else:
        print(f"MIRP: {mirp_s:.2f} s/ROI; oncohybrid is x{mirp_s / best:.1f} faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
