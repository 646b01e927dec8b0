"""Read-side queries of the study database: listings for ``oncohybrid ls`` and file lookups.

Each listing returns plain dictionaries (JSON-ready: dates as ISO strings) so that the
CLI, the web layer and other services present the same fields.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from oncohybrid.config import Settings
from oncohybrid.errors import StoreError
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Instance, Patient, Series, Study


@dataclass(frozen=True)
class Filters:
    """Filters shared by the listings; ``None`` means no restriction."""

    patient_id: str | None = None
    modality: str | None = None
    date_from: dt.date | None = None  # study date, inclusive
    date_to: dt.date | None = None  # study date, inclusive
    study_uid: str | None = None


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _study_conditions(f: Filters) -> list[Any]:
    cond: list[Any] = []
    if f.patient_id is not None:
        cond.append(Patient.patient_id == f.patient_id)
    if f.date_from is not None:
        cond.append(Study.study_date >= f.date_from)
    if f.date_to is not None:
        cond.append(Study.study_date <= f.date_to)
    if f.study_uid is not None:
        cond.append(Study.study_instance_uid == f.study_uid)
    if f.modality is not None:
        has_modality = (
            sa.select(Series.id)
            .where(Series.study_pk == Study.id, Series.modality == f.modality.upper())
            .exists()
        )
        cond.append(has_modality)
    return cond


def list_patients(filters: Filters | None = None, settings: Settings | None = None) -> list[dict]:
    """Patients having at least one study matching ``filters``."""
    f = filters or Filters()
    n_studies = sa.func.count(sa.distinct(Study.id))
    stmt = (
        sa.select(Patient, n_studies)
        .join(Study, Study.patient_pk == Patient.id)
        .where(*_study_conditions(f))
        .group_by(Patient.id)
        .order_by(Patient.patient_id, Patient.issuer_of_patient_id)
    )
    with session_scope(settings) as s:
        return [
            {
                "patient_id": p.patient_id,
                "issuer_of_patient_id": p.issuer_of_patient_id or None,
                "name": p.patient_name,
                "sex": p.patient_sex,
                "birth_date": _iso(p.patient_birth_date),
                "studies": n,
            }
            for p, n in s.execute(stmt).all()
        ]


def list_studies(filters: Filters | None = None, settings: Settings | None = None) -> list[dict]:
    """Studies matching ``filters``, oldest first within each patient."""
    f = filters or Filters()
    stmt = (
        sa.select(Study, Patient.patient_id)
        .join(Patient, Study.patient_pk == Patient.id)
        .where(*_study_conditions(f))
        .order_by(Patient.patient_id, Study.study_date, Study.study_instance_uid)
    )
    with session_scope(settings) as s:
        rows = s.execute(stmt).all()
        pks = [st.id for st, _ in rows]
        modalities: dict[int, set[str]] = {pk: set() for pk in pks}
        counts: dict[int, list[int]] = {pk: [0, 0] for pk in pks}
        for i in range(0, len(pks), 500):
            chunk = pks[i : i + 500]
            for study_pk, modality, n in s.execute(
                sa.select(Series.study_pk, Series.modality, Series.number_of_instances).where(
                    Series.study_pk.in_(chunk)
                )
            ):
                modalities[study_pk].add(modality)
                counts[study_pk][0] += 1
                counts[study_pk][1] += n
        return [
            {
                "study_uid": st.study_instance_uid,
                "patient_id": pid,
                "date": _iso(st.study_date),
                "time": st.study_time,
                "description": st.study_description,
                "accession_number": st.accession_number,
                "modalities": sorted(modalities[st.id]),
                "series": counts[st.id][0],
                "instances": counts[st.id][1],
            }
            for st, pid in rows
        ]


def list_series(filters: Filters | None = None, settings: Settings | None = None) -> list[dict]:
    """Series matching ``filters`` (``modality`` filters the series themselves)."""
    f = filters or Filters()
    study_filters = Filters(f.patient_id, None, f.date_from, f.date_to, f.study_uid)
    cond = _study_conditions(study_filters)
    if f.modality is not None:
        cond.append(Series.modality == f.modality.upper())
    stmt = (
        sa.select(Series, Study.study_instance_uid, Study.study_date, Patient.patient_id)
        .join(Study, Series.study_pk == Study.id)
        .join(Patient, Study.patient_pk == Patient.id)
        .where(*cond)
        .order_by(Patient.patient_id, Study.study_date, Series.series_number, Series.id)
    )
    with session_scope(settings) as s:
        return [
            {
                "series_uid": se.series_instance_uid,
                "study_uid": study_uid,
                "patient_id": pid,
                "study_date": _iso(study_date),
                "modality": se.modality,
                "series_number": se.series_number,
                "date": _iso(se.series_date),
                "description": se.series_description,
                "radiopharmaceutical": se.radiopharmaceutical,
                "units": se.units,
                "manufacturer": se.manufacturer,
                "model": se.manufacturer_model_name,
                "frame_of_reference_uid": se.frame_of_reference_uid,
                "body_part": se.body_part_examined,
                "instances": se.number_of_instances,
            }
            for se, study_uid, study_date, pid in s.execute(stmt).all()
        ]


def series_files(series_uid: str, settings: Settings | None = None) -> list[Path]:
    """Stored file paths of a series, ordered by (0020,0013) *Instance Number*.

    Raises :class:`StoreError` when the series is not in the database.
    """
    with session_scope(settings) as s:
        series_pk = s.scalar(sa.select(Series.id).where(Series.series_instance_uid == series_uid))
        if series_pk is None:
            raise StoreError(f"series {series_uid}: not in the study database")
        paths = s.scalars(
            sa.select(Instance.file_path)
            .where(Instance.series_pk == series_pk)
            .order_by(Instance.instance_number, Instance.id)
        ).all()
    return [Path(p) for p in paths]


def instance_path(sop_instance_uid: str, settings: Settings | None = None) -> Path | None:
    """Stored file of one instance, or ``None`` when it is not stored."""
    with session_scope(settings) as s:
        path = s.scalar(
            sa.select(Instance.file_path).where(Instance.sop_instance_uid == sop_instance_uid)
        )
    return Path(path) if path is not None else None
