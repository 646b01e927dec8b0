"""Fuzzing the DICOM header paths of ingest (issue #12, acceptance "Fuzzing").

Hypothesis starts from a valid single-slice CT or PET file (written by pydicom) and damages
it at two levels:

* data set: deletes or rewrites the attributes ingest reads (the required UIDs, Patient ID,
  Modality, dates, numbers, the Image Pixel attributes and the Pixel Data length) with
  extreme numbers, path-like and control-character text, empty values;
* bytes: cuts the file at a random offset, replaces the preamble or the ``DICM`` prefix
  with garbage, overwrites an element's VR with two random letters (invalid VRs),
  overwrites random bytes (lengths, tags), or drops the file meta.

Oracles. :func:`read_header` alone must return a record or raise ``SkipFile`` with a reason
(never another exception). A folder of damaged files plus one intact file, ingested by
``Ingestor.ingest_paths`` into a workspace that keeps growing over the examples, must
finish without an exception; every file must be counted once (new, duplicate, conflict or
skipped with a non-empty reason), the intact file must be new, and every instance stored
by an earlier example must still be indexed with its file intact (nothing already stored
is lost).

CI budget: 300 examples of the header test and 60 of the batch test, derandomized, no
example database (well under 60 s together here). A longer run:
``ONCOHYBRID_FUZZ_EXAMPLES=5000 .venv/bin/pytest -q tests/fuzz/test_fuzz_ingest.py``
(docs/fuzzing.md, "Ingest").
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
from pathlib import Path

import pydicom
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from dicomfactory import ROOT, SeriesSpec, StudySpec, make_instance, to_bytes  # noqa: E402

from oncohybrid.services.ingest import (  # noqa: E402
    HeaderRecord,
    Ingestor,
    SkipFile,
    read_header,
)
from oncohybrid.store.db import session_scope  # noqa: E402
from oncohybrid.store.models import Instance  # noqa: E402

EXAMPLES = int(os.environ.get("ONCOHYBRID_FUZZ_EXAMPLES", "300"))
DERANDOMIZE = os.environ.get("ONCOHYBRID_FUZZ_DERANDOMIZE", "1" if EXAMPLES <= 1000 else "0")
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE == "1",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Attributes ingest reads, with their VR (what a damaged value is written as).
FIELDS: list[tuple[str, str]] = [
    ("SOPClassUID", "UI"),
    ("SOPInstanceUID", "UI"),
    ("StudyInstanceUID", "UI"),
    ("SeriesInstanceUID", "UI"),
    ("FrameOfReferenceUID", "UI"),
    ("PatientID", "LO"),
    ("PatientName", "PN"),
    ("Modality", "CS"),
    ("StudyDate", "DA"),
    ("PatientBirthDate", "DA"),
    ("SeriesNumber", "IS"),
    ("InstanceNumber", "IS"),
    ("SpecificCharacterSet", "CS"),
    ("Rows", "US"),
    ("Columns", "US"),
    ("BitsAllocated", "US"),
    ("SamplesPerPixel", "US"),
    ("NumberOfFrames", "IS"),
]

hostile_text = st.one_of(
    st.sampled_from(
        ["", "..", "../../../x", "/etc/passwd", "1.02.3", "1." * 40, "\x1b[2J", "\u202e", "0"]
    ),
    st.text(max_size=80),
    st.text(alphabet="0123456789.", max_size=70),
)
hostile_number = st.sampled_from(["0", "-1", "65535", "99999999999", "1e400", "nan", "x", " "])


@st.composite
def damaged_dataset(draw: st.DrawFn) -> pydicom.Dataset:
    study = StudySpec(
        "FZ" + str(draw(st.integers(0, 9))),
        "Fuzz^Ed",
        "20240101",
        [SeriesSpec(draw(st.sampled_from(["CT", "PT"])), 1)],
    )
    ds = make_instance(study, study.series[0], draw(st.integers(0, 5)))
    # UIDs from the draw (generate_uid is random): the same example gives the same bytes;
    # small numbers make examples share UIDs, which exercises duplicates and conflicts.
    number = draw(st.integers(1, 50))
    ds.StudyInstanceUID = f"{ROOT}1.{number % 7}"
    ds.SeriesInstanceUID = f"{ROOT}2.{number % 7}.{ds.Modality}".replace(".CT", ".1").replace(
        ".PT", ".2"
    )
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}3.{number}"
    ds.FrameOfReferenceUID = f"{ROOT}4.{number % 7}"
    for keyword, vr in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        action = draw(st.sampled_from(["delete", "text", "number", "bytes"]))
        if action == "delete":
            if keyword in ds:
                delattr(ds, keyword)
            continue
        if vr == "US":
            value: object = draw(st.sampled_from([0, 1, 7, 64, 65535]))
        elif action == "number":
            value = draw(hostile_number)
        elif action == "bytes":
            value = draw(st.binary(max_size=40)).decode("latin-1")
        else:
            value = draw(hostile_text)
        try:
            setattr(ds, keyword, value)
        except (ValueError, TypeError, OverflowError):
            continue
    if draw(st.booleans()):  # Pixel Data of another length than the image implies
        ds.PixelData = bytes(draw(st.sampled_from([0, 2, 50, 126, 128, 130, 1000])))
    return ds


@st.composite
def damaged_file(draw: st.DrawFn) -> bytes:
    ds = draw(damaged_dataset())
    try:
        data = bytearray(to_bytes(ds))
    except Exception:  # noqa: BLE001 - pydicom refused to write the value: use the intact file
        ds = make_instance(*_one())
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}3.0"
        data = bytearray(to_bytes(ds))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["cut", "preamble", "dicm", "vr", "bytes", "no-meta"]))
        if kind == "cut" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif kind == "preamble" and len(data) >= 128:
            data[:128] = draw(st.binary(min_size=128, max_size=128))
        elif kind == "dicm" and len(data) >= 132:
            data[128:132] = draw(st.sampled_from([b"DICN", b"\0\0\0\0", b"dicm"]))
        elif kind == "vr":
            # two letters where an explicit VR stands: find a random element's tag
            positions = [i for i in range(132, len(data) - 6) if data[i + 4 : i + 6].isalpha()]
            if positions:
                i = draw(st.sampled_from(positions))
                data[i + 4 : i + 6] = draw(st.sampled_from([b"ZZ", b"XX", b"SQ", b"OB", b"UN"]))
        elif kind == "bytes" and data:
            for _ in range(draw(st.integers(1, 8))):
                i = draw(st.integers(0, len(data) - 1))
                data[i] = draw(st.integers(0, 255))
        elif kind == "no-meta" and len(data) > 132:
            glen = int.from_bytes(data[140:144], "little")
            del data[: 144 + glen]
    return bytes(data)


def _one() -> tuple[StudySpec, SeriesSpec, int]:
    series = SeriesSpec("CT", 1, series_uid=f"{ROOT}5.1", frame_uid=f"{ROOT}5.2")
    study = StudySpec("FZOK", "Ok^Fuzz", "20240101", [series], study_uid=f"{ROOT}5.3")
    return study, study.series[0], 0


@FUZZ
@given(data=damaged_file())
def test_read_header_returns_a_record_or_a_reason(data: bytes) -> None:
    try:
        rec = read_header(io.BytesIO(data), len(data))
    except SkipFile as exc:
        assert exc.reason.strip()
        return
    assert isinstance(rec, HeaderRecord)
    assert rec.sop_instance_uid and rec.study_instance_uid and rec.series_instance_uid


_stored_so_far: dict[str, str] = {}  # SOP -> SHA-256 of the stored file, over all examples


@settings(FUZZ, max_examples=max(EXAMPLES // 5, 20))
@given(files=st.lists(damaged_file(), min_size=1, max_size=4))
def test_ingest_batch_counts_every_file_and_loses_nothing(files: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, data in enumerate(files):
            (folder / f"f{i}.dcm").write_bytes(data)
        intact = make_instance(*_one())
        (folder / "zz_intact.dcm").write_bytes(to_bytes(intact))

        report = Ingestor().ingest_paths([folder])

        skipped = dict(report.skipped)
        assert all(reason.strip() for reason in skipped.values())
        counted = report.new + report.duplicate + len(report.conflicts) + len(skipped)
        assert counted == len(files) + 1, report.to_dict()
        assert str(folder / "zz_intact.dcm") not in skipped
        with session_scope() as s:
            rows = dict(s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all())
        assert intact.SOPInstanceUID in rows
        for sop, digest in _stored_so_far.items():
            assert sop in rows, f"{sop} was lost"
            assert hashlib.sha256(Path(rows[sop]).read_bytes()).hexdigest() == digest
        for sop, path in rows.items():
            if sop not in _stored_so_far:
                _stored_so_far[sop] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
