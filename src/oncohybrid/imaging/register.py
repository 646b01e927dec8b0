"""Align a follow-up CT to the baseline CT (rigid, then affine) with SimpleITK.

The registration maps the follow-up scan's physical space onto the baseline's so that
lesions can be matched across timepoints (``oncohybrid.tracking``). Method
(docs/tracking.md):

1. Both CTs are block-averaged by whole factors (``sitk.BinShrink``), smoothed
   (Gaussian, σ = half the working resolution minus half the voxel) and resampled to an
   isotropic working grid of ``resolution_mm`` (default 5 mm) in their own orientation;
   HU are clipped to [−1000, 1500] so metal and contrast do not dominate.
2. A pyramid per working image, built once for both stages: block averages by 2 and
   by 4 (``sitk.BinShrink``; the box is the anti-aliasing filter). ITK's own
   multi-resolution would smooth and shrink the whole grid again for each level of each
   stage, which cost more than the optimisation itself.
3. Initialisation: two ``sitk.CenteredTransformInitializer`` candidates, by image
   geometry (box centres) and by the moments of the two body masks (HU > −500); the
   one with the better metric (probed on the 2× level) starts the optimisation.
   The moments candidate is what recovers repositioning shifts of several centimetres.
4. Rigid stage: ``sitk.Euler3DTransform``, Mattes mutual information (32 bins, 5,000
   random samples per level drawn inside the baseline's body mask, fixed seed →
   deterministic; gradients at the samples, not gradient images of the grids),
   regular-step gradient descent with scales from the physical shift, three levels
   (shrink 4/2/1 of the working grid, at most 150/100/40 iterations; each level stops
   on its minimum step after ~10–20).
5. Affine stage (optional): ``sitk.AffineTransform`` started from the rigid result,
   two levels (shrink 2/1, at most 80/30 iterations). The rigid result is kept, and
   ``notes`` say why, if the affine part scales or shears by more than 15 %
   (repositioning does not change the patient's size) or if its metric, judged on
   every voxel of the 2× level, is worse than the rigid one.

Speed and accuracy (docs/tracking.md): at clinical size (256² × 281 CT) a pair costs
about 1 s of CPU instead of 4 s, and phantom lesion centres come back within 0.3 mm
(small phantom moved by known rotations and shifts) and 2.3 mm (clinical phantom).

Conventions. ITK's registration transform maps *fixed* (baseline) points to *moving*
(follow-up) points — the direction resampling needs. ``Registration.matrix_lps`` is
the inverse: a 4×4 matrix taking follow-up LPS mm to baseline LPS mm, which is what
``map_points`` applies to lesion centroids. PET and CT of one timepoint share the
Frame of Reference (0020,0052) *Frame of Reference UID* (PS3.3 C.7.4.1), so the
transform found on CT applies to the PET of that visit unchanged; ``resample_to_baseline``
checks that UID when both volumes carry it.

Example
-------
>>> reg = register_ct(baseline_ct, followup_ct)            # doctest: +SKIP
>>> reg.map_points([[10.0, -20.0, 300.0]])                 # doctest: +SKIP
>>> mask_in_baseline = resample_to_baseline(reg, pet_mask, baseline_ct)  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from oncohybrid.errors import GeometryError, InputError
from oncohybrid.imaging.resample import from_sitk, to_sitk

__all__ = ["Registration", "map_points", "register_ct", "resample_to_baseline"]

_HU_MIN, _HU_MAX = -1000.0, 1500.0
#: Random samples per level (inside the fixed body mask): ~5 per joint-histogram bin
#: of 32 × 32 is enough for Mattes MI; the cost of an iteration scales with it.
_SAMPLES_PER_LEVEL = 5000
#: (shrink factor of the working grid, iterations) per level, coarse to fine. The
#: optimiser stops on its minimum step after ~10-20 iterations per level; the caps only
#: bound a level that does not converge (fewer at the full working resolution).
_RIGID_SCHEDULE = ((4, 150), (2, 100), (1, 40))
_AFFINE_SCHEDULE = ((2, 80), (1, 30))
_MAX_SAMPLE_FRACTION = 0.5
_BODY_HU = -500.0
#: Largest tolerated deviation of the affine's singular values from 1.
_MAX_AFFINE_SCALE_DEVIATION = 0.15


@dataclass(frozen=True)
class Registration:
    """Result of ``register_ct``.

    ``matrix_lps``: 4×4, follow-up LPS mm → baseline LPS mm.
    ``transform``: the SimpleITK transform in ITK's convention (baseline point →
    follow-up point), ready for ``sitk.Resample`` onto a baseline grid.
    ``metric_value``: final Mattes MI (more negative is better).
    """

    matrix_lps: np.ndarray
    transform: sitk.Transform
    metric_value: float
    stages: tuple[str, ...]
    initialiser: str
    elapsed_s: float
    baseline_frame_of_reference_uid: str | None = None
    followup_frame_of_reference_uid: str | None = None
    notes: list[str] = field(default_factory=list)

    def map_points(self, points_lps_mm: Any) -> np.ndarray:
        """Map follow-up LPS points (n, 3) into baseline LPS mm."""
        return map_points(self, points_lps_mm)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: the follow-up → baseline matrix and how it was obtained."""
        return {
            "matrix_lps": np.round(self.matrix_lps, 6).tolist(),
            "direction": "followup_lps_to_baseline_lps",
            "stages": list(self.stages),
            "initialiser": self.initialiser,
            "metric_value": round(self.metric_value, 6),
            "rotation_deg": round(self.rotation_deg, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "baseline_frame_of_reference_uid": self.baseline_frame_of_reference_uid,
            "followup_frame_of_reference_uid": self.followup_frame_of_reference_uid,
            "notes": list(self.notes),
        }

    @property
    def translation_mm(self) -> np.ndarray:
        """Where the follow-up origin lands in baseline space (the matrix's shift)."""
        return self.matrix_lps[:3, 3].copy()

    @property
    def rotation_deg(self) -> float:
        """Total rotation angle of the linear part (polar decomposition), degrees."""
        u, _, vt = np.linalg.svd(self.matrix_lps[:3, :3])
        r = u @ vt
        return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))))


