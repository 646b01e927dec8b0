"""Per-(patient, modality) and per-(patient, tracer) study summaries, kept by triggers.

Issue #11: a worklist filtered by modality or tracer grouped every matching study per
patient (``max(study_date)``, ``count``) on each page, ≈ 100-500 ms at 100,000 studies.
Two tables now hold those aggregates, so such a page is an index scan with ``LIMIT``:

- ``study_series_keys`` (``study_pk``, ``kind``, ``value``, ``n_series``): the series of a
  study per key, ``kind`` ``'modality'`` (``value`` = ``series.modality`` as stored) or
  ``'tracer'`` (``value`` = ``lower(series.radiopharmaceutical)``, computed by the
  database, series without one have no tracer key);
- ``patient_series_summary`` (``patient_pk``, ``kind``, ``value``, ``n_studies``,
  ``last_study_date``): the number of the patient's studies having a series with that key
  and the latest of their dates, indexed as the worklist orders them (``kind, value,
  last_study_date DESC, patient_pk`` where ``n_studies > 0``).

They equal the aggregates the worklist computed (``count(study)``, ``max(study_date)``
over the studies with ``EXISTS`` a series of that modality, or whose lowered tracer is
that value) and are maintained by row triggers on ``series`` (insert, delete, change of
``study_pk``/``modality``/``radiopharmaceutical``) and ``studies`` (delete, change of
``patient_pk``/``study_date``), in the writer's transaction, like store0003.

PostgreSQL: a series insert increments its study's key with ``INSERT … ON CONFLICT DO
UPDATE … RETURNING`` (row-locked, so two transactions adding series of one study at once
see each other's increment) and, when it is the study's first series of that key,
increments the patient's summary the same way (``greatest`` for the date); deletes and
updates decrement and recount from ``study_series_keys`` ⋈ ``studies`` (the store0003
caveat: two transactions deleting or moving rows of one patient at once may each recount
without the other's change; re-running this migration's backfill repairs it). SQLite (one
writer at a time) recounts the study's keys and the patient's summary on every change.
Existing rows are backfilled here.

Revision ID: store0004
Revises: fellow0001
Create Date: 2026-12-07 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "store0004"
down_revision = "fellow0001"
branch_labels = None
depends_on = None

_BACKFILL = [
    "INSERT INTO study_series_keys (study_pk, kind, value, n_series) "
    "SELECT study_pk, 'modality', modality, count(*) FROM series "
    "WHERE modality IS NOT NULL GROUP BY study_pk, modality",
    "INSERT INTO study_series_keys (study_pk, kind, value, n_series) "
    "SELECT study_pk, 'tracer', lower(radiopharmaceutical), count(*) FROM series "
    "WHERE radiopharmaceutical IS NOT NULL GROUP BY study_pk, lower(radiopharmaceutical)",
    "INSERT INTO patient_series_summary (patient_pk, kind, value, n_studies, last_study_date) "
    "SELECT st.patient_pk, k.kind, k.value, count(*), max(st.study_date) "
    "FROM study_series_keys k JOIN studies st ON st.id = k.study_pk "
    "GROUP BY st.patient_pk, k.kind, k.value",
]


# ----------------------------------------------------------------------------- SQLite
def _sqlite_rebuild_study(study: str) -> str:
    """Statements recounting the keys of study ``study`` (an SQL expression)."""
    # The join on studies: a series deleted by the cascade of its study's delete must not
    # re-create keys of a study that is gone.
    return (
        f"DELETE FROM study_series_keys WHERE study_pk = {study}; "
        "INSERT INTO study_series_keys (study_pk, kind, value, n_series) "
        "SELECT se.study_pk, 'modality', se.modality, count(*) FROM series se "
        f"JOIN studies st ON st.id = se.study_pk WHERE se.study_pk = {study} "
        "AND se.modality IS NOT NULL GROUP BY se.study_pk, se.modality; "
        "INSERT INTO study_series_keys (study_pk, kind, value, n_series) "
        "SELECT se.study_pk, 'tracer', lower(se.radiopharmaceutical), count(*) FROM series se "
        f"JOIN studies st ON st.id = se.study_pk WHERE se.study_pk = {study} "
        "AND se.radiopharmaceutical IS NOT NULL "
        "GROUP BY se.study_pk, lower(se.radiopharmaceutical); "
    )


def _sqlite_rebuild_patient(patient: str) -> str:
    """Statements recounting the summary rows of patient ``patient`` (an SQL expression)."""
    # The join on patients: nothing is re-created for a patient being deleted.
    return (
        f"DELETE FROM patient_series_summary WHERE patient_pk = {patient}; "
        "INSERT INTO patient_series_summary (patient_pk, kind, value, n_studies, "
        "last_study_date) SELECT st.patient_pk, k.kind, k.value, count(*), max(st.study_date) "
        "FROM study_series_keys k JOIN studies st ON st.id = k.study_pk "
        f"JOIN patients p ON p.id = st.patient_pk WHERE st.patient_pk = {patient} "
        "GROUP BY st.patient_pk, k.kind, k.value; "
    )


def _patient_of(study: str) -> str:
    return f"(SELECT patient_pk FROM studies WHERE id = {study})"


_SQLITE_TRIGGERS = {
    "trg_series_keys_ins": (
        "AFTER INSERT ON series BEGIN "
        + _sqlite_rebuild_study("NEW.study_pk")
        + _sqlite_rebuild_patient(_patient_of("NEW.study_pk")) + "END"),
    "trg_series_keys_del": (
        "AFTER DELETE ON series BEGIN "
        + _sqlite_rebuild_study("OLD.study_pk")
        + _sqlite_rebuild_patient(_patient_of("OLD.study_pk")) + "END"),
    "trg_series_keys_upd": (
        "AFTER UPDATE OF study_pk, modality, radiopharmaceutical ON series BEGIN "
        + _sqlite_rebuild_study("OLD.study_pk") + _sqlite_rebuild_study("NEW.study_pk")
        + _sqlite_rebuild_patient(_patient_of("OLD.study_pk"))
        + _sqlite_rebuild_patient(_patient_of("NEW.study_pk")) + "END"),
    "trg_studies_keys_del": (
        "AFTER DELETE ON studies BEGIN "
        "DELETE FROM study_series_keys WHERE study_pk = OLD.id; "
        + _sqlite_rebuild_patient("OLD.patient_pk") + "END"),
    "trg_studies_keys_upd": (
        "AFTER UPDATE OF patient_pk, study_date ON studies BEGIN "
        + _sqlite_rebuild_patient("OLD.patient_pk")
        + _sqlite_rebuild_patient("NEW.patient_pk") + "END"),
}

# ------------------------------------------------------------------------- PostgreSQL
_PG_RECOUNT = (
    "n_studies = (SELECT count(*) FROM study_series_keys k JOIN studies st "
    "ON st.id = k.study_pk WHERE st.patient_pk = s.patient_pk AND k.kind = s.kind "
    "AND k.value = s.value), "
    "last_study_date = (SELECT max(st.study_date) FROM study_series_keys k JOIN studies st "
    "ON st.id = k.study_pk WHERE st.patient_pk = s.patient_pk AND k.kind = s.kind "
    "AND k.value = s.value)"
)

_PG_FUNCTIONS = [
    """
