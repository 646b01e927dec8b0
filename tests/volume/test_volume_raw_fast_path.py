"""The loader's raw-bytes fast path (dicom/raw_values.py, #11) gives exactly what the
converted pydicom elements give.

Oracle: the same series loaded from files (unconverted elements: fast path) and from
datasets whose every element was converted first (``list(ds)``: the fast path declines
every value and the converted path runs, as before the change). Arrays, dtypes, affines,
notes and refusals (type and message) must be identical.
"""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest
from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import ImplicitVRLittleEndian

from oncohybrid.dicom.raw_values import raw_float, raw_floats, raw_us
from oncohybrid.dicom.split import _multiplicity, _position_keys, split_planes
from oncohybrid.dicom.volume import _collect_frames, load_series, series_parts
from oncohybrid.errors import DicomError, GeometryError


@pytest.fixture(autouse=True)
def _factories(series_factory, series_writer, enhanced_factory):
    """The conftest builders (tests/ is no package) as module globals for the cases."""
    global build_series, write_series, build_enhanced
    build_series, write_series, build_enhanced = (series_factory, series_writer,
                                                  enhanced_factory)


build_series = write_series = build_enhanced = None  # set by _factories
# ---------------------------------------------------------------------------------------
# raw_values against pydicom's own conversion
# ---------------------------------------------------------------------------------------

DS_STRINGS = [
    b"1", b"1.5", b"-0", b"+.5", b" 3 ", b"3 ", b"1e400", b"-1e-400", b"nan", b"inf",
    b"-249.0234375", b"0.06891963105506", b"1_0", b"", b" ", b"1.5\x00", b"\xa01",
    b"abc", b"1.0\\2.0", b"1.0\\", b"\\1.0", b"1\\2\\3", b"1\\2\\3 ", b"1 \\ 2 \\ 3",
    b"1\\\\3", b"0x10", b"1.0e+03", b"-1.953125\\1.953125", b"1,5",
]


def _raw(tag: int, vr: str | None, value: bytes, *, little: bool = True) -> Dataset:
    ds = Dataset()
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, vr is None,
                                        little)
    return ds


def _converted_numbers(ds: Dataset, tag: int) -> list[float] | None:
    """What the loader computed from the converted element (float of each value)."""
    value = ds[tag].value
    if value in (None, ""):
        return None
    try:
        items = list(value) if not isinstance(value, float) else [value]
        return [float(v) for v in items]
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("vr", ["DS", None])
@pytest.mark.parametrize("value", DS_STRINGS)
def test_raw_ds_numbers_equal_the_converted_values_or_decline(value, vr):
    tag = 0x00200032
    for n in (1, 2, 3):
        fast = raw_floats(_raw(tag, vr, value), tag, n)
        if fast is None:
            continue  # declined: the loader converts the element as before
        ref = _converted_numbers(_raw(tag, vr, value), tag)
        assert ref is not None and len(ref) == n
        assert [x.hex() for x in fast] == [x.hex() for x in ref], value  # -0.0, nan: bits
    single = raw_float(_raw(tag, vr, value), tag)
    if single is not None:
        ref = _converted_numbers(_raw(tag, vr, value), tag)
        assert ref is not None and [single.hex()] == [x.hex() for x in ref]


def test_raw_values_decline_other_vrs_converted_deferred_and_non_default_config():
    tag = 0x00281053
    assert raw_float(_raw(tag, "UN", b"2"), tag) is None
    ds = _raw(tag, "DS", b"2")
    assert raw_float(ds, tag) == 2.0
    _ = ds[tag]  # converted now
    assert raw_float(ds, tag) is None
    deferred = Dataset()
    deferred._dict[Tag(tag)] = RawDataElement(Tag(tag), "DS", 1, None, 0, False, True)
    assert raw_float(deferred, tag) is None
    old = config.use_DS_decimal
    try:
        config.use_DS_decimal = True
        assert raw_float(_raw(tag, "DS", b"2"), tag) is None
    finally:
        config.use_DS_decimal = old
    old_mode = config.settings.reading_validation_mode
    try:
        config.settings.reading_validation_mode = config.RAISE
        assert raw_float(_raw(tag, "DS", b"2"), tag) is None
    finally:
        config.settings.reading_validation_mode = old_mode


@pytest.mark.parametrize("value,little,expected", [
    (b"\x00\x01", True, 256), (b"\xff\xff", True, 65535), (b"\x00\x01", False, None),
    (b"\x00\x01\x02\x00", True, None), (b"\x01", True, None),
])
def test_raw_us_equals_pydicom_or_declines(value, little, expected):
    tag = 0x00280010
    got = raw_us(_raw(tag, "US", value, little=little), tag)
    assert got == expected
    if got is not None:
        assert got == _raw(tag, "US", value, little=little)[tag].value


