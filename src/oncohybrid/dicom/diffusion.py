"""Diffusion-weighted MR series: b-values, gradient directions and image kinds per volume.

A DWI series holds one volume per b-value (and, for directional images, per gradient
direction), classic single-frame or enhanced multi-frame. :func:`read_dwi` splits it with
:func:`oncohybrid.dicom.volume.series_parts` (rules in :mod:`oncohybrid.dicom.split`),
loads each part with ``load_series(part=)`` and records where its b-value came from.

b-value, first found wins, whatever the (0008,0070) *Manufacturer* says:

1. ``standard``: (0018,9087) *Diffusion b-value* of the MR Diffusion functional group of
   an enhanced object (PS3.3 C.8.13.5.9) or of a classic image;
2. ``siemens``: (0019,100C) *B_value* in the block reserved by ``SIEMENS MR HEADER``,
   else ``B_value`` of the CSA Image Header Info (0029,1010) (``SIEMENS CSA HEADER``,
   read with :mod:`nibabel.nicom.csareader`);
3. ``ge``: first value of (0043,1039) *Slop_int_6…9* (``GEMS_PARM_01``); some software
   versions add 10⁹ as a flag, which is subtracted;
4. ``philips``: (2001,1003) *Diffusion B-Factor* (``Philips Imaging DD 001``).

Kind of image (:class:`DiffusionKind`): ``NONE`` for b = 0; ``TRACE`` for trace-weighted
(isotropic) images: (0018,9075) *Diffusion Directionality* ``ISOTROPIC``, Image Type
value ``TRACEW``/``TRACE`` (Siemens, GE), Philips (2001,1004) *Diffusion Direction* ``I``,
or a b > 0 image that states no direction; ``DIRECTIONAL`` for (0018,9075)
``DIRECTIONAL``/``BMATRIX`` or a non-zero gradient vector in (0018,9089) *Diffusion
Gradient Orientation* or Siemens (0019,100E). Derived maps (Image Type ``ADC``, ``FA``,
``EADC``) are not diffusion-weighted images and are left out.

References: DICOM PS3.3 C.8.13.5.9 (MR Diffusion Macro); QIBA DWI Profile (2019) §3;
Li X. et al., "The first step for neuroimaging data analysis: DICOM to NIfTI conversion",
J Neurosci Methods 264:47–56 (2016) (dcm2niix vendor rules).
"""

from __future__ import annotations

import enum
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from oncohybrid.dicom.split import SeriesPart, fg_item, private_value
from oncohybrid.dicom.volume import _as_datasets, load_series, series_label, series_parts
from oncohybrid.errors import DicomError

__all__ = [
    "BValueSource",
    "DiffusionError",
    "DiffusionKind",
    "DiffusionPlane",
    "DiffusionVolume",
    "DwiSeries",
    "GE_B_VALUE_OFFSET",
    "plane_diffusion",
    "read_dwi",
]

#: GE adds this to the first value of (0043,1039) on some software versions.
GE_B_VALUE_OFFSET = 1_000_000_000


class DiffusionError(DicomError):
    """A DWI series that gives no usable b-values (names the b-value); exit code 2."""

    exit_code = 2


class BValueSource(enum.StrEnum):
    """Where the b-value was read (the ``b_value_source`` of ``oncohybrid dwi adc``)."""

    STANDARD = "standard"
    SIEMENS = "siemens"
    GE = "ge"
    PHILIPS = "philips"


class DiffusionKind(enum.StrEnum):
    """What a diffusion-weighted plane is: unweighted, trace-weighted or one direction."""

    NONE = "none"
    TRACE = "trace"
    DIRECTIONAL = "directional"
    DERIVED = "derived"  # ADC/FA/exponential-ADC maps stored in the series


@dataclass(frozen=True)
class DiffusionPlane:
    """Diffusion attributes of one plane: b-value (s/mm²), its source and attribute,
    the gradient direction (unit vector, patient LPS, or None) and the kind."""

    b_value: float | None
    source: BValueSource | None
    attribute: str | None
    direction: tuple[float, float, float] | None
    kind: DiffusionKind


