"""Use-case: the reading-room worklist and the patient/study summaries behind the pages.

Rows are plain JSON-ready dictionaries. With ``identified=False`` (the researcher role)
names, patient IDs, birth dates and accession numbers are never read into the result:
patients appear under their keyed pseudonym (:func:`oncohybrid.services.users.pseudonym`)
and a search term is matched against pseudonyms only, so the search cannot be used as an
oracle for identifiers.

Status of a patient, most advanced first: ``reported`` (a report file exists),
``assessed`` (a stored response assessment), ``quantified`` (lesion observations
stored), else ``new``. The last three come from the longitudinal record when that part of
the platform is installed (:mod:`oncohybrid.store.models_record`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, StoreError
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, PatientSeriesSummary, Series, Study

__all__ = ["WorklistQuery", "STATUSES", "worklist", "patient_summary", "patient_pk_of_study"]

STATUSES = ("new", "quantified", "assessed", "reported")


@dataclass(frozen=True)
class WorklistQuery:
    q: str | None = None
    modality: str | None = None
    tracer: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    status: str | None = None
    page: int = 1
    per_page: int = 25

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.page < 1 or not 1 <= self.per_page <= 200:
            raise InputError("page must be ≥ 1 and per_page within 1..200")


def _display(settings: Settings, p: Any, identified: bool) -> dict[str, Any]:
    """The row fields of patient ``p`` (a :class:`Patient` or a row of its columns)."""
    from oncohybrid.services.users import pseudonym

    if identified:
        return {
            "pk": p.id,
            "label": p.patient_id,
            "name": (p.patient_name or "").replace("^", ", ").strip(", ") or None,
            "patient_id": p.patient_id,
            "sex": p.patient_sex,
            "birth_date": p.patient_birth_date.isoformat() if p.patient_birth_date else None,
        }
    return {
        "pk": p.id,
        "label": pseudonym(settings, p.patient_id, p.issuer_of_patient_id or ""),
        "name": None,
        "patient_id": None,
        "sex": p.patient_sex,
        "birth_date": None,
    }


def _report_prefixes(settings: Settings) -> set[str]:
    """Every possible report-file prefix present in ``derived/reports``.

    A report file is named ``report_file_prefix(patient_id) + …``; that prefix ends in
    "-", and a patient ID may contain "-" itself, so each name contributes the text up
    to each of its "-". A patient is reported when its prefix is in this set: one set
    lookup per patient instead of a scan of every file name.
    """
    reports = settings.derived_dir / "reports"
    out: set[str] = set()
    if not reports.is_dir():
        return out
    for f in reports.glob("*.pdf"):
        name = f.name
        i = name.find("-")
        while i >= 0:
            out.add(name[: i + 1])
            i = name.find("-", i + 1)
    return out


def _assessed_exists(patient_pk: Any) -> Any:
    from oncohybrid.store import models_record as rec

    return sa.exists().where(rec.AssessmentRecord.patient_pk == patient_pk)


def _quantified_exists(patient_pk: Any) -> Any:
    from oncohybrid.store import models_record as rec

    return (sa.exists().where(rec.Lesion.patient_pk == patient_pk)
            .where(sa.exists().where(rec.Observation.lesion_pk == rec.Lesion.id)))


def _reported_pks(settings: Settings, s: Session, pks: list[int] | None = None) -> set[int]:
    """Patients with a stored assessment and a report file (of ``pks``, else all)."""
    from oncohybrid.services.report import report_file_prefix
    from oncohybrid.store import models_record as rec

    prefixes = _report_prefixes(settings)
    if not prefixes:
        return set()
    stmt = (sa.select(Patient.id, Patient.patient_id)
            .where(sa.select(rec.AssessmentRecord.id)
                   .where(rec.AssessmentRecord.patient_pk == Patient.id).exists()))
    if pks is not None:
        stmt = stmt.where(Patient.id.in_(pks))
    return {pk for pk, pid in s.execute(stmt) if report_file_prefix(pid) in prefixes}


def _statuses(settings: Settings, s: Session, patients: Sequence[Any]) -> dict[int, str]:
    """Status per patient pk (see module docstring) of ``patients`` (anything with ``id``
    and ``patient_id``: ORM patients or plain rows), in one statement; the SQL halves are
    :func:`_status_condition`'s."""
    from oncohybrid.services.report import report_file_prefix

    if not patients:
        return {}
    ids = {p.id: p.patient_id for p in patients}
    flags = s.execute(sa.select(Patient.id, _assessed_exists(Patient.id),
                                _quantified_exists(Patient.id))
                      .where(Patient.id.in_(list(ids)))).all()
    prefixes = _report_prefixes(settings) if any(a for _pk, a, _q in flags) else set()
    out = {pk: "new" for pk in ids}
    for pk, assessed, quantified in flags:
        if assessed:
            out[pk] = "reported" if report_file_prefix(ids[pk]) in prefixes else "assessed"
        elif quantified:
            out[pk] = "quantified"
    return out