# ---------------------------------------------------------------------------------------
# load_series: files (fast path) == converted datasets (old path)
# ---------------------------------------------------------------------------------------


def _converted(paths) -> list[Dataset]:
    out = []
    for p in paths:
        ds = pydicom.dcmread(p)
        list(ds)  # every element converted: raw_values declines them all
        ds.file_meta.TransferSyntaxUID  # noqa: B018
        out.append(ds)
    return out


def _outcome(fn):
    try:
        vol = fn()
    except (GeometryError, DicomError) as exc:
        return ("error", type(exc).__name__, str(exc))
    arr = vol.array
    return ("ok", arr.dtype.str, arr.shape, arr.tobytes(), vol.affine.tobytes(),
            tuple(getattr(vol, "notes", ())), vol.frame_of_reference_uid)


def _assert_same(paths, **kwargs):
    fast = _outcome(lambda: load_series([pydicom.dcmread(p) for p in paths], **kwargs))
    from_paths = _outcome(lambda: load_series(paths, **kwargs))
    slow = _outcome(lambda: load_series(_converted(paths), **kwargs))
    assert fast == slow
    assert from_paths == slow
    return slow


def _pet_like(n=9, seed=0, **kw):
    rng = np.random.default_rng(seed)
    slopes = rng.uniform(1e-3, 0.2, size=n)
    return build_series(n=n, slopes=slopes, seed=seed, **kw)


