"""Fuzzing the DICOM header paths of ``oncohybrid suv`` (issue #12, acceptance "Fuzzing").

Hypothesis mutates the SUV-relevant attributes of a valid PET series: it deletes them, or
writes extreme numbers, garbage text, random bytes (wrong VR content) or date/time-like
strings into them, in one slice or in all, and may add user overrides. The mutated values
go in as ``RawDataElement`` bytes, exactly as pydicom hands a file's elements over before
conversion. ``compute_suv`` must then either refuse with the project's error family or
return factors that are finite and positive, with a JSON document free of NaN/Infinity.

A second test sends hostile series (pixels included, a few geometry attributes too)
through ``oncohybrid suv --json`` on written files: exit 0 with strict JSON, or exit 1/2
with an ``error:`` line, never a traceback.

CI budget: ``max_examples`` 300 (headers) and 50 (command), ``derandomize`` (the same
examples every run; about 20 s here). A longer run: ``ONCOHYBRID_FUZZ_EXAMPLES=15000
.venv/bin/pytest -q tests/fuzz/test_fuzz_suv.py`` (the command test gets a sixth;
docs/suv.md "Fuzzing" records the outcome).
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suv"))
from suv_testdata import VENDOR_VECTORS, pet_series, vendor_series  # noqa: E402

from oncohybrid.dicom.suv import (  # noqa: E402
    PLAUSIBILITY_CHECKS,
    SUVOverrides,
    SUVScaling,
    compute_suv,
)
from oncohybrid.errors import OncohybridError  # noqa: E402

EXAMPLES = int(os.environ.get("ONCOHYBRID_FUZZ_EXAMPLES", "300"))

# (tag, VR) of every attribute compute_suv reads from a slice.
SLICE_TAGS: list[tuple[int, str]] = [
    (0x00080060, "CS"),  # Modality
    (0x00080070, "LO"),  # Manufacturer
    (0x00080021, "DA"), (0x00080031, "TM"),  # Series Date/Time
    (0x00080022, "DA"), (0x00080032, "TM"), (0x0008002A, "DT"),  # Acquisition
    (0x00080201, "SH"),  # Timezone Offset From UTC
    (0x00100040, "CS"), (0x00101020, "DS"), (0x00101030, "DS"),  # Sex, Size, Weight
    (0x00180050, "DS"), (0x00180088, "DS"), (0x00280030, "DS"),  # thickness, spacing
    (0x00181242, "IS"),  # Actual Frame Duration
    (0x00189701, "DT"),  # Decay Correction DateTime
    (0x00280051, "CS"),  # Corrected Image
    (0x00281052, "DS"), (0x00281053, "DS"),  # Rescale Intercept/Slope
    (0x00541001, "CS"), (0x00541006, "CS"), (0x00541102, "CS"),  # Units, SUV Type, DC
    (0x00541300, "DS"), (0x00541321, "DS"), (0x00541322, "DS"),  # FRT, Decay/Dose Cal.
    (0x0009100D, "DT"),  # GE private scan date-time (no creator: conventional element)
    (0x70531000, "DS"), (0x70531009, "DS"),  # Philips SUV/ACSF (no creator)
]
# ... and from the Radiopharmaceutical Information Sequence item.
RP_TAGS: list[tuple[int, str]] = [
    (0x00180031, "LO"),  # Radiopharmaceutical
    (0x00181072, "TM"), (0x00181078, "DT"),  # start time / date-time
    (0x00181074, "DS"), (0x00181075, "DS"),  # dose, half-life
]

_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-1e3, max_value=1e12).map(lambda x: f"{x:.6g}"),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["0", "-0", "1", "1e308", "1e-308", "NaN", "inf", "-1", "6586.2",
                     "70\\80", "", " ", "1e20", "0.05", "3.7E+08"]),
)
_datetimes = st.one_of(
    st.from_regex(r"\A[0-9]{0,16}(\.[0-9]{0,8})?([+-][0-9]{4})?\Z"),
    st.sampled_from(["00010101000000", "99991231235959", "20250101", "2025XX01100000",
                     "20251301100000", "240000", "235960", "25:61", "1:2:3", "-0500",
                     "+1400", "20250101110000+9999", "19700101000000.123456-1200"]),
)
_garbage = st.one_of(
    st.text(max_size=24),
    st.binary(max_size=24),
    st.sampled_from(["BQML", "CNTS", "GML", "CM2ML", "CPS", "PROPCNTS", "START", "ADMIN",
                     "NONE", "ATTN\\DECY", "ATTN\\DECY\\DCAL", "DECY", "PT", "CT", "M", "F",
                     "O", "BW", "LBMJANMA", "IBW", "BSA", "GE MEDICAL SYSTEMS",
                     "Philips Medical Systems", "F^18^[^18^F]FDG"]),
)


def _value(draw: st.DrawFn, vr: str) -> bytes | None:
    """A hostile value for an element of VR ``vr``; ``None`` deletes the element."""
    kind = draw(st.sampled_from(["missing", "number", "datetime", "garbage"]))
    if kind == "missing":
        return None
    text: str | bytes
    if kind == "number" or (kind != "garbage" and vr in ("DS", "IS")):
        text = draw(_numbers)
    elif kind == "datetime":
        text = draw(_datetimes)
    else:
        text = draw(_garbage)
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


def _put(ds: Dataset, tag: int, vr: str, value: bytes | None) -> None:
    if value is None:
        if tag in ds:
            del ds[tag]
        return
    ds[tag] = RawDataElement(BaseTag(tag), vr, len(value), value, 0, True, True)


@st.composite
def hostile_series(draw: st.DrawFn) -> tuple[list[Dataset], SUVOverrides | None]:
    base = draw(st.sampled_from(["ibsi", "none", "admin", "gml", "cps", *VENDOR_VECTORS]))
    if base in VENDOR_VECTORS:
        series = vendor_series(base)
    else:
        attrs: dict[str, Any] = {
            "ibsi": {}, "none": {"DecayCorrection": "NONE",
                                 "CorrectedImage": ["NORM", "ATTN", "SCAT"]},
            "admin": {"DecayCorrection": "ADMIN"},
            "gml": {"Units": "GML", "SUVType": "LBMJAMES128"},
            "cps": {"Units": "CPS", "CorrectedImage": ["ATTN", "DECY", "DCAL"]},
        }[base]
        series = pet_series(draw(st.integers(1, 3)), **attrs)
    for _ in range(draw(st.integers(1, 4))):
        in_rp = draw(st.booleans())
        tag, vr = draw(st.sampled_from(RP_TAGS if in_rp else SLICE_TAGS))
        value = _value(draw, vr)
        everywhere = draw(st.booleans())
        targets = series if everywhere else [draw(st.sampled_from(series))]
        for ds in targets:
            if in_rp:
                seq = ds.get("RadiopharmaceuticalInformationSequence")
                if seq:
                    _put(seq[0], tag, vr, value)
            else:
                _put(ds, tag, vr, value)
    if draw(st.integers(0, 9)) == 5:  # not 0: hypothesis favours the minimum
        for ds in series[: draw(st.integers(1, len(series)))]:
            del ds.RadiopharmaceuticalInformationSequence
    overrides = None
    if draw(st.booleans()):
        positive = st.floats(min_value=1e-300, max_value=1e300)
        try:
            overrides = SUVOverrides(
                weight_kg=draw(st.none() | positive),
                dose_bq=draw(st.none() | positive),
                half_life_s=draw(st.none() | positive),
                allow_implausible=frozenset(draw(st.sets(st.sampled_from(
                    sorted(PLAUSIBILITY_CHECKS | {"all"}))))),
            )
        except OncohybridError:
            overrides = None
    return series, overrides


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile_series())
def test_suv_headers_refuse_or_give_finite_factors(case: tuple[list[Dataset],
                                                               SUVOverrides | None]) -> None:
    series, overrides = case
    try:
        scaling = compute_suv(series, overrides=overrides)
    except OncohybridError as exc:
        assert str(exc)  # every refusal says why
        return
    assert isinstance(scaling, SUVScaling)
    slices = [scaling.factors, *(scaling.per_slice or {}).values()]
    for factors in slices:
        for norm, value in factors.items():
            assert math.isfinite(value) and value > 0, (norm, value)
    json.dumps(scaling.to_json(), allow_nan=False)  # valid JSON, as `suv --json` prints


# The same hostile headers through `oncohybrid suv --json` on files (read back by pydicom,
# pixels and volume included): exit 0 with strict JSON, or exit 1/2 with a message, never a
# traceback. Fewer examples: each writes and reads a series.
PIXEL_TAGS: list[tuple[int, str]] = [
    (0x00200032, "DS"), (0x00200037, "DS"),  # Image Position / Orientation (Patient)
    (0x00280030, "DS"), (0x00280010, "US"), (0x00280011, "US"),  # spacing, rows, columns
]


@st.composite
def hostile_files(draw: st.DrawFn) -> list[Dataset]:
    series, _ = draw(hostile_series())
    for ds in series:
        ds.Rows = ds.Columns = 4
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.PixelData = bytes(range(32))
    if draw(st.booleans()):
        tag, vr = draw(st.sampled_from(PIXEL_TAGS))
        value = _value(draw, "DS") if vr == "DS" else draw(st.sampled_from(
            [b"", b"\x00\x00", b"\xff\xff", b"\x04\x00\x04\x00"]))  # US: whole values
        _put(draw(st.sampled_from(series)), tag, vr, value)
    return series


@settings(max_examples=max(EXAMPLES // 6, 20), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 ])
@given(hostile_files())
def test_suv_command_on_hostile_files_never_crashes(tmp_path_factory: Any,
                                                    series: list[Dataset]) -> None:
    import pydicom
    from typer.testing import CliRunner

    from oncohybrid.cli.main import app

    folder = tmp_path_factory.mktemp("pt")
    for i, ds in enumerate(series):
        try:
            pydicom.dcmwrite(folder / f"{i:03d}.dcm", ds, enforce_file_format=True)
        except (ValueError, TypeError, OverflowError, struct.error):
            return  # pydicom cannot even write this: not a file anyone could send
    res = CliRunner().invoke(app, ["suv", str(folder), "--json"])
    assert res.exit_code in (0, 1, 2), (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 0:
        json.loads(res.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    else:
        assert res.stderr.startswith("error: ")
