"""Migration store0003: per-patient ``n_studies``/``last_study_date`` kept by triggers.

The worklist reads these two columns instead of aggregating the studies (issue #11), so
they must equal ``count(*)``/``max(study_date)`` over the patient's studies after every
kind of write: ORM and Core inserts (the ingest), an insert that conflicts and is
ignored, a changed date, a study moved to another patient, deletes, and rows that were
there before the migration (backfill). On SQLite and PostgreSQL; up, down and up again.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from oncohybrid.store.db import alembic_config, get_engine, session_scope
from oncohybrid.store.models import Base, Patient, Study

SUMMARY = {"n_studies", "last_study_date"}


def _summary_columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns("patients")} & SUMMARY


def _mismatches(engine: sa.Engine) -> list[tuple]:
    """Patients whose stored summary differs from the aggregate over their studies."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT p.id, p.n_studies, p.last_study_date, count(s.id), max(s.study_date) "
            "FROM patients p LEFT JOIN studies s ON s.patient_pk = p.id "
            "GROUP BY p.id, p.n_studies, p.last_study_date "
            "HAVING p.n_studies <> count(s.id) OR NOT (p.last_study_date = max(s.study_date) "
            "OR (p.last_study_date IS NULL AND max(s.study_date) IS NULL))")).all()


def _patients_diff(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Only the patients table (other areas' tables may be mid-migration in a work tree).
    return [d for d in diff if "'patients'" in str(d) or "table=<patients>" in str(d)]


def _add(db, pid: str, dates: list[dt.date | None]) -> int:
    p = Patient(patient_id=pid)
    db.add(p)
    db.flush()
    for k, d in enumerate(dates):
        db.add(Study(study_instance_uid=f"1.2.826.0.6.{pid}.{k}", patient_pk=p.id,
                     study_date=d))
    db.flush()
    return p.id


def test_summary_follows_every_write_of_the_studies(backend):
    engine = get_engine()
    assert _summary_columns(engine) == SUMMARY
    d = dt.date
    with session_scope() as db:
        a = _add(db, "A", [d(2024, 1, 5), None, d(2023, 2, 1)])
        b = _add(db, "B", [None, None])
        c = _add(db, "C", [])
        _add(db, "D", [d(2020, 1, 1)])
    assert _mismatches(engine) == []
    with session_scope() as db:
        summary = {p.patient_id: (p.n_studies, p.last_study_date)
                   for p in db.scalars(sa.select(Patient))}
    assert summary == {"A": (3, d(2024, 1, 5)), "B": (2, None), "C": (0, None),
                       "D": (1, d(2020, 1, 1))}
    with engine.begin() as conn:
        # Core inserts as the ingest writes them, one of them a conflict that is ignored.
        insert = (sa.dialects.postgresql.insert if conn.dialect.name == "postgresql"
                  else sa.dialects.sqlite.insert)(Study)
        for uid, pk, date in (("1.2.826.0.6.C.0", c, d(2025, 3, 3)),
                              ("1.2.826.0.6.A.0", a, d(2030, 1, 1)),  # exists: ignored
                              ("1.2.826.0.6.B.9", b, d(2019, 1, 1))):
            conn.execute(insert.values(study_instance_uid=uid, patient_pk=pk, study_date=date)
                         .on_conflict_do_nothing(index_elements=["study_instance_uid"]))
    assert _mismatches(engine) == []
    with engine.begin() as conn:
        conn.execute(sa.update(Study).where(Study.study_instance_uid == "1.2.826.0.6.A.0")
                     .values(study_date=d(2022, 1, 1)))  # the latest gets older
        conn.execute(sa.update(Study).where(Study.study_instance_uid == "1.2.826.0.6.A.2")
                     .values(patient_pk=c))  # moved to another patient
        conn.execute(sa.delete(Study).where(Study.study_instance_uid == "1.2.826.0.6.B.9"))
    assert _mismatches(engine) == []
    with session_scope() as db:
        db.delete(db.get(Patient, c))  # cascades to its studies
        db.execute(sa.delete(Study).where(Study.patient_pk == a))
    assert _mismatches(engine) == []
    with session_scope() as db:
        assert (db.get(Patient, a).n_studies, db.get(Patient, a).last_study_date) == (0, None)


def test_migration_backfills_goes_down_and_up(backend):
    engine = get_engine()
    assert _patients_diff(engine) == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "store0003-1")
    engine.dispose()
    assert _summary_columns(engine) == set()
    # Rows written before the migration (no triggers, no columns) are backfilled.
    with engine.begin() as conn:
        for pk, dates in ((1, ["2024-01-05", None, "2023-02-01"]), (2, [None]), (3, [])):
            conn.execute(sa.text("INSERT INTO patients (id, patient_id, issuer_of_patient_id) "
                                 "VALUES (:pk, :pid, '')"), {"pk": pk, "pid": f"P{pk}"})
            for k, date in enumerate(dates):
                conn.execute(sa.text(
                    "INSERT INTO studies (study_instance_uid, patient_pk, study_date) "
                    "VALUES (:uid, :pk, :date)"),
                    {"uid": f"1.2.826.0.5.{pk}.{k}", "pk": pk,
                     "date": dt.date.fromisoformat(date) if date else None})
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    engine.dispose()
    assert _summary_columns(engine) == SUMMARY
    assert _mismatches(engine) == []
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, n_studies, last_study_date FROM patients ORDER BY id")).all()
    assert [(pk, n, str(last) if last else None) for pk, n, last in rows] == [
        (1, 3, "2024-01-05"), (2, 1, None), (3, 0, None)]
    assert _patients_diff(engine) == []
    with engine.connect() as conn:  # partial (and covering on PostgreSQL), as in the model
        if conn.dialect.name == "postgresql":
            ddl = conn.scalar(sa.text("SELECT indexdef FROM pg_indexes "
                                      "WHERE indexname = 'ix_patients_worklist'"))
            assert "INCLUDE (n_studies)" in ddl and "WHERE (n_studies > 0)" in ddl, ddl
        else:
            ddl = conn.scalar(sa.text("SELECT sql FROM sqlite_master "
                                      "WHERE name = 'ix_patients_worklist'"))
            assert "WHERE n_studies > 0" in ddl, ddl
    # The triggers are back too.
    with session_scope() as db:
        db.add(Study(study_instance_uid="1.2.826.0.5.3.0", patient_pk=3,
                     study_date=dt.date(2026, 1, 1)))
    assert _mismatches(engine) == []
