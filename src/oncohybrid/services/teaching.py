"""Use-case: the teaching file and case-based self-assessment (issue #14, docs/teaching.md).

**Capture** copies an assessed patient's chosen timepoints into a teaching case: the
measured PET and CT series and the timepoint's stored lesion-mask SEG
(:mod:`oncohybrid.services.masks`) are de-identified by the PS3.15 Annex E engine
(:mod:`oncohybrid.deid`, the PET-safe default options of ``oncohybrid deid``: dates shifted
by whole days, times kept, so every SUV is unchanged) under a pseudonym, a date shift and
UIDs drawn for this case alone (never the research key store's, so a teaching case cannot
be linked to a research export of the same patient). The record — timepoints, lesions with
their measurements and mask segments, each criterion's stored assessment with its rule
trace — becomes the case's ground truth with the same date shift and replacement UIDs,
and the questions are generated from it (response category per criterion, Deauville,
Krenning, the hottest lesion to click, its long axis). Files are written into a temporary
folder and moved into place only when the database rows are in; a failure leaves nothing.

**Export / import** move a case between sites as one zip (``case.json`` + the DICOM
files, each with its SHA-256); import refuses a corrupt or foreign zip, or one holding a
file that is not de-identified, before anything is written, and is idempotent.

**Self-assessment**: quizzes drawn balanced by tag without replacement
(:mod:`oncohybrid.teaching.draws`), answers scored at once against the ground truth
(:mod:`oncohybrid.teaching.scoring`), missed questions rescheduled by SM-2
(:mod:`oncohybrid.teaching.sm2`), the trainee record (accuracy per topic and month,
Cohen's kappa against the reference per criterion, localisation sensitivity and false
positives per case) and the fellowship logbook entries (:func:`logbook_entries`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import secrets
import shutil
import tempfile
import threading
import uuid
import zipfile
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pydicom
import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, OncohybridError, StoreError
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Instance, Patient, Series
from oncohybrid.store.models_record import (
    AssessmentRecord,
    Lesion,
    LesionRole,
    Observation,
    Timepoint,
    TimepointStudy,
)
from oncohybrid.store.models_teach import (
    CASE_STATUSES,
    CERTAINTIES,
    TeachAnswer,
    TeachCase,
    TeachCollection,
    TeachCollectionItem,
    TeachQuestion,
    TeachQuiz,
    TeachReview,
    TeachRevision,
)
from oncohybrid.teaching import (
    QuestionKind,
    SM2State,
    balanced_draw,
    quality_from_score,
    score_category,
    score_choice,
    score_clicks,
    score_measurement,
    score_ordinal,
    sm2_review,
)
from oncohybrid.teaching.scoring import (
    CRITERION_CATEGORIES,
    ORDINAL_SCALES,
    normalise_category,
    point_voxel,
)

__all__ = [
    "CASE_FORMAT", "CASE_STATUSES", "CERTAINTIES", "EDIT_FIELDS", "answer_question",
    "capture_case", "case_detail", "pending_marks", "question_tags", "scales", "parse_dates",
    "case_volumes", "click_labels", "export_case", "import_case", "list_cases",
    "logbook_entries", "trainee_record", "create_quiz", "quiz_view", "finish_quiz",
    "update_case", "set_status", "add_question", "add_key_image", "delete_question", "mark_answer",
    "create_collection", "add_to_collection", "list_collections", "teaching_dir",
    "cases_of_patient",
]

#: ``format`` of an exported ``case.json``; its ``version`` is :data:`CASE_VERSION`.
CASE_FORMAT = "oncohybrid-teaching-case"
CASE_VERSION = 1
CASE_JSON = "case.json"
#: The authoring fields a case keeps revisions of.
EDIT_FIELDS = ("title", "history", "findings", "diagnosis", "certainty", "discussion",
               "teaching_points", "references", "tags", "key_images")
#: Date shifts drawn for a case: one to ten years back, as services.deid does.
SHIFT_MIN_DAYS, SHIFT_MAX_DAYS = 365, 3650
_CATEGORY_CRITERIA = ("recist1.1", "mrecist", "irecist", "choi", "eortc", "lugano",
                      "lugano-pet", "lugano-ct", "lyric", "recip")
_CRITERION_NAMES = {"recist1.1": "RECIST 1.1", "percist": "PERCIST 1.0", "lugano": "Lugano 2014",
                    "mrecist": "mRECIST", "irecist": "iRECIST", "choi": "Choi", "eortc": "EORTC",
                    "lyric": "LYRIC", "recip": "RECIP 1.0", "krenning": "Krenning",
                    "lugano-pet": "Lugano 2014 (PET)", "lugano-ct": "Lugano 2014 (CT)"}
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_ZIP_MAX_FILES = 20000
_ZIP_MAX_BYTES = 8 * 2**30


def teaching_dir(settings: Settings) -> Path:
    """``<home>/teaching``: the case folders (``cases/<case_id>``) and temporary folders."""
    return settings.home / "teaching"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_case_id() -> str:
    return "TC-" + uuid.uuid4().hex[:16].upper()


# ---------------------------------------------------------------- de-identified JSON
def _shift_iso(text: str, days: int) -> str:
    def sub(m: re.Match[str]) -> str:
        try:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return m.group(0)
        return (d + dt.timedelta(days=days)).isoformat()

    return _ISO_DATE.sub(sub, text)


def _scrub(obj: Any, days: int, uid_map: dict[str, str], identifiers: Sequence[str],
           pseudonym: str) -> Any:
    """``obj`` with ISO dates shifted, UIDs replaced and identifiers replaced by the
    pseudonym, in keys and values at any depth (assessment JSON, traces)."""
    if isinstance(obj, dict):
        return {_scrub(k, days, uid_map, identifiers, pseudonym):
                _scrub(v, days, uid_map, identifiers, pseudonym) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrub(v, days, uid_map, identifiers, pseudonym) for v in obj]
    if isinstance(obj, str):
        if obj in uid_map:
            return uid_map[obj]
        out = _shift_iso(obj, days)
        for ident in identifiers:
            out = re.sub(re.escape(ident), pseudonym, out, flags=re.IGNORECASE)
        return out
    return obj


_TEXT_VRS = ("LO", "SH", "LT", "ST", "UT", "UC")
_COMPACT_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)")


def _shift_text_dates(ds: pydicom.Dataset, days: int) -> int:
    """Shift dates written inside free text (``YYYYMMDD`` or ``YYYY-MM-DD``) at any depth.

    The Annex E table keeps attributes it does not list, e.g. a SEG's (0070,0081)
    *Content Description* "Tracked lesions of 20240924" (our own SEG writer's); such a
    date would reveal the real scan date next to the shifted (0008,0020) *Study Date*.
    """
    count = 0

    def compact(m: re.Match[str]) -> str:
        try:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return m.group(0)
        return (d + dt.timedelta(days=days)).strftime("%Y%m%d")

    for elem in list(ds):
        if elem.VR == "SQ":
            for item in elem.value:
                count += _shift_text_dates(item, days)
        elif elem.VR in _TEXT_VRS and isinstance(elem.value, str) and elem.value:
            new = _shift_iso(_COMPACT_DATE.sub(compact, elem.value), days)
            if new != elem.value:
                elem.value = new
                count += 1
    return count


def _identifiers(patient: Patient) -> list[str]:
    found = [patient.patient_id]
    if patient.patient_name:
        name = str(patient.patient_name)
        found.append(name)
        found.extend(p for p in re.split(r"[\^= ]+", name) if len(p) >= 3)
    if patient.patient_birth_date:
        found.append(patient.patient_birth_date.isoformat())
    return sorted({f for f in found if f and len(f) >= 3}, key=len, reverse=True)


# ---------------------------------------------------------------- capture
def _timepoint_rows(s: Session, ppk: int, dates: Sequence[dt.date] | None
                    ) -> list[Timepoint]:
    tps = s.scalars(sa.select(Timepoint).where(Timepoint.patient_pk == ppk)
                    .order_by(Timepoint.scan_date)).all()
    if not tps:
        raise InputError("teach capture: the patient has no assessed timepoint; run "
                         "'oncohybrid assess PATIENT_ID' first")
    if not dates:
        return list(tps)
    by_date = {t.scan_date: t for t in tps}
    missing = [d.isoformat() for d in dates if d not in by_date]
    if missing:
        raise InputError(f"--timepoints: no assessed timepoint on {', '.join(missing)}; "
                         f"the patient's are {', '.join(d.isoformat() for d in by_date)}")
    return [by_date[d] for d in sorted(set(dates))]


def parse_dates(text: str | None) -> list[dt.date] | None:
    """``YYYY-MM-DD,YYYY-MM-DD`` → dates (None for an empty value)."""
    if not text or not text.strip():
        return None
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.append(dt.date.fromisoformat(part))
        except ValueError:
            raise InputError(f"--timepoints: {part!r} is not a date YYYY-MM-DD") from None
    return out


def _series_files(s: Session, series_uid: str | None) -> tuple[list[str], Series | None]:
    if not series_uid:
        return [], None
    series = s.scalar(sa.select(Series).where(Series.series_instance_uid == series_uid))
    if series is None:
        return [], None
    files = s.scalars(sa.select(Instance.file_path).where(Instance.series_pk == series.id)
                      .order_by(Instance.instance_number, Instance.id)).all()
    return list(files), series


class _CaseUids:
    """Original → replacement UIDs of one case (fresh ``2.25`` UIDs, kept in memory)."""

    def __init__(self) -> None:
        from oncohybrid.services.deid import new_uid

        self._new = new_uid
        self.map: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        uid = uid.strip().rstrip("\x00")
        hit = self.map.get(uid)
        if hit is None:
            hit = self.map[uid] = self._new()
        return hit


def capture_case(patient_id: str, *, title: str, timepoints: Sequence[dt.date] | None = None,
                 author: str = "cli", settings: Settings | None = None) -> dict[str, Any]:
    """Capture an assessed patient (all or the chosen timepoints) as a draft teaching case.

    Returns ``{"case_id", "title", "timepoints", "files", "lesions", "questions"}``.
    Raises :class:`InputError` for an unknown patient, an empty title, a date without an
    assessed timepoint or a patient never assessed.
    """
    from oncohybrid.deid import DEFAULT_OPTIONS, Deidentifier, PatientKey

    settings = settings or get_settings()
    title = (title or "").strip()
    if not title:
        raise InputError("--title: a case needs a title")
    if len(title) > 200:
        raise InputError(f"--title: at most 200 characters, got {len(title)}")
    case_id = _new_case_id()
    pseudonym = "TEACH-" + secrets.token_hex(4).upper()
    shift = -(SHIFT_MIN_DAYS + secrets.randbelow(SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1))
    uids = _CaseUids()
    root = teaching_dir(settings)
    (root / "cases").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".capture-", dir=root))
    final = root / "cases" / case_id
    try:
        with session_scope(settings) as s:
            patient = s.scalar(sa.select(Patient).where(Patient.patient_id == patient_id)
                               .order_by(Patient.id))
            if patient is None:
                raise InputError(f"teach capture: no stored patient with Patient ID "
                                 f"{patient_id!r}")
            idents = _identifiers(patient)
            engine = Deidentifier(PatientKey(pseudonym, shift), uids, DEFAULT_OPTIONS,
                                  identifiers=idents)
            tps = _timepoint_rows(s, patient.id, timepoints)
            files = 0
            gt_tps: list[dict[str, Any]] = []
            tracers: set[str] = set()
            modalities: set[str] = set()
            for pos, tp in enumerate(tps):
                ts = s.scalars(sa.select(TimepointStudy)
                               .where(TimepointStudy.timepoint_pk == tp.id)
                               .order_by(TimepointStudy.id)).all()
                study = next((t for t in ts if t.pet_series_uid), ts[0] if ts else None)
                if study is None:
                    raise InputError(f"teach capture: timepoint {tp.scan_date} has no study")
                entry: dict[str, Any] = {
                    "position": pos, "label": tp.label,
                    "date": (tp.scan_date + dt.timedelta(days=shift)).isoformat(),
                    "days_since_baseline": tp.days_since_baseline, "kind": study.kind,
                    "study_uid": uids(study.study_instance_uid),
                    "ct_series_uid": None, "pet_series_uid": None, "mask_seg": None,
                    "_original_date": tp.scan_date.isoformat(), "_tp_pk": tp.id}
                for mod, suid in (("CT", study.ct_series_uid), ("PT", study.pet_series_uid)):
                    paths, series = _series_files(s, suid)
                    if not paths:
                        continue
                    if series is not None and series.radiopharmaceutical:
                        tracers.add(series.radiopharmaceutical)
                    modalities.add(mod)
                    for path in paths:
                        ds = _read(path)
                        engine.apply(ds)
                        _shift_text_dates(ds, shift)
                        dest = tmp / f"tp{pos}" / mod / f"{ds.SOPInstanceUID}.dcm"
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        ds.save_as(dest, enforce_file_format=True)
                        files += 1
                    entry["ct_series_uid" if mod == "CT" else "pet_series_uid"] = uids(suid)
                if tp.mask_seg_path and entry["pet_series_uid"]:
                    from oncohybrid.services.masks import seg_path

                    src = seg_path(settings, tp.mask_seg_path)
                    if src.exists():
                        ds = _read(str(src))
                        engine.apply(ds)
                        _shift_text_dates(ds, shift)
                        dest = tmp / f"tp{pos}" / "SEG.dcm"
                        ds.save_as(dest, enforce_file_format=True)
                        entry["mask_seg"] = f"tp{pos}/SEG.dcm"
                        files += 1
                gt_tps.append(entry)
            if not files:
                raise InputError("teach capture: the chosen timepoints have no stored PET "
                                 "or CT image to copy")
            truth = _ground_truth(s, patient.id, gt_tps, shift, uids.map, idents, pseudonym)
            tags = _auto_tags(modalities, tracers, truth)
            case = TeachCase(case_id=case_id, title=title, status="draft", origin="capture",
                             author=author, history="", findings="", diagnosis="",
                             discussion="", teaching_points="", references="", tags=tags,
                             key_images=[], folder=f"cases/{case_id}", pseudonym=pseudonym,
                             ground_truth=truth, source_patient_pk=patient.id)
            s.add(case)
            s.flush()
            questions = _auto_questions(truth)
            for n, q in enumerate(questions):
                s.add(TeachQuestion(case_pk=case.id, position=n, **q))
            s.add(TeachRevision(case_pk=case.id, number=1, username=author,
                                note="captured", fields=_fields_of(case)))
            s.flush()
            tmp.rename(final)  # in place before the commit; removed below if it fails
            n_lesions = len(truth["lesions"])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if final.exists() and not _case_row_exists(settings, case_id):
            shutil.rmtree(final, ignore_errors=True)
        raise
    return {"case_id": case_id, "title": title, "timepoints": len(gt_tps), "files": files,
            "lesions": n_lesions, "questions": len(questions)}


def _case_row_exists(settings: Settings, case_id: str) -> bool:
    try:
        with session_scope(settings) as s:
            return s.scalar(sa.select(TeachCase.id).where(TeachCase.case_id == case_id)) \
                is not None
    except OncohybridError:
        return False


def _read(path: str) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise StoreError(f"teach capture: a stored file cannot be read: "
                         f"{type(exc).__name__}") from exc


def _ground_truth(s: Session, ppk: int, tps: list[dict[str, Any]], shift: int,
                  uid_map: dict[str, str], idents: Sequence[str], pseudonym: str
                  ) -> dict[str, Any]:
    """The case's answers: timepoints, lesions and observations, assessments (scrubbed)."""
    pos_of = {t["_tp_pk"]: t["position"] for t in tps}
    kept_dates = {t["_original_date"] for t in tps}
    lesions = s.scalars(sa.select(Lesion).where(Lesion.patient_pk == ppk)
                        .order_by(Lesion.id)).all()
    out_l = []
    for les in lesions:
        obs = s.scalars(sa.select(Observation).where(Observation.lesion_pk == les.id,
                                                     Observation.in_use)
                        .order_by(Observation.timepoint_pk)).all()
        obs_out = [{"timepoint": pos_of[o.timepoint_pk], "present": o.present,
                    **{k: v for k, v in o.measurements().items() if v is not None},
                    "centroid_lps_mm": o.centroid_lps_mm,
                    "mask_segment_number": o.mask_segment_number}
                   for o in obs if o.timepoint_pk in pos_of]
        if not obs_out:
            continue
        roles = {r.criterion: r.role for r in s.scalars(
            sa.select(LesionRole).where(LesionRole.lesion_pk == les.id))}
        out_l.append({"key": les.key, "site": les.site, "nodal": les.nodal, "roles": roles,
                      "observations": obs_out})
    assessments: dict[str, Any] = {}
    for rec in s.scalars(sa.select(AssessmentRecord).where(AssessmentRecord.patient_pk == ppk)
                         .order_by(AssessmentRecord.id)):
        result = dict(rec.result_json)
        result["timepoints"] = [t for t in result.get("timepoints", [])
                                if str(t.get("date")) in kept_dates]
        assessments[rec.criterion] = {"result": result, "case": rec.case_json}
    for t in tps:
        t.pop("_tp_pk", None)
    truth = {"timepoints": tps, "lesions": out_l,
             "assessments": _scrub(assessments, shift, uid_map, idents, pseudonym)}
    for t in tps:
        t.pop("_original_date", None)
    return truth


def _auto_tags(modalities: set[str], tracers: set[str], truth: dict[str, Any]) -> list[str]:
    tags = []
    if {"CT", "PT"} <= modalities:
        tags.append("modality:PET/CT")
    else:
        tags.extend(f"modality:{m.replace('PT', 'PET')}" for m in sorted(modalities))
    tags.extend(f"tracer:{t}" for t in sorted(tracers))
    tags.extend(f"organ:{site}" for site in sorted({les["site"] for les in truth["lesions"]}))
    tags.extend(f"criterion:{c}" for c in sorted(truth["assessments"]))
    return tags


def _result_at(truth: dict[str, Any], criterion: str, pos: int) -> dict[str, Any] | None:
    a = truth["assessments"].get(criterion)
    if a is None:
        return None
    date = truth["timepoints"][pos]["date"]
    return next((t for t in a["result"].get("timepoints", []) if t.get("date") == date), None)


def _auto_questions(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Questions generated from the ground truth (the author may delete or add)."""
    qs: list[dict[str, Any]] = []
    tps = truth["timepoints"]
    last = len(tps) - 1
    when = f"{tps[last]['label']} ({tps[last]['date']})"
    if last > 0:
        for crit in truth["assessments"]:
            r = _result_at(truth, crit, last)
            if r is None or not r.get("overall") or r.get("overall") == "baseline":
                continue
            if crit == "percist":
                kind = QuestionKind.PERCIST
            elif crit in _CATEGORY_CRITERIA:
                kind = QuestionKind.CATEGORY
            else:
                continue
            name = _CRITERION_NAMES.get(crit, crit)
            options = list(CRITERION_CATEGORIES.get(crit, ()))
            if normalise_category(r["overall"]) not in {normalise_category(o)
                                                        for o in options}:
                options.append(str(r["overall"]))  # a rarer code of the engine
            qs.append({"kind": kind.value,
                       "prompt": f"Under {name}, what is the overall response at {when}?",
                       "params": {"criterion": crit, "timepoint": last, "options": options},
                       "reference": {"answer": r["overall"], "trace": r.get("trace", [])}})
    for pos in (last,):
        r = _result_at(truth, "lugano", pos)
        if r is not None and r.get("max_deauville") is not None:
            trace = [t for t in r.get("trace", []) if "Deauville" in t]
            qs.append({"kind": QuestionKind.DEAUVILLE.value,
                       "prompt": f"What is the Deauville score (5-point scale) of the most "
                                 f"avid lesion at {tps[pos]['label']} ({tps[pos]['date']})?",
                       "params": {"criterion": "lugano", "timepoint": pos},
                       "reference": {"answer": int(r["max_deauville"]), "trace": trace}})
        r = _result_at(truth, "krenning", pos)
        if r is not None and str(r.get("overall", "")).isdigit():
            qs.append({"kind": QuestionKind.KRENNING.value,
                       "prompt": f"What is the patient's Krenning score at "
                                 f"{tps[pos]['label']} ({tps[pos]['date']})?",
                       "params": {"criterion": "krenning", "timepoint": pos},
                       "reference": {"answer": int(r["overall"]), "trace": r.get("trace", [])}})
    hot = _hottest(truth, 0)
    if hot is not None and tps[0].get("mask_seg"):
        key, obs = hot
        qs.append({"kind": QuestionKind.CLICK.value,
                   "prompt": f"Click the most avid lesion (highest SUVmax) on the "
                             f"{tps[0]['label']} PET/CT ({tps[0]['date']}).",
                   "params": {"timepoint": 0, "lesions": [key]},
                   "reference": {"answer": key,
                                 "trace": [f"{key} ({_site(truth, key)}): SUVmax "
                                           f"{obs['suv_max']:.2f}, the highest at this "
                                           f"timepoint"]}})
        if obs.get("ld_mm"):
            qs.append({"kind": QuestionKind.MEASUREMENT.value,
                       "prompt": f"Measure the long axis (mm) of lesion {key} "
                                 f"({_site(truth, key)}) on the {tps[0]['label']} CT.",
                       "params": {"timepoint": 0, "lesion": key, "tolerance_mm": 2.0,
                                  "tolerance_pct": 10.0},
                       "reference": {"answer": round(float(obs["ld_mm"]), 1),
                                     "trace": ["reference: the long axis stored in the "
                                               "record (method in the lesion's provenance)"]}})
    return qs


def _site(truth: dict[str, Any], key: str) -> str:
    return next((les["site"] for les in truth["lesions"] if les["key"] == key), "?")


def _hottest(truth: dict[str, Any], pos: int) -> tuple[str, dict[str, Any]] | None:
    best = None
    for les in truth["lesions"]:
        for o in les["observations"]:
            if o["timepoint"] == pos and o.get("present") and o.get("suv_max") is not None \
                    and o.get("mask_segment_number") and (best is None
                                                         or o["suv_max"] > best[1]["suv_max"]):
                best = (les["key"], o)
    return best


# ---------------------------------------------------------------- listing and detail
def _fields_of(case: TeachCase) -> dict[str, Any]:
    return {f: getattr(case, f) for f in EDIT_FIELDS}


def _case_summary(case: TeachCase, n_questions: int) -> dict[str, Any]:
    return {"case_id": case.case_id, "title": case.title, "status": case.status,
            "origin": case.origin, "author": case.author, "reviewer": case.reviewer,
            "tags": list(case.tags or []), "certainty": case.certainty,
            "timepoints": len(case.ground_truth.get("timepoints", [])),
            "lesions": len(case.ground_truth.get("lesions", [])),
            "questions": n_questions, "created_at": case.created_at.isoformat(),
            "published_at": case.published_at.isoformat() if case.published_at else None}


def _matches(case: TeachCase, q: str, tags: Sequence[str]) -> bool:
    case_tags = {t.lower() for t in case.tags or []}
    if any(t.lower() not in case_tags for t in tags):
        return False
    if not q:
        return True
    text = " ".join([case.case_id, case.title, case.history, case.findings, case.diagnosis,
                     case.discussion, case.teaching_points, case.references,
                     " ".join(case.tags or [])]).lower()
    return all(word in text for word in q.lower().split())


def list_cases(settings: Settings | None = None, *, q: str = "", tags: Sequence[str] = (),
               statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Cases (newest first) matching every word of ``q`` (title, authoring text, tags)
    and every tag; ``statuses`` None means all."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        counts = dict(s.execute(sa.select(TeachQuestion.case_pk, sa.func.count())
                                .group_by(TeachQuestion.case_pk)).all())
        stmt = sa.select(TeachCase).order_by(TeachCase.created_at.desc(), TeachCase.id.desc())
        if statuses is not None:
            stmt = stmt.where(TeachCase.status.in_(list(statuses)))
        return [_case_summary(c, counts.get(c.id, 0)) for c in s.scalars(stmt)
                if _matches(c, q, tags)]


def cases_of_patient(settings: Settings, patient_pk: int) -> list[dict[str, Any]]:
    """Cases captured from a clinical patient (for the patient page)."""
    with session_scope(settings) as s:
        return [{"case_id": c.case_id, "title": c.title, "status": c.status}
                for c in s.scalars(sa.select(TeachCase)
                                   .where(TeachCase.source_patient_pk == patient_pk)
                                   .order_by(TeachCase.id))]


def _case(s: Session, case_id: str) -> TeachCase:
    case = s.scalar(sa.select(TeachCase).where(TeachCase.case_id == case_id))
    if case is None:
        raise StoreError(f"teaching case {case_id!r}: not found")
    return case


def _key_index(case: TeachCase, pos: int) -> int | None:
    return next((int(k["index"]) for k in case.key_images or []
                 if k.get("timepoint") == pos and isinstance(k.get("index"), int)), None)


def _question_dict(q: TeachQuestion, reveal: bool) -> dict[str, Any]:
    out = {"pk": q.id, "position": q.position, "kind": q.kind, "prompt": q.prompt,
           "params": _public_params(q)}
    if reveal:
        out["reference"] = q.reference
    return out


def _public_params(q: TeachQuestion) -> dict[str, Any]:
    """Question parameters a trainee may see (never the lesion to click, nor right options)."""
    p = dict(q.params or {})
    p.pop("lesions", None)
    p.pop("lesion_key", None)
    p.pop("correct", None)
    return p


def case_detail(case_id: str, settings: Settings | None = None, *, reveal: bool = True
                ) -> dict[str, Any]:
    """A case with its authoring fields, questions and revisions; with ``reveal`` False
    (unknown-case mode) only the title, history, timepoints and question prompts."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        case = _case(s, case_id)
        qs = s.scalars(sa.select(TeachQuestion).where(TeachQuestion.case_pk == case.id)
                       .order_by(TeachQuestion.position, TeachQuestion.id)).all()
        out = _case_summary(case, len(qs))
        out["history"] = case.history
        out["timepoint_list"] = [{"position": t["position"], "label": t["label"],
                                  "date": t["date"], "kind": t.get("kind"),
                                  "has_ct": bool(t.get("ct_series_uid")),
                                  "has_pet": bool(t.get("pet_series_uid")),
                                  "key_index": _key_index(case, t["position"])}
                                 for t in case.ground_truth.get("timepoints", [])]
        out["questions"] = [_question_dict(q, reveal) for q in qs]
        out["source_patient_pk"] = case.source_patient_pk
        if not reveal:
            return out
        out.update({f: getattr(case, f) for f in EDIT_FIELDS})
        out["ground_truth"] = case.ground_truth
        out["revisions"] = [{"number": r.number, "username": r.username, "note": r.note,
                             "created_at": r.created_at.isoformat(), "fields": r.fields}
                            for r in s.scalars(sa.select(TeachRevision)
                                               .where(TeachRevision.case_pk == case.id)
                                               .order_by(TeachRevision.number.desc()))]
        return out


# ---------------------------------------------------------------- authoring
def _clean_tags(tags: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in tags:
        t = " ".join(str(raw).split())
        if not t:
            continue
        if len(t) > 80:
            raise InputError(f"tags: {t[:20]!r}… is longer than 80 characters")
        if t.lower() not in {x.lower() for x in out}:
            out.append(t)
    return out


def update_case(case_id: str, changes: dict[str, Any], *, username: str, note: str = "",
                settings: Settings | None = None) -> int:
    """Save authoring fields as a new revision; returns its number (unchanged: the last)."""
    settings = settings or get_settings()
    unknown = set(changes) - set(EDIT_FIELDS)
    if unknown:
        raise InputError(f"case fields: unknown {', '.join(sorted(unknown))}")
    if "title" in changes:
        changes["title"] = str(changes["title"]).strip()
        if not changes["title"] or len(changes["title"]) > 200:
            raise InputError("title: 1 to 200 characters")
    if changes.get("certainty") in ("", None):
        changes["certainty"] = None
    elif "certainty" in changes and changes["certainty"] not in CERTAINTIES:
        raise InputError(f"certainty: one of {', '.join(CERTAINTIES)}, "
                         f"got {changes['certainty']!r}")
    if "tags" in changes:
        changes["tags"] = _clean_tags(changes["tags"])
    with session_scope(settings) as s:
        case = _case(s, case_id)
        before = _fields_of(case)
        for k, v in changes.items():
            setattr(case, k, v)
        after = _fields_of(case)
        last = s.scalar(sa.select(sa.func.max(TeachRevision.number))
                        .where(TeachRevision.case_pk == case.id)) or 0
        if after == before:
            return last
        case.updated_at = _utcnow()
        s.add(TeachRevision(case_pk=case.id, number=last + 1, username=username,
                            note=note[:500], fields=after))
        return last + 1


def add_key_image(case_id: str, timepoint: int, index: int, note: str = "", *,
                  username: str, settings: Settings | None = None) -> int:
    """Mark an axial slice of a timepoint as a key image (a new revision); returns its
    number. Viewers of the case open at the first key image of their timepoint."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        case = _case(s, case_id)
        tps = case.ground_truth.get("timepoints", [])
        images = list(case.key_images or [])
    if not 0 <= timepoint < len(tps):
        raise InputError(f"key image: timepoint {timepoint} outside 0..{len(tps) - 1}")
    count = case_volumes(case_id, timepoint, settings).shape[0]
    if not 0 <= index < count:
        raise InputError(f"key image: slice {index} outside 0..{count - 1}")
    entry = {"timepoint": timepoint, "orientation": "axial", "index": index,
             "note": " ".join(note.split())[:300]}
    images = [k for k in images if (k.get("timepoint"), k.get("index")) != (timepoint, index)]
    return update_case(case_id, {"key_images": [*images, entry]}, username=username,
                       note="key image", settings=settings)


def set_status(case_id: str, status: str, *, username: str,
               settings: Settings | None = None) -> None:
    """Move a case along draft → in review → published (or back); publishing records
    the reviewer."""
    settings = settings or get_settings()
    if status not in CASE_STATUSES:
        raise InputError(f"status: one of {', '.join(CASE_STATUSES)}, got {status!r}")
    with session_scope(settings) as s:
        case = _case(s, case_id)
        if status == "published":
            if not case.title.strip():
                raise InputError("a case needs a title before it is published")
            case.reviewer = username
            case.published_at = _utcnow()
        case.status = status
        case.updated_at = _utcnow()
        last = s.scalar(sa.select(sa.func.max(TeachRevision.number))
                        .where(TeachRevision.case_pk == case.id)) or 0
        s.add(TeachRevision(case_pk=case.id, number=last + 1, username=username,
                            note=f"status: {status}", fields=_fields_of(case)))


def add_question(case_id: str, kind: str, prompt: str, params: dict[str, Any],
                 reference: dict[str, Any], settings: Settings | None = None) -> int:
    """Add an authored question (multiple choice or free text); returns its key."""
    settings = settings or get_settings()
    try:
        qk = QuestionKind(kind)
    except ValueError:
        raise InputError(f"kind: one of {', '.join(k.value for k in QuestionKind)}, "
                         f"got {kind!r}") from None
    prompt = prompt.strip()
    if not prompt:
        raise InputError("question: the prompt is empty")
    if qk is QuestionKind.CHOICE:
        options = [o for o in (str(x).strip() for x in params.get("options", [])) if o]
        correct = [o for o in (str(x).strip() for x in reference.get("answer", [])) if o]
        if len(options) < 2:
            raise InputError("multiple choice: give at least two options")
        if not correct or any(c not in options for c in correct):
            raise InputError("multiple choice: the right options must be among the options")
        params = {"options": options, "multiple": len(correct) > 1}
        reference = {"answer": correct, "trace": list(reference.get("trace", []))}
    elif qk is not QuestionKind.FREE_TEXT:
        raise InputError("only multiple-choice and free-text questions are authored by "
                         "hand; the others are generated from the ground truth at capture")
    with session_scope(settings) as s:
        case = _case(s, case_id)
        pos = (s.scalar(sa.select(sa.func.max(TeachQuestion.position))
                        .where(TeachQuestion.case_pk == case.id)) or 0) + 1
        q = TeachQuestion(case_pk=case.id, position=pos, kind=qk.value, prompt=prompt,
                          params=params, reference=reference)
        s.add(q)
        s.flush()
        return q.id


def delete_question(case_id: str, question_pk: int, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    with session_scope(settings) as s:
        case = _case(s, case_id)
        q = s.get(TeachQuestion, question_pk)
        if q is None or q.case_pk != case.id:
            raise StoreError(f"question {question_pk}: not in case {case_id}")
        s.delete(q)


# ---------------------------------------------------------------- collections
def create_collection(name: str, *, kind: str = "course", description: str = "",
                      username: str, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    name = " ".join(name.split())
    if not name or len(name) > 128:
        raise InputError("collection name: 1 to 128 characters")
    if kind not in ("course", "case-of-the-week", "playlist"):
        raise InputError(f"collection kind: course, case-of-the-week or playlist, got {kind!r}")
    with session_scope(settings) as s:
        if s.scalar(sa.select(TeachCollection.id).where(TeachCollection.name == name)):
            raise InputError(f"collection {name!r} exists already")
        c = TeachCollection(name=name, kind=kind, description=description, created_by=username)
        s.add(c)
        s.flush()
        return c.id


def add_to_collection(collection_pk: int, case_id: str,
                      settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    with session_scope(settings) as s:
        if s.get(TeachCollection, collection_pk) is None:
            raise StoreError(f"collection {collection_pk}: not found")
        case = _case(s, case_id)
        if s.scalar(sa.select(TeachCollectionItem.id).where(
                TeachCollectionItem.collection_pk == collection_pk,
                TeachCollectionItem.case_pk == case.id)):
            return
        pos = (s.scalar(sa.select(sa.func.max(TeachCollectionItem.position))
                        .where(TeachCollectionItem.collection_pk == collection_pk)) or 0) + 1
        s.add(TeachCollectionItem(collection_pk=collection_pk, case_pk=case.id, position=pos))


def list_collections(settings: Settings | None = None, *, published_only: bool = False
                     ) -> list[dict[str, Any]]:
    settings = settings or get_settings()
    with session_scope(settings) as s:
        out = []
        for c in s.scalars(sa.select(TeachCollection).order_by(TeachCollection.name)):
            rows = s.execute(sa.select(TeachCase.case_id, TeachCase.title, TeachCase.status)
                             .join(TeachCollectionItem, TeachCollectionItem.case_pk == TeachCase.id)
                             .where(TeachCollectionItem.collection_pk == c.id)
                             .order_by(TeachCollectionItem.position)).all()
            out.append({"pk": c.id, "name": c.name, "kind": c.kind,
                        "description": c.description,
                        "cases": [{"case_id": a, "title": b, "status": st} for a, b, st in rows
                                  if not published_only or st == "published"]})
        return out


# ---------------------------------------------------------------- export / import
def export_case(case_id: str, out: str | Path, settings: Settings | None = None
                ) -> dict[str, Any]:
    """Write the case as a zip: ``case.json`` (authoring, questions, ground truth, file
    list with SHA-256) and the de-identified DICOM files. Returns ``{"case_id", "out",
    "files"}``."""
    settings = settings or get_settings()
    out = Path(out)
    if out.exists() and out.is_dir():
        raise InputError(f"--out {out}: is a folder; give a file name such as case.zip")
    if not out.parent.exists():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    with session_scope(settings) as s:
        if s.scalar(sa.select(TeachCase.id).where(TeachCase.case_id == case_id)) is None:
            raise InputError(f"teaching case {case_id!r}: not found (see 'oncohybrid teach ls')")
        case = _case(s, case_id)
        qs = s.scalars(sa.select(TeachQuestion).where(TeachQuestion.case_pk == case.id)
                       .order_by(TeachQuestion.position, TeachQuestion.id)).all()
        folder = teaching_dir(settings) / case.folder
        doc = {"format": CASE_FORMAT, "version": CASE_VERSION, "case_id": case.case_id,
               "status": case.status, "author": case.author, "reviewer": case.reviewer,
               "pseudonym": case.pseudonym,
               **{f: getattr(case, f) for f in EDIT_FIELDS},
               "ground_truth": {k: v for k, v in case.ground_truth.items()
                                if not k.startswith("_")},
               "questions": [{"kind": q.kind, "prompt": q.prompt, "params": q.params,
                              "reference": q.reference} for q in qs]}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise StoreError(f"teaching case {case_id}: its files are missing from {folder}")
    doc["files"] = [{"path": p.relative_to(folder).as_posix(), "sha256": _sha256(p)}
                    for p in files]
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(CASE_JSON, json.dumps(doc, indent=1, sort_keys=True))
            for p in files:
                zf.write(p, p.relative_to(folder).as_posix())
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"case_id": case_id, "out": str(out), "files": len(files)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_case_zip(path: Path) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    """Open and check a case zip completely before anything is written (see import)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a zip file (corrupt or another format)")
    try:
        zf = zipfile.ZipFile(path)
        bad = zf.testzip()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError,
            NotImplementedError) as exc:
        raise InputError(f"{path}: corrupt zip: {exc}") from None
    if bad is not None:
        zf.close()
        raise InputError(f"{path}: corrupt zip: member {bad!r} fails its CRC check")
    try:
        return zf, _check_case_zip(path, zf)
    except BaseException:
        zf.close()
        raise


def _check_case_zip(path: Path, zf: zipfile.ZipFile) -> dict[str, Any]:
    infos = zf.infolist()
    if len(infos) > _ZIP_MAX_FILES or sum(i.file_size for i in infos) > _ZIP_MAX_BYTES:
        raise InputError(f"{path}: too large for a teaching case")
    names = {i.filename for i in infos if not i.is_dir()}
    if CASE_JSON not in names:
        raise InputError(f"{path}: not an oncohybrid teaching case (no {CASE_JSON}); a "
                         "foreign zip is refused")
    try:
        doc = json.loads(zf.read(CASE_JSON).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {CASE_JSON} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != CASE_FORMAT:
        raise InputError(f"{path}: {CASE_JSON} is not an oncohybrid teaching case "
                         f"(format {doc.get('format') if isinstance(doc, dict) else None!r})")
    if doc.get("version") != CASE_VERSION:
        raise InputError(f"{path}: {CASE_JSON} version {doc.get('version')!r} is not "
                         f"supported (expected {CASE_VERSION})")
    case_id = doc.get("case_id")
    if not isinstance(case_id, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", case_id):
        raise InputError(f"{path}: {CASE_JSON} case_id {case_id!r} is not a valid case id")
    for key, typ in (("title", str), ("ground_truth", dict), ("questions", list),
                     ("files", list), ("tags", list)):
        if not isinstance(doc.get(key), typ):
            raise InputError(f"{path}: {CASE_JSON} field {key!r} is missing or not a "
                             f"{typ.__name__}")
    listed: dict[str, str] = {}
    for f in doc["files"]:
        p = f.get("path") if isinstance(f, dict) else None
        if not isinstance(p, str) or not _safe_member(p):
            raise InputError(f"{path}: {CASE_JSON} lists an unsafe file path {p!r}")
        listed[p] = str(f.get("sha256", ""))
    extra = names - set(listed) - {CASE_JSON}
    if extra:
        raise InputError(f"{path}: member {sorted(extra)[0]!r} is not listed in {CASE_JSON}")
    for p, digest in listed.items():
        if p not in names:
            raise InputError(f"{path}: {CASE_JSON} lists {p!r}, which the zip lacks")
        data = zf.read(p)
        if hashlib.sha256(data).hexdigest() != digest:
            raise InputError(f"{path}: {p!r} does not match its SHA-256 in {CASE_JSON}")
        try:
            import io

            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise InputError(f"{path}: {p!r} is not a DICOM file: {exc}") from None
        if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
            raise InputError(f"{path}: {p!r} is not de-identified ((0012,0062) Patient "
                             "Identity Removed is not YES); identified images are refused")
    for q in doc["questions"]:
        if not isinstance(q, dict) or q.get("kind") not in {k.value for k in QuestionKind} \
                or not isinstance(q.get("prompt"), str):
            raise InputError(f"{path}: {CASE_JSON} holds a question of unknown kind "
                             f"{q.get('kind') if isinstance(q, dict) else q!r}")
    return doc


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name \
        and p.parts[0].startswith("tp")


def import_case(zip_path: str | Path, *, username: str = "cli",
                settings: Settings | None = None) -> dict[str, Any]:
    """Import another site's case zip; ``{"case_id", "status": "imported"|"already present"}``.

    Everything is checked first (zip integrity, ``case.json`` format, every file listed
    with its SHA-256, DICOM and de-identified); the files are then extracted into a
    temporary folder, moved into place and the rows added in one transaction, so a
    failure leaves neither files nor rows. An imported case starts as a draft.
    """
    settings = settings or get_settings()
    path = Path(zip_path)
    zf, doc = _read_case_zip(path)
    case_id = doc["case_id"]
    with zf:
        if _case_row_exists(settings, case_id):
            return {"case_id": case_id, "status": "already present"}
        root = teaching_dir(settings)
        (root / "cases").mkdir(parents=True, exist_ok=True)
        final = root / "cases" / case_id
        if final.exists():  # a folder without a row: left by a crash; replace it
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
        try:
            for f in doc["files"]:
                dest = tmp / f["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(f["path"]))
            with session_scope(settings) as s:
                fields = {k: doc.get(k) for k in EDIT_FIELDS if k in doc}
                for k in ("history", "findings", "diagnosis", "discussion", "teaching_points",
                          "references"):
                    fields[k] = str(fields.get(k) or "")
                fields["tags"] = _clean_tags(fields.get("tags") or [])
                fields["key_images"] = list(fields.get("key_images") or [])
                if fields.get("certainty") not in CERTAINTIES:
                    fields["certainty"] = None
                case = TeachCase(case_id=case_id, status="draft", origin="import",
                                 author=str(doc.get("author") or "imported")[:64],
                                 folder=f"cases/{case_id}",
                                 pseudonym=str(doc.get("pseudonym") or "")[:64],
                                 ground_truth=doc["ground_truth"], **fields)
                s.add(case)
                s.flush()
                for n, q in enumerate(doc["questions"]):
                    s.add(TeachQuestion(case_pk=case.id, position=n, kind=q["kind"],
                                        prompt=q["prompt"], params=q.get("params") or {},
                                        reference=q.get("reference") or {}))
                s.add(TeachRevision(case_pk=case.id, number=1, username=username,
                                    note="imported", fields=_fields_of(case)))
                s.flush()
                tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.exists() and not _case_row_exists(settings, case_id):
                shutil.rmtree(final, ignore_errors=True)
            raise
    return {"case_id": case_id, "status": "imported"}


# ---------------------------------------------------------------- case images
_vol_cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
_vol_lock = threading.Lock()
_VOL_CACHE_SIZE = 4


def _case_tp(settings: Settings, case_id: str, pos: int) -> tuple[Path, dict[str, Any]]:
    with session_scope(settings) as s:
        case = _case(s, case_id)
        tps = case.ground_truth.get("timepoints", [])
        folder = teaching_dir(settings) / case.folder
    if not 0 <= pos < len(tps):
        raise InputError(f"timepoint {pos}: the case has timepoints 0..{len(tps) - 1}")
    return folder, tps[pos]


def case_volumes(case_id: str, pos: int, settings: Settings | None = None) -> Any:
    """The case timepoint's de-identified CT and PET (SUVbw) as viewer volumes
    (:class:`oncohybrid.services.viewer.StudyVolumes`, display grid = CT grid)."""
    from oncohybrid.dicom.suv import suv_volume
    from oncohybrid.dicom.volume import load_series
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.services.viewer import StudyVolumes

    settings = settings or get_settings()
    key = (case_id, pos)
    with _vol_lock:
        hit = _vol_cache.get(key)
        if hit is not None:
            _vol_cache.move_to_end(key)
            return hit
    folder, tp = _case_tp(settings, case_id, pos)
    ct_files = sorted((folder / f"tp{pos}" / "CT").glob("*.dcm"))
    pt_files = sorted((folder / f"tp{pos}" / "PT").glob("*.dcm"))
    if not ct_files and not pt_files:
        raise StoreError(f"teaching case {case_id}: timepoint {pos} has no image files")
    ct = load_series(ct_files) if ct_files else None
    pet = suv_volume(pt_files)[0] if pt_files else None
    grid = ct if ct is not None else pet
    pet_on_grid = None if pet is None else (pet.array if ct is None
                                            else resample_to(pet, ct).array)
    p99 = float(np.percentile(pet.array, 99.9)) if pet is not None else 0.0
    vols = StudyVolumes(f"{case_id}|{pos}", None, None, ct, pet, pet_on_grid, grid,
                        suv_p99=p99)
    with _vol_lock:
        _vol_cache[key] = vols
        while len(_vol_cache) > _VOL_CACHE_SIZE:
            _vol_cache.popitem(last=False)
    return vols


def click_labels(case_id: str, pos: int, settings: Settings | None = None
                 ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """The ground-truth lesion masks of a case timepoint on its PET grid: (labels, PET
    affine, label → lesion key); labels are the SEG's segment numbers."""
    from oncohybrid.report.seg import read_segment_masks

    settings = settings or get_settings()
    vols = case_volumes(case_id, pos, settings)
    folder, tp = _case_tp(settings, case_id, pos)
    if vols.extras.get("labels") is not None:
        return vols.extras["labels"]
    if not tp.get("mask_seg") or vols.pet is None:
        raise InputError(f"teaching case {case_id}: timepoint {pos} has no lesion masks")
    with session_scope(settings) as s:
        truth = _case(s, case_id).ground_truth
    pet_ds = [pydicom.dcmread(p, stop_before_pixels=True)
              for p in sorted((folder / f"tp{pos}" / "PT").glob("*.dcm"))]
    masks = read_segment_masks(folder / tp["mask_seg"], pet_ds)
    names: dict[int, str] = {}
    for les in truth["lesions"]:
        for o in les["observations"]:
            if o["timepoint"] == pos and o.get("mask_segment_number"):
                names[int(o["mask_segment_number"])] = les["key"]
    labels = np.zeros(tuple(vols.pet.spatial_shape), np.int32)
    for number, mask in masks.items():
        if number in names:
            labels[mask & (labels == 0)] = number
    result = (labels, np.asarray(vols.pet.affine, float), names)
    vols.extras["labels"] = result
    return result


# ---------------------------------------------------------------- quizzes
def _question_tags(q: TeachQuestion, case: TeachCase) -> list[str]:
    tags = [t for t in (case.tags or []) if not t.lower().startswith("criterion:")]
    crit = (q.params or {}).get("criterion")
    if crit:
        tags.append(f"criterion:{crit}")
    tags.append(f"kind:{q.kind}")
    return tags


def create_quiz(username: str, *, mode: str = "practice", tags: Sequence[str] = (),
                n: int = 10, time_limit_s: int | None = None, case_id: str | None = None,
                seed: int | None = None, settings: Settings | None = None) -> int:
    """A new quiz for ``username``; returns its key.

    ``practice`` and ``exam`` draw ``n`` questions of published cases balanced over
    ``tags`` (case tags, ``criterion:<name>``, ``kind:<kind>``) without replacement;
    ``exam`` shows the answers at the end and refuses answers after ``time_limit_s``;
    ``review`` takes the trainee's SM-2 questions due today; ``case`` is one unknown
    case (its questions in order, answers revealed when the trainee commits).
    """
    settings = settings or get_settings()
    if mode not in ("practice", "exam", "review", "case"):
        raise InputError(f"mode: practice, exam, review or case, got {mode!r}")
    if time_limit_s is not None and not 30 <= time_limit_s <= 4 * 3600:
        raise InputError(f"time limit: 30 s to 4 h, got {time_limit_s} s")
    with session_scope(settings) as s:
        if mode == "case":
            if not case_id:
                raise InputError("an unknown-case quiz needs a case")
            case = _case(s, case_id)
            pks = list(s.scalars(sa.select(TeachQuestion.id)
                                 .where(TeachQuestion.case_pk == case.id)
                                 .order_by(TeachQuestion.position, TeachQuestion.id)))
            title = f"Unknown case: {case.title}"
        else:
            rows = s.execute(sa.select(TeachQuestion, TeachCase)
                             .join(TeachCase, TeachQuestion.case_pk == TeachCase.id)
                             .where(TeachCase.status == "published")
                             .order_by(TeachQuestion.id)).all()
            if mode == "review":
                due = set(s.scalars(sa.select(TeachReview.question_pk).where(
                    TeachReview.username == username,
                    TeachReview.due <= dt.date.today())))
                rows = [r for r in rows if r[0].id in due]
            items = [(q.id, _question_tags(q, c)) for q, c in rows]
            wanted = _clean_tags(tags)
            if wanted:
                lower = {t.lower() for t in wanted}
                items = [(k, [t for t in ts if t.lower() in lower] or ts) for k, ts in items
                         if any(t.lower() in lower for t in ts)]
                wanted = [t for t in wanted]
                # match the items' own spelling of each tag
                spell = {t.lower(): t for _, ts in items for t in ts}
                wanted = [spell.get(t.lower(), t) for t in wanted]
            pks = balanced_draw(items, n, tags=wanted or None,
                                rng=random.Random(seed)) if items else []
            title = {"practice": "Practice quiz", "exam": "Timed exam",
                     "review": "Spaced-repetition review"}[mode]
            if wanted:
                title += ": " + ", ".join(wanted)
        if not pks:
            raise InputError("no question matches (published cases, these tags"
                             + (", due for review today" if mode == "review" else "") + ")")
        quiz = TeachQuiz(username=username, mode=mode, title=title[:200], question_pks=pks,
                         params={"tags": list(tags), "n": n, "case_id": case_id},
                         time_limit_s=time_limit_s if mode == "exam" else None)
        s.add(quiz)
        s.flush()
        return quiz.id


def _quiz(s: Session, quiz_pk: int, username: str | None) -> TeachQuiz:
    quiz = s.get(TeachQuiz, quiz_pk)
    if quiz is None or (username is not None and quiz.username != username):
        raise StoreError(f"quiz {quiz_pk}: not found")
    return quiz


def _reveal_now(quiz: TeachQuiz) -> bool:
    """Feedback per answer at once in practice and review; at the end in exam and case."""
    return quiz.mode in ("practice", "review") or quiz.finished_at is not None


def _deadline(quiz: TeachQuiz) -> dt.datetime | None:
    if not quiz.time_limit_s:
        return None
    created = quiz.created_at if quiz.created_at.tzinfo else quiz.created_at.replace(
        tzinfo=dt.UTC)
    return created + dt.timedelta(seconds=quiz.time_limit_s)


def quiz_view(quiz_pk: int, username: str | None, settings: Settings | None = None
              ) -> dict[str, Any]:
    """A quiz with its questions (prompt, case, history, timepoint) and, where they may
    be shown, each answer's score and feedback."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        quiz = _quiz(s, quiz_pk, username)
        answers = {a.question_pk: a for a in s.scalars(
            sa.select(TeachAnswer).where(TeachAnswer.quiz_pk == quiz.id))}
        reveal = _reveal_now(quiz)
        items = []
        for pk in quiz.question_pks:
            q = s.get(TeachQuestion, pk)
            if q is None:
                continue
            case = s.get(TeachCase, q.case_pk)
            item = _question_dict(q, False)
            tps = case.ground_truth.get("timepoints", [])
            pos = (q.params or {}).get("timepoint")
            item.update(case_id=case.case_id, case_title=case.title if quiz.mode != "case"
                        or reveal else "Unknown case", history=case.history,
                        timepoint=tps[pos] if isinstance(pos, int) and pos < len(tps) else None)
            a = answers.get(pk)
            if a is not None:
                item["answer"] = a.answer
                item["answered"] = True
                if reveal:
                    item["result"] = a.result
                    item["score"] = a.score
                    item["correct"] = a.correct
                    item["reference"] = q.reference
                    item["teaching_points"] = case.teaching_points
                    item["diagnosis"] = case.diagnosis
            items.append(item)
        scored = [a.score for a in answers.values() if a.score is not None]
        deadline = _deadline(quiz)
        unknown = None
        if quiz.mode == "case" and quiz.params.get("case_id"):
            case = s.scalar(sa.select(TeachCase)
                            .where(TeachCase.case_id == quiz.params["case_id"]))
            if case is not None:
                unknown = {"case_id": case.case_id, "history": case.history,
                           "timepoints": [{"position": t["position"], "label": t["label"],
                                           "date": t["date"],
                                           "key_index": _key_index(case, t["position"])}
                                          for t in case.ground_truth.get("timepoints", [])]}
                if reveal:
                    unknown.update(title=case.title, diagnosis=case.diagnosis,
                                   certainty=case.certainty, findings=case.findings,
                                   discussion=case.discussion,
                                   teaching_points=case.teaching_points)
        return {"pk": quiz.id, "title": quiz.title, "mode": quiz.mode,
                "username": quiz.username, "created_at": quiz.created_at.isoformat(),
                "finished_at": quiz.finished_at.isoformat() if quiz.finished_at else None,
                "deadline": deadline.isoformat() if deadline else None,
                "reveal": reveal, "questions": items, "answered": len(answers),
                "unknown_case": unknown,
                "total": len(quiz.question_pks),
                "score": sum(scored) if reveal else None,
                "max_score": len(scored) if reveal else None}


def _score(q: TeachQuestion, answer: dict[str, Any], case: TeachCase,
           settings: Settings) -> dict[str, Any] | None:
    """The scored result of an answer (None for free text: a mentor marks it)."""
    kind = QuestionKind(q.kind)
    ref = q.reference or {}
    trace = ref.get("trace", [])
    params = q.params or {}
    if kind is QuestionKind.FREE_TEXT:
        text = str(answer.get("text", "")).strip()
        if not text:
            raise InputError("answer: the text is empty")
        return None
    if kind is QuestionKind.CHOICE:
        sc = score_choice(answer.get("choice") or [], ref.get("answer", []),
                          params.get("options", []))
    elif kind in (QuestionKind.CATEGORY, QuestionKind.PERCIST):
        sc = score_category(str(answer.get("category", "")), str(ref.get("answer")),
                            params.get("criterion", "percist"), trace)
    elif kind in (QuestionKind.DEAUVILLE, QuestionKind.KRENNING):
        sc = score_ordinal(answer.get("grade"), ref.get("answer"), kind.value, trace)
    elif kind is QuestionKind.MEASUREMENT:
        sc = score_measurement(answer.get("length_mm"), float(ref["answer"]),
                               tolerance_mm=float(params.get("tolerance_mm", 2.0)),
                               tolerance_pct=float(params.get("tolerance_pct", 10.0)))
        sc = type(sc)(sc.score, sc.correct, sc.expected, sc.given,
                      sc.feedback + tuple(trace), sc.details)
    else:  # lesion click
        pos = int(params.get("timepoint", 0))
        labels, affine, names = click_labels(case.case_id, pos, settings)
        points = _click_points(case.case_id, pos, answer, settings)
        voxels = [point_voxel(affine, p, labels.shape) for p in points]
        by_key = {v: k for k, v in names.items()}
        wanted = [by_key[k] for k in (q.params or {}).get("lesions", []) if k in by_key]
        sc = score_clicks(voxels, labels, names, targets=wanted or None).as_score()
        sc = type(sc)(sc.score, sc.correct, sc.expected, sc.given, sc.feedback + tuple(trace),
                      {**sc.details, "points_lps_mm": [[round(float(c), 2) for c in p]
                                                       for p in points]})
    return sc.as_dict()


def _click_points(case_id: str, pos: int, answer: dict[str, Any], settings: Settings
                  ) -> list[list[float]]:
    """Clicks as LPS mm: ``points_lps_mm`` as given, or ``clicks`` [{orientation, index,
    fx, fy}] on the case viewer's display planes."""
    from oncohybrid.services.viewer import point_lps

    if answer.get("points_lps_mm") is not None:
        pts = answer["points_lps_mm"]
        if not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 3
                                                for p in pts):
            raise InputError("answer: points_lps_mm must be a list of [x, y, z] in mm")
        return [[float(c) for c in p] for p in pts]
    clicks = answer.get("clicks")
    if not isinstance(clicks, list) or not clicks:
        raise InputError("answer: click at least once on the image")
    if len(clicks) > 50:
        raise InputError("answer: at most 50 clicks")
    vols = case_volumes(case_id, pos, settings)
    out = []
    for c in clicks:
        try:
            out.append([float(v) for v in point_lps(vols, str(c["orientation"]),
                                                    int(c["index"]), float(c["fx"]),
                                                    float(c["fy"]))])
        except (KeyError, TypeError, ValueError):
            raise InputError("answer: each click needs orientation, index, fx, fy") from None
    return out


def answer_question(quiz_pk: int, question_pk: int, answer: dict[str, Any], *, username: str,
                    settings: Settings | None = None) -> dict[str, Any]:
    """Score and store an answer (once per question and quiz); returns what the trainee
    may see now: ``{"score", "correct", "result", "reference", "teaching_points"}`` in
    practice/review, ``{"recorded": True}`` otherwise."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        quiz = _quiz(s, quiz_pk, username)
        if quiz.finished_at is not None:
            raise InputError("this quiz is finished; start a new one")
        if question_pk not in quiz.question_pks:
            raise InputError(f"question {question_pk} is not part of quiz {quiz_pk}")
        if s.scalar(sa.select(TeachAnswer.id).where(TeachAnswer.quiz_pk == quiz.id,
                                                    TeachAnswer.question_pk == question_pk)):
            raise InputError("this question is answered already")
        q = s.get(TeachQuestion, question_pk)
        case = s.get(TeachCase, q.case_pk)
        deadline = _deadline(quiz)
        late = deadline is not None and _utcnow() > deadline
        result = _score(q, answer, case, settings)
        score = correct = None
        if result is not None:
            score, correct = (0.0, False) if late else (result["score"], result["correct"])
            if late:
                result["feedback"] = ["time is up: answers after the limit score 0",
                                      *result["feedback"]]
        stored = {k: v for k, v in answer.items() if k in (
            "choice", "category", "grade", "length_mm", "clicks", "points_lps_mm", "text")}
        s.add(TeachAnswer(quiz_pk=quiz.id, question_pk=q.id, username=username,
                          answer=stored, score=score, correct=correct,
                          result=result or {}, late=late))
        if score is not None:
            _schedule(s, username, q.id, score, bool(correct))
        s.flush()
        n_answered = s.scalar(sa.select(sa.func.count()).select_from(TeachAnswer)
                              .where(TeachAnswer.quiz_pk == quiz.id))
        if quiz.mode in ("practice", "review") and n_answered >= len(quiz.question_pks):
            quiz.finished_at = _utcnow()
        if not _reveal_now(quiz):
            return {"recorded": True, "question_pk": q.id}
        return {"recorded": True, "question_pk": q.id, "score": score, "correct": correct,
                "result": result, "reference": q.reference,
                "teaching_points": case.teaching_points, "diagnosis": case.diagnosis,
                "pending": result is None}


def _schedule(s: Session, username: str, question_pk: int, score: float, correct: bool) -> None:
    row = s.scalar(sa.select(TeachReview).where(TeachReview.username == username,
                                                TeachReview.question_pk == question_pk))
    state = SM2State() if row is None else SM2State(row.repetitions, row.interval_days,
                                                    row.easiness, row.due)
    new = sm2_review(state, quality_from_score(score, correct), dt.date.today())
    if row is None:
        row = TeachReview(username=username, question_pk=question_pk, due=new.due)
        s.add(row)
    row.repetitions, row.interval_days, row.easiness = (new.repetitions, new.interval_days,
                                                        new.easiness)
    row.due = new.due
    row.updated_at = _utcnow()


def finish_quiz(quiz_pk: int, *, username: str, settings: Settings | None = None) -> None:
    """Commit a quiz (exam / unknown case): answers and the diagnosis are shown after."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        quiz = _quiz(s, quiz_pk, username)
        if quiz.finished_at is None:
            quiz.finished_at = _utcnow()


def mark_answer(answer_pk: int, score: float, *, mentor: str, comment: str = "",
                settings: Settings | None = None) -> None:
    """A mentor's mark (0–1) of a free-text answer."""
    settings = settings or get_settings()
    if not 0.0 <= float(score) <= 1.0:
        raise InputError(f"mark: a score from 0 to 1, got {score}")
    with session_scope(settings) as s:
        a = s.get(TeachAnswer, answer_pk)
        if a is None:
            raise StoreError(f"answer {answer_pk}: not found")
        a.score = float(score)
        a.correct = float(score) >= 1.0
        a.marked_by = mentor
        a.result = {**(a.result or {}), "feedback": [f"marked by {mentor}: {score:g}"]
                    + ([comment] if comment else [])}
        _schedule(s, a.username, a.question_pk, a.score, a.correct)


def pending_marks(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Free-text answers waiting for a mentor's mark."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        rows = s.execute(sa.select(TeachAnswer, TeachQuestion)
                         .join(TeachQuestion, TeachAnswer.question_pk == TeachQuestion.id)
                         .where(TeachAnswer.score.is_(None))
                         .order_by(TeachAnswer.answered_at)).all()
        return [{"pk": a.id, "username": a.username, "prompt": q.prompt,
                 "text": a.answer.get("text", ""), "reference": q.reference.get("answer")}
                for a, q in rows]


# ---------------------------------------------------------------- trainee record
def trainee_record(username: str, settings: Settings | None = None) -> dict[str, Any]:
    """A trainee's record: accuracy per topic (tag) overall and per month, Cohen's kappa
    against the reference per criterion, localisation sensitivity and false positives
    per case, the quizzes.

    Accuracy is the mean score (0–1) of the scored answers; kappa is unweighted Cohen's
    kappa (:func:`oncohybrid.stats.agreement.cohen_kappa`) over the trainee's answers to
    category questions of that criterion paired with the reference categories (None, with
    the reason, when fewer than two answers or a single category on both sides).
    """
    from oncohybrid.stats.agreement import cohen_kappa

    settings = settings or get_settings()
    with session_scope(settings) as s:
        rows = s.execute(sa.select(TeachAnswer, TeachQuestion, TeachCase)
                         .join(TeachQuestion, TeachAnswer.question_pk == TeachQuestion.id)
                         .join(TeachCase, TeachQuestion.case_pk == TeachCase.id)
                         .where(TeachAnswer.username == username)
                         .order_by(TeachAnswer.answered_at, TeachAnswer.id)).all()
        quizzes = s.scalars(sa.select(TeachQuiz).where(TeachQuiz.username == username)
                            .order_by(TeachQuiz.created_at.desc())).all()
        quiz_rows = []
        for qz in quizzes:
            sc = [a.score for a, _, _ in rows if a.quiz_pk == qz.id and a.score is not None]
            quiz_rows.append({"pk": qz.id, "title": qz.title, "mode": qz.mode,
                              "created_at": qz.created_at.isoformat(),
                              "finished": qz.finished_at is not None,
                              "answered": sum(1 for a, _, _ in rows if a.quiz_pk == qz.id),
                              "total": len(qz.question_pks), "score": sum(sc),
                              "scored": len(sc)})
        topics: dict[str, list[float]] = defaultdict(list)
        monthly: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        pairs: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        loc: list[dict[str, Any]] = []
        answers = []
        for a, q, c in rows:
            month = a.answered_at.strftime("%Y-%m")
            answers.append({"quiz": a.quiz_pk, "case_id": c.case_id, "kind": q.kind,
                            "prompt": q.prompt, "score": a.score, "correct": a.correct,
                            "late": a.late, "answered_at": a.answered_at.isoformat()})
            if a.score is None:
                continue
            for tag in _question_tags(q, c):
                topics[tag].append(a.score)
                monthly[tag][month].append(a.score)
            if q.kind in ("category", "percist", "deauville", "krenning") and a.result:
                crit = q.params.get("criterion") or q.kind
                if q.kind in ("deauville", "krenning"):
                    crit = q.kind
                pairs[crit][0].append(str(a.result.get("given")))
                pairs[crit][1].append(str(a.result.get("expected")))
            if q.kind == "click" and a.result:
                d = a.result.get("details", {})
                loc.append({"case_id": c.case_id, "title": c.title, "quiz": a.quiz_pk,
                            "hits": len(d.get("hits", [])), "misses": len(d.get("misses", [])),
                            "false_positives": d.get("false_positives", 0),
                            "sensitivity": d.get("sensitivity"),
                            "answered_at": a.answered_at.isoformat()})
    kappa: dict[str, Any] = {}
    for crit, (given, ref) in sorted(pairs.items()):
        entry: dict[str, Any] = {"n": len(given),
                                 "agreement": sum(g == r for g, r in zip(given, ref,
                                                                         strict=True))
                                 / len(given)}
        try:
            if len(given) < 2:
                raise InputError("fewer than two answers")
            k = cohen_kappa(given, ref)
            entry.update(kappa=k.kappa, ci95=list(k.ci95), note=None)
        except InputError as exc:
            entry.update(kappa=None, ci95=None, note=str(exc))
        kappa[crit] = entry
    return {
        "username": username,
        "answers": answers,
        "n_answers": len(answers),
        "n_scored": sum(1 for a in answers if a["score"] is not None),
        "mean_score": (sum(a["score"] for a in answers if a["score"] is not None)
                       / max(1, sum(1 for a in answers if a["score"] is not None))),
        "topics": {t: {"n": len(v), "accuracy": sum(v) / len(v),
                       "by_month": {m: sum(x) / len(x) for m, x in sorted(monthly[t].items())}}
                   for t, v in sorted(topics.items())},
        "kappa": kappa,
        "localisation": loc,
        "quizzes": quiz_rows,
    }


# ---------------------------------------------------------------- fellowship logbook
def logbook_entries(settings: Settings | None, username: str, start: dt.date, end: dt.date
                    ) -> list[dict[str, Any]]:
    """The fellowship logbook's teaching entries of ``username`` between ``start`` and
    ``end`` (inclusive): finished quizzes (score = fraction of the maximum) and cases the
    user authored that were published (issue #13's shared interface)."""
    settings = settings or get_settings()
    out: list[dict[str, Any]] = []
    with session_scope(settings) as s:
        for qz in s.scalars(sa.select(TeachQuiz).where(TeachQuiz.username == username)
                            .order_by(TeachQuiz.created_at)):
            when = (qz.finished_at or qz.created_at).date()
            if not start <= when <= end:
                continue
            scores = [a for a in s.scalars(sa.select(TeachAnswer.score)
                                           .where(TeachAnswer.quiz_pk == qz.id))]
            scored = [x for x in scores if x is not None]
            if not scores:
                continue
            out.append({"date": when.isoformat(), "source": "teaching", "category": "quiz",
                        "title": qz.title,
                        "detail": f"{qz.mode}: {len(scores)} of {len(qz.question_pks)} "
                                  f"questions answered, {sum(scored):g} of {len(scored)} "
                                  "points",
                        "score": (sum(scored) / len(scored)) if scored else None})
        for c in s.scalars(sa.select(TeachCase).where(TeachCase.author == username,
                                                      TeachCase.status == "published")):
            when = (c.published_at or c.created_at).date()
            if start <= when <= end:
                out.append({"date": when.isoformat(), "source": "teaching",
                            "category": "teaching-case-authored", "title": c.title,
                            "detail": f"teaching case {c.case_id} published", "score": None})
    return sorted(out, key=lambda e: e["date"])


def scales() -> dict[str, Any]:
    """Answer options of the ordinal scales and criteria (for the forms)."""
    return {"ordinal": {k: list(range(lo, hi + 1)) for k, (lo, hi, _b, _c)
                        in ORDINAL_SCALES.items()},
            "categories": {k: list(v) for k, v in CRITERION_CATEGORIES.items()}}


def question_tags(settings: Settings | None = None) -> set[str]:
    """The ``criterion:`` and ``kind:`` tags of the questions of published cases."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        rows = s.execute(sa.select(TeachQuestion, TeachCase)
                         .join(TeachCase, TeachQuestion.case_pk == TeachCase.id)
                         .where(TeachCase.status == "published")).all()
        return {t for q, c in rows for t in _question_tags(q, c)
                if t.startswith(("criterion:", "kind:"))}


# ---------------------------------------------------------------- IHE TCE capture
#: (0040,A043) *Concept Name Code* of an IHE TCE manifest: (113004, DCM, "For Teaching"),
#: PS3.16 CID 7010 *Key Object Selection Document Title*.
TCE_DOCUMENT_TITLE = ("113004", "DCM")
#: (113012, DCM, "Key Object Description"): the TEXT item carrying the author's note.
_KO_DESCRIPTION = ("113012", "DCM")
_KO_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"


def _code_of(item: pydicom.Dataset) -> tuple[str, str] | None:
    seq = item.get("ConceptNameCodeSequence")
    if not seq:
        return None
    return str(seq[0].get("CodeValue", "")), str(seq[0].get("CodingSchemeDesignator", ""))


def _tce_title(ds: pydicom.Dataset) -> str:
    """The case title from the manifest's Key Object Description: a ``title=…`` or
    ``title: …`` line (MIRC's convention of fields in the description, anchors §7), else
    its first line, else a default."""
    text = ""
    for item in ds.get("ContentSequence", []):
        if _code_of(item) == _KO_DESCRIPTION and item.get("TextValue"):
            text = str(item.TextValue)
            break
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        m = re.match(r"(?i)(?:mirc:)?title\s*[=:]\s*(.+)", ln)
        if m:
            return m.group(1).strip()[:200]
    return (lines[0][:200] if lines else "") or "Teaching file capture (IHE TCE)"


def capture_from_tce(study_uid: str, *, source: str = "",
                     settings: Settings | None = None) -> list[dict[str, Any]]:
    """Capture a case for each IHE TCE "For Teaching" manifest (Key Object Selection,
    PS3.3 A.35.4) stored in ``study_uid`` that was not captured before.

    The referenced studies ((0040,A375) *Current Requested Procedure Evidence Sequence*)
    select the patient's assessed timepoints; the title comes from the manifest's Key
    Object Description. Manifests of other titles are ignored. Returns the captures.
    """
    settings = settings or get_settings()
    from oncohybrid.store.models import Study

    with session_scope(settings) as s:
        rows = s.execute(
            sa.select(Instance.file_path, Patient.patient_id)
            .join(Series, Instance.series_pk == Series.id)
            .join(Study, Series.study_pk == Study.id)
            .join(Patient, Study.patient_pk == Patient.id)
            .where(Study.study_instance_uid == study_uid,
                   Instance.sop_class_uid == _KO_SOP_CLASS)).all()
        done = {c.ground_truth.get("_tce_manifest_sha256") for c in s.scalars(
            sa.select(TeachCase).where(TeachCase.origin == "tce"))}
    out = []
    for path, patient_id in rows:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError):
            continue
        if _code_of(ds) != TCE_DOCUMENT_TITLE:
            continue
        digest = hashlib.sha256(str(ds.SOPInstanceUID).encode()).hexdigest()
        if digest in done:
            continue
        referenced = {str(it.StudyInstanceUID)
                      for it in ds.get("CurrentRequestedProcedureEvidenceSequence", [])}
        with session_scope(settings) as s:
            ppk = s.scalar(sa.select(Patient.id).where(Patient.patient_id == patient_id))
            dates = sorted({tp.scan_date for tp in s.scalars(
                sa.select(Timepoint)
                .join(TimepointStudy, TimepointStudy.timepoint_pk == Timepoint.id)
                .where(Timepoint.patient_pk == ppk,
                       TimepointStudy.study_instance_uid.in_(referenced)))})
        if not dates:
            raise InputError("IHE TCE manifest: none of its referenced studies is an "
                             "assessed timepoint; assess the patient, then capture")
        author = ("tce:" + source)[:64] if source else "tce"
        result = capture_case(patient_id, title=_tce_title(ds), timepoints=dates,
                              author=author, settings=settings)
        with session_scope(settings) as s:
            case = _case(s, result["case_id"])
            case.origin = "tce"
            case.ground_truth = {**case.ground_truth, "_tce_manifest_sha256": digest}
        done.add(digest)
        out.append(result)
    return out


def tce_study_hook(event: Any) -> None:
    """``oncohybrid listen --on-complete teaching-tce``: capture the IHE TCE manifests of a
    completed study (entry point ``oncohybrid.study_hooks``). Logs no identifier."""
    import logging

    log = logging.getLogger(__name__)
    try:
        for r in capture_from_tce(event.study_instance_uid,
                                  source=",".join(event.calling_ae_titles)):
            log.info("teaching-tce: captured case %s (%d files)", r["case_id"], r["files"])
    except OncohybridError as exc:
        # the message may name the patient: log its kind only
        log.warning("teaching-tce: manifest not captured (%s)", type(exc).__name__)
