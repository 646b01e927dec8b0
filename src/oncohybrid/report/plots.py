"""Figures of the tumour-board report (matplotlib, object API, Agg canvas → PNG bytes).

- :func:`mip_pair_png`: PET coronal maximum-intensity projections, baseline vs current,
  inverted grey on a fixed SUV scale, with colour bar, 100 mm scale bar and R/L labels.
- :func:`fused_slice_png`: axial CT (grey) with PET (hot) overlay through the lesion
  centroid, lesion contour, per timepoint; 20 mm scale bar.
- :func:`waterfall_png`: best % change of the sum of diameters per patient (cohort),
  RECIST 1.1 thresholds −30 % / +20 % (Eisenhauer 2009 §4.3.1).
- :func:`spider_png`: % change of each target lesion's size from baseline over time.

Figures use :class:`matplotlib.figure.Figure` directly (no ``pyplot`` global state), so
they are safe to build from web worker threads. Images are shown in the radiological
convention: the patient's right on the viewer's left; coronal views head up, axial views
anterior up. Geometry comes from each volume's LPS affine.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from oncohybrid.errors import GeometryError

__all__ = [
    "MipPanel",
    "SlicePanel",
    "mip_pair_png",
    "fused_slice_png",
    "waterfall_png",
    "spider_png",
    "RESPONSE_COLOURS",
]

#: Bar/line colours per response category (colour-blind-safe Okabe–Ito palette).
RESPONSE_COLOURS = {
    "CR": "#009E73",
    "CMR": "#009E73",
    "PR": "#0072B2",
    "PMR": "#0072B2",
    "SD": "#999999",
    "SMD": "#999999",
    "PD": "#D55E00",
    "PMD": "#D55E00",
}
_DEFAULT_COLOUR = "#56B4E9"


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.04)
    return buf.getvalue()


def _axis_roles(affine: np.ndarray) -> list[int]:
    """For each array axis, the LPS component (0=x, 1=y, 2=z) it mostly runs along."""
    dirs = np.asarray(affine, dtype=float)[:3, :3]
    roles = [int(np.argmax(np.abs(dirs[:, i]))) for i in range(3)]
    if sorted(roles) != [0, 1, 2]:
        raise GeometryError("volume axes are too oblique for an orthogonal MIP / slice view")
    return roles


def _oriented(arr: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transpose/flip ``arr`` to axes (x, y, z) with ascending LPS coordinates.

    Returns the array and per-axis origin and spacing (mm) of that ascending grid.
    """
    affine = np.asarray(affine, dtype=float)
    roles = _axis_roles(affine)
    order = [roles.index(c) for c in range(3)]
    out = np.transpose(arr, order)
    origin = np.empty(3)
    spacing = np.empty(3)
    for c, ax in enumerate(order):
        step = affine[c, ax]
        n = arr.shape[ax]
        spacing[c] = abs(step) if step != 0 else np.linalg.norm(affine[:3, ax])
        start = affine[c, 3]
        if step < 0:
            out = np.flip(out, axis=c)
            start = start + step * (n - 1)
        origin[c] = start
    return out, origin, spacing


def _extent(origin: np.ndarray, spacing: np.ndarray, shape: tuple[int, ...], a: int, b: int
            ) -> tuple[float, float, float, float]:
    """imshow extent (voxel edges) for axes ``a`` (horizontal) and ``b`` (vertical)."""
    lo_a = origin[a] - spacing[a] / 2
    hi_a = lo_a + spacing[a] * shape[a]
    lo_b = origin[b] - spacing[b] / 2
    hi_b = lo_b + spacing[b] * shape[b]
    return lo_a, hi_a, lo_b, hi_b


@dataclass(frozen=True)
class MipPanel:
    """One MIP panel: an SUV ``highdicom.Volume`` and its caption."""

    volume: object
    title: str


