"""Benchmark: whole-body PET quantification pipeline and SUVpeak against brute force.

Synthetic whole-body PET, 400 x 200 x 200 voxels (3 x 4 x 4 mm), >= 100 lesions, stored as
int16 with a per-slice rescale slope (as in DICOM). Timed on one core:

1. full SUV conversion (stored value x per-slice factor, float32),
2. lesion segmentation (SUV >= 4.0, 26-connectivity, min 0.1 ml) and 41%-of-SUVmax
   segmentation (preselection SUV >= 4.0),
3. PERCIST liver reference (reader-placed centre), every lesion metric (SUVmax, SUVpeak with
   exact partial-volume weights, SUVmean, MTV, TLG, centroid, extent) and whole-body metrics.

Then SUVpeak for all lesions (bounding-box convolution) against two brute-force references
computed sphere by sphere at every lesion voxel:

- "brute force": each sphere computes its own partial-volume weights (10 x 10 x 10
  sub-samples per voxel, as a naive implementation would), on all lesions (every 8th
  with --quick), compared with the fast path on the same lesions;
- "naive loop": sphere by sphere with the weights computed once (a stronger baseline).

Peak traced memory (tracemalloc) of the pipeline is reported against the float32 volume.
Goals: pipeline < 1 s, >= 50x the brute-force SUVpeak, peak memory <= 4x the float32 volume.

Issue #11 (quantify without waste), each against its baseline in the same run:

4. one volume type: the references/segmentation/metrics chain on a GridImage built once
   (segment.grid.grid_image) against the same chain given the bare array + spacing at
   every call (converted by as_grid at each step, as quantify_pet did); same numbers;
5. physiological exclusion of a fixed segmentation: drop_lesions against segmenting again
   with the dropped components' dilated masks excluded (the old path); identical labels.

Run: .venv/bin/python benchmarks/pet.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from oncohybrid.quant.pet import (  # noqa: E402
    SUV_PEAK_RADIUS_MM,
    _peak_in_box,
    lesion_metrics,
    sphere_kernel,
    whole_body_metrics,
)
from oncohybrid.quant.references import liver_reference  # noqa: E402
from oncohybrid.segment.grid import grid_image  # noqa: E402
from oncohybrid.segment.threshold import drop_lesions, segment_lesions  # noqa: E402

SPACING = (3.0, 4.0, 4.0)


def make_phantom(shape: tuple[int, int, int], n_lesions: int, seed: int = 7):
    """int16 stored values, per-slice slopes and the true SUV image (not timed)."""
    rng = np.random.default_rng(seed)
    z, y, x = (np.arange(n, dtype=np.float32) for n in shape)
    zz, yy, xx = z[:, None, None], y[None, :, None], x[None, None, :]
    cz, cy, cx = shape[0] / 2, shape[1] / 2, shape[2] / 2
    body = ((zz - cz) / (0.48 * shape[0])) ** 2 + ((yy - cy) / (0.3 * shape[1])) ** 2 + (
        (xx - cx) / (0.42 * shape[2])
    ) ** 2 <= 1
    suv = np.where(body, np.float32(0.8), np.float32(0.0))
    # Liver: ellipsoid on the patient's right (low x), upper abdomen.
    liver = ((zz - 0.62 * shape[0]) / 25) ** 2 + ((yy - cy) / 18) ** 2 + (
        (xx - 0.33 * shape[2]) / 22
    ) ** 2 <= 1
    suv[liver] = 2.0
    centres = []
    while len(centres) < n_lesions:
        c = rng.uniform([10, 40, 40], [shape[0] - 10, shape[1] - 40, shape[2] - 40])
        if any(np.linalg.norm((c - d) * SPACING) < 45 for d in centres):
            continue
        centres.append(c)
    for c in centres:
        r_mm = rng.uniform(5.0, 18.0)
        val = rng.uniform(4.0, 15.0)
        h = np.ceil(r_mm / np.asarray(SPACING)).astype(int) + 1
        lo = np.maximum(np.floor(c).astype(int) - h, 0)
        hi = np.minimum(np.floor(c).astype(int) + h + 1, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        g = np.meshgrid(
            *[(np.arange(a, b) - cc) * s for a, b, cc, s in zip(lo, hi, c, SPACING, strict=True)],
            indexing="ij",
        )
        ball = sum(v * v for v in g) <= r_mm * r_mm
        suv[box][ball] = val
    suv = ndimage.gaussian_filter(suv, sigma=np.asarray([6.0 / 2.3548 / s for s in SPACING]))
    suv *= rng.normal(1.0, 0.08, size=shape).astype(np.float32)
    slopes = rng.uniform(0.8e-3, 1.2e-3, shape[0]).astype(np.float64)
    stored = np.clip(np.round(suv / slopes[:, None, None]), -32768, 32767).astype(np.int16)
    return stored, slopes


def liver_centre_lps(shape: tuple[int, ...]) -> tuple[float, float, float]:
    """LPS mm of the liver ellipsoid centre of :func:`make_phantom` (axial grid, origin 0)."""
    k, i, j = 0.62 * shape[0], shape[1] / 2, 0.33 * shape[2]
    return (j * SPACING[2], i * SPACING[1], k * SPACING[0])


def pipeline(stored: np.ndarray, slopes: np.ndarray, method: str):
    # 1. SUV conversion: per-slice factor, float32, no full-volume float64 temporary.
    suv = stored.astype(np.float32)
    suv *= slopes.astype(np.float32)[:, None, None]
    # 2. segmentation
    seg = segment_lesions(
        suv,
        method=method,
        threshold_suv=4.0,
        preselect_suv=4.0,
        connectivity=26,
        min_volume_ml=0.1,
        spacing_mm=SPACING,
    )
    # 3. references and metrics
    # Reader-placed liver centre (the phantom's liver ellipsoid): an automatic sphere needs a
    # CT to prove its anatomy, and this synthetic PET has none.
    liver = liver_reference(suv, centre_lps_mm=liver_centre_lps(suv.shape), spacing_mm=SPACING)
    mets = lesion_metrics(suv, seg.labels, spacing_mm=SPACING, boxes=seg.boxes)
    wb = whole_body_metrics(suv, seg.labels, spacing_mm=SPACING, bsa_m2=1.9, metrics=mets)
    return suv, seg, liver, mets, wb


def brute_force_peak(suv, box, lesion, spacing, subsamples=10):
    """Sphere by sphere at every lesion voxel, weights sub-sampled for each sphere."""
    half = [int(np.ceil(SUV_PEAK_RADIUS_MM / s + 0.5)) - 1 for s in spacing]
    u = (np.arange(subsamples) + 0.5) / subsamples - 0.5
    best = -np.inf
    for p in np.argwhere(lesion):
        c = p + [b.start for b in box]
        lo = [max(0, int(c[a]) - half[a]) for a in range(3)]
        hi = [min(suv.shape[a], int(c[a]) + half[a] + 1) for a in range(3)]
        g = np.meshgrid(*[np.arange(lo[a], hi[a]) - c[a] for a in range(3)], indexing="ij")
        # sub-sample coordinates (mm) of every voxel of the window relative to the centre
        pts = [
            (g[a][..., None, None, None] + np.reshape(u, [-1 if k == a else 1 for k in range(3)]))
            * spacing[a]
            for a in range(3)
        ]
        w = (pts[0] ** 2 + pts[1] ** 2 + pts[2] ** 2 <= SUV_PEAK_RADIUS_MM**2).mean(axis=(3, 4, 5))
        win = suv[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        best = max(best, float((w * win).sum() / w.sum()))
    return best


def naive_peak(suv, box, lesion, kernel):
    h = [k // 2 for k in kernel.shape]
    pad = np.pad(
        suv[tuple(slice(max(0, b.start - hh), b.stop + hh) for b, hh in zip(box, h, strict=True))],
        [(max(0, hh - b.start), 0) for b, hh in zip(box, h, strict=True)],
    )
    pad = np.pad(
        pad,
        [
            (0, max(0, (b.stop - b.start + 2 * hh) - s))
            for b, hh, s in zip(box, h, pad.shape, strict=True)
        ],
    )
    best = -np.inf
    ks = kernel.sum()
    for p in np.argwhere(lesion):
        win = pad[
            p[0] : p[0] + kernel.shape[0],
            p[1] : p[1] + kernel.shape[1],
            p[2] : p[2] + kernel.shape[2],
        ]
        best = max(best, float((win * kernel).sum() / ks))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller brute-force subset")
    args = ap.parse_args()
    shape = (400, 200, 200)
    stored, slopes = make_phantom(shape, n_lesions=120)
    vol_bytes = int(np.prod(shape)) * 4
    print(f"volume {shape} float32 = {vol_bytes / 2**20:.0f} MiB, spacing {SPACING} mm")

    pipeline(stored[:40], slopes[:40], "suv4")  # warm-up (imports, kernel cache)
    for method in ("suv4", "41pct"):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            suv, seg, liver, mets, wb = pipeline(stored, slopes, method)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        pipeline(stored, slopes, method)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"pipeline [{method}]: {min(times):.3f} s (best of 3), {seg.n_lesions} lesions, "
            f"TMTV {wb.tmtv_ml:.1f} ml, Dmax {wb.dmax_mm:.0f} mm, liver SUVmean "
            f"{liver.suv_mean:.2f}; peak traced memory {peak / 2**20:.0f} MiB = "
            f"{peak / vol_bytes:.2f}x the float32 volume  (goals: < 1 s, <= 4x)"
        )

    suv, seg, *_ = pipeline(stored, slopes, "suv4")
    boxes = ndimage.find_objects(seg.labels)
    kernel = sphere_kernel(SPACING)
    from oncohybrid.quant.pet import PeakConstraint, PeakMode

    def fast(ids):
        out = []
        for i in ids:
            box = boxes[i - 1]
            out.append(
                _peak_in_box(
                    suv,
                    box,
                    seg.labels[box] == i,
                    kernel,
                    PeakMode.PERCIST,
                    PeakConstraint.CENTRE_IN_MASK,
                )[0]
            )
        return out

    all_ids = list(range(1, seg.n_lesions + 1))
    t0 = time.perf_counter()
    fast_all = fast(all_ids)
    t_fast_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_all = [
        naive_peak(suv, boxes[i - 1], seg.labels[boxes[i - 1]] == i, kernel) for i in all_ids
    ]
    t_naive = time.perf_counter() - t0
    n_vox = int(np.count_nonzero(seg.labels))
    print(
        f"SUVpeak all {len(all_ids)} lesions ({n_vox} candidate centres): fast {t_fast_all:.4f} s,"
        f" naive loop {t_naive:.3f} s -> {t_naive / t_fast_all:.0f}x;"
        f" max |diff| {np.max(np.abs(np.subtract(fast_all, naive_all))):.1e}"
    )
    subset = all_ids[:: (8 if args.quick else 1)]
    t0 = time.perf_counter()
    fast_sub = fast(subset)
    t_fast_sub = time.perf_counter() - t0
    t0 = time.perf_counter()
    brute = [
        brute_force_peak(suv, boxes[i - 1], seg.labels[boxes[i - 1]] == i, SPACING) for i in subset
    ]
    t_brute = time.perf_counter() - t0
    print(
        f"SUVpeak {len(subset)} lesions: fast {t_fast_sub:.4f} s, brute force (weights per "
        f"sphere, 10^3 sub-samples) {t_brute:.2f} s -> {t_brute / t_fast_sub:.0f}x (goal >= 50x);"
        f" max |diff| {np.max(np.abs(np.subtract(fast_sub, brute))):.1e} (sub-sampled weights)"
    )

    one_volume_type(suv)
    exclusion(suv, seg)


def _chain(image, spacing):
    """quantify_pet's quant/segment steps on one image (spacing: bare array geometry)."""
    kw = {} if spacing is None else {"spacing_mm": spacing}
    liver = liver_reference(image, centre_lps_mm=liver_centre_lps(image.shape), **kw)
    seg = segment_lesions(image, method="suv4", min_volume_ml=0.1, **kw)
    mets = lesion_metrics(image, seg.labels, boxes=seg.boxes, **kw)
    wb = whole_body_metrics(image, seg.labels, bsa_m2=1.9, metrics=mets, **kw)
    return liver.suv_mean, seg.n_lesions, [m.suv_peak.value for m in mets], wb.tmtv_ml


