"""The SQL-paged worklist returns exactly what the Python-paged one returned.

The oracle is the previous implementation (copied below from git 2eb5229, unchanged
but for its name): it read every matching patient, filtered status and pseudonym in
Python and sliced the page. A mixed data set (studies without dates, several studies
and modalities per patient, tracers, lesions, assessments, report files, issuers,
patients without studies, IDs with "-" and "/") is queried with every filter, every
status, identified and pseudonymised, on every page including one past the end, on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid.config import Settings, get_settings
from oncohybrid.services.worklist import WorklistQuery, _conditions, _display, worklist
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Series, Study


def _old_statuses(settings: Settings, s: Session, patients: list[Patient]) -> dict[int, str]:
    """Status per patient pk (see module docstring)."""
    from oncohybrid.store import models_record as rec

    out = {p.id: "new" for p in patients}
    if not patients:
        return out
    pks = [p.id for p in patients]
    quantified = set(s.scalars(
        sa.select(rec.Lesion.patient_pk).join(rec.Observation,
                                              rec.Observation.lesion_pk == rec.Lesion.id)
        .where(rec.Lesion.patient_pk.in_(pks)).distinct()))
    assessed = set(s.scalars(sa.select(rec.AssessmentRecord.patient_pk)
                             .where(rec.AssessmentRecord.patient_pk.in_(pks)).distinct()))
    from oncohybrid.services.report import report_file_prefix

    reports = settings.derived_dir / "reports"
    names = [f.name for f in reports.glob("*.pdf")] if reports.is_dir() else []
    for p in patients:
        if p.id in assessed and any(n.startswith(report_file_prefix(p.patient_id)) for n in names):
            out[p.id] = "reported"
        elif p.id in assessed:
            out[p.id] = "assessed"
        elif p.id in quantified:
            out[p.id] = "quantified"
    return out


def _python_paged_worklist(query: WorklistQuery, settings: Settings | None = None, *,
             identified: bool = True) -> dict[str, Any]:
    """The worklist as it was before SQL paging (git 2eb5229): every matching row read,
    filtered and paged in Python. The oracle for the SQL-paged version."""
    settings = settings or get_settings()
    last = sa.func.max(Study.study_date)
    stmt = (
        sa.select(Patient, last, sa.func.count(sa.distinct(Study.id)))
        .join(Study, Study.patient_pk == Patient.id)
        .where(*_conditions(query, identified))
        .group_by(Patient.id)
        .order_by(last.desc(), Patient.id)
    )
    with session_scope(settings) as s:
        rows = s.execute(stmt).all()
        statuses = _old_statuses(settings, s, [p for p, _, _ in rows])
        items = []
        for p, last_date, n_studies in rows:
            d = _display(settings, p, identified)
            if query.q and not identified and query.q.strip().upper() not in d["label"]:
                continue
            if query.status and statuses[p.id] != query.status:
                continue
            d.update(last_study=last_date.isoformat() if last_date else None,
                     studies=int(n_studies), status=statuses[p.id])
            items.append((p.id, d))
        total = len(items)
        start = (query.page - 1) * query.per_page
        page_items = items[start:start + query.per_page]
        pks = [pk for pk, _ in page_items]
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


def _mixed_dataset(settings: Settings) -> None:
    from oncohybrid.services.report import report_file_prefix
    from oncohybrid.store import models_record as rec

    rng = np.random.default_rng(2024)
    ids = [f"P-{n}" for n in range(30)] + ["P-1-2", "A/B 7", "x_y-9", "Zoë"]
    reports = settings.derived_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    with session_scope(settings) as db:
        for n, pid in enumerate(ids):
            p = Patient(patient_id=pid, issuer_of_patient_id="HOSP" if n % 5 == 0 else "",
                        patient_name=f"Doe^{'ABCDEFG'[n % 7]}{n}", patient_sex="FM"[n % 2])
            db.add(p)
            db.flush()
            n_studies = int(rng.integers(0, 4)) if n % 9 else 1
            study_pks = []
            for k in range(n_studies):
                date = None if rng.random() < 0.12 else dt.date(2023, 1, 1) + dt.timedelta(
                    days=int(rng.integers(0, 400)))
                st = Study(study_instance_uid=f"1.2.826.0.9.{n}.{k}", patient_pk=p.id,
                           study_date=date)
                db.add(st)
                db.flush()
                study_pks.append(st.id)
                for j, mod in enumerate(rng.choice(["CT", "PT", "MR"], size=int(rng.integers(1, 3)),
                                                   replace=False)):
                    tracer = None
                    if mod == "PT":
                        tracer = ["Fluorodeoxyglucose", "PSMA-11", None][int(rng.integers(0, 3))]
                    db.add(Series(series_instance_uid=f"1.2.826.0.9.{n}.{k}.{j}",
                                  study_pk=st.id, modality=str(mod),
                                  radiopharmaceutical=tracer, number_of_instances=1))
            kind = n % 4  # 0 new, 1 quantified, 2 assessed, 3 assessed + report
            if kind >= 1:
                tp = rec.Timepoint(patient_pk=p.id, tp_index=0, label="baseline",
                                   scan_date=dt.date(2023, 1, 1), days_since_baseline=0)
                les = rec.Lesion(patient_pk=p.id, key="L1", tracking_uid=f"2.25.{n + 1}",
                                 site="lung")
                db.add_all([tp, les])
                db.flush()
                db.add(rec.Observation(lesion_pk=les.id, timepoint_pk=tp.id))
            if kind >= 2:
                db.add(rec.AssessmentRecord(patient_pk=p.id, criterion="recist1.1",
                                            run_uid=f"2.25.9{n}", case_json={},
                                            result_json={}, software_version="t"))
            if kind == 3 or (kind == 0 and n % 8 == 0):  # a report without an assessment too
                (reports / f"{report_file_prefix(pid)}20240101.pdf").write_bytes(b"%PDF")
    (reports / "notes.txt").write_text("not a report")


def _queries() -> list[WorklistQuery]:
    out = []
    filters: list[dict[str, Any]] = [
        {}, {"modality": "PT"}, {"modality": "mr"}, {"tracer": "fluoro"}, {"tracer": "psma"},
        {"q": "doe^a"}, {"q": "p-1"}, {"q": "PSN"}, {"q": "a"},
        {"date_from": dt.date(2023, 6, 1)}, {"date_to": dt.date(2023, 9, 1)},
        {"date_from": dt.date(2023, 3, 1), "date_to": dt.date(2023, 12, 31), "modality": "CT"},
    ]
    for f, status, per_page in itertools.product(
            filters, [None, "new", "quantified", "assessed", "reported"], [4, 25]):
        out.extend(WorklistQuery(**f, status=status, page=page, per_page=per_page)
                   for page in (1, 2, 3, 9))
    return out


def test_sql_paged_worklist_equals_the_python_paged_one(backend):
    settings = get_settings()
    _mixed_dataset(settings)
    compared = nonempty = 0
    for query in _queries():
        for identified in (True, False):
            if not identified and (query.date_from or query.date_to):
                continue  # the web refuses date filters for researchers
            want = _python_paged_worklist(query, settings, identified=identified)
            got = worklist(query, settings, identified=identified)
            assert got == want, (query, identified)
            compared += 1
            nonempty += bool(want["rows"])
    assert compared > 800 and nonempty > 150
    # The data set does exercise every status and the pseudonym search.
    for status in ("new", "quantified", "assessed", "reported"):
        assert worklist(WorklistQuery(status=status), settings)["total"] > 0, status
    label = worklist(WorklistQuery(), settings, identified=False)["rows"][0]["label"]
    hit = worklist(WorklistQuery(q=label[-6:].lower()), settings, identified=False)
    assert label in [r["label"] for r in hit["rows"]]


def test_a_page_reads_only_its_own_patients_from_the_database(backend):
    settings = get_settings()
    with session_scope(settings) as db:
        for n in range(120):
            p = Patient(patient_id=f"Q{n:03d}", patient_name=f"Roe^{n}")
            db.add(p)
            db.flush()
            db.add(Study(study_instance_uid=f"1.2.826.0.8.{n}", patient_pk=p.id,
                         study_date=dt.date(2024, 1, 1) + dt.timedelta(days=n)))
    loaded: list[str] = []

    def on_load(target: Patient, _context: Any) -> None:
        loaded.append(target.patient_id)

    sa.event.listen(Patient, "load", on_load)
    try:
        page = worklist(WorklistQuery(page=2, per_page=10), settings)
    finally:
        sa.event.remove(Patient, "load", on_load)
    # Most recent first: page 2 holds the 11th..20th most recent patients.
    assert [r["patient_id"] for r in page["rows"]] == [f"Q{n:03d}" for n in range(109, 99, -1)]
    assert page["total"] == 120 and page["pages"] == 12
    # Paging in SQL: the 110 patients of the other pages never reach Python.
    assert sorted(loaded) == sorted(r["patient_id"] for r in page["rows"])


def test_patient_summary_reads_series_in_one_query_whatever_the_number_of_studies(backend):
    from oncohybrid.services.worklist import patient_summary
    from oncohybrid.store.db import get_engine

    settings = get_settings()
    pks = {}
    with session_scope(settings) as db:
        for n_studies in (2, 7):
            p = Patient(patient_id=f"S{n_studies}")
            db.add(p)
            db.flush()
            pks[n_studies] = p.id
            for k in range(n_studies):
                st = Study(study_instance_uid=f"1.2.826.0.7.{n_studies}.{k}", patient_pk=p.id,
                           study_date=dt.date(2024, 1, 1 + k))
                db.add(st)
                db.flush()
                for j, mod in enumerate(["PT", "CT"]):  # stored PT first, shown by number
                    db.add(Series(series_instance_uid=f"1.2.826.0.7.{n_studies}.{k}.{j}",
                                  study_pk=st.id, modality=mod, series_number=2 - j))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_engine(settings)
    counts = {}
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for n_studies, pk in pks.items():
            statements.clear()
            summary = patient_summary(pk, settings)
            counts[n_studies] = len(statements)
            assert [st["date"] for st in summary["studies"]] == [
                dt.date(2024, 1, 1 + k).isoformat() for k in range(n_studies)]
            for st in summary["studies"]:
                assert [se["modality"] for se in st["series"]] == ["CT", "PT"]
                assert st["viewable"]
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    # No query per study (N+1): 7 studies cost what 2 cost.
    assert counts[7] == counts[2], counts
