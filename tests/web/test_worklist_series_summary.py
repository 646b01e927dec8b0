"""Migration store0004: per-(patient, modality/tracer) summaries kept by triggers.

The worklist's modality and tracer filters read ``patient_series_summary`` instead of
grouping the matching studies (issue #11), so its rows must equal the aggregates the
filters computed (studies with a series of that modality, or whose lowered tracer is that
value: their count and latest date) after every kind of write to ``series`` and
``studies``: ORM and Core inserts, ignored conflicting inserts, changed modality, tracer,
study or date, studies moved to another patient, deletes (cascaded too), and rows that
were there before the migration (backfill). On SQLite and PostgreSQL; down and up again.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from oncohybrid.store.db import alembic_config, get_engine, session_scope
from oncohybrid.store.models import Base, Patient, Series, Study

TABLES = {"study_series_keys", "patient_series_summary"}

# What the summary must equal: the worklist's former aggregates, for every key present.
_EXPECTED = """
SELECT st.patient_pk, 'modality' AS kind, se.modality AS value,
       count(DISTINCT st.id), max(st.study_date)
FROM studies st JOIN series se ON se.study_pk = st.id
GROUP BY st.patient_pk, se.modality
UNION ALL
SELECT st.patient_pk, 'tracer', lower(se.radiopharmaceutical),
       count(DISTINCT st.id), max(st.study_date)
