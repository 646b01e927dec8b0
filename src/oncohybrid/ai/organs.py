"""PERCIST reference VOI centres from an AI model's organ labels (issue #18).

PERCIST 1.0 (Wahl, Jacene, Kasamon, Lodge; J Nucl Med 2009;50 Suppl 1:122S-150S,
Appendix) places the liver reference as a 3 cm sphere in the normal right lobe and the
blood-pool reference as a 1 cm × 2 cm cylinder (axis head-foot) in the descending thoracic
aorta. When a segmentation model labelled the liver or the aorta, the VOIs are placed
inside those labels here instead of by the image heuristics of
:mod:`oncohybrid.quant.references` (which need CT anatomy proofs):

- **liver**: the label's deepest point (maximum of the Euclidean distance transform in mm,
  the region border counting as outside). The deepest point of a whole-liver label lies in
  the bulk of the right lobe, which is much thicker than the left; ``fits`` says whether
  the 15 mm radius sphere lies wholly inside the label.
- **aorta / blood pool**: the voxels where the whole cylinder fits inside the label (in-plane
  depth ≥ 5 mm, and ≥ 10 mm of label above and below). A whole-aorta label (TotalSegmentator
  ``aorta``: root, arch, descending thoracic and abdominal aorta) is restricted to its upper
  half head-to-foot (the thoracic part) and, on slices cut twice (ascending and descending),
  to the posterior cut (LPS +y); labels named descending/thoracic aorta or blood pool are
  used whole. The centre is the middle slice of those candidates, at that slice's in-plane
  deepest candidate point.

Plain functions over a boolean mask on a :class:`~oncohybrid.segment.grid.VoxelGrid`;
nothing is read or stored here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.errors import GeometryError
from oncohybrid.segment.grid import VoxelGrid, image_grid

__all__ = ["ORGAN_REGIONS", "OrganVoi", "blood_pool_centre", "label_role", "liver_centre"]

#: PERCIST sizes (mm), the same as :mod:`oncohybrid.quant.references`.
LIVER_RADIUS_MM = 15.0
BLOOD_POOL_RADIUS_MM = 5.0
BLOOD_POOL_HALF_LENGTH_MM = 10.0

#: Reference regions an organ label can place, by the assess parameter's key.
ORGAN_REGIONS = ("liver", "blood_pool")

_LESION_WORDS = ("lesion", "tumor", "tumour", "metast", "node", "cancer", "malignan")


def label_role(name: str) -> str | None:
    """What a model label is for the record: ``"lesion"``, ``"liver"``, ``"blood_pool"``
    (any aorta label or "blood pool"), or None (an organ the record does not use).

    >>> [label_role(n) for n in ("liver", "aorta_descending", "Lesion", "spleen")]
    ['liver', 'blood_pool', 'lesion', None]
    """
    lowered = name.lower().replace("_", " ").replace("-", " ")
    if any(w in lowered for w in _LESION_WORDS):
        return "lesion"
    if "liver" in lowered or "hepat" in lowered:
        return "liver"
    if "aorta" in lowered or "blood pool" in lowered or "bloodpool" in lowered:
        return "blood_pool"
    return None


def _whole_aorta(name: str) -> bool:
    """A label of the whole aorta (not only its descending/thoracic part or a blood pool)."""
    lowered = name.lower()
    return not any(w in lowered for w in ("desc", "thorac", "blood", "pool"))


@dataclass(frozen=True)
class OrganVoi:
    """Where a reference VOI goes inside an organ label, and why."""

    region: str  # "liver" | "blood_pool"
    centre_lps_mm: tuple[float, float, float]
    #: smallest distance (mm) from the centre to the label's border, in-plane for the aorta
    depth_mm: float
    #: the whole PERCIST VOI lies inside the label
    fits: bool
    label: str

    def provenance(self, model: str) -> str:
        what = "liver VOI" if self.region == "liver" else "blood-pool VOI"
        fit = "fits inside it" if self.fits else "does NOT fit wholly inside it"
        return (f"{what} from AI organ label '{self.label}' (model {model}): centre at depth "
                f"{self.depth_mm:.0f} mm, the PERCIST VOI {fit}")


def _axial_axis(grid: VoxelGrid) -> int:
    dirs = grid.affine[:3, :3] / np.asarray(grid.spacing_mm)
    return int(np.argmax(np.abs(dirs[2, :])))


def _crop(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask's bounding box padded by one voxel (the border counts as outside) and the
    index offset of the crop's first voxel."""
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    lo = np.array([b.start for b in box]) - 1
    return np.pad(mask[box], 1), lo


