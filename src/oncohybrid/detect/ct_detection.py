"""Lesions found on CT where PET found none: the third detection tier and re-detection.

RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009) and Lugano (Cheson et al., J Clin
Oncol 2014) measure on CT, and a ~10 mm lesion blurred by the PET resolution can fall
below every PET threshold. :func:`detect_on_ct` finds compact FDG-avid lesions enclosed
in lung, bone or fat; :func:`redetect_on_ct` looks for a tracked lesion where
registration predicts it (docs/record.md, "CT detection").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.detect.ct_lesions import CTRules
from oncohybrid.detect.pvc import apply_pvc
from oncohybrid.segment.components import bounding_box as _true_box
from oncohybrid.tracking.course import DetectedLesion, TimepointAnalysis

__all__ = ["CT_SEARCH", "CTDetectionRules", "detect_on_ct", "redetect_on_ct"]

#: CT-number windows of the tissues a lesion is looked for in (third tier) and the lesion
#: band inside each: (site, nodal, tissue HU range, lesion HU range). Soft-tissue lesions
#: in lung and fat, lytic lesions in bone (docs/record.md, "CT detection").
CT_SEARCH: tuple[tuple[str, bool, tuple[float, float], tuple[float, float]], ...] = (
    ("lung", False, (-1100.0, -400.0), (-300.0, 200.0)),
    ("bone", False, (450.0, 3000.0), (100.0, 450.0)),
    ("lymph node", True, (-200.0, -50.0), (0.0, 150.0)),
)


@dataclass(frozen=True)
class CTDetectionRules:
    """Third-tier thresholds (assess's defaults; docs/record.md)."""

    min_volume_ml: float = 0.2
    #: PET SUVmax at least this x liver SUVmean ...
    min_x_liver: float = 1.0
    #: ... and this x the PET median in a shell 2-4 voxels around the candidate
    min_x_background: float = 1.5


def _grown(box: tuple[slice, ...] | None, by: int, shape: tuple[int, ...]
           ) -> tuple[slice, ...]:
    """``box`` widened by ``by`` voxels on every side, clipped to ``shape``."""
    if box is None:
        return tuple(slice(0, 0) for _ in shape)
    return tuple(slice(max(b.start - by, 0), min(b.stop + by, n))
                 for b, n in zip(box, shape, strict=True))


def _boxes_of(lab: np.ndarray, wanted: np.ndarray) -> list[tuple[int, tuple[slice, ...]]]:
    """``(label, find_objects box)`` of every label ``i`` with ``wanted[i]``, ascending."""
    ids = np.flatnonzero(wanted)
    if ids.size == 0:
        return []
    flat = lab.ravel()
    hits = np.flatnonzero(wanted[flat])
    at = flat[hits]
    where = np.unravel_index(hits, lab.shape)
    out = []
    for i in ids.tolist():
        sel = at == i
        out.append((i, tuple(slice(int(w[sel].min()), int(w[sel].max()) + 1) for w in where)))
    return out


#: Connects voxels only within an axial slice (4-neighbourhood).
_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def _in_plane_holes(tissue: np.ndarray) -> np.ndarray:
    """In-plane holes of ``tissue``: the voxels of its complement that do not reach their
    axial slice's border within the slice (4-connected); one labelling pass instead of
    per-slice hole filling.

    Only the tissue's bounding box, grown by one voxel in-plane, is labelled (#11): a
    voxel outside that box reaches the border in a straight line through non-tissue, so
    a voxel inside reaches the slice border iff it reaches the grown box's border (the
    ring is non-tissue or the slice border itself). Slices without tissue have no holes.
    """
    holes = np.zeros(tissue.shape, bool)
    box = _true_box(tissue)
    if box is None:
        return holes
    box = (box[0], *_grown(box, 1, tissue.shape)[1:])
    rest, n_rest = ndimage.label(~tissue[box], structure=_IN_PLANE)
    edge = np.unique(np.concatenate([rest[:, 0, :].ravel(), rest[:, -1, :].ravel(),
                                     rest[:, :, 0].ravel(), rest[:, :, -1].ravel()]))
    open_ = np.zeros(n_rest + 1, bool)
    open_[edge] = True
    open_[0] = True  # the tissue itself
    holes[box] = ~open_[rest]
    return holes


def _enclosed_components(band: np.ndarray, holes: np.ndarray,
                         keep: Callable[[np.ndarray], np.ndarray]
                         ) -> list[tuple[tuple[slice, ...], np.ndarray]]:
    """``(box, mask in box)`` of each 3-D component of ``band`` (``ndimage.label``'s
    6-connectivity) lying wholly in ``holes`` whose voxel count passes ``keep`` (counts ->
    bools), in the order ``ndimage.label(band)`` numbers them.

    Such a component is a component of ``band & holes`` with no 6-neighbour in ``band``
    outside ``holes``, so only ``band & holes`` is labelled and counted (#11: far fewer
    voxels than the band). Same order: ``ndimage.label`` numbers components by their
    first voxel in C order, and a wholly enclosed component has the same voxels in both.
    """
    inner = band & holes
    # Labelled inside its bounding box: ndimage.label's cost is mostly the scan of the
    # array; same components in the same C order there.
    near = _true_box(inner)
    if near is None:
        return []
    inner = inner[near]
    local, n = ndimage.label(inner)
    count = np.bincount(local[inner], minlength=n + 1)
    want = np.asarray(keep(count), bool)
    want[0] = False
    if not want.any():
        return []
    lab = np.zeros(band.shape, local.dtype)
    lab[near] = local
    out = []
    for i, local_box in _boxes_of(local, want):
        box = tuple(slice(b.start + c.start, b.stop + c.start)
                    for b, c in zip(local_box, near, strict=True))
        grown = _grown(box, 1, band.shape)
        comp = lab[grown] == i
        if np.any(ndimage.binary_dilation(comp) & band[grown] & ~holes[grown]):
            continue  # part of a larger band component reaching outside the holes
        within = tuple(slice(b.start - g.start, b.stop - g.start)
                       for b, g in zip(box, grown, strict=True))
        out.append((box, comp[within]))
    return out


def detect_on_ct(ct: Any, pet: Any, lesions: Sequence[DetectedLesion], liver_suv: float | None,
                 sul_per_suv: float | None, rules: CTDetectionRules | None = None,
                 ct_rules: CTRules | None = None, *,
                 pvc_fwhm_mm: float | None = None) -> list[DetectedLesion]:
    """Lesions visible on CT that PET detection missed (third tier; docs/record.md).

    Inside the body's bounding box (CT > −500 HU), in each tissue of :data:`CT_SEARCH`
    (CT smoothed with σ = 1 pixel in-plane) the 3-D connected regions of the lesion band
    that lie wholly in holes the tissue encloses in-plane are candidates, between
    ``min_volume_ml`` and ``ct_rules.max_confirm_volume_ml`` (vessels and organs are
    larger or not enclosed). A candidate overlapping a lesion found already is skipped;
    one is kept only when its PET SUVmax reaches ``min_x_liver`` × liver SUVmean and
    ``min_x_background`` × the PET median in a shell 2–4 voxels around it (FDG-avid, not a
    CT-only structure). Labels continue ``c{n}`` after ``lesions``.
    """
    from oncohybrid.imaging.resample import gaussian_filter, resample_to
    from oncohybrid.quant.ct import measure_ct_lesion
    from oncohybrid.quant.pet import lesion_metrics

    r = rules or CTDetectionRules()
    cr = ct_rules or CTRules()
    if liver_suv is None or liver_suv <= 0:
        return []
    # Work inside the body's bounding box (air around it holds no lesion; halves the cost).
    box0 = _true_box(ct.array > -500)
    if box0 is None:
        return []
    ct = ct[box0]
    hu = ct.array.astype(np.float32)
    sp = np.asarray(ct.spacing, float)
    smooth = gaussian_filter(hu, [0.0, 1.0, 1.0])  # scipy's, bit for bit (#11)
    shape = np.asarray(hu.shape)
    taken = np.zeros(hu.shape, bool)
    for les in lesions:  # CT masks live on sub-grids of this CT: paste them (dilated)
        if les.ct_mask is None:
            continue
        off = np.rint(np.linalg.solve(ct.affine, les.ct_mask.affine[:, 3])[:3]).astype(int)
        m = np.pad(les.ct_mask.array > 0, 2)
        m = ndimage.binary_dilation(m, iterations=2)
        lo = off - 2
        a, b = np.maximum(lo, 0), np.minimum(lo + np.asarray(m.shape), shape)
        if np.any(b <= a):
            continue
        taken[a[0]:b[0], a[1]:b[1], a[2]:b[2]] |= m[a[0] - lo[0]:b[0] - lo[0],
                                                    a[1] - lo[1]:b[1] - lo[1],
                                                    a[2] - lo[2]:b[2] - lo[2]]
    vox_ml = float(np.prod(sp)) / 1000.0
    found: list[DetectedLesion] = []
    for site, nodal, (t_lo, t_hi), (l_lo, l_hi) in CT_SEARCH:
        tissue = (smooth >= t_lo) & (smooth <= t_hi)
        holes = _in_plane_holes(tissue)
        # Candidates: 3-D components of the lesion band lying wholly in such holes (an
        # organ seen in-plane through the lung base, e.g. the liver dome, connects in 3-D
        # to the rest of the organ and is not wholly enclosed).
        band = ~tissue & (smooth >= l_lo) & (smooth <= l_hi)
        def size_ok(count: np.ndarray) -> np.ndarray:  # the same int64 count x vox_ml
            ml = count * vox_ml
            return (r.min_volume_ml <= ml) & (ml <= cr.max_confirm_volume_ml)

        for box, comp in _enclosed_components(band, holes, size_ok):
            if np.any(taken[box][comp]):
                continue
            pad = [max(2, int(math.ceil(8.0 / s))) for s in sp]
            a = [max(b.start - d, 0) for b, d in zip(box, pad, strict=True)]
            b = [min(b.stop + d, n_) for b, d, n_ in zip(box, pad, hu.shape, strict=True)]
            sub = ct[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
            mask = np.zeros(sub.spatial_shape, bool)
            inner = tuple(slice(bx.start - lo, bx.stop - lo) for bx, lo in zip(box, a, strict=True))
            mask[inner] = comp
            mvol = sub.with_array(mask.astype(np.uint8))
            on_pet = resample_to(mvol, pet, interpolation="nearest").array > 0
            if not on_pet.any():
                continue
            # The shell lies within 4 voxels of on_pet: dilating inside its bounding box + 4
            # gives the same voxels (nothing outside is set), in the same C order.
            pet_box = _true_box(on_pet)  # == find_objects of on_pet's single label
            near = _grown(pet_box, 4, on_pet.shape)
            pet_near = on_pet[near]
            outer = ndimage.binary_dilation(pet_near, iterations=4)
            shell = outer & ~ndimage.binary_dilation(pet_near, iterations=2)
            bg = float(np.median(pet.array[near][shell])) if shell.any() else 0.0
            met = lesion_metrics(pet, on_pet.astype(np.int32), sul_per_suv=sul_per_suv,
                                 boxes=[pet_box])[0]
            if met.suv_max < r.min_x_liver * liver_suv \
                    or met.suv_max < r.min_x_background * bg:
                continue
            sub_hu = sub.array.astype(np.float32)
            ring = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_dilation(mask)
            core_hu = float(np.median(sub_hu[mask]))
            ring_hu = float(np.median(sub_hu[ring])) if ring.any() else float("nan")
            meas = measure_ct_lesion(mvol, hu=sub_hu)
            method = {"method": f"CT detection in {site} (not found on PET)",
                      "parameters": {"core_hu": round(core_hu, 1), "ring_hu": round(ring_hu, 1),
                                     "pet_background_suv": round(bg, 3)}}
            det = DetectedLesion(f"c{len(lesions) + len(found) + 1}", met, meas, mvol, site,
                                 nodal, method,
                                 pet_mask=pet.with_array(on_pet.astype(np.uint8)))
            if pvc_fwhm_mm:
                apply_pvc(det, pet, on_pet, sul_per_suv, pvc_fwhm_mm)
            found.append(det)
            taken[box] |= comp
    return found


def redetect_on_ct(analysis: TimepointAnalysis, previous: DetectedLesion,
                   predicted_lps_mm: Sequence[float], label: str,
                   ct_rules: CTRules | None = None, *,
                   pvc_fwhm_mm: float | None = None) -> DetectedLesion | None:
    """Look for a tracked lesion on CT where registration predicts it (PET found nothing).

    RECIST and Lugano measure on CT: a lesion that shrank below PET detectability is
    still present on CT. Around the predicted centre (within ``margin_mm`` + the
    previous radius) the CT band rule of the previous measurement (its core and ring CT
    numbers) is applied; the connected component nearest the prediction (≤ 10 mm away,
    ≥ 5 voxels, at most twice the previous CT volume + 0.5 ml) is the lesion. Its PET
    metrics are computed inside that CT mask. None when nothing qualifies (the lesion
    is absent).
    """
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.quant.ct import measure_ct_lesion
    from oncohybrid.quant.pet import lesion_metrics

    cr = ct_rules or CTRules()
    prm = previous.ct_method.get("parameters", {})
    if previous.ct is None or "core_hu" not in prm or "ring_hu" not in prm \
            or not previous.ct_method.get("method", "").startswith(("pet-located", "CT detection")):
        return None
    core_hu, ring_hu = float(prm["core_hu"]), float(prm["ring_hu"])
    ct = analysis.ct
    reach = previous.ct.ld_mm / 2.0 + cr.margin_mm
    c_idx = np.linalg.solve(ct.affine, np.append(np.asarray(predicted_lps_mm, float), 1.0))[:3]
    half = np.ceil(reach / np.asarray(ct.spacing)).astype(int) + 1
    a = np.maximum(np.floor(c_idx).astype(int) - half, 0)
    b = np.minimum(np.ceil(c_idx).astype(int) + half + 1, np.asarray(ct.spatial_shape))
    if np.any(b <= a):
        return None
    sub = ct[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
    hu = sub.array.astype(np.float32)
    sp = np.asarray(sub.spacing, float)
    smooth = ndimage.gaussian_filter(hu, [0.0 if sp[0] >= 3 else 0.5, 1.0, 1.0])
    mid = 0.5 * (core_hu + ring_hu)
    if ring_hu < core_hu:
        cand = (smooth >= mid) & (smooth <= core_hu + cr.max_band_hu)
    else:
        cand = (smooth <= mid) & (smooth >= core_hu - cr.max_band_hu)
    grid = np.indices(hu.shape, dtype=np.float32)
    local = c_idx - a
    dist = np.sqrt(sum(((grid[i] - local[i]) * sp[i]) ** 2 for i in range(3)))
    lab, n = ndimage.label(cand & (dist <= reach))
    if n == 0:
        return None
    best = None
    for i in range(1, n + 1):
        comp = lab == i
        d = float(dist[comp].min())
        if d <= 10.0 and (best is None or d < best[0]):
            best = (d, comp)
    if best is None:
        return None
    mask = ndimage.binary_fill_holes(best[1])
    vox_ml = float(np.prod(sp)) / 1000.0
    if mask.sum() < 5 or mask.sum() * vox_ml > 2 * previous.ct.volume_ml + 0.5:
        return None
    mvol = sub.with_array(mask.astype(np.uint8))
    meas = measure_ct_lesion(mvol, hu=hu)
    pet = analysis.pet
    on_pet = resample_to(mvol, pet, interpolation="nearest").array > 0
    if not on_pet.any():
        centre = np.rint(np.linalg.solve(pet.affine, np.append(
            np.asarray(predicted_lps_mm, float), 1.0))[:3]).astype(int)
        centre = np.clip(centre, 0, np.asarray(pet.spatial_shape) - 1)
        on_pet[tuple(centre)] = True
    labels = on_pet.astype(np.int32)
    met = lesion_metrics(pet, labels, sul_per_suv=analysis.sul_per_suv)[0]
    method = {"method": "CT re-detection at the registered position (not found on PET)",
              "parameters": {"core_hu": core_hu, "ring_hu": ring_hu, "reach_mm": round(reach, 1),
                             "offset_mm": round(best[0], 1)}}
    det = DetectedLesion(label, met, meas, mvol, previous.site, previous.nodal, method,
                         pet_mask=pet.with_array(labels.astype(np.uint8)))
    if pvc_fwhm_mm:
        apply_pvc(det, pet, on_pet, analysis.sul_per_suv, pvc_fwhm_mm)
    return det
