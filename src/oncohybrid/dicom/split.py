"""Split the planes of one series into volumes by the attribute that tells them apart.

One Series Instance UID may hold several volumes: echoes of a multi-echo MR, time points
of a dynamic series, b-values and diffusion directions of a DWI, original and derived
images, or an enhanced multi-frame object next to its classic single-frame export (some
vendors give both the same UID). Their planes repeat the same positions, so stacking them
as one volume is wrong.

:func:`split_planes` groups planes by the first attributes, in this order, that separate
planes lying at the same position:

1. (0008,0016) *SOP Class UID* — always: an enhanced and a classic object never mix.
2. (0008,0008) *Image Type*, or (0008,9007) *Frame Type* of the MR/CT/PET frame type
   functional group of an enhanced object (PS3.3 C.8.13.5.1, C.8.15.3.1, C.8.22.5.1).
3. (0018,0086) *Echo Numbers*, (0018,0081) *Echo Time*, or (0018,9082) *Effective Echo
   Time* of the MR Echo functional group (PS3.3 C.8.13.5.2).
4. (0018,9087) *Diffusion b-value* (classic or MR Diffusion functional group, PS3.3
   C.8.13.5.9), else the vendors' private b-value: Siemens (0019,100C), GE (0043,1039)
   first value modulo 10⁹, Philips (2001,1003).
5. (0018,9089) *Diffusion Gradient Orientation*, else Siemens (0019,100E).
6. (0020,9056) *Stack ID* and (0020,9128) *Temporal Position Index* of the Frame Content
   functional group (PS3.3 C.7.6.16.2.2), (0020,930D) *Temporal Position Time Offset*
   (C.7.6.16.2.23), (0020,0100) *Temporal Position Identifier*, (0018,1060) *Trigger
   Time*, (0008,0022)/(0008,0032) *Acquisition Date/Time* or (0018,9074) *Frame
   Acquisition DateTime*.

An attribute is used only where it reduces the planes repeated at one position and gives
no more groups than there are planes at the most repeated position (so a per-slice
acquisition time never splits a volume into single slices). When no attribute separates
the repeats but every position is repeated equally often (m times), the planes at each
position are ranked by acquisition time, trigger time, Instance Number and frame number,
and rank r forms volume r ("Repetition"), as dcm2niix does for repeated series.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from oncohybrid.dicom.raw_values import raw_bytes

__all__ = ["ABSENT", "SeriesPart", "split_planes", "frame_ranges"]

#: The value shown for planes that lack the discriminating attribute (e.g. the b = 0
#: volume of a DWI series that records no b-value for it).
ABSENT = "(absent)"


class _Plane(Protocol):
    ds: Dataset
    frame: int | None
    position: np.ndarray
    orientation: np.ndarray


@dataclass(frozen=True)
class SeriesPart:
    """One volume of a series: the discriminating attribute values and its planes.

    ``values`` maps attribute names ("Echo Number", "SOP Class", "Diffusion b-value" …) to
    the part's value (as text); it is empty when the series is one volume. ``frames`` are
    the 1-based frame numbers for planes of enhanced multi-frame objects; ``files`` the
    file names (or SOP Instance UIDs) of the objects holding the planes.
    """

    index: int
    values: dict[str, str]
    n_planes: int
    frames: tuple[int, ...]
    files: tuple[str, ...]
    members: tuple[int, ...] = field(repr=False)

    def describe(self) -> str:
        """One line for messages: ``part 1: Echo Number 2 (6 planes, files a.dcm …)``."""
        what = ", ".join(f"{k} {v}" for k, v in self.values.items()) or "all planes"
        where = []
        if self.frames:
            where.append(f"frames {frame_ranges(self.frames)}")
        shown = ", ".join(self.files[:3]) + (" …" if len(self.files) > 3 else "")
        where.append(f"{'file' if len(self.files) == 1 else 'files'} {shown}")
        return f"part {self.index}: {what} ({self.n_planes} planes, {'; '.join(where)})"


def frame_ranges(numbers: Sequence[int]) -> str:
    """Compact 1-based frame list: ``1-5, 7, 9-10``."""
    nums = sorted(set(int(n) for n in numbers))
    out: list[str] = []
    start = prev = nums[0] if nums else 0
    for n in nums[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


# ---------------------------------------------------------------------------------------
# Per-plane attribute values
# ---------------------------------------------------------------------------------------


def functional_groups(ds: Dataset, frame: int | None) -> list[Dataset]:
    """The functional-group items that apply to ``frame``: its per-frame item, then the
    shared one (PS3.3 C.7.6.16); empty for a classic (single-frame) object."""
    if frame is None:
        return []
    groups = []
    if "PerFrameFunctionalGroupsSequence" in ds:
        groups.append(ds.PerFrameFunctionalGroupsSequence[frame])
    if "SharedFunctionalGroupsSequence" in ds and ds.SharedFunctionalGroupsSequence:
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    return groups


def fg_item(ds: Dataset, frame: int | None, seq_kw: str) -> Dataset | None:
    """First item of functional group ``seq_kw`` for ``frame`` (per-frame, then shared)."""
    for grp in functional_groups(ds, frame):
        if seq_kw in grp and grp[seq_kw].value:
            return grp[seq_kw].value[0]
    return None


def _fg(ds: Dataset, frame: int | None, seq_kw: str, attr: str) -> object | None:
    """Value of ``attr`` in functional group ``seq_kw`` of frame ``frame`` (per-frame, then
    shared, PS3.3 C.7.6.16), or None."""
    for grp in functional_groups(ds, frame):
        if seq_kw in grp and grp[seq_kw].value:
            item = grp[seq_kw].value[0]
            if attr in item and item[attr].value not in (None, ""):
                return item[attr].value
    return None


def _top(ds: Dataset, keyword: str) -> object | None:
    if keyword in ds and ds[keyword].value not in (None, ""):
        return ds[keyword].value
    return None


def private_value(ds: Dataset, group: int, element: int, creator: str) -> object | None:
    """Private element ``(group, 0x10xx)`` in the block reserved by ``creator``, whichever
    block number it got (PS3.5 §7.8.1: ``(group, 00bb)`` holding the creator reserves
    ``(group, bbxx)``); None when absent, empty or reserved by nobody of that name."""
    for block in range(0x10, 0x100):
        owner = ds.get((group, block))
        if owner is None:
            continue
        if creator.lower() in str(owner.value).lower():
            elem = ds.get((group, (block << 8) | (element & 0xFF)))
            if elem is None or elem.value in (None, "", b""):
                return None
            return elem.value
    return None


def _text(value: object | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return None  # undecoded private data: not comparable text
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float | int):
        return f"{float(value):g}"
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:
        return str(value)
    return "\\".join(_text(v) or "" for v in items)


def _number(value: object | None) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _sop_class(p: _Plane) -> str | None:
    uid = _top(p.ds, "SOPClassUID")
    if uid is None:
        return None
    name = UID(str(uid)).name
    return name or str(uid)


def _sop_class_by_bytes() -> Callable[[_Plane], str | None]:
    """:func:`_sop_class`, computed once per distinct encoded SOP Class UID: it depends
    on that element only, and equal bytes convert to equal UIDs."""
    seen: dict[bytes, str | None] = {}

    def fn(p: _Plane) -> str | None:
        raw = raw_bytes(p.ds, 0x00080016, ("UI", None))
        if raw is None:
            return _sop_class(p)
        if raw not in seen:
            seen[raw] = _sop_class(p)
        return seen[raw]

    return fn


def _image_type(p: _Plane) -> str | None:
    for seq in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence",
                "PETFrameTypeSequence"):
        value = _fg(p.ds, p.frame, seq, "FrameType")
        if value is not None:
            return _text(value)
    return None if p.frame is not None else _text(_top(p.ds, "ImageType"))


def _echo_number(p: _Plane) -> str | None:
    return _text(_top(p.ds, "EchoNumbers")) if p.frame is None else None


def _echo_time(p: _Plane) -> str | None:
    return _text(_top(p.ds, "EchoTime")) if p.frame is None else None


def _effective_echo_time(p: _Plane) -> str | None:
    return _text(_fg(p.ds, p.frame, "MREchoSequence", "EffectiveEchoTime"))


def _b_value(p: _Plane) -> str | None:
    ds = p.ds
    value = _fg(ds, p.frame, "MRDiffusionSequence", "DiffusionBValue")
    if value is None and p.frame is None:
        value = _top(ds, "DiffusionBValue")
    if value is None:
        value = private_value(ds, 0x0019, 0x100C, "SIEMENS MR HEADER")
    if value is None:
        ge = private_value(ds, 0x0043, 0x1039, "GEMS_PARM_01")
        if ge is not None:
            multi = hasattr(ge, "__len__") and not isinstance(ge, str | bytes)
            first = _number(ge[0] if multi else ge)  # type: ignore[index]
            value = None if first is None else first % 1e9  # GE adds 10^9 as a flag
    if value is None:
        value = private_value(ds, 0x2001, 0x1003, "Philips Imaging")
    number = _number(value)
    return None if number is None else f"{number:g}"


def _gradient(p: _Plane) -> str | None:
    ds = p.ds
    value = None
    if p.frame is not None:
        item = _fg(ds, p.frame, "MRDiffusionSequence", "DiffusionGradientDirectionSequence")
        if item:
            seq_item = item[0]  # type: ignore[index]
            if "DiffusionGradientOrientation" in seq_item:
                value = seq_item.DiffusionGradientOrientation
    else:
        value = _top(ds, "DiffusionGradientOrientation")
        if value is None:
            value = private_value(ds, 0x0019, 0x100E, "SIEMENS MR HEADER")
    if value is None or isinstance(value, bytes):
        return None
    try:
        vec = [round(float(v), 4) for v in value]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return "(" + ", ".join(f"{v:g}" for v in vec) + ")"


def _stack_id(p: _Plane) -> str | None:
    return _text(_fg(p.ds, p.frame, "FrameContentSequence", "StackID"))


def _temporal_index(p: _Plane) -> str | None:
    return _text(_fg(p.ds, p.frame, "FrameContentSequence", "TemporalPositionIndex"))


def _temporal_offset(p: _Plane) -> str | None:
    return _text(_fg(p.ds, p.frame, "TemporalPositionSequence", "TemporalPositionTimeOffset"))


def _temporal_identifier(p: _Plane) -> str | None:
    return _text(_top(p.ds, "TemporalPositionIdentifier"))


def _trigger_time(p: _Plane) -> str | None:
    return _text(_top(p.ds, "TriggerTime")) if p.frame is None else None


def _acquisition_time(p: _Plane) -> str | None:
    if p.frame is not None:
        return _text(_fg(p.ds, p.frame, "FrameContentSequence", "FrameAcquisitionDateTime"))
    t = _top(p.ds, "AcquisitionTime")
    if t is None:
        return None
    return f"{_text(_top(p.ds, 'AcquisitionDate')) or ''} {_text(t)}".strip()


_CANDIDATES: list[tuple[str, Callable[[_Plane], str | None]]] = [
    ("Image Type", _image_type),
    ("Echo Number", _echo_number),
    ("Echo Time", _echo_time),
    ("Effective Echo Time", _effective_echo_time),
    ("Diffusion b-value", _b_value),
    ("Diffusion Gradient Orientation", _gradient),
    ("Stack ID", _stack_id),
    ("Temporal Position Index", _temporal_index),
    ("Temporal Position Time Offset", _temporal_offset),
    ("Temporal Position Identifier", _temporal_identifier),
    ("Trigger Time", _trigger_time),
    ("Acquisition Time", _acquisition_time),
]


# ---------------------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------------------


def _position_keys(planes: Sequence[_Plane], members: Sequence[int]) -> list[tuple]:
    """Positions rounded to 0.01 mm: planes with the same key are repeats."""
    if not members:
        return []
    # One np.round over the stacked positions: rounding is elementwise (x·100, rint,
    # /100, each correctly rounded), so every key equals the per-plane np.round's.
    rounded = np.round(np.stack([planes[i].position for i in members]), 2)
    return [tuple(row) for row in rounded.tolist()]


def _multiplicity(planes: Sequence[_Plane], members: Sequence[int],
                  memo: dict[tuple[int, ...], int] | None = None) -> int:
    """Most planes at one position among ``members``; ``memo`` (one per
    :func:`split_planes` call) keeps it per member set, which every candidate attribute
    asked again for the same group."""
    key = tuple(members)
    if memo is not None and key in memo:
        return memo[key]
    keys = _position_keys(planes, members)
    if not keys:
        mult = 0
    else:
        _, counts = np.unique(np.asarray(keys), axis=0, return_counts=True)
        mult = int(counts.max())
    if memo is not None:
        memo[key] = mult
    return mult


def _sort_key(value: str) -> tuple:
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, value)


_Group = tuple[dict[str, str], list[int]]


def _split_group(planes: Sequence[_Plane], group: _Group, name: str,
                 fn: Callable[[_Plane], str | None], *, force: bool,
                 memo: dict[tuple[int, ...], int] | None = None) -> list[_Group]:
    values, members = group
    mult = _multiplicity(planes, members, memo)
    if mult <= 1 and not force:
        return [group]
    by_value: dict[str, list[int]] = {}
    for i in members:
        by_value.setdefault(fn(planes[i]) or ABSENT, []).append(i)
    if len(by_value) < 2:
        return [group]
    if not force:
        if len(by_value) > mult:
            return [group]  # e.g. a per-slice time: would cut a volume into slices
        if max(_multiplicity(planes, m, memo) for m in by_value.values()) >= mult:
            return [group]  # does not separate the repeats
    return [({**values, name: v}, by_value[v]) for v in sorted(by_value, key=_sort_key)]


def _rank_split(planes: Sequence[_Plane], group: _Group,
                memo: dict[tuple[int, ...], int] | None = None) -> list[_Group]:
    values, members = group
    mult = _multiplicity(planes, members, memo)
    if mult <= 1:
        return [group]
    at: dict[tuple, list[int]] = {}
    for key, i in zip(_position_keys(planes, members), members, strict=True):
        at.setdefault(key, []).append(i)
    if any(len(v) != mult for v in at.values()):
        return [group]  # unequal repeats: the loader refuses and names them

    def order(i: int) -> tuple:
        p = planes[i]
        return (_acquisition_time(p) or "", _number(_trigger_time(p)) or 0.0,
                _number(_top(p.ds, "InstanceNumber")) or 0.0, p.frame or 0)

    out: list[list[int]] = [[] for _ in range(mult)]
    for repeats in at.values():
        for rank, i in enumerate(sorted(repeats, key=order)):
            out[rank].append(i)
    return [({**values, "Repetition": str(r + 1)}, sorted(m)) for r, m in enumerate(out)]


def split_planes(planes: Sequence[_Plane]) -> list[SeriesPart]:
    """Group the planes of one series into volumes (see the module docstring).

    Returns one :class:`SeriesPart` per volume, ordered by the discriminating values
    (numerically where they are numbers); a single part with empty ``values`` when the
    series is one volume.
    """
    groups: list[_Group] = [({}, list(range(len(planes))))]
    memo: dict[tuple[int, ...], int] = {}
    groups = [g for grp in groups
              for g in _split_group(planes, grp, "SOP Class", _sop_class_by_bytes(),
                                    force=True, memo=memo)]
    for name, fn in _CANDIDATES:
        groups = [g for grp in groups
                  for g in _split_group(planes, grp, name, fn, force=False, memo=memo)]
    groups = [g for grp in groups for g in _rank_split(planes, grp, memo)]
    parts = []
    for index, (values, members) in enumerate(groups):
        frames = tuple(sorted(planes[i].frame + 1 for i in members  # type: ignore[operator]
                              if planes[i].frame is not None))
        files: dict[str, None] = {}  # first-seen order, as the list it replaces
        for i in members:
            files.setdefault(_object_label(planes[i].ds))
        parts.append(SeriesPart(index, values, len(members), frames, tuple(files),
                                tuple(members)))
    return parts


def _object_label(ds: Dataset) -> str:
    name = getattr(ds, "filename", None)
    if isinstance(name, str | os.PathLike) and name:
        return Path(name).name
    return str(getattr(ds, "SOPInstanceUID", "?"))