FROM studies st JOIN series se ON se.study_pk = st.id
WHERE se.radiopharmaceutical IS NOT NULL
GROUP BY st.patient_pk, lower(se.radiopharmaceutical)
"""
_EXPECTED_KEYS = """
SELECT study_pk, 'modality', modality, count(*) FROM series GROUP BY study_pk, modality
UNION ALL
SELECT study_pk, 'tracer', lower(radiopharmaceutical), count(*) FROM series
WHERE radiopharmaceutical IS NOT NULL GROUP BY study_pk, lower(radiopharmaceutical)
"""


def _norm(rows) -> set[tuple]:
    return {tuple(str(v) if isinstance(v, dt.date) else v for v in r) for r in rows}


def _state(engine: sa.Engine) -> tuple[set, set]:
    with engine.connect() as conn:
        got = _norm(conn.execute(sa.text(
            "SELECT patient_pk, kind, value, n_studies, last_study_date "
            "FROM patient_series_summary WHERE n_studies > 0")))
        keys = _norm(conn.execute(sa.text(
            "SELECT study_pk, kind, value, n_series FROM study_series_keys")))
        want = _norm(conn.execute(sa.text(_EXPECTED)))
        want_keys = _norm(conn.execute(sa.text(_EXPECTED_KEYS)))
    return (got ^ want, keys ^ want_keys)


def _consistent(engine: sa.Engine) -> None:
    assert _state(engine) == (set(), set())


def _summary_diff(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if any(t in str(d) for t in TABLES)]


def _patient(db, pid: str, studies: list[tuple[dt.date | None, list[tuple[str, str | None]]]]
             ) -> int:
    p = Patient(patient_id=pid)
    db.add(p)
    db.flush()
    for k, (date, series) in enumerate(studies):
        st = Study(study_instance_uid=f"1.2.826.0.7.{pid}.{k}", patient_pk=p.id,
                   study_date=date)
        db.add(st)
        db.flush()
        for n, (mod, tracer) in enumerate(series):
            db.add(Series(series_instance_uid=f"1.2.826.0.7.{pid}.{k}.{n}", study_pk=st.id,
                          modality=mod, radiopharmaceutical=tracer))
    db.flush()
    return p.id


def test_summary_follows_every_write(backend):
    engine = get_engine()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    d = dt.date
    with session_scope() as db:
        a = _patient(db, "A", [
            (d(2024, 1, 5), [("CT", None), ("PT", "Fluorodeoxyglucose"), ("PT", "FDG")]),
            (None, [("PT", "PSMA-11"), ("PT", "psma-11")]),
            (d(2023, 2, 1), [("CT", None)]),
        ])
        b = _patient(db, "B", [(None, [("MR", None)]), (d(2020, 1, 1), [])])
        _patient(db, "C", [(d(2021, 6, 1), [("PT", "Dotatate"), ("CT", None)])])
    _consistent(engine)
    with engine.connect() as conn:
        pt = conn.execute(sa.text(
            "SELECT n_studies, last_study_date FROM patient_series_summary "
            "WHERE patient_pk = :a AND kind = 'modality' AND value = 'PT'"), {"a": a}).one()
        psma = conn.execute(sa.text(
            "SELECT n_studies FROM patient_series_summary "
            "WHERE patient_pk = :a AND kind = 'tracer' AND value = 'psma-11'"), {"a": a}).one()
    assert (pt[0], str(pt[1])) == (2, "2024-01-05") and psma[0] == 1
    with engine.begin() as conn:
        # Core inserts as the ingest writes them, one a conflict that is ignored.
        insert = (sa.dialects.postgresql.insert if conn.dialect.name == "postgresql"
                  else sa.dialects.sqlite.insert)(Series)
        st_b = conn.scalar(sa.select(Study.id).where(Study.patient_pk == b)
                           .order_by(Study.id.desc()))
        for uid, mod, tracer in (("1.2.826.0.7.B.1.0", "PT", "Dotatate"),
                                 ("1.2.826.0.7.A.0.0", "MR", "X")):  # exists: ignored
            conn.execute(insert.values(series_instance_uid=uid, study_pk=st_b, modality=mod,
                                       radiopharmaceutical=tracer)
                         .on_conflict_do_nothing(index_elements=["series_instance_uid"]))
    _consistent(engine)
    with engine.begin() as conn:
        # Series changes: modality, tracer (to none and to another), moved to another study.
        conn.execute(sa.update(Series).where(Series.series_instance_uid == "1.2.826.0.7.A.0.0")
                     .values(modality="MR"))
        conn.execute(sa.update(Series).where(Series.series_instance_uid == "1.2.826.0.7.A.0.1")
                     .values(radiopharmaceutical=None))
        conn.execute(sa.update(Series).where(Series.series_instance_uid == "1.2.826.0.7.A.1.0")
                     .values(radiopharmaceutical="Dotatate"))
        conn.execute(sa.update(Series).where(Series.series_instance_uid == "1.2.826.0.7.A.2.0")
                     .values(study_pk=st_b))
    _consistent(engine)
    with engine.begin() as conn:
        # Study changes: dates, a study moved to another patient, a series and a study deleted.
        conn.execute(sa.update(Study).where(Study.study_instance_uid == "1.2.826.0.7.A.0")
                     .values(study_date=d(2019, 1, 1)))
        conn.execute(sa.update(Study).where(Study.study_instance_uid == "1.2.826.0.7.A.1")
                     .values(patient_pk=b, study_date=d(2025, 5, 5)))
        conn.execute(sa.delete(Series).where(Series.series_instance_uid == "1.2.826.0.7.C.0.0"))
        conn.execute(sa.delete(Study).where(Study.study_instance_uid == "1.2.826.0.7.A.2"))
    _consistent(engine)
    with session_scope() as db:
        db.delete(db.get(Study, st_b))  # ORM delete, series cascade
        db.delete(db.get(Patient, a))  # cascades to its studies and series
    _consistent(engine)
    with engine.begin() as conn:
        conn.execute(sa.delete(Patient))  # database cascades only
    _consistent(engine)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM patient_series_summary")) == 0
        assert conn.scalar(sa.text("SELECT count(*) FROM study_series_keys")) == 0


def test_migration_backfills_goes_down_and_up(backend):
    engine = get_engine()
    assert _summary_diff(engine) == []
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        command.downgrade(alembic_config(url, conn), "store0004-1")
    engine.dispose()
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    # Rows written before the migration (no triggers, no tables) are backfilled.
    with session_scope() as db:
        _patient(db, "P1", [(dt.date(2024, 1, 5), [("CT", None), ("PT", "FDG")]),
                            (None, [("PT", "Fdg")]), (dt.date(2023, 1, 1), [])])
        _patient(db, "P2", [(None, [("MR", None)])])
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")
    engine.dispose()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert _summary_diff(engine) == []
    _consistent(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT kind, value, n_studies, last_study_date FROM patient_series_summary "
            "ORDER BY kind, value")).all()
        if conn.dialect.name == "postgresql":
            ddl = conn.scalar(sa.text("SELECT indexdef FROM pg_indexes "
                                      "WHERE indexname = 'ix_patient_series_worklist'"))
            assert "INCLUDE (n_studies)" in ddl and "WHERE (n_studies > 0)" in ddl, ddl
        else:
            ddl = conn.scalar(sa.text("SELECT sql FROM sqlite_master "
                                      "WHERE name = 'ix_patient_series_worklist'"))
            assert "WHERE n_studies > 0" in ddl, ddl
    assert [(k, v, n, str(last) if last else None) for k, v, n, last in rows] == [
        ("modality", "CT", 1, "2024-01-05"), ("modality", "MR", 1, None),
        ("modality", "PT", 2, "2024-01-05"), ("tracer", "fdg", 2, "2024-01-05")]
    # The triggers are back too.
    with session_scope() as db:
        _patient(db, "P3", [(dt.date(2026, 1, 1), [("PT", "PSMA")])])
    _consistent(engine)


def test_modality_and_tracer_pages_equal_the_python_paged_worklist(backend):
    """The summary-read pages (a modality or a tracer alone) against the oracle of
    test_worklist_sql_paging, with tracers that several stored values match (the grouped
    fallback), none, LIKE wildcards, and a study with two matching tracers."""
    import itertools

    from test_worklist_sql_paging import _mixed_dataset, _python_paged_worklist

    from oncohybrid.config import get_settings
    from oncohybrid.services.worklist import WorklistQuery, worklist

    settings = get_settings()
    _mixed_dataset(settings)
    with session_scope(settings) as db:
        studies = db.scalars(sa.select(Study).order_by(Study.id)).all()
        for n, st in enumerate(studies[::3]):
            for j, tracer in enumerate(("Fluciclovine", "FLUORODEOXYGLUCOSE")[: 1 + n % 2]):
                db.add(Series(series_instance_uid=f"1.2.826.0.8.{st.id}.{j}", study_pk=st.id,
                              modality="PT" if j else "pt", radiopharmaceutical=tracer))
    statements: list[str] = []
    engine = get_engine(settings)
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, st, *_a: statements.append(st))
    compared = 0
    filters = [{"modality": "PT"}, {"modality": "pt"}, {"modality": "MR"}, {"modality": "NM"},
               {"tracer": "fluoro"}, {"tracer": "FLU"}, {"tracer": "cic"}, {"tracer": "zzz"},
               {"tracer": "%"}, {"tracer": "p_ma"}, {"modality": "PT", "tracer": "psma"},
               {"modality": "CT", "q": "doe^a"}, {"tracer": "psma", "q": "p-1"},
               {"modality": "PT", "q": "PSN"}]
    for f, status, page in itertools.product(
            filters, [None, "new", "quantified", "assessed", "reported"], [1, 2, 9]):
        query = WorklistQuery(**f, status=status, page=page, per_page=4)
        for identified in (True, False):
            want = _python_paged_worklist(query, settings, identified=identified)
            statements.clear()
            got = worklist(query, settings, identified=identified)
            assert got == want, (query, identified)
            compared += 1
            grouped = any("GROUP BY" in st for st in statements)
            # A modality alone, or a tracer matching at most one value, is not grouped.
            single = (f.get("modality") is None) != (f.get("tracer") is None) and \
                f.get("tracer") not in ("FLU", "%")
            assert grouped != single, (query, statements)
    assert compared == len(filters) * 5 * 3 * 2