def one_volume_type(suv: np.ndarray) -> None:
    base, new = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        r0 = _chain(suv, SPACING)
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r1 = _chain(grid_image(suv, spacing_mm=SPACING), None)
        new.append(time.perf_counter() - t0)
    same = r0 == r1
    print(
        f"one volume type: chain on a GridImage built once {min(new):.3f} s vs converted at "
        f"every call (baseline) {min(base):.3f} s -> {min(base) / min(new):.2f}x; "
        f"same numbers: {same}"
    )


def exclusion(suv: np.ndarray, seg) -> None:
    ids = list(range(2, seg.n_lesions + 1, 7))  # "physiological" components to drop
    kw = {"method": "suv4", "connectivity": 26, "min_volume_ml": 0.1}
    base, new = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        masks = {"organ": ndimage.binary_dilation(np.isin(seg.labels, ids))}
        again = segment_lesions(suv, exclude=masks, spacing_mm=SPACING, **kw)
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        dropped = drop_lesions(seg, ids, ["organ"])
        new.append(time.perf_counter() - t0)
    same = bool(np.array_equal(again.labels, dropped.labels)) and again.boxes == dropped.boxes
    print(
        f"physiological exclusion ({len(ids)} of {seg.n_lesions} components): drop_lesions "
        f"{min(new):.4f} s vs segmenting again with dilated masks (baseline) {min(base):.3f} s"
        f" -> {min(base) / min(new):.0f}x; identical labels and boxes: {same}"
    )


if __name__ == "__main__":
    main()
