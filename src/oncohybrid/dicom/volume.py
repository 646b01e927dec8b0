"""Series of DICOM images to a :class:`highdicom.Volume` with exact geometry.

A volume is the pixel array of one series stacked along the slice normal plus the 4×4
affine that maps voxel indices ``(slice, row, column)`` to patient LPS millimetres
(PS3.3 C.7.6.2.1.1 *Image Position and Image Orientation*), i.e. the array axis order and
affine convention of :class:`highdicom.Volume`.

Slice order: slices are sorted by the projection of (0020,0032) *Image Position (Patient)*
on the slice normal ``n = row cosines × column cosines`` of (0020,0037) *Image Orientation
(Patient)*, increasing along ``n`` — never by (0020,0013) *Instance Number*. For an axial
series this is feet → head, the same order as SimpleITK's ``ImageSeriesReader`` (GDCM
IPP sorter) and dcm2niix, so slice 0 holds the volume origin. (highdicom's own
``get_volume_from_series`` stacks the other way, to make ``(slice, row, column)``
right-handed; ``volume.ensure_handedness("RIGHT_HANDED")`` converts between them.)

Pixel values: (0028,1053) *Rescale Slope* and (0028,1052) *Rescale Intercept* are applied
per slice (PET slices carry different slopes, PS3.3 C.8.9.4.1.3) or, for enhanced
multi-frame objects, per frame from the *Pixel Value Transformation Sequence* (0028,9145)
(PS3.3 C.7.6.16.2.9).

We write the stacking and checks by hand (rather than
``highdicom.get_volume_from_series``) to fill a preallocated array slice by slice, to apply
per-slice rescale cheaply and to raise :class:`~oncohybrid.errors.GeometryError` messages
that name the series and the offending slices.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from oncohybrid.errors import DicomError, GeometryError

__all__ = [
    "load_series",
    "read_series",
    "sort_slices",
    "series_label",
    "ORIENTATION_TOL",
    "POSITION_TOL_MM",
    "SPACING_RTOL",
    "SPACING_ATOL_MM",
]

#: Largest difference of direction cosines accepted as "the same orientation".
ORIENTATION_TOL = 1e-4
#: Largest in-plane offset (mm) of a slice from the line along the normal (gantry tilt).
POSITION_TOL_MM = 0.01
#: Slice spacing may deviate from the median by max(SPACING_RTOL·median, SPACING_ATOL_MM).
SPACING_RTOL = 0.01
SPACING_ATOL_MM = 0.01
#: A step larger than this multiple of the median spacing is a missing slice.
GAP_FACTOR = 1.5

_NATIVE_SYNTAXES = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}


@dataclass(frozen=True)
class _Frame:
    """One 2-D plane of a series with the attributes needed to place and scale it."""

    ds: Dataset
    frame: int | None  # index in a multi-frame object, None for single-frame images
    position: np.ndarray  # (3,) LPS mm of the centre of the first pixel
    orientation: np.ndarray  # (6,) row cosines then column cosines
    spacing: tuple[float, float]  # (row spacing, column spacing) = PixelSpacing
    rows: int
    columns: int
    slope: float
    intercept: float


def series_label(ds: Dataset) -> str:
    """Short description of the series of ``ds`` for error messages (no PHI)."""
    uid = getattr(ds, "SeriesInstanceUID", "?")
    modality = getattr(ds, "Modality", "?")
    number = getattr(ds, "SeriesNumber", None)
    num = f" #{number}" if number not in (None, "") else ""
    return f"{modality} series{num} {uid}"


def _file_label(ds: Dataset) -> str:
    name = getattr(ds, "filename", None)
    if isinstance(name, str | os.PathLike) and name:
        return f"file {Path(name).name}"
    return f"instance {getattr(ds, 'SOPInstanceUID', '?')}"


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def _iter_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _read_file(path: Path, *, stop_before_pixels: bool = False) -> Dataset | None:
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        return None  # not a DICOM file (DICOMDIR readme, thumbnails ...)
    except Exception as exc:  # pydicom raises many types for truncated files
        raise DicomError(f"cannot read DICOM file {path}: {exc}") from exc


def read_series(
    directory: str | os.PathLike[str],
    *,
    series_instance_uid: str | None = None,
) -> list[Dataset]:
    """Read all images (header and pixels) of one series from a directory (recursive).

    Non-DICOM files and DICOMDIR are skipped. If the directory holds several series,
    ``series_instance_uid`` selects one by (0020,000E) *Series Instance UID*; without it
    several series are an error (the message lists them).

    Example:
        >>> datasets = read_series("OUT/PAT001/TP0/PT")  # doctest: +SKIP
    """
    root = Path(directory)
    if not root.is_dir():
        raise DicomError(f"series directory {root} does not exist or is not a directory")
    by_series: dict[str, list[Dataset]] = {}
    for path in _iter_files(root):
        ds = _read_file(path)
        if ds is None or "SeriesInstanceUID" not in ds or "PixelData" not in ds:
            continue
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    if series_instance_uid is not None:
        found = by_series.get(str(series_instance_uid))
        if not found:
            raise DicomError(
                f"no images of series {series_instance_uid} in {root} "
                f"(found {len(by_series)} other series)"
            )
        return found
    if not by_series:
        raise DicomError(f"no DICOM images found in {root}")
    if len(by_series) > 1:
        listing = ", ".join(
            f"{series_label(v[0])} ({len(v)} files)" for v in by_series.values()
        )
        raise DicomError(
            f"{root} holds {len(by_series)} series; pass series_instance_uid to choose: "
            f"{listing}"
        )
    return next(iter(by_series.values()))


def _as_datasets(source: str | os.PathLike[str] | Iterable[Dataset | str | os.PathLike[str]]
                 ) -> list[Dataset]:
    if isinstance(source, str | os.PathLike):
        return read_series(source)
    out: list[Dataset] = []
    for item in source:
        if isinstance(item, Dataset):
            out.append(item)
        else:
            ds = _read_file(Path(item))
            if ds is None:
                raise DicomError(f"{item} is not a DICOM file")
            out.append(ds)
    if not out:
        raise DicomError("empty series: no datasets or files given")
    return out


# ---------------------------------------------------------------------------------------
# Frames and geometry
# ---------------------------------------------------------------------------------------


def _float_seq(value: object, n: int, what: str, ds: Dataset) -> np.ndarray:
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise GeometryError(
            f"{series_label(ds)}, {_file_label(ds)}: {what} is not numeric: {value!r}"
        ) from exc
    if arr.shape != (n,):
        raise GeometryError(
            f"{series_label(ds)}, {_file_label(ds)}: {what} must have {n} values, "
            f"got {value!r}"
        )
    return arr


def _require(ds: Dataset, keyword: str, where: Dataset | None = None) -> object:
    container = ds if where is None else where
    if keyword not in container or container[keyword].value in (None, ""):
        raise GeometryError(
            f"{series_label(ds)}, {_file_label(ds)}: missing ({keyword}) needed to build a "
            "volume"
        )
    return container[keyword].value


def _item(seq_parent: Dataset | None, keyword: str) -> Dataset | None:
    if seq_parent is None or keyword not in seq_parent:
        return None
    seq = seq_parent[keyword].value
    return seq[0] if seq else None


def _frames_of(ds: Dataset) -> list[_Frame]:
    """Planes of one dataset: one for a single-frame image, one per frame otherwise."""
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_frames(ds)
    ipp = _float_seq(_require(ds, "ImagePositionPatient"), 3, "(0020,0032) Image Position", ds)
    iop = _float_seq(
        _require(ds, "ImageOrientationPatient"), 6, "(0020,0037) Image Orientation", ds
    )
    ps = _float_seq(_require(ds, "PixelSpacing"), 2, "(0028,0030) Pixel Spacing", ds)
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return [
        _Frame(ds, None, ipp, iop, (float(ps[0]), float(ps[1])), int(ds.Rows), int(ds.Columns),
               slope, intercept)
    ]


def _enhanced_frames(ds: Dataset) -> list[_Frame]:
    """Planes of an enhanced multi-frame image (PS3.3 C.7.6.16 functional groups)."""
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.PerFrameFunctionalGroupsSequence
    n_frames = int(ds.get("NumberOfFrames", len(per_frame)) or len(per_frame))
    if len(per_frame) != n_frames:
        raise GeometryError(
            f"{series_label(ds)}: (5200,9230) Per-frame Functional Groups has "
            f"{len(per_frame)} items but (0028,0008) Number of Frames is {n_frames}"
        )

    def lookup(fg: Dataset, seq_kw: str, attr: str) -> object | None:
        for grp in (fg, shared):
            item = _item(grp, seq_kw)
            if item is not None and attr in item and item[attr].value not in (None, ""):
                return item[attr].value
        return None

    frames = []
    for i, fg in enumerate(per_frame):
        ipp = lookup(fg, "PlanePositionSequence", "ImagePositionPatient")
        iop = lookup(fg, "PlaneOrientationSequence", "ImageOrientationPatient")
        ps = lookup(fg, "PixelMeasuresSequence", "PixelSpacing")
        if ipp is None or iop is None or ps is None:
            raise GeometryError(
                f"{series_label(ds)}, frame {i + 1}: missing Plane Position, Plane "
                "Orientation or Pixel Measures functional group (PS3.3 C.7.6.16.2)"
            )
        slope = lookup(fg, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = lookup(fg, "PixelValueTransformationSequence", "RescaleIntercept")
        if slope is None:
            slope = ds.get("RescaleSlope", 1.0)
        if intercept is None:
            intercept = ds.get("RescaleIntercept", 0.0)
        frames.append(
            _Frame(
                ds, i,
                _float_seq(ipp, 3, f"frame {i + 1} Image Position", ds),
                _float_seq(iop, 6, f"frame {i + 1} Image Orientation", ds),
                tuple(float(v) for v in _float_seq(ps, 2, "Pixel Spacing", ds)),  # type: ignore[arg-type]
                int(ds.Rows), int(ds.Columns), float(slope), float(intercept),
            )
        )
    return frames


def _collect_frames(datasets: Sequence[Dataset]) -> list[_Frame]:
    frames: list[_Frame] = []
    for ds in datasets:
        frames.extend(_frames_of(ds))
    if not frames:
        raise DicomError("empty series: no image planes")
    return frames


def _unit_cosines(orientation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column direction cosines scaled to unit length (DS rounding leaves norms
    like 0.99999)."""
    row, col = orientation[:3], orientation[3:]
    n_row, n_col = np.linalg.norm(row), np.linalg.norm(col)
    if n_row < 1e-6 or n_col < 1e-6:
        raise GeometryError(f"Image Orientation has a zero direction vector: {orientation}")
    return row / n_row, col / n_col