def _scalebar(ax, length_mm: float, label: str, colour: str) -> None:  # noqa: ANN001
    bar = AnchoredSizeBar(
        ax.transData, length_mm, label, "lower right", pad=0.3, sep=3, color=colour,
        frameon=False, size_vertical=max(length_mm / 40.0, 0.5), fontproperties={"size": 7},
    )
    ax.add_artist(bar)


def mip_pair_png(panels: Sequence[MipPanel], *, suv_max: float = 10.0, dpi: int = 110,
                 width_in: float = 6.6) -> bytes:
    """Coronal PET MIPs side by side, inverted grey, SUVbw 0–``suv_max``.

    The projection runs along the array axis closest to the LPS y (anterior–posterior)
    direction; each panel is drawn in millimetres so that aspect ratios are true.
    """
    fig = Figure(figsize=(width_in, width_in * 0.62))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    im = None
    for ax, panel in zip(axes, panels, strict=True):
        vol = panel.volume
        arr, origin, spacing = _oriented(np.asarray(vol.array, dtype=np.float32), vol.affine)
        mip = arr.max(axis=1)  # over y (A-P): axes (x, z)
        ext = _extent(origin, spacing, arr.shape, 0, 2)
        im = ax.imshow(mip.T, origin="lower", cmap="gray_r", vmin=0.0, vmax=suv_max,
                       extent=ext, interpolation="bilinear")
        ax.set_title(panel.title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.text(0.02, 0.98, "R", transform=ax.transAxes, va="top", ha="left", fontsize=8)
        ax.text(0.98, 0.98, "L", transform=ax.transAxes, va="top", ha="right", fontsize=8)
        _scalebar(ax, 100.0, "100 mm", "black")
    if im is not None:
        cbar = fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.02)
        cbar.set_label("SUVbw (g/ml)", fontsize=8)
        cbar.ax.tick_params(labelsize=7)
    return _png(fig, dpi)


@dataclass(frozen=True)
class SlicePanel:
    """One fused axial panel: CT (HU) and PET (SUV) volumes sharing a frame of reference,
    an optional lesion mask on the PET grid, the centroid (LPS mm) and a caption."""

    ct: object | None
    pet: object | None  # None: an empty placeholder panel saying ``note``
    mask: np.ndarray | None
    centroid_lps_mm: tuple[float, float, float] | None
    title: str
    lung_window: bool = False
    note: str = ""


