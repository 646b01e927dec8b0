"""The receiver's index record is exactly ingest's ``read_header`` of the spooled file (#11).

Differential test: a data set is put through what a receiver does with a received C-STORE
(the receipt walk, :func:`oncohybrid.pacs.integrity.read_header`, then
:func:`oncohybrid.pacs.header_values.record_from_walk`), and the spool file the receiver
writes (its file meta + the data set) through ingest's
:func:`oncohybrid.services.ingest.read_header`. Whenever the receiver builds a record it
must equal ingest's, field by field; where ingest refuses the file or reads it
otherwise, the receiver must build none (the listener's indexing then reads the file,
as before). Over intact Explicit and Implicit VR CT/PET/MR, private tags, character
sets, sequences of defined and undefined length, ~2,700 truncated or damaged copies and
(with ``ONCOHYBRID_REALDATA``) real files.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import os
import random
from pathlib import Path

import pacs_data
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage

from oncohybrid.dicom import header_record
from oncohybrid.pacs import integrity
from oncohybrid.pacs.header_values import record_from_walk
from oncohybrid.pacs.integrity import IncompleteDataset
from oncohybrid.pacs.spool import file_meta_header
from oncohybrid.services.ingest import SkipFile, read_header


def _split(part10: bytes) -> tuple[bytes, str]:
    """(data set, transfer syntax) of a Part 10 file (PS3.10 §7.1)."""
    assert part10[128:132] == b"DICM"
    end = 144 + int.from_bytes(part10[140:144], "little")
    meta = dcmread(io.BytesIO(part10), stop_before_pixels=True).file_meta
    return part10[end:], str(meta.TransferSyntaxUID)


def _encode(ds: Dataset, implicit: bool) -> tuple[bytes, str]:
    buf = io.BytesIO()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    dcmwrite(buf, ds, enforce_file_format=True)
    return _split(buf.getvalue())


def compare(body: bytes, ts: str, sop_class: str = "1.2.840.10008.5.1.4.1.1.2",
            sop_instance: str = "1.2.3") -> str:
    """'refused' (receipt), 'fallback' (no record) or 'record' (equal to ingest's)."""
    found: dict = {}
    try:
        header = integrity.read_header(body, ts, found)
    except IncompleteDataset:
        return "refused"
    sop_class = header.sop_class_uid or sop_class
    sop_instance = header.sop_instance_uid or sop_instance
    head = file_meta_header(sop_class, sop_instance, ts)
    spooled = head + body
    rec = record_from_walk(body, found, ts, len(head), len(spooled))
    try:
        expected = dataclasses.asdict(read_header(io.BytesIO(spooled), len(spooled)))
    except SkipFile:
        expected = None
    except Exception:  # ingest fails otherwise: the receiver must not have decided
        expected = None
    if rec is None:
        return "fallback"
    assert expected is not None, "receiver built a record for a file ingest refuses"
    assert dataclasses.asdict(rec) == expected
    return "record"


def _instances() -> list[Dataset]:
    study, ct_series, pt_series, mr_series = (pacs_data.generate_uid() for _ in range(4))
    out = [
        pacs_data.make_instance(study_uid=study, series_uid=ct_series, modality="CT", index=0),
        pacs_data.make_instance(study_uid=study, series_uid=pt_series, modality="PT", index=1),
    ]
    mr = pacs_data.make_instance(study_uid=study, series_uid=mr_series, modality="CT", index=2)
    mr.SOPClassUID = mr.file_meta.MediaStorageSOPClassUID = MRImageStorage
    mr.Modality = "MR"
    out.append(mr)
    pet = out[1]
    info = Dataset()
    info.Radiopharmaceutical = "Fluorodeoxyglucose"
    info.RadionuclideTotalDose = 350e6
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "C-B1031", "SRT"
    code.CodeMeaning = "Fluorodeoxyglucose F^18^"
    info.RadiopharmaceuticalCodeSequence = Sequence([code])
    pet.RadiopharmaceuticalInformationSequence = Sequence([info])
    # private tags, as scanners write them
    pet.add_new(0x00090010, "LO", "ONCOHYBRID TEST")
    pet.add_new(0x00091001, "LO", "private value")
    pet.add_new(0x00091002, "OB", b"\x01\x02\x03\x04")
    return out


def _variants() -> list[Dataset]:
    """Intact instances with the attributes the reading depends on varied."""
    base = _instances()
    out = list(base)
    pet = base[1]
    # code meaning only (no Radiopharmaceutical text)
    ds = copy.deepcopy(pet)
    info = copy.deepcopy(ds.RadiopharmaceuticalInformationSequence[0])
    del info.Radiopharmaceutical
    ds.RadiopharmaceuticalInformationSequence = Sequence([info])
    out.append(ds)
    ds = copy.deepcopy(pet)
    ds.RadiopharmaceuticalInformationSequence = Sequence([])
    out.append(ds)
    for cs, name in (
        ("ISO_IR 100", "Müller^Jörg"), ("ISO_IR 192", "Müller^Jörg"), ("", "Plain^Name"),
        ("ISO_IR 6", "Plain^Name"), ("ISO 2022 IR 100", "Gómez^Ana"),
        (["ISO 2022 IR 6", "ISO 2022 IR 87"], "Yamada^Tarou"), ("GB18030", "Wang^Xiaodong"),
        ("ISO_IR 144", "Ivanov^Ivan"), ("NOT A CHARSET", "Odd^Charset"),
    ):
        ds = copy.deepcopy(base[0])
        ds.SpecificCharacterSet = cs
        ds.PatientName = name
        ds.StudyDescription = "Étude  "
        out.append(ds)
    ds = copy.deepcopy(base[0])
    ds.SpecificCharacterSet = "ISO_IR 100"
    del ds.SpecificCharacterSet
    ds.PatientName = "No^Charset"
    out.append(ds)
    # values ingest cuts, converts or refuses
    for attr, value in (
        ("SeriesNumber", "12.7"), ("InstanceNumber", "99999999999"), ("StudyDate", "2024.01.02"),
        ("StudyDate", "garbage"), ("PatientID", "P" * 70), ("StudyInstanceUID", "1.2.03"),
        ("SeriesInstanceUID", "1." + "2" * 70), ("Modality", ""), ("PatientName", ""),
        ("Manufacturer", "A\\B"), ("StudyDescription", "x" * 300), ("IssuerOfPatientID", "  "),
    ):
        ds = copy.deepcopy(base[0])
        ds.add_new(ds.data_element(attr).tag if attr in ds else _tag(attr), _vr(attr), value)
        out.append(ds)
    ds = copy.deepcopy(base[0])
    del ds.PatientID
    out.append(ds)
    ds = copy.deepcopy(base[0])
    del ds.PixelData
    out.append(ds)
    ds = copy.deepcopy(base[0])
    ds.PixelData = ds.PixelData[:100]  # short native pixel data
    out.append(ds)
    ds = copy.deepcopy(base[0])
    ds.NumberOfFrames = "1"
    out.append(ds)
    return out


def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    return int(tag_for_keyword(keyword))


def _vr(keyword: str) -> str:
    from pydicom.datadict import dictionary_VR

    return dictionary_VR(_tag(keyword))


def _bodies() -> list[tuple[bytes, str]]:
    variants = _variants()
    return [_encode(copy.deepcopy(ds), implicit) for ds in variants for implicit in (False, True)]


def test_intact_instances_give_ingests_record() -> None:
    results = [compare(body, ts) for body, ts in _bodies()]
    assert "refused" not in results
    # the plain instances (CT, PET with its sequences and private tags, MR, common
    # character sets) are built in the receiver in both encodings
    assert results[:6] == ["record"] * 6
    assert results.count("record") >= 24
    assert results.count("fallback") >= 10  # charsets, refusals: ingest reads the file


def test_undefined_length_sequences_and_private_sequences() -> None:
    pet = _instances()[1]
    private = Dataset()
    private.add_new(0x00091010, "LO", "inside")
    pet.add_new(0x00091003, "SQ", Sequence([private]))
    for implicit in (False, True):
        body, ts = _encode(copy.deepcopy(pet), implicit)
        assert compare(body, ts) == "record"
        # the same with every sequence and item of undefined length (pydicom writes
        # defined ones): rewrite through pydicom's undefined-length flags
        ds = dcmread(io.BytesIO(_spool(body, ts)))
        for elem in ds.iterall():
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for item in elem.value:
                    item.is_undefined_length_sequence_item = True
        body2, ts2 = _encode(ds, implicit)
        assert body2 != body
        assert compare(body2, ts2) in ("record", "fallback")


def _spool(body: bytes, ts: str) -> bytes:
    return file_meta_header("1.2.840.10008.5.1.4.1.1.128", "1.2.3", ts) + body


def _header_end(body: bytes) -> int:
    return body.rfind(b"\xe0\x7f\x10\x00") + 12


@pytest.mark.parametrize("which", range(6))
def test_truncated_copies(which: int) -> None:
    body, ts = _bodies()[which]
    seen = set()
    for cut in [*range(0, _header_end(body) + 16, 3), len(body) - 1, len(body) - 100]:
        seen.add(compare(body[:cut], ts))
    assert "refused" in seen


@pytest.mark.parametrize("which", range(6))
def test_damaged_copies(which: int) -> None:
    rng = random.Random(11 + which)
    body, ts = _bodies()[which]
    end = _header_end(body)
    counts: dict[str, int] = {}
    for _ in range(450):
        damaged = bytearray(body)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(0, end)] = rng.randrange(256)
        outcome = compare(bytes(damaged), ts)
        counts[outcome] = counts.get(outcome, 0) + 1
    assert counts.get("record", 0) > 50, counts


