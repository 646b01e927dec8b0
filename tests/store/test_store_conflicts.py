"""Same SOP Instance UID, other content (issue #12 item 16): a conflict, kept aside for review."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pydicom
import sqlalchemy as sa
from dicomfactory import SeriesSpec, StudySpec, make_instance, write
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.config import get_settings
from oncohybrid.services.ingest import Ingestor
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Instance

runner = CliRunner()


def _study() -> StudySpec:
    return StudySpec("CONF01", "Con^Flict", "20240101", [SeriesSpec("CT", 1)])


def _stored() -> dict[str, str]:
    with session_scope() as s:
        return dict(s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all())


def test_same_sop_instance_uid_with_other_content_is_a_conflict_kept_aside(backend, tmp_path):
    st = _study()
    original = make_instance(st, st.series[0], 0)
    a = write(original, tmp_path / "a" / "a.dcm")
    changed = pydicom.dcmread(a)
    changed.PixelData = bytes(len(changed.PixelData))  # other pixels, same UIDs
    b = write(changed, tmp_path / "b" / "b.dcm")
    # the same data set with other file meta only: a plain duplicate
    same = pydicom.dcmread(a)
    same.file_meta.ImplementationVersionName = "OTHER_SENDER"
    c = write(same, tmp_path / "c" / "c.dcm")

    first = Ingestor().ingest_paths([a])
    stored = _stored()
    (sop,) = stored
    original_bytes = Path(stored[sop]).read_bytes()

    report = Ingestor().ingest_paths([b, c])
    assert (report.new, report.duplicate, len(report.conflicts)) == (0, 1, 1)
    conflict = report.conflicts[0]
    assert conflict["sop_instance_uid"] == sop and conflict["path"] == str(b)
    assert conflict["new_sha256"] == hashlib.sha256(b.read_bytes()).hexdigest()
    assert conflict["stored_sha256"] == hashlib.sha256(original_bytes).hexdigest()
    kept = Path(conflict["kept_as"])
    assert kept.read_bytes() == b.read_bytes()  # reviewable as received
    assert kept.is_relative_to(get_settings().store_dir.parent)
    assert _stored() == stored  # the indexed original is untouched
    assert Path(stored[sop]).read_bytes() == original_bytes
    assert first.new == 1

    from oncohybrid.store.models import InstanceConflict

    with session_scope() as s:
        rows = s.scalars(sa.select(InstanceConflict)).all()
        assert [(r.sop_instance_uid, r.new_sha256, r.stored_sha256) for r in rows] == [
            (sop, conflict["new_sha256"], conflict["stored_sha256"])
        ]
        assert rows[0].file_path == str(kept)

    # again: reported again, not stored twice
    res = runner.invoke(app, ["ingest", str(b), "--json"])
    out = json.loads(res.stdout)
    assert (out["new"], out["duplicate"], out["n_conflicts"]) == (0, 0, 1)
    res = runner.invoke(app, ["ingest", str(b)])
    assert "1 conflict" in res.stdout and "b.dcm" in res.stdout
    with session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(InstanceConflict.id))) == 1


def test_two_versions_in_one_run_and_from_the_listener_spool(backend, tmp_path):
    st = _study()
    a = write(make_instance(st, st.series[0], 0), tmp_path / "in" / "1.dcm")
    other = pydicom.dcmread(a)
    other.PatientName = "Forged^Name"  # a header change, same UIDs
    b = write(other, tmp_path / "in" / "2.dcm")

    report = Ingestor().ingest_paths([tmp_path / "in"])
    assert (report.new, report.duplicate, len(report.conflicts)) == (1, 0, 1)
    assert report.conflicts[0]["path"] == str(b)
    (stored_path,) = _stored().values()
    assert pydicom.dcmread(stored_path).PatientName == "Con^Flict"
    assert Path(stored_path).read_bytes() == a.read_bytes()  # the first one is indexed

    # the Storage SCP's batch path sees the same rules, with a distinct outcome
    ingestor = Ingestor()
    out = ingestor.ingest_files_batch([a, b], source="network")
    ingestor.close()
    assert [o.status for o in out] == ["duplicate", "conflict"]
    assert Path(out[1].path or "").read_bytes() == b.read_bytes()
    assert "kept for review" in (out[1].reason or "")


def test_migration_store0002_matches_the_model_and_goes_down_and_up(backend):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from oncohybrid.store.db import alembic_config, get_engine
    from oncohybrid.store.models import Base

    engine = get_engine()
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "instance_conflicts" in str(d)] == []
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "store0002-1")
    assert "instance_conflicts" not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    assert "instance_conflicts" in sa.inspect(engine).get_table_names()