def _axial_views(panel: SlicePanel, half_fov_mm: float
                 ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None,
                            tuple[float, float, float, float]]:
    """CT, PET and mask on one axial plane through the centroid, cropped around it.

    The plane is the CT slice nearest to the centroid (the PET slice when there is no
    CT); PET and mask are resampled onto it (linear / nearest).
    """
    import highdicom as hd

    from oncohybrid.imaging.resample import resample_to

    base = panel.ct if panel.ct is not None else panel.pet
    inv = np.linalg.inv(np.asarray(base.affine, dtype=float))
    ijk = inv @ np.array([*panel.centroid_lps_mm, 1.0])
    roles = _axis_roles(base.affine)
    zax = roles.index(2)
    k = int(np.clip(round(ijk[zax]), 0, base.spatial_shape[zax] - 1))
    index: list[slice] = [slice(None)] * 3
    index[zax] = slice(k, k + 1)
    plane = base[tuple(index)]
    ct_plane = plane.array.astype(np.float32) if panel.ct is not None else None
    pet_plane = resample_to(panel.pet, plane, interpolation="linear", antialias=False).array
    mask_plane = None
    if panel.mask is not None:
        mvol = hd.Volume(
            array=np.asarray(panel.mask, dtype=np.uint8), affine=panel.pet.affine,
            coordinate_system="PATIENT", frame_of_reference_uid=panel.pet.frame_of_reference_uid,
        )
        mask_plane = resample_to(mvol, plane, interpolation="nearest").array

    def orient(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _oriented(a, plane.affine)

    ct_o = pet_o = mask_o = None
    pet_o, origin, spacing = orient(pet_plane)
    if ct_plane is not None:
        ct_o, _, _ = orient(ct_plane)
    if mask_plane is not None:
        mask_o, _, _ = orient(mask_plane)
    # Crop a square window around the centroid (x, y in mm).
    cx, cy = panel.centroid_lps_mm[0], panel.centroid_lps_mm[1]
    sl = []
    for c, centre in ((0, cx), (1, cy)):
        lo = int(np.floor((centre - half_fov_mm - origin[c]) / spacing[c]))
        hi = int(np.ceil((centre + half_fov_mm - origin[c]) / spacing[c])) + 1
        lo, hi = max(lo, 0), min(hi, pet_o.shape[c])
        sl.append(slice(lo, hi))

    def crop(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[sl[0], sl[1], 0]

    shape = (sl[0].stop - sl[0].start, sl[1].stop - sl[1].start, 1)
    start = origin.copy()
    start[0] += sl[0].start * spacing[0]
    start[1] += sl[1].start * spacing[1]
    ext = _extent(start, spacing, shape, 0, 1)
    return crop(ct_o), crop(pet_o), crop(mask_o), ext


def fused_slice_png(panels: Sequence[SlicePanel], *, suv_max: float = 10.0, dpi: int = 110,
                    half_fov_mm: float = 60.0, width_in: float = 6.6) -> bytes:
    """Axial fused PET/CT key images through lesion centroids, side by side.

    CT soft-tissue window W 400 / L 40 HU (lung W 1500 / L −600 for lung lesions), PET
    ``hot`` colour map 0–``suv_max`` SUVbw, transparent below 10 % of the scale; lesion
    contour in cyan. Anterior is up and the patient's right on the viewer's left.
    """
    fig = Figure(figsize=(width_in, width_in / max(len(panels), 1) * 0.95))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    im = None
    for ax, panel in zip(axes, panels, strict=True):
        if panel.pet is None or panel.centroid_lps_mm is None:
            ax.set_facecolor("#F2F2F2")
            ax.text(0.5, 0.5, panel.note or "no image", transform=ax.transAxes, ha="center",
                    va="center", fontsize=8, color="#4A5563", wrap=True)
            ax.set_title(panel.title, fontsize=7.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            continue
        ct, pet, mask, ext = _axial_views(panel, half_fov_mm)
        # Arrays are (x, y); show x horizontally and y (posterior) downwards.
        img_ext = (ext[0], ext[1], ext[3], ext[2])
        if ct is not None:
            level, width = (-600.0, 1500.0) if panel.lung_window else (40.0, 400.0)
            ax.imshow(ct.T, cmap="gray", vmin=level - width / 2, vmax=level + width / 2,
                      extent=img_ext, interpolation="bilinear")
        alpha = 0.55 if ct is not None else 1.0
        shown = np.ma.masked_less(pet, 0.1 * suv_max)
        im = ax.imshow(shown.T, cmap="hot", vmin=0.0, vmax=suv_max, alpha=alpha,
                       extent=img_ext, interpolation="bilinear")
        if mask is not None and mask.any():
            xs = np.linspace(ext[0], ext[1], mask.shape[0], endpoint=False) + (
                (ext[1] - ext[0]) / mask.shape[0] / 2)
            ys = np.linspace(ext[2], ext[3], mask.shape[1], endpoint=False) + (
                (ext[3] - ext[2]) / mask.shape[1] / 2)
            ax.contour(xs, ys, mask.T.astype(float), levels=[0.5], colors="cyan",
                       linewidths=0.9)
        ax.set_xlim(img_ext[0], img_ext[1])
        ax.set_ylim(img_ext[2], img_ext[3])
        ax.set_title(panel.title, fontsize=7.5)
        ax.set_xticks([])
        ax.set_yticks([])
        # A dark box keeps the white markers readable over bright CT (bone, soft tissue).
        box = {"boxstyle": "square,pad=0.15", "fc": "black", "alpha": 0.45, "lw": 0}
        ax.text(0.03, 0.97, "R", transform=ax.transAxes, va="top", ha="left", fontsize=7,
                color="white", bbox=box)
        ax.text(0.97, 0.97, "L", transform=ax.transAxes, va="top", ha="right", fontsize=7,
                color="white", bbox=box)
        _scalebar(ax, 20.0, "20 mm", "white")
    if im is not None:
        cbar = fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.02)
        cbar.set_label("PET SUVbw", fontsize=7)
        cbar.ax.tick_params(labelsize=6)
    return _png(fig, dpi)


def waterfall_png(labels: Sequence[str], changes_pct: Sequence[float],
                  responses: Sequence[str | None], *, highlight: int | None = None,
                  dpi: int = 110, width_in: float = 3.3) -> bytes:
    """Waterfall of best % change of the sum of diameters, sorted from worst to best."""
    order = sorted(range(len(labels)), key=lambda i: -changes_pct[i])
    fig = Figure(figsize=(width_in, 2.5))
    ax = fig.add_subplot()
    xs = np.arange(len(order))
    vals = [changes_pct[i] for i in order]
    colours = [RESPONSE_COLOURS.get(str(responses[i]), _DEFAULT_COLOUR) for i in order]
    bars = ax.bar(xs, vals, color=colours, width=0.8, edgecolor="none")
    if highlight is not None and highlight in order:
        pos = order.index(highlight)
        bars[pos].set_edgecolor("black")
        bars[pos].set_linewidth(1.4)
        v = vals[pos]
        # Label on the zero line's other side so it never leaves the axes.
        ax.annotate("this patient", (pos, 0), xytext=(0, -10 if v >= 0 else 4),
                    textcoords="offset points", ha="center", fontsize=6.5)
    ax.axhline(20, color="#D55E00", ls="--", lw=0.8)
    ax.axhline(-30, color="#0072B2", ls="--", lw=0.8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("best change of sum (%)", fontsize=7)
    ax.set_xticks([])
    ax.set_xlabel(f"patients (n = {len(labels)})", fontsize=7)
    ax.tick_params(labelsize=6.5)
    lo = min([-40.0, *vals]) - 10
    hi = max([30.0, *vals]) + 15
    ax.set_ylim(lo, hi)
    ax.set_title("Cohort waterfall (RECIST 1.1)", fontsize=8)
    seen = {}
    for i in order:
        r = responses[i]
        if r and r not in seen:
            seen[r] = RESPONSE_COLOURS.get(r, _DEFAULT_COLOUR)
    if seen:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=c, label=r) for r, c in seen.items()], fontsize=6,
                  loc="upper right", frameon=False, ncol=min(len(seen), 4))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _png(fig, dpi)


def spider_png(series: dict[str, tuple[Sequence[float], Sequence[float]]], *,
               dpi: int = 110, width_in: float = 3.3) -> bytes:
    """% change of each target lesion from its baseline size against days since baseline.

    ``series`` maps a lesion label to (days, % change) sequences of equal length.
    """
    fig = Figure(figsize=(width_in, 2.5))
    ax = fig.add_subplot()
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    for n, (label, (days, pct)) in enumerate(series.items()):
        ax.plot(days, pct, marker="o", ms=3, lw=1.2, color=palette[n % len(palette)],
                label=label)
    ax.axhline(20, color="#D55E00", ls="--", lw=0.8)
    ax.axhline(-30, color="#0072B2", ls="--", lw=0.8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("days since baseline", fontsize=7)
    ax.set_ylabel("change from baseline (%)", fontsize=7)
    ax.tick_params(labelsize=6.5)
    ax.set_title("Target lesions (spider)", fontsize=8)
    if series:
        ax.legend(fontsize=6, frameon=False, loc="best")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _png(fig, dpi)
