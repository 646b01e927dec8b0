"""Per-patient study summary on ``patients``: ``n_studies`` and ``last_study_date``.

Issue #11: the unfiltered worklist (and its status and name filters) ordered patients by
``max(study_date)`` over every study, so each page aggregated all studies (≈ 100 ms of
PostgreSQL CPU at 100,000 studies). The two aggregates are now kept on the patient row,
indexed as the worklist orders them (``last_study_date DESC, id`` where ``n_studies > 0``;
``n_studies`` included on PostgreSQL), so such a page is an index(-only) scan with
``LIMIT``.

They are maintained by the database itself, by row triggers on ``studies`` (insert,
delete, change of ``patient_pk``/``study_date``), in the transaction that changes the
studies: every writer (the ingest's batched Core inserts, ORM code, ``COPY``, cascaded
deletes) keeps them right without knowing of them. An insert increments (``n + 1``,
``greatest``), which PostgreSQL re-evaluates on the newest row version when two
transactions add studies of one patient at once; a delete or an update recomputes from
``studies``. Existing rows are backfilled here.

Revision ID: store0003
Revises: record0002
Create Date: 2026-12-06 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store0003"
down_revision = "record0002"
branch_labels = None
depends_on = None

_RECOMPUTE = (
    "n_studies = (SELECT count(*) FROM studies WHERE studies.patient_pk = patients.id), "
    "last_study_date = (SELECT max(study_date) FROM studies "
    "WHERE studies.patient_pk = patients.id)"
)

_SQLITE_TRIGGERS = [
    # SQLite's two-argument max() is NULL if either is: coalesce makes it ignore a NULL
    # like PostgreSQL's greatest() (dates are ISO strings, so max is chronological).
    "CREATE TRIGGER trg_studies_summary_ins AFTER INSERT ON studies BEGIN "
    "UPDATE patients SET n_studies = n_studies + 1, last_study_date = "
    "max(coalesce(last_study_date, NEW.study_date), coalesce(NEW.study_date, last_study_date)) "
    "WHERE id = NEW.patient_pk; END",
    "CREATE TRIGGER trg_studies_summary_del AFTER DELETE ON studies BEGIN "
    f"UPDATE patients SET {_RECOMPUTE} WHERE id = OLD.patient_pk; END",
    "CREATE TRIGGER trg_studies_summary_upd AFTER UPDATE OF patient_pk, study_date ON studies "
    f"BEGIN UPDATE patients SET {_RECOMPUTE} WHERE id IN (OLD.patient_pk, NEW.patient_pk); END",
]

_PG_FUNCTION = f"""
CREATE FUNCTION oh_studies_summary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE patients SET n_studies = n_studies + 1,
            last_study_date = greatest(last_study_date, NEW.study_date)
        WHERE id = NEW.patient_pk;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE patients SET {_RECOMPUTE} WHERE id = OLD.patient_pk;
    ELSE
        UPDATE patients SET {_RECOMPUTE} WHERE id IN (OLD.patient_pk, NEW.patient_pk);
    END IF;
    RETURN NULL;
END $$
"""

_PG_TRIGGER = (
    "CREATE TRIGGER trg_studies_summary AFTER INSERT OR DELETE OR UPDATE OF patient_pk, "
    "study_date ON studies FOR EACH ROW EXECUTE FUNCTION oh_studies_summary()"
)


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild on SQLite: the table keeps its constraints).
    op.add_column("patients", sa.Column("n_studies", sa.Integer(), nullable=False,
                                        server_default="0"))
    op.add_column("patients", sa.Column("last_study_date", sa.Date(), nullable=True))
    op.execute(f"UPDATE patients SET {_RECOMPUTE}")
    op.create_index("ix_patients_worklist", "patients",
                    [sa.text("last_study_date DESC"), "id"],
                    postgresql_include=["n_studies"],
                    postgresql_where=sa.text("n_studies > 0"),
                    sqlite_where=sa.text("n_studies > 0"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trg_studies_summary ON studies")
        op.execute("DROP FUNCTION oh_studies_summary()")
    else:
        for name in ("ins", "del", "upd"):
            op.execute(f"DROP TRIGGER trg_studies_summary_{name}")
    op.drop_index("ix_patients_worklist", table_name="patients")
    op.drop_column("patients", "last_study_date")
    op.drop_column("patients", "n_studies")