CASES = {
    "plain": lambda: build_series(seed=1),
    "pet slopes": lambda: _pet_like(seed=2),
    "negative slope, intercept": lambda: build_series(
        n=7, slopes=[-0.5, 1, 2, 0.25, 3, 1e-4, 7], intercept=-1024.5, seed=3),
    "intercept -0": lambda: build_series(n=5, intercept=-0.0, seed=4),
    "negative slope, intercept -0": lambda: build_series(
        n=5, slopes=[-0.5, -1, -2, -0.25, -3], intercept=-0.0, seed=4),
    "single slice": lambda: build_series(n=1, seed=5),
    "one row, one column": lambda: build_series(n=4, rows=1, cols=1, seed=6),
    "oblique": lambda: build_series(n=6, iop=(0.8660254, 0.5, 0, -0.5, 0.8660254, 0),
                                    seed=7),
    "tilt": lambda: build_series(n=8, positions=np.array(
        [[0.0, 0.3 * k, 2.5 * k] for k in range(8)]), seed=8),
    "non-uniform": lambda: build_series(n=6, positions=np.array(
        [[0, 0, z] for z in (0, 2.5, 5, 9, 11.5, 14)], float), seed=9),
    "missing slice": lambda: build_series(n=6, positions=np.array(
        [[0, 0, z] for z in (0, 2.5, 5, 12.5, 15, 17.5)], float), seed=10),
    "duplicate": lambda: build_series(n=4, positions=np.array(
        [[0, 0, z] for z in (0, 2.5, 2.5, 5)], float), seed=11),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("implicit", [False, True])
def test_fast_path_equals_converted_path(tmp_path, case, implicit):
    datasets = CASES[case]()
    if implicit:
        for ds in datasets:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    paths = write_series(datasets, tmp_path / "s")
    _assert_same(paths)
    _assert_same(paths, rescale=False, dtype=np.int32)
    _assert_same(paths, dtype=np.float64, plane_scale=lambda ds, f: 1.0 / 3.0)


def _edit(datasets, k, **attrs):
    for name, value in attrs.items():
        if value is None:
            delattr(datasets[k], name)
        else:
            setattr(datasets[k], name, value)
    return datasets


REFUSALS = {
    "ipp missing": dict(ImagePositionPatient=None),
    "ipp empty": dict(ImagePositionPatient=""),
    "ipp two values": dict(ImagePositionPatient=["1", "2"]),
    "ipp not numeric": dict(ImagePositionPatient=["1", "777", "2"]),  # patched to "abc"
    "iop five values": dict(ImageOrientationPatient=["1", "0", "0", "0", "1"]),
    "spacing one value": dict(PixelSpacing="0.8"),
    "spacing mismatch": dict(PixelSpacing=["0.8", "0.95"]),
    "spacing inf": dict(PixelSpacing=["inf", "0.9"]),
    "spacing nan": dict(PixelSpacing=["nan", "0.9"]),
    "slope 0": dict(RescaleSlope="0"),
    "slope multi": dict(RescaleSlope=["1", "2"]),
    "slope empty": dict(RescaleSlope=""),
    "slope missing": dict(RescaleSlope=None),
    "intercept missing": dict(RescaleIntercept=None),
    "thickness garbage": dict(SliceThickness="-3"),
    "thickness missing": dict(SliceThickness=None),
    "rows differ": dict(Rows=21),
    "other series": dict(SeriesInstanceUID="1.2.3.999"),
    "series uid padded": dict(SeriesInstanceUID=None),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_edge_headers_give_the_same_volume_or_refusal(tmp_path, case):
    datasets = build_series(n=6, seed=12)
    if case == "rows differ":  # a consistent 21-row image
        datasets[3].PixelData = np.zeros((21, 24), np.int16).tobytes()
    if case == "series uid padded":  # one file pads the same UID with a space, not NUL
        for ds in datasets:
            ds.SeriesInstanceUID = "1.2.3.456"  # odd length: written with a NUL pad
        paths = write_series(datasets, tmp_path / "s")
        raw = paths[2].read_bytes()
        assert raw.count(b"1.2.3.456\x00") == 1
        paths[2].write_bytes(raw.replace(b"1.2.3.456\x00", b"1.2.3.456 "))
        assert _assert_same(paths)[0] == "ok"
        return
    _edit(datasets, 3, **REFUSALS[case])
    paths = write_series(datasets, tmp_path / "s")
    if case == "ipp not numeric":  # pydicom refuses to set it: patch the file
        raw = paths[3].read_bytes()
        assert raw.count(b"1\\777\\2") == 1
        paths[3].write_bytes(raw.replace(b"1\\777\\2", b"1\\abc\\2"))
    _assert_same(paths)


def test_multi_echo_split_and_parts_equal_converted_path(tmp_path):
    a, b = build_series(n=5, seed=13), build_series(n=5, seed=14)
    for ds in b:
        ds.SeriesInstanceUID = a[0].SeriesInstanceUID
    for ds, echo in [(d, 1) for d in a] + [(d, 2) for d in b]:
        ds.EchoNumbers = echo
    paths = write_series(a + b, tmp_path / "s")
    refused = _assert_same(paths)
    assert refused[0] == "error" and "Echo Number" in refused[2]
    for part in (0, 1):
        assert _assert_same(paths, part=part)[0] == "ok"
    fast = [p.describe() for p in series_parts(paths)]
    slow = [p.describe() for p in series_parts(_converted(paths))]
    assert fast == slow and len(fast) == 2


def test_enhanced_multiframe_equals_converted_path(tmp_path):
    enh = build_enhanced(_pet_like(n=7, seed=15))
    paths = write_series([enh], tmp_path / "e")
    assert _assert_same(paths)[0] == "ok"


def test_pixels_12_bit_and_unsigned_equal_converted_path(tmp_path):
    datasets = build_series(n=4, seed=16)
    for ds in datasets:
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    paths = write_series(datasets, tmp_path / "s")
    assert _assert_same(paths)[0] == "ok"


def test_raw_load_leaves_dataset_values_unchanged(tmp_path):
    """The datasets a caller keeps (assess keeps the PET headers for the SEG export) read
    the same values after a fast-path load as after the old, converting one."""
    paths = write_series(_pet_like(seed=17), tmp_path / "s")
    fast = [pydicom.dcmread(p) for p in paths]
    slow = _converted(paths)
    load_series(fast)
    load_series(slow)
    for a, b in zip(fast, slow, strict=True):
        assert [(e.tag, e.VR, e.value) for e in a] == [(e.tag, e.VR, e.value) for e in b]


# ---------------------------------------------------------------------------------------
# split: vectorised position keys and memoised multiplicity
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_position_keys_and_multiplicity_equal_per_plane_rounding(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    datasets = build_series(n=n, seed=seed)
    frames = _collect_frames(datasets)
    # Positions on the 0.005 mm rounding boundary, repeats, negative zero, large values.
    pos = rng.choice([-0.005, 0.005, 0.015, -0.0, 1e5 + 0.125, 2.675, -2.675], size=(n, 3))
    pos += rng.integers(-3, 3, size=(n, 3)) * rng.choice([0.0, 1.0, 1e-3])
    planes = [dataclass_replace(f, position=p) for f, p in zip(frames, pos, strict=True)]
    members = list(rng.permutation(n))
    ref_keys = [tuple(np.round(planes[i].position, 2).tolist()) for i in members]
    assert _position_keys(planes, members) == ref_keys
    _, counts = np.unique(np.asarray(ref_keys), axis=0, return_counts=True)
    memo: dict = {}
    assert _multiplicity(planes, members, memo) == int(counts.max())
    assert _multiplicity(planes, members, memo) == int(counts.max())  # memoised
    assert _multiplicity(planes, []) == 0
    parts = split_planes(planes)
    assert sum(p.n_planes for p in parts) == n


def dataclass_replace(obj, **changes):
    out = copy.copy(obj)
    for k, v in changes.items():
        object.__setattr__(out, k, v)
    return out
