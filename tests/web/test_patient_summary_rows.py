"""``patient_summary`` (read on every patient page) returns exactly what the previous
ORM version returned: the oracle below is that version (git d283564, renamed, reading
the same module helpers), compared for every patient of the mixed worklist data set
(statuses, report files, pseudonyms, studies without dates, several series), identified
and pseudonymised, on SQLite and PostgreSQL; an unknown key is still a StoreError.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from test_worklist_sql_paging import _mixed_dataset

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import StoreError
from oncohybrid.services.worklist import _display, _statuses, patient_summary
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Series, Study


def _old_patient_summary(patient_pk: int, settings: Settings | None = None, *,
                         identified: bool = True) -> dict[str, Any]:
    """Patient header and the studies (oldest first) with their image series."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        p = s.get(Patient, patient_pk)
        if p is None:
            raise StoreError(f"patient #{patient_pk}: not in the study database")
        head = _display(settings, p, identified)
        head["status"] = _statuses(settings, s, [p])[p.id]
        studies = []
        rows = s.scalars(
            sa.select(Study).where(Study.patient_pk == p.id)
            .order_by(Study.study_date, Study.study_instance_uid)
        ).all()
        # All series of the patient in one query, not one query per study.
        by_study: dict[int, list[Series]] = {st.id: [] for st in rows}
        for se in s.scalars(
            sa.select(Series).join(Study, Series.study_pk == Study.id)
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



def test_patient_summary_equals_the_orm_version(backend):
    settings = get_settings()
    _mixed_dataset(settings)
    with session_scope(settings) as s:
        pks = list(s.scalars(sa.select(Patient.id).order_by(Patient.id)))
    assert len(pks) > 30
    statuses = set()
    for pk in pks:
        for identified in (True, False):
            want = _old_patient_summary(pk, settings, identified=identified)
            assert patient_summary(pk, settings, identified=identified) == want, pk
            statuses.add(want["status"])
    assert statuses == {"new", "quantified", "assessed", "reported"}
    with pytest.raises(StoreError, match="not in the study database"):
        patient_summary(max(pks) + 1, settings)
