"""Analytic torso anatomy (neck to pelvis) and its rasterisation on scanner grids.

The body is built from ellipsoids and z-aligned elliptic cylinders in a patient-fixed
*body frame* (mm; x → patient left, y → posterior, z → head; i.e. LPS axes, origin on the
midline at the pelvic floor). A timepoint places the body in the scanner's LPS frame with
a rigid pose ``p_scanner = Rz(θ) · p_body + shift``. Primitives are painted in order
(later ones override earlier ones), hard-edged for CT and with a one-voxel linear
partial-volume ramp for PET.

Written by hand: no field library rasterises analytic phantoms with per-voxel partial
volume on arbitrary posed grids at this speed (XCAT and similar are not open/pip-able).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = [
    "AxialGrid",
    "Cylinder",
    "Ellipsoid",
    "Pose",
    "Tissue",
    "TISSUE_HU",
    "build_anatomy",
    "paint",
    "label_at",
]


class Tissue(IntEnum):
    """Tissue classes painted into the phantom."""

    AIR = 0
    SOFT_TISSUE = 1
    FAT = 2
    LUNG = 3
    LIVER = 4
    BLOOD = 5
    MYOCARDIUM = 6
    SPLEEN = 7
    KIDNEY = 8
    BLADDER = 9
    BONE = 10


#: CT numbers (HU) per tissue.
TISSUE_HU: dict[Tissue, float] = {
    Tissue.AIR: -1000.0,
    Tissue.SOFT_TISSUE: 40.0,
    Tissue.FAT: -100.0,
    Tissue.LUNG: -850.0,
    Tissue.LIVER: 60.0,
    Tissue.BLOOD: 40.0,
    Tissue.MYOCARDIUM: 45.0,
    Tissue.SPLEEN: 50.0,
    Tissue.KIDNEY: 35.0,
    Tissue.BLADDER: 5.0,
    Tissue.BONE: 700.0,
}


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid in the body frame (centre and semi-axes in mm)."""

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c, s = np.asarray(self.centre), np.asarray(self.semi)
        return c - s, c + s

    def signed_distance(self, bx: np.ndarray, by: np.ndarray, bz: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm, negative inside): (r − 1)/|∇r| with r the
        ellipsoidal radius — exact on the surface to first order."""
        (cx, cy, cz), (a, b, c) = self.centre, self.semi
        ux, uy, uz = (bx - cx) / a, (by - cy) / b, (bz - cz) / c
        q = ux * ux + uy * uy + uz * uz
        g2 = (ux / a) ** 2 + (uy / b) ** 2 + (uz / c) ** 2
        r = np.sqrt(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (r - 1.0) * r / np.sqrt(g2)
        return np.where(r > 0.3, d, -0.7 * min(a, b, c))


@dataclass(frozen=True)
class Cylinder:
    """Elliptic cylinder along the body z axis (centre x/y, semi-axes x/y, z range)."""

    centre_xy: tuple[float, float]
    semi_xy: tuple[float, float]
    z_range: tuple[float, float]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        (cx, cy), (a, b), (z0, z1) = self.centre_xy, self.semi_xy, self.z_range
        return np.array([cx - a, cy - b, z0]), np.array([cx + a, cy + b, z1])

    def signed_distance(self, bx: np.ndarray, by: np.ndarray, bz: np.ndarray) -> np.ndarray:
        (cx, cy), (a, b), (z0, z1) = self.centre_xy, self.semi_xy, self.z_range
        ux, uy = (bx - cx) / a, (by - cy) / b
        r = np.sqrt(ux * ux + uy * uy)
        g = np.sqrt((ux / a) ** 2 + (uy / b) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d_rad = np.where(r > 0.3, (r - 1.0) * r / g, -0.7 * min(a, b))
        d_z = np.abs(bz - 0.5 * (z0 + z1)) - 0.5 * (z1 - z0)
        return np.maximum(d_rad, d_z)


Primitive = Ellipsoid | Cylinder


@dataclass(frozen=True)
class Pose:
    """Rigid placement of the body in scanner LPS: p = Rz(rotation) · p_body + shift."""

    shift_mm: tuple[float, float, float]
    rotation_deg: float = 0.0

    @property
    def matrix(self) -> np.ndarray:
        t = np.radians(self.rotation_deg)
        c, s = np.cos(t), np.sin(t)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def to_scanner(self, points_body: np.ndarray) -> np.ndarray:
        return np.asarray(points_body, float) @ self.matrix.T + np.asarray(self.shift_mm)

    def to_body(self, points_scanner: np.ndarray) -> np.ndarray:
        return (np.asarray(points_scanner, float) - np.asarray(self.shift_mm)) @ self.matrix


@dataclass(frozen=True)
class AxialGrid:
    """Axial voxel grid in scanner LPS: rows along +y (A→P), columns along +x (R→L),
    slices along +z; ``origin_mm`` is the centre of voxel (0, 0, 0)."""

    shape: tuple[int, int, int]  # (slices, rows, columns)
    spacing_mm: tuple[float, float, float]  # (slice, row, column)
    origin_mm: tuple[float, float, float]  # (x, y, z)

    def axis(self, k: int) -> np.ndarray:
        """Coordinates (mm) along x (k=0), y (k=1) or z (k=2)."""
        n = self.shape[2 - k]
        step = self.spacing_mm[2 - k]
        return self.origin_mm[k] + step * np.arange(n)

    @property
    def affine(self) -> np.ndarray:
        aff = np.eye(4)
        aff[:3, 0] = (0.0, 0.0, self.spacing_mm[0])
        aff[:3, 1] = (0.0, self.spacing_mm[1], 0.0)
        aff[:3, 2] = (self.spacing_mm[2], 0.0, 0.0)
        aff[:3, 3] = self.origin_mm
        return aff


def _index_range(lo: float, hi: float, origin: float, step: float, n: int) -> slice:
    i0 = int(np.floor((lo - origin) / step)) - 2
    i1 = int(np.ceil((hi - origin) / step)) + 3
    return slice(max(i0, 0), min(i1, n))


def paint(
    out: np.ndarray,
    grid: AxialGrid,
    pose: Pose,
    items: list[tuple[Primitive, float]],
    *,
    soft: bool,
) -> None:
    """Paint ``(primitive, value)`` items into ``out`` (shape ``grid.shape``) in order.

    ``soft``: blend with the fraction of the voxel inside (linear ramp one voxel wide
    across the surface), else set voxels whose centre is inside.
    """
    xs, ys, zs = grid.axis(0), grid.axis(1), grid.axis(2)
    rot = pose.matrix
    sx, sy, sz = pose.shift_mm
    c, s = rot[0, 0], rot[1, 0]
    ramp = float(np.prod(grid.spacing_mm)) ** (1.0 / 3.0)
    for prim, value in items:
        lo, hi = prim.bounds()
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        sc = pose.to_scanner(corners)
        kz = _index_range(sc[:, 2].min(), sc[:, 2].max(), zs[0], grid.spacing_mm[0], len(zs))
        ky = _index_range(sc[:, 1].min(), sc[:, 1].max(), ys[0], grid.spacing_mm[1], len(ys))
        kx = _index_range(sc[:, 0].min(), sc[:, 0].max(), xs[0], grid.spacing_mm[2], len(xs))
        if kz.start >= kz.stop or ky.start >= ky.stop or kx.start >= kx.stop:
            continue
        dx = xs[kx][None, :] - sx
        dy = ys[ky][:, None] - sy
        bx = (c * dx + s * dy)[None]  # body frame = R^T (p - shift)
        by = (-s * dx + c * dy)[None]
        bz = (zs[kz] - sz)[:, None, None]
        d = prim.signed_distance(bx, by, bz)
        block = out[kz, ky, kx]
        if soft:
            occ = np.clip(0.5 - d / ramp, 0.0, 1.0)
            block += occ * (value - block)
        else:
            block[d <= 0.0] = value


def label_at(points_body: np.ndarray, anatomy: list[tuple[Primitive, Tissue]]) -> np.ndarray:
    """Tissue label at body-frame points (N, 3) using the painting order."""
    pts = np.asarray(points_body, float)
    labels = np.full(len(pts), int(Tissue.AIR))
    for prim, tissue in anatomy:
        inside = prim.signed_distance(pts[:, 0], pts[:, 1], pts[:, 2]) <= 0.0
        labels[inside] = int(tissue)
    return labels


@dataclass(frozen=True)
class Landmarks:
    """Body-frame reference positions used by the ground truth."""

    liver_reference_centre: tuple[float, float, float]  # 3 cm PERCIST sphere, right lobe
    blood_pool_centre: tuple[float, float, float]  # descending thoracic aorta
    aorta_radius_mm: float


def build_anatomy(weight_kg: float, sex: str) -> tuple[list[tuple[Primitive, Tissue]], Landmarks]:
    """Primitives in painting order for a patient of the given weight (body girth and
    subcutaneous fat grow with weight; organ positions are fixed)."""
    a = 145.0 + 0.5 * (weight_kg - 50.0)  # body semi-axis left-right (mm)
    b = 100.0 + 0.35 * (weight_kg - 50.0)  # anterior-posterior
    fat = 8.0 + 0.2 * (weight_kg - 50.0) + (3.0 if sex == "F" else 0.0)
    top = 700.0
    aorta = Cylinder((22.0, 36.0), (12.0, 12.0), (200.0, 575.0))
    items: list[tuple[Primitive, Tissue]] = [
        # body outline with subcutaneous fat, narrowing to the neck above the shoulders
        (Cylinder((0.0, 0.0), (a, b), (0.0, 655.0)), Tissue.FAT),
        (Cylinder((0.0, 0.0), (a - fat, b - fat), (0.0, 655.0)), Tissue.SOFT_TISSUE),
        (Cylinder((0.0, 10.0), (62.0, 58.0), (600.0, top)), Tissue.FAT),
        (Cylinder((0.0, 10.0), (55.0, 51.0), (600.0, top)), Tissue.SOFT_TISSUE),
        # lungs, mediastinal fat, heart and great vessels
        (Ellipsoid((-88.0, 8.0, 545.0), (55.0, 72.0, 110.0)), Tissue.LUNG),
        (Ellipsoid((88.0, 8.0, 545.0), (55.0, 72.0, 105.0)), Tissue.LUNG),
        (Cylinder((0.0, 0.0), (34.0, 62.0), (450.0, 640.0)), Tissue.FAT),
        # retroperitoneal (para-aortic) and pelvic side-wall fat holding lymph nodes
        (Cylinder((5.0, 28.0), (45.0, 28.0), (150.0, 335.0)), Tissue.FAT),
        (Ellipsoid((-62.0, 5.0, 150.0), (26.0, 26.0, 45.0)), Tissue.FAT),
        (Ellipsoid((62.0, 5.0, 150.0), (26.0, 26.0, 45.0)), Tissue.FAT),
        (Ellipsoid((-55.0, 0.0, 405.0), (75.0, 78.0, 85.0)), Tissue.LIVER),
        (Ellipsoid((82.0, 38.0, 430.0), (32.0, 28.0, 48.0)), Tissue.SPLEEN),
        (Ellipsoid((-75.0, 48.0, 300.0), (28.0, 24.0, 52.0)), Tissue.KIDNEY),
        (Ellipsoid((75.0, 48.0, 295.0), (28.0, 24.0, 52.0)), Tissue.KIDNEY),
        (Ellipsoid((22.0, -38.0, 530.0), (55.0, 44.0, 48.0)), Tissue.MYOCARDIUM),
        (Ellipsoid((22.0, -38.0, 530.0), (41.0, 31.0, 35.0)), Tissue.BLOOD),
        (aorta, Tissue.BLOOD),
        (Ellipsoid((0.0, -40.0, 75.0), (45.0, 35.0, 35.0)), Tissue.BLADDER),
        # skeleton: spine (vertebral bodies as one column) and iliac wings
        (Cylinder((0.0, 68.0), (19.0, 16.0), (0.0, top)), Tissue.BONE),
        (Ellipsoid((-98.0, 35.0, 165.0), (34.0, 20.0, 55.0)), Tissue.BONE),
        (Ellipsoid((98.0, 35.0, 165.0), (34.0, 20.0, 55.0)), Tissue.BONE),
    ]
    landmarks = Landmarks(
        liver_reference_centre=(-80.0, 8.0, 395.0),
        blood_pool_centre=(22.0, 36.0, 505.0),
        aorta_radius_mm=12.0,
    )
    return items, landmarks
