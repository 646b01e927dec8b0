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

import math
import os
from collections.abc import Callable, Iterable, Sequence
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

from oncohybrid.dicom.geometry import (
    SPACING_DEVIATION_FRACTION,
    fit_uniform_grid,
    resample_along_normal,
    shift_planes,
    tilt_angle_deg,
)
from oncohybrid.dicom.raw_values import raw_bytes, raw_float, raw_floats, raw_us
from oncohybrid.dicom.reading import gc_paused
from oncohybrid.dicom.split import SeriesPart, split_planes
from oncohybrid.errors import DicomError, GeometryError

__all__ = [
    "SeriesPart",
    "SeriesVolume",
    "load_series",
    "read_series",
    "series_parts",
    "sort_slices",
    "series_label",
    "volume_notes",
    "ORIENTATION_TOL",
    "POSITION_TOL_MM",
    "SPACING_DEVIATION_FRACTION",
]

#: Largest difference of direction cosines accepted as "the same orientation".
ORIENTATION_TOL = 1e-4
#: Largest in-plane offset (mm) of a slice from the line along the normal (gantry tilt).
POSITION_TOL_MM = 0.01
#: A step larger than this multiple of the median spacing is a missing slice.
GAP_FACTOR = 1.5

_NATIVE_SYNTAXES = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
_PER_FRAME_FG = 0x52009230  # (5200,9230) Per-frame Functional Groups Sequence


