"""The Storage SCP's fast paths: direct file meta, batched indexing, receiver processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pacs_data
import pacs_net
import pytest
import sqlalchemy as sa
from pydicom import dcmread
from pydicom.uid import UID
from pynetdicom.dsutils import create_file_meta, encode_file_meta

from oncohybrid.config import get_settings
from oncohybrid.pacs.scp import (
    STATUS_CANNOT_UNDERSTAND,
    AllowedCaller,
    StorageListener,
    file_meta_header,
)
from oncohybrid.services.ingest import Ingestor


def db_rows() -> dict[str, tuple[Path, int]]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import IngestLog, Instance

    with session_scope(get_settings()) as s:
        rows = s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all()
        n_new = s.scalar(sa.select(sa.func.sum(IngestLog.n_new))) or 0
    return {uid: (Path(p), int(n_new)) for uid, p in rows}


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "ts"),
    [
        ("1.2.840.10008.5.1.4.1.1.128", "1.2.3.4", "1.2.840.10008.1.2.1"),  # even lengths
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", "1.2.840.10008.1.2"),  # odd: padded
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498." + "7" * 37,
         "1.2.840.10008.1.2.4.50"),
    ],
)
def test_file_meta_header_equals_pydicom_encoding(sop_class, sop_instance, ts) -> None:  # noqa: ANN001
    reference = b"\x00" * 128 + b"DICM" + encode_file_meta(create_file_meta(
        sop_class_uid=UID(sop_class), sop_instance_uid=UID(sop_instance),
        transfer_syntax=UID(ts)))
    assert file_meta_header(sop_class, sop_instance, ts) == reference


@pytest.mark.parametrize("status", [0x0000, 0xC210, 0xA700])
@pytest.mark.parametrize("sop_instance", ["1.2.3.4", "1.2.3.45"])
def test_store_response_equals_pynetdicom_encoding(status, sop_instance) -> None:  # noqa: ANN001
    from pynetdicom.dimse_messages import C_STORE_RSP
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode

    from oncohybrid.pacs.scp import encode_store_response

    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 65535
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    rsp.AffectedSOPInstanceUID = sop_instance
    rsp.Status = status
    msg = C_STORE_RSP()
    msg.primitive_to_message(rsp)
    assert encode_store_response(
        "1.2.840.10008.5.1.4.1.1.128", 65535, status, sop_instance
    ) == encode(msg.command_set, True, True)


def test_polling_fallback_still_receives(home, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ONCOHYBRID_SCP_POLL", "1")  # pynetdicom's own loops and encoder
    settings = get_settings()
    listener = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool", port=0)
    listener.start()
    try:
        study = pacs_data.make_study(n_ct=2, n_pt=1)
        assert pacs_net.send(listener.port, study) == [0, 0, 0]
        assert listener.flush(30)
    finally:
        listener.stop(grace_s=1)
    assert set(db_rows()) == {str(ds.SOPInstanceUID) for ds in study}


def test_ingest_files_batch_outcomes_and_duplicate_rules(home, tmp_path) -> None:  # noqa: ANN001
    study = pacs_data.make_study(n_ct=2, n_pt=2)
    paths = pacs_data.write_study(study, tmp_path / "in")
    garbage = tmp_path / "in" / "not-dicom.dcm"
    garbage.write_bytes(b"hello, not a DICOM file" * 10)
    cut = tmp_path / "in" / "cut.dcm"
    cut.write_bytes(paths[0].read_bytes()[:-100])  # pixel data cut short
    ingestor = Ingestor(get_settings())
    batch = [*paths, paths[1], garbage, cut]
    out = ingestor.ingest_files_batch(batch, source="network")
    assert [o.status for o in out] == ["new"] * 4 + ["duplicate", "skipped", "skipped"]
    assert "truncated" in (out[-1].reason or "")
    assert {o.study_instance_uid for o in out[:5]} == {str(study[0].StudyInstanceUID)}
    rows = db_rows()
    assert set(rows) == {str(ds.SOPInstanceUID) for ds in study}
    for path, o in zip(paths, out, strict=False):
        stored = Path(o.path or "")
        assert rows[o.sop_instance_uid or ""][0] == stored
        assert stored.read_bytes() == path.read_bytes()  # stored exactly as received
    assert next(iter(rows.values()))[1] == 4  # the network ingest log counted 4 new
    again = ingestor.ingest_files_batch(paths, source="network")
    assert [o.status for o in again] == ["duplicate"] * 4
    assert [o.path for o in again] == [o.path for o in out[:4]]
    assert all(p.exists() for p in paths)  # the sources are left in place
    ingestor.close()


@pytest.mark.parametrize("links_work", [True, False])
def test_ingest_files_batch_links_spool_files_into_the_store(
    home, tmp_path, monkeypatch, links_work  # noqa: ANN001
) -> None:
    study = pacs_data.make_study(n_ct=2, n_pt=1)
    paths = pacs_data.write_study(study, tmp_path / "spool")
    originals = [p.read_bytes() for p in paths]
    if not links_work:  # e.g. the spool on another file system: a copy instead
        import errno
        import os

        def no_link(src, dst):  # noqa: ANN001, ANN202
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "link", no_link)
    syncs: list[int] = []
    from oncohybrid.store.filestore import FileStore

    monkeypatch.setattr(FileStore, "sync_all", staticmethod(lambda: syncs.append(1)))
    ingestor = Ingestor(get_settings())
    out = ingestor.ingest_files_batch(paths, source="network", link=True)
    assert [o.status for o in out] == ["new"] * 3
    assert syncs == [1]  # one sync for the whole batch, before the rows were committed
    for path, original, o in zip(paths, originals, out, strict=True):
        stored = Path(o.path or "")
        assert stored.is_relative_to(get_settings().store_dir)
        assert (stored.stat().st_ino == path.stat().st_ino) is links_work
        path.unlink()  # the listener removes its spool file afterwards
        assert stored.read_bytes() == original
    ingestor.close()


def test_ingest_files_batch_from_threads_stores_each_instance_once(home, tmp_path) -> None:  # noqa: ANN001
    study = pacs_data.make_study(n_ct=30, n_pt=0, size=8)
    paths = pacs_data.write_study(study, tmp_path / "in")
    ingestor = Ingestor(get_settings())
    results: list[str] = []
    lock = threading.Lock()

    def run(chunk: list[Path]) -> None:
        out = ingestor.ingest_files_batch(chunk, source="network")
        with lock:
            results.extend(o.status for o in out)

    # overlapping batches: every instance is in two of them
    chunks = [paths[:20], paths[10:], paths[:10] + paths[20:]]
    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("new") == 30 and results.count("duplicate") == 30
    assert len(db_rows()) == 30
    ingestor.close()


def wait_for(cond, timeout_s: float = 10) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_receiver_processes_receive_refuse_reject_and_index(home) -> None:  # noqa: ANN001
    settings = get_settings()
    listener = StorageListener(
        Ingestor(settings), spool_dir=settings.home / "spool", port=0, receive_processes=2,
        allowed_callers=[AllowedCaller("GOODAE", "127.0.0.1"),
                         AllowedCaller("TRUNCATE", "127.0.0.1")],
    )
    listener.start()
    try:
        study = pacs_data.make_study(n_ct=4, n_pt=4)
        sent: list[list[int]] = []
        senders = [
            threading.Thread(target=lambda c=c: sent.append(pacs_net.send(
                listener.port, c, calling_ae="GOODAE")))
            for c in (study[:4], study[4:], study[:2])  # three associations, two resends
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        assert sorted(map(len, sent)) == [2, 4, 4] and {s for x in sent for s in x} == {0}
        assert not pacs_net.echo_ok(listener.port, "BADAE")
        ds = pacs_data.make_study(n_ct=1, n_pt=0)[0]
        assert pacs_net.send_truncated(listener.port, ds, 100) == STATUS_CANNOT_UNDERSTAND
        assert listener.flush(60)
        assert wait_for(lambda: listener.stats.rejected_associations == 1
                        and listener.stats.refused_instances == 1)
        # a file a receiver process spooled but could not report (it died): indexed at stop
        orphan = pacs_data.make_study(n_ct=1, n_pt=0)[0]
        orphan.save_as(listener.spool_dir / "00000000000000000009-r9-00000001.dcm",
                       enforce_file_format=True)
    finally:
        listener.stop(grace_s=1)
    stats = listener.stats.as_dict()
    assert stats["received"] == 10
    assert stats["indexed_new"] == 9 and stats["indexed_duplicate"] == 2
    rows = db_rows()
    assert set(rows) == {str(d.SOPInstanceUID) for d in [*study, orphan]}
    assert dcmread(rows[str(study[5].SOPInstanceUID)][0]).PixelData == study[5].PixelData
    assert list(listener.spool_dir.glob("*.dcm")) == []
    assert all(not p.process.is_alive() for p in listener._procs)


def test_receiver_processes_refuse_a_busy_port(home) -> None:  # noqa: ANN001
    from oncohybrid.errors import PacsError

    settings = get_settings()
    first = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool", port=0,
                            receive_processes=1)
    first.start()
    try:
        second = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool2",
                                 port=first.port, receive_processes=1)
        with pytest.raises(PacsError, match="another listener"):
            second.start()
        assert pacs_net.echo_ok(first.port)
    finally:
        first.stop(grace_s=1)


def test_sigterm_with_receiver_processes_keeps_every_acknowledged_instance(home) -> None:  # noqa: ANN001

    port = pacs_net.free_port()
    proc = pacs_net.start_listener_process(
        home, port, extra_env={"ONCOHYBRID_LISTEN_PROCESSES": "2"}, timeout_s=60
    )
    try:
        study = pacs_data.make_study(n_ct=400, n_pt=0, size=32)
        acked: list[str] = []

        sender = threading.Thread(target=pacs_net.send_recording_acks,
                                  args=(port, study, acked))
        sender.start()
        while len(acked) < 50 and sender.is_alive():
            time.sleep(0.01)
        proc.terminate()  # SIGTERM to the listener process only, mid-association
        sender.join(timeout=60)
        _out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert 50 <= len(acked) < len(study), "SIGTERM should have cut the association short"
    rows = db_rows()
    assert set(acked) <= set(rows)
    assert all(p.exists() for p, _n in rows.values())
    assert list((home / "spool").rglob("*.dcm")) == []