@dataclass(frozen=True)
class DiffusionVolume:
    """One loaded volume of a DWI series with its diffusion attributes."""

    b_value: float
    source: BValueSource
    attribute: str
    direction: tuple[float, float, float] | None
    kind: DiffusionKind
    volume: hd.Volume
    part: SeriesPart


@dataclass(frozen=True)
class DwiSeries:
    """A DWI series: its volumes (ordered by b-value) and the datasets it was read from."""

    volumes: tuple[DiffusionVolume, ...]
    datasets: tuple[Dataset, ...]
    label: str

    @property
    def b_values(self) -> list[float]:
        """Distinct b-values, ascending."""
        return sorted({v.b_value for v in self.volumes})

    @property
    def b_value_source(self) -> BValueSource:
        """The source of the b-values (the first one, by precedence, used in the series)."""
        order = list(BValueSource)
        return min((v.source for v in self.volumes), key=order.index)

    def trace(self, b_value: float) -> hd.Volume:
        """The trace-weighted volume at ``b_value``: the stored trace/unweighted image, else
        the geometric mean of the directional images (the trace of an isotropic tensor,
        Basser P.J. & Pierpaoli C., J Magn Reson B 111:209–219, 1996)."""
        at = [v for v in self.volumes if v.b_value == b_value]
        if not at:
            raise DiffusionError(f"{self.label}: no image with b-value {b_value:g} s/mm²; "
                                 f"the series holds b = {_listing(self.b_values)} s/mm²")
        stored = [v for v in at if v.kind in (DiffusionKind.TRACE, DiffusionKind.NONE)]
        if stored:
            return stored[0].volume
        arrays = [np.clip(v.volume.array.astype(np.float64), 1e-12, None) for v in at]
        mean = np.exp(np.mean(np.log(np.stack(arrays)), axis=0))
        return at[0].volume.with_array(mean.astype(np.float32))

    def signals(self, b_values: Sequence[float] | None = None
                ) -> tuple[np.ndarray, np.ndarray, hd.Volume]:
        """``(b_values, signals, reference)``: the trace-weighted signals as an array of
        shape ``(n_b, slices, rows, columns)`` for ``b_values`` (default: all), with the
        b = lowest volume as the geometric reference. Raises :class:`DiffusionError` for a
        b-value the series does not hold or volumes on different grids."""
        chosen = self.b_values if b_values is None else [float(b) for b in b_values]
        vols = [self.trace(b) for b in chosen]
        ref = vols[0]
        for b, v in zip(chosen, vols, strict=True):
            if v.spatial_shape != ref.spatial_shape or not np.allclose(
                    v.affine, ref.affine, atol=1e-3):
                raise DiffusionError(f"{self.label}: the b = {b:g} s/mm² volume lies on a "
                                     "different grid from the others")
        stack = np.stack([np.asarray(v.array, dtype=np.float64) for v in vols])
        return np.asarray(chosen, dtype=np.float64), stack, ref


