"""Header values read from the still-encoded element bytes, for the volume loader.

pydicom converts an element on first access (``ds.ImagePositionPatient``: a MultiValue of
validated ``DSfloat``, ~15 µs), which made the slice geometry of a 281-slice CT cost
more than stacking its pixels. These helpers parse the raw bytes of the few elements the
loader needs and return ``None`` whenever they cannot be *sure* to give what the
converted value would give; callers then take the converted path unchanged, so values,
errors and messages stay exactly those of the pydicom conversion:

- DS: ``float()`` of the bytes of each backslash-separated value. pydicom decodes
  (Latin-1), strips and splits the text the same way and builds each value with
  ``float(str)``; ``float(bytes)`` parses the same ASCII text identically and refuses
  anything else (non-ASCII, NUL padding, empty values), which then takes the pydicom path.
- US: one little-endian unsigned short (two bytes), as pydicom's ``struct`` "<H".
- raw bytes of an element as a comparison key: equal bytes convert to equal values.

Only unconverted :class:`~pydicom.dataelem.RawDataElement` with the expected VR (or no
VR: implicit VR, dictionary VR used) qualify, and only with pydicom's default DS
conversion (no ``use_DS_decimal``/``use_DS_numpy``, reading validation not RAISE, where
pydicom would refuse a non-conforming string that ``float`` accepts).
"""

from __future__ import annotations

from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

__all__ = ["raw_bytes", "raw_floats", "raw_float", "raw_us"]


def _plain_ds() -> bool:
    return (not config.use_DS_decimal and not config.use_DS_numpy
            and config.settings.reading_validation_mode != config.RAISE)


def raw_bytes(ds: Dataset, tag: int, vrs: tuple[str | None, ...]) -> bytes | None:
    """The encoded value of ``tag`` when it is an unconverted, non-deferred element with
    one of ``vrs`` (``None`` in ``vrs`` admits implicit VR), else ``None``."""
    el = ds._dict.get(tag)
    if type(el) is not RawDataElement or el.VR not in vrs or el.value is None:
        return None
    return el.value


def raw_floats(ds: Dataset, tag: int, n: int) -> list[float] | None:
    """The ``n`` numbers of DS element ``tag`` as the converted value would give them (see
    the module docstring), or ``None``: absent, converted, not exactly ``n`` values or not
    plain numbers."""
    value = raw_bytes(ds, tag, ("DS", None))
    if not value or not _plain_ds():
        return None
    parts = value.split(b"\\")
    if len(parts) != n:
        return None
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def raw_float(ds: Dataset, tag: int) -> float | None:
    """The single number of DS element ``tag`` (see :func:`raw_floats`), or ``None``."""
    out = raw_floats(ds, tag, 1)
    return None if out is None else out[0]


def raw_us(ds: Dataset, tag: int) -> int | None:
    """The single value of US element ``tag``, or ``None`` (absent, converted, VM ≠ 1,
    big endian)."""
    el = ds._dict.get(tag)
    if (type(el) is not RawDataElement or el.VR not in ("US", None) or el.value is None
            or el.length != 2 or not el.is_little_endian or len(el.value) != 2):
        return None
    return int.from_bytes(el.value, "little")