@dataclass(frozen=True)
class _Geometry:
    order: np.ndarray  # indices into the frame list, sorted along the normal
    normal: np.ndarray
    slice_spacing_mm: float


def _check_and_sort(frames: list[_Frame]) -> _Geometry:
    """Sort planes along the normal and check they form one regular volume."""
    ref = frames[0]
    label = series_label(ref.ds)
    series_uids = {str(getattr(f.ds, "SeriesInstanceUID", "")) for f in frames}
    if len(series_uids) > 1:
        raise DicomError(
            f"{label}: images of {len(series_uids)} different series were given as one series"
        )
    iops = np.stack([f.orientation for f in frames])
    bad = np.flatnonzero(np.abs(iops - ref.orientation).max(axis=1) > ORIENTATION_TOL)
    if bad.size:
        f = frames[int(bad[0])]
        raise GeometryError(
            f"{label}: mixed orientations — {_file_label(f.ds)} has Image Orientation "
            f"{f.orientation.round(5).tolist()} but {_file_label(ref.ds)} has "
            f"{ref.orientation.round(5).tolist()}"
        )
    for f in frames:
        if (f.rows, f.columns) != (ref.rows, ref.columns):
            raise GeometryError(
                f"{label}: mixed image sizes — {_file_label(f.ds)} is {f.rows}×{f.columns}, "
                f"{_file_label(ref.ds)} is {ref.rows}×{ref.columns}"
            )
        if not np.allclose(f.spacing, ref.spacing, rtol=0, atol=1e-4):
            raise GeometryError(
                f"{label}: mixed pixel spacing — {_file_label(f.ds)} has {f.spacing}, "
                f"{_file_label(ref.ds)} has {ref.spacing}"
            )
    row, col = _unit_cosines(ref.orientation)
    if abs(float(row @ col)) > 1e-4:
        raise GeometryError(
            f"{label}: (0020,0037) Image Orientation row and column cosines are not "
            f"orthogonal (dot product {float(row @ col):.2e}): {ref.orientation.tolist()}"
        )
    normal = np.cross(row, col)
    positions = np.stack([f.position for f in frames])
    dist = positions @ normal
    order = np.argsort(dist, kind="stable")
    dist_sorted = dist[order]
    n = len(frames)
    if n == 1:
        return _Geometry(order, normal, float(ref.ds.get("SliceThickness", 1.0) or 1.0))

    steps = np.diff(dist_sorted)
    dup = np.flatnonzero(steps < 1e-3)
    if dup.size:
        a, b = frames[int(order[dup[0]])], frames[int(order[dup[0] + 1])]
        raise GeometryError(
            f"{label}: duplicate slice positions — {_file_label(a.ds)} and {_file_label(b.ds)} "
            f"are both at {dist_sorted[dup[0]]:.3f} mm along the normal "
            "(repeated acquisition, several time points or echoes in one series)"
        )
    # Gantry tilt / skew: positions must lie on the line through the first slice along n.
    offsets = positions[order] - positions[order[0]]
    in_plane = offsets - np.outer(offsets @ normal, normal)
    drift = np.linalg.norm(in_plane, axis=1)
    allowed = POSITION_TOL_MM + 1e-4 * np.abs(dist_sorted - dist_sorted[0])
    if np.any(drift > allowed):
        k = int(np.argmax(drift - allowed))
        angle = np.degrees(np.arctan2(drift[k], abs(dist_sorted[k] - dist_sorted[0])))
        raise GeometryError(
            f"{label}: slice positions are not along the slice normal (gantry tilt or sheared "
            f"stack, about {angle:.2f}°; {_file_label(frames[int(order[k])].ds)} is "
            f"{drift[k]:.3f} mm off the normal line); resample the series before use"
        )
    median = float(np.median(steps))
    gaps = np.flatnonzero(steps > GAP_FACTOR * median)
    if gaps.size:
        g = int(gaps[0])
        raise GeometryError(
            f"{label}: missing slice(s) — gap of {steps[g]:.3f} mm between "
            f"{dist_sorted[g]:.3f} and {dist_sorted[g + 1]:.3f} mm along the normal "
            f"(median spacing {median:.3f} mm, {gaps.size} gap(s))"
        )
    tol = max(SPACING_RTOL * median, SPACING_ATOL_MM)
    dev = np.abs(steps - median)
    if np.any(dev > tol):
        k = int(np.argmax(dev))
        raise GeometryError(
            f"{label}: non-uniform slice spacing — step {steps[k]:.4f} mm at "
            f"{dist_sorted[k]:.3f} mm vs median {median:.4f} mm (tolerance {tol:.4f} mm)"
        )
    # Mean spacing over the whole stack, the value ITK's ImageSeriesReader reports.
    spacing = float((dist_sorted[-1] - dist_sorted[0]) / (n - 1))
    return _Geometry(order, normal, spacing)