def _as_sitk(volume: Any) -> sitk.Image:
    """A ``highdicom.Volume`` → ``sitk.Image`` (``imaging.resample.to_sitk``); images pass."""
    if isinstance(volume, sitk.Image):
        return volume
    if not (hasattr(volume, "affine") and hasattr(volume, "array")):
        raise InputError(f"expected a highdicom.Volume or SimpleITK image, got {type(volume)!r}")
    return to_sitk(volume)


def _grid_image(affine: np.ndarray, shape: tuple[int, ...]) -> sitk.Image:
    """An empty ``sitk.Image`` with the grid of a (slice,row,col) → LPS affine."""
    cols = np.asarray(affine, float)[:3, [2, 1, 0]]  # sitk x, y, z = column, row, slice
    spacing = np.linalg.norm(cols, axis=0)
    if np.any(spacing <= 0):
        raise GeometryError("reference affine: zero spacing")
    img = sitk.Image([int(shape[2]), int(shape[1]), int(shape[0])], sitk.sitkUInt8)
    img.SetSpacing([float(v) for v in spacing])
    img.SetDirection([float(v) for v in (cols / spacing).ravel()])
    img.SetOrigin([float(v) for v in np.asarray(affine, float)[:3, 3]])
    return img


def _for_uid(volume: Any) -> str | None:
    uid = getattr(volume, "frame_of_reference_uid", None)
    return None if uid is None else str(uid)