def test_the_walk_notes_every_attribute_of_the_record() -> None:
    noted = integrity._FOUND_TAGS
    assert set(header_record.RECORD_TAGS) <= noted
    assert {0x00080005, 0x00540016, 0x7FE00010, 0x7FE00008, 0x7FE00009} <= noted
    from oncohybrid.store.models import UID_LEN

    assert header_record.UID_LEN == UID_LEN


def test_other_transfer_syntaxes_are_left_to_ingest() -> None:
    body, _ts = _bodies()[0]
    assert compare(body, "1.2.840.10008.1.2.1.99") in ("fallback", "refused")  # deflate
    assert compare(body, "1.2.840.10008.1.2.4.50") == "fallback"  # JPEG baseline


def _realdata_files() -> list[Path]:
    root = os.environ.get("ONCOHYBRID_REALDATA")
    if not root or not Path(root).is_dir():
        return []
    files = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and path.stat().st_size > 132:
            with path.open("rb") as fh:
                head = fh.read(132)
            if head[128:132] == b"DICM":
                files.append(path)
    return files


@pytest.mark.skipif(not os.environ.get("ONCOHYBRID_REALDATA"), reason="ONCOHYBRID_REALDATA unset")
def test_real_files() -> None:
    files = _realdata_files()
    assert files
    counts: dict[str, int] = {}
    for path in files:
        try:
            body, ts = _split(path.read_bytes())
        except Exception:  # an unreadable meta: not something a sender could transmit
            continue
        outcome = compare(body, ts)
        counts[outcome] = counts.get(outcome, 0) + 1
    print(counts)
    assert counts.get("record", 0) > 0


