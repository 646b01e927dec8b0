"""``oncohybrid deid``: de-identified copies of stored patients, keys in the database.

Use-case around the pure engine :mod:`oncohybrid.deid` (PS3.15 Annex E, PET-safe):

- the key store (:mod:`oncohybrid.store.models_deid`) gives each patient a random
  pseudonym and a random whole-day date shift on first use, and every replaced UID a
  random ``2.25.`` UID (PS3.5 §B.2); later runs (and the clinical-data export, through
  :func:`patient_key`) read the same values back;
- the stored files are read, never written; copies go to
  ``DIR/<pseudonym>/<study UID'>/<series UID'>/<SOP UID'>.dcm`` (only replacement UIDs
  and pseudonyms in names);
- ``DIR/deid-report.json`` names, per patient, each tag and the action applied to it with
  a count, and the files left out (burned-in annotation), never an original value.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom
import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid.config import Settings, get_settings
from oncohybrid.deid import Deidentifier, Option, PatientKey, load_table
from oncohybrid.errors import InputError, StoreError
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Instance, Patient, Series, Study
from oncohybrid.store.models_deid import DeidPatient, DeidUid

REPORT_NAME = "deid-report.json"
_PSEUDONYM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: Date shifts are drawn from −3650 … −365 days (one to ten years back, never zero).
SHIFT_MIN_DAYS, SHIFT_MAX_DAYS = 365, 3650


def new_uid() -> str:
    """A fresh UID under the UUID arc ``2.25`` (PS3.5 §B.2): at most 44 characters."""
    return f"2.25.{uuid.uuid4().int}"


def _new_pseudonym() -> str:
    return "OH" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(10))


def patient_key(session: Session, patient_id: str, issuer: str = "") -> DeidPatient:
    """The key-store row of a patient, created (random pseudonym and shift) on first use."""
    row = session.scalar(sa.select(DeidPatient).where(
        DeidPatient.patient_id == patient_id, DeidPatient.issuer_of_patient_id == issuer))
    if row is None:
        shift = -(SHIFT_MIN_DAYS + secrets.randbelow(SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1))
        row = DeidPatient(patient_id=patient_id, issuer_of_patient_id=issuer,
                          pseudonym=_new_pseudonym(), date_shift_days=shift)
        session.add(row)
        session.flush()
    return row


class _UidMap:
    """Original → replacement UIDs of one patient, backed by ``deid_uids``."""

    def __init__(self, session: Session, key: DeidPatient) -> None:
        self.session = session
        self.key = key
        self.known: dict[str, str] = {
            o: r for o, r in session.execute(
                sa.select(DeidUid.original_uid, DeidUid.replacement_uid)
                .where(DeidUid.deid_patient_pk == key.id))}

    def __call__(self, uid: str) -> str:
        uid = uid.strip().rstrip("\x00")
        hit = self.known.get(uid)
        if hit is not None:
            return hit
        hit = self.session.scalar(sa.select(DeidUid.replacement_uid)
                                  .where(DeidUid.original_uid == uid))
        if hit is None:
            hit = new_uid()
            self.session.add(DeidUid(original_uid=uid, replacement_uid=hit,
                                     deid_patient_pk=self.key.id))
        self.known[uid] = hit
        return hit


def _stored_files(session: Session, patient: Patient) -> list[str]:
    rows = session.execute(
        sa.select(Instance.file_path)
        .join(Series, Instance.series_pk == Series.id)
        .join(Study, Series.study_pk == Study.id)
        .where(Study.patient_pk == patient.id)
        .order_by(Study.study_date, Study.id, Series.series_number, Series.id,
                  Instance.instance_number, Instance.id)).scalars().all()
    return list(rows)


def deidentify_patients(patient_ids: list[str], out: str | Path, *,
                        options: frozenset[Option], dry_run: bool = False,
                        settings: Settings | None = None) -> dict[str, Any]:
    """De-identify the stored files of ``patient_ids`` into ``out`` (see module doc).

    Returns ``{"patients": [{"pseudonym", "files", "date_shift_days"}]}``; ``files`` is
    the number of copies written (with ``dry_run``: that would be written). Raises
    :class:`InputError` for no or unknown patients and an ``out`` that is a file.
    """
    settings = settings or get_settings()
    if not patient_ids:
        raise InputError("deid: name at least one PATIENT_ID")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    table = load_table()
    result: list[dict[str, Any]] = []
    report_patients: list[dict[str, Any]] = []
    with session_scope(settings) as session:
        patients: list[Patient] = []
        for pid in dict.fromkeys(patient_ids):
            found = session.scalars(sa.select(Patient).where(Patient.patient_id == pid)
                                    .order_by(Patient.id)).all()
            if not found:
                raise InputError(f"deid: no stored patient with Patient ID {pid!r}")
            patients.extend(found)
        out.mkdir(parents=True, exist_ok=True)
        for patient in patients:
            key = patient_key(session, patient.patient_id, patient.issuer_of_patient_id)
            doc = _deidentify_one(session, patient, key, out, options, table, dry_run)
            report_patients.append(doc)
            result.append({"pseudonym": key.pseudonym, "files": doc["files"],
                           "date_shift_days": key.date_shift_days})
    report = {
        "profile": {"standard": "DICOM PS3.15 Annex E, Table E.1-1", "edition": table.edition,
                    "table_source": table.source,
                    "options": sorted(o.value for o in options)},
        "dry_run": dry_run,
        "patients": report_patients,
    }
    (out / REPORT_NAME).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return {"patients": result}


def _deidentify_one(session: Session, patient: Patient, key: DeidPatient, out: Path,
                    options: frozenset[Option], table: Any, dry_run: bool) -> dict[str, Any]:
    uid_map = _UidMap(session, key)
    engine = Deidentifier(PatientKey(key.pseudonym, key.date_shift_days), uid_map, options,
                          table=table)
    changes: Counter[tuple[str, str, str]] = Counter()
    excluded: list[dict[str, str]] = []
    written = 0
    for path in _stored_files(session, patient):
        try:
            ds = pydicom.dcmread(path)
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise StoreError(f"deid: stored file of patient {key.pseudonym} cannot be "
                             f"read: {type(exc).__name__}") from exc
        outcome = engine.apply(ds)
        changes.update(outcome.changes)
        if outcome.burned_in:
            excluded.append({"sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
                             "reason": outcome.burned_in})
            continue
        written += 1
        if dry_run:
            continue
        dest = (out / key.pseudonym / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID)
                / f"{ds.SOPInstanceUID}.dcm")
        dest.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dest, enforce_file_format=True)
    session.flush()
    return {
        "pseudonym": key.pseudonym,
        "date_shift_days": key.date_shift_days,
        "files": written,
        "excluded": excluded,
        "changes": [{"tag": t, "name": n, "action": a, "count": c}
                    for (t, n, a), c in sorted(changes.items())],
    }