def _status_condition(status: str, patient_pk: Any) -> Any:
    """``status`` as a SQL condition on the patient key column ``patient_pk`` (same
    rules as :func:`_statuses`).

    "reported" also needs a report file, which SQL cannot see: for "reported" and
    "assessed" this is the database half (a stored assessment), and the caller splits
    the two with :func:`_reported_pks` on the key rows.
    """
    if status in ("reported", "assessed"):
        return _assessed_exists(patient_pk)
    if status == "quantified":
        return sa.and_(~_assessed_exists(patient_pk), _quantified_exists(patient_pk))
    return sa.and_(~_assessed_exists(patient_pk), ~_quantified_exists(patient_pk))


def _conditions(query: WorklistQuery, identified: bool) -> list[Any]:
    cond: list[Any] = []
    if query.q and identified:
        like = f"%{query.q.strip().lower()}%"
        cond.append(sa.or_(sa.func.lower(Patient.patient_id).like(like),
                           sa.func.lower(Patient.patient_name).like(like)))
    if query.date_from:
        cond.append(Study.study_date >= query.date_from)
    if query.date_to:
        cond.append(Study.study_date <= query.date_to)
    if query.modality:
        cond.append(sa.select(Series.id).where(
            Series.study_pk == Study.id, Series.modality == query.modality.upper()).exists())
    if query.tracer:
        cond.append(sa.select(Series.id).where(
            Series.study_pk == Study.id,
            sa.func.lower(Series.radiopharmaceutical).like(f"%{query.tracer.lower()}%"),
        ).exists())
    return cond


# The distinct tracer keys of the summary (a loose index scan: one index probe per value).
_TRACER_VALUES = sa.text(
    "WITH RECURSIVE t(v) AS ("
    "SELECT (SELECT min(value) FROM patient_series_summary "
    "WHERE kind = 'tracer' AND n_studies > 0) "
    "UNION ALL SELECT (SELECT min(value) FROM patient_series_summary "
    "WHERE kind = 'tracer' AND n_studies > 0 AND value > t.v) FROM t WHERE t.v IS NOT NULL"
    ") SELECT v FROM t WHERE v IS NOT NULL AND v LIKE :pattern")


def _summary_key(s: Session, query: WorklistQuery) -> tuple[str, list[str]] | None:
    """The key of ``patient_series_summary`` (migration store0004) that answers the query's
    study filter, or ``None`` when the studies must be grouped.

    A modality filter is the key ("modality", the modality in upper case). A tracer filter
    (a substring of the lowered tracer, ``LIKE``) is answered by the summary when at most
    one stored tracer value matches: the same ``LIKE`` on ``lower(radiopharmaceutical)``
    as the grouped query, evaluated by the database on the values the triggers stored.
    With two matching values a study could count under both, so the studies are grouped.
    Dates, or a modality and a tracer together, group the studies as before.
    """
    if query.date_from or query.date_to or bool(query.modality) == bool(query.tracer):
        return None
    if query.modality:
        return "modality", [query.modality.upper()]
    values = list(s.scalars(_TRACER_VALUES, {"pattern": f"%{query.tracer.lower()}%"}))
    return ("tracer", values) if len(values) <= 1 else None


