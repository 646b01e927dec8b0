"""PET lesion and whole-body metrics: SUVmax, SUVpeak, SUVmean, MTV, TLG, TMTV, Dmax.

Pure functions over an SUV image with explicit geometry (a
:class:`oncohybrid.segment.grid.GridImage` built once by the caller, a
:class:`highdicom.Volume`, or an array plus ``spacing_mm`` / ``affine``; see
:mod:`oncohybrid.segment.grid`). Definitions and
citations are in ``docs/pet-metrics.md``:

- SUVpeak: mean SUV in a 1 cm^3 sphere (radius 6.2035 mm). PERCIST 1.0 (Wahl et al., J Nucl
  Med 2009;50:122S, and O, Lodge, Wahl, Radiology 2016): the hottest sphere whose centre lies
  in the tumour, not necessarily on the max voxel. IBSI (Zwanenburg et al., Radiology 2020,
  features "local intensity peak" VJGA and "global intensity peak" 0F91): local = centred on
  the max voxel (highest peak among ties), global = centred on any ROI voxel.
- Weights: by default the exact fraction of each voxel inside the sphere ("partial
  volume"), so the kernel volume is 1 ml whatever the spacing; IBSI's voxel-centre rule
  (``weights="centre"``) is available for conformance.
- MTV (ml), TLG = SUVmean x MTV (SUV.ml), TMTV/total TLG over the *union* of lesion masks,
  Dmax = largest distance between lesion centroids (Cottereau et al., J Nucl Med 2020),
  SDmax = Dmax (m) / BSA (m^2).

SUVpeak is computed by correlating the lesion's bounding box (padded by the kernel radius)
with the kernel once, then taking the maximum over the allowed centres: the cost is that of
one small convolution per lesion, not one sphere per voxel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.errors import GeometryError, InputError
from oncohybrid.segment.grid import GridImage, VoxelGrid, check_same_grid, image_grid

#: Radius (mm) of a sphere of exactly 1 cm^3: (3000 / (4 pi))^(1/3) = 6.2035 mm.
SUV_PEAK_RADIUS_MM: float = (3000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


class PeakMode(StrEnum):
    """Where the SUVpeak sphere may be centred."""

    #: PERCIST 1.0: hottest 1 cm^3 sphere anywhere in the tumour (centre on any lesion voxel).
    PERCIST = "percist"
    #: IBSI global intensity peak (0F91): same placement rule as PERCIST.
    GLOBAL = "global"
    #: IBSI local intensity peak (VJGA): centred on the max voxel; among tied maxima the
    #: highest sphere mean.
    LOCAL = "local"


class PeakWeights(StrEnum):
    """How voxels contribute to the sphere mean."""

    #: Exact fraction of each voxel's box inside the sphere (kernel volume = 1 ml).
    PARTIAL_VOLUME = "partial_volume"
    #: IBSI rule: voxels whose centre lies within the radius count fully, others not at all.
    CENTRE = "centre"


class PeakConstraint(StrEnum):
    """Which centres are allowed, beyond the placement rule of :class:`PeakMode`."""

    #: Centre on a lesion voxel; the sphere may include voxels outside the lesion (PERCIST).
    CENTRE_IN_MASK = "centre_in_mask"
    #: The whole kernel footprint inside the lesion (Slicer PET-IndiC "interior only");
    #: NaN if no such centre exists (lesions smaller than the sphere).
    SPHERE_IN_MASK = "sphere_in_mask"


# ---------------------------------------------------------------------------------------
# Sphere kernel with exact partial-volume weights
# ---------------------------------------------------------------------------------------

# Gauss-Legendre nodes on [0, 1] for the outer 1-D integral (see _ball_box_volume).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_GL_X = (_GL_X + 1.0) / 2.0
_GL_W = _GL_W / 2.0
# Smoothstep substitution x = p + (q - p) (3t^2 - 2t^3): it removes the square-root
# behaviour of the integrand at the piece ends, so Gauss-Legendre converges fast.
_SUB_X = 3.0 * _GL_X**2 - 2.0 * _GL_X**3
_SUB_W = _GL_W * 6.0 * _GL_X * (1.0 - _GL_X)


def _quadrant_area(a: np.ndarray, b: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Signed area of the disk of radius ``rho`` (centre 0) within [0, a] x [0, b]."""
    sa, sb = np.sign(a), np.sign(b)
    a = np.minimum(np.abs(a), rho)
    b = np.minimum(np.abs(b), rho)
    r2 = rho * rho
    ystar = np.sqrt(np.maximum(r2 - b * b, 0.0))
    ya = np.minimum(a, ystar)

    def prim(t: np.ndarray) -> np.ndarray:
        # integral_0^t sqrt(rho^2 - s^2) ds
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(rho > 0, t / np.where(rho > 0, rho, 1.0), 0.0)
        return 0.5 * (
            t * np.sqrt(np.maximum(r2 - t * t, 0.0)) + r2 * np.arcsin(np.clip(ratio, -1, 1))
        )

    area = b * ya + np.where(a > ystar, prim(a) - prim(ya), 0.0)
    return sa * sb * area


