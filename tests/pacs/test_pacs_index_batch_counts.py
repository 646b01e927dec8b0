"""The indexer's per-batch counting (#11): the same statistics, study notes and spool
clean-up as one update per instance, also when a spool file is already gone."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from oncohybrid.pacs.scp import StorageListener


class _Ingestor:
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses

    def ingest_files_batch(self, paths, *, source, link, records=None):
        return [
            SimpleNamespace(status=st, reason="why", study_instance_uid="1.2")
            for st in self.statuses
        ]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("gone", [False, True])
def test_index_batch_counts_and_removes_like_before(tmp_path, gone):
    statuses = ["new", "duplicate", "new", "skipped", "new", "duplicate"]
    listener = StorageListener(_Ingestor(statuses), spool_dir=tmp_path / "spool", port=0)
    listener.spool_dir.mkdir()
    touched: list[tuple[str, str, bool]] = []
    listener.tracker = SimpleNamespace(
        touch=lambda uid, calling_ae="", new=True: touched.append((uid, calling_ae, new))
    )
    batch = []
    for k, _st in enumerate(statuses):
        p = listener.spool_dir / f"{k}.dcm"
        if not (gone and k == 2):
            p.write_bytes(b"x")
        batch.append((p, f"AE{k}", None))
    listener._index_batch(batch)
    stats = listener.stats.as_dict()
    assert stats["indexed_new"] == 3
    assert stats["indexed_duplicate"] == 2
    assert stats["indexed_skipped"] == 1
    assert touched == [("1.2", f"AE{k}", st == "new") for k, st in enumerate(statuses)
                       if st in ("new", "duplicate")]
    left = sorted(p.name for p in listener.spool_dir.glob("*.dcm"))
    assert left == []
    assert [p.name for p in (listener.spool_dir / "failed").iterdir()] == ["3.dcm"]


def test_index_batch_counts_what_it_did_before_a_failure(tmp_path, monkeypatch):
    statuses = ["new", "duplicate", "new"]
    listener = StorageListener(_Ingestor(statuses), spool_dir=tmp_path / "spool", port=0)
    listener.spool_dir.mkdir()
    listener.tracker = SimpleNamespace(touch=lambda *a, **k: None)
    batch = [(listener.spool_dir / f"{k}.dcm", "", None) for k in range(3)]
    for p, _ae, _r in batch:
        p.write_bytes(b"x")
    import os

    real_unlink = os.unlink

    def unlink(path, *a, **k):
        if Path(path).name == "2.dcm":
            raise PermissionError(13, "denied")
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(PermissionError):
        listener._index_batch(batch)
    stats = listener.stats.as_dict()
    assert stats["indexed_new"] == 2  # counted before the unlink, as before
    assert stats["indexed_duplicate"] == 1
