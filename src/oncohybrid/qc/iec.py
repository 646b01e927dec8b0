"""NEMA NU 2 / IEC 61675-1 body-phantom analysis: recovery coefficients, background
variability, lung residual and EARL compliance (issue #20).

Sphere finding (no user clicks): the six spheres (10, 13, 17, 22, 28, 37 mm) have their
centres in one transaxial plane on a circle of 114.4 mm diameter, 60° apart, in order of
size (NEMA NU 2-2018 §7.2). Each sphere's matched filter is the image, minus its
background, averaged over a ball of that sphere's diameter (correlation with the
template). Candidate positions of the largest sphere are the strongest local maxima of
its matched filter; for each candidate, the ring's rotation angle and handedness are
searched (1° steps) and the configuration with the largest summed response of the six
filters wins. Each sphere is then refined to the maximum of its own filter within 5 mm
(sub-voxel by a parabola through the neighbours).

Definitions (true concentrations ``A`` sphere, ``B`` background, both at the image's
decay-correction reference time):

- RCmax = the maximum voxel inside the sphere (voxel centres within its inner radius;
  the nearest voxel if none) / A.
- RCmean = mean of the voxels at or above the background-adapted 50 % isocontour,
  ``B_meas + 0.5·(max − B_meas)`` (EARL "A50"; Boellaard et al. EJNMMI 2015 §"Image
  quality"), connected to the max voxel within the sphere radius + 10 mm, / A.
  ``B_meas`` is the measured background (mean of the 37 mm background ROIs).
- RCpeak = SUVpeak definition: the highest mean of a 1 cm³ sphere (exact partial-volume
  weights) centred on any voxel of the sphere (:func:`oncohybrid.quant.pet.suv_peak`,
  PERCIST/IBSI global placement, handed in by the caller) / A.
- Background variability (NEMA NU 2-2018 §7.4.1): twelve 37 mm circular ROIs in the
  background of the sphere plane, ≥ 15 mm from the phantom edge and from any sphere,
  repeated on the slices ±10 mm and ±20 mm (60 ROIs), with concentric 10…28 mm ROIs;
  ``N_j = SD_j / C_B,j × 100 %`` over the 60 ROI means of size j.
- ``background_cv``: the coefficient of variation (SD / mean) of the voxels of the sixty
  37 mm background ROIs pooled, a fraction — the image-noise figure EARL and Kaalep et al.
  2018 report as "COV".
- Lung residual (NEMA NU 2-2018 §7.4.2): a 30 mm ROI on the lung insert on the same five
  slices, ``ΔC_lung = C_lung / C_B,37 × 100 %`` averaged over the slices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.errors import InputError
from oncohybrid.qc.earl import BANDS, COMPLIANCE_METRICS, EarlStandard

__all__ = [
    "RING_RADIUS_MM",
    "SPHERE_DIAMETERS_MM",
    "IECResult",
    "SphereResult",
    "SpheresNotFoundError",
    "analyse_iec",
]

SPHERE_DIAMETERS_MM: tuple[float, ...] = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
RING_RADIUS_MM: float = 114.4 / 2.0
LUNG_ROI_DIAMETER_MM: float = 30.0
LUNG_INSERT_RADIUS_MM: float = 25.0
BACKGROUND_ROI_DIAMETER_MM: float = 37.0
BACKGROUND_SLICE_OFFSETS_MM: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0)
#: Minimum distance (mm) of a background ROI from the phantom edge and from the spheres.
BACKGROUND_MARGIN_MM: float = 15.0
#: A sphere counts as found when its max exceeds the background by this many noise SDs
#: and by this fraction of the background (the second guards noise-free images).
FOUND_NOISE_SDS: float = 5.0
FOUND_MIN_CONTRAST: float = 0.10


#: SUVpeak of a VOI: (image, boolean mask, 4 x 4 affine) -> mean of the best 1 cm³ sphere.
PeakFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


class SpheresNotFoundError(InputError):
    """No IEC sphere arrangement in the image (exit code 2)."""


@dataclass(frozen=True)
class SphereResult:
    diameter_mm: float
    centre_lps_mm: tuple[float, float, float]
    max_bq_ml: float
    mean_a50_bq_ml: float
    peak_bq_ml: float
    rc_max: float
    rc_mean: float
    rc_peak: float
    a50_voxels: int
    background_variability_pct: float
    found: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "diameter_mm": self.diameter_mm,
            "rc_max": self.rc_max,
            "rc_mean": self.rc_mean,
            "rc_peak": self.rc_peak,
            "centre_lps_mm": list(self.centre_lps_mm),
            "max_bq_ml": self.max_bq_ml,
            "mean_a50_bq_ml": self.mean_a50_bq_ml,
            "peak_bq_ml": self.peak_bq_ml,
            "a50_voxels": self.a50_voxels,
            "background_variability_pct": self.background_variability_pct,
            "found": self.found,
        }


@dataclass(frozen=True)
class IECResult:
    spheres: list[SphereResult]
    sphere_bq_ml: float
    background_bq_ml: float
    measured_background_bq_ml: float
    background_cv: float
    lung_residual_pct: float
    ring_centre_lps_mm: tuple[float, float, float]
    earl: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def earl1(self) -> bool:
        return bool(self.earl[EarlStandard.EARL1.value]["compliant"])

    @property
    def earl2(self) -> bool:
        return bool(self.earl[EarlStandard.EARL2.value]["compliant"])

    def to_json(self) -> dict[str, Any]:
        return {
            "spheres": [s.to_json() for s in self.spheres],
            "earl1": self.earl1,
            "earl2": self.earl2,
            "background_cv": self.background_cv,
            "measured_background_bq_ml": self.measured_background_bq_ml,
            "background_recovery": self.measured_background_bq_ml / self.background_bq_ml
            if self.background_bq_ml > 0 else None,
            "lung_residual_pct": self.lung_residual_pct,
            "sphere_bq_ml": self.sphere_bq_ml,
            "background_bq_ml": self.background_bq_ml,
            "ring_centre_lps_mm": list(self.ring_centre_lps_mm),
            "earl_detail": self.earl,
        }


# ---------------------------------------------------------------------------------------


def _ball_mask(spacing: Sequence[float], radius_mm: float) -> np.ndarray:
    half = [max(0, int(math.floor(radius_mm / s))) for s in spacing]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing, strict=True)],
                        indexing="ij")
    m = sum(g * g for g in grids) <= radius_mm * radius_mm
    if not m.any():
        m[tuple(h for h in half)] = True
    return m


#: Width (mm) of the shell around each sphere template (see :func:`_matched`).
SHELL_MM: float = 8.0


def _matched(excess: np.ndarray, spacing: Sequence[float], diameter_mm: float) -> np.ndarray:
    """Matched filter of one sphere size: mean of ``excess`` over a ball of ``diameter_mm``
    minus its mean over the surrounding shell of :data:`SHELL_MM` (zero-mean template), so
    a small template on a larger sphere scores low and each size peaks on its own sphere."""
    from scipy.signal import fftconvolve  # ~0.5 s import: only here

    r = diameter_mm / 2.0
    outer = _ball_mask(spacing, r + SHELL_MM)
    inner = np.zeros_like(outer)
    b = _ball_mask(spacing, r)
    off = [(o - i) // 2 for o, i in zip(outer.shape, b.shape, strict=True)]
    inner[off[0]:off[0] + b.shape[0], off[1]:off[1] + b.shape[1], off[2]:off[2] + b.shape[2]] = b
    shell = outer & ~inner
    tmpl = inner / inner.sum() - shell / max(shell.sum(), 1)
    return fftconvolve(excess, tmpl, mode="same")


def _local_maxima(resp: np.ndarray, spacing: Sequence[float], sep_mm: float, n: int
                  ) -> list[tuple[int, int, int]]:
    size = [max(3, 2 * int(round(sep_mm / s)) + 1) for s in spacing]
    peaks = (resp == ndimage.maximum_filter(resp, size=size, mode="nearest")) & (resp > 0)
    idx = np.argwhere(peaks)
    if len(idx) == 0:
        return []
    order = np.argsort(resp[tuple(idx.T)])[::-1][:n]
    return [tuple(int(v) for v in idx[i]) for i in order]  # type: ignore[misc]


def _sample(resp: np.ndarray, p: np.ndarray) -> float:
    """Nearest-voxel value of ``resp`` at fractional index ``p``; -inf outside."""
    q = np.rint(p).astype(int)
    if any(q[a] < 0 or q[a] >= resp.shape[a] for a in range(3)):
        return -math.inf
    return float(resp[tuple(q)])


def _ring_positions(centre_idx: np.ndarray, angle_deg: float, sign: float,
                    spacing: Sequence[float], anchor: int) -> list[np.ndarray]:
    """Fractional indices of the six sphere centres for a ring whose sphere ``anchor``
    sits at ``centre_idx`` (plane = its slice), rotated by ``angle_deg``."""
    dz, dy, dx = spacing
    a0 = math.radians(angle_deg)
    ring_c = centre_idx - np.array([0.0, RING_RADIUS_MM * math.sin(a0) / dy,
                                    RING_RADIUS_MM * math.cos(a0) / dx])
    out = []
    for i in range(6):
        a = a0 + sign * math.radians(60.0 * (i - anchor))
        out.append(ring_c + np.array([0.0, RING_RADIUS_MM * math.sin(a) / dy,
                                      RING_RADIUS_MM * math.cos(a) / dx]))
    return out


def _refine(resp: np.ndarray, p: np.ndarray, spacing: Sequence[float], radius_mm: float
            ) -> np.ndarray:
    """Maximum of ``resp`` within ``radius_mm`` of ``p``, sub-voxel by parabolas."""
    q = np.rint(p).astype(int)
    half = [max(1, int(math.ceil(radius_mm / s))) for s in spacing]
    lo = [max(0, q[a] - half[a]) for a in range(3)]
    hi = [min(resp.shape[a], q[a] + half[a] + 1) for a in range(3)]
    if any(h <= l_ for l_, h in zip(lo, hi, strict=True)):
        return p
    sub = resp[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    k, i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
    best = np.array([k + lo[0], i + lo[1], j + lo[2]], dtype=np.float64)
    for a in range(3):
        b = best.astype(int)
        if 0 < b[a] < resp.shape[a] - 1:
            m, p0 = b.copy(), b.copy()
            m[a] -= 1
            p0[a] += 1
            y0, y1, y2 = resp[tuple(m)], resp[tuple(b)], resp[tuple(p0)]
            den = y0 - 2 * y1 + y2
            if den < 0:
                best[a] += float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
    return best


def _disk(shape2: tuple[int, int], centre: np.ndarray, spacing2: Sequence[float],
          radius_mm: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape2[0], : shape2[1]]
    return (((yy - centre[0]) * spacing2[0]) ** 2 + ((xx - centre[1]) * spacing2[1]) ** 2
            <= radius_mm**2)


def _background_rois(plane_mask: np.ndarray, spacing2: Sequence[float],
                     centres2: list[tuple[np.ndarray, float]], ring2: np.ndarray, n: int = 12
                     ) -> list[np.ndarray]:
    """Centres (row, col) of ``n`` 37 mm ROIs in the body, ≥ 15 mm from its edge, the
    spheres and the lung insert, spread by farthest-point sampling (NEMA NU 2-2018
    §7.4.1 leaves the exact placement to the analyst)."""
    r37 = BACKGROUND_ROI_DIAMETER_MM / 2.0
    edt = ndimage.distance_transform_edt(plane_mask, sampling=spacing2)
    sp = np.asarray(spacing2)
    pts = np.zeros((0, 2))
    # NEMA's 15 mm margins first; a smaller field of view (or phantom) gets smaller ones.
    for margin in (BACKGROUND_MARGIN_MM, 10.0, 5.0, 0.0, -r37 / 2.0):
        rows, cols = np.nonzero(edt >= margin + r37)
        pts = np.stack([rows, cols], axis=1).astype(np.float64)
        keep = np.ones(len(pts), bool)
        for c, rad in [*centres2, (ring2, LUNG_INSERT_RADIUS_MM)]:
            dist = np.sqrt((((pts - c) * sp) ** 2).sum(axis=1))
            keep &= dist >= rad + max(margin, 5.0) + r37
        pts = pts[keep]
        if len(pts) >= n:
            break
    if len(pts) == 0:
        raise SpheresNotFoundError(
            "no room for background ROIs (37 mm) away from the spheres and the lung insert "
            "in the phantom: the image does not look like the IEC body phantom")
    # Start with the candidate nearest the ring (anterior band), then farthest points.
    d_ring = (((pts - ring2) * sp) ** 2).sum(axis=1)
    chosen = [int(np.argmin(d_ring))]
    mind = (((pts - pts[chosen[0]]) * sp) ** 2).sum(axis=1)
    while len(chosen) < min(n, len(pts)):
        nxt = int(np.argmax(mind))
        if mind[nxt] <= 0:
            break
        chosen.append(nxt)
        mind = np.minimum(mind, (((pts - pts[nxt]) * sp) ** 2).sum(axis=1))
    return [pts[i] for i in chosen]


def _background_level(img: np.ndarray) -> float:
    """The phantom's warm background: the mode of the voxel histogram above 2 % of the
    maximum (the background fills ~ 98 % of the phantom volume), refined by the median of
    the voxels within ±30 % of it."""
    top = float(img.max())
    if not top > 0:
        raise SpheresNotFoundError("no spheres found: the image has no activity")
    vals = img[img > 0.02 * top]
    hist, edges = np.histogram(vals, bins=256)
    mode = 0.5 * (edges[int(np.argmax(hist))] + edges[int(np.argmax(hist)) + 1])
    near = vals[(vals > 0.7 * mode) & (vals < 1.3 * mode)]
    return float(np.median(near)) if near.size else mode


def analyse_iec(
    image: np.ndarray,
    spacing_mm: Sequence[float],
    affine: np.ndarray,
    *,
    sphere_bq_ml: float,
    background_bq_ml: float,
    peak: PeakFunction,
) -> IECResult:
    """Analyse an IEC body-phantom PET image (array axes slice, row, column, in Bq/ml,
    slices transaxial) against the true concentrations at the image's reference time.

    ``peak(image, voi_mask, affine)`` is the SUVpeak of the VOI: the services pass
    :func:`oncohybrid.quant.pet.suv_peak` (1 cm³ sphere, global placement) — ``qc`` and
    ``quant`` are siblings of one layer and do not import each other.

    Raises :class:`SpheresNotFoundError` (exit 2) when the sphere ring is not found.
    """

    if not (sphere_bq_ml > 0):
        raise InputError(f"sphere activity must be positive, got {sphere_bq_ml}")
    if not (background_bq_ml > 0):
        raise InputError(f"background activity must be positive, got {background_bq_ml}")
    if sphere_bq_ml <= background_bq_ml:
        raise InputError(f"sphere activity ({sphere_bq_ml} Bq/ml) must exceed the background "
                         f"activity ({background_bq_ml} Bq/ml)")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or min(img.shape) < 3:
        raise SpheresNotFoundError(f"no spheres found: the image is not a 3-D volume "
                                   f"(shape {img.shape})")
    sp = tuple(float(s) for s in spacing_mm)
    dz = sp[0]
    finite = np.isfinite(img)
    img = np.where(finite, img, 0.0)
    bkg0 = _background_level(img)
    body = img > 0.5 * bkg0
    excess = img - bkg0
    excess[~body] = np.minimum(excess[~body], 0.0)
    resp = {d: _matched(excess, sp, d) for d in SPHERE_DIAMETERS_MM}
    anchor = len(SPHERE_DIAMETERS_MM) - 1  # the 37 mm sphere
    cands = _local_maxima(resp[37.0], sp, 20.0, 8)
    if not cands:
        raise SpheresNotFoundError("no spheres found: no hot region in the image")
    best: tuple[float, list[np.ndarray]] | None = None
    for c in cands:
        ci = np.asarray(c, dtype=np.float64)
        for sign in (1.0, -1.0):
            for ang in range(360):
                pos = _ring_positions(ci, float(ang), sign, sp, anchor)
                score = sum(_sample(resp[d], p) for d, p in zip(SPHERE_DIAMETERS_MM, pos,
                                                                    strict=True))
                if best is None or score > best[0]:
                    best = (score, pos)
    assert best is not None
    positions = [_refine(resp[d], p, sp, 5.0) for d, p in zip(SPHERE_DIAMETERS_MM, best[1],
                                                             strict=True)]
    plane = positions[anchor][0]
    # Ring centre (in the plane of the spheres): mean of the refined centres.
    ring_idx = np.mean(np.array(positions), axis=0)

    # --- background ROIs (NEMA NU 2-2018 §7.4.1) -----------------------------------------
    kplane = int(np.clip(round(plane), 0, img.shape[0] - 1))
    plane_mask = ndimage.binary_fill_holes(img[kplane] > 0.5 * bkg0)
    lab, nlab = ndimage.label(plane_mask)
    if nlab > 1:
        sizes = ndimage.sum(plane_mask, lab, range(1, nlab + 1))
        plane_mask = lab == (int(np.argmax(sizes)) + 1)
    sp2 = (sp[1], sp[2])
    centres2 = [(p[1:], d / 2.0) for d, p in zip(SPHERE_DIAMETERS_MM, positions, strict=True)]
    roi_centres = _background_rois(plane_mask, sp2, centres2, ring_idx[1:])
    slices = sorted({int(np.clip(round(plane + off / dz), 0, img.shape[0] - 1))
                     for off in BACKGROUND_SLICE_OFFSETS_MM})
    roi_means: dict[float, list[float]] = {d: [] for d in SPHERE_DIAMETERS_MM}
    pooled: list[np.ndarray] = []
    lung_ratio: list[float] = []
    shape2 = (img.shape[1], img.shape[2])
    disks = {d: [_disk(shape2, c, sp2, d / 2.0) for c in roi_centres]
             for d in SPHERE_DIAMETERS_MM}
    lung_disk = _disk(shape2, ring_idx[1:], sp2, LUNG_ROI_DIAMETER_MM / 2.0)
    for k in slices:
        sl = img[k]
        for d in SPHERE_DIAMETERS_MM:
            for m in disks[d]:
                roi_means[d].append(float(sl[m].mean()))
        per_slice37 = [float(sl[m].mean()) for m in disks[37.0]]
        pooled.extend(sl[m] for m in disks[37.0])
        cb = float(np.mean(per_slice37))
        if cb > 0:
            lung_ratio.append(float(sl[lung_disk].mean()) / cb * 100.0)
    b_meas = float(np.mean(roi_means[37.0]))
    allvox = np.concatenate(pooled)
    background_cv = float(allvox.std(ddof=1) / allvox.mean()) if allvox.mean() > 0 else math.nan
    noise_sd = float(allvox.std(ddof=1))
    variability = {d: float(np.std(v, ddof=1) / np.mean(v) * 100.0) if len(v) > 1 else math.nan
                   for d, v in roi_means.items()}

    # --- spheres ----------------------------------------------------------------------
    from oncohybrid.segment.grid import VoxelGrid

    grid = VoxelGrid(img.shape, affine)  # type: ignore[arg-type]
    zz, yy, xx = np.indices(img.shape, sparse=True)
    results: list[SphereResult] = []
    for d, p in zip(SPHERE_DIAMETERS_MM, positions, strict=True):
        r = d / 2.0
        dist2 = (((zz - p[0]) * sp[0]) ** 2 + ((yy - p[1]) * sp[1]) ** 2
                 + ((xx - p[2]) * sp[2]) ** 2)
        voi = dist2 <= r * r
        if not voi.any():
            voi = dist2 == dist2.min()
        vmax = float(img[voi].max())
        arg = np.argwhere(voi & (img == vmax))[0]
        thr = b_meas + 0.5 * (vmax - b_meas)
        region = (img >= thr) & (dist2 <= (r + 10.0) ** 2)
        lab, _ = ndimage.label(region)
        a50 = lab == lab[tuple(arg)]
        mean_a50 = float(img[a50].mean())
        peak_value = float(peak(img, voi, affine))
        found = (vmax - b_meas > FOUND_NOISE_SDS * noise_sd
                 and vmax - b_meas > FOUND_MIN_CONTRAST * b_meas)
        results.append(SphereResult(
            diameter_mm=d, centre_lps_mm=tuple(float(v) for v in grid.index_to_lps(p)),  # type: ignore[arg-type]
            max_bq_ml=vmax, mean_a50_bq_ml=mean_a50, peak_bq_ml=peak_value,
            rc_max=vmax / sphere_bq_ml, rc_mean=mean_a50 / sphere_bq_ml,
            rc_peak=peak_value / sphere_bq_ml, a50_voxels=int(a50.sum()),
            background_variability_pct=variability[d], found=bool(found),
        ))
    large = [s for s in results if s.diameter_mm >= 22.0]
    if not all(s.found for s in large):
        missing = ", ".join(f"{s.diameter_mm:g} mm" for s in large if not s.found)
        raise SpheresNotFoundError(
            f"no spheres found: the IEC sphere ring was not found in the image (the "
            f"{missing} sphere(s) are not above the background by {FOUND_NOISE_SDS:g} noise "
            f"SDs and {FOUND_MIN_CONTRAST:.0%}); is this a NEMA/IEC body-phantom series?")
    earl = {std.value: _compliance(std, results) for std in EarlStandard}
    return IECResult(
        spheres=results, sphere_bq_ml=sphere_bq_ml, background_bq_ml=background_bq_ml,
        measured_background_bq_ml=b_meas, background_cv=background_cv,
        lung_residual_pct=float(np.mean(lung_ratio)) if lung_ratio else math.nan,
        ring_centre_lps_mm=tuple(float(v) for v in grid.index_to_lps(ring_idx)),  # type: ignore[arg-type]
        earl=earl,
    )


def _compliance(std: EarlStandard, spheres: list[SphereResult]) -> dict[str, Any]:
    out: dict[str, Any] = {"failures": []}
    ok = True
    for metric, bands in BANDS[std].items():
        for s in spheres:
            band = bands[s.diameter_mm]
            value = getattr(s, metric)
            if not band.contains(value):
                entry = {"metric": metric, "diameter_mm": s.diameter_mm, "value": value,
                         "band": [band.low, band.high]}
                if metric in COMPLIANCE_METRICS:
                    out["failures"].append(entry)
                    ok = False
                else:
                    out.setdefault("advisory", []).append(entry)
    out["compliant"] = ok
    if "rc_peak" in BANDS[std]:
        out["rcpeak_ok"] = not out.get("advisory")
    return out