def worklist(query: WorklistQuery, settings: Settings | None = None, *,
             identified: bool = True) -> dict[str, Any]:
    """One page of patients matching ``query``, most recent study first.

    Filtering, ordering (last matching study date descending, then patient key) and
    paging run in SQL (``LIMIT``/``OFFSET``); only the page's rows are read into Python.
    Without a filter on the studies (no dates, modality or tracer: the common case) the
    date and count come from the patient row (``last_study_date``, ``n_studies``, kept by
    triggers, migration store0003) and the page is an index scan of
    ``ix_patients_worklist``; a modality or a tracer filter alone reads the
    per-(patient, modality/tracer) summary kept by triggers (migration store0004, see
    :func:`_summary_key`) the same way through ``ix_patient_series_worklist``; with other
    study filters, the matching studies are grouped per patient and the total rides on
    the page as ``COUNT(*) OVER ()``. Two filters are not SQL: a
    researcher's search (the keyed pseudonym is computed here) and the report-file half
    of "reported"/"assessed" (when report files exist); those read the ordered key rows
    (patient key, date, count, and the ID for the pseudonym) and page them here.
    """
    settings = settings or get_settings()
    # Without a filter on the studies (dates, modality, tracer) a patient's date and count
    # are those of all its studies, kept on the patient row (n_studies, last_study_date;
    # migration store0003) and indexed in the worklist's order: the page is an index scan
    # with LIMIT, no aggregate over the studies.
    summary = not (query.date_from or query.date_to or query.modality or query.tracer)
    with session_scope(settings) as s:
        # A modality or tracer filter alone reads the per-(patient, key) summary kept by
        # triggers (migration store0004), in the same order: an index scan too.
        key = None if summary else _summary_key(s, query)
        if key is not None:
            kind, values = key
            pss = PatientSeriesSummary
            pk_col = pss.patient_pk
            grouped = (
                sa.select(pk_col.label("pk"), pss.last_study_date.label("last"),
                          pss.n_studies.label("n"))
                .where(pss.kind == kind, pss.value.in_(values), pss.n_studies > 0)
            )
            if query.q:
                grouped = grouped.join(Patient, Patient.id == pk_col).where(*_conditions(
                    dataclasses.replace(query, modality=None, tracer=None), identified))
        elif summary:
            pk_col = Patient.id
            grouped = (
                sa.select(pk_col.label("pk"), Patient.last_study_date.label("last"),
                          Patient.n_studies.label("n"))
                .where(Patient.n_studies > 0, *_conditions(query, identified))
            )
        else:
            # Grouped over the studies alone (the patients table joins only when a filter
            # reads it): one row per study, so count(id) is the number of studies, and the
            # aggregation can hash instead of sorting for a count(DISTINCT …).
            pk_col = Study.patient_pk
            grouped = (
                sa.select(pk_col.label("pk"), sa.func.max(Study.study_date).label("last"),
                          sa.func.count(Study.id).label("n"))
                .where(*_conditions(query, identified))
                .group_by(pk_col)
            )
            if query.q:
                grouped = grouped.join(Patient, Patient.id == Study.patient_pk)
        if query.status:
            grouped = grouped.where(_status_condition(query.status, pk_col))
        # Two filters SQL cannot evaluate: the keyed pseudonym (a researcher's search)
        # and the report file behind "reported". They run on the ordered key rows.
        keep: list[Any] = []
        if query.q and not identified:
            from oncohybrid.services.users import pseudonym

            needle = query.q.strip().upper()
            grouped = grouped.add_columns(Patient.patient_id, Patient.issuer_of_patient_id)
            if not summary and key is None:
                grouped = grouped.group_by(Patient.patient_id, Patient.issuer_of_patient_id)
            keep.append(lambda r: needle in pseudonym(settings, r.patient_id,
                                                      r.issuer_of_patient_id or ""))
        if query.status in ("reported", "assessed"):
            reported = _reported_pks(settings, s)
            if query.status == "reported" and not reported:
                grouped = grouped.where(sa.false())
            elif query.status == "reported":
                keep.append(lambda r: r.pk in reported)
            elif reported:  # "assessed": a stored assessment but no report file
                keep.append(lambda r: r.pk not in reported)
        sub = grouped.subquery()
        offset = (query.page - 1) * query.per_page
        ordered = sa.select(sub).order_by(sub.c.last.desc(), sub.c.pk)
        if keep:
            hits = [r for r in s.execute(ordered) if all(f(r) for f in keep)]
            total, rows = len(hits), hits[offset:offset + query.per_page]
        elif (summary or key is not None) and not query.q:
            # Two statements: a COUNT(*) OVER () would read every row before the LIMIT,
            # which the index scan otherwise stops at. (A name search reads every patient
            # anyway, so it keeps the total on the page.)
            rows = s.execute(ordered.limit(query.per_page).offset(offset)).all()
            total = int(s.scalar(sa.select(sa.func.count()).select_from(sub)) or 0)
        else:
            rows = s.execute(
                ordered.add_columns(sa.func.count().over().label("total"))
                .limit(query.per_page).offset(offset)
            ).all()
            if rows:
                total = int(rows[0].total)
            else:  # a page past the end: the window count has no row to ride on
                total = int(s.scalar(sa.select(sa.func.count()).select_from(sub)) or 0)
        pks = [r.pk for r in rows]
        patients = {p.id: p for p in s.scalars(sa.select(Patient).where(Patient.id.in_(pks)))}
        statuses = _statuses(settings, s, list(patients.values()))
        page_items = []
        for r in rows:
            d = _display(settings, patients[r.pk], identified)
            d.update(last_study=r.last.isoformat() if r.last else None,
                     studies=int(r.n), status=statuses[r.pk])
            page_items.append((r.pk, d))
        extra: dict[int, dict[str, set[str]]] = {pk: {"mod": set(), "tr": set()} for pk in pks}
        if pks:
            for pk, modality, tracer in s.execute(
                sa.select(Study.patient_pk, Series.modality, Series.radiopharmaceutical)
                .join(Series, Series.study_pk == Study.id)
                .where(Study.patient_pk.in_(pks))
            ):
                extra[pk]["mod"].add(modality)
                if tracer:
                    extra[pk]["tr"].add(tracer)
    out_rows = []
    for pk, d in page_items:
        d["modalities"] = sorted(extra[pk]["mod"])
        d["tracers"] = sorted(extra[pk]["tr"])
        out_rows.append(d)
    return {
        "rows": out_rows,
        "total": total,
        "page": query.page,
        "pages": max(1, math.ceil(total / query.per_page)),
        "per_page": query.per_page,
    }


