"""Voxel-grid geometry shared by the segmentation and PET quantification functions.

Every function of :mod:`oncohybrid.segment`, :mod:`oncohybrid.quant.pet` and
:mod:`oncohybrid.quant.references` takes an image either as a :class:`GridImage` (the one
volume type carried through quant/segment), a :class:`highdicom.Volume` (array + 4 x 4
affine in LPS millimetres) or a bare array with explicit ``spacing_mm`` or ``affine``; this
module turns them into one :class:`VoxelGrid` so that no function has to hope the spacing
is right. A caller that runs several of these functions on one image converts it once at
its edge (:func:`grid_image`) and passes the :class:`GridImage` on: :func:`image_grid`
hands its array and grid back without converting again.

Array axes follow highdicom's convention: ``(slice, row, column)``; the affine maps
``(k, i, j, 1)`` voxel indices (in that axis order) to LPS millimetres (PS3.3 C.7.6.2.1.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oncohybrid.errors import GeometryError, InputError


@dataclass(frozen=True)
class VoxelGrid:
    """Shape and 4 x 4 index-to-LPS affine of a 3-D voxel grid."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    def __post_init__(self) -> None:
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise GeometryError(f"affine must be 4 x 4, got shape {aff.shape}")
        if abs(np.linalg.det(aff[:3, :3])) < 1e-12:
            raise GeometryError("affine is singular (zero voxel spacing)")
        object.__setattr__(self, "affine", aff)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing along the three array axes (mm)."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (1 ml = 1000 mm^3)."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def index_to_lps(self, index: np.ndarray | Sequence[float]) -> np.ndarray:
        """Map (..., 3) fractional voxel indices to LPS millimetres."""
        idx = np.asarray(index, dtype=np.float64)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, lps_mm: np.ndarray | Sequence[float]) -> np.ndarray:
        """Map (..., 3) LPS millimetres to fractional voxel indices."""
        p = np.asarray(lps_mm, dtype=np.float64) - self.affine[:3, 3]
        return p @ np.linalg.inv(self.affine[:3, :3]).T


@dataclass(frozen=True)
class GridImage:
    """A 3-D image array on its :class:`VoxelGrid`: the volume type quant/segment carry.

    Built once from a :class:`highdicom.Volume` or an array plus geometry by
    :func:`grid_image`; every function of quant/segment accepts it in place of the volume.
    ``array`` and ``affine`` make it look like a volume to :func:`as_grid` as well.
    """

    array: np.ndarray = field(repr=False)
    grid: VoxelGrid

    def __post_init__(self) -> None:
        check_same_grid("image array", self.array, self.grid)

    @property
    def affine(self) -> np.ndarray:
        """4 x 4 index-to-LPS affine of the grid."""
        return self.grid.affine

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(slice, row, column)``."""
        return self.grid.shape

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing along the three array axes (mm)."""
        return self.grid.spacing_mm


def grid_image(
    image: Any,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
) -> GridImage:
    """Convert an image once into the :class:`GridImage` that quant/segment pass around.

    A :class:`GridImage` is returned as it is.

    >>> img = grid_image(np.zeros((2, 3, 4)), spacing_mm=(3.0, 4.0, 4.0))
    >>> img.shape, grid_image(img) is img
    ((2, 3, 4), True)
    """
    if isinstance(image, GridImage):
        _no_geometry(spacing_mm, affine)
        return image
    arr, grid = as_grid(image, spacing_mm, affine)
    return GridImage(arr, grid)


def image_grid(
    image: Any,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
) -> tuple[np.ndarray, VoxelGrid]:
    """``(array, grid)`` of any accepted image: a :class:`GridImage` without conversion,
    anything else through :func:`as_grid`."""
    if isinstance(image, GridImage):
        _no_geometry(spacing_mm, affine)
        return image.array, image.grid
    return as_grid(image, spacing_mm, affine)


def _no_geometry(spacing_mm: Sequence[float] | None, affine: np.ndarray | None) -> None:
    if spacing_mm is not None or affine is not None:
        raise InputError("give either an image with its geometry or spacing_mm/affine, not both")


def as_grid(
    image: Any,
    spacing_mm: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
) -> tuple[np.ndarray, VoxelGrid]:
    """Return ``(array, grid)`` for a :class:`highdicom.Volume` or an array plus geometry.

    A bare array needs ``affine`` or ``spacing_mm`` = (slice, row, column) spacing, which
    means an axial grid with origin 0: slices along LPS +z (feet to head), rows along +y
    (anterior to posterior), columns along +x (patient's right to left), as highdicom
    builds for axial images.

    >>> arr, grid = as_grid(np.zeros((2, 3, 4)), spacing_mm=(3.0, 4.0, 4.0))
    >>> round(grid.voxel_volume_ml, 9), grid.spacing_mm
    (0.048, (3.0, 4.0, 4.0))
    >>> grid.index_to_lps([1, 2, 3]).tolist()  # (slice, row, column) -> (x, y, z)
    [12.0, 8.0, 3.0]
    """
    if hasattr(image, "affine") and hasattr(image, "array"):
        if spacing_mm is not None or affine is not None:
            raise InputError("give either a highdicom.Volume or spacing_mm/affine, not both")
        arr = np.asarray(image.array)
        aff = np.asarray(image.affine, dtype=np.float64)
    else:
        arr = np.asarray(image)
        if affine is not None:
            aff = np.asarray(affine, dtype=np.float64)
        elif spacing_mm is not None:
            sp = [float(s) for s in spacing_mm]
            if len(sp) != 3 or min(sp) <= 0:
                raise InputError(f"spacing_mm must be three positive numbers, got {spacing_mm}")
            # Axial convention of highdicom volumes from axial DICOM images: slice index
            # along LPS +z, row index along +y, column index along +x.
            aff = np.array(
                [
                    [0.0, 0.0, sp[2], 0.0],
                    [0.0, sp[1], 0.0, 0.0],
                    [sp[0], 0.0, 0.0, 0.0],
                    [0.0, 0.0, 0.0, 1.0],
                ]
            )
        else:
            raise InputError("a bare array needs spacing_mm or affine (voxel geometry)")
    if arr.ndim != 3:
        raise GeometryError(f"expected a 3-D image, got an array of shape {arr.shape}")
    return arr, VoxelGrid(shape=arr.shape, affine=aff)  # type: ignore[arg-type]


def check_same_grid(name: str, array: np.ndarray, grid: VoxelGrid) -> None:
    """Raise :class:`GeometryError` unless ``array`` has the grid's shape."""
    if tuple(array.shape) != grid.shape:
        raise GeometryError(f"{name} has shape {tuple(array.shape)}, the image has {grid.shape}")