def _listing(values: Iterable[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


# ---------------------------------------------------------------------------------------
# Per-plane attributes
# ---------------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bytes):
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    try:
        return float(value[0])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None


def _csa_b_value(ds: Dataset) -> tuple[float | None, tuple[float, float, float] | None]:
    """``B_value`` and ``DiffusionGradientDirection`` of the Siemens CSA Image Header."""
    if private_value(ds, 0x0029, 0x1010, "SIEMENS CSA HEADER") is None:
        return None, None
    with warnings.catch_warnings():  # nibabel warns that its DICOM readers are experimental
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader

    try:
        csa = csareader.get_csa_header(ds, "image")
    except Exception:  # noqa: BLE001 - a damaged CSA header is treated as absent
        return None, None
    if not csa:
        return None, None
    b = csareader.get_b_value(csa) if "B_value" in csa.get("tags", {}) else None
    vector = None
    try:
        g = csareader.get_g_vector(csa)
        if g is not None and len(g) == 3:
            vector = (float(g[0]), float(g[1]), float(g[2]))
    except Exception:  # noqa: BLE001
        vector = None
    return (None if b is None else float(b)), vector


def _b_value(ds: Dataset, frame: int | None
             ) -> tuple[float | None, BValueSource | None, str | None,
                        tuple[float, float, float] | None]:
    item = fg_item(ds, frame, "MRDiffusionSequence")
    if item is not None and "DiffusionBValue" in item and item.DiffusionBValue is not None:
        return float(item.DiffusionBValue), BValueSource.STANDARD, \
            "(0018,9087) Diffusion b-value (MR Diffusion functional group)", None
    if frame is None and ds.get("DiffusionBValue") is not None \
            and ds.DiffusionBValue != "":
        return float(ds.DiffusionBValue), BValueSource.STANDARD, \
            "(0018,9087) Diffusion b-value", None
    value = _number(private_value(ds, 0x0019, 0x100C, "SIEMENS MR HEADER"))
    if value is not None:
        return value, BValueSource.SIEMENS, "(0019,100C) Siemens B_value", None
    csa_b, csa_g = _csa_b_value(ds)
    if csa_b is not None:
        return csa_b, BValueSource.SIEMENS, "(0029,1010) Siemens CSA B_value", csa_g
    value = _number(private_value(ds, 0x0043, 0x1039, "GEMS_PARM_01"))
    if value is not None:
        if value >= GE_B_VALUE_OFFSET:
            value -= GE_B_VALUE_OFFSET
        return value, BValueSource.GE, "(0043,1039) GE Slop_int_6 (first value)", None
    value = _number(private_value(ds, 0x2001, 0x1003, "Philips Imaging"))
    if value is not None:
        return value, BValueSource.PHILIPS, "(2001,1003) Philips Diffusion B-Factor", None
    return None, None, None, None


def _direction(ds: Dataset, frame: int | None) -> tuple[float, float, float] | None:
    value = None
    item = fg_item(ds, frame, "MRDiffusionSequence")
    if item is not None and "DiffusionGradientDirectionSequence" in item \
            and item.DiffusionGradientDirectionSequence:
        value = item.DiffusionGradientDirectionSequence[0].get("DiffusionGradientOrientation")
    if value is None and frame is None:
        value = ds.get("DiffusionGradientOrientation")
        if value is None:
            value = private_value(ds, 0x0019, 0x100E, "SIEMENS MR HEADER")
    if value is None or isinstance(value, bytes):
        return None
    try:
        vec = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return vec if len(vec) == 3 else None  # type: ignore[return-value]


def _image_type(ds: Dataset, frame: int | None) -> list[str]:
    item = fg_item(ds, frame, "MRImageFrameTypeSequence")
    value = item.get("FrameType") if item is not None else ds.get("ImageType")
    if value is None:
        return []
    return [str(v).upper() for v in (value if not isinstance(value, str) else [value])]


def _directionality(ds: Dataset, frame: int | None) -> str | None:
    item = fg_item(ds, frame, "MRDiffusionSequence")
    value = item.get("DiffusionDirectionality") if item is not None else None
    if value is None and frame is None:
        value = ds.get("DiffusionDirectionality")
    return None if value in (None, "") else str(value).upper()


def plane_diffusion(ds: Dataset, frame: int | None = None) -> DiffusionPlane:
    """Diffusion attributes of one plane (``frame``: 0-based index in an enhanced
    multi-frame object, None for a single-frame image). Rules in the module docstring.

    Example:
        >>> info = plane_diffusion(pydicom.dcmread("IM0001"))  # doctest: +SKIP
        >>> info.b_value, info.source.value, info.kind.value  # doctest: +SKIP
        (800.0, 'siemens', 'trace')
    """
    b, source, attribute, csa_g = _b_value(ds, frame)
    direction = _direction(ds, frame) or csa_g
    types = _image_type(ds, frame)
    directionality = _directionality(ds, frame)
    philips_dir = private_value(ds, 0x2001, 0x1004, "Philips Imaging")
    if any(t in ("ADC", "FA", "EADC", "EXP") for t in types):
        kind = DiffusionKind.DERIVED
    elif b is not None and b == 0:
        kind = DiffusionKind.NONE
    elif directionality == "ISOTROPIC" or any(t in ("TRACEW", "TRACE") for t in types) \
            or (isinstance(philips_dir, str) and philips_dir.strip().upper() == "I"):
        kind = DiffusionKind.TRACE
    elif directionality in ("DIRECTIONAL", "BMATRIX") or (
            direction is not None and any(abs(c) > 1e-6 for c in direction)):
        kind = DiffusionKind.DIRECTIONAL
    elif directionality == "NONE":
        kind = DiffusionKind.NONE
    else:
        kind = DiffusionKind.TRACE
    if kind is not DiffusionKind.DIRECTIONAL:
        direction = None
    return DiffusionPlane(b, source, attribute, direction, kind)


# ---------------------------------------------------------------------------------------
# Series
# ---------------------------------------------------------------------------------------


def _label(ds: Dataset) -> str:
    name = getattr(ds, "filename", None)
    if isinstance(name, str | os.PathLike) and name:
        return Path(name).name
    return str(getattr(ds, "SOPInstanceUID", "?"))


def _part_planes(part: SeriesPart, by_label: dict[str, list[Dataset]]
                 ) -> list[tuple[Dataset, int | None]]:
    out: list[tuple[Dataset, int | None]] = []
    for label in part.files:
        for ds in by_label.get(label, []):
            if "PerFrameFunctionalGroupsSequence" in ds:
                out.extend((ds, f - 1) for f in part.frames)
            else:
                out.append((ds, None))
    return out


def read_dwi(source: str | os.PathLike[str] | Iterable[Dataset | str | os.PathLike[str]]
             ) -> DwiSeries:
    """Read a DWI series (directory, files or datasets) into volumes with b-values.

    Raises :class:`DiffusionError` when no plane carries a b-value in any of the places
    listed in the module docstring, or when the planes of one volume disagree on it.

    Example:
        >>> dwi = read_dwi("MR/DWI")  # doctest: +SKIP
        >>> dwi.b_values, dwi.b_value_source.value  # doctest: +SKIP
        ([0.0, 50.0, 400.0, 800.0], 'siemens')
    """
    datasets = _as_datasets(source)
    label = series_label(datasets[0])
    by_label: dict[str, list[Dataset]] = {}
    for ds in datasets:
        by_label.setdefault(_label(ds), []).append(ds)
    volumes: list[DiffusionVolume] = []
    for part in series_parts(datasets):
        infos = [plane_diffusion(ds, frame) for ds, frame in _part_planes(part, by_label)]
        if not infos:
            continue
        if any(i.kind is DiffusionKind.DERIVED for i in infos):
            continue
        bs = {i.b_value for i in infos}
        if None in bs:
            if len(bs) > 1:
                raise DiffusionError(f"{label}, {part.describe()}: some planes carry no "
                                     "b-value while others do")
            continue
        if len(bs) > 1:
            raise DiffusionError(f"{label}, {part.describe()}: planes of one volume carry "
                                 f"different b-values ({_listing(sorted(bs))} s/mm²)")  # type: ignore[arg-type]
        first = infos[0]
        assert first.b_value is not None and first.source is not None
        volume = load_series(datasets, part=part)
        volumes.append(DiffusionVolume(first.b_value, first.source, first.attribute or "",
                                       first.direction, first.kind, volume, part))
    if not volumes:
        raise DiffusionError(
            f"{label}: no b-value in any image: neither (0018,9087) Diffusion b-value nor "
            "Siemens (0019,100C)/CSA B_value, GE (0043,1039) or Philips (2001,1003)")
    volumes.sort(key=lambda v: (v.b_value, v.kind is DiffusionKind.DIRECTIONAL,
                                v.direction or ()))
    return DwiSeries(tuple(volumes), tuple(datasets), label)
