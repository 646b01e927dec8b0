"""Use-case: the reading room's lookups and record edits (the web pages' door to the record).

The web layer parses requests, checks roles, audits and renders; it reaches the study
database only through services (docs/architecture.md, enforced by import-linter). This
module holds what the reading room reads and writes in the longitudinal record
(docs/record.md) beyond :mod:`oncohybrid.services.record`:

- lookups: a patient's (0010,0020) *Patient ID* from its database key, the recorded
  centroid of a lesion at a scan date, every stored Study Instance UID (for the
  researcher role's pseudonym map, DICOM PS3.15 Annex E);
- edits made by physicians, under the record's rules (manual decisions kept beside the
  automatic ones, never overwriting them): a lesion's role under a criterion, a tracking
  correction that swaps the observation rows of two lesions at one time point, and a
  manual length drawn on the viewer.

Re-assessment after an edit (:func:`oncohybrid.services.assess.reassess_from_record`) and
serialising concurrent edits stay with the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid.config import Settings
from oncohybrid.errors import InputError, StoreError
from oncohybrid.services import record as record_service
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Study
from oncohybrid.store.models_record import Lesion, Observation, Timepoint

__all__ = [
    "patient_id_of",
    "lesion_centroid",
    "study_uids",
    "set_lesion_role",
    "swap_observations",
    "manual_length_mm",
    "add_manual_length",
]


def patient_id_of(patient_pk: int, settings: Settings | None = None) -> str:
    """The (0010,0020) *Patient ID* of database patient ``patient_pk`` (StoreError if none)."""
    with session_scope(settings) as s:
        pid = s.scalar(sa.select(Patient.patient_id).where(Patient.id == patient_pk))
    if pid is None:
        raise StoreError(f"patient #{patient_pk}: not in the study database")
    return pid


def lesion_centroid(patient_pk: int, key: str, date: str,
                    settings: Settings | None = None) -> list[float] | None:
    """Centroid (LPS mm) of the in-use observation of lesion ``key`` on ISO ``date``.

    ``None`` when the lesion has no observation in use on that date or none was recorded.
    """
    with session_scope(settings) as s:
        row = s.execute(
            sa.select(Observation.centroid_lps_mm)
            .join(Lesion, Observation.lesion_pk == Lesion.id)
            .join(Timepoint, Observation.timepoint_pk == Timepoint.id)
            .where(Lesion.patient_pk == patient_pk, Lesion.key == key,
                   Timepoint.scan_date == dt.date.fromisoformat(date), Observation.in_use)
        ).first()
    return None if row is None else row[0]


def study_uids(settings: Settings | None = None) -> list[str]:
    """Every stored Study Instance UID (0020,000D)."""
    with session_scope(settings) as s:
        return list(s.scalars(sa.select(Study.study_instance_uid)).all())


def _lesion(s: Session, patient_pk: int, key: str) -> Lesion | None:
    return s.scalar(sa.select(Lesion).where(Lesion.patient_pk == patient_pk, Lesion.key == key))


def set_lesion_role(patient_pk: int, lesion_id: str, criterion: str, role: Any, *,
                    actor: str, settings: Settings | None = None) -> None:
    """A reader's role for a lesion under ``criterion`` (a manual decision, record rules:
    :func:`oncohybrid.services.record.set_role`; a later automatic proposal keeps it)."""
    with session_scope(settings) as s:
        les = _lesion(s, patient_pk, lesion_id)
        if les is None:
            raise StoreError(f"lesion {lesion_id!r}: not recorded for patient #{patient_pk}")
        record_service.set_role(s, les, criterion, role, source="manual",
                                reasons=[f"set by {actor}"])


def swap_observations(patient_pk: int, lesion_id: str, other: str, tp_index: int, *,
                      actor: str, settings: Settings | None = None) -> None:
    """Correct the tracking at time point ``tp_index``: the observations of ``lesion_id``
    and ``other`` there swap owners (rows keep their numbers and provenance, a note names
    the reader; nothing is deleted)."""
    with session_scope(settings) as s:
        les = {k: _lesion(s, patient_pk, k) for k in (lesion_id, other)}
        if None in les.values():
            raise StoreError(f"lesions {lesion_id!r}/{other!r}: not both recorded")
        tp = s.scalar(sa.select(Timepoint).where(Timepoint.patient_pk == patient_pk,
                                                 Timepoint.tp_index == tp_index))
        if tp is None:
            raise StoreError(f"time point {tp_index}: not recorded")
        a_rows = s.scalars(sa.select(Observation).where(
            Observation.lesion_pk == les[lesion_id].id,
            Observation.timepoint_pk == tp.id)).all()
        b_rows = s.scalars(sa.select(Observation).where(
            Observation.lesion_pk == les[other].id,
            Observation.timepoint_pk == tp.id)).all()
        # Three steps keep the one-row-in-use unique index valid at every flush.
        flags = {r.id: r.in_use for r in a_rows}
        for r in a_rows:
            r.in_use = False
        s.flush()
        for r in b_rows:
            r.lesion_pk = les[lesion_id].id
            r.note = ((r.note or "") + f" [match fixed by {actor}]").strip()
        s.flush()
        for r in a_rows:
            r.lesion_pk = les[other].id
            r.in_use = flags[r.id]
            r.note = ((r.note or "") + f" [match fixed by {actor}]").strip()
        s.flush()


def manual_length_mm(vols: Any, orientation: str, index: int, p1: Sequence[float],
                     p2: Sequence[float]) -> float:
    """Length (mm, one decimal) between two clicked points of one viewer plane: a reader's
    long- or short-axis diameter (RECIST 1.1 §4.2).

    ``p1``/``p2`` are image fractions as in :func:`oncohybrid.services.viewer.point_lps`;
    points that coincide are an :class:`InputError`.
    """
    from oncohybrid.services.viewer import point_lps

    a = point_lps(vols, orientation, index, *p1)
    b = point_lps(vols, orientation, index, *p2)
    length_mm = round(float(np.linalg.norm(a - b)), 1)
    if length_mm <= 0:
        raise InputError("the two points coincide")
    return length_mm


def add_manual_length(patient_id: str, lesion_id: str, scan_date: str, length_mm: float, *,
                      axis: str, orientation: str, index: int, actor: str,
                      settings: Settings | None = None) -> int:
    """Store a reader's long- (``ld_mm``) or short-axis (``sa_mm``) length drawn on plane
    ``orientation`` ``index`` as a manual observation that supersedes the automatic one
    (:func:`oncohybrid.services.record.add_manual_observation`). Returns the row's id."""
    return record_service.add_manual_observation(
        lesion_id, dt.date.fromisoformat(scan_date),
        {"ld_mm" if axis == "long" else "sa_mm": length_mm}, patient_id=patient_id,
        reader=actor, note=f"{axis} axis drawn on {orientation} {index}", settings=settings)
