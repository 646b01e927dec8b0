"""The listener's spool bound (back-pressure) and its count of conflicting instances (#11)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

import pacs_data
import pacs_net
import pytest

from oncohybrid.config import get_settings
from oncohybrid.pacs.scp import STATUS_OUT_OF_RESOURCES, StorageListener
from oncohybrid.pacs.spool import SpoolBound
from oncohybrid.services.ingest import Ingestor


class HeldIngestor:
    """An Ingestor whose batches wait until `release` is set (indexing that is behind)."""

    def __init__(self, inner: Ingestor) -> None:
        self.inner = inner
        self.release = threading.Event()

    def ingest_dataset(self, ds: Any, *, source: str = "network") -> Any:
        self.release.wait(60)
        return self.inner.ingest_dataset(ds, source=source)

    def ingest_files_batch(
        self, paths: Sequence[Any], *, source: str = "network", link: bool = False
    ) -> list[Any]:
        self.release.wait(60)
        return self.inner.ingest_files_batch(paths, source=source, link=link)

    def close(self) -> None:
        self.inner.close()


def _listener(ingestor: Any, **kw: Any) -> StorageListener:
    settings = get_settings()
    listener = StorageListener(ingestor, spool_dir=settings.home / "spool", port=0,
                               quiet_period_s=30, **kw)
    listener.start()
    return listener


def _send_in_thread(port: int, study: list[Any]) -> tuple[threading.Thread, list[int]]:
    statuses: list[int] = []
    thread = threading.Thread(target=lambda: statuses.extend(pacs_net.send(port, study)))
    thread.start()
    return thread, statuses


def test_spool_bound_counts_and_waits() -> None:
    bound = SpoolBound(limit=2, wait_s=0.2)
    assert bound.wait_for_room() == "free"
    bound.add(2)
    assert bound.backlog == 2 and bound.wait_for_room() == "full"
    threading.Timer(0.05, bound.add, args=(-1,)).start()
    assert SpoolBound(2, 5.0, bound.counter).wait_for_room() == "delayed"
    assert SpoolBound(0).wait_for_room() == "free"  # 0: unbounded


def test_acknowledgements_wait_while_the_spool_is_full(home) -> None:  # noqa: ANN001
    ingestor = HeldIngestor(Ingestor(get_settings()))
    listener = _listener(ingestor, max_spooled=2, spool_wait_s=30, receive_processes=0)
    try:
        study = pacs_data.make_study(n_ct=2, n_pt=2)
        thread, statuses = _send_in_thread(listener.port, study)
        thread.join(1.5)
        # two acknowledged and spooled, the third waits for the indexer
        assert thread.is_alive() and listener.stats.received == 2
        assert len(list(listener.spool_dir.glob("*.dcm"))) == 2
        assert listener.spool_backlog == 2
        ingestor.release.set()
        thread.join(30)
        assert statuses == [0, 0, 0, 0]
        assert listener.flush(30)
        assert listener.spool_backlog == 0 and listener.stats.indexed_new == 4
        assert listener.stats.delayed_acknowledgements >= 1
    finally:
        ingestor.release.set()
        listener.stop(grace_s=1)


@pytest.mark.parametrize("processes", [0, 1])
def test_full_spool_refuses_with_out_of_resources(home, processes: int) -> None:  # noqa: ANN001
    ingestor = HeldIngestor(Ingestor(get_settings()))
    listener = _listener(ingestor, max_spooled=2, spool_wait_s=0.3,
                         receive_processes=processes)
    try:
        study = pacs_data.make_study(n_ct=2, n_pt=1)
        assert pacs_net.send(listener.port, study) == [0, 0, STATUS_OUT_OF_RESOURCES]
        ingestor.release.set()
        assert listener.flush(30)
        # the refused instance was never written; a resend is accepted
        assert pacs_net.send(listener.port, study[2:]) == [0]
        assert listener.flush(30)
    finally:
        ingestor.release.set()
        listener.stop(grace_s=1)
    stats = listener.stats.as_dict()
    assert stats["spool_full_refusals"] == 1 and stats["indexed_new"] == 3
    assert list(listener.spool_dir.glob("*.dcm")) == []


def test_conflicting_instance_is_counted_and_not_moved_to_failed(home) -> None:  # noqa: ANN001
    ingestor = Ingestor(get_settings())
    listener = _listener(ingestor, receive_processes=0)
    try:
        study = pacs_data.make_study(n_ct=2, n_pt=0)
        assert pacs_net.send(listener.port, study) == [0, 0]
        assert listener.flush(30)
        changed = copy.deepcopy(study[0])  # same SOP Instance UID, other content
        changed.SeriesDescription = "edited after sending"
        assert pacs_net.send(listener.port, [changed, study[1]]) == [0, 0]
        assert listener.flush(30)
    finally:
        listener.stop(grace_s=1)
    stats = listener.stats.as_dict()
    assert stats["indexed_conflict"] == 1 and stats["indexed_duplicate"] == 1
    assert stats["indexed_new"] == 2 and stats["indexed_skipped"] == 0
    assert not listener.failed_dir.exists() or not any(listener.failed_dir.iterdir())
    assert list(listener.spool_dir.glob("*.dcm")) == []
    assert len(list(ingestor.store.conflicts_root.rglob("*.dcm"))) == 1  # ingest kept it
