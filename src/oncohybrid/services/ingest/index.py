"""Database indexing of ingested instances: hierarchy rows, instance rows, ingest logs.

:class:`IndexWriter` owns the database side of an :class:`~.ingestor.Ingestor`: one
transaction per batch inserts the patient, study and series rows a batch needs (their
surrogate keys cached once committed) and all its instance rows in one ``executemany``
with ``ON CONFLICT DO NOTHING`` (SQLite >= 3.24 and PostgreSQL), so several writers may
index at once; the ingest log (``ingest_logs``) is kept current in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid.config import Settings
from oncohybrid.errors import OncohybridError, StoreError
from oncohybrid.services.ingest.headers import HeaderRecord
from oncohybrid.services.ingest.report import IngestReport
from oncohybrid.store.db import get_engine, get_sessionmaker
from oncohybrid.store.models import IngestLog, Instance, InstanceConflict, Patient, Series, Study


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class IndexWriter:
    """The study database side of ingest (thread-safe: one write transaction at a time)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = get_engine(settings)
        self._sessionmaker = get_sessionmaker(settings)
        self._dialect = self.engine.dialect.name
        self._db_lock = threading.RLock()  # serialises this object's write transactions
        # Known surrogate keys; only filled after a commit so a rollback cannot leave
        # a key that does not exist.
        self._patients: dict[tuple[str, str], int] = {}
        self._studies: dict[str, int] = {}
        self._series: dict[str, int] = {}
        self._network_log_pk: int | None = None

    def _session(self) -> Session:
        return self._sessionmaker()

    def close(self) -> None:
        """Mark the network ingest log as completed (the engine stays cached)."""
        if self._network_log_pk is not None:
            with self._db_lock, self._session() as s:
                s.execute(
                    sa.update(IngestLog)
                    .where(IngestLog.id == self._network_log_pk)
                    .values(status="completed", finished_at=_now())
                )
                s.commit()
            self._network_log_pk = None

    def _record_conflicts(self, conflicts: list[dict[str, str]], log_pk: int | None) -> None:
        """One ``instance_conflicts`` row per distinct received content (idempotent)."""
        values = [
            {
                "sop_instance_uid": c["sop_instance_uid"],
                "stored_path": c["stored_path"],
                "stored_sha256": c["stored_sha256"],
                "new_sha256": c["new_sha256"],
                "file_path": c["kept_as"],
                "source": c["path"],
                "ingest_log_pk": log_pk,
                "created_at": _now(),
            }
            for c in conflicts
        ]
        with self._db_lock, self._session() as s, s.begin():
            s.execute(
                self._insert(InstanceConflict).on_conflict_do_nothing(
                    index_elements=["sop_instance_uid", "new_sha256"]
                ),
                values,
            )

    def _existing_paths(self, sops: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        if not sops:
            return found
        with self._session() as s:
            for i in range(0, len(sops), 500):
                chunk = sops[i : i + 500]
                found.update(
                    s.execute(
                        sa.select(Instance.sop_instance_uid, Instance.file_path).where(
                            Instance.sop_instance_uid.in_(chunk)
                        )
                    ).all()
                )
        return found

    def _insert(self, table: Any) -> Any:
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self._dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - only the two supported back ends
            raise OncohybridError(f"unsupported database dialect {self._dialect}")
        return insert(table)

    def _commit_batch(
        self,
        rows: list[tuple[HeaderRecord, dict[str, Any]]],
        *,
        log_pk: int | None,
        dup_extra: int = 0,
        new_skips: list[tuple[str, str]] | None = None,
    ) -> set[str]:
        """Insert the hierarchy and instance rows in one transaction; return inserted UIDs."""
        with self._db_lock:
            for attempt in range(2):
                pending_p: dict[tuple[str, str], int] = {}
                pending_st: dict[str, int] = {}
                pending_se: dict[str, int] = {}
                try:
                    with self._session() as s, s.begin():
                        inserted = self._insert_rows(
                            s,
                            rows,
                            log_pk,
                            dup_extra,
                            new_skips or [],
                            pending_p,
                            pending_st,
                            pending_se,
                        )
                except sa.exc.IntegrityError:
                    # A concurrent writer removed a parent row: forget the cached keys
                    # and try once more from the database.
                    self._patients.clear()
                    self._studies.clear()
                    self._series.clear()
                    if attempt:
                        raise
                    continue
                # Only committed keys enter the caches.
                self._patients.update(pending_p)
                self._studies.update(pending_st)
                self._series.update(pending_se)
                return inserted
        raise AssertionError("unreachable")

    def _insert_rows(
        self,
        s: Session,
        rows: list[tuple[HeaderRecord, dict[str, Any]]],
        log_pk: int | None,
        dup_extra: int,
        new_skips: list[tuple[str, str]],
        pending_p: dict[tuple[str, str], int],
        pending_st: dict[str, int],
        pending_se: dict[str, int],
    ) -> set[str]:
        values = []
        for rec, row in rows:
            series_pk = self._series_pk(s, rec, pending_p, pending_st, pending_se)
            values.append({**row, "series_pk": series_pk, "ingest_log_pk": log_pk})
        inserted: set[str] = set()
        if values:
            # Core table (not the ORM class): a plain executemany without the ORM's
            # per-row bulk-insert bookkeeping.
            table = Instance.__table__
            stmt = (
                self._insert(table)
                .on_conflict_do_nothing(index_elements=["sop_instance_uid"])
                .returning(table.c.sop_instance_uid)
            )
            inserted = set(s.connection().execute(stmt, values).scalars().all())
            _recount(s, {v["series_pk"] for v in values})
        n_dup = dup_extra + len(values) - len(inserted)
        self._update_log(s, log_pk, len(inserted), n_dup, new_skips)
        return inserted

    def _series_pk(
        self,
        s: Session,
        rec: HeaderRecord,
        pending_p: dict[tuple[str, str], int],
        pending_st: dict[str, int],
        pending_se: dict[str, int],
    ) -> int:
        uid = rec.series_instance_uid
        pk = self._series.get(uid) or pending_se.get(uid)
        if pk:
            return pk
        if not rec.full:
            # The series' first instance of this run created the row (earlier in this
            # batch or committed), or was a duplicate of a stored instance.
            pk = s.scalar(sa.select(Series.id).where(Series.series_instance_uid == uid))
            if pk is None:
                raise StoreError(
                    f"series {uid}: its first instance was not indexed; run the ingest again"
                )
            pending_se[uid] = pk
            return pk
        study_pk = self._study_pk(s, rec, pending_p, pending_st)
        s.execute(
            self._insert(Series)
            .values(
                series_instance_uid=uid,
                study_pk=study_pk,
                modality=rec.modality,
                series_number=rec.series_number,
                series_date=rec.series_date,
                series_time=rec.series_time,
                series_description=rec.series_description,
                body_part_examined=rec.body_part_examined,
                manufacturer=rec.manufacturer,
                manufacturer_model_name=rec.manufacturer_model_name,
                frame_of_reference_uid=rec.frame_of_reference_uid,
                radiopharmaceutical=rec.radiopharmaceutical,
                units=rec.units,
                number_of_instances=0,
                created_at=_now(),
            )
            .on_conflict_do_nothing(index_elements=["series_instance_uid"])
        )
        pk = s.scalar(sa.select(Series.id).where(Series.series_instance_uid == uid))
        assert pk is not None
        pending_se[uid] = pk
        return pk

    def _study_pk(
        self,
        s: Session,
        rec: HeaderRecord,
        pending_p: dict[tuple[str, str], int],
        pending_st: dict[str, int],
    ) -> int:
        uid = rec.study_instance_uid
        pk = self._studies.get(uid) or pending_st.get(uid)
        if pk:
            return pk
        patient_pk = self._patient_pk(s, rec, pending_p)
        s.execute(
            self._insert(Study)
            .values(
                study_instance_uid=uid,
                patient_pk=patient_pk,
                study_date=rec.study_date,
                study_time=rec.study_time,
                study_description=rec.study_description,
                accession_number=rec.accession_number,
                study_id=rec.study_id,
                created_at=_now(),
            )
            .on_conflict_do_nothing(index_elements=["study_instance_uid"])
        )
        pk = s.scalar(sa.select(Study.id).where(Study.study_instance_uid == uid))
        assert pk is not None
        pending_st[uid] = pk
        return pk

    def _patient_pk(
        self, s: Session, rec: HeaderRecord, pending_p: dict[tuple[str, str], int]
    ) -> int:
        key = (rec.patient_id, rec.issuer_of_patient_id)
        pk = self._patients.get(key) or pending_p.get(key)
        if pk:
            return pk
        s.execute(
            self._insert(Patient)
            .values(
                patient_id=key[0],
                issuer_of_patient_id=key[1],
                patient_name=rec.patient_name,
                patient_sex=rec.patient_sex,
                patient_birth_date=rec.patient_birth_date,
                created_at=_now(),
            )
            .on_conflict_do_nothing(index_elements=["patient_id", "issuer_of_patient_id"])
        )
        pk = s.scalar(
            sa.select(Patient.id).where(
                Patient.patient_id == key[0], Patient.issuer_of_patient_id == key[1]
            )
        )
        assert pk is not None
        pending_p[key] = pk
        return pk

    def _open_log(self, source: str, in_place: bool) -> int:
        with self._db_lock, self._session() as s, s.begin():
            log = IngestLog(
                source=source,
                in_place=in_place,
                status="running",
                started_at=_now(),
                n_new=0,
                n_duplicate=0,
                n_skipped=0,
                skipped=[],
                host=socket.gethostname()[:255],
                pid=os.getpid(),
            )
            s.add(log)
            s.flush()
            return log.id

    def _update_log(
        self,
        s: Session,
        log_pk: int | None,
        n_new: int,
        n_dup: int,
        new_skips: list[tuple[str, str]],
    ) -> None:
        if log_pk is None:
            return
        values: dict[str, Any] = {
            "n_new": IngestLog.n_new + n_new,
            "n_duplicate": IngestLog.n_duplicate + n_dup,
        }
        if new_skips:
            current = s.scalar(sa.select(IngestLog.skipped).where(IngestLog.id == log_pk)) or []
            current = list(current) + [{"path": p, "reason": r} for p, r in new_skips]
            values["skipped"] = current
            values["n_skipped"] = len(current)
        s.execute(sa.update(IngestLog).where(IngestLog.id == log_pk).values(**values))

    def _close_log(self, log_pk: int, report: IngestReport, status: str) -> None:
        with self._db_lock, self._session() as s, s.begin():
            s.execute(
                sa.update(IngestLog)
                .where(IngestLog.id == log_pk)
                .values(
                    status=status,
                    finished_at=_now(),
                    n_skipped=len(report.skipped),
                    skipped=[{"path": p, "reason": r} for p, r in report.skipped],
                )
            )

    def _network_log(self, source: str) -> int:
        """The ingest log row of this Ingestor's network datasets (created once, committed)."""
        with self._db_lock:
            if self._network_log_pk is None:
                self._network_log_pk = self._open_log(source, False)
            return self._network_log_pk

    def _log_network(
        self, source: str, *, duplicate: int = 0, skipped: tuple[str, str] | None = None
    ) -> None:
        pk = self._network_log(source)
        with self._db_lock, self._session() as s, s.begin():
            self._update_log(s, pk, 0, duplicate, [skipped] if skipped else [])


def _recount(s: Session, series_pks: set[int]) -> None:
    """Set ``number_of_instances`` from the stored rows (robust to concurrent writers)."""
    count = (
        sa.select(sa.func.count(Instance.id))
        .where(Instance.series_pk == Series.id)
        .scalar_subquery()
    )
    s.execute(
        sa.update(Series).where(Series.id.in_(sorted(series_pks))).values(number_of_instances=count)
    )


def _instance_row(rec: HeaderRecord, path: str, size: int, *, in_place: bool) -> dict[str, Any]:
    return {
        "sop_instance_uid": rec.sop_instance_uid,
        "sop_class_uid": rec.sop_class_uid,
        "instance_number": rec.instance_number,
        "transfer_syntax_uid": rec.transfer_syntax_uid,
        "file_path": path,
        "file_size_bytes": size,
        "in_place": in_place,
        "created_at": _now(),
    }
