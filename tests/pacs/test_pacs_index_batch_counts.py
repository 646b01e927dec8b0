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


def test_ingest_files_batch_with_records_checks_files_as_before(home, tmp_path) -> None:  # noqa: ANN001
    """A record skips the header read only; missing, non-regular and resized files are
    reported or read exactly as without records (``_Source.checked_size``)."""
    import dataclasses
    import os

    import pacs_data

    from oncohybrid.config import get_settings
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.ingest.headers import read_header

    study = pacs_data.make_study(n_ct=3, n_pt=0)
    paths = pacs_data.write_study(study, tmp_path / "spool")
    recs = []
    for p in paths:
        with open(p, "rb") as fh:
            recs.append(read_header(fh, p.stat().st_size))
    fifo = tmp_path / "spool" / "fifo.dcm"
    os.mkfifo(fifo)
    missing = tmp_path / "spool" / "gone.dcm"
    # paths[2]'s record with a wrong size and another patient: the file is read instead
    bogus = dataclasses.replace(recs[2], file_size=recs[2].file_size + 1, patient_id="BOGUS")
    batch = [paths[0], fifo, missing, paths[1], paths[2]]
    records = [recs[0], recs[0], recs[0], None, bogus]
    with Ingestor(get_settings()) as ingestor:
        out = ingestor.ingest_files_batch(batch, source="network", link=True, records=records)
    assert [o.status for o in out] == ["new", "skipped", "skipped", "new", "new"]
    assert out[1].reason == "not a regular file: a named pipe (FIFO); only regular files are read"
    assert out[2].reason == "cannot read: No such file or directory"
    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance, Patient, Series, Study

    query = (
        sa.select(Patient.patient_id)
        .join(Study, Study.patient_pk == Patient.id)
        .join(Series, Series.study_pk == Study.id)
        .join(Instance, Instance.series_pk == Series.id)
        .where(Instance.sop_instance_uid == str(study[2].SOPInstanceUID))
    )
    with session_scope(get_settings()) as s:
        assert s.execute(query).scalar_one() == str(study[2].PatientID)
