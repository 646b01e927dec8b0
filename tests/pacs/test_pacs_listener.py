"""The Storage SCP: ingest path, allow-list, broken senders, resends, completion hooks, load."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pacs_data
import pacs_net
import pytest
import sqlalchemy as sa
from pydicom import dcmread

from oncohybrid.config import get_settings
from oncohybrid.pacs.scp import STATUS_CANNOT_UNDERSTAND, AllowedCaller, StorageListener
from oncohybrid.services.ingest import Ingestor


def db_instances() -> dict[str, Path]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance

    with session_scope(get_settings()) as s:
        rows = s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all()
    return {uid: Path(p) for uid, p in rows}


@pytest.fixture
def make_listener(home):  # noqa: ANN001, ANN201
    started: list[StorageListener] = []

    def _make(**kw) -> StorageListener:  # noqa: ANN003
        settings = get_settings()
        kw.setdefault("quiet_period_s", 30)
        listener = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool",
                                   port=0, **kw)
        listener.start()
        started.append(listener)
        return listener

    yield _make
    for listener in started:
        listener.stop(grace_s=1)


def test_received_instances_are_indexed_and_stored_like_ingest(make_listener) -> None:  # noqa: ANN001
    listener = make_listener()
    study = pacs_data.make_study(n_ct=3, n_pt=3)
    assert pacs_net.send(listener.port, study) == [0] * 6
    assert listener.flush(30)
    files = db_instances()
    assert set(files) == {str(ds.SOPInstanceUID) for ds in study}
    for ds in study:
        stored = dcmread(files[str(ds.SOPInstanceUID)])
        assert stored.PixelData == ds.PixelData and stored.PatientID == ds.PatientID
    assert list(listener.spool_dir.glob("*.dcm")) == []


def test_flush_indexes_every_acknowledged_instance_however_late_receivers_report(
    make_listener, monkeypatch  # noqa: ANN001
) -> None:
    # CI once saw flush() return True with the last acknowledged instance still in a
    # receiver process's report batch; with a 30 s report interval flush() must still
    # see all of them (it asks each receiver process for what it holds)
    monkeypatch.setenv("ONCOHYBRID_PACS_REPORT_INTERVAL_S", "30")
    listener = make_listener(receive_processes=2)
    study = pacs_data.make_study(n_ct=3, n_pt=3)
    assert pacs_net.send(listener.port, study) == [0] * 6
    start = time.monotonic()
    assert listener.flush(20)
    assert time.monotonic() - start < 15
    assert set(db_instances()) == {str(ds.SOPInstanceUID) for ds in study}


def test_resent_instances_are_counted_as_duplicates_not_stored_twice(make_listener) -> None:  # noqa: ANN001
    listener = make_listener()
    study = pacs_data.make_study(n_ct=2, n_pt=2)
    pacs_net.send(listener.port, study)
    assert pacs_net.send(listener.port, study + study[:1]) == [0] * 5
    assert listener.flush(30)
    assert len(db_instances()) == 4
    assert listener.stats.indexed_new == 4 and listener.stats.indexed_duplicate == 5


def test_allow_list_rejects_unknown_ae_and_known_ae_from_another_host(make_listener) -> None:  # noqa: ANN001
    listener = make_listener(allowed_callers=[AllowedCaller("GOODAE", "127.0.0.1"),
                                              AllowedCaller("REMOTEAE", "192.0.2.10")])
    assert pacs_net.echo_ok(listener.port, "GOODAE")
    assert not pacs_net.echo_ok(listener.port, "BADAE")
    assert not pacs_net.echo_ok(listener.port, "REMOTEAE")  # right AE, wrong host
    assert listener.stats.rejected_associations == 2


def test_without_allow_list_any_caller_is_accepted(make_listener) -> None:  # noqa: ANN001
    listener = make_listener()
    assert pacs_net.echo_ok(listener.port, "ANYONE")


def test_sender_aborting_mid_dataset_leaves_nothing_and_listener_serves_on(make_listener) -> None:  # noqa: ANN001
    listener = make_listener()
    big = pacs_data.make_study(n_ct=1, n_pt=0, size=256)[0]
    pacs_net.abort_mid_dataset(listener.port, big, fraction=0.5)
    time.sleep(0.3)
    assert listener.stats.received == 0
    assert list(listener.spool_dir.iterdir()) == []
    good = pacs_data.make_study(n_ct=1, n_pt=1)
    assert pacs_net.send(listener.port, good) == [0, 0]
    assert listener.flush(30)
    assert set(db_instances()) == {str(ds.SOPInstanceUID) for ds in good}


@pytest.mark.parametrize("keep", [100, 0.6])
def test_truncated_dataset_is_refused_not_half_written(make_listener, keep) -> None:  # noqa: ANN001
    listener = make_listener()
    ds = pacs_data.make_study(n_ct=1, n_pt=0, size=64)[0]
    from pynetdicom.dsutils import encode

    n = len(encode(ds, False, True))
    keep_bytes = keep if isinstance(keep, int) else int(n * keep)
    assert pacs_net.send_truncated(listener.port, ds, keep_bytes) == STATUS_CANNOT_UNDERSTAND
    assert listener.stats.refused_instances == 1 and listener.stats.received == 0
    assert listener.flush(10) and db_instances() == {}
    assert list(listener.spool_dir.glob("*.dcm")) == []
    assert pacs_net.send(listener.port, [ds]) == [0]  # the whole one is accepted afterwards
    assert listener.flush(30) and set(db_instances()) == {str(ds.SOPInstanceUID)}


def test_complete_study_fires_hook_once_after_quiet_period(make_listener) -> None:  # noqa: ANN001
    calls = []
    listener = make_listener(quiet_period_s=0.6, hooks=[calls.append])
    study = pacs_data.make_study(n_ct=2, n_pt=3)
    pacs_net.send(listener.port, study[:3], calling_ae="MODALITY1")
    pacs_net.send(listener.port, study[3:], calling_ae="MODALITY1")
    assert listener.flush(30)
    assert calls == []  # still inside the quiet period
    time.sleep(1.5)
    assert len(calls) == 1
    event = calls[0]
    assert event.study_instance_uid == str(study[0].StudyInstanceUID)
    assert (event.instances, event.new_instances) == (5, 5)
    assert event.calling_ae_titles == ("MODALITY1",)
    pacs_net.send(listener.port, study[:1])  # a late resend: a new burst, nothing new
    assert listener.flush(30)
    time.sleep(1.5)
    assert len(calls) == 2 and calls[1].new_instances == 0


def test_spool_left_by_a_dead_listener_is_indexed_on_start(home, tmp_path) -> None:  # noqa: ANN001
    settings = get_settings()
    spool = settings.home / "spool"
    spool.mkdir(parents=True)
    ds = pacs_data.make_study(n_ct=1, n_pt=0)[0]
    ds.save_as(spool / "00000000000000000001-00000001.dcm", enforce_file_format=True)
    (spool / "00000000000000000002-00000002.part").write_bytes(b"half")  # never acknowledged
    listener = StorageListener(Ingestor(settings), spool_dir=spool, port=0)
    listener.start()
    try:
        assert listener.flush(30)
    finally:
        listener.stop()
    assert set(db_instances()) == {str(ds.SOPInstanceUID)}
    assert listener.stats.recovered == 1
    assert list(spool.glob("*.dcm")) == [] and list(spool.glob("*.part")) == []


def test_load_three_concurrent_associations_2000_instances_each_indexed_once(
    make_listener, tmp_path  # noqa: ANN001
) -> None:
    listener = make_listener()
    n_per, n_assoc = 667, 3
    folders = []
    for k in range(n_assoc):
        study = pacs_data.make_study(n_ct=n_per, n_pt=0, size=8, patient_id=f"LOAD{k:02d}")
        folders.append(tmp_path / f"a{k}")
        pacs_data.write_study(study, folders[-1])
    storescu = shutil.which("storescu")
    errors: list[str] = []

    def _send(folder: Path) -> None:
        if storescu:  # DCMTK as an independent sender
            r = subprocess.run([storescu, "-aec", "ONCOHYBRID", "+sd", "127.0.0.1",
                                str(listener.port), str(folder)],
                               env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True,
                               text=True, timeout=120)
            if r.returncode:
                errors.append(r.stderr[-500:])
        else:
            from pydicom import dcmread as read

            statuses = pacs_net.send(listener.port, [read(p) for p in sorted(folder.iterdir())])
            if set(statuses) != {0}:
                errors.append(str(set(statuses)))

    threads = [threading.Thread(target=_send, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert listener.flush(120)
    assert listener.stats.received == n_per * n_assoc
    assert len(db_instances()) == n_per * n_assoc
    assert listener.stats.indexed_new == n_per * n_assoc


def test_sigterm_keeps_every_acknowledged_instance(home, tmp_path) -> None:  # noqa: ANN001
    port = pacs_net.free_port()
    proc = pacs_net.start_listener_process(home, port)
    try:
        study = pacs_data.make_study(n_ct=400, n_pt=0, size=32)
        acked: list[str] = []

        sender = threading.Thread(target=pacs_net.send_recording_acks,
                                  args=(port, study, acked))
        sender.start()
        while len(acked) < 50:
            time.sleep(0.01)
        proc.terminate()  # SIGTERM mid-association
        sender.join(timeout=60)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert 50 <= len(acked) < len(study), "SIGTERM should have cut the association short"
    stored = db_instances()
    assert set(acked) <= set(stored)
    assert all(p.exists() for p in stored.values())
    assert list((home / "spool").rglob("*.dcm")) == []


def test_acknowledged_but_unindexable_instance_is_kept_for_review(make_listener) -> None:  # noqa: ANN001
    listener = make_listener()
    ds = pacs_data.make_study(n_ct=1, n_pt=0)[0]
    del ds.StudyInstanceUID  # ingest cannot place it in the hierarchy
    assert pacs_net.send(listener.port, [ds]) == [0]
    assert listener.flush(30)
    assert db_instances() == {}
    assert listener.stats.indexed_skipped == 1
    (kept,) = listener.failed_dir.iterdir()
    assert dcmread(kept).SOPInstanceUID == ds.SOPInstanceUID


def test_unreachable_nodes_give_an_actionable_error() -> None:
    from oncohybrid.errors import PacsError
    from oncohybrid.pacs.node import PacsNode
    from oncohybrid.services import pacs

    port = pacs_net.free_port()  # nothing listens there
    dimse = PacsNode(name="gone", ae_title="GONE", host="127.0.0.1", port=port)
    with pytest.raises(PacsError, match=r"node 'gone' \(GONE@127.0.0.1:\d+\): connection refused"):
        pacs.echo(dimse)
    web = PacsNode(name="gone-web", url=f"http://127.0.0.1:{port}/dicom-web")
    with pytest.raises(PacsError, match="node 'gone-web'.*QIDO-RS probe failed, ConnectionError"):
        pacs.echo(web)


def test_listener_refuses_a_busy_port(make_listener) -> None:  # noqa: ANN001
    from oncohybrid.errors import PacsError

    first = make_listener()
    settings = get_settings()
    second = StorageListener(Ingestor(settings), spool_dir=settings.home / "spool2",
                             port=first.port)
    with pytest.raises(PacsError, match="cannot listen on 127.0.0.1:.*another listener"):
        second.start()
    assert pacs_net.echo_ok(first.port)
