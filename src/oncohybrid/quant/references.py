"""PERCIST reference regions (liver sphere, mediastinal blood pool) and measurability threshold.

PERCIST 1.0 (Wahl, Jacene, Kasamon, Lodge; J Nucl Med 2009;50:122S-150S, Appendix):

- Liver: 3 cm diameter spherical VOI in the normal right lobe; report SULmean and SD.
- Blood pool (when the liver is abnormal): 1 cm diameter x 2 cm long cylinder in the
  descending thoracic aorta (axis along the patient's head-foot axis).
- Minimum measurable tumour SULpeak: 1.5 x liver SULmean + 2 x SD(liver), or with the
  blood pool 2.0 x blood-pool SULmean + 2 x SD(blood pool).

Automatic placement is a documented heuristic (``docs/pet-metrics.md``); a manual centre
always overrides it. Voxels belong to a reference VOI when their centre lies inside it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from oncohybrid.errors import GeometryError, InputError
from oncohybrid.segment.grid import VoxelGrid, check_same_grid, image_grid

LIVER_DIAMETER_MM = 30.0
BLOOD_POOL_DIAMETER_MM = 10.0
BLOOD_POOL_LENGTH_MM = 20.0
#: a blood-pool candidate with more uptake than this times the slice's median body uptake
#: is a tumour (blood pool ≈ 2-3.5 x the body median of muscle, fat and lung)
HOT_X_BODY = 5.0
#: the descending aorta's centre lies within this distance of the vertebral body's centre
AORTA_MAX_FROM_SPINE_MM = 50.0


@dataclass(frozen=True)
class ReferenceRegion:
    """A reference VOI and its SUV/SUL statistics."""

    name: str
    shape: str
    centre_lps_mm: tuple[float, float, float]
    placement: str
    n_voxels: int
    volume_ml: float
    suv_mean: float
    suv_sd: float
    sul_mean: float | None
    sul_sd: float | None
    inside_image: bool
    notes: tuple[str, ...] = ()
    #: anatomical checks the automatic placement passed (CT; :func:`prove_liver_voi`,
    #: :func:`prove_blood_pool_voi`); empty for a reader-placed (manual) centre
    anatomy_checks: tuple[str, ...] = ()

    @property
    def mean_sd_sul(self) -> tuple[float, float]:
        """(mean, SD) in SUL, or in SUV when no SUL/SUV ratio was given."""
        if self.sul_mean is not None and self.sul_sd is not None:
            return self.sul_mean, self.sul_sd
        return self.suv_mean, self.suv_sd

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["anatomy_checks"] = list(self.anatomy_checks)
        return d


@dataclass(frozen=True)
class PercistThreshold:
    """PERCIST minimum measurable SULpeak and the reference it came from."""

    reference: str
    threshold_sul: float
    threshold_suv: float
    formula: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# VOI masks and statistics
# ---------------------------------------------------------------------------------------


def _box_around(grid: VoxelGrid, centre_lps: np.ndarray, half_mm: float) -> tuple[slice, ...]:
    c = grid.lps_to_index(centre_lps)
    sp = np.asarray(grid.spacing_mm)
    lo = np.floor(c - half_mm / sp - 1).astype(int)
    hi = np.ceil(c + half_mm / sp + 2).astype(int)
    return tuple(
        slice(max(0, int(a)), min(n, int(b))) for a, b, n in zip(lo, hi, grid.shape, strict=True)
    )


def _voxel_lps(grid: VoxelGrid, box: tuple[slice, ...]) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij"), -1)
    return grid.index_to_lps(idx)


def sphere_mask(grid: VoxelGrid, centre_lps_mm: Sequence[float], diameter_mm: float) -> np.ndarray:
    """Boolean mask of voxels whose centre lies in the sphere."""
    c = np.asarray(centre_lps_mm, dtype=np.float64)
    box = _box_around(grid, c, diameter_mm / 2)
    mask = np.zeros(grid.shape, dtype=bool)
    if all(b.stop > b.start for b in box):
        d2 = np.sum((_voxel_lps(grid, box) - c) ** 2, axis=-1)
        mask[box] = d2 <= (diameter_mm / 2) ** 2
    return mask


def cylinder_mask(
    grid: VoxelGrid, centre_lps_mm: Sequence[float], diameter_mm: float, length_mm: float
) -> np.ndarray:
    """Voxels whose centre lies in a cylinder with its axis along LPS z (head-foot)."""
    c = np.asarray(centre_lps_mm, dtype=np.float64)
    box = _box_around(grid, c, max(diameter_mm, length_mm) / 2)
    mask = np.zeros(grid.shape, dtype=bool)
    if all(b.stop > b.start for b in box):
        d = _voxel_lps(grid, box) - c
        radial = d[..., 0] ** 2 + d[..., 1] ** 2 <= (diameter_mm / 2) ** 2
        mask[box] = radial & (np.abs(d[..., 2]) <= length_mm / 2)
    return mask


def _region(
    name: str,
    shape: str,
    arr: np.ndarray,
    grid: VoxelGrid,
    mask: np.ndarray,
    centre: np.ndarray,
    placement: str,
    inside: bool,
    sul_per_suv: float | None,
    notes: list[str],
    anatomy_checks: Sequence[str] = (),
) -> ReferenceRegion:
    vals = arr[mask].astype(np.float64)
    if vals.size < 2:
        raise GeometryError(
            f"{name} reference VOI at LPS {tuple(round(float(v), 1) for v in centre)} mm "
            f"contains {vals.size} voxel(s) of the image; place it inside the field of view"
        )
    mean, sd = float(vals.mean()), float(vals.std(ddof=1))
    return ReferenceRegion(
        name=name,
        shape=shape,
        centre_lps_mm=tuple(float(v) for v in centre),  # type: ignore[arg-type]
        placement=placement,
        n_voxels=int(vals.size),
        volume_ml=vals.size * grid.voxel_volume_ml,
        suv_mean=mean,
        suv_sd=sd,
        sul_mean=None if sul_per_suv is None else mean * sul_per_suv,
        sul_sd=None if sul_per_suv is None else sd * sul_per_suv,
        inside_image=inside,
        notes=tuple(notes),
        anatomy_checks=tuple(anatomy_checks),
    )


def _check_ratio(sul_per_suv: float | None) -> None:
    if sul_per_suv is not None and not sul_per_suv > 0:
        raise InputError(f"sul_per_suv must be positive, got {sul_per_suv}")


def _downsample(arr: np.ndarray, grid: VoxelGrid, target_mm: float) -> tuple[np.ndarray, VoxelGrid]:
    """Block-mean downsampling to about ``target_mm`` (speed of the placement heuristics).

    Reduces one axis at a time so that no full-size float temporary is made.
    """
    f = [max(1, int(target_mm // s)) for s in grid.spacing_mm]
    n = [s // k for s, k in zip(arr.shape, f, strict=True)]
    a = arr[: n[0] * f[0], : n[1] * f[1], : n[2] * f[2]]
    for axis in range(3):
        if f[axis] == 1:
            continue
        shp = list(a.shape)
        shp[axis : axis + 1] = [n[axis], f[axis]]
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        a = a.reshape(shp).sum(axis=axis + 1, dtype=np.float32)
    a = a.astype(np.float32, copy=False) / np.float32(np.prod(f))
    aff = grid.affine.copy()
    aff[:3, :3] = grid.affine[:3, :3] * np.asarray(f)
    # Block centre: index (f-1)/2 of the original grid.
    aff[:3, 3] = grid.index_to_lps((np.asarray(f) - 1) / 2.0)
    return a, VoxelGrid(shape=tuple(n), affine=aff)  # type: ignore[arg-type]


#: 3-D structure that connects pixels only within an axial slice (axis 0): the 2-D
#: cross (``generate_binary_structure(2, 1)``, the default of 2-D ``binary_fill_holes``)
#: in the middle plane.
_IN_SLICE = np.zeros((3, 3, 3), dtype=bool)
_IN_SLICE[1] = ndimage.generate_binary_structure(2, 1)


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """``binary_fill_holes`` of every axial slice (axis 0), identical to
    ``np.stack([binary_fill_holes(s) for s in mask])`` (#11: one labelling pass instead of
    an iterative dilation per slice).

    A background pixel stays background iff it is 4-connected (within its slice) through
    background to the slice's edge - exactly what the border-seeded dilation of
    ``binary_fill_holes`` (Soille, Morphological Image Analysis, 2003, ch. 6.3.7) reaches.
    The structure has no neighbours across slices, so no component crosses a slice.
    """
    mask = np.asarray(mask, dtype=bool)
    lab, n = ndimage.label(~mask, structure=_IN_SLICE)
    if n == 0:
        return np.ones(mask.shape, dtype=bool)
    edge = np.zeros(n + 1, dtype=bool)
    for side in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        edge[side] = True
    edge[0] = False  # label 0 = the mask itself
    return ~edge[lab]


#: Per-CT results shared by the reference placements and proofs of one timepoint (#11:
#: the body fill was computed three times per CT, the thorax twice): the last few CTs'
#: values (axial axis first, float32, a private read-only copy) with a dict of results.
#: Looked up by value, not identity, so a changed or different array is never served.
_PER_CT: list[tuple[np.ndarray, dict[Any, Any]]] = []
_PER_CT_LOCK = threading.Lock()
_PER_CT_SIZE = 3


def _per_ct(vol: np.ndarray) -> tuple[np.ndarray, dict[Any, Any]]:
    """(read-only copy of ``vol``, its results dict), shared by every equal ``vol``."""
    with _PER_CT_LOCK:
        for i, (key, memo) in enumerate(_PER_CT):
            if key.shape == vol.shape and np.array_equal(key, vol, equal_nan=True):
                _PER_CT.append(_PER_CT.pop(i))  # most recently used last
                return key, memo
        key = vol.copy()
        key.flags.writeable = False
        entry: tuple[np.ndarray, dict[Any, Any]] = (key, {})
        _PER_CT.append(entry)
        del _PER_CT[:-_PER_CT_SIZE]
        return entry


def _filled_body(vol: np.ndarray) -> np.ndarray:
    """``_fill_holes_per_slice(vol > -400)`` (hole-filled body per axial slice of the CT
    ``vol``, axial axis first), computed once per CT (read-only)."""
    _key, memo = _per_ct(vol)
    filled = memo.get("filled_body")
    if filled is None:
        filled = _fill_holes_per_slice(vol > -400.0)
        filled.flags.writeable = False
        memo["filled_body"] = filled
    return filled


def _axial_axis(grid: VoxelGrid) -> int:
    """Array axis closest to LPS z (head-foot); PET volumes are acquired axially."""
    dirs = grid.affine[:3, :3] / np.asarray(grid.spacing_mm)
    return int(np.argmax(np.abs(dirs[2, :])))


# ---------------------------------------------------------------------------------------
# Liver
# ---------------------------------------------------------------------------------------


def liver_reference(
    image: Any,
    *,
    ct: np.ndarray | Any | None = None,
    centre_lps_mm: Sequence[float] | None = None,
    sul_per_suv: float | None = None,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
    require_proof: bool = True,
) -> ReferenceRegion:
    """PERCIST liver reference: SUV/SUL mean and SD in a 3 cm sphere in the right lobe.

    ``centre_lps_mm`` (manual, a reader's placement) overrides the automatic placement.
    An automatic sphere must prove its anatomy on the CT (:func:`prove_liver_voi`: the
    field of view holds the thorax, the centre lies under the right hemidiaphragm in the
    right upper abdomen, liver CT numbers); otherwise, and always without a CT,
    :class:`UnprovenReferenceError` is raised and no VOI is placed (``require_proof=False``
    places it anyway, with the failed checks in ``notes``, which makes it unusable for
    the PERCIST threshold of the services). Automatic placement
    (heuristic, on a ~8 mm block-mean copy of the images):

    1. Candidate liver voxels: Gaussian-smoothed (sigma 6 mm) PET between 1.4x and 4.5x the
       median body SUV (liver is the large organ a little above soft-tissue background);
       with a CT on the PET grid also 20..100 HU after smoothing (soft tissue, no fat,
       lung or bone). Only the patient's right half (LPS x below the body centroid).
    2. Hot voxels (smoothed PET > 4.5x background: lesions, kidneys pelvis, bladder) are
       holes, so the sphere stays away from them.
    3. The largest connected candidate region is the liver; the centre is its deepest
       point (maximum of the Euclidean distance transform in mm), which in practice lies
       in the bulk of the right lobe. A note is added when the sphere does not fit.
    """
    arr, grid = image_grid(image, spacing_mm, affine)
    _check_ratio(sul_per_suv)
    notes: list[str] = []
    ct_arr = None
    if ct is not None:
        ct_arr = np.asarray(ct.array if hasattr(ct, "array") else ct)
        check_same_grid("CT (resample it to the PET grid first)", ct_arr, grid)
    if centre_lps_mm is not None:
        centre = np.asarray(centre_lps_mm, dtype=np.float64)
        if centre.shape != (3,):
            raise InputError(f"liver centre must be three LPS coordinates, got {centre_lps_mm}")
        placement = "manual"
        proof = AnatomyProof((), ())
    else:
        if ct_arr is None and require_proof:
            raise UnprovenReferenceError(
                "automatic liver VOI not placed: without a CT its anatomy (liver under the "
                "right hemidiaphragm) cannot be proven; give the CT or a reader-placed "
                "centre (--liver-centre)"
            )
        centre, fits, region_ml = _auto_liver(arr, grid, ct_arr)
        placement = "auto-ct" if ct_arr is not None else "auto-pet"
        proof = prove_liver_voi(ct_arr, grid, centre, region_ml=region_ml)
        if not proof.ok:
            why = "; ".join(proof.failures)
            where = tuple(round(float(v), 1) for v in centre)
            if require_proof:
                raise UnprovenReferenceError(
                    f"automatic liver VOI not placed: the candidate at LPS {where} mm is not "
                    f"proven to be liver ({why}); give a reader-placed centre (--liver-centre)"
                )
            notes.append(f"anatomy not proven: {why}")
        if not fits:
            notes.append("the 3 cm sphere does not fit inside the detected liver region")
    mask = sphere_mask(grid, centre, LIVER_DIAMETER_MM)
    inside = _fits_in_image(grid, centre, LIVER_DIAMETER_MM / 2)
    if not inside:
        notes.append("sphere extends beyond the field of view")
    return _region(
        "liver", "sphere 30 mm", arr, grid, mask, centre, placement, inside, sul_per_suv, notes,
        proof.checks,
    )


def _fits_in_image(grid: VoxelGrid, centre: np.ndarray, radius_mm: float) -> bool:
    c = grid.lps_to_index(centre)
    r = radius_mm / np.asarray(grid.spacing_mm)
    return bool(np.all(c - r >= -0.5) and np.all(c + r <= np.asarray(grid.shape) - 0.5))


def _body_right_half(small: np.ndarray, g: VoxelGrid, body: np.ndarray) -> np.ndarray:
    """Voxels on the patient's right (LPS x smaller than the body centroid's x)."""
    com = np.asarray(ndimage.center_of_mass(body))
    x_body = g.index_to_lps(com)[0]
    # LPS x is affine-linear in the indices: sum of three broadcast 1-D terms.
    a = g.affine
    x = (
        a[0, 0] * np.arange(small.shape[0])[:, None, None]
        + a[0, 1] * np.arange(small.shape[1])[None, :, None]
        + a[0, 2] * np.arange(small.shape[2])[None, None, :]
        + a[0, 3]
    )
    return x < x_body


def _auto_liver(arr: np.ndarray, grid: VoxelGrid, ct: np.ndarray | None
                ) -> tuple[np.ndarray, bool, float]:
    from oncohybrid.imaging.resample import gaussian_filter

    small, g = _downsample(arr, grid, 8.0)
    sp = np.asarray(g.spacing_mm)
    sm = gaussian_filter(small, 6.0 / sp)  # scipy's, bit for bit (#11)
    body = sm > 0.1 * float(np.percentile(sm[::2, ::2, ::2], 99.5))
    if not body.any():
        raise GeometryError("liver placement: the PET image has no body uptake; give a centre")
    bg = float(np.median(sm[body][::7]))
    cand = (sm >= 1.4 * bg) & (sm <= 4.5 * bg) & body
    if ct is not None:
        cts, _ = _downsample(ct, grid, 8.0)
        cts = gaussian_filter(cts, 3.0 / sp)
        cand &= (cts >= 20.0) & (cts <= 100.0)
    cand &= _body_right_half(small, g, body)
    lab, n = ndimage.label(cand)
    if n == 0:
        raise GeometryError(
            "liver placement: no liver-like region found on the patient's right; "
            "give the centre manually (--liver-centre X,Y,Z)"
        )
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    best = int(np.argmax(sizes))
    box = ndimage.find_objects(lab, max_label=best)[best - 1]
    liver = np.pad(lab[box] == best, 1)  # pad: the region border counts as outside
    dist = ndimage.distance_transform_edt(liver, sampling=sp)
    k = np.unravel_index(int(np.argmax(dist)), dist.shape)
    idx = np.asarray(k, dtype=np.float64) - 1 + [b.start for b in box]
    centre = g.index_to_lps(idx)
    return centre, bool(dist[k] >= LIVER_DIAMETER_MM / 2), float(sizes[best] * g.voxel_volume_ml)


# ---------------------------------------------------------------------------------------
# Blood pool
# ---------------------------------------------------------------------------------------


def blood_pool_reference(
    image: Any,
    *,
    ct: np.ndarray | Any | None = None,
    centre_lps_mm: Sequence[float] | None = None,
    sul_per_suv: float | None = None,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
    require_proof: bool = True,
) -> ReferenceRegion:
    """Mediastinal blood pool: 1 cm x 2 cm cylinder in the descending thoracic aorta.

    ``centre_lps_mm`` (manual) overrides. Automatic placement needs the CT (on the PET
    grid); the cylinder must prove its anatomy (:func:`prove_blood_pool_voi`: thorax,
    between the lungs, next to the spine, blood CT numbers) or
    :class:`UnprovenReferenceError` is raised (``require_proof=False``: placed with the
    failed checks in ``notes``). The placement is a heuristic:

    1. Thorax = axial slices whose lung area (CT < -500 HU inside the hole-filled body,
       CT > -400 HU) is at least half of the largest lung area.
    2. In each slice of the middle half of the thorax (all of it when that half is
       shorter than 4 cm), score every pixel by the fraction of soft tissue (-20..120 HU
       after 1 mm smoothing) in an 8 mm disk times the fraction of *non*-soft tissue (fat,
       lung) in a 16-22 mm ring around it: a vessel surrounded by mediastinal fat or lung
       scores high, the heart and chest wall low.
    3. Search the posterior-left mediastinum only: left of the body midline (LPS +x) by
       0-70 mm, no more than 10 mm in front of the body centre, in front of the vertebral
       body (bone > 200 HU within 40 mm of the midline) and within 50 mm of its centre.
       Every region scoring >= 0.3 is a candidate, except hot ones (PET above 5 x the
       slice's median body uptake: a tumour, never blood).
    4. The candidates that line up head to foot (within 10 mm in-plane) over the most
       slices are the aorta; the centre is the median of their best pixel per slice.
       (A round tumour in the medial lung scores like the aorta on CT in the slices it
       spans; a plain median over each slice's best pixel could land on it or between.)
    """
    arr, grid = image_grid(image, spacing_mm, affine)
    _check_ratio(sul_per_suv)
    notes: list[str] = []
    proof = AnatomyProof((), ())
    if centre_lps_mm is not None:
        centre = np.asarray(centre_lps_mm, dtype=np.float64)
        if centre.shape != (3,):
            raise InputError(
                f"blood-pool centre must be three LPS coordinates, got {centre_lps_mm}"
            )
        placement = "manual"
    else:
        if ct is None:
            raise InputError(
                "automatic blood-pool placement needs the CT; give --ct or a manual centre"
            )
        ct_arr = np.asarray(ct.array if hasattr(ct, "array") else ct)
        check_same_grid("CT (resample it to the PET grid first)", ct_arr, grid)
        centre = _auto_aorta(ct_arr, grid, arr)
        placement = "auto-ct"
        proof = prove_blood_pool_voi(ct_arr, grid, centre)
        if not proof.ok:
            why = "; ".join(proof.failures)
            where = tuple(round(float(v), 1) for v in centre)
            if require_proof:
                raise UnprovenReferenceError(
                    f"automatic blood-pool VOI not placed: the candidate at LPS {where} mm is "
                    f"not proven to be the descending aorta ({why}); give a reader-placed "
                    "centre (--blood-pool-centre)"
                )
            notes.append(f"anatomy not proven: {why}")
    mask = cylinder_mask(grid, centre, BLOOD_POOL_DIAMETER_MM, BLOOD_POOL_LENGTH_MM)
    inside = _fits_in_image(grid, centre, BLOOD_POOL_LENGTH_MM / 2)
    if not inside:
        notes.append("cylinder extends beyond the field of view")
    return _region(
        "blood_pool",
        "cylinder 10 mm x 20 mm (axis head-foot)",
        arr,
        grid,
        mask,
        centre,
        placement,
        inside,
        sul_per_suv,
        notes,
        proof.checks,
    )


def _disk(radius_mm: float, sp: np.ndarray, inner_mm: float = 0.0) -> np.ndarray:
    """2-D disk (or ring ``inner_mm < d <= radius_mm``) footprint in pixels."""
    h = [int(math.ceil(radius_mm / s)) for s in sp]
    yy, xx = np.meshgrid(
        *[np.arange(-n, n + 1) * s for n, s in zip(h, sp, strict=True)], indexing="ij"
    )
    d = np.hypot(yy, xx)
    return ((d <= radius_mm) & (d > inner_mm)).astype(np.float32)


def _auto_aorta(ct: np.ndarray, grid: VoxelGrid, pet: np.ndarray | None = None) -> np.ndarray:
    zaxis = _axial_axis(grid)
    vol = np.moveaxis(ct.astype(np.float32), zaxis, 0)
    pet_z = None if pet is None else np.moveaxis(np.asarray(pet, dtype=np.float32), zaxis, 0)
    perm = [zaxis] + [a for a in range(3) if a != zaxis]
    aff = grid.affine.copy()
    aff[:3, :3] = grid.affine[:3, perm]
    g = VoxelGrid(shape=vol.shape, affine=aff)  # type: ignore[arg-type]
    sp = np.asarray(g.spacing_mm)
    pix_mm2 = float(sp[1] * sp[2])
    filled = _filled_body(vol)
    lung = filled & (vol < -500.0)
    lung_area = lung.sum(axis=(1, 2)) * pix_mm2
    if lung_area.max() < 2000.0:  # < 20 cm^2 of lung: no thorax in the field of view
        raise GeometryError("blood-pool placement: no lungs found in the CT; give a centre")
    thorax = np.flatnonzero(lung_area >= 0.5 * lung_area.max())
    # Middle half of the thorax: away from the apices and the diaphragm - unless that is
    # too short (a field of view that holds a few cm of lung) for the aorta to stand out as
    # the longest tube: then all of it.
    q = len(thorax) // 4
    middle = thorax[q : len(thorax) - q]
    slices = middle if middle.size * float(sp[0]) >= 40.0 else thorax
    disk = _disk(8.0, sp[1:])
    ring = _disk(22.0, sp[1:], inner_mm=16.0)
    found: list[tuple[int, float, np.ndarray]] = []
    for k in slices:
        bs = filled[k]
        if not bs.any():
            continue
        sm = ndimage.gaussian_filter(vol[k], sigma=1.0 / sp[1:])
        soft = (sm >= -20.0) & (sm <= 120.0) & bs & ~lung[k]
        dense = soft | (sm > 120.0)
        # Aorta = a disk of soft tissue (blood) whose surrounding ring is mostly not soft
        # tissue (mediastinal fat, lung); the heart and the chest wall fail the ring test.
        score = ndimage.correlate(soft.astype(np.float32), disk / disk.sum(), mode="constant")
        score *= 1.0 - ndimage.correlate(
            dense.astype(np.float32), ring / ring.sum(), mode="constant"
        )
        rows, cols = np.nonzero(bs)
        p_com = g.index_to_lps(np.array([k, rows.mean(), cols.mean()]))
        # Search the posterior-left mediastinum: left of the midline (LPS +x), behind the
        # body centre (+y), within 70 mm of the midline, in front of the spine.
        ii, jj = np.indices(bs.shape)
        pts = g.index_to_lps(np.stack([np.full(ii.shape, k), ii, jj], -1).reshape(-1, 3))
        dx = (pts[:, 0] - p_com[0]).reshape(bs.shape)
        dy = (pts[:, 1] - p_com[1]).reshape(bs.shape)
        bone = (sm > 200.0) & bs & (np.abs(dx) < 40.0) & (dy > 0)
        y_front = float(dy[bone].min()) if bone.any() else np.inf
        # The descending aorta lies against the left front of the vertebral body, within
        # a few cm of its centre; round shapes further out (hilum, heart border) are not it.
        spine = (np.array([dx[bone].mean(), dy[bone].mean()]) if bone.any() else None)
        region = (dx > 0) & (dx < 70.0) & (dy > -10.0) & (dy < y_front) & soft
        if not region.any():
            continue
        sc = np.where(region, score, -1.0)
        # Blood is never hot: candidates with more than HOT_X_BODY times the slice's median
        # body uptake are tumours (e.g. a round lesion in the medial lung, which scores like
        # the aorta on CT), not the blood pool PERCIST asks for.
        hot_above = (HOT_X_BODY * float(np.median(pet_z[k][bs]))
                     if pet_z is not None else np.inf)
        # Every candidate of the slice (each connected region scoring >= 0.3), not only the
        # best: only the head-to-foot continuity tells the vessel from other round shapes.
        cand, n_cand = ndimage.label(sc >= 0.3)
        for lab in range(1, n_cand + 1):
            inside = cand == lab
            top = float(sc[inside].max())
            # Centre of the plateau of near-best scores (the disk fits in several places
            # inside a vessel wider than 16 mm); argmax alone would be biased to one side.
            plateau = inside & (sc >= 0.95 * top)
            if pet_z is not None and float(pet_z[k][plateau].mean()) > hot_above:
                continue
            ci = np.asarray(ndimage.center_of_mass(plateau))
            ij = tuple(np.clip(np.rint(ci).astype(int), 0, np.array(bs.shape) - 1))
            if spine is not None and math.hypot(dx[ij] - spine[0], dy[ij] - spine[1]) > \
                    AORTA_MAX_FROM_SPINE_MM:
                continue

            found.append((int(k), top, g.index_to_lps(np.array([k, *ci], dtype=float))))
    if not found:
        raise GeometryError(
            "blood-pool placement: descending aorta not found in the CT; give a centre"
        )
    return _vertical_tube_centre(found)


def _vertical_tube_centre(found: list[tuple[int, float, np.ndarray]],
                          reach_mm: float = 10.0) -> np.ndarray:
    """Median of the per-slice candidates that form the longest head-to-foot tube.

    The descending aorta runs through every slice of the mid-thorax at nearly the same
    in-plane position; a node or another round shape is only a few slices long.
    Candidates within ``reach_mm`` in-plane (LPS x, y) of a seed candidate form its group;
    the group that covers the most slices wins (ties: the higher summed score), and its
    best candidate per slice gives the median centre.
    """
    slices = np.array([k for k, _, _ in found])
    scores = np.array([s for _, s, _ in found])
    centres = np.asarray([c for _, _, c in found])
    xy = centres[:, :2]
    near = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1) <= reach_mm
    coverage = np.array([len(set(slices[row].tolist())) for row in near])
    support = (near * scores[None, :]).sum(axis=1)
    seed = int(np.lexsort((support, coverage))[-1])
    per_slice: dict[int, int] = {}
    for i in np.flatnonzero(near[seed]):
        k = int(slices[i])
        if k not in per_slice or scores[i] > scores[per_slice[k]]:
            per_slice[k] = int(i)
    return np.median(centres[list(per_slice.values())], axis=0)


# ---------------------------------------------------------------------------------------
# Anatomical proof of an automatic reference VOI (CT on the PET grid)
# ---------------------------------------------------------------------------------------

#: Liver parenchyma on CT: 40-70 HU unenhanced (Kodama Y et al., AJR 2007;188:1307),
#: up to ~150 HU in the portal-venous phase; 25 HU keeps mild steatosis.
LIVER_HU_RANGE = (25.0, 160.0)
#: Blood in the aorta: 30-60 HU unenhanced, up to ~450 HU in an arterial phase.
BLOOD_HU_RANGE = (0.0, 450.0)
#: The liver VOI centre lies at most this far below the lowest slice with right lung
#: (the right lobe spans ~15 cm below the dome; the posterior recess reaches lower).
LIVER_MAX_BELOW_LUNG_MM = 150.0
#: Smallest liver-like region (PET and CT bands of the placement, hot voxels excluded)
#: accepted as liver: an adult liver is 1.2-2 l; kidney ~150 ml, spleen ~200 ml.
LIVER_MIN_REGION_ML = 400.0
#: A lung "present" in an axial slice has at least this area (mm^2) on that side.
LUNG_MIN_AREA_MM2 = 500.0
#: The thorax is covered when one side's lung reaches this area (mm^2) in some slice.
THORAX_MIN_AREA_MM2 = 2000.0
#: Bone of the vertebral body lies within this distance (mm, in-plane) of the aorta centre.
AORTA_MAX_FROM_BONE_MM = 45.0


class UnprovenReferenceError(GeometryError):
    """An automatic reference VOI whose anatomy the CT does not confirm (not placed)."""


@dataclass(frozen=True)
class AnatomyProof:
    """Outcome of the anatomical checks of a reference VOI: passed and failed checks."""

    checks: tuple[str, ...]
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class _Thorax:
    """Per axial slice of the CT on the PET grid: LPS z, body midline x, lung areas."""

    zaxis: int
    vol: np.ndarray  # CT, axial axis first
    z_mm: np.ndarray
    mid_x: np.ndarray
    right_mm2: np.ndarray
    left_mm2: np.ndarray

    def slice_xy(self, grid: VoxelGrid, k: int) -> tuple[np.ndarray, np.ndarray]:
        """LPS x and y of every pixel of axial slice ``k``."""
        shp = self.vol.shape[1:]
        idx = np.zeros((*shp, 3))
        rest = [a for a in range(3) if a != self.zaxis]
        idx[..., self.zaxis] = k
        ii, jj = np.indices(shp)
        idx[..., rest[0]], idx[..., rest[1]] = ii, jj
        lps = idx @ grid.affine[:3, :3].T + grid.affine[:3, 3]
        return lps[..., 0], lps[..., 1]

    def lung(self, k: int) -> np.ndarray:
        s = self.vol[k]
        return ndimage.binary_fill_holes(s > -400.0) & (s < -500.0)


def _thorax(ct: np.ndarray, grid: VoxelGrid) -> _Thorax:
    """Lungs = CT < -500 HU inside the hole-filled body (CT > -400 HU), per axial slice;
    right/left of the body's midline (mean LPS x of the body pixels). Computed once per
    CT and grid (both anatomy proofs of a timepoint ask; read-only)."""
    zaxis = _axial_axis(grid)
    vol = np.moveaxis(np.asarray(ct, dtype=np.float32), zaxis, 0)
    key, memo = _per_ct(vol)
    which = ("thorax", zaxis, tuple(grid.shape), np.asarray(grid.affine, np.float64).tobytes())
    th = memo.get(which)
    if th is None:
        th = memo[which] = _thorax_of(key, zaxis, grid)
    return th


def _thorax_of(vol: np.ndarray, zaxis: int, grid: VoxelGrid) -> _Thorax:
    """:func:`_thorax` of the CT ``vol`` (axial axis ``zaxis`` moved first)."""
    sp = np.asarray(grid.spacing_mm)
    pix_mm2 = float(np.prod(np.delete(sp, zaxis)))
    th = _Thorax(zaxis, vol, np.zeros(len(vol)), np.full(len(vol), np.nan),
                 np.zeros(len(vol)), np.zeros(len(vol)))
    filled_all = _filled_body(vol)
    # LPS x of a slice's pixels: i*a + j*b + k*c + t; with c == 0 exactly (axial slices
    # without x-tilt) the k term adds an exact zero, so slice 0's x is every slice's x.
    same_x = None
    if grid.affine[0, zaxis] == 0.0:
        same_x = th.slice_xy(grid, 0)[0]
    for k in range(len(vol)):
        idx = np.zeros(3)
        idx[zaxis] = k
        th.z_mm[k] = float(grid.index_to_lps(idx)[2])
        filled = filled_all[k]
        if not filled.any():
            continue
        x = same_x if same_x is not None else th.slice_xy(grid, k)[0]
        mid = float(x[filled].mean())
        lung = filled & (vol[k] < -500.0)
        th.mid_x[k] = mid
        th.right_mm2[k] = np.count_nonzero(lung & (x < mid)) * pix_mm2
        th.left_mm2[k] = np.count_nonzero(lung & (x >= mid)) * pix_mm2
    return th


def _density_checks(ct: np.ndarray, mask: np.ndarray, what: str, hu: tuple[float, float],
                    checks: list[str], failures: list[str]) -> None:
    vals = np.asarray(ct, dtype=np.float32)[mask]
    if vals.size == 0:
        failures.append(f"{what} lies outside the CT")
        return
    med = float(np.median(vals))
    lung_frac = float(np.mean(vals < -500.0))
    if hu[0] <= med <= hu[1]:
        checks.append(f"{what} CT median {med:.0f} HU in {hu[0]:g}..{hu[1]:g} HU")
    else:
        failures.append(f"{what} CT median {med:.0f} HU is outside {hu[0]:g}..{hu[1]:g} HU")
    if lung_frac > 0.05:
        failures.append(f"{lung_frac:.0%} of the {what} is lung or air on CT")


def prove_liver_voi(ct: np.ndarray | None, grid: VoxelGrid,
                    centre_lps_mm: Sequence[float], *,
                    region_ml: float | None = None) -> AnatomyProof:
    """Check that a liver sphere centre lies in liver (CT on the PET grid).

    The field of view must hold the thorax (right lung of at least 20 cm^2 in some
    slice); the centre must lie below the right lung base (below the lowest slice whose
    right-lung area is half its maximum, i.e. under the right hemidiaphragm dome), within
    :data:`LIVER_MAX_BELOW_LUNG_MM` of the lowest slice with right lung (right upper
    abdomen, not the pelvis or thigh), on the patient's right of the body midline, and
    the sphere's median CT number must be liver parenchyma (:data:`LIVER_HU_RANGE`) with
    almost no lung in it. ``region_ml``, the volume of the liver-like region the centre
    was found in (automatic placement), must reach :data:`LIVER_MIN_REGION_ML`: a kidney
    (~150 ml, 30-40 HU) under the right lung base passes every other check when the liver
    itself lost its density (steatosis) or lies outside the field of view.
    """
    c = np.asarray(centre_lps_mm, dtype=np.float64)
    checks: list[str] = []
    failures: list[str] = []
    if ct is None:
        return AnatomyProof((), ("no CT: the anatomy of the VOI cannot be checked",))
    th = _thorax(ct, grid)
    if th.right_mm2.max(initial=0.0) < THORAX_MIN_AREA_MM2:
        return AnatomyProof((), ("no right lung in the CT: the field of view does not cover "
                                 "the thorax and the right hemidiaphragm",))
    checks.append("right lung in the field of view")
    base = float(th.z_mm[th.right_mm2 >= 0.5 * th.right_mm2.max()].min())
    lowest = float(th.z_mm[th.right_mm2 >= LUNG_MIN_AREA_MM2].min())
    if c[2] < base:
        checks.append(f"centre {base - c[2]:.0f} mm below the right lung base "
                      f"(hemidiaphragm, z {base:.0f} mm)")
    else:
        failures.append(f"centre z {c[2]:.0f} mm is not below the right lung base "
                        f"(z {base:.0f} mm)")
    if c[2] >= lowest - LIVER_MAX_BELOW_LUNG_MM:
        checks.append(f"centre within {LIVER_MAX_BELOW_LUNG_MM:g} mm of the lowest right lung")
    else:
        failures.append(f"centre lies {lowest - c[2]:.0f} mm below the lowest right lung "
                        f"(more than {LIVER_MAX_BELOW_LUNG_MM:g} mm: not the upper abdomen)")
    k = int(np.argmin(np.abs(th.z_mm - c[2])))
    if np.isfinite(th.mid_x[k]) and c[0] < th.mid_x[k]:
        checks.append("centre on the patient's right")
    else:
        failures.append("centre is not on the patient's right of the body midline")
    _density_checks(ct, sphere_mask(grid, c, LIVER_DIAMETER_MM), "liver sphere",
                    LIVER_HU_RANGE, checks, failures)
    if region_ml is not None:
        if region_ml >= LIVER_MIN_REGION_ML:
            checks.append(f"liver-like region {region_ml:.0f} ml")
        else:
            failures.append(f"the liver-like region is {region_ml:.0f} ml, less than "
                            f"{LIVER_MIN_REGION_ML:g} ml (a kidney or muscle, or a liver "
                            "mostly outside the field of view)")
    return AnatomyProof(tuple(checks), tuple(failures))


def prove_blood_pool_voi(ct: np.ndarray | None, grid: VoxelGrid,
                         centre_lps_mm: Sequence[float]) -> AnatomyProof:
    """Check that a blood-pool cylinder centre lies in the descending thoracic aorta.

    The centre's axial slice must hold both lungs (each >= 5 cm^2), with lung on both
    sides of the centre (between the lungs), vertebral bone (> 200 HU, within 40 mm of the
    body midline) within :data:`AORTA_MAX_FROM_BONE_MM` in-plane (next to the spine),
    and the cylinder's median CT number must be blood (:data:`BLOOD_HU_RANGE`).
    """
    c = np.asarray(centre_lps_mm, dtype=np.float64)
    checks: list[str] = []
    failures: list[str] = []
    if ct is None:
        return AnatomyProof((), ("no CT: the anatomy of the VOI cannot be checked",))
    th = _thorax(ct, grid)
    if min(th.right_mm2.max(initial=0.0), th.left_mm2.max(initial=0.0)) < THORAX_MIN_AREA_MM2:
        return AnatomyProof((), ("no lungs in the CT: the field of view does not cover the "
                                 "thorax",))
    k = int(np.argmin(np.abs(th.z_mm - c[2])))
    if th.right_mm2[k] >= LUNG_MIN_AREA_MM2 and th.left_mm2[k] >= LUNG_MIN_AREA_MM2:
        checks.append("centre slice in the thorax (both lungs)")
    else:
        failures.append(f"centre slice (z {c[2]:.0f} mm) does not hold both lungs")
    x, y = th.slice_xy(grid, k)
    lx = x[th.lung(k)]
    if lx.size and lx.min() < c[0] < lx.max():
        checks.append("centre between the lungs")
    else:
        failures.append("centre is not between the lungs")
    bone = (th.vol[k] > 200.0) & (np.abs(x - th.mid_x[k]) < 40.0)
    d = np.hypot(x[bone] - c[0], y[bone] - c[1])
    if d.size and float(d.min()) <= AORTA_MAX_FROM_BONE_MM:
        checks.append(f"spine {float(d.min()):.0f} mm from the centre")
    else:
        failures.append(f"no vertebral bone within {AORTA_MAX_FROM_BONE_MM:g} mm of the centre")
    _density_checks(ct, cylinder_mask(grid, c, BLOOD_POOL_DIAMETER_MM, BLOOD_POOL_LENGTH_MM),
                    "blood-pool cylinder", BLOOD_HU_RANGE, checks, failures)
    return AnatomyProof(tuple(checks), tuple(failures))


# ---------------------------------------------------------------------------------------
# PERCIST threshold
# ---------------------------------------------------------------------------------------


def percist_threshold(
    liver: ReferenceRegion | None,
    blood_pool: ReferenceRegion | None = None,
    *,
    sul_per_suv: float | None = None,
    liver_usable: bool = True,
) -> PercistThreshold:
    """PERCIST 1.0 minimum measurable SULpeak (Wahl 2009, Appendix; PMOD PERCIST manual).

    Liver: 1.5 x SULmean + 2 x SD. If the liver is unusable (diseased, not in the field of
    view): blood pool 2.0 x SULmean + 2 x SD. Without ``sul_per_suv`` the reference SUL is
    taken as SUV (ratio 1) and the formula says so. ``threshold_suv`` converts the SUL
    threshold back to the image's SUV units.

    >>> r = ReferenceRegion("liver", "s", (0, 0, 0), "manual", 10, 1.0, 2.0, 0.25, 1.5, 0.2,
    ...                     True)
    >>> percist_threshold(r, sul_per_suv=0.75).threshold_sul
    2.625
    """
    _check_ratio(sul_per_suv)
    f = 1.0 if sul_per_suv is None else sul_per_suv
    unit = "SUL" if sul_per_suv is not None else "SUV (no SUL/SUV ratio given)"
    if liver is not None and liver_usable:
        mean, sd = liver.suv_mean * f, liver.suv_sd * f
        thr = 1.5 * mean + 2.0 * sd
        formula = f"1.5 x liver mean {mean:.3f} + 2 x SD {sd:.3f} ({unit})"
        ref = "liver"
    elif blood_pool is not None:
        mean, sd = blood_pool.suv_mean * f, blood_pool.suv_sd * f
        thr = 2.0 * mean + 2.0 * sd
        formula = f"2.0 x blood-pool mean {mean:.3f} + 2 x SD {sd:.3f} ({unit})"
        ref = "blood_pool"
    else:
        raise InputError("PERCIST threshold needs a usable liver or a blood-pool reference")
    return PercistThreshold(
        reference=ref, threshold_sul=thr, threshold_suv=thr / f, formula=formula
    )
