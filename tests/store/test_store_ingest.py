"""Ingest into the study database: every valid instance once, bad files reported, idempotent."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

import pydicom
import pytest
import sqlalchemy as sa
from dicomfactory import SeriesSpec, StudySpec, build_cohort, make_instance

from oncohybrid.config import get_settings
from oncohybrid.services import ingest as ingest_mod
from oncohybrid.services.ingest import Ingestor
from oncohybrid.store.db import get_engine, session_scope
from oncohybrid.store.models import IngestLog, Instance, Series


def _stored(settings=None) -> dict[str, tuple[str, bool]]:
    with session_scope(settings) as s:
        rows = s.execute(
            sa.select(Instance.sop_instance_uid, Instance.file_path, Instance.in_place)
        ).all()
    return {uid: (path, in_place) for uid, path, in_place in rows}


def test_every_valid_instance_is_stored_once_and_every_bad_file_reported(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in")
    report = Ingestor().ingest_paths([tmp_path / "in"])

    assert report.new == cohort.n_valid
    assert report.duplicate == 0
    skipped = dict(report.skipped)
    assert set(skipped) == set(cohort.bad), skipped
    assert all(reason for reason in skipped.values())
    assert "truncated" in skipped[str(tmp_path / "in/junk/truncated.dcm")]
    assert "without (7FE0,0010) Pixel Data" in skipped[str(tmp_path / "in/junk/cut_at_pixels.dcm")]
    assert "SOPInstanceUID" in skipped[str(tmp_path / "in/junk/no_sop_uid.dcm")]
    assert "not a DICOM file" in skipped[str(tmp_path / "in/junk/notes.txt")]
    assert "not a DICOM file" in skipped[str(tmp_path / "in/junk/headless.dcm")]

    stored = _stored()
    assert set(stored) == set(cohort.valid)
    store_root = get_settings().store_dir
    for sop, (path, in_place) in stored.items():
        assert not in_place
        p = Path(path)
        assert p.is_relative_to(store_root)
        ds = pydicom.dcmread(p)  # a conformant Part 10 file, no force needed
        assert ds.SOPInstanceUID == sop
        assert p == store_root / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{sop}.dcm"

    # number_of_instances per series equals the files the factory wrote for it
    written: Counter[str] = Counter()
    for path, _ in stored.values():
        written[pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID] += 1
    with session_scope() as s:
        db_counts = {
            uid: n
            for uid, n in s.execute(
                sa.select(Series.series_instance_uid, Series.number_of_instances)
            ).all()
        }
    assert db_counts == dict(written)
    n_per_spec = {se.series_uid: se.n_slices for st in cohort.studies[:-1] for se in st.series}
    for uid, n in n_per_spec.items():
        assert db_counts[uid] == n
    # extra PET series: 3 zip members + 1 bare dataset
    assert db_counts[cohort.studies[-1].series[0].series_uid] == 4

    with session_scope() as s:
        log = s.scalars(sa.select(IngestLog)).one()
        assert (log.status, log.n_new, log.n_duplicate, log.n_skipped) == (
            "completed",
            cohort.n_valid,
            0,
            len(cohort.bad),
        )
        assert {e["path"] for e in log.skipped} == set(cohort.bad)


def test_second_ingest_adds_nothing_and_never_rewrites(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in")
    Ingestor().ingest_paths([tmp_path / "in"])
    before = {p: os.stat(p).st_mtime_ns for p, _ in _stored().values()}

    report = Ingestor().ingest_paths([tmp_path / "in"])

    assert (report.new, report.duplicate) == (0, cohort.n_valid)
    assert len(report.skipped) == len(cohort.bad)
    after = {p: os.stat(p).st_mtime_ns for p, _ in _stored().values()}
    assert after == before
    with session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(Instance.id))) == cohort.n_valid


def test_in_place_references_files_without_copying(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in")
    report = Ingestor(in_place=True).ingest_paths([tmp_path / "in"])
    assert report.new == cohort.n_valid

    stored = _stored()
    store_root = get_settings().store_dir
    copied = {sop for sop, (path, _) in stored.items() if Path(path).is_relative_to(store_root)}
    # Only what has no usable file of its own is copied: zip members and bare datasets.
    assert copied == set(cohort.zip_members) | set(cohort.raw_valid)
    for sop, (path, in_place) in stored.items():
        if sop not in copied:
            assert in_place
            assert Path(path) == cohort.valid[sop]
    n_store_files = sum(1 for _ in store_root.rglob("*.dcm")) if store_root.exists() else 0
    assert n_store_files == len(copied)


def test_bare_dataset_is_stored_as_part10_file(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in")
    Ingestor().ingest_paths([tmp_path / "in" / "junk"])
    (sop,) = cohort.raw_valid
    path = Path(_stored()[sop][0])
    assert path.read_bytes()[128:132] == b"DICM"
    ds = pydicom.dcmread(path)
    assert ds.file_meta.MediaStorageSOPInstanceUID == sop
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian


def test_atomic_write_leaves_no_temporary_files(backend, tmp_path, monkeypatch):
    build_cohort(tmp_path / "in", junk=False)
    Ingestor().ingest_paths([tmp_path / "in"])
    store_root = get_settings().store_dir
    assert not [p for p in store_root.rglob("*") if p.name.endswith(".tmp")]

    # A write that fails half-way removes its temporary file and creates nothing.
    from oncohybrid.store.filestore import FileStore

    fs = FileStore(tmp_path / "fs")
    dest = fs.path_for("1.2", "1.2.3", "1.2.3.4")

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        fs.write_atomic(dest, boom)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_interrupted_ingest_leaves_database_consistent_and_orphans_are_adopted(
    backend, tmp_path, monkeypatch
):
    cohort = build_cohort(tmp_path / "in", junk=False)
    monkeypatch.setattr(ingest_mod.ingestor, "BATCH_SIZE", 5)  # read where the batches are cut
    real_commit = Ingestor._commit_batch
    calls = {"n": 0}

    def crash_on_second(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process is killed between files and rows
        return real_commit(self, *a, **kw)

    monkeypatch.setattr(Ingestor, "_commit_batch", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        Ingestor().ingest_paths([tmp_path / "in"])
    monkeypatch.setattr(Ingestor, "_commit_batch", real_commit)

    stored = _stored()
    assert len(stored) == 5  # exactly the first committed batch
    for path, _ in stored.values():
        assert Path(path).exists()  # every row points at a complete file
    store_files = list(get_settings().store_dir.rglob("*.dcm"))
    assert len(store_files) == 10  # the second batch's files are orphans
    with session_scope() as s:
        log = s.scalars(sa.select(IngestLog)).one()
        assert log.status == "interrupted" and log.n_new == 5

    report = Ingestor().adopt_orphans()
    assert (report.new, report.duplicate) == (5, 5)
    report = Ingestor().ingest_paths([tmp_path / "in"])
    assert (report.new, report.duplicate) == (cohort.n_valid - 10, 10)
    assert set(_stored()) == set(cohort.valid)


def test_ingest_dataset_from_network_builds_file_meta_and_is_thread_safe(backend, tmp_path):
    study = StudySpec("NET01", "Net^Pat", "20240601", [SeriesSpec("PT", 12)])
    datasets = [make_instance(study, study.series[0], i) for i in range(12)]
    for ds in datasets:
        del ds.file_meta  # as a network dataset may arrive

    ingestor = Ingestor()
    outcomes = []
    lock = threading.Lock()

    def worker(items):
        for ds in items:
            out = ingestor.ingest_dataset(ds)
            with lock:
                outcomes.append(out)

    # 4 threads, each sending all 12 datasets: every SOP arrives 4 times concurrently.
    threads = [
        threading.Thread(target=worker, args=(datasets[k:] + datasets[:k],)) for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ingestor.close()

    statuses = Counter(o.status for o in outcomes)
    assert statuses == {"new": 12, "duplicate": 36}
    assert not hasattr(datasets[0], "file_meta") or "TransferSyntaxUID" not in datasets[0].file_meta
    stored = _stored()
    assert set(stored) == {ds.SOPInstanceUID for ds in datasets}
    for sop, (path, _) in stored.items():
        ds = pydicom.dcmread(path)
        assert ds.file_meta.MediaStorageSOPInstanceUID == sop
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID

    # a duplicate never rewrites the stored file
    path = stored[datasets[0].SOPInstanceUID][0]
    mtime = os.stat(path).st_mtime_ns
    again = Ingestor().ingest_dataset(datasets[0])
    assert (again.status, again.path) == ("duplicate", path)
    assert os.stat(path).st_mtime_ns == mtime

    bad = make_instance(study, study.series[0], 99)
    del bad.PatientID
    out = Ingestor().ingest_dataset(bad)
    assert out.status == "skipped" and "PatientID" in out.reason
    with session_scope() as s:
        counts = s.execute(
            sa.select(Series.number_of_instances).where(
                Series.series_instance_uid == study.series[0].series_uid
            )
        ).scalar_one()
    assert counts == 12


def test_schema_is_created_by_alembic_at_a_single_head(backend):
    from alembic.script import ScriptDirectory

    from oncohybrid.store.db import alembic_config, current_revision, head_revision

    engine = get_engine()
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1  # migrations stay linear
    assert current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "patients",
        "studies",
        "series",
        "instances",
        "ingest_logs",
        "alembic_version",
    } <= tables
    if backend == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    else:
        assert engine.dialect.driver == "psycopg"


def test_series_files_returns_stored_paths_in_instance_order(backend, tmp_path):
    from oncohybrid.store.queries import series_files

    cohort = build_cohort(tmp_path / "in", junk=False)
    Ingestor().ingest_paths([tmp_path / "in"])
    se = cohort.studies[0].series[0]
    files = series_files(se.series_uid)
    assert len(files) == se.n_slices
    numbers = [pydicom.dcmread(f).InstanceNumber for f in files]
    assert numbers == sorted(numbers) == list(range(1, se.n_slices + 1))
    from oncohybrid.errors import StoreError

    with pytest.raises(StoreError, match="not in the study database"):
        series_files("1.2.3.999")