def _shrunk_in_numpy(volume: Any, resolution_mm: float) -> sitk.Image | None:
    """Clamp + ``BinShrink`` of a float32 ``Volume`` computed in numpy, voxel for voxel
    what ITK computes, without copying the full CT into SimpleITK (``None``: not
    applicable, use ITK).

    Exact: for float32 voxels ITK's Clamp is min/max (NaN passes), as ``np.clip``.
    BinShrink sums each bin in double in a fixed order (x fastest, then y, then z;
    itkBinShrinkImageFilter.hxx: first value converted, then ``+=``), multiplies by
    ``1.0 / n`` and converts to float: the same IEEE operations in the same order here.
    The output grid (origin, spacing) is ITK's own, from a BinShrink of a one-bin image
    with the same geometry (it does not depend on the size).
    """
    arr = getattr(volume, "array", None)
    if isinstance(volume, sitk.Image) or arr is None or arr.dtype != np.float32 \
            or arr.ndim != 3:
        return None
    sz, sy, sx = volume.spacing
    spacing = (float(sx), float(sy), float(sz))  # as imaging.resample.to_sitk
    fx, fy, fz = (max(1, int(resolution_mm // s)) for s in spacing)
    nz, ny, nx = arr.shape[0] // fz, arr.shape[1] // fy, arr.shape[2] // fx
    if max(fx, fy, fz) == 1 or min(nz, ny, nx) < 1:
        return None
    bins = arr[: nz * fz, : ny * fy, : nx * fx].reshape(nz, fz, ny, fy, nx, fx)
    acc = np.empty((nz, ny, nx), np.float64)
    first = True
    for dz in range(fz):
        for dy in range(fy):
            rows = np.clip(bins[:, dz, :, dy], _HU_MIN, _HU_MAX)  # whole rows: faster
            for dx in range(fx):
                if first:
                    acc[...] = rows[..., dx]
                    first = False
                else:
                    acc += rows[..., dx]
    acc *= 1.0 / float(fx * fy * fz)
    out = sitk.GetImageFromArray(acc.astype(np.float32))
    one_bin = sitk.Image([fx, fy, fz], sitk.sitkFloat32)
    one_bin.SetSpacing(spacing)
    one_bin.SetOrigin(tuple(float(v) for v in volume.position))
    one_bin.SetDirection(tuple(float(v) for v in volume.direction[:, ::-1].ravel()))
    grid = sitk.BinShrink(one_bin, [fx, fy, fz])
    out.SetOrigin(grid.GetOrigin())
    out.SetSpacing(grid.GetSpacing())
    out.SetDirection(grid.GetDirection())
    return out


def _working_image_of(volume: Any, resolution_mm: float) -> sitk.Image:
    """``_working_image`` of a ``Volume`` (or ``sitk.Image``); float32 volumes are
    clamped and shrunk in numpy (``_shrunk_in_numpy``, the same voxels)."""
    shrunk = _shrunk_in_numpy(volume, resolution_mm)
    if shrunk is None:
        return _working_image(_as_sitk(volume), resolution_mm)
    return _smoothed(shrunk, resolution_mm)


def _working_image(img: sitk.Image, resolution_mm: float) -> sitk.Image:
    """Clip, shrink, smooth and resample to an isotropic grid of ``resolution_mm``."""
    # Clamp casts to its output type itself: ITK compares double(v) with the bounds and
    # returns the bound or static_cast<float>(v), the same voxels as Cast then Clamp
    # (rounding is monotone and the bounds are floats), without a full-grid copy.
    img = sitk.Clamp(img, sitk.sitkFloat32, _HU_MIN, _HU_MAX)
    # Block-average by whole factors first (cheap, and an anti-aliasing filter itself),
    # so the Gaussian below runs on a grid already close to the working resolution.
    factors = [max(1, int(resolution_mm // s)) for s in img.GetSpacing()]
    if max(factors) > 1:
        img = sitk.BinShrink(img, factors)
    return _smoothed(img, resolution_mm)


def _smoothed(img: sitk.Image, resolution_mm: float) -> sitk.Image:
    """The Gaussian and the resampling of ``_working_image`` (after the shrink)."""
    # Remaining anti-aliasing (sigma per axis, physical units); the recursive filter
    # needs sigma > 0, so axes already coarse get a mild 0.2-voxel floor.
    sigma = [max(0.2 * s, 0.5 * resolution_mm - 0.5 * s) for s in img.GetSpacing()]
    img = sitk.SmoothingRecursiveGaussian(img, sigma)
    size = img.GetSize()
    spacing = img.GetSpacing()
    new_size = [
        max(1, int(round(n * s / resolution_mm))) for n, s in zip(size, spacing, strict=True)
    ]
    # Keep the physical extent: the first and last voxel centres stay where they were.
    new_spacing = [
        (n - 1) * s / max(1, m - 1) if m > 1 else s
        for n, s, m in zip(size, spacing, new_size, strict=True)
    ]
    return sitk.Resample(
        img, new_size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), new_spacing,
        img.GetDirection(), _HU_MIN, sitk.sitkFloat32,
    )


@dataclass(frozen=True)
class _Fixed:
    """The baseline's side of a registration: working image, its pyramid, body masks."""

    image: sitk.Image
    pyramid: dict[int, sitk.Image]
    masks: dict[int, sitk.Image]

    def copy(self) -> _Fixed:
        """Own pixel buffers (the working grid is small): ITK filters write pipeline
        state into their input images, so threads must not share them."""
        def own(img: sitk.Image) -> sitk.Image:
            out = sitk.Image(img)
            out.MakeUnique()
            return out

        pyr = {f: own(im) for f, im in self.pyramid.items()}
        return _Fixed(pyr[1], pyr, {f: own(m) for f, m in self.masks.items()})


#: Prepared baselines by ``id`` of the volume (with a weak reference that checks the id
#: still names it): every follow-up of a patient is registered to the same baseline CT,
#: whose preparation (a full-grid copy, shrink, smoothing, pyramid, masks) is then done
#: once. Entries go when the volume is collected. Volumes are not modified in place.
_FIXED: dict[tuple[int, float], tuple[weakref.ref[Any], _Fixed]] = {}
_FIXED_LOCK = threading.Lock()


def _prepare_fixed(img: Any, resolution_mm: float, factors: tuple[int, ...]) -> _Fixed:
    work = _working_image_of(img, resolution_mm)
    pyr = _pyramid(work, factors)
    masks = {f: m for f, im in pyr.items() if (m := _body_mask(im)) is not None}
    return _Fixed(work, pyr, masks)


def _fixed_for(baseline: Any, resolution_mm: float, factors: tuple[int, ...]) -> _Fixed:
    """``_prepare_fixed`` of the baseline, computed once per volume object (an
    ``sitk.Image`` is prepared every time: it has no stable identity here)."""
    if isinstance(baseline, sitk.Image):
        return _prepare_fixed(baseline, resolution_mm, factors)
    key = (id(baseline), float(resolution_mm))
    with _FIXED_LOCK:  # a concurrent pair with the same baseline waits, then reuses
        hit = _FIXED.get(key)
        if hit is not None and hit[0]() is baseline:
            return hit[1].copy()
        fixed = _prepare_fixed(baseline, resolution_mm, factors)
        try:
            ref = weakref.ref(baseline, lambda _r, k=key: _FIXED.pop(k, None))
        except TypeError:  # not weakly referenceable: do not cache
            return fixed
        _FIXED[key] = (ref, fixed)
        return fixed.copy()


def _initial_candidates(fixed: sitk.Image, moving: sitk.Image) -> dict[str, sitk.Transform]:
    """Centred Euler3D starts: by image geometry and by body-mask moments (ITK)."""
    out: dict[str, sitk.Transform] = {
        "geometry": sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler3DTransform(),
            sitk.CenteredTransformInitializerFilter.GEOMETRY,
        )
    }
    # Moments of the body masks (HU > −500), not of the HU values: air is −1000 and
    # would otherwise dominate the intensity-weighted centre.
    fb = sitk.Cast(fixed > _BODY_HU, sitk.sitkFloat32)
    mb = sitk.Cast(moving > _BODY_HU, sitk.sitkFloat32)
    if sitk.GetArrayViewFromImage(fb).any() and sitk.GetArrayViewFromImage(mb).any():
        out["moments"] = sitk.CenteredTransformInitializer(
            fb, mb, sitk.Euler3DTransform(),
            sitk.CenteredTransformInitializerFilter.MOMENTS,
        )
    return out


def _method(
    fixed: sitk.Image, seed: int, iterations: int, samples: int,
    mask: sitk.Image | None = None,
) -> Any:
    """One single-level registration on ``fixed``'s own grid (the pyramid is ours).

    ``mask`` (the fixed body, ``_body_mask``) restricts the random samples to the
    patient, so the same budget of samples is spent on anatomy, not on air.
    """
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    # A fixed budget of random samples per level (not a percentage) keeps the cost
    # independent of the field of view: MI is well estimated from ~10^4 samples.
    n_vox = float(np.prod(fixed.GetSize()))
    if mask is not None:
        reg.SetMetricFixedMask(mask)
        # ITK draws over the whole grid and drops points outside the mask.
        n_vox = max(1.0, float(np.count_nonzero(sitk.GetArrayViewFromImage(mask))))
    reg.SetMetricSamplingPercentage(min(_MAX_SAMPLE_FRACTION, samples / n_vox), seed)
    reg.SetInterpolator(sitk.sitkLinear)
    # Gradients at the sample points only (central differences), not as gradient images
    # of both whole grids: with ~10^4 samples those images cost more than all the
    # iterations of a level together (ITK computes them by default).
    reg.SetMetricUseFixedImageGradientFilter(False)
    reg.SetMetricUseMovingImageGradientFilter(False)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=4.0, minStep=0.05, numberOfIterations=iterations,
        relaxationFactor=0.6, gradientMagnitudeTolerance=1e-6,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    return reg


def _pyramid(img: sitk.Image, factors: tuple[int, ...]) -> dict[int, sitk.Image]:
    """Block-averaged copies (``sitk.BinShrink``) of the working image per shrink factor.

    Built once per image and shared by both stages: ITK's own multi-resolution would
    smooth and shrink the whole working grid again for every level of every stage. The
    block average is the anti-aliasing filter (its box is the coarser voxel).
    """
    out = {1: img}
    for f in sorted(set(factors)):
        if f > 1:
            prev = max(k for k in out if f % k == 0)
            out[f] = sitk.BinShrink(out[prev], [f // prev] * 3)
    return out


def _body_mask(img: sitk.Image) -> sitk.Image | None:
    """The patient (HU > −500) grown by one voxel, so its skin edge is sampled too."""
    body = sitk.BinaryDilate(sitk.Cast(img > _BODY_HU, sitk.sitkUInt8), [1, 1, 1])
    if not sitk.GetArrayViewFromImage(body).any():
        return None
    return body


def _run_levels(
    tx: sitk.Transform,
    schedule: tuple[tuple[int, int], ...],
    fixed: dict[int, sitk.Image],
    moving: dict[int, sitk.Image],
    seed: int,
    masks: dict[int, sitk.Image],
) -> float:
    """Optimise ``tx`` in place, coarse to fine: ``schedule`` = ((shrink, iterations), …).

    Returns the final metric value of the finest level.
    """
    metric = float("nan")
    for shrink, iterations in schedule:
        reg = _method(fixed[shrink], seed, iterations, _SAMPLES_PER_LEVEL, masks.get(shrink))
        reg.SetInitialTransform(tx, inPlace=True)
        reg.Execute(fixed[shrink], moving[shrink])
        metric = reg.GetMetricValue()
    return metric


def _matrix_fixed_to_moving(tx: sitk.Transform) -> np.ndarray:
    """4×4 of an ITK matrix-offset transform (fixed point → moving point)."""
    t = tx.Downcast() if hasattr(tx, "Downcast") else tx
    a = np.asarray(t.GetMatrix(), float).reshape(3, 3)
    c = np.asarray(t.GetCenter(), float)
    tr = np.asarray(t.GetTranslation(), float)
    m = np.eye(4)
    m[:3, :3] = a
    m[:3, 3] = tr + c - a @ c
    return m


def register_ct(
    baseline: Any,
    followup: Any,
    *,
    stages: tuple[str, ...] = ("rigid", "affine"),
    resolution_mm: float = 5.0,
    seed: int = 1,
) -> Registration:
    """Register a follow-up CT (moving) to the baseline CT (fixed).

    ``baseline``/``followup`` are ``highdicom.Volume`` (or ``sitk.Image``) in HU.
    ``stages`` is ``("rigid",)`` or ``("rigid", "affine")``. ``resolution_mm`` is the
    isotropic working resolution (4–6 mm keeps a torso pair to a few seconds on one
    core). Returns a :class:`Registration`.
    """
    if not stages or stages[0] != "rigid" or any(s not in ("rigid", "affine") for s in stages):
        raise InputError(f"stages: expected ('rigid',) or ('rigid', 'affine'), got {stages!r}")
    if not 1.0 <= resolution_mm <= 20.0:
        raise InputError(f"resolution_mm: expected 1–20 mm, got {resolution_mm}")
    t0 = time.perf_counter()
    # One pyramid per image for both stages; MetricEvaluate reads every voxel of its
    # grid (no sampling), so the start is probed and the stages judged on the 2× copies.
    factors = (2, *(f for sched in (_RIGID_SCHEDULE, _AFFINE_SCHEDULE) for f, _ in sched))
    fix = _fixed_for(baseline, resolution_mm, factors)
    fixed, fixed_pyr, masks = fix.image, fix.pyramid, fix.masks
    moving = _working_image_of(followup, resolution_mm)
    notes: list[str] = []

    # Initialisation candidates (their translation maps fixed points to moving points).
    candidates = _initial_candidates(fixed, moving)
    moving_pyr = _pyramid(moving, factors)
    fixed2, moving2 = fixed_pyr[2], moving_pyr[2]
    probe = _method(fixed2, seed, 0, _SAMPLES_PER_LEVEL)
    scores = {}
    for name, tx in candidates.items():
        probe.SetInitialTransform(tx, inPlace=False)
        try:
            scores[name] = probe.MetricEvaluate(fixed2, moving2)
        except RuntimeError:  # no overlap for this start
            scores[name] = float("inf")
    initialiser = min(scores, key=scores.get)  # type: ignore[arg-type]

    rigid = sitk.Euler3DTransform(candidates[initialiser])  # a copy to optimise in place
    try:
        metric = _run_levels(rigid, _RIGID_SCHEDULE, fixed_pyr, moving_pyr, seed, masks)
    except RuntimeError as exc:  # ITK raises when no sample overlaps, e.g. disjoint FOVs
        raise GeometryError(f"rigid registration failed: {exc}") from exc
    final: sitk.Transform = rigid
    used = ["rigid"]

    if "affine" in stages:
        aff = sitk.AffineTransform(3)
        aff.SetCenter(rigid.GetCenter())
        aff.SetMatrix(rigid.GetMatrix())
        aff.SetTranslation(rigid.GetTranslation())
        try:
            _run_levels(aff, _AFFINE_SCHEDULE, fixed_pyr, moving_pyr, seed, masks)
            sv = np.linalg.svd(np.asarray(aff.GetMatrix()).reshape(3, 3), compute_uv=False)
            if np.max(np.abs(sv - 1.0)) > _MAX_AFFINE_SCALE_DEVIATION:
                notes.append(
                    f"affine stage rejected: scale factors {np.round(sv, 3).tolist()} exceed "
                    f"±{_MAX_AFFINE_SCALE_DEVIATION:.0%}; rigid result kept"
                )
            else:
                # Compare both results on the same voxels: MetricEvaluate reads every
                # voxel of its grid, so judge on the 2x coarser copies (8x fewer).
                judge = _method(fixed2, seed, 0, _SAMPLES_PER_LEVEL)
                judge.SetInitialTransform(rigid, inPlace=False)
                m_rigid = judge.MetricEvaluate(fixed2, moving2)
                judge.SetInitialTransform(aff, inPlace=False)
                m_affine = judge.MetricEvaluate(fixed2, moving2)
                if m_affine > m_rigid:
                    notes.append(
                        f"affine stage rejected: metric {m_affine:.4f} worse than rigid "
                        f"{m_rigid:.4f}; rigid result kept"
                    )
                    metric = m_rigid
                else:
                    final, metric = aff, m_affine
                    used.append("affine")
        except RuntimeError as exc:
            notes.append(f"affine stage failed ({exc}); rigid result kept")

    m_fm = _matrix_fixed_to_moving(final)
    return Registration(
        matrix_lps=np.linalg.inv(m_fm),
        transform=final,
        metric_value=float(metric),
        stages=tuple(used),
        initialiser=initialiser,
        elapsed_s=time.perf_counter() - t0,
        baseline_frame_of_reference_uid=_for_uid(baseline),
        followup_frame_of_reference_uid=_for_uid(followup),
        notes=notes,
    )


def map_points(registration: Registration | None, points_lps_mm: Any) -> np.ndarray:
    """Map follow-up LPS points (n, 3) to baseline LPS mm (identity when None)."""
    pts = np.atleast_2d(np.asarray(points_lps_mm, float))
    if pts.shape[-1] != 3:
        raise InputError(f"points: expected shape (n, 3), got {pts.shape}")
    if registration is None:
        return pts.copy()
    m = registration.matrix_lps
    return pts @ m[:3, :3].T + m[:3, 3]


def resample_to_baseline(
    registration: Registration | None,
    volume: Any,
    reference: Any,
    *,
    interpolator: str = "nearest",
    default_value: float = 0.0,
) -> Any:
    """Resample a follow-up-space volume (mask, CT or PET) onto a baseline grid.

    ``reference`` gives the output grid (a ``highdicom.Volume``, ``VolumeGeometry``-like
    object with ``affine`` and ``spatial_shape``, or ``sitk.Image``). Masks use
    ``"nearest"``; images ``"linear"``. The result is a ``highdicom.Volume`` in the
    baseline frame of reference (or ``sitk.Image`` when ``reference`` is one).
    """
    interp = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}.get(interpolator)
    if interp is None:
        raise InputError(f"interpolator: expected 'nearest' or 'linear', got {interpolator!r}")
    if registration is not None:
        vol_uid = _for_uid(volume)
        reg_uid = registration.followup_frame_of_reference_uid
        if vol_uid and reg_uid and vol_uid != reg_uid:
            raise GeometryError(
                f"FrameOfReferenceUID {vol_uid} of the volume to resample differs from the "
                f"registered follow-up CT's {reg_uid}; PET/masks must share the CT's frame"
            )
    src = _as_sitk(volume)
    if isinstance(reference, sitk.Image):
        ref = reference
    else:
        shape = getattr(reference, "spatial_shape", None) or np.asarray(reference.array).shape[:3]
        ref = _grid_image(np.asarray(reference.affine, float), tuple(shape))
    tx = registration.transform if registration is not None else sitk.Transform()
    out = sitk.Resample(src, ref, tx, interp, default_value, src.GetPixelID())
    if isinstance(reference, sitk.Image):
        return out
    return from_sitk(out, _for_uid(reference))