_PATIENT_COLUMNS = (Patient.id, Patient.patient_id, Patient.issuer_of_patient_id,
                    Patient.patient_name, Patient.patient_sex, Patient.patient_birth_date)


def patient_summary(patient_pk: int, settings: Settings | None = None, *,
                    identified: bool = True) -> dict[str, Any]:
    """Patient header and the studies (oldest first) with their image series."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        # Plain rows (no ORM objects): the page reads them once.
        p = s.execute(sa.select(*_PATIENT_COLUMNS).where(Patient.id == patient_pk)).first()
        if p is None:
            raise StoreError(f"patient #{patient_pk}: not in the study database")
        head = _display(settings, p, identified)
        head["status"] = _statuses(settings, s, [p])[p.id]
        studies = []
        rows = s.execute(
            sa.select(Study.id, Study.study_instance_uid, Study.study_date,
                      Study.study_description, Study.accession_number)
            .where(Study.patient_pk == p.id)
            .order_by(Study.study_date, Study.study_instance_uid)
        ).all()
        # All series of the patient in one query, not one query per study.
        by_study: dict[int, list[Any]] = {st.id: [] for st in rows}
        for se in s.execute(
            sa.select(Series.study_pk, Series.series_instance_uid, Series.modality,
                      Series.series_description, Series.radiopharmaceutical,
                      Series.manufacturer, Series.number_of_instances)
            .join(Study, Series.study_pk == Study.id)
            .where(Study.patient_pk == p.id)
            .order_by(Series.series_number, Series.id)
        ):
            by_study[se.study_pk].append(se)
        for st in rows:
            series = by_study[st.id]
            studies.append({
                "study_uid": st.study_instance_uid,
                "date": st.study_date.isoformat() if st.study_date else None,
                "description": st.study_description,
                "accession_number": st.accession_number if identified else None,
                "series": [
                    {
                        "series_uid": se.series_instance_uid,
                        "modality": se.modality,
                        "description": se.series_description,
                        "tracer": se.radiopharmaceutical,
                        "manufacturer": se.manufacturer,
                        "instances": se.number_of_instances,
                    }
                    for se in series
                ],
                "viewable": any(se.modality in ("CT", "PT", "MR", "US") for se in series),
            })
    head["studies"] = studies
    return head


def patient_pk_of_study(study_uid: str, settings: Settings | None = None) -> int:
    with session_scope(settings) as s:
        pk = s.scalar(sa.select(Study.patient_pk).where(Study.study_instance_uid == study_uid))
    if pk is None:
        raise StoreError(f"study {study_uid}: not in the study database")
    return int(pk)