def liver_centre(mask: Any, *, label: str = "liver", spacing_mm: Any = None,
                 affine: Any = None) -> OrganVoi:
    """Centre of the PERCIST liver sphere inside a liver label (module docstring).

    >>> import numpy as np
    >>> m = np.zeros((20, 40, 40), bool); m[2:18, 5:35, 5:35] = True
    >>> voi = liver_centre(m, spacing_mm=(4.0, 2.0, 2.0))
    >>> voi.fits, voi.depth_mm >= 15
    (True, True)
    """
    arr, grid = image_grid(mask, spacing_mm, affine)
    m = np.asarray(arr) > 0
    if not m.any():
        raise GeometryError(f"AI organ label '{label}' is empty: no liver VOI can be placed")
    sub, lo = _crop(m)
    dist = ndimage.distance_transform_edt(sub, sampling=grid.spacing_mm)
    k = np.unravel_index(int(np.argmax(dist)), dist.shape)
    idx = np.asarray(k, dtype=np.float64) + lo
    depth = float(dist[k])
    centre = grid.index_to_lps(idx)
    return OrganVoi("liver", (float(centre[0]), float(centre[1]), float(centre[2])), depth,
                    depth >= LIVER_RADIUS_MM, label)


def blood_pool_centre(mask: Any, *, label: str = "aorta", spacing_mm: Any = None,
                      affine: Any = None) -> OrganVoi:
    """Centre of the PERCIST blood-pool cylinder inside an aorta label (module docstring).

    >>> import numpy as np
    >>> m = np.zeros((40, 30, 30), bool); m[:, 10:20, 10:20] = True   # a vertical tube
    >>> voi = blood_pool_centre(m, label="aorta_descending", spacing_mm=(2.0, 1.5, 1.5))
    >>> voi.fits
    True
    """
    arr, grid = image_grid(mask, spacing_mm, affine)
    m = np.asarray(arr) > 0
    if not m.any():
        raise GeometryError(f"AI organ label '{label}' is empty: no blood-pool VOI can be placed")
    ax = _axial_axis(grid)
    sp = np.asarray(grid.spacing_mm)
    # slices along the head-foot axis, in-plane axes in their order
    mz = np.moveaxis(m, ax, 0)
    plane_sp = tuple(float(s) for i, s in enumerate(sp) if i != ax)
    z_lps = grid.index_to_lps(np.stack([np.eye(3)[ax] * k for k in range(mz.shape[0])]))[:, 2]
    # the posterior (LPS +y) in-plane direction, per in-plane array axis
    plane_axes = [i for i in range(3) if i != ax]
    y_per_index = np.array([grid.affine[1, i] for i in plane_axes])
    depth = np.zeros(mz.shape, np.float32)
    keep = np.zeros(mz.shape, bool)
    slices = np.flatnonzero(mz.reshape(mz.shape[0], -1).any(axis=1))
    whole = _whole_aorta(label)
    top, bottom = z_lps[slices].max(), z_lps[slices].min()
    for k in slices:
        if whole and z_lps[k] < (top + bottom) / 2:  # the thoracic (upper) half only
            continue
        lab, n = ndimage.label(mz[k])
        if n == 0:
            continue
        if whole and n > 1:
            # ascending and descending aorta cut on one slice: the posterior one
            coms = ndimage.center_of_mass(mz[k], lab, range(1, n + 1))
            ys = [float(np.dot(y_per_index, c)) for c in coms]
            part = lab == (int(np.argmax(ys)) + 1)
        else:
            part = lab > 0
        depth[k] = ndimage.distance_transform_edt(np.pad(part, 1), sampling=plane_sp)[1:-1, 1:-1]
        keep[k] = part
    # the cylinder fits where the in-plane depth reaches its radius on every slice within
    # half its length above and below
    half = int(np.ceil(BLOOD_POOL_HALF_LENGTH_MM / sp[ax] - 1e-6))
    fits_plane = depth >= BLOOD_POOL_RADIUS_MM
    along = ndimage.minimum_filter1d(fits_plane.astype(np.uint8), size=2 * half + 1, axis=0,
                                     mode="constant", cval=0) > 0
    cand = along & keep
    fits = bool(cand.any())
    if not fits:  # nothing fits wholly: the deepest voxel of the kept parts
        cand = keep if keep.any() else mz
    ks = np.flatnonzero(cand.reshape(cand.shape[0], -1).any(axis=1))
    k = int(ks[len(ks) // 2])
    d = np.where(cand[k], depth[k], -1.0)
    ij = np.unravel_index(int(np.argmax(d)), d.shape)
    idx = np.zeros(3)
    idx[ax] = k
    idx[plane_axes[0]], idx[plane_axes[1]] = ij
    centre = grid.index_to_lps(idx)
    return OrganVoi("blood_pool", (float(centre[0]), float(centre[1]), float(centre[2])),
                    float(depth[k][ij]), fits, label)