@pytest.mark.parametrize("processes", [0, 1])
def test_listener_indexes_with_the_receivers_records(
    home, monkeypatch: pytest.MonkeyPatch, processes: int  # noqa: ANN001
) -> None:
    """The indexing thread hands the receivers' records to ingest: no file is parsed again,
    and the rows are those of ingesting the same files from a folder."""
    import pacs_net
    import sqlalchemy as sa

    from oncohybrid.config import get_settings
    from oncohybrid.pacs.scp import StorageListener
    from oncohybrid.services.ingest import Ingestor, ingestor
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance, Patient, Series, Study

    def rows_of(settings) -> set:  # noqa: ANN001
        """Every indexed value (not keys, paths or times) of the four hierarchy tables."""
        out = set()
        with session_scope(settings) as s:
            for model in (Patient, Study, Series, Instance):
                cols = [c for c in model.__table__.columns
                        if not (c.name == "id" or c.name.endswith(("_pk", "path", "_at")))]
                out |= {(model.__name__, *r) for r in s.execute(sa.select(*cols)).all()}
        return out

    parsed: list[int] = []
    real = ingestor.read_header

    def counting(fh, size, *args):  # noqa: ANN001, ANN202
        parsed.append(size)
        return real(fh, size, *args)

    monkeypatch.setattr(ingestor, "read_header", counting)
    settings = get_settings()
    listener = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool", port=0,
                               receive_processes=processes)
    listener.start()
    try:
        study = pacs_data.make_study(n_ct=2, n_pt=2)
        study[1].file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        assert pacs_net.send(listener.port, study) == [0, 0, 0, 0]
        assert listener.flush(30)
    finally:
        listener.stop(grace_s=1)
    assert parsed == []
    assert listener.stats.indexed_new == 4
    rows = rows_of(settings)
    assert sum(r[0] == "Instance" for r in rows) == 4
    # ONCOHYBRID_PACS_RECORDS=0: the receivers build no records and ingest reads the files
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home.parent / "home2"))
    monkeypatch.setenv("ONCOHYBRID_PACS_RECORDS", "0")
    settings2 = get_settings()
    listener = StorageListener(Ingestor(settings2), spool_dir=settings2.home / "spool", port=0,
                               receive_processes=processes)
    listener.start()
    try:
        assert pacs_net.send(listener.port, study) == [0, 0, 0, 0]
        assert listener.flush(30)
    finally:
        listener.stop(grace_s=1)
    assert len(parsed) == 4
    assert rows_of(settings2) == rows
