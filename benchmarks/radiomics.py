"""Benchmark: IBSI 1 features of the CT radiomics phantom's GTV, seconds per ROI, one thread.

    .venv/bin/python benchmarks/radiomics.py                 # config C, all families
    .venv/bin/python benchmarks/radiomics.py --config A --repeat 5
    .venv/bin/python benchmarks/radiomics.py --no-moran      # without Moran's I / Geary's C
    .venv/bin/python benchmarks/radiomics.py --mirp-python /tmp/mirp-venv/bin/python

Reads the IBSI CT phantom (shared/data/ibsi-radiomics, CC BY-NC, benchmark data only; GTV
125 256 voxels at 0.977 × 0.977 × 3 mm), runs the whole pipeline (preprocessing of the
configuration, then every installed family and aggregation) ``--repeat`` times after one
warm-up, and prints the best and median wall time per ROI, the time per stage, how many
IBSI reference rows of that configuration pass, and the ratio to the 0.1 s goal (#18).
Thread pools of NumPy/SciPy's BLAS are pinned to one thread before NumPy is imported.

MIRP runs in the same benchmark run on the same files and configuration, one thread,
after a warm-up, in a subprocess: ``--mirp-python PATH`` names the interpreter of a
separate environment that has MIRP (not a project dependency), e.g.

    python3 -m venv /tmp/mirp-venv && /tmp/mirp-venv/bin/pip install mirp
    .venv/bin/python benchmarks/radiomics.py --mirp-python /tmp/mirp-venv/bin/python

Without it MIRP runs only when importable here; otherwise the benchmark prints the anchor
from radiomics-ai.md (6.7 s/ROI).
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


#: MIRP settings per IBSI configuration (IBSI 1 Table 5.1; names of mirp.extract_features)
MIRP_SETTINGS: dict[str, dict[str, object]] = {
    "A": dict(by_slice=True, resegmentation_intensity_range=[-500.0, 400.0],
              base_discretisation_method="fixed_bin_size", base_discretisation_bin_width=25.0),
    "B": dict(by_slice=True, new_spacing=2.0, spline_order=1, anti_aliasing=False,
              resegmentation_intensity_range=[-500.0, 400.0],
              base_discretisation_method="fixed_bin_number", base_discretisation_n_bins=32),
    "C": dict(new_spacing=2.0, spline_order=1, anti_aliasing=False,
              resegmentation_intensity_range=[-1000.0, 400.0],
              base_discretisation_method="fixed_bin_size", base_discretisation_bin_width=25.0,
              ivh_discretisation_method="fixed_bin_size", ivh_discretisation_bin_width=2.5),
    "D": dict(new_spacing=2.0, spline_order=1, anti_aliasing=False, resegmentation_sigma=3.0,
              base_discretisation_method="fixed_bin_number", base_discretisation_n_bins=32),
    "E": dict(new_spacing=2.0, spline_order=3, anti_aliasing=False,
              resegmentation_intensity_range=[-1000.0, 400.0], resegmentation_sigma=3.0,
              base_discretisation_method="fixed_bin_number", base_discretisation_n_bins=32,
              ivh_discretisation_method="fixed_bin_number", ivh_discretisation_n_bins=1000),
}

#: run in MIRP's own interpreter (argv: image, mask, JSON settings, repeats); prints seconds
_MIRP_RUNNER = """
import json, os, sys, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
from mirp import extract_features
image, mask, settings, repeat = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
kw = dict(image=image, mask=mask, image_modality="ct", base_feature_families="all",
          roi_spline_order=1, roi_interpolation_mask_inclusion_threshold=0.5, num_cpus=1,
          **settings)
extract_features(**kw)  # warm-up (imports, numba/ITK initialisation)
times = []
for _ in range(repeat):
    t0 = time.perf_counter()
    out = extract_features(**kw)
    times.append(time.perf_counter() - t0)
print(json.dumps({"times": times, "n_features": int(out[0].shape[1])}))
"""


def _mirp(python: str | None, image: Path, mask: Path, config: str, repeat: int
          ) -> tuple[float, int] | str:
    """(best seconds per ROI, number of columns) of MIRP on the same files and configuration,
    one thread, in the interpreter ``python`` (a separate environment: MIRP is not a project
    dependency); a reason string when it cannot run."""
    import json
    import subprocess

    if python is None:
        try:
            import mirp  # noqa: F401
        except ImportError:
            return "MIRP not installed (give --mirp-python PATH)"
        python = sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    try:
        proc = subprocess.run([python, "-c", _MIRP_RUNNER, str(image), str(mask),
                               json.dumps(MIRP_SETTINGS[config]), str(repeat)],
                              capture_output=True, text=True, env=env, timeout=3600,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"MIRP did not run: {exc}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return f"MIRP failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    res = json.loads(lines[-1])
    return min(res["times"]), int(res["n_features"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="C", help="IBSI configuration A-E (default C)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mirp-python", default=None, metavar="PATH",
                    help="Python of a separate environment with MIRP installed "
                    "(e.g. /tmp/mirp-venv/bin/python): MIRP runs there on the same files")
    ap.add_argument("--mirp-repeat", type=int, default=1, help="MIRP runs after a warm-up")
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
    times, cpu, stages = [], [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        stages.append(res.settings["timing_s"])
    best, med = min(times), statistics.median(times)
    print(f"oncohybrid: best {best:.3f} s/ROI, median {med:.3f} s/ROI "
          f"({len(res.features)} features; goal {GOAL_S} s: x{best / GOAL_S:.2f}); "
          f"CPU time best {min(cpu):.3f} s/ROI (less sensitive to a loaded machine)")
    print(f"  Moran's I / Geary's C: {res.settings.get('spatial_autocorrelation', 'skipped')}")
    keys = [k for k in stages[0] if k != "total"]
    for k in keys:
        print(f"  {k:28s} {statistics.median(s[k] for s in stages):.4f} s")
    if res.settings["families_missing"]:
        print(f"  not installed: {res.settings['families_missing']}")
    ok, total = _score(res.features, f"config_{settings.name}", d / "ibsi1_reference_values.csv")
    print(f"IBSI reference rows of config {settings.name}: {ok}/{total} within tolerance")
    mirp = _mirp(args.mirp_python, image_path, mask_path, settings.name, args.mirp_repeat)
    if isinstance(mirp, str):
        print(f"{mirp}; anchor, radiomics-ai.md: 6.7 s/ROI on this machine class")
    else:
        mirp_s, n_cols = mirp
        print(f"MIRP (same files, config {settings.name}, one thread, {n_cols} columns, "
              f"Moran/Geary approximated by MIRP's default): best {mirp_s:.2f} s/ROI; "
              f"oncohybrid is x{mirp_s / best:.1f} faster (goal x50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