CREATE FUNCTION oh_series_key_add(p_study integer, p_kind text, p_value text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    pk integer;
    d date;
BEGIN
    IF p_value IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO study_series_keys AS k (study_pk, kind, value, n_series)
    VALUES (p_study, p_kind, p_value, 1)
    ON CONFLICT (study_pk, kind, value) DO UPDATE SET n_series = k.n_series + 1
    RETURNING k.n_series INTO n;
    IF n = 1 THEN  -- the study's first series with this key
        SELECT patient_pk, study_date INTO pk, d FROM studies WHERE id = p_study;
        IF pk IS NOT NULL THEN
            INSERT INTO patient_series_summary AS s
                (patient_pk, kind, value, n_studies, last_study_date)
            VALUES (pk, p_kind, p_value, 1, d)
            ON CONFLICT (patient_pk, kind, value) DO UPDATE
            SET n_studies = s.n_studies + 1,
                last_study_date = greatest(s.last_study_date, EXCLUDED.last_study_date);
        END IF;
    END IF;
END $$
""",
    f"""
CREATE FUNCTION oh_series_key_remove(p_study integer, p_kind text, p_value text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    pk integer;
BEGIN
    IF p_value IS NULL THEN
        RETURN;
    END IF;
    UPDATE study_series_keys SET n_series = n_series - 1
    WHERE study_pk = p_study AND kind = p_kind AND value = p_value
    RETURNING n_series INTO n;
    IF n IS NOT NULL AND n <= 0 THEN  -- the study's last series with this key
        DELETE FROM study_series_keys
        WHERE study_pk = p_study AND kind = p_kind AND value = p_value;
        SELECT patient_pk INTO pk FROM studies WHERE id = p_study;
        IF pk IS NOT NULL THEN
            UPDATE patient_series_summary s SET {_PG_RECOUNT}
            WHERE s.patient_pk = pk AND s.kind = p_kind AND s.value = p_value;
        END IF;
    END IF;
END $$
""",
    """
CREATE FUNCTION oh_series_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM oh_series_key_remove(OLD.study_pk, 'modality', OLD.modality);
        PERFORM oh_series_key_remove(OLD.study_pk, 'tracer', lower(OLD.radiopharmaceutical));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM oh_series_key_add(NEW.study_pk, 'modality', NEW.modality);
        PERFORM oh_series_key_add(NEW.study_pk, 'tracer', lower(NEW.radiopharmaceutical));
    END IF;
    RETURN NULL;
END $$
""",
    f"""
CREATE FUNCTION oh_studies_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM study_series_keys WHERE study_pk = OLD.id;
        UPDATE patient_series_summary s SET {_PG_RECOUNT} WHERE s.patient_pk = OLD.patient_pk;
    ELSE
        -- A study moved to another patient brings its keys: rows to recount there.
        INSERT INTO patient_series_summary (patient_pk, kind, value, n_studies)
        SELECT NEW.patient_pk, k.kind, k.value, 0 FROM study_series_keys k
        WHERE k.study_pk = NEW.id
        ON CONFLICT (patient_pk, kind, value) DO NOTHING;
        UPDATE patient_series_summary s SET {_PG_RECOUNT}
        WHERE s.patient_pk IN (OLD.patient_pk, NEW.patient_pk);
    END IF;
    RETURN NULL;
END $$
""",
]

_PG_TRIGGERS = [
    "CREATE TRIGGER trg_series_keys AFTER INSERT OR DELETE OR UPDATE OF study_pk, modality, "
    "radiopharmaceutical ON series FOR EACH ROW EXECUTE FUNCTION oh_series_keys()",
    "CREATE TRIGGER trg_studies_keys AFTER DELETE OR UPDATE OF patient_pk, study_date "
    "ON studies FOR EACH ROW EXECUTE FUNCTION oh_studies_keys()",
]


def upgrade() -> None:
    op.create_table(
        "study_series_keys",
        sa.Column("study_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("n_series", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["study_pk"], ["studies.id"], ondelete="CASCADE",
                                name=op.f("fk_study_series_keys_study_pk_studies")),
        sa.PrimaryKeyConstraint("study_pk", "kind", "value",
                                name=op.f("pk_study_series_keys")),
    )
    op.create_table(
        "patient_series_summary",
        sa.Column("patient_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("n_studies", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_study_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["patient_pk"], ["patients.id"], ondelete="CASCADE",
                                name=op.f("fk_patient_series_summary_patient_pk_patients")),
        sa.PrimaryKeyConstraint("patient_pk", "kind", "value",
                                name=op.f("pk_patient_series_summary")),
    )
    for ddl in _BACKFILL:
        op.execute(ddl)
    op.create_index("ix_patient_series_worklist", "patient_series_summary",
                    ["kind", "value", sa.text("last_study_date DESC"), "patient_pk"],
                    postgresql_include=["n_studies"],
                    postgresql_where=sa.text("n_studies > 0"),
                    sqlite_where=sa.text("n_studies > 0"))
    if op.get_bind().dialect.name == "postgresql":
        for ddl in _PG_FUNCTIONS + _PG_TRIGGERS:
            op.execute(ddl)
    else:
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trg_series_keys ON series")
        op.execute("DROP TRIGGER trg_studies_keys ON studies")
        op.execute("DROP FUNCTION oh_series_keys()")
        op.execute("DROP FUNCTION oh_studies_keys()")
        op.execute("DROP FUNCTION oh_series_key_add(integer, text, text)")
        op.execute("DROP FUNCTION oh_series_key_remove(integer, text, text)")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_patient_series_worklist", table_name="patient_series_summary")
    op.drop_table("patient_series_summary")
    op.drop_table("study_series_keys")
