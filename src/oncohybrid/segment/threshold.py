"""Threshold-based PET lesion segmentation: fixed SUV, % of SUVmax, PERCIST, region growing.

Methods (definitions and citations in ``docs/pet-metrics.md``):

- ``fixed``: SUV >= threshold (``suv2.5``, ``suv4`` presets; lymphoma TMTV practice,
  Boellaard et al., J Nucl Med 2024).
- ``relative`` (``41pct``): per lesion, SUV >= 41% of that lesion's SUVmax inside a seed VOI,
  keeping the part connected to the max voxel (EANM guideline 2.0, Boellaard et al., Eur J
  Nucl Med Mol Imaging 2015;42:328). Without user VOIs, lesions are preselected with a fixed
  threshold and each one's bounding box, widened by ``voi_margin_mm``, is its VOI.
- ``percist``: SUV >= the PERCIST measurability threshold (1.5 x liver SULmean + 2 SD, in
  SUV units; Wahl et al., J Nucl Med 2009;50:122S), from
  :func:`oncohybrid.quant.references.percist_threshold`.
- :func:`region_grow`: the connected region of SUV >= a lower bound around a seed.

All thresholds are inclusive (>=). Voxels in physiological-uptake exclusion masks
(brain, bladder, kidneys, heart...) are removed before labelling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.segmentation import flood

from oncohybrid.errors import InputError
from oncohybrid.segment.components import CONNECTIVITIES, label_lesions, order_labels, structure
from oncohybrid.segment.grid import VoxelGrid, check_same_grid, image_grid


class ThresholdMethod(StrEnum):
    """Lesion delineation rule."""

    FIXED = "fixed"
    RELATIVE = "relative"
    PERCIST = "percist"


#: CLI/method presets: name -> (method, fixed threshold SUV or fraction of SUVmax).
PRESETS: dict[str, tuple[ThresholdMethod, float | None]] = {
    "suv2.5": (ThresholdMethod.FIXED, 2.5),
    "suv4": (ThresholdMethod.FIXED, 4.0),
    "41pct": (ThresholdMethod.RELATIVE, 0.41),
    "percist": (ThresholdMethod.PERCIST, None),
}


@dataclass(frozen=True)
class LesionSegmentation:
    """Label volume (int32, 0 = background, 1..n by descending SUVmax) and its provenance."""

    labels: np.ndarray = field(repr=False)
    grid: VoxelGrid = field(repr=False)
    #: Bounding box of lesion ``id`` at index ``id - 1`` (for :func:`lesion_metrics`).
    boxes: tuple[tuple[slice, ...], ...] = field(repr=False)
    n_lesions: int
    method: str  # preset name (suv2.5, suv4, 41pct, percist) or rule
    rule: str  # ThresholdMethod value: fixed, relative, percist
    threshold_suv: float | None
    fraction: float | None
    background_corrected: bool
    preselect_suv: float | None
    connectivity: int
    min_volume_ml: float
    excluded_regions: tuple[str, ...]

    def parameters(self) -> dict[str, Any]:
        """The segmentation parameters (for provenance in JSON output)."""
        return {
            "method": self.method,
            "rule": self.rule,
            "threshold_suv": self.threshold_suv,
            "fraction_of_suvmax": self.fraction,
            "background_corrected": self.background_corrected,
            "preselect_suv": self.preselect_suv,
            "connectivity": self.connectivity,
            "min_volume_ml": self.min_volume_ml,
            "threshold_rule": "inclusive (>=)",
            "excluded_regions": list(self.excluded_regions),
            "lesion_order": "descending SUVmax, then (slice, row, column) of the max voxel",
        }


def _exclusion(
    exclude: np.ndarray | Mapping[str, np.ndarray] | None, grid: VoxelGrid
) -> tuple[list[np.ndarray], tuple[str, ...]]:
    if exclude is None:
        return [], ()
    items = dict(exclude) if isinstance(exclude, Mapping) else {"exclude": exclude}
    masks = []
    for name, m in items.items():
        arr = np.asarray(m, dtype=bool)
        check_same_grid(f"exclusion mask {name!r}", arr, grid)
        masks.append(arr)
    return masks, tuple(items)


def segment_lesions(
    image: Any,
    *,
    method: ThresholdMethod | str = "suv2.5",
    threshold_suv: float | None = None,
    fraction: float = 0.41,
    vois: Sequence[np.ndarray] | None = None,
    preselect_suv: float = 2.5,
    voi_margin_mm: float = 10.0,
    background_corrected: bool = False,
    connectivity: int = 26,
    min_volume_ml: float = 0.0,
    exclude: np.ndarray | Mapping[str, np.ndarray] | None = None,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
) -> LesionSegmentation:
    """Segment lesions of an SUV image into an ordered label volume.

    ``method`` is a :class:`ThresholdMethod` or a preset (``suv2.5``, ``suv4``, ``41pct``,
    ``percist``). ``fixed`` and ``percist`` need ``threshold_suv`` (presets fill it for
    ``suv2.5``/``suv4``). ``relative`` uses ``fraction`` of each lesion's SUVmax in its VOI
    (user ``vois``: boolean masks, or automatic from ``preselect_suv`` components);
    ``background_corrected`` uses ``bg + fraction x (SUVmax - bg)`` with the local
    background median (EARL-style background-adapted threshold, for lesions in organs with
    uptake such as the liver). Lesions below ``min_volume_ml`` are dropped.

    >>> img = np.ones((20, 20, 20), np.float32); img[5:9, 5:9, 5:9] = 6.0
    >>> seg = segment_lesions(img, method="suv4", spacing_mm=(2.0, 2.0, 2.0))
    >>> seg.n_lesions, int((seg.labels == 1).sum())
    (1, 64)
    """
    arr, grid = image_grid(image, spacing_mm, affine)
    if isinstance(method, str) and method in PRESETS:
        m, preset = PRESETS[method]
        if m is ThresholdMethod.FIXED and threshold_suv is None:
            threshold_suv = preset
    else:
        try:
            m = ThresholdMethod(method)
        except ValueError:
            names = sorted({*PRESETS, *(t.value for t in ThresholdMethod)})
            raise InputError(
                f"unknown segmentation method {method!r}; use one of {names}"
            ) from None
    if connectivity not in CONNECTIVITIES:
        raise InputError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    if min_volume_ml < 0:
        raise InputError(f"min_volume_ml must be >= 0, got {min_volume_ml}")
    excl, names = _exclusion(exclude, grid)
    min_voxels = max(1, math.ceil(min_volume_ml / grid.voxel_volume_ml - 1e-9))

    if m is ThresholdMethod.RELATIVE:
        if not 0.0 < fraction < 1.0:
            raise InputError(f"fraction of SUVmax must be in (0, 1), got {fraction}")
        labels, n = _relative(
            arr,
            grid,
            fraction,
            vois,
            preselect_suv,
            voi_margin_mm,
            connectivity,
            excl,
            background_corrected,
        )
        labels, n, boxes = order_labels(labels, arr, n, min_voxels)
        thr = None
    else:
        if threshold_suv is None or not math.isfinite(threshold_suv):
            raise InputError(
                f"method {m.value!r} needs threshold_suv (for PERCIST: "
                "quant.references.percist_threshold(...).threshold_suv)"
            )
        mask = arr >= threshold_suv
        for e in excl:
            mask &= ~e
        labels, n, boxes = label_lesions(
            mask, arr, connectivity=connectivity, min_voxels=min_voxels
        )
        del mask
        thr = float(threshold_suv)
    return LesionSegmentation(
        labels=labels,
        grid=grid,
        boxes=tuple(boxes),
        n_lesions=n,
        method=method if isinstance(method, str) and method in PRESETS else m.value,
        rule=m.value,
        threshold_suv=thr,
        fraction=fraction if m is ThresholdMethod.RELATIVE else None,
        background_corrected=bool(background_corrected and m is ThresholdMethod.RELATIVE),
        preselect_suv=(preselect_suv if (m is ThresholdMethod.RELATIVE and vois is None) else None),
        connectivity=connectivity,
        min_volume_ml=float(min_volume_ml),
        excluded_regions=names,
    )


def drop_lesions(
    seg: LesionSegmentation, lesion_ids: Sequence[int], regions: Sequence[str] = ()
) -> LesionSegmentation:
    """``seg`` without the lesions ``lesion_ids``; the others renumbered 1..m in their order.

    For a ``fixed`` or ``percist`` segmentation this is exactly what segmenting again with
    the dropped lesions' masks (dilated by one voxel, 6-neighbourhood) excluded gives: a
    voxel >= the threshold that touches a lesion face-on belongs to that lesion (every
    connectivity includes the 6 face neighbours), so the exclusion removes the dropped
    lesions and nothing else, the remaining components are unchanged and so are their
    SUVmax order, ids and boxes. ``regions`` are appended to ``excluded_regions``.
    Not for ``relative`` (41%) segmentations: removing a lesion changes the preselection
    components and so the other lesions' VOIs; segment those again with ``exclude``.

    >>> img = np.zeros((9, 9, 9), np.float32); img[1:3, 1:3, 1:3] = 5; img[5:8, 5:8, 5:8] = 9
    >>> seg = segment_lesions(img, method="suv4", spacing_mm=(2.0, 2.0, 2.0))
    >>> kept = drop_lesions(seg, [1], ["heart"])
    >>> kept.n_lesions, int((kept.labels == 1).sum()), kept.excluded_regions
    (1, 8, ('heart',))
    """
    if seg.rule == ThresholdMethod.RELATIVE:
        raise InputError("drop_lesions: a relative (41%) segmentation must be segmented again")
    drop = {int(k) for k in lesion_ids}
    bad = sorted(k for k in drop if not 1 <= k <= seg.n_lesions)
    if bad:
        raise InputError(f"drop_lesions: no lesion {bad} (ids are 1..{seg.n_lesions})")
    labels = seg.labels.copy()
    for k in sorted(drop):
        sub = labels[seg.boxes[k - 1]]
        sub[sub == k] = 0
    keep = [k for k in range(1, seg.n_lesions + 1) if k not in drop]
    # Ascending: each new id is below its old id and above every id already written, so no
    # relabelled voxel is matched again.
    for new, old in enumerate(keep, start=1):
        if new != old:
            sub = labels[seg.boxes[old - 1]]
            sub[sub == old] = new
    names = tuple(seg.excluded_regions) + tuple(
        r for r in dict.fromkeys(regions) if r not in seg.excluded_regions
    )
    return replace(
        seg,
        labels=labels,
        boxes=tuple(seg.boxes[k - 1] for k in keep),
        n_lesions=len(keep),
        excluded_regions=names,
    )


#: Background shell starts this far (mm) from the lesion core (about 1.5 x a 6 mm FWHM).
_BG_GAP_MM = 9.0


def _relative(
    arr: np.ndarray,
    grid: VoxelGrid,
    fraction: float,
    vois: Sequence[np.ndarray] | None,
    preselect_suv: float,
    margin_mm: float,
    connectivity: int,
    excl: list[np.ndarray],
    background: bool = False,
) -> tuple[np.ndarray, int]:
    """Per-lesion % of SUVmax within VOIs; hotter lesions claim shared voxels first.

    With ``background``, the threshold is ``bg + fraction x (SUVmax - bg)`` where ``bg`` is
    the median SUV of the VOI voxels more than ``_BG_GAP_MM`` away from the lesion core.
    """
    st = structure(connectivity)
    shape = grid.shape
    sp = grid.spacing_mm
    if background:
        margin_mm = max(margin_mm, _BG_GAP_MM + 2 * max(sp))
    # (SUVmax, VOI box, seed index in the box, VOI mask in the box or None, core in the box)
    seeds: list[
        tuple[float, tuple[slice, ...], np.ndarray, np.ndarray | None, np.ndarray | None]
    ] = []
    if vois is None:
        pre = arr >= preselect_suv
        for e in excl:
            pre &= ~e
        plab, pn = ndimage.label(pre, structure=st, output=np.int32)
        del pre
        margin = [int(math.ceil(margin_mm / s)) for s in grid.spacing_mm]
        for i, box in enumerate(ndimage.find_objects(plab, max_label=int(pn))):
            if box is None:
                continue
            comp = plab[box] == i + 1
            big = tuple(
                slice(max(0, b.start - g), min(n, b.stop + g))
                for b, g, n in zip(box, margin, shape, strict=True)
            )
            # Seed = this component's max voxel (not the VOI max: a hotter neighbour may
            # fall inside the widened box).
            vals = np.where(comp, arr[box], -np.inf)
            pos = np.unravel_index(int(np.argmax(vals)), vals.shape)
            seed = tuple(p + b.start - bb.start for p, b, bb in zip(pos, box, big, strict=True))
            core = None
            if background:
                core = np.zeros([b.stop - b.start for b in big], dtype=bool)
                core[
                    tuple(
                        slice(b.start - bb.start, b.stop - bb.start)
                        for b, bb in zip(box, big, strict=True)
                    )
                ] = comp
            seeds.append((float(vals[pos]), big, np.array(seed), None, core))
        del plab
    else:
        for k, voi in enumerate(vois, start=1):
            v = np.asarray(voi, dtype=bool)
            check_same_grid(f"VOI {k}", v, grid)
            objs = ndimage.find_objects(v.astype(np.uint8))
            if not objs or objs[0] is None:
                raise InputError(f"VOI {k} is empty")
            box = objs[0]
            vals = np.where(v[box], arr[box], -np.inf)
            pos = np.unravel_index(int(np.argmax(vals)), vals.shape)
            core = (arr[box] >= fraction * float(vals[pos])) & v[box] if background else None
            seeds.append((float(vals[pos]), box, np.array(pos), v[box], core))

    def order(s: tuple) -> tuple:
        return (-s[0], tuple(b.start + int(p) for b, p in zip(s[1], s[2], strict=True)))

    seeds.sort(key=order)
    labels = np.zeros(shape, dtype=np.int32)
    n = 0
    for smax, box, seed, voi_box, core in seeds:
        thr = fraction * smax
        if core is not None:
            shell = ndimage.distance_transform_edt(~core, sampling=sp) > _BG_GAP_MM
            if voi_box is not None:
                shell &= voi_box
            if shell.any():
                bg = float(np.median(arr[box][shell]))
                thr = bg + fraction * (smax - bg)
        sub = arr[box] >= thr
        if voi_box is not None:
            sub &= voi_box
        for e in excl:
            sub &= ~e[box]
        sub &= labels[box] == 0  # already claimed by a hotter lesion
        if not sub[tuple(seed)]:
            continue
        comp, _ = ndimage.label(sub, structure=st)
        region = comp == comp[tuple(seed)]
        n += 1
        labels[box][region] = n
    return labels, n


def region_grow(
    image: Any,
    seed_index: Sequence[int],
    *,
    lower_suv: float | None = None,
    fraction_of_seed: float | None = None,
    upper_suv: float | None = None,
    connectivity: int = 26,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
) -> np.ndarray:
    """Connected region around ``seed_index`` with ``lower_suv <= SUV (<= upper_suv)``.

    Give ``lower_suv`` or ``fraction_of_seed`` (lower bound = fraction x seed value).

    >>> img = np.zeros((5, 5, 9)); img[2, 2, 1:4] = 3; img[2, 2, 6] = 5
    >>> int(region_grow(img, (2, 2, 2), lower_suv=1.0, spacing_mm=(1, 1, 1)).sum())
    3
    """
    arr, grid = image_grid(image, spacing_mm, affine)
    seed = tuple(int(i) for i in seed_index)
    if len(seed) != 3 or any(not 0 <= s < n for s, n in zip(seed, grid.shape, strict=True)):
        raise InputError(f"seed index {seed_index} is outside the image of shape {grid.shape}")
    if (lower_suv is None) == (fraction_of_seed is None):
        raise InputError("region_grow needs exactly one of lower_suv or fraction_of_seed")
    if connectivity not in CONNECTIVITIES:
        raise InputError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    lo = lower_suv if lower_suv is not None else fraction_of_seed * float(arr[seed])  # type: ignore[operator]
    inside = arr >= lo
    if upper_suv is not None:
        inside &= arr <= upper_suv
    if not inside[seed]:
        return np.zeros(grid.shape, dtype=bool)
    return flood(inside, seed, connectivity=CONNECTIVITIES[connectivity])