def sort_slices(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Return single-frame datasets of one series in volume order (slice 0 first).

    Order is by Image Position projected on the slice normal (row × column cosines),
    increasing, exactly as :func:`load_series` stacks them; the same geometry checks are
    applied (raises :class:`GeometryError`). An enhanced multi-frame object is returned
    unchanged (its frames are ordered inside :func:`load_series`).

    Example:
        >>> ordered = sort_slices(read_series("OUT/PAT001/TP0/PT"))  # doctest: +SKIP
        >>> slopes = [float(ds.RescaleSlope) for ds in ordered]  # per volume slice
    """
    datasets = list(datasets)
    if not datasets:
        raise DicomError("empty series: no datasets given")
    frames = _collect_frames(datasets)
    geom = _check_and_sort(frames)
    if len(frames) != len(datasets):  # multi-frame: frames, not datasets, are sorted
        return datasets
    return [datasets[int(i)] for i in geom.order]


# ---------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------


def _native_layout(ds: Dataset) -> tuple[np.dtype, int] | None:
    """(NumPy dtype, unused high bits) for uncompressed little-endian monochrome data with
    the usual Bits Stored/High Bit layout (PS3.5 8.1.1), else None (pydicom decodes)."""
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is not None and tsyntax not in _NATIVE_SYNTAXES:
        return None
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        return None
    bits = int(ds.get("BitsAllocated", 0))
    stored = int(ds.get("BitsStored", bits))
    if bits not in (8, 16, 32) or not 0 < stored <= bits:
        return None
    if int(ds.get("HighBit", stored - 1)) != stored - 1:
        return None
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    return np.dtype(f"<{'i' if signed else 'u'}{bits // 8}"), bits - stored


def _pixels(ds: Dataset) -> np.ndarray:
    """Stored pixel values of all frames as (frames, rows, columns). Native data is read
    with np.frombuffer (no copy when all bits are used); unused high bits are masked
    (unsigned) or sign-extended (signed) as pydicom does."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    layout = _native_layout(ds)
    if layout is not None:
        dtype, unused = layout
        raw = ds.PixelData
        if len(raw) >= n * rows * cols * dtype.itemsize:
            arr = np.frombuffer(raw, dtype=dtype, count=n * rows * cols).reshape(n, rows, cols)
            if unused:
                if dtype.kind == "u":
                    arr = arr & dtype.type((1 << (dtype.itemsize * 8 - unused)) - 1)
                else:
                    arr = (arr << dtype.type(unused)) >> dtype.type(unused)
            return arr
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise DicomError(
            f"{series_label(ds)}, {_file_label(ds)}: cannot decode Pixel Data: {exc}"
        ) from exc
    return arr.reshape(n, rows, cols)


def load_series(
    source: str | os.PathLike[str] | Iterable[Dataset | str | os.PathLike[str]],
    *,
    rescale: bool = True,
    dtype: type | np.dtype = np.float32,
) -> hd.Volume:
    """Load one image series as a :class:`highdicom.Volume` (array + LPS affine + FoR).

    ``source`` is a directory, a list of file paths or a list of pydicom datasets of one
    series (single-frame images, or one enhanced multi-frame CT/MR/PET object). Array axes
    are ``(slice, row, column)``; slice 0 is the most negative position along the normal
    ``row cosines × column cosines`` (see module docstring). With ``rescale`` (default) the
    modality rescale of each slice/frame is applied (PS3.3 C.7.6.16.2.9, C.11.1.1.2).

    Raises :class:`GeometryError` for gantry tilt, missing slices, non-uniform spacing,
    mixed orientations or sizes and duplicate positions.

    Example:
        >>> pet = load_series("OUT/PAT001/TP0/PT")  # doctest: +SKIP
        >>> pet.spacing, pet.affine[:3, 3]  # doctest: +SKIP
    """
    datasets = _as_datasets(source)
    frames = _collect_frames(datasets)
    geom = _check_and_sort(frames)
    ref = frames[0]
    n = len(frames)
    out = np.empty((n, ref.rows, ref.columns), dtype=dtype)
    cache: dict[int, np.ndarray] = {}
    for k, idx in enumerate(geom.order):
        f = frames[int(idx)]
        if f.frame is None:
            plane = _pixels(f.ds)[0]
        else:
            key = id(f.ds)
            if key not in cache:
                cache[key] = _pixels(f.ds)
            plane = cache[key][f.frame]
        if rescale and (f.slope != 1.0 or f.intercept != 0.0):
            # float64 for one plane only, then rounded once to the output dtype (as GDCM).
            out[k] = plane * f.slope + f.intercept
        else:
            out[k] = plane
    first = frames[int(geom.order[0])]
    # Columns of the affine: slice axis = normal × spacing, row axis (down the columns)
    # = column cosines × row spacing, column axis = row cosines × column spacing.
    affine = np.eye(4)
    affine[:3, 0] = geom.normal * geom.slice_spacing_mm
    row, col = _unit_cosines(first.orientation)
    affine[:3, 1] = col * first.spacing[0]
    affine[:3, 2] = row * first.spacing[1]
    affine[:3, 3] = first.position
    for_uid = getattr(first.ds, "FrameOfReferenceUID", None)
    return hd.Volume(
        array=out,
        affine=affine,
        coordinate_system="PATIENT",
        frame_of_reference_uid=str(for_uid) if for_uid else None,
    )
