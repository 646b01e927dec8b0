"""The CT extent, site and CT confirmation of a lesion PET located.

RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009) and Lugano (Cheson et al., J Clin
Oncol 2014) measure on CT: the PET mask only locates the lesion, its CT extent is found
by a band threshold between the lesion core's CT number and the surrounding ring's
(docs/record.md, "CT measurement"). The site is guessed from the ring's CT number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from oncohybrid.errors import GeometryError

__all__ = ["CTExtent", "CTRules", "ct_confirms", "ct_extent", "guess_site"]


@dataclass(frozen=True)
class CTRules:
    """Parameters of the CT rules (assess's defaults; docs/record.md)."""

    #: search region: the PET mask dilated by this much
    margin_mm: float = 10.0
    #: core-ring contrast below which the PET mask is kept on CT
    min_contrast_hu: float = 15.0
    #: the band reaches at most this far past the core on the side away from the ring
    max_band_hu: float = 100.0
    #: largest CT lesion that may confirm a faint PET focus or be detected on CT alone
    max_confirm_volume_ml: float = 30.0


class CTExtent(NamedTuple):
    """A lesion on CT: mask (uint8 ``highdicom.Volume`` on a CT sub-grid), measurement
    (:class:`oncohybrid.quant.ct.CTMeasurement`), site, nodal, and the method record."""

    mask: Any
    measurement: Any
    site: str
    nodal: bool
    method: dict[str, Any]


def guess_site(ring_hu: float) -> tuple[str, bool]:
    """Organ guessed from the median CT number around a lesion (docs/record.md).

    Air-filled lung below −400 HU, bone above 250 HU, fat (a lymph node's surrounding)
    below −30 HU, liver parenchyma 52-120 HU; else soft tissue.

    >>> guess_site(-800.0), guess_site(-100.0), guess_site(60.0)
    (('lung', False), ('lymph node', True), ('liver', False))
    """
    if ring_hu < -400:
        return "lung", False
    if ring_hu > 250:
        return "bone", False
    if ring_hu < -30:
        return "lymph node", True  # surrounded by fat
    if 52 <= ring_hu <= 120:
        return "liver", False
    return "soft tissue", False


def ct_extent(pet_mask: Any, ct: Any, centroid_lps_mm: Sequence[float],
              rules: CTRules | None = None) -> CTExtent:
    """CT mask, measurement, site and method of one PET lesion (mask: Volume on PET grid).

    The PET mask (resampled to CT, nearest) only locates the lesion: its CT extent is
    the connected set of voxels whose smoothed CT number is closer to the lesion core's
    median than to the surrounding ring's (a band of at most ±``max_band_hu``),
    inside the PET mask dilated by ``margin_mm``. Lesions without CT contrast keep
    the PET mask. Raises :class:`GeometryError` when the lesion lies outside the CT.
    """
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.quant.ct import measure_ct_lesion

    r = rules or CTRules()
    idx = np.argwhere(pet_mask.array > 0)
    lo, hi = idx.min(0) - 0.5, idx.max(0) + 0.5
    corners = np.array([[a, b, c, 1.0] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])])
    lps = corners @ pet_mask.affine.T
    ct_idx = lps @ np.linalg.inv(ct.affine).T
    margin_vox = np.ceil((r.margin_mm + 5.0) / np.asarray(ct.spacing)).astype(int)
    shape = np.asarray(ct.spatial_shape)
    a = np.maximum(np.floor(ct_idx[:, :3].min(0)).astype(int) - margin_vox, 0)
    b = np.minimum(np.ceil(ct_idx[:, :3].max(0)).astype(int) + margin_vox + 1, shape)
    if np.any(b <= a):
        raise GeometryError("lesion lies outside the CT field of view")
    sub = ct[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
    pm = resample_to(pet_mask, sub, interpolation="nearest").array > 0
    hu = sub.array.astype(np.float32)
    sp = np.asarray(sub.spacing, float)
    method: dict[str, Any] = {"method": "pet-located CT band threshold",
                              "parameters": {"margin_mm": r.margin_mm}}
    if not pm.any():
        raise GeometryError("lesion mask does not reach any CT voxel")
    dist_out = ndimage.distance_transform_edt(~pm, sampling=sp)
    dist_in = ndimage.distance_transform_edt(pm, sampling=sp)
    voi = dist_out <= r.margin_mm
    ring = (dist_out >= 3.0) & voi
    # Core: the PET-mask voxels within 3 mm in-plane of the PET centroid on its nearest
    # slice (a deeper-voxel rule fails for lesions only a few CT voxels wide).
    cidx = np.linalg.solve(sub.affine, np.append(centroid_lps_mm, 1.0))[:3]
    grid = np.indices(pm.shape, dtype=np.float32)
    d2 = sum(((grid[i] - cidx[i]) * sp[i]) ** 2 for i in (1, 2))
    core = pm & (np.abs(grid[0] - cidx[0]) <= 0.5) & (d2 <= 9.0)
    if core.sum() < 3:
        core = dist_in >= 0.5 * dist_in.max()
    smooth = ndimage.gaussian_filter(hu, [0.0 if sp[0] >= 3 else 0.5, 1.0, 1.0])
    mask = pm
    if ring.any() and core.any():
        core_hu = float(np.median(smooth[core]))
        ring_hu = float(np.median(hu[ring]))
        site, nodal = guess_site(ring_hu)
        contrast = abs(core_hu - ring_hu)
        method["parameters"].update(core_hu=round(core_hu, 1), ring_hu=round(ring_hu, 1))
        if contrast >= r.min_contrast_hu:
            # Edge at the midpoint towards the ring (unbiased on a smoothed step); on the
            # other side at most max_band_hu, so a third tissue (soft tissue beside a
            # bone lesion) is not taken in.
            mid = 0.5 * (core_hu + ring_hu)
            if ring_hu < core_hu:
                cand = (smooth >= mid) & (smooth <= core_hu + r.max_band_hu)
            else:
                cand = (smooth <= mid) & (smooth >= core_hu - r.max_band_hu)
            # A distinct lesion is surrounded by other tissue: its band component does not
            # run out of the search region (organ edges, vessels and bowel do).
            lab_all, _n = ndimage.label(cand)
            own = np.unique(lab_all[core & cand])
            own = own[own > 0]
            enclosed = bool(own.size) and not np.any(np.isin(lab_all, own) & ~voi)
            cand &= voi
            band = contrast / 2.0
            lab, n = ndimage.label(cand)
            hits = np.unique(lab[core & cand])
            hits = hits[hits > 0]
            if hits.size:
                refined = ndimage.binary_fill_holes(np.isin(lab, hits))
                if refined.sum() >= 2:
                    mask = refined
                    method["parameters"]["band_hu"] = round(band, 1)
                    method["parameters"]["enclosed"] = enclosed
        else:
            method = {"method": "PET mask on CT (no CT contrast)",
                      "parameters": {"core_hu": round(core_hu, 1), "ring_hu": round(ring_hu, 1)}}
    else:
        site, nodal = "soft tissue", False
    mvol = sub.with_array(mask.astype(np.uint8))
    meas = measure_ct_lesion(mvol, hu=hu)
    return CTExtent(mvol, meas, site, nodal, method)


def ct_confirms(method: dict[str, Any], meas: Any, rules: CTRules | None = None) -> bool:
    """True when the CT shows a distinct lesion for a faint PET focus (second tier).

    The CT band rule of :func:`ct_extent` must have found a component (``band_hu``) that
    is enclosed by other tissue (``enclosed``: it does not run out of the search region,
    as organ edges, vessels and bowel do) and is not larger than
    ``max_confirm_volume_ml``.

    >>> from types import SimpleNamespace
    >>> m = {"method": "pet-located CT band threshold",
    ...      "parameters": {"band_hu": 40.0, "enclosed": True}}
    >>> ct_confirms(m, SimpleNamespace(volume_ml=2.0)), ct_confirms(m, None)
    (True, False)
    """
    r = rules or CTRules()
    prm = method.get("parameters", {})
    return (method.get("method", "").startswith("pet-located") and "band_hu" in prm
            and bool(prm.get("enclosed")) and meas is not None
            and meas.volume_ml <= r.max_confirm_volume_ml)
