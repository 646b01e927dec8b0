"""IBSI 1 image processing (§2): interpolation, mask interpolation, re-segmentation,
outlier filtering and discretisation, giving the :class:`~.roi.Roi` the families work on.

Steps in the order of IBSI 1 Fig. 2.1:

1. *Data conversion* — intensities to float64; CT numbers of the phantom rounded to
   integers first (``round_input``, manual §5.2).
2. *Interpolation* (§2.4) — to ``new_spacing_mm``; in-plane only for 2D configurations.
   The new grid keeps the image centre: per axis ``n' = ceil(n·s / s')`` voxels and the
   centre of the new grid on the centre of the old one (§2.4, "grid alignment: align grid
   centers"). Image: trilinear (``linear``) or tricubic spline (``cubic``), padding by the
   nearest boundary intensity; intensities rounded to integers where the configuration
   says (``round_intensities``, calibrated CT). Mask: interpolated like a continuous image
   (``linear``) and thresholded at the partial-volume fraction 0.5 (§2.4.3).
3. *Re-segmentation* (§2.5) — the intensity mask keeps the voxels within
   ``resegment_range``, then (``outlier_sigma``) those within mean ± 3 SD of what is left
   (§2.5.2). The morphological mask is not re-segmented (§2.5, trap 7 of radiomics-ai.md).
4. *Discretisation* (§2.7) — fixed bin number: ``X_d = floor(N_g (X − X_min)/(X_max −
   X_min)) + 1`` with ``X_max`` in the top bin (§2.7.1); fixed bin size: ``X_d = floor((X −
   X_min)/w_b) + 1`` with ``X_min`` the lower re-segmentation bound where one is set, the
   ROI minimum otherwise (§2.7.2). The intensity-volume histogram has its own
   discretisation (§3.5), returned as parameters (:func:`ivh_parameters`).

The interpolation itself is SciPy's ``ndimage.map_coordinates`` (order 1 or 3, ``mode=
"nearest"`` as IBSI's boundary padding); only the IBSI grid geometry and cropping are
written here. The arrays are cropped to the ROI's bounding box plus a margin of 10 mm (room
for the 1 cm³ local-intensity sphere, IBSI 1 §3.2) before interpolating, so the cost scales
with the ROI, not the image; a cubic spline gets 12 extra source voxels so its prefilter
sees the same neighbourhood as on the whole image (the B-spline pole 0.268ⁿ is < 1e-6 at 12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.errors import InputError

from .configs import RadiomicsSettings
from .roi import Roi

_MARGIN_MM = 10.0
_SPLINE_PAD = 12


@dataclass(frozen=True)
class Preprocessed:
    """A preprocessed ROI with what IBSI asks to report about the processing."""

    roi: Roi
    ivh: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _new_axis(n: int, s: float, s_new: float) -> tuple[int, float, float]:
    """Size of the new axis and the map ``old = a + b·new`` (centres aligned, §2.4)."""
    n_new = max(1, math.ceil(round(n * s / s_new, 6)))
    b = s_new / s
    a = (n - 1) / 2.0 - (n_new - 1) / 2.0 * b
    return n_new, a, b


def _crop_bounds(mask: np.ndarray, spacing: tuple[float, float, float]
                 ) -> list[tuple[int, int]]:
    nz = np.nonzero(mask.any(axis=(1, 2)))[0], np.nonzero(mask.any(axis=(0, 2)))[0], \
        np.nonzero(mask.any(axis=(0, 1)))[0]
    out = []
    for ax, idx in enumerate(nz):
        m = math.ceil(_MARGIN_MM / spacing[ax])
        out.append((max(0, int(idx[0]) - m), min(mask.shape[ax], int(idx[-1]) + m + 1)))
    return out


def _as_input(image: np.ndarray, settings: RadiomicsSettings) -> np.ndarray:
    """float64 and, with ``round_input``, rounded to integers (IBSI CT phantom): done on
    the part of the image that is used, which gives the same voxels as on the whole."""
    img = np.asarray(image, dtype=np.float64)
    return np.round(img) if settings.round_input else img


def _new_grid_window(mask: np.ndarray, spacing_mm: tuple[float, float, float],
                     settings: RadiomicsSettings
                     ) -> tuple[list[float], list[tuple[int, float, float]], list[tuple[int, int]]]:
    """New spacing, new axes and the new-grid index window covering the mask (±1 source
    voxel) plus the margin: the crop :func:`interpolate` makes around the ROI."""
    assert settings.new_spacing_mm is not None
    new_spacing = list(settings.new_spacing_mm)
    if settings.by_slice:  # 2D: in-plane only (IBSI 1 §2.4)
        new_spacing[0] = spacing_mm[0]
    axes = [_new_axis(n, s, sn) for n, s, sn in zip(mask.shape, spacing_mm, new_spacing,
                                                    strict=True)]
    idx = [np.nonzero(mask.any(axis=tuple(i for i in range(3) if i != ax)))[0]
           for ax in range(3)]
    win_new: list[tuple[int, int]] = []
    for ax, (n_new, a, b) in enumerate(axes):
        lo_old, hi_old = idx[ax][0] - 1, idx[ax][-1] + 1
        m = math.ceil(_MARGIN_MM / new_spacing[ax])
        lo = max(0, math.floor((lo_old - a) / b) - m)
        hi = min(n_new, math.ceil((hi_old - a) / b) + m + 1)
        win_new.append((lo, hi))
    return new_spacing, axes, win_new


def roi_window(mask: np.ndarray, spacing_mm: tuple[float, float, float],
               settings: RadiomicsSettings) -> tuple[slice, slice, slice]:
    """Where :func:`preprocess`'s crop around the ROI lies on the whole image's (new) grid.

    IBSI 2 filters the whole image, then reads the ROI (IBSI 2 §2); the pipeline filters the
    whole interpolated image and takes this window of the response map.
    """
    mask = np.asarray(mask)
    roi_mask = mask > 0.5 if mask.dtype != bool else mask
    if settings.new_spacing_mm is None or settings.image_interpolation == "none":
        bounds = _crop_bounds(roi_mask, spacing_mm)
    else:
        bounds = _new_grid_window(roi_mask, spacing_mm, settings)[2]
    return tuple(slice(lo, hi) for lo, hi in bounds)  # type: ignore[return-value]


def interpolate(image: np.ndarray, mask: np.ndarray, spacing_mm: tuple[float, float, float],
                settings: RadiomicsSettings) -> tuple[np.ndarray, np.ndarray,
                                                      tuple[float, float, float]]:
    """Image and (thresholded) mask on the IBSI-aligned new grid, cropped around the ROI.

    Returns ``(image, mask, spacing)``; without interpolation the inputs are only cropped.
    """
    target = settings.new_spacing_mm
    if target is None or settings.image_interpolation == "none":
        bounds = _crop_bounds(mask, spacing_mm)
        sl = tuple(slice(lo, hi) for lo, hi in bounds)
        return _as_input(image[sl], settings), mask[sl], spacing_mm
    new_spacing, axes, win_new = _new_grid_window(mask, spacing_mm, settings)
    coords_old = [a + b * np.arange(lo, hi, dtype=np.float64)
                  for (lo, hi), (_, a, b) in zip(win_new, axes, strict=True)]
    order = {"linear": 1, "cubic": 3, "nearest": 0}[settings.image_interpolation]
    pad = _SPLINE_PAD if order > 1 else 1
    src: list[tuple[int, int]] = []
    for ax, c in enumerate(coords_old):
        src.append((max(0, math.floor(c[0]) - pad),
                    min(image.shape[ax], math.ceil(c[-1]) + pad + 1)))
    sl = tuple(slice(lo, hi) for lo, hi in src)
    img = _as_input(image[sl], settings)
    frac = mask[sl].astype(np.float64)
    m_order = {"linear": 1, "cubic": 3, "nearest": 0, "none": 1}[settings.mask_interpolation]
    # shrinking axes first (fewer voxels left for the next passes)
    for ax in sorted(range(3), key=lambda i: -axes[i][2]):
        x = coords_old[ax] - src[ax][0]
        img = _resample_axis(img, x, ax, order, constant=False)
        frac = _resample_axis(frac, x, ax, m_order, constant=True)
    if settings.round_intensities:
        img = np.round(img)
    new_mask = np.round(frac, 6) >= settings.mask_threshold
    return img, new_mask, (float(new_spacing[0]), float(new_spacing[1]),
                           float(new_spacing[2]))


def _bspline_weights(t: np.ndarray, order: int) -> list[np.ndarray]:
    """Weights of the taps floor(x) + k − (order − 1)//2 … of a B-spline of ``order``."""
    if order == 0:
        return [np.ones_like(t)]
    if order == 1:
        return [1.0 - t, t]
    t2, t3 = t * t, t * t * t
    return [(1.0 - t) ** 3 / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
            (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t3 / 6.0]


def _resample_axis(a: np.ndarray, x: np.ndarray, axis: int, order: int, *,
                   constant: bool) -> np.ndarray:
    """``a`` interpolated along ``axis`` at the (sorted) source coordinates ``x``.

    Tensor-product B-splines are separable, so three 1-D passes give what SciPy's
    ``map_coordinates(order, mode="nearest")`` gives in 3-D (same 12-voxel edge padding and
    prefilter, :func:`scipy.ndimage.spline_filter1d`), at a fraction of the cost: this
    1-D tap evaluation is written here because SciPy has no separable resampler with
    arbitrary sample positions. ``constant``: zero outside (the mask), otherwise the
    nearest boundary value (the image, IBSI 1 §2.4).
    """
    n = a.shape[axis]
    pad = 0
    if order > 1:
        pad = _SPLINE_PAD
        widths = [(0, 0)] * a.ndim
        widths[axis] = (pad, pad)
        a = np.pad(a, widths, mode="constant" if constant else "edge")
        a = ndimage.spline_filter1d(a, order, axis=axis, mode="nearest")
    xp = x + pad
    if order == 0:
        base = np.floor(xp + 0.5).astype(np.int64)
        t = np.zeros_like(xp)
    else:
        base = np.floor(xp).astype(np.int64) - (order - 1) // 2
        t = xp - np.floor(xp)
    out = None
    size = a.shape[axis]
    shape = [1] * a.ndim
    shape[axis] = -1
    for k, w in enumerate(_bspline_weights(t, order)):
        idx = base + k
        inside = (idx >= 0) & (idx < size)
        if constant:
            w = np.where(inside & (idx >= pad) & (idx < pad + n), w, 0.0)
        term = np.take(a, np.clip(idx, 0, size - 1), axis=axis) * w.reshape(shape)
        out = term if out is None else out + term
    assert out is not None
    return out


def resegment(image: np.ndarray, morph_mask: np.ndarray, settings: RadiomicsSettings
              ) -> np.ndarray:
    """The intensity mask (IBSI 1 §2.5): range re-segmentation, then outlier filtering
    (mean ± ``outlier_sigma`` · SD of the range-re-segmented ROI, population SD)."""
    int_mask = morph_mask.copy()
    if settings.resegment_range is not None:
        lo, hi = settings.resegment_range
        if lo is not None:
            int_mask &= image >= lo
        if hi is not None:
            int_mask &= image <= hi
    if settings.outlier_sigma is not None and int_mask.any():
        vals = image[int_mask]
        mu, sd = float(vals.mean()), float(vals.std())
        k = settings.outlier_sigma
        int_mask &= (image >= mu - k * sd) & (image <= mu + k * sd)
    return int_mask


def discretise(image: np.ndarray, int_mask: np.ndarray, method: str, *,
               bin_width: float | None = None, n_bins: int | None = None,
               lower: float | None = None) -> tuple[np.ndarray, int]:
    """Grey levels (0 outside ``int_mask``, 1..N_g inside) and N_g (IBSI 1 §2.7).

    ``fbn``: ``floor(N_g (X − X_min)/(X_max − X_min)) + 1``, the maximum in bin N_g
    (§2.7.1). ``fbs``: ``floor((X − X_min)/w_b) + 1`` with ``X_min`` = ``lower`` (the
    re-segmentation lower bound) or the ROI minimum (§2.7.2); N_g is the highest level in
    the ROI. ``none``: the (integer) intensities are the grey levels (digital phantom);
    N_g is the highest.
    """
    levels = np.zeros(image.shape, dtype=np.int64)
    vals = image[int_mask]
    if vals.size == 0:
        return levels, 0
    if method == "fbn":
        assert n_bins is not None
        x_min, x_max = float(vals.min()), float(vals.max())
        if x_max > x_min:
            d = np.floor(n_bins * (vals - x_min) / (x_max - x_min)).astype(np.int64) + 1
            d = np.minimum(d, n_bins)
        else:
            d = np.ones(vals.shape, dtype=np.int64)
        n_levels = int(n_bins)
    elif method == "fbs":
        assert bin_width is not None
        x_min = float(vals.min()) if lower is None else float(lower)
        d = np.floor((vals - x_min) / bin_width + 1e-9).astype(np.int64) + 1
        n_levels = int(d.max())
    elif method == "none":
        d = np.round(vals).astype(np.int64)
        if d.min() < 1:
            raise InputError("discretisation 'none' needs positive integer intensities "
                             f"(grey levels), the ROI minimum is {vals.min():g}")
        n_levels = int(d.max())
    else:
        raise InputError(f"unknown discretisation {method!r} (none, fbs, fbn)")
    levels[int_mask] = d
    return levels, n_levels


def _reseg_bounds(settings: RadiomicsSettings) -> tuple[float | None, float | None]:
    if settings.resegment_range is None:
        return None, None
    lo, hi = settings.resegment_range
    return (None if lo is None or not math.isfinite(lo) else float(lo),
            None if hi is None or not math.isfinite(hi) else float(hi))


def ivh_parameters(settings: RadiomicsSettings) -> dict[str, Any]:
    """The IVH discretisation of a configuration as the keyword arguments of
    :func:`~.intensity.intensity_volume_histogram_features` (IBSI 1 §3.5; manual Table 5.1):
    ``"none"`` = the intensities themselves in unit steps (discrete CT numbers), within the
    re-segmentation range where one is set; ``"fbs"`` = bins of ``ivh_bin_width`` from the
    lower re-segmentation bound; ``"fbn"`` = ``ivh_n_bins`` bins over the ROI's range."""
    lo, hi = _reseg_bounds(settings)
    if settings.ivh_discretisation == "fbn":
        return {"n_bins": settings.ivh_n_bins}
    out: dict[str, Any] = {"range_min": lo, "range_max": hi}
    if settings.ivh_discretisation == "fbs":
        out["bin_width"] = settings.ivh_bin_width
    return out


def preprocess(image: np.ndarray, mask: np.ndarray, spacing_mm: tuple[float, float, float],
               settings: RadiomicsSettings) -> Preprocessed:
    """Image + ROI mask (z, y, x) → the :class:`Roi` of IBSI 1 §2 with discretised levels.

    Raises :class:`~oncohybrid.errors.InputError` when shapes differ or the ROI is empty
    (before or after processing).
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or mask.shape != image.shape:
        raise InputError(f"image shape {image.shape} and mask shape {mask.shape} must be "
                         "equal and 3-D (z, y, x)")
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    img = image  # converted (and rounded) after cropping: interpolate / _as_input
    roi_mask = mask > 0.5 if mask.dtype != bool else mask
    if not roi_mask.any():
        raise InputError("the mask is empty (no voxel inside the ROI)")
    diag: dict[str, Any] = {
        "image_dims_init": list(image.shape), "voxel_spacing_init_mm": list(spacing),
        "mask_voxels_init": int(roi_mask.sum()),
    }
    img, morph, spacing = interpolate(img, roi_mask, spacing, settings)
    if not morph.any():
        raise InputError("the ROI is empty after interpolation (mask smaller than a voxel "
                         "of the new grid)")
    int_mask = resegment(img, morph, settings)
    if not int_mask.any():
        raise InputError("the ROI is empty after re-segmentation "
                         f"(range {settings.resegment_range}, outlier "
                         f"sigma {settings.outlier_sigma})")
    lo, _ = _reseg_bounds(settings)
    levels, n_levels = discretise(img, int_mask, settings.discretisation,
                                  bin_width=settings.bin_width, n_bins=settings.n_bins,
                                  lower=lo)
    vals = img[int_mask]
    diag.update({
        "image_dims_interp": list(img.shape), "voxel_spacing_interp_mm": list(spacing),
        "morph_mask_voxels": int(morph.sum()), "int_mask_voxels": int(int_mask.sum()),
        "int_mask_mean": float(vals.mean()), "int_mask_min": float(vals.min()),
        "int_mask_max": float(vals.max()), "n_levels": n_levels,
    })
    roi = Roi(image=img, morph_mask=morph, int_mask=int_mask, spacing_mm=spacing,
              levels=levels, n_levels=n_levels)
    return Preprocessed(roi=roi, ivh=ivh_parameters(settings), diagnostics=diag)
