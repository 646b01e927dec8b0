"""The per-instance shortcuts of network indexing (#11) give what the longer way gave.

``FileStore.path_str_for`` (no pathlib), ``FileStore.link_atomic`` (no ``mkdir`` when
the folder is there), the ingestor's one-``stat`` orphan check and the pickling of
``HeaderRecord`` (receiver -> listener).
"""

from __future__ import annotations

import copy
import datetime as dt
import errno
import os
import pickle
import shutil
from pathlib import Path, PurePosixPath

import pytest

from oncohybrid.dicom.header_record import HeaderRecord
from oncohybrid.errors import StoreError
from oncohybrid.services.ingest.ingestor import _stat_if_exists
from oncohybrid.store.filestore import FileStore, uid_component

UIDS = [
    "1.2.3", "1.2.840.10008.5.1.4.1.1.128", "..", ".", "../../x", "/etc/x", "a/../../b",
    "x" * 300, "\x00", "", " ..", "1/..", " 1.2.3 ", "1.2.3\x00", "é.1", "a-b_c.d",
]


@pytest.mark.parametrize("root", ["/", ".", "store", "/tmp/a/../b", "/tmp//x/", "./s/"])
def test_path_str_for_is_the_paths_string(root):
    fs = FileStore(root)
    for a in UIDS:
        for b in UIDS[:4]:
            for c in UIDS[::3]:
                old = fs.root / uid_component(a) / uid_component(b) / f"{uid_component(c)}.dcm"
                assert fs.path_str_for(a, b, c) == str(old)
                assert fs.path_for(a, b, c) == old
                assert PurePosixPath(fs.path_str_for(a, b, c)).parts == old.parts


def test_uid_component_cache_answers_as_before():
    for uid in UIDS * 2:
        assert uid_component(uid) == uid_component.__wrapped__(uid)


def test_link_atomic_creates_missing_folders_again_after_removal(tmp_path):
    fs = FileStore(tmp_path / "store")
    spool = tmp_path / "spool"
    spool.mkdir()
    for k in range(3):
        src = spool / f"{k}.dcm"
        src.write_bytes(b"x" * (10 + k))
        dest = fs.path_for("1.2", "1.2.3", f"1.2.3.{k}")
        if k == 1:
            shutil.rmtree(tmp_path / "store")  # the folders are gone: made again
        assert fs.link_atomic(src, dest) == 10 + k
        assert os.path.samefile(src, dest)
        # strings as well as Paths
        dest2 = fs.path_str_for("1.3", "1.3.4", f"1.3.4.{k}")
        assert fs.link_atomic(str(src), dest2) == 10 + k
        assert os.path.samefile(src, dest2)


def test_link_atomic_existing_destination_and_missing_source(tmp_path):
    fs = FileStore(tmp_path / "store")
    src = tmp_path / "a.dcm"
    src.write_bytes(b"abc")
    dest = fs.path_for("1.2", "1.2.3", "1.2.3.4")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"earlier run")
    assert fs.link_atomic(src, dest) == len(b"earlier run")  # adopted, not replaced
    assert dest.read_bytes() == b"earlier run"
    missing = fs.path_for("1.5", "1.5.6", "1.5.6.7")
    with pytest.raises(StoreError, match="cannot read"):
        fs.link_atomic(tmp_path / "gone.dcm", missing)
    assert missing.parent.is_dir()  # the folder was made first, as before
    assert not missing.exists()


def test_link_atomic_falls_back_to_a_copy(tmp_path, monkeypatch):
    fs = FileStore(tmp_path / "store")
    src = tmp_path / "a.dcm"
    src.write_bytes(b"data" * 100)

    def no_links(a, b):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    dest = fs.path_str_for("1.2", "1.2.3", "1.2.3.4")
    assert fs.link_atomic(str(src), dest) == 400
    assert Path(dest).read_bytes() == src.read_bytes()
    assert not os.path.samefile(src, dest)


def test_stat_if_exists_answers_as_exists(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    cases = [f, tmp_path / "missing", f / "under-a-file", tmp_path / "a\x00b", tmp_path]
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    cases.append(loop / "x")
    for p in cases:
        st = _stat_if_exists(str(p))
        assert (st is not None) == p.exists(), p
        if st is not None:
            assert st.st_size == p.stat().st_size


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_stat_if_exists_raises_where_exists_raises(tmp_path):
    d = tmp_path / "closed"
    d.mkdir()
    (d / "f").write_bytes(b"1")
    d.chmod(0)
    try:
        with pytest.raises(PermissionError):
            (d / "f").exists()
        with pytest.raises(PermissionError):
            _stat_if_exists(str(d / "f"))
    finally:
        d.chmod(0o755)


def _record(**kw) -> HeaderRecord:
    base = dict(
        sop_instance_uid="1.2.3.4", sop_class_uid="1.2.840.10008.5.1.4.1.1.128",
        study_instance_uid="1.2.3", series_instance_uid="1.2.3.9", patient_id="P1",
        modality="PT", issuer_of_patient_id="ISS", patient_name="A^B", patient_sex="F",
        patient_birth_date=dt.date(1950, 2, 3), study_date=dt.date(2024, 1, 1),
        study_time="101010", study_description="d", accession_number="acc", study_id="7",
        series_number=3, series_date=dt.date(2024, 1, 2), series_time="1", units="BQML",
        series_description="s", body_part_examined="WB", manufacturer="m",
        manufacturer_model_name="mm", frame_of_reference_uid="1.9", radiopharmaceutical="FDG",
        instance_number=-5, transfer_syntax_uid="1.2.840.10008.1.2", part10=False,
        file_size=1234, full=False,
    )
    base.update(kw)
    return HeaderRecord(**base)


def test_header_record_pickles_and_copies_to_an_equal_record():
    records = [
        _record(),
        HeaderRecord("1", "2", "3", "4", "", ""),  # defaults
        _record(patient_name=None, study_date=None, series_number=None, full=True),
    ]
    for rec in records:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            back = pickle.loads(pickle.dumps(rec, proto))
            assert type(back) is HeaderRecord
            assert back == rec
            assert [getattr(back, f) for f in HeaderRecord.__slots__] == [
                getattr(rec, f) for f in HeaderRecord.__slots__
            ]
        assert copy.copy(rec) == rec and copy.copy(rec) is not rec
        assert copy.deepcopy(rec) == rec
