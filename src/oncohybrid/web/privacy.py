"""Pseudonymised views of the reading room for the researcher role.

Follows the spirit of DICOM PS3.15 Annex E (Basic Application Level Confidentiality
Profile) for what a page or JSON answer shows, as the pseudonymised reports do
(:meth:`oncohybrid.report.data.PatientReportData.pseudonymised`):

- Study and Series Instance UIDs are replaced by keyed pseudonymous UIDs
  (:func:`oncohybrid.services.users.pseudonym_uid`: the installation's pseudonym key and
  HMAC-SHA-256, written as a ``2.25.`` UID, PS3.5 §B.2), stable across sessions so that
  viewer links work, and mapped back to the real UID only on the server;
- calendar dates become days from the patient's baseline (``day 0``, ``day 84``), in
  ``date`` fields and inside free text (response traces);
- free-text descriptions (study, series), accession numbers and notes are dropped
  (PS3.15 Table E.1-1: "X"/"Z" actions for descriptions and accession numbers).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable
from typing import Any

from oncohybrid.config import Settings
from oncohybrid.errors import StoreError
from oncohybrid.services.reading import study_uids
from oncohybrid.services.users import pseudonym_key, pseudonym_uid

__all__ = ["Pseudonymiser", "for_patient", "real_study_uid", "DROPPED_KEYS"]

#: Keys whose values are free text or direct identifiers (set to ``None``).
DROPPED_KEYS = frozenset({"description", "accession_number", "note", "study_description",
                          "series_description", "institution"})
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


class Pseudonymiser:
    """Maps JSON-ready data of one patient to its pseudonymised form (see module doc)."""

    def __init__(self, key: bytes, uids: Iterable[str], baseline: dt.date | None) -> None:
        self.uid_map = {u: pseudonym_uid(u, key) for u in uids if u}
        # Longest first, so that a UID that prefixes another is not replaced inside it.
        self._uids = sorted(self.uid_map, key=len, reverse=True)
        self.baseline = baseline

    def day(self, value: str) -> str:
        """``day N`` for an ISO date (``—`` without a baseline or a valid date)."""
        try:
            d = dt.date.fromisoformat(value[:10])
        except ValueError:
            return "—"
        return "—" if self.baseline is None else f"day {(d - self.baseline).days}"

    def _text(self, s: str) -> str:
        if s in self.uid_map:
            return self.uid_map[s]
        for u in self._uids:
            if u in s:
                s = s.replace(u, self.uid_map[u])
        return _DATE.sub(lambda m: self.day(m.group(0)), s)

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self._text(obj)
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if k in DROPPED_KEYS:
                    out[k] = None
                elif (k == "date" or k.endswith("_date")) and isinstance(v, str):
                    out[k] = self.day(v)
                else:
                    out[k] = self(v)
            return out
        if isinstance(obj, list | tuple):
            return [self(v) for v in obj]
        return obj


def for_patient(settings: Settings, summary: dict[str, Any],
                timeline: dict[str, Any] | None = None) -> Pseudonymiser:
    """The pseudonymiser of a patient summary (:func:`services.worklist.patient_summary`).

    The baseline is the first time point of the longitudinal record when there is one
    (its ``days`` are the record's days since baseline), else the first study.
    """
    uids = [st["study_uid"] for st in summary["studies"]]
    uids += [se["series_uid"] for st in summary["studies"] for se in st["series"]]
    dates = [tp["date"] for tp in (timeline or {}).get("timepoints", [])
             if tp.get("date") and tp.get("days") is not None]
    if not dates:
        dates = [st["date"] for st in summary["studies"] if st["date"]]
    baseline = dt.date.fromisoformat(min(dates)) if dates else None
    return Pseudonymiser(pseudonym_key(settings), uids, baseline)


_reverse: dict[str, dict[str, str]] = {}
_reverse_lock = threading.Lock()


def real_study_uid(settings: Settings, pseudo: str) -> str:
    """The Study Instance UID behind a pseudonymous one (:class:`StoreError` if none).

    The map is built from the study table and rebuilt when a UID is not found (a new
    study was stored since).
    """
    home = str(settings.home)
    with _reverse_lock:
        known = _reverse.get(home, {})
    if pseudo in known:
        return known[pseudo]
    key = pseudonym_key(settings)
    fresh = {pseudonym_uid(u, key): u for u in study_uids(settings)}
    with _reverse_lock:
        _reverse[home] = fresh
    if pseudo not in fresh:
        raise StoreError(f"study {pseudo}: not in the study database")
    return fresh[pseudo]