def _disk_rect_area(rho: np.ndarray, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """Area of the disk of radius ``rho`` (centre 0) inside [y0, y1] x [z0, z1]."""
    return (
        _quadrant_area(np.full_like(rho, y1), np.full_like(rho, z1), rho)
        - _quadrant_area(np.full_like(rho, y0), np.full_like(rho, z1), rho)
        - _quadrant_area(np.full_like(rho, y1), np.full_like(rho, z0), rho)
        + _quadrant_area(np.full_like(rho, y0), np.full_like(rho, z0), rho)
    )


def _ball_box_volume(r: float, box: Sequence[tuple[float, float]]) -> float:
    """Volume of the ball of radius ``r`` (centre 0) inside an axis-aligned box.

    Hand-written because no library computes sphere-box intersections: the inner 2-D
    integral (disk x rectangle) is analytic; the outer integral along the first axis is
    split where the disk radius crosses a distance to an edge or corner of the rectangle
    (the only points where the integrand is not smooth) and each piece is integrated with
    24-point Gauss-Legendre after a smoothstep substitution. Kernel sums reproduce
    4/3 pi r^3 to better than 1e-10 relative (tests/quant/test_quant_pet_peak.py).
    """
    (x0, x1), (y0, y1), (z0, z1) = box
    lo, hi = max(x0, -r), min(x1, r)
    # Nearest point of the box to the centre: no overlap if it lies beyond the radius.
    near = [0.0 if a <= 0.0 <= b else min(abs(a), abs(b)) for a, b in box]
    if hi <= lo or math.hypot(*near) >= r:
        return 0.0
    dists = {abs(y0), abs(y1), abs(z0), abs(z1)}
    dists |= {math.hypot(y, z) for y in (y0, y1) for z in (z0, z1)}
    cuts = {lo, hi}
    for d in dists:
        if d < r:
            xb = math.sqrt(r * r - d * d)
            for x in (-xb, xb):
                if lo < x < hi:
                    cuts.add(x)
    edges = sorted(cuts)
    total = 0.0
    for p, q in zip(edges[:-1], edges[1:], strict=True):
        xs = p + (q - p) * _SUB_X
        rho = np.sqrt(np.maximum(r * r - xs * xs, 0.0))
        total += (q - p) * float(np.dot(_SUB_W, _disk_rect_area(rho, y0, y1, z0, z1)))
    return min(max(total, 0.0), (x1 - x0) * (y1 - y0) * (z1 - z0))


@lru_cache(maxsize=64)
def _kernel_cached(
    spacing: tuple[float, float, float], radius_mm: float, weights: str
) -> np.ndarray:
    half = [int(math.ceil(radius_mm / s + 0.5)) - 1 for s in spacing]
    if weights == PeakWeights.CENTRE:
        grids = np.meshgrid(
            *[np.arange(-h, h + 1) * s for h, s in zip(half, spacing, strict=True)], indexing="ij"
        )
        k = (sum(g * g for g in grids) <= radius_mm * radius_mm).astype(np.float64)
    else:
        octant = np.zeros([h + 1 for h in half])
        for idx in np.ndindex(*octant.shape):
            box = [((i - 0.5) * s, (i + 0.5) * s) for i, s in zip(idx, spacing, strict=True)]
            octant[idx] = _ball_box_volume(radius_mm, box)
        # Mirror the octant: the ball is symmetric about each axis through its centre.
        k = octant
        for axis in range(3):
            k = np.concatenate(
                [
                    np.flip(k, axis=axis)[
                        tuple(slice(None) if a != axis else slice(0, -1) for a in range(3))
                    ],
                    k,
                ],
                axis=axis,
            )
        k = k / float(np.prod(spacing))  # fraction of each voxel inside the ball
    k.setflags(write=False)
    return k


def sphere_kernel(
    spacing_mm: Sequence[float],
    radius_mm: float = SUV_PEAK_RADIUS_MM,
    weights: PeakWeights | str = PeakWeights.PARTIAL_VOLUME,
) -> np.ndarray:
    """Sphere weights on a voxel grid, centred on the middle voxel (unnormalised).

    ``partial_volume``: fraction (0..1) of each voxel inside the sphere, exact to ~1e-12
    (analytic in two dimensions, Gauss-Legendre in the third); ``centre``: 1 where the voxel
    centre lies within ``radius_mm``. Cached per spacing.

    >>> k = sphere_kernel((4.0, 4.0, 4.0))
    >>> round(float(k.sum()) * 64 / 1000, 6)  # kernel volume in ml
    1.0
    """
    w = PeakWeights(weights)
    sp = tuple(round(float(s), 9) for s in spacing_mm)
    if len(sp) != 3 or min(sp) <= 0:
        raise InputError(f"spacing_mm must be three positive numbers, got {spacing_mm}")
    if radius_mm <= 0:
        raise InputError(f"radius_mm must be positive, got {radius_mm}")
    return _kernel_cached(sp, float(radius_mm), w.value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# SUVpeak
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SUVPeak:
    """SUVpeak of one VOI with its placement and definition."""

    value: float
    centre_index: tuple[int, int, int] | None
    centre_lps_mm: tuple[float, float, float] | None
    mode: str
    weights: str
    constrain: str
    radius_mm: float
    kernel_volume_ml: float

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["value"] = None if not math.isfinite(self.value) else self.value
        return d


def _check_orthogonal(grid: VoxelGrid) -> None:
    m = grid.affine[:3, :3] / np.asarray(grid.spacing_mm)
    if not np.allclose(m.T @ m, np.eye(3), atol=1e-4):
        raise GeometryError(
            "SUVpeak needs an orthogonal voxel grid (sheared/gantry-tilted grids must be "
            "resampled first)"
        )


def _correlate_box(padded: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Valid' correlation of a padded box with a symmetric kernel (float64)."""
    out_shape = tuple(p - k + 1 for p, k in zip(padded.shape, kernel.shape, strict=True))
    n_out = int(np.prod(out_shape))
    if n_out * np.count_nonzero(kernel) > 4_000_000:
        # Large lesion: FFT in float64 leaves ~1e-15 relative noise only. Imported here:
        # scipy.signal costs ~0.5 s per process and only large lesions need it (#11).
        from scipy.signal import fftconvolve

        return fftconvolve(padded, kernel[::-1, ::-1, ::-1], mode="valid")
    full = ndimage.correlate(padded, kernel, mode="constant", cval=0.0)
    h = [k // 2 for k in kernel.shape]
    return full[h[0] : h[0] + out_shape[0], h[1] : h[1] + out_shape[1], h[2] : h[2] + out_shape[2]]


def _peak_in_box(
    suv: np.ndarray,
    box: tuple[slice, slice, slice],
    lesion: np.ndarray,
    kernel: np.ndarray,
    mode: PeakMode,
    constrain: PeakConstraint,
) -> tuple[float, tuple[int, int, int] | None]:
    """SUVpeak of the lesion voxels ``lesion`` (boolean, shape of ``box``) in ``suv``."""
    shape = suv.shape
    h = [k // 2 for k in kernel.shape]
    lo = [b.start for b in box]
    hi = [b.stop for b in box]
    # Padded box clipped to the image; voxels outside the image count as missing, and the
    # sphere mean is taken over the part of the sphere inside the field of view.
    plo = [max(0, lo[a] - h[a]) for a in range(3)]
    phi = [min(shape[a], hi[a] + h[a]) for a in range(3)]
    pad = [(plo[a] - (lo[a] - h[a]), (hi[a] + h[a]) - phi[a]) for a in range(3)]
    clipped = any(p != (0, 0) for p in pad)
    sub = suv[plo[0] : phi[0], plo[1] : phi[1], plo[2] : phi[2]].astype(np.float64)
    if clipped:
        sub = np.pad(sub, pad)
    ksum = float(kernel.sum())

    def fov_norm(points: np.ndarray) -> np.ndarray:
        if not clipped:
            return np.full(len(points), ksum)
        ind = np.pad(np.ones([phi[a] - plo[a] for a in range(3)]), pad)
        return np.array([_sphere_dot(ind, p, kernel) for p in points])

    if mode is PeakMode.LOCAL:
        vals = np.where(lesion, suv[box], -np.inf)
        vmax = vals.max()
        if not np.isfinite(vmax):
            return math.nan, None
        cands = np.argwhere(vals == vmax)
        sums = np.array([_sphere_dot(sub, p, kernel) for p in cands])
        peaks = sums / fov_norm(cands)
        if constrain is PeakConstraint.SPHERE_IN_MASK:
            ok = _interior(lesion, kernel)[tuple(cands.T)]
            if not ok.any():
                return math.nan, None
            peaks = np.where(ok, peaks, -np.inf)
        best = int(np.argmax(peaks))
        return float(peaks[best]), tuple(int(c + o) for c, o in zip(cands[best], lo, strict=True))

    allowed = lesion if constrain is PeakConstraint.CENTRE_IN_MASK else _interior(lesion, kernel)
    if not allowed.any():
        return math.nan, None
    conv = _correlate_box(sub, kernel)
    if clipped:
        ind = np.pad(np.ones([phi[a] - plo[a] for a in range(3)]), pad)
        conv = conv / np.maximum(_correlate_box(ind, kernel), 1e-300)
    else:
        conv = conv / ksum
    vals = np.where(allowed, conv, -np.inf)
    flat = int(np.argmax(vals))  # first maximum in C order: deterministic tie-break
    idx = np.unravel_index(flat, vals.shape)
    return float(vals[idx]), tuple(int(i + o) for i, o in zip(idx, lo, strict=True))


def _sphere_dot(padded: np.ndarray, point: np.ndarray, kernel: np.ndarray) -> float:
    """Weighted sum of the sphere centred on box voxel ``point`` (padded coordinates)."""
    k0, k1, k2 = kernel.shape
    p0, p1, p2 = (int(x) for x in point)
    return float(np.sum(padded[p0 : p0 + k0, p1 : p1 + k1, p2 : p2 + k2] * kernel))


def _interior(lesion: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Lesion voxels where the whole kernel footprint lies inside the lesion."""
    return ndimage.binary_erosion(lesion, structure=kernel > 0, border_value=0)


def suv_peak(
    image: Any,
    mask: np.ndarray,
    *,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
    mode: PeakMode | str = PeakMode.PERCIST,
    weights: PeakWeights | str = PeakWeights.PARTIAL_VOLUME,
    constrain: PeakConstraint | str = PeakConstraint.CENTRE_IN_MASK,
    radius_mm: float = SUV_PEAK_RADIUS_MM,
) -> SUVPeak:
    """SUVpeak of the VOI ``mask``: mean of a 1 cm^3 sphere at the best allowed centre.

    PERCIST 1.0 (Wahl 2009): the sphere may include voxels outside the VOI, its centre must
    lie in the VOI and need not be the max voxel. Voxels outside the image are excluded
    from the mean (normalised by the in-field kernel weight).

    >>> img = np.zeros((20, 20, 20), np.float32); img[5:15, 5:15, 5:15] = 3.0
    >>> p = suv_peak(img, img > 0, spacing_mm=(2.0, 2.0, 2.0))
    >>> round(p.value, 6), p.kernel_volume_ml > 0.999
    (3.0, True)
    """
    arr, grid = image_grid(image, spacing_mm, affine)
    mask = np.asarray(mask, dtype=bool)
    check_same_grid("mask", mask, grid)
    _check_orthogonal(grid)
    m, w, c = PeakMode(mode), PeakWeights(weights), PeakConstraint(constrain)
    kernel = sphere_kernel(grid.spacing_mm, radius_mm, w)
    objs = ndimage.find_objects(mask.astype(np.uint8))
    if not objs or objs[0] is None:
        raise InputError("SUVpeak: the VOI mask is empty")
    box = objs[0]
    value, centre = _peak_in_box(arr, box, mask[box], kernel, m, c)
    return _make_peak(value, centre, grid, m, w, c, radius_mm, kernel)


def _make_peak(
    value: float,
    centre: tuple[int, int, int] | None,
    grid: VoxelGrid,
    m: PeakMode,
    w: PeakWeights,
    c: PeakConstraint,
    radius_mm: float,
    kernel: np.ndarray,
) -> SUVPeak:
    lps = None if centre is None else tuple(float(v) for v in grid.index_to_lps(centre))
    return SUVPeak(
        value=value,
        centre_index=centre,
        centre_lps_mm=lps,  # type: ignore[arg-type]
        mode=m.value,
        weights=w.value,
        constrain=c.value,
        radius_mm=float(radius_mm),
        kernel_volume_ml=float(kernel.sum()) * grid.voxel_volume_ml,
    )


# ---------------------------------------------------------------------------------------
# Per-lesion metrics
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LesionMetrics:
    """Metrics of one lesion (label) of a lesion label volume.

    SUL values are given when the SUL/SUV ratio (LBM / body weight) is known.
    """

    lesion_id: int
    n_voxels: int
    suv_max: float
    suv_max_index: tuple[int, int, int]
    suv_max_lps_mm: tuple[float, float, float]
    suv_mean: float
    suv_sd: float
    suv_peak: SUVPeak
    mtv_ml: float
    tlg_suv_ml: float
    centroid_lps_mm: tuple[float, float, float]
    extent_min_lps_mm: tuple[float, float, float]
    extent_max_lps_mm: tuple[float, float, float]
    sul_per_suv: float | None = None
    sul_max: float | None = None
    sul_peak: float | None = None
    sul_mean: float | None = None
    tlg_sul_ml: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["suv_peak"] = self.suv_peak.to_json()
        if self.sul_peak is not None and not math.isfinite(self.sul_peak):
            d["sul_peak"] = None
        return d


def lesion_metrics(
    image: Any,
    labels: np.ndarray,
    *,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
    peak_mode: PeakMode | str = PeakMode.PERCIST,
    peak_weights: PeakWeights | str = PeakWeights.PARTIAL_VOLUME,
    peak_constrain: PeakConstraint | str = PeakConstraint.CENTRE_IN_MASK,
    sul_per_suv: float | None = None,
    boxes: Sequence[tuple[slice, ...] | None] | None = None,
) -> list[LesionMetrics]:
    """Metrics of every lesion of an integer label volume (0 = background), by label id.

    Works on each lesion's bounding box (``scipy.ndimage.find_objects``, or ``boxes`` from
    :class:`oncohybrid.segment.threshold.LesionSegmentation`), so the cost grows with the
    lesion volume, not the image volume.

    >>> img = np.ones((10, 10, 10), np.float32); lab = np.zeros(img.shape, np.int32)
    >>> lab[2:5, 2:5, 2:5] = 1
    >>> m = lesion_metrics(img, lab, spacing_mm=(2.0, 2.0, 2.0))[0]
    >>> m.n_voxels, round(m.mtv_ml, 3), m.suv_max
    (27, 0.216, 1.0)
    """
    arr, grid = image_grid(image, spacing_mm, affine)
    labels = np.asarray(labels)
    check_same_grid("labels", labels, grid)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be an integer label volume, got dtype {labels.dtype}")
    if sul_per_suv is not None and not sul_per_suv > 0:
        raise InputError(f"sul_per_suv must be positive, got {sul_per_suv}")
    _check_orthogonal(grid)
    m, w, c = PeakMode(peak_mode), PeakWeights(peak_weights), PeakConstraint(peak_constrain)
    kernel = sphere_kernel(grid.spacing_mm, SUV_PEAK_RADIUS_MM, w)
    vox_ml = grid.voxel_volume_ml
    out: list[LesionMetrics] = []
    if boxes is None:
        boxes = ndimage.find_objects(labels)
    for i, box in enumerate(boxes):
        if box is None:
            continue
        lid = i + 1
        les = labels[box] == lid
        vals = arr[box][les].astype(np.float64)
        n = int(vals.size)
        if n == 0:
            continue
        idx = np.argwhere(les)  # C order: deterministic first max
        imax = int(np.argmax(vals))
        off = np.array([b.start for b in box])
        max_index = tuple(int(v) for v in idx[imax] + off)
        lps = grid.index_to_lps(idx + off)
        mean = float(vals.mean())
        mtv = n * vox_ml
        value, centre = _peak_in_box(arr, box, les, kernel, m, c)
        peak = _make_peak(value, centre, grid, m, w, c, SUV_PEAK_RADIUS_MM, kernel)
        f = sul_per_suv
        out.append(
            LesionMetrics(
                lesion_id=lid,
                n_voxels=n,
                suv_max=float(vals[imax]),
                suv_max_index=max_index,  # type: ignore[arg-type]
                suv_max_lps_mm=tuple(float(v) for v in grid.index_to_lps(max_index)),  # type: ignore[arg-type]
                suv_mean=mean,
                suv_sd=float(vals.std(ddof=1)) if n > 1 else 0.0,
                suv_peak=peak,
                mtv_ml=mtv,
                tlg_suv_ml=mean * mtv,
                centroid_lps_mm=tuple(float(v) for v in lps.mean(axis=0)),  # type: ignore[arg-type]
                extent_min_lps_mm=tuple(float(v) for v in lps.min(axis=0)),  # type: ignore[arg-type]
                extent_max_lps_mm=tuple(float(v) for v in lps.max(axis=0)),  # type: ignore[arg-type]
                sul_per_suv=f,
                sul_max=None if f is None else float(vals[imax]) * f,
                sul_peak=None if f is None else value * f,
                sul_mean=None if f is None else mean * f,
                tlg_sul_ml=None if f is None else mean * mtv * f,
            )
        )
    return out


# ---------------------------------------------------------------------------------------
# Whole-body metrics
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WholeBodyMetrics:
    """Whole-body tumour burden and dissemination."""

    lesion_count: int
    tmtv_ml: float
    total_tlg_suv_ml: float
    dmax_mm: float | None
    dmax_lesion_ids: tuple[int, int] | None
    sdmax_per_m: float | None
    bsa_m2: float | None
    lesion_centroids_lps_mm: dict[int, tuple[float, float, float]] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lesion_centroids_lps_mm"] = {
            str(k): list(v) for k, v in d["lesion_centroids_lps_mm"].items()
        }
        return d


def dmax(centroids_lps_mm: np.ndarray) -> tuple[float | None, tuple[int, int] | None]:
    """Largest Euclidean distance (mm) between centroids and the (row) indices of the pair.

    >>> dmax(np.array([[0, 0, 0], [3, 4, 0], [1, 1, 1]]))
    (5.0, (0, 1))
    """
    c = np.asarray(centroids_lps_mm, dtype=np.float64)
    if len(c) < 2:
        return None, None
    from scipy.spatial.distance import pdist, squareform  # lazy (#11: import time)

    d = squareform(pdist(c))
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    return float(d[i, j]), (int(min(i, j)), int(max(i, j)))


def whole_body_metrics(
    image: Any,
    lesions: np.ndarray | Sequence[np.ndarray],
    *,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
    bsa_m2: float | None = None,
    metrics: Sequence[LesionMetrics] | None = None,
) -> WholeBodyMetrics:
    """Lesion count, TMTV, total TLG, Dmax and SDmax.

    ``lesions`` is an integer label volume (disjoint lesions) or a sequence of boolean
    lesion masks that may overlap (e.g. separate 41% VOIs); TMTV and total TLG are computed
    over the union, so a voxel in two lesions counts once. Dmax uses each lesion's own
    centroid. SDmax = Dmax (m) / BSA (m^2), in m^-1 (Cottereau et al. 2020). Pass the
    per-lesion ``metrics`` of a label volume to avoid recomputing them.
    """
    arr, grid = image_grid(image, spacing_mm, affine)
    if bsa_m2 is not None and not bsa_m2 > 0:
        raise InputError(f"bsa_m2 must be positive, got {bsa_m2}")
    vox_ml = grid.voxel_volume_ml
    if isinstance(lesions, np.ndarray) and np.issubdtype(lesions.dtype, np.integer):
        check_same_grid("labels", lesions, grid)
        if metrics is None:
            metrics = lesion_metrics(GridImage(arr, grid), lesions)  # no second conversion
        # Labels are disjoint: sums over lesions equal sums over the union.
        centroids = {m.lesion_id: m.centroid_lps_mm for m in metrics}
        tmtv = float(sum(m.n_voxels for m in metrics)) * vox_ml
        tlg = float(sum(m.suv_mean * m.n_voxels for m in metrics)) * vox_ml
    else:
        masks = [np.asarray(m, dtype=bool) for m in lesions]
        union = np.zeros(grid.shape, dtype=bool)
        centroids = {}
        for k, msk in enumerate(masks, start=1):
            check_same_grid(f"lesion mask {k}", msk, grid)
            if not msk.any():
                continue
            union |= msk
            centroids[k] = tuple(float(v) for v in grid.index_to_lps(np.argwhere(msk).mean(axis=0)))
        tmtv = float(np.count_nonzero(union)) * vox_ml
        tlg = float(arr[union].astype(np.float64).sum()) * vox_ml
    ids = sorted(centroids)
    dist, pair = dmax(np.array([centroids[i] for i in ids]).reshape(-1, 3))
    sd = None if (dist is None or bsa_m2 is None) else (dist / 1000.0) / bsa_m2
    return WholeBodyMetrics(
        lesion_count=len(ids),
        tmtv_ml=tmtv,
        total_tlg_suv_ml=tlg,
        dmax_mm=dist,
        dmax_lesion_ids=None if pair is None else (ids[pair[0]], ids[pair[1]]),
        sdmax_per_m=sd,
        bsa_m2=bsa_m2,
        lesion_centroids_lps_mm=centroids,  # type: ignore[arg-type]
    )
