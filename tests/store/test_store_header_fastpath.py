"""The plain-Part-10 header path of ingest gives exactly the ``dcmread`` path's answers.

:func:`oncohybrid.services.ingest.headers._read_plain_part10` walks the File Meta
Information itself and hands the data set to pydicom's ``read_dataset`` (issue #11,
in-place ingest speed). Differential test: intact files (Explicit and Implicit VR Little
Endian, CT and PET) and thousands of damaged copies of them - cut at every few bytes of
the header, a few random bytes overwritten (seeded) - must give the same record or the
same skip reason with the fast path as with ``dcmread`` alone, and every #12 refusal is
therefore kept.
"""

from __future__ import annotations

import dataclasses
import io
import random

import pytest
from dicomfactory import SeriesSpec, StudySpec, make_instance, to_bytes
from pydicom.uid import ImplicitVRLittleEndian

from oncohybrid.services.ingest import SkipFile, headers, read_header


def _outcome(data: bytes) -> tuple[str, object]:
    try:
        rec = read_header(io.BytesIO(data), len(data))
    except SkipFile as exc:
        return "skipped", exc.reason
    except Exception as exc:  # compared too: both paths must fail alike
        return "error", f"{type(exc).__name__}: {exc}"
    return "record", dataclasses.asdict(rec)


def _both(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    fast = _outcome(data)
    with monkeypatch.context() as m:
        m.setattr(headers, "_read_plain_part10", lambda fp: None)
        slow = _outcome(data)
    return fast, slow


def _files() -> list[bytes]:
    out = []
    for modality in ("CT", "PT"):
        study = StudySpec("FAST01", "Fast^Path", "20240101", [SeriesSpec(modality, 1)])
        ds = make_instance(study, study.series[0], 0)
        out.append(to_bytes(ds))
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        out.append(to_bytes(ds))
    return out


def _header_end(data: bytes) -> int:
    return data.rfind(b"\xe0\x7f\x10\x00") + 12  # past the Pixel Data element header


def test_fast_path_is_taken_for_plain_files() -> None:
    for data in _files():
        fp = io.BytesIO(data)
        assert headers._read_plain_part10(fp) is not None
        assert _outcome(data)[0] == "record"


def test_truncated_copies_give_the_dcmread_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    for data in _files():
        cuts = list(range(0, _header_end(data) + 16, 3)) + [len(data) - 1, len(data) - 100]
        for cut in cuts:
            fast, slow = _both(data[:cut], monkeypatch)
            assert fast == slow, cut


def test_damaged_copies_give_the_dcmread_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    n_records = 0
    for data in _files():
        end = _header_end(data)
        for _ in range(400):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(0, end)] = rng.randrange(256)
            fast, slow = _both(bytes(damaged), monkeypatch)
            assert fast == slow
            n_records += fast[0] == "record"
    assert n_records > 100  # most single-byte damage hits values that are not checked