class SeriesVolume(hd.Volume):
    """A :class:`highdicom.Volume` loaded from a series, with provenance ``notes``.

    ``notes`` is a tuple of sentences saying how the voxels were made from the stored
    planes when that is more than stacking them: a gantry-tilt correction, a resampling
    to uniform slice spacing. It is empty for a plain stack. Commands that report numbers
    from the volume (``suv``, ``quantify``) print these notes. Volumes derived with
    highdicom methods (``with_array``, ``astype``, cropping …) start with no notes; read
    them from the loaded volume (:func:`volume_notes`).
    """

    def __init__(self, *args: object, notes: Sequence[str] = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.notes: tuple[str, ...] = tuple(notes)


def volume_notes(volume: hd.Volume) -> tuple[str, ...]:
    """Provenance notes of a loaded volume (empty for any other :class:`highdicom.Volume`).

    Example:
        >>> ct = load_series("CT/")  # doctest: +SKIP
        >>> for note in volume_notes(ct): print("note:", note)  # doctest: +SKIP
    """
    return tuple(getattr(volume, "notes", ()) or ())


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
    thickness_mm: float = 0.0  # (0018,0050) Slice Thickness, 0 when absent


def _thickness(value: object) -> float:
    try:
        t = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return t if np.isfinite(t) and t > 0 else 0.0


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
    with gc_paused():  # many surviving small objects: see dicom/reading.py
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
    with gc_paused():  # many surviving small objects: see dicom/reading.py
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


def _slope(container: Dataset | None) -> float | None:
    """(0028,1053) *Rescale Slope* of ``container``: ``None`` when absent or empty, NaN when
    not one number (refused by :func:`load_series` when it rescales, see
    :func:`_check_slopes`)."""
    if container is None:
        return None
    try:
        value = container.get("RescaleSlope")
        if value is None or value == "":
            return None
        return float(value)
    except (TypeError, ValueError):  # "abc", a multi-valued DS, ...
        return math.nan


def _item(seq_parent: Dataset | None, keyword: str) -> Dataset | None:
    if seq_parent is None or keyword not in seq_parent:
        return None
    seq = seq_parent[keyword].value
    return seq[0] if seq else None


def _frames_of(ds: Dataset) -> list[_Frame]:
    """Planes of one dataset: one for a single-frame image, one per frame otherwise."""
    if _PER_FRAME_FG in ds._dict:
        return _enhanced_frames(ds)
    # Each value from the raw bytes when raw_values is sure to give the converted value,
    # else (and for every error) the converted element as before: same values, same errors.
    fast = raw_floats(ds, 0x00200032, 3)
    ipp = (np.asarray(fast, dtype=np.float64) if fast is not None else _float_seq(
        _require(ds, "ImagePositionPatient"), 3, "(0020,0032) Image Position", ds))
    fast = raw_floats(ds, 0x00200037, 6)
    iop = (np.asarray(fast, dtype=np.float64) if fast is not None else _float_seq(
        _require(ds, "ImageOrientationPatient"), 6, "(0020,0037) Image Orientation", ds))
    fast = raw_floats(ds, 0x00280030, 2)
    ps = (np.asarray(fast, dtype=np.float64) if fast is not None else _float_seq(
        _require(ds, "PixelSpacing"), 2, "(0028,0030) Pixel Spacing", ds))
    # Absent/empty slope: identity (PS3.3 C.11.1.1.2). A 0 is kept (it used to be read as
    # 1 by ``or 1.0``) so that load_series can refuse it.
    slope = raw_float(ds, 0x00281053)
    if slope is None:
        slope = _slope(ds)
    slope = 1.0 if slope is None else slope
    intercept = raw_float(ds, 0x00281052)
    if intercept is None:
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    else:
        intercept = intercept or 0.0  # as ``DSfloat or 0.0``: -0 becomes +0
    thickness = raw_float(ds, 0x00180050)
    rows, cols = raw_us(ds, 0x00280010), raw_us(ds, 0x00280011)
    return [
        _Frame(ds, None, ipp, iop, (float(ps[0]), float(ps[1])),
               int(ds.Rows) if rows is None else rows,
               int(ds.Columns) if cols is None else cols, slope, intercept,
               _thickness(ds.get("SliceThickness") if thickness is None else thickness))
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
        slope = _slope(_item(fg, "PixelValueTransformationSequence"))
        if slope is None:
            slope = _slope(_item(shared, "PixelValueTransformationSequence"))
        if slope is None:
            slope = _slope(ds)
        intercept = lookup(fg, "PixelValueTransformationSequence", "RescaleIntercept")
        if intercept is None:
            intercept = ds.get("RescaleIntercept", 0.0)
        frames.append(
            _Frame(
                ds, i,
                _float_seq(ipp, 3, f"frame {i + 1} Image Position", ds),
                _float_seq(iop, 6, f"frame {i + 1} Image Orientation", ds),
                tuple(float(v) for v in _float_seq(ps, 2, "Pixel Spacing", ds)),  # type: ignore[arg-type]
                int(ds.Rows), int(ds.Columns), 1.0 if slope is None else slope,
                float(intercept),
                _thickness(lookup(fg, "PixelMeasuresSequence", "SliceThickness")),
            )
        )
    return frames


def _check_slopes(frames: Sequence[_Frame]) -> None:
    """Refuse a plane whose (0028,1053) *Rescale Slope* is 0 or not a number (PS3.3
    C.11.1.1.2): every rescaled value would be the intercept (or NaN), so CT numbers or
    MR values read from it would be wrong without a sign. Only checked when rescaling."""
    for f in frames:
        if math.isfinite(f.slope) and f.slope != 0:
            continue
        where = f"{series_label(f.ds)}, {_file_label(f.ds)}"
        if f.frame is not None:
            where += f", frame {f.frame + 1}"
        what = ("is 0: every pixel would be the Rescale Intercept" if f.slope == 0
                else "is not a number")
        raise GeometryError(f"{where}: (0028,1053) Rescale Slope {what}; the pixel values "
                            "cannot be rescaled (refused; load with rescale=False for the "
                            "stored values)")


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
    distances: np.ndarray  # sorted distances along the normal (mm)
    #: Per sorted plane (rows, columns) in-plane shift undoing a gantry tilt, or None.
    shifts_rc: np.ndarray | None = None
    #: Uniform target distances when the planes must be resampled along the normal.
    targets: np.ndarray | None = None
    notes: tuple[str, ...] = ()


def _plane_label(f: _Frame) -> str:
    if f.frame is None:
        return _file_label(f.ds)
    return f"frame {f.frame + 1} of {_file_label(f.ds)}"


def _pair_label(a: _Frame, b: _Frame) -> str:
    if a.frame is not None and b.frame is not None and a.ds is b.ds:
        lo, hi = sorted((a.frame + 1, b.frame + 1))
        return f"frames {lo} and {hi} of {_file_label(a.ds)}"
    return f"{_plane_label(a)} and {_plane_label(b)}"


def _series_uid(ds: Dataset, memo: dict[bytes, str]) -> str:
    """``str(ds.SeriesInstanceUID)`` ("" when absent), converted once per distinct
    encoded value: equal bytes convert to equal UIDs."""
    raw = raw_bytes(ds, 0x0020000E, ("UI", None))
    if raw is None:
        return str(getattr(ds, "SeriesInstanceUID", ""))
    if raw not in memo:
        memo[raw] = str(getattr(ds, "SeriesInstanceUID", ""))
    return memo[raw]


def _check_one_series(frames: Sequence[_Frame]) -> None:
    memo: dict[bytes, str] = {}
    series_uids = {_series_uid(f.ds, memo) for f in frames}
    if len(series_uids) > 1:
        raise DicomError(
            f"{series_label(frames[0].ds)}: images of {len(series_uids)} different series "
            "were given as one series"
        )


def _check_and_sort(frames: list[_Frame], *, correct_tilt: bool = True) -> _Geometry:
    """Sort planes along the normal and check they form one volume; decide the gantry
    tilt correction and the resampling to uniform spacing (:mod:`oncohybrid.dicom.geometry`).
    """
    ref = frames[0]
    label = series_label(ref.ds)
    _check_one_series(frames)
    iops = np.stack([f.orientation for f in frames])
    bad = np.flatnonzero(np.abs(iops - ref.orientation).max(axis=1) > ORIENTATION_TOL)
    if bad.size:
        f = frames[int(bad[0])]
        raise GeometryError(
            f"{label}: mixed orientations — {_plane_label(f)} has Image Orientation "
            f"{f.orientation.round(5).tolist()} but {_plane_label(ref)} has "
            f"{ref.orientation.round(5).tolist()}"
        )
    sizes_ok = all(f.rows == ref.rows and f.columns == ref.columns for f in frames)
    # The same comparison np.allclose(rtol=0, atol=1e-4) makes per frame for finite
    # spacings; anything else (inf, NaN, a mismatch) runs the loop, which raises.
    spacing_ok = bool(np.all(np.abs(np.array([f.spacing for f in frames])
                                    - np.array(ref.spacing)) <= 1e-4))
    for f in () if sizes_ok and spacing_ok else frames:
        if (f.rows, f.columns) != (ref.rows, ref.columns):
            raise GeometryError(
                f"{label}: mixed image sizes — {_file_label(f.ds)} is {f.rows}×{f.columns}, "
                f"{_file_label(ref.ds)} is {ref.rows}×{ref.columns}"
            )
        if not np.allclose(f.spacing, ref.spacing, rtol=0, atol=1e-4):
            raise GeometryError(
                f"{label}: mixed pixel spacing — {_plane_label(f)} has {f.spacing}, "
                f"{_plane_label(ref)} has {ref.spacing}"
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
        thickness = float(ref.ds.get("SliceThickness", 1.0) or 1.0)
        return _Geometry(order, normal, thickness, dist_sorted)

    steps = np.diff(dist_sorted)
    dup = np.flatnonzero(steps < 1e-3)
    if dup.size:
        a, b = frames[int(order[dup[0]])], frames[int(order[dup[0] + 1])]
        raise GeometryError(
            f"{label}: duplicate slice positions — {_pair_label(a, b)} are both at "
            f"{dist_sorted[dup[0]]:.3f} mm along the normal (repeated acquisition, several "
            "time points or echoes in one series, and no attribute tells them apart)"
        )
    notes: list[str] = []
    # Gantry tilt / skew: positions must lie on the line through the first slice along n.
    offsets = positions[order] - positions[order[0]]
    in_plane = offsets - np.outer(offsets @ normal, normal)
    drift = np.linalg.norm(in_plane, axis=1)
    allowed = POSITION_TOL_MM + 1e-4 * np.abs(dist_sorted - dist_sorted[0])
    shifts_rc = None
    if np.any(drift > allowed):
        angle = tilt_angle_deg(in_plane, dist_sorted - dist_sorted[0])
        if not correct_tilt:
            k = int(np.argmax(drift - allowed))
            raise GeometryError(
                f"{label}: slice positions are not along the slice normal (gantry tilt or "
                f"sheared stack, about {angle:.1f}°; {_plane_label(frames[int(order[k])])} is "
                f"{drift[k]:.3f} mm off the normal line); load with correct_tilt=True to "
                "resample onto an orthogonal grid"
            )
        # Plane k's pixel (r, c) lies at P0 + d·n + v_k + r·Δr·col + c·Δc·row, so the
        # orthogonal grid's pixel (r, c) is plane k's pixel (r, c) - (v_k·col/Δr,
        # v_k·row/Δc): the row index runs along the column cosines (PixelSpacing[0]),
        # the column index along the row cosines (PixelSpacing[1]) (PS3.3 C.7.6.2.1.1).
        shifts_rc = np.stack(
            [(in_plane @ col) / ref.spacing[0], (in_plane @ row) / ref.spacing[1]], axis=1
        )
        notes.append(
            f"gantry tilt {angle:.1f}° corrected: each plane shifted within its plane by up "
            f"to {drift.max():.2f} mm onto an orthogonal grid (linear interpolation, as "
            "dcm2niix; pixels shifted in from outside the acquired plane hold the series' "
            "minimum value)"
        )
    median = float(np.median(steps))
    # A step is a gap (missing slice) when it is much larger than the median step and
    # than the Slice Thickness of the planes on both sides: a head CT with 4 mm slices
    # then 7 mm slices (GE HiSpeed, dcm_qa_ct) is variable by design, not missing data.
    thick = np.array([frames[int(i)].thickness_mm for i in order])
    covered = np.maximum(median, np.minimum(thick[:-1], thick[1:]))
    gaps = np.flatnonzero(steps > GAP_FACTOR * covered)
    if gaps.size:
        g = int(gaps[0])
        raise GeometryError(
            f"{label}: missing slice(s) — gap of {steps[g]:.3f} mm between "
            f"{dist_sorted[g]:.3f} and {dist_sorted[g + 1]:.3f} mm along the normal "
            f"(median spacing {median:.3f} mm, {gaps.size} gap(s))"
        )
    fit = fit_uniform_grid(dist_sorted)
    targets = None
    if fit.uniform:
        # Mean spacing over the whole stack, the value ITK's ImageSeriesReader reports.
        spacing = float((dist_sorted[-1] - dist_sorted[0]) / (n - 1))
    else:
        # The finer of the median step and the thinnest slice, so that the thin part of
        # a variable-thickness stack keeps its resolution.
        span = float(dist_sorted[-1] - dist_sorted[0])
        target = min(median, float(thick[thick > 0].min())) if (thick > 0).any() else median
        n_out = max(2, int(round(span / target)) + 1)
        spacing = span / (n_out - 1)
        targets = dist_sorted[0] + np.arange(n_out) * spacing
        notes.append(
            f"non-uniform slice spacing: {_plane_label(frames[int(order[fit.worst_index])])} "
            f"at {dist_sorted[fit.worst_index]:.3f} mm lies {fit.max_deviation_mm:.2f} mm off "
            f"the least-squares {fit.spacing_mm:.3f} mm grid (more than "
            f"{SPACING_DEVIATION_FRACTION:.0%} of a voxel); {n} planes resampled linearly "
            f"along the normal onto {n_out} planes {spacing:.3f} mm apart"
        )
    return _Geometry(order, normal, spacing, dist_sorted, shifts_rc, targets, tuple(notes))


def sort_slices(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Return single-frame datasets of one series in volume order (slice 0 first).

    Order is by Image Position projected on the slice normal (row × column cosines),
    increasing, exactly as :func:`load_series` stacks them; the same geometry checks are
    applied (raises :class:`GeometryError`). A gantry-tilted or irregularly spaced series
    is sorted but not resampled: :func:`load_series` resamples such a series, so its
    slices then no longer match these datasets one to one (see its ``notes``). An
    enhanced multi-frame object is returned unchanged (its frames are ordered inside
    :func:`load_series`).

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


def series_parts(
    source: str | os.PathLike[str] | Iterable[Dataset | str | os.PathLike[str]],
) -> list[SeriesPart]:
    """List the volumes one series holds, with the attribute values that tell them apart.

    A series of one volume gives one part with empty ``values``. Several echoes, time
    points, b-values, diffusion directions, image/frame types, or an enhanced and a classic
    export under one Series Instance UID give one part each (rules in
    :mod:`oncohybrid.dicom.split`); load one with ``load_series(source, part=k)``.

    Example:
        >>> for p in series_parts("MR/multi-echo"):  # doctest: +SKIP
        ...     print(p.describe())
        part 0: Echo Number 1 (30 planes, files IM0001 …)
        part 1: Echo Number 2 (30 planes, files IM0031 …)
    """
    frames = _collect_frames(_as_datasets(source))
    _check_one_series(frames)
    return split_planes(frames)


def _choose_part(frames: list[_Frame], part: int | SeriesPart | None) -> list[_Frame]:
    _check_one_series(frames)
    parts = split_planes(frames)
    if part is None:
        if len(parts) == 1:
            return frames
        names = sorted({k for p in parts for k in p.values})
        listing = "; ".join(p.describe() for p in parts)
        raise GeometryError(
            f"{series_label(frames[0].ds)} holds {len(parts)} volumes told apart by "
            f"{', '.join(names)}: {listing}. Choose one with load_series(..., part=K) "
            "(see series_parts)"
        )
    k = part.index if isinstance(part, SeriesPart) else int(part)
    if not 0 <= k < len(parts):
        raise GeometryError(
            f"{series_label(frames[0].ds)}: part {k} does not exist; the series holds "
            f"{len(parts)} volume(s): " + "; ".join(p.describe() for p in parts)
        )
    return [frames[i] for i in parts[k].members]


# ---------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------


def _native_layout(ds: Dataset) -> tuple[np.dtype, int] | None:
    """(NumPy dtype, unused high bits) for uncompressed little-endian monochrome data with
    the usual Bits Stored/High Bit layout (PS3.5 8.1.1), else None (pydicom decodes)."""
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is not None and tsyntax not in _NATIVE_SYNTAXES:
        return None

    def us(tag: int, keyword: str, default: int) -> int:
        value = raw_us(ds, tag)
        return int(ds.get(keyword, default)) if value is None else value

    if us(0x00280002, "SamplesPerPixel", 1) != 1:
        return None
    bits = us(0x00280100, "BitsAllocated", 0)
    stored = us(0x00280101, "BitsStored", bits)
    if bits not in (8, 16, 32) or not 0 < stored <= bits:
        return None
    if us(0x00280102, "HighBit", stored - 1) != stored - 1:
        return None
    signed = us(0x00280103, "PixelRepresentation", 0) == 1
    return np.dtype(f"<{'i' if signed else 'u'}{bits // 8}"), bits - stored


def _pixels(ds: Dataset) -> np.ndarray:
    """Stored pixel values of all frames as (frames, rows, columns). Native data is read
    with np.frombuffer (no copy when all bits are used); unused high bits are masked
    (unsigned) or sign-extended (signed) as pydicom does."""
    if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        # A header read with stop_before_pixels, or a non-image object in the list.
        raise DicomError(f"{series_label(ds)}, {_file_label(ds)}: no (7FE0,0010) Pixel Data "
                         "(read without pixels, or not an image)")
    rows, cols = raw_us(ds, 0x00280010), raw_us(ds, 0x00280011)
    rows = int(ds.Rows) if rows is None else rows
    cols = int(ds.Columns) if cols is None else cols
    n = int(ds.get("NumberOfFrames", 1) or 1) if 0x00280008 in ds._dict else 1
    layout = _native_layout(ds)
    if layout is not None:
        dtype, unused = layout
        # pydicom converts OB/OW to the very same bytes (no swapping): read them unconverted.
        raw = raw_bytes(ds, 0x7FE00010, ("OW", "OB", None))
        if raw is None:
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
    part: int | SeriesPart | None = None,
    correct_tilt: bool = True,
    plane_scale: Callable[[Dataset, int | None], float] | None = None,
) -> SeriesVolume:
    """Load one image series as a :class:`SeriesVolume` (a :class:`highdicom.Volume`:
    array + LPS affine + frame of reference, with provenance ``notes``).

    ``source`` is a directory, a list of file paths or a list of pydicom datasets of one
    series (single-frame images, or enhanced multi-frame CT/MR/PET objects). Array axes
    are ``(slice, row, column)``; slice 0 is the most negative position along the normal
    ``row cosines × column cosines`` (see module docstring). With ``rescale`` (default) the
    modality rescale of each slice/frame is applied (PS3.3 C.7.6.16.2.9, C.11.1.1.2).

    Real-scanner geometry (:mod:`oncohybrid.dicom.geometry`):

    - planes within 10 % of a voxel of the least-squares uniform grid are stacked as they
      are (bed-junction spacing of whole-body PET); beyond that the planes are resampled
      linearly onto a uniform grid, with a note;
    - a gantry tilt is corrected by shifting each plane within its plane onto an
      orthogonal grid, with a note (``correct_tilt=False`` refuses the series instead).

    ``plane_scale(dataset, frame)`` (frame: 0-based index in a multi-frame object, else
    ``None``) gives a factor for each stored plane, applied after its rescale and before
    any resampling or tilt correction, so that a per-slice factor (SUV with Decay
    Correction NONE) never lands on a plane interpolated from other slices. For floating
    ``dtype`` only.

    A series holding several volumes (echoes, time points, b-values …, or an enhanced and
    a classic export under one UID) is refused with a list of its parts unless ``part``
    (an index or a :class:`SeriesPart` from :func:`series_parts`) chooses one.

    Raises :class:`GeometryError` for missing slices, mixed orientations or sizes,
    duplicate positions nothing tells apart, several volumes without ``part``, and (with
    ``correct_tilt=False``) gantry tilt.

    Example:
        >>> pet = load_series("OUT/PAT001/TP0/PT")  # doctest: +SKIP
        >>> pet.spacing, pet.affine[:3, 3], pet.notes  # doctest: +SKIP
    """
    datasets = _as_datasets(source)
    frames = _choose_part(_collect_frames(datasets), part)
    if rescale:
        _check_slopes(frames)
    geom = _check_and_sort(frames, correct_tilt=correct_tilt)
    ref = frames[0]
    n = len(frames)
    regular = geom.shifts_rc is None and geom.targets is None
    # Irregular stacks are built in floating point, resampled, then cast once.
    stack_dtype = dtype if regular else np.float64
    out = np.empty((n, ref.rows, ref.columns), dtype=stack_dtype)
    buf = np.empty((ref.rows, ref.columns), dtype=np.float64)  # one rescaled plane
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
            if plane.dtype.kind in "iu":
                # The same float64 multiply and add as ``plane * slope + intercept`` (an
                # integer plane times a Python float is computed in float64 either way),
                # into a reused buffer instead of two temporaries per plane.
                np.multiply(plane, f.slope, out=buf)
                np.add(buf, f.intercept, out=buf)
                out[k] = buf
            else:
                out[k] = plane * f.slope + f.intercept
        else:
            out[k] = plane
        if plane_scale is not None:
            # In the output dtype on a regular stack (float32 × float32, as a caller
            # scaling the finished volume would), in float64 before resampling otherwise.
            out[k] *= out.dtype.type(plane_scale(f.ds, f.frame))
    if not regular:
        fill = float(out.min())
        if geom.shifts_rc is not None:
            # NaN outside the acquired planes, so resampling along the normal never blends
            # the fill value into a voxel; such voxels get the fill value at the end.
            out = shift_planes(out, geom.shifts_rc, fill=np.nan)
        if geom.targets is not None:
            out = resample_along_normal(out, geom.distances, geom.targets)
        if geom.shifts_rc is not None:
            out[np.isnan(out)] = fill
        target = np.dtype(dtype)
        if target.kind in "iu":
            out = np.rint(out)
        out = out.astype(target, copy=False)
    first = frames[int(geom.order[0])]
    # Columns of the affine: slice axis = normal × spacing, row axis (down the columns)
    # = column cosines × row spacing, column axis = row cosines × column spacing. After a
    # tilt correction every plane sits on the normal line through the first plane.
    affine = np.eye(4)
    affine[:3, 0] = geom.normal * geom.slice_spacing_mm
    row, col = _unit_cosines(first.orientation)
    affine[:3, 1] = col * first.spacing[0]
    affine[:3, 2] = row * first.spacing[1]
    affine[:3, 3] = first.position
    for_uid = getattr(first.ds, "FrameOfReferenceUID", None)
    return SeriesVolume(
        array=out,
        affine=affine,
        coordinate_system="PATIENT",
        frame_of_reference_uid=str(for_uid) if for_uid else None,
        notes=geom.notes,
    )
