"""Use-case: the fellowship programme (issue #13): calls, eligibility, applications,
selection, the fellow's year, the logbook derived from the platform, sign-off, final
report and certificate.

Pure rules live in :mod:`oncohybrid.fellowship`; this module reads and writes the
workspace (calls loaded with ``oncohybrid fellowship call load`` are kept under
``<home>/fellowship/calls/``, the rest in the database) and audits every change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, OncohybridError
from oncohybrid.fellowship import call as callmod
from oncohybrid.fellowship import certificate as certmod
from oncohybrid.fellowship import logbook as logmod
from oncohybrid.fellowship import programme as progmod
from oncohybrid.fellowship.applicant import Applicant, load_applicant, parse_applicant
from oncohybrid.fellowship.call import Call
from oncohybrid.fellowship.grant import Schedule, schedule
from oncohybrid.fellowship.ics import invitation
from oncohybrid.fellowship.pdf import RESEARCH_STAGES, certificate_pdf, final_report_pdf
from oncohybrid.fellowship.rules import Eligibility, evaluate
from oncohybrid.fellowship.scoring import parse_scores, rank, weighted_total
from oncohybrid.services import audit
from oncohybrid.store.db import session_scope
from oncohybrid.store.models_fellowship import (
    Fellow,
    FellowshipApplication,
    FellowshipCertificate,
    FellowshipDocument,
    FellowshipEvaluation,
    FellowshipInterview,
    FellowshipLogEntry,
    FellowshipReview,
    FellowshipSignOff,
)
from oncohybrid.store.models_web import AuditEntry, WebUser

__all__ = [
    "get_call", "list_calls", "open_calls", "load_call_file", "eligibility",
    "eligibility_of_data", "grant_schedule", "MAX_UPLOAD_BYTES", "DOCUMENT_KINDS",
    "Forbidden", "application_of", "save_application", "submit_application",
    "withdraw_application", "add_document", "document_file", "application_view",
    "list_applications", "assign_reviewer", "declare_coi", "score_application",
    "reviews_of", "ranked", "book_interview", "interview_ics", "set_decision",
    "respond_to_offer", "add_slot", "open_slots", "book_slot", "enrol", "fellow_view",
    "fellows", "set_year", "set_week",
    "add_log_entry", "logbook", "sign_month", "add_evaluation", "update_research",
    "save_report_text", "sign_off_report", "final_report", "issue_certificate", "verify",
    "certificate_key", "fellow_of_user",
]


def _calls_dir(settings: Settings) -> Path:
    return settings.home / "fellowship" / "calls"


def get_call(settings: Settings | None, call_id: str | None = None) -> Call:
    """A call loaded into the workspace, else a bundled one (default: the ESOR 2021 call)."""
    settings = settings or get_settings()
    cid = call_id or callmod.DEFAULT_CALL
    path = _calls_dir(settings) / f"{cid}.yaml"
    if path.is_file():
        return callmod.load_call(path)
    if cid in callmod.bundled_ids():
        return callmod.bundled_call(cid)
    known = sorted({*callmod.bundled_ids(), *(p.stem for p in _calls_dir(settings).glob("*.yaml"))})
    raise InputError(f"--call: no call {cid!r} in the workspace or the package (known: "
                     f"{', '.join(known)})")


def list_calls(settings: Settings | None = None) -> list[Call]:
    settings = settings or get_settings()
    ids = {*callmod.bundled_ids(), *(p.stem for p in _calls_dir(settings).glob("*.yaml"))}
    return [get_call(settings, i) for i in sorted(ids)]


def load_call_file(settings: Settings | None, path: str | Path, *, actor: str = "cli") -> Call:
    """Validate a call file and keep it in the workspace under its id (replacing an earlier
    version of the same id); audited."""
    settings = settings or get_settings()
    call = callmod.load_call(path)
    folder = _calls_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{call.id}.yaml"
    replaced = target.exists()
    target.write_text(Path(path).read_text(encoding="utf-8"), encoding="utf-8")
    audit.record(settings, actor, "fellowship.call.load", f"call:{call.id}",
                 {"replaced": replaced, "rules": len(call.rules)})
    return call


def eligibility(settings: Settings | None, applicant_path: str | Path,
                call_id: str | None = None) -> Eligibility:
    """Judge an applicant file against a call (pure rules; nothing is stored)."""
    call = get_call(settings, call_id)
    return evaluate(call, load_applicant(applicant_path, call))


def eligibility_of_data(settings: Settings | None, data: dict[str, Any],
                        call_id: str | None = None) -> tuple[Applicant, Eligibility]:
    call = get_call(settings, call_id)
    a = parse_applicant(data, call)
    return a, evaluate(call, a)


def grant_schedule(settings: Settings | None, call_id: str | None = None) -> Schedule:
    return schedule(get_call(settings, call_id))


# ---------------------------------------------------------------- constants and helpers
#: Largest accepted upload (a scanned certificate or a CV fits comfortably).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: The documents an application carries (issue #13).
DOCUMENT_KINDS = {"cv": "Curriculum vitae", "board_certificate": "Certificate of board "
                  "certification", "language_certificate": "Language certificate",
                  "motivation": "Letter of motivation"}
CERT_KEY_FILE = "fellowship-certificate.key"
EVALUATION_KINDS = {"mentor-to-fellow": "Mentor's evaluation of the fellow",
                    "fellow-to-programme": "Fellow's evaluation of the programme"}
EVALUATION_ITEMS = ("clinical", "research", "professionalism", "communication")
MILESTONE_STATES = ("not started", "in progress", "done")


class Forbidden(OncohybridError):
    """The user may not see or change this (the web answers 403/404)."""

    exit_code = 1


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def certificate_key(settings: Settings | None = None) -> bytes:
    """The workspace's certificate-signing key (32 random bytes, file mode 0600)."""
    settings = settings or get_settings()
    path = settings.home / CERT_KEY_FILE
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it first
            _write_private(path, secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 32:
        raise InputError(f"{path}: certificate key is shorter than 32 bytes")
    return key


def open_calls(settings: Settings | None = None, now: dt.datetime | None = None) -> list[Call]:
    """Calls whose deadline has not passed."""
    now = now or _now()
    return [c for c in list_calls(settings) if now < c.deadline_end]


def _role_of(s: Any, username: str) -> str | None:
    return s.scalar(sa.select(WebUser.role).where(WebUser.username == username))


# ---------------------------------------------------------------- applications
def _app_dict(a: FellowshipApplication, docs: list[FellowshipDocument] | None = None
              ) -> dict[str, Any]:
    return {"pk": a.id, "call_id": a.call_id, "username": a.username, "data": a.data,
            "status": a.status, "eligible": a.eligible, "eligibility": a.eligibility,
            "submitted_at": _aware(a.submitted_at).isoformat() if a.submitted_at else None,
            "documents": [{"pk": d.id, "kind": d.kind, "label": DOCUMENT_KINDS.get(d.kind),
                           "filename": d.filename, "size_bytes": d.size_bytes,
                           "sha256": d.sha256} for d in docs or []]}


def application_of(settings: Settings | None, username: str, call_id: str
                   ) -> dict[str, Any] | None:
    """The applicant's own application to a call (None before the first save)."""
    with session_scope(settings) as s:
        a = s.scalar(sa.select(FellowshipApplication).where(
            FellowshipApplication.username == username, FellowshipApplication.call_id == call_id))
        if a is None:
            return None
        docs = s.scalars(sa.select(FellowshipDocument).where(
            FellowshipDocument.application_pk == a.id).order_by(FellowshipDocument.id)).all()
        return _app_dict(a, list(docs))


def _judge(settings: Settings | None, call: Call, data: dict[str, Any],
           at: dt.datetime) -> tuple[dict[str, Any] | None, str | None]:
    """Eligibility of the form's data as if submitted at ``at``; or the input error."""
    probe = dict(data, submitted_at=at.isoformat(timespec="seconds"))
    try:
        return evaluate(call, parse_applicant(probe, call)).as_dict(), None
    except InputError as exc:
        return None, str(exc)


def save_application(settings: Settings | None, username: str, call_id: str,
                     data: dict[str, Any], *, now: dt.datetime | None = None
                     ) -> tuple[dict[str, Any], str | None]:
    """Save the applicant's draft and judge it live (as if submitted now); returns the
    application and the input error, if the form is incomplete or invalid."""
    settings = settings or get_settings()
    call = get_call(settings, call_id)
    now = now or _now()
    if now >= call.deadline_end:
        raise InputError(f"call {call.id} closed at the end of {call.deadline_date} "
                         f"({call.deadline_zone}); applications can no longer be changed")
    data = dict(data)
    data.pop("submitted_at", None)
    with session_scope(settings) as s:
        a = s.scalar(sa.select(FellowshipApplication).where(
            FellowshipApplication.username == username, FellowshipApplication.call_id == call.id))
        if a is not None and a.status not in ("draft",):
            raise InputError(f"application #{a.id}: already {a.status}; it can no longer be "
                             "edited")
        if a is None:
            a = FellowshipApplication(call_id=call.id, username=username, status="draft")
            s.add(a)
        result, error = _judge(settings, call, data, now)
        a.data = data
        a.eligibility = result
        a.eligible = None if result is None else bool(result["eligible"])
        a.updated_at = now
        s.flush()
        pk = a.id
    audit.record(settings, username, "fellowship.application.save", f"application:{pk}",
                 {"call": call.id, "complete": error is None})
    out = application_of(settings, username, call.id)
    assert out is not None
    return out, error


def submit_application(settings: Settings | None, username: str, call_id: str, *,
                       now: dt.datetime | None = None) -> dict[str, Any]:
    """Submit the draft: the server's clock is the submission time; refused (with the
    failing rules' reasons) while the applicant is not eligible or a required document is
    missing."""
    settings = settings or get_settings()
    call = get_call(settings, call_id)
    now = now or _now()
    with session_scope(settings) as s:
        a = s.scalar(sa.select(FellowshipApplication).where(
            FellowshipApplication.username == username, FellowshipApplication.call_id == call.id))
        if a is None:
            raise InputError("no application to submit: fill in the form first")
        if a.status != "draft":
            raise InputError(f"application #{a.id} is already {a.status}")
        result, error = _judge(settings, call, a.data, now)
        if error:
            raise InputError(error)
        assert result is not None
        if not result["eligible"]:
            failed = "; ".join(r["reason"] for r in result["rules"] if not r["ok"])
            raise InputError(f"not eligible: {failed}")
        kinds = set(s.scalars(sa.select(FellowshipDocument.kind).where(
            FellowshipDocument.application_pk == a.id)))
        missing = [DOCUMENT_KINDS[k] for k in ("cv", "board_certificate", "motivation")
                   if k not in kinds]
        if missing:
            raise InputError(f"documents missing: {', '.join(missing)} (PDF)")
        a.data = dict(a.data, submitted_at=now.isoformat(timespec="seconds"))
        a.eligibility, a.eligible = result, True
        a.status, a.submitted_at, a.updated_at = "submitted", now, now
        pk = a.id
    audit.record(settings, username, "fellowship.application.submit", f"application:{pk}",
                 {"call": call.id})
    out = application_of(settings, username, call.id)
    assert out is not None
    return out


def withdraw_application(settings: Settings | None, username: str, call_id: str) -> None:
    with session_scope(settings) as s:
        a = s.scalar(sa.select(FellowshipApplication).where(
            FellowshipApplication.username == username, FellowshipApplication.call_id == call_id))
        if a is None or a.status in ("withdrawn", "accepted", "declined"):
            raise InputError("no application that can be withdrawn")
        a.status, a.updated_at = "withdrawn", _now()
        pk = a.id
    audit.record(settings, username, "fellowship.application.withdraw", f"application:{pk}")


def _docs_dir(settings: Settings) -> Path:
    # Under the workspace, never under the package's web/static: served only through
    # the access-checked download route, as an attachment.
    return settings.home / "fellowship" / "documents"


def add_document(settings: Settings | None, username: str, call_id: str, kind: str,
                 filename: str, content: bytes) -> dict[str, Any]:
    """Attach a PDF to the applicant's draft: PDF magic bytes ``%PDF-`` (ISO 32000-1
    §7.5.2 file header) and at most :data:`MAX_UPLOAD_BYTES`; anything else refused."""
    settings = settings or get_settings()
    if kind not in DOCUMENT_KINDS:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(DOCUMENT_KINDS)}")
    if len(content) > MAX_UPLOAD_BYTES:
        raise InputError(f"{filename}: {len(content)} bytes is over the limit of "
                         f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    if not content.startswith(b"%PDF-"):
        raise InputError(f"{filename}: not a PDF file (it does not start with %PDF-)")
    if not content:
        raise InputError(f"{filename}: empty file")
    safe = "".join(ch for ch in Path(filename).name if ch.isalnum() or ch in "._- ")[:120]
    safe = safe or "document.pdf"
    with session_scope(settings) as s:
        a = s.scalar(sa.select(FellowshipApplication).where(
            FellowshipApplication.username == username, FellowshipApplication.call_id == call_id))
        if a is None:
            raise InputError("save the form before uploading documents")
        if a.status != "draft":
            raise InputError(f"application #{a.id} is already {a.status}")
        stored = f"{a.id}/{uuid.uuid4().hex}.pdf"
        path = _docs_dir(settings) / stored
        _write_private(path, content)
        d = FellowshipDocument(application_pk=a.id, kind=kind, filename=safe,
                               stored_name=stored, size_bytes=len(content),
                               sha256=hashlib.sha256(content).hexdigest())
        s.add(d)
        s.flush()
        out = {"pk": d.id, "kind": kind, "filename": safe, "size_bytes": len(content)}
        apk = a.id
    audit.record(settings, username, "fellowship.document.upload", f"application:{apk}",
                 {"kind": kind, "bytes": len(content)})
    return out


def _may_see(s: Any, a: FellowshipApplication, username: str, role: str) -> bool:
    if role in ("director", "admin"):
        return True
    if role == "applicant":
        return a.username == username
    if role == "reviewer":
        return s.scalar(sa.select(FellowshipReview.id).where(
            FellowshipReview.application_pk == a.id,
            FellowshipReview.reviewer == username)) is not None
    return False


def document_file(settings: Settings | None, username: str, role: str, doc_pk: int
                  ) -> tuple[Path, str]:
    """(path, download name) of a document the user may see; :class:`Forbidden` else."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        d = s.get(FellowshipDocument, doc_pk)
        a = s.get(FellowshipApplication, d.application_pk) if d else None
        if d is None or a is None or not _may_see(s, a, username, role):
            raise Forbidden(f"document #{doc_pk}: not found")
        path, name = _docs_dir(settings) / d.stored_name, d.filename
    audit.record(settings, username, "fellowship.document.read", f"document:{doc_pk}")
    return path, name


def application_view(settings: Settings | None, username: str, role: str, app_pk: int
                     ) -> dict[str, Any]:
    """One application as its viewer may see it (reviews included for the director)."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        a = s.get(FellowshipApplication, app_pk)
        if a is None or not _may_see(s, a, username, role):
            raise Forbidden(f"application #{app_pk}: not found")
        docs = s.scalars(sa.select(FellowshipDocument).where(
            FellowshipDocument.application_pk == a.id).order_by(FellowshipDocument.id)).all()
        out = _app_dict(a, list(docs))
        reviews = s.scalars(sa.select(FellowshipReview).where(
            FellowshipReview.application_pk == a.id).order_by(FellowshipReview.id)).all()
        out["reviews"] = [_review_dict(r) for r in reviews
                          if role in ("director", "admin") or r.reviewer == username]
        iv = s.scalars(sa.select(FellowshipInterview).where(
            FellowshipInterview.application_pk == a.id).order_by(FellowshipInterview.id)).all()
        out["interviews"] = [_interview_dict(i, a) for i in iv]
    audit.record(settings, username, "fellowship.application.read", f"application:{app_pk}")
    return out


def _review_dict(r: FellowshipReview) -> dict[str, Any]:
    return {"pk": r.id, "application_pk": r.application_pk, "reviewer": r.reviewer,
            "coi": r.coi, "coi_note": r.coi_note, "scores": r.scores, "total": r.total,
            "comment": r.comment,
            "scored_at": _aware(r.scored_at).isoformat() if r.scored_at else None}


def _interview_dict(i: FellowshipInterview, a: FellowshipApplication) -> dict[str, Any]:
    zone = (a.data or {}).get("time_zone") or "UTC"
    start = _aware(i.starts_at)
    assert start is not None
    return {"pk": i.id, "starts_at_utc": start.isoformat(), "minutes": i.minutes,
            "location": i.location, "zone": zone,
            "local": start.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")}


def list_applications(settings: Settings | None, call_id: str, *, username: str = "",
                      role: str = "director") -> list[dict[str, Any]]:
    """Submitted (and later) applications of a call that the user may see, with the
    ranking; a reviewer sees only those assigned to them."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        q = sa.select(FellowshipApplication).where(
            FellowshipApplication.call_id == call_id,
            FellowshipApplication.status.notin_(("draft",))).order_by(FellowshipApplication.id)
        if role == "reviewer":
            q = q.join(FellowshipReview, FellowshipReview.application_pk ==
                       FellowshipApplication.id).where(FellowshipReview.reviewer == username)
        elif role not in ("director", "admin"):
            return []
        apps = s.scalars(q).all()
        out = []
        for a in apps:
            revs = s.scalars(sa.select(FellowshipReview).where(
                FellowshipReview.application_pk == a.id)).all()
            out.append({"pk": a.id, "applicant_id": a.data.get("applicant_id"),
                        "name": a.data.get("name"), "status": a.status,
                        "track": a.data.get("track"),
                        "reviewers": [r.reviewer for r in revs],
                        "my_review": next((_review_dict(r) for r in revs
                                           if r.reviewer == username), None)})
    if role in ("director", "admin"):
        ranks = {r["pk"]: r for r in ranked(settings, call_id)}
        for x in out:
            x["rank"] = ranks.get(x["pk"], {}).get("rank")
            x["mean"] = ranks.get(x["pk"], {}).get("mean")
        out.sort(key=lambda x: (x["rank"] is None, x["rank"] or 0, x["pk"]))
    return out


# ---------------------------------------------------------------- review
def assign_reviewer(settings: Settings | None, app_pk: int, reviewer: str, *, actor: str
                    ) -> None:
    settings = settings or get_settings()
    with session_scope(settings) as s:
        a = s.get(FellowshipApplication, app_pk)
        if a is None or a.status == "draft":
            raise InputError(f"application #{app_pk}: no submitted application")
        if _role_of(s, reviewer) != "reviewer":
            raise InputError(f"reviewer: {reviewer!r} is not an account with the reviewer role")
        exists = s.scalar(sa.select(FellowshipReview.id).where(
            FellowshipReview.application_pk == app_pk, FellowshipReview.reviewer == reviewer))
        if exists is None:
            s.add(FellowshipReview(application_pk=app_pk, reviewer=reviewer, assigned_by=actor))
    audit.record(settings, actor, "fellowship.review.assign", f"application:{app_pk}",
                 {"reviewer": reviewer})


def _my_review(s: Any, app_pk: int, reviewer: str) -> FellowshipReview:
    r = s.scalar(sa.select(FellowshipReview).where(FellowshipReview.application_pk == app_pk,
                                                   FellowshipReview.reviewer == reviewer))
    if r is None:
        raise Forbidden(f"application #{app_pk}: not found")
    return r


def declare_coi(settings: Settings | None, reviewer: str, app_pk: int, conflict: bool,
                note: str = "") -> None:
    """The reviewer's conflict-of-interest declaration; a conflict removes their score."""
    with session_scope(settings) as s:
        r = _my_review(s, app_pk, reviewer)
        r.coi, r.coi_note = conflict, note.strip()[:2000] or None
        if conflict:
            r.scores, r.total, r.scored_at = None, None, None
    audit.record(settings, reviewer, "fellowship.review.coi", f"application:{app_pk}",
                 {"conflict": conflict})


def score_application(settings: Settings | None, reviewer: str, app_pk: int,
                      scores: dict[str, Any], comment: str = "") -> Decimal:
    """Score with the call's rubric; needs a declaration of no conflict of interest."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        r = _my_review(s, app_pk, reviewer)
        if r.coi is None:
            raise InputError("declare whether you have a conflict of interest before scoring")
        if r.coi:
            raise InputError("you declared a conflict of interest with this applicant")
        a = s.get(FellowshipApplication, app_pk)
        assert a is not None
        call = get_call(settings, a.call_id)
        values = parse_scores(call.rubric, scores)
        total = weighted_total(call.rubric, values)
        r.scores = {k: str(v) for k, v in values.items()}
        r.total, r.comment, r.scored_at = str(total), comment.strip()[:4000], _now()
    audit.record(settings, reviewer, "fellowship.review.score", f"application:{app_pk}",
                 {"total": str(total)})
    return total


def reviews_of(settings: Settings | None, reviewer: str) -> list[dict[str, Any]]:
    with session_scope(settings) as s:
        return [_review_dict(r) for r in s.scalars(sa.select(FellowshipReview).where(
            FellowshipReview.reviewer == reviewer).order_by(FellowshipReview.id))]


def ranked(settings: Settings | None, call_id: str) -> list[dict[str, Any]]:
    """The ranked list: mean weighted score of the reviewers without a conflict."""
    with session_scope(settings) as s:
        apps = s.scalars(sa.select(FellowshipApplication).where(
            FellowshipApplication.call_id == call_id,
            FellowshipApplication.status.notin_(("draft", "withdrawn")))).all()
        totals: dict[str, list[Decimal]] = {}
        names = {}
        for a in apps:
            revs = s.scalars(sa.select(FellowshipReview).where(
                FellowshipReview.application_pk == a.id, FellowshipReview.coi.is_(False),
                FellowshipReview.total.is_not(None))).all()
            totals[str(a.id)] = [Decimal(r.total) for r in revs if r.total is not None]
            names[str(a.id)] = (a.data.get("applicant_id"), a.data.get("name"), a.status)
    return [{"pk": int(r.key), "applicant_id": names[r.key][0], "name": names[r.key][1],
             "status": names[r.key][2], "mean": str(r.mean) if r.mean is not None else None,
             "reviews": r.reviews, "rank": r.rank} for r in rank(totals)]


# ---------------------------------------------------------------- interviews and offers
def book_interview(settings: Settings | None, app_pk: int, starts_at: dt.datetime,
                   minutes: int = 30, location: str = "video call", *, actor: str) -> int:
    if starts_at.tzinfo is None:
        raise InputError("starts_at: the interview time needs a time zone")
    if not 10 <= minutes <= 240:
        raise InputError(f"minutes: {minutes} is outside 10-240")
    with session_scope(settings) as s:
        a = s.get(FellowshipApplication, app_pk)
        if a is None or a.status in ("draft", "withdrawn"):
            raise InputError(f"application #{app_pk}: no submitted application")
        i = FellowshipInterview(call_id=a.call_id, application_pk=app_pk,
                                starts_at=starts_at.astimezone(dt.UTC),
                                minutes=minutes, location=location.strip()[:255] or
                                "video call", uid=f"{uuid.uuid4()}@oncohybrid-fellowship",
                                booked_by=actor)
        s.add(i)
        if a.status == "submitted":
            a.status = "shortlisted"
        s.flush()
        pk = i.id
    audit.record(settings, actor, "fellowship.interview.book", f"application:{app_pk}",
                 {"interview": pk})
    return pk


def add_slot(settings: Settings | None, call_id: str, starts_at: dt.datetime,
             minutes: int = 30, location: str = "video call", *, actor: str) -> int:
    """An open interview slot of a call, for a shortlisted applicant to pick."""
    if starts_at.tzinfo is None:
        raise InputError("starts_at: the interview time needs a time zone")
    if not 10 <= minutes <= 240:
        raise InputError(f"minutes: {minutes} is outside 10-240")
    call = get_call(settings, call_id)
    with session_scope(settings) as s:
        i = FellowshipInterview(call_id=call.id, application_pk=None,
                                starts_at=starts_at.astimezone(dt.UTC), minutes=minutes,
                                location=location.strip()[:255] or "video call",
                                uid=f"{uuid.uuid4()}@oncohybrid-fellowship", booked_by=actor)
        s.add(i)
        s.flush()
        pk = i.id
    audit.record(settings, actor, "fellowship.interview.slot", f"call:{call.id}",
                 {"slot": pk})
    return pk


def open_slots(settings: Settings | None, call_id: str, zone: str = "UTC"
               ) -> list[dict[str, Any]]:
    """Slots nobody has taken yet, soonest first, shown in ``zone``."""
    tz = ZoneInfo(zone)
    with session_scope(settings) as s:
        rows = s.scalars(sa.select(FellowshipInterview).where(
            FellowshipInterview.call_id == call_id,
            FellowshipInterview.application_pk.is_(None))
            .order_by(FellowshipInterview.starts_at)).all()
        return [{"pk": i.id, "minutes": i.minutes, "location": i.location,
                 "starts_at_utc": _aware(i.starts_at).isoformat(),  # type: ignore[union-attr]
                 "local": _aware(i.starts_at).astimezone(tz)  # type: ignore[union-attr]
                 .strftime("%Y-%m-%d %H:%M %Z")} for i in rows]


def book_slot(settings: Settings | None, username: str, call_id: str, slot_pk: int) -> None:
    """The applicant takes an open slot (shortlisted or submitted applications, one
    interview each); first come, first served."""
    with session_scope(settings) as s:
        a = s.scalar(sa.select(FellowshipApplication).where(
            FellowshipApplication.username == username, FellowshipApplication.call_id == call_id))
        if a is None or a.status not in ("submitted", "shortlisted", "waiting"):
            raise InputError("only a submitted application can book an interview")
        if s.scalar(sa.select(FellowshipInterview.id).where(
                FellowshipInterview.application_pk == a.id)) is not None:
            raise InputError("you already have an interview")
        taken = s.execute(sa.update(FellowshipInterview).where(
            FellowshipInterview.id == slot_pk, FellowshipInterview.call_id == call_id,
            FellowshipInterview.application_pk.is_(None)).values(application_pk=a.id))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise InputError(f"interview slot #{slot_pk} is no longer free")
        if a.status == "submitted":
            a.status = "shortlisted"
        pk = a.id
    audit.record(settings, username, "fellowship.interview.book", f"application:{pk}",
                 {"interview": slot_pk})


def interview_ics(settings: Settings | None, username: str, role: str, interview_pk: int
                  ) -> str:
    """The invitation (.ics) in the applicant's time zone (the host's if none given)."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        i = s.get(FellowshipInterview, interview_pk)
        a = s.get(FellowshipApplication, i.application_pk) if i else None
        if i is None or a is None or not _may_see(s, a, username, role):
            raise Forbidden(f"interview #{interview_pk}: not found")
        call = get_call(settings, a.call_id)
        zone = (a.data or {}).get("time_zone") or call.host["time_zone"]
        start = _aware(i.starts_at)
        assert start is not None
        text = invitation(i.uid, start, i.minutes, zone,
                          f"Interview: {call.programme} ({call.host['name']})", i.location,
                          "fellowship@oncohybrid.invalid",
                          f"Selection interview for {call.title}.")
    return text


def set_decision(settings: Settings | None, app_pk: int, status: str, *, actor: str) -> None:
    """The director's decision: offered, waiting (list) or rejected."""
    if status not in ("offered", "waiting", "rejected"):
        raise InputError(f"decision: {status!r} is not one of offered, waiting, rejected")
    with session_scope(settings) as s:
        a = s.get(FellowshipApplication, app_pk)
        if a is None or a.status in ("draft", "withdrawn", "accepted", "declined"):
            raise InputError(f"application #{app_pk}: cannot be {status} now")
        if status == "offered":
            call = get_call(settings, a.call_id)
            taken = s.scalar(sa.select(sa.func.count(FellowshipApplication.id)).where(
                FellowshipApplication.call_id == a.call_id,
                FellowshipApplication.status.in_(("offered", "accepted")))) or 0
            if taken >= call.places:
                raise InputError(f"call {call.id} has {call.places} place(s), already "
                                 "offered or accepted")
        a.status, a.updated_at = status, _now()
    audit.record(settings, actor, "fellowship.decision", f"application:{app_pk}",
                 {"status": status})


def respond_to_offer(settings: Settings | None, username: str, call_id: str, accept: bool
                     ) -> str | None:
    """The applicant accepts (becoming a fellow; returns the fellow id) or declines."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        a = s.scalar(sa.select(FellowshipApplication).where(
            FellowshipApplication.username == username, FellowshipApplication.call_id == call_id))
        if a is None or a.status != "offered":
            raise InputError("there is no open offer to answer")
        a.status, a.updated_at = ("accepted" if accept else "declined"), _now()
        pk = a.id
    audit.record(settings, username, "fellowship.offer." + ("accept" if accept else "decline"),
                 f"application:{pk}")
    if not accept:
        return None
    return _create_fellow(settings, pk, actor=username)


def _create_fellow(settings: Settings, app_pk: int, *, actor: str, username: str | None = None,
                   mentor: str | None = None) -> str:
    with session_scope(settings) as s:
        a = s.get(FellowshipApplication, app_pk)
        assert a is not None
        call = get_call(settings, a.call_id)
        fid = a.data["applicant_id"]
        if s.scalar(sa.select(Fellow.id).where(Fellow.fellow_id == fid)) is not None:
            raise InputError(f"fellow {fid!r} already exists")
        s.add(Fellow(fellow_id=fid, call_id=call.id, application_pk=a.id,
                     name=a.data["name"], track=a.data["track"], start=call.start,
                     end=call.end, username=username, mentor=mentor,
                     programme=progmod.default_plan(call) if call.modules else [],
                     research={}, report_text={}))
    audit.record(settings, actor, "fellowship.fellow.create", f"fellow:{fid}")
    return fid


def enrol(settings: Settings | None, applicant_path: str | Path, *, call_id: str | None = None,
          username: str | None = None, mentor: str | None = None, actor: str = "cli") -> str:
    """The director records a selected fellow from an applicant file (eligible applicants
    only): application accepted, fellow created with the default programme."""
    settings = settings or get_settings()
    call = get_call(settings, call_id)
    a = load_applicant(applicant_path, call)
    result = evaluate(call, a)
    if not result.eligible:
        failed = "; ".join(r.reason for r in result.rules if not r.ok)
        raise InputError(f"{applicant_path}: not eligible: {failed}")
    with session_scope(settings) as s:
        for who in (username, mentor):
            if who and _role_of(s, who) is None:
                raise InputError(f"user {who!r} does not exist")
        if s.scalar(sa.select(Fellow.id).where(Fellow.fellow_id == a.applicant_id)) is not None:
            raise InputError(f"{applicant_path}: $.applicant_id: fellow {a.applicant_id!r} "
                             "already exists")
        app = FellowshipApplication(call_id=call.id, username=f"enrolled:{a.applicant_id}",
                                    data=a.data, status="accepted", eligible=True,
                                    eligibility=result.as_dict(), submitted_at=a.submitted_at)
        s.add(app)
        s.flush()
        pk = app.id
    audit.record(settings, actor, "fellowship.enrol", f"application:{pk}", {"call": call.id})
    return _create_fellow(settings, pk, actor=actor, username=username, mentor=mentor)


# ---------------------------------------------------------------- the year
def _fellow(s: Any, fellow_id: str) -> Fellow:
    f = s.scalar(sa.select(Fellow).where(Fellow.fellow_id == fellow_id))
    if f is None:
        raise InputError(f"fellow {fellow_id!r} does not exist")
    return f


def _fellow_dict(f: Fellow) -> dict[str, Any]:
    return {"pk": f.id, "fellow_id": f.fellow_id, "call_id": f.call_id, "name": f.name,
            "username": f.username, "mentor": f.mentor, "track": f.track,
            "start": f.start.isoformat(), "end": f.end.isoformat(),
            "programme": f.programme or [], "research": f.research or {},
            "report_text": f.report_text or {}, "report_signed_by": f.report_signed_by,
            "report_signed_at": _aware(f.report_signed_at).isoformat()
            if f.report_signed_at else None}


def fellows(settings: Settings | None, *, username: str = "", role: str = "director"
            ) -> list[dict[str, Any]]:
    """Fellows the user may see: all for the director/admin, their own for a fellow or an
    applicant who became one, theirs for a mentor."""
    with session_scope(settings) as s:
        q = sa.select(Fellow).order_by(Fellow.id)
        if role == "mentor":
            q = q.where(Fellow.mentor == username)
        elif role not in ("director", "admin"):
            own = sa.select(FellowshipApplication.id).where(
                FellowshipApplication.username == username)
            q = q.where(sa.or_(Fellow.username == username, Fellow.application_pk.in_(own)))
        return [_fellow_dict(f) for f in s.scalars(q)]


def fellow_of_user(settings: Settings | None, username: str) -> str | None:
    mine = fellows(settings, username=username, role="fellow")
    return mine[0]["fellow_id"] if mine else None


def _can_see_fellow(f: Fellow, s: Any, username: str, role: str) -> bool:
    if role in ("director", "admin"):
        return True
    if f.mentor == username or f.username == username:
        return True
    if f.application_pk is not None:
        a = s.get(FellowshipApplication, f.application_pk)
        return a is not None and a.username == username
    return False


def fellow_view(settings: Settings | None, fellow_id: str, *, username: str, role: str
                ) -> dict[str, Any]:
    with session_scope(settings) as s:
        f = s.scalar(sa.select(Fellow).where(Fellow.fellow_id == fellow_id))
        if f is None or not _can_see_fellow(f, s, username, role):
            raise Forbidden(f"fellow {fellow_id!r}: not found")
        out = _fellow_dict(f)
        out["signoffs"] = {x.month: {"mentor": x.mentor, "entries": x.entries,
                                     "comment": x.comment,
                                     "signed_at": _aware(x.signed_at).isoformat()}
                           for x in s.scalars(sa.select(FellowshipSignOff).where(
                               FellowshipSignOff.fellow_pk == f.id))}
        out["evaluations"] = [_eval_dict(e) for e in s.scalars(
            sa.select(FellowshipEvaluation).where(FellowshipEvaluation.fellow_pk == f.id)
            .order_by(FellowshipEvaluation.id))]
        cert = s.scalar(sa.select(FellowshipCertificate).where(
            FellowshipCertificate.fellow_pk == f.id))
        out["certificate"] = {"serial": cert.serial, "code": cert.code} if cert else None
    return out


def _eval_dict(e: FellowshipEvaluation) -> dict[str, Any]:
    vals = [Decimal(str(v)) for v in (e.scores or {}).values()]
    mean = str((sum(vals, Decimal(0)) / len(vals)).quantize(Decimal("0.1"))) if vals else None
    return {"kind": e.kind, "period": e.period, "author": e.author, "scores": e.scores,
            "comment": e.comment, "mean": mean,
            "created_at": _aware(e.created_at).isoformat() if e.created_at else None}


def set_year(settings: Settings | None, fellow_id: str, *, username: str | None,
             mentor: str | None, actor: str) -> None:
    """The director links the fellow's platform account and the mentor."""
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        if username:
            if _role_of(s, username) not in ("fellow", "physician", "mentor"):
                raise InputError(f"account: {username!r} is not a clinical account (fellow)")
            f.username = username
        if mentor:
            if _role_of(s, mentor) not in ("mentor", "physician", "admin"):
                raise InputError(f"mentor: {mentor!r} is not a mentor's account")
            f.mentor = mentor
    audit.record(settings, actor, "fellowship.fellow.year", f"fellow:{fellow_id}",
                 {"account": username, "mentor": mentor})


def set_week(settings: Settings | None, fellow_id: str, week: int, module: str, *,
             actor: str) -> None:
    settings = settings or get_settings()
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        f.programme = progmod.set_week(get_call(settings, f.call_id), f.programme or [], week,
                                       module)
    audit.record(settings, actor, "fellowship.programme.week", f"fellow:{fellow_id}",
                 {"week": week, "module": module})


def add_log_entry(settings: Settings | None, fellow_id: str, date: dt.date, title: str,
                  detail: str = "", *, actor: str) -> None:
    title = title.strip()
    if not title:
        raise InputError("title: a manual entry needs a title")
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        if not f.start <= date <= f.end:
            raise InputError(f"date: {date} is outside the fellowship year ({f.start} to "
                             f"{f.end})")
        s.add(FellowshipLogEntry(fellow_pk=f.id, date=date, category="manual",
                                 title=title[:255], detail=detail.strip()[:4000],
                                 created_by=actor))
    audit.record(settings, actor, "fellowship.logbook.add", f"fellow:{fellow_id}",
                 {"date": date.isoformat()})


def _platform_entries(settings: Settings, username: str, start: dt.date, end: dt.date
                      ) -> list[dict[str, Any]]:
    """Entries derived from the audit trail and the record: patient records read (one
    per patient and day), lesions measured, reports produced; each with the patient's
    modalities, tracers and the response criteria on record. Patients are named by
    their database key only (no PHI)."""
    from oncohybrid.services import reading, record, worklist

    lo = dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    with session_scope(settings) as s:
        rows = s.execute(sa.select(AuditEntry.at, AuditEntry.action, AuditEntry.target)
                         .where(AuditEntry.username == username, AuditEntry.at >= lo,
                                AuditEntry.at < hi,
                                sa.or_(AuditEntry.action == "patient.read",
                                       AuditEntry.action == "report.download",
                                       AuditEntry.action.like("lesion.%")))
                         .order_by(AuditEntry.at)).all()
    kinds = {"patient.read": ("study-read", "Patient record #{pk} read"),
             "report.download": ("report-downloaded", "Report of patient #{pk} produced")}
    seen: set[tuple[str, str, int]] = set()
    info: dict[int, dict[str, Any]] = {}
    out = []
    for at, action, target in rows:
        if not (target or "").startswith("patient:"):
            continue
        try:
            pk = int(target.split(":", 1)[1])
        except ValueError:
            continue
        cat, title = kinds.get(action, ("lesion-measured", "Lesions of patient #{pk} measured"))
        day = _aware(at).date().isoformat()  # type: ignore[union-attr]
        if (cat, day, pk) in seen:
            continue
        seen.add((cat, day, pk))
        if pk not in info:
            try:
                summ = worklist.patient_summary(pk, settings, identified=False)
                series = [se for st in summ["studies"] for se in st["series"]]
                crit = sorted(record.latest_assessments(reading.patient_id_of(pk, settings),
                                                        settings))
                info[pk] = {"studies": len(summ["studies"]),
                            "modalities": sorted({se["modality"] for se in series
                                                  if se["modality"]}),
                            "tracers": sorted({se["tracer"] for se in series if se["tracer"]}),
                            "criteria": crit}
            except OncohybridError:
                info[pk] = {"studies": 0, "modalities": [], "tracers": [], "criteria": []}
        i = info[pk]
        detail = (f"{i['studies']} studies ({', '.join(i['modalities']) or 'no images'}"
                  f"{'; ' + ', '.join(i['tracers']) if i['tracers'] else ''}); criteria on "
                  f"record: {', '.join(i['criteria']) or 'none'}")
        out.append({"date": day, "source": "platform", "category": cat,
                    "title": title.format(pk=pk), "detail": detail, "score": None,
                    "modalities": i["modalities"], "tracers": i["tracers"],
                    "criteria": i["criteria"]})
    return out


def _area_entries(settings: Settings, username: str, start: dt.date, end: dt.date
                  ) -> list[dict[str, Any]]:
    """The teaching-file, tumour-board and research areas' ``logbook_entries`` (shared
    interface of issue #13), where those areas are installed."""
    import importlib

    out: list[dict[str, Any]] = []
    for name in ("teaching", "boards", "research"):
        try:
            mod = importlib.import_module(f"oncohybrid.services.{name}")
        except ModuleNotFoundError as exc:  # the area has not landed
            if exc.name != f"oncohybrid.services.{name}":
                raise
            continue
        fn = getattr(mod, "logbook_entries", None)
        if fn is None:
            continue
        for e in fn(settings, username, start, end):
            out.append({"date": str(e["date"]), "source": e.get("source", name),
                        "category": e["category"], "title": e["title"],
                        "detail": e.get("detail", ""), "score": e.get("score")})
    return out


def logbook(settings: Settings | None, fellow_id: str, *, username: str, role: str
            ) -> dict[str, Any]:
    """The fellow's logbook: derived entries, manual entries and research milestones, by
    month, with each month's sign-off and the summary."""
    settings = settings or get_settings()
    view = fellow_view(settings, fellow_id, username=username, role=role)
    start, end = dt.date.fromisoformat(view["start"]), dt.date.fromisoformat(view["end"])
    entries: list[dict[str, Any]] = []
    if view["username"]:
        entries += _platform_entries(settings, view["username"], start, end)
        entries += _area_entries(settings, view["username"], start, end)
    with session_scope(settings) as s:
        for e in s.scalars(sa.select(FellowshipLogEntry).where(
                FellowshipLogEntry.fellow_pk == view["pk"])):
            entries.append({"date": e.date.isoformat(), "source": "manual",
                            "category": e.category, "title": e.title, "detail": e.detail,
                            "score": None})
    labels = dict(RESEARCH_STAGES)
    for key, m in (view["research"].get("milestones") or {}).items():
        if m.get("status") == "done" and m.get("date"):
            entries.append({"date": m["date"], "source": "research-project",
                            "category": "research-milestone",
                            "title": f"Research: {labels.get(key, key)}",
                            "detail": m.get("note", ""), "score": None})
    entries = [e for e in entries if view["start"] <= e["date"] <= view["end"]]
    months = logmod.by_month(entries)
    all_months = sorted({w["start"][:7] for w in view["programme"]} | set(months))
    return {"fellow": view, "summary": logmod.summary(entries),
            "months": [{"month": m, "entries": len(months.get(m, [])),
                        "rows": months.get(m, []), "signoff": view["signoffs"].get(m)}
                       for m in all_months]}


def sign_month(settings: Settings | None, fellow_id: str, month: str, *, mentor: str,
               comment: str = "") -> None:
    """The mentor signs one month of the logbook (the entry count is kept with it)."""
    settings = settings or get_settings()
    try:
        dt.date.fromisoformat(month + "-01")
    except ValueError:
        raise InputError(f"month: {month!r} is not YYYY-MM") from None
    book = logbook(settings, fellow_id, username=mentor, role="mentor")
    if book["fellow"]["mentor"] != mentor:
        raise Forbidden(f"fellow {fellow_id!r}: only the fellow's mentor signs the logbook")
    n = next((m["entries"] for m in book["months"] if m["month"] == month), None)
    if n is None:
        raise InputError(f"month: {month} is outside the fellowship year")
    with session_scope(settings) as s:
        if s.scalar(sa.select(FellowshipSignOff.id).where(
                FellowshipSignOff.fellow_pk == book["fellow"]["pk"],
                FellowshipSignOff.month == month)) is not None:
            raise InputError(f"month {month} is already signed off")
        s.add(FellowshipSignOff(fellow_pk=book["fellow"]["pk"], month=month, mentor=mentor,
                                entries=n, comment=comment.strip()[:2000] or None))
    audit.record(settings, mentor, "fellowship.logbook.signoff", f"fellow:{fellow_id}",
                 {"month": month, "entries": n})


def add_evaluation(settings: Settings | None, fellow_id: str, kind: str, period: str,
                   scores: dict[str, Any], comment: str, *, author: str) -> None:
    """Mentor -> fellow (by the mentor) or fellow -> programme (by the fellow), each item
    scored 1-5."""
    if kind not in EVALUATION_KINDS:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(EVALUATION_KINDS)}")
    period = period.strip()
    if not period:
        raise InputError("period: required (e.g. 'month 3' or '2021-Q4')")
    vals: dict[str, int] = {}
    for item in EVALUATION_ITEMS:
        raw = scores.get(item)
        try:
            v = int(str(raw))
        except ValueError:
            raise InputError(f"scores.{item}: {raw!r} must be 1 to 5") from None
        if not 1 <= v <= 5:
            raise InputError(f"scores.{item}: {raw!r} must be 1 to 5")
        vals[item] = v
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        a = s.get(FellowshipApplication, f.application_pk) if f.application_pk else None
        is_fellow = author == f.username or (a is not None and a.username == author)
        if (kind == "mentor-to-fellow" and author != f.mentor) or (
                kind == "fellow-to-programme" and not is_fellow):
            raise Forbidden(f"fellow {fellow_id!r}: {EVALUATION_KINDS[kind]} is written by "
                            f"{'the mentor' if kind == 'mentor-to-fellow' else 'the fellow'}")
        s.add(FellowshipEvaluation(fellow_pk=f.id, kind=kind, period=period[:32],
                                   author=author, scores=vals, comment=comment.strip()[:4000]))
    audit.record(settings, author, "fellowship.evaluation", f"fellow:{fellow_id}",
                 {"kind": kind, "period": period[:32]})


def update_research(settings: Settings | None, fellow_id: str, *, title: str,
                    milestones: dict[str, dict[str, str]],
                    collaborators: list[dict[str, str]], actor: str) -> None:
    """The research project: stages (protocol … manuscript) with status and date, and the
    collaborators (physicians, engineers, physicists)."""
    clean: dict[str, dict[str, str]] = {}
    for key, _label in RESEARCH_STAGES:
        m = milestones.get(key) or {}
        status = m.get("status") or "not started"
        if status not in MILESTONE_STATES:
            raise InputError(f"milestones.{key}.status: {status!r} is not one of "
                             f"{', '.join(MILESTONE_STATES)}")
        date = (m.get("date") or "").strip()
        if date:
            try:
                dt.date.fromisoformat(date)
            except ValueError:
                raise InputError(f"milestones.{key}.date: {date!r} is not YYYY-MM-DD") from None
        if status == "done" and not date:
            raise InputError(f"milestones.{key}.date: a completed stage needs its date")
        clean[key] = {"status": status, "date": date, "note": (m.get("note") or "")[:1000]}
    collab = []
    for i, c in enumerate(collaborators):
        name, role = (c.get("name") or "").strip(), (c.get("role") or "").strip()
        if name and role not in ("physician", "engineer", "physicist", "other"):
            raise InputError(f"collaborators[{i}].role: {role!r} is not physician, engineer, "
                             "physicist or other")
        if name:
            collab.append({"name": name[:200], "role": role})
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        f.research = {"title": title.strip()[:300], "milestones": clean,
                      "collaborators": collab}
    audit.record(settings, actor, "fellowship.research", f"fellow:{fellow_id}",
                 {"done": sum(m["status"] == "done" for m in clean.values())})


REPORT_SECTIONS = ("summary", "clinical", "research", "reflection")


def save_report_text(settings: Settings | None, fellow_id: str, sections: dict[str, str], *,
                     actor: str) -> None:
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        if f.report_signed_by:
            raise InputError("the final report is signed off; it can no longer be edited")
        f.report_text = {k: (sections.get(k) or "").strip()[:20000] for k in REPORT_SECTIONS}
    audit.record(settings, actor, "fellowship.report.edit", f"fellow:{fellow_id}")


def sign_off_report(settings: Settings | None, fellow_id: str, *, mentor: str) -> None:
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        if f.mentor != mentor:
            raise Forbidden(f"fellow {fellow_id!r}: only the fellow's mentor "
                            f"({f.mentor or 'none assigned'}) signs off the final report")
        if f.report_signed_by:
            raise InputError("the final report is already signed off")
        f.report_signed_by, f.report_signed_at = mentor, _now()
    audit.record(settings, mentor, "fellowship.report.signoff", f"fellow:{fellow_id}")


def final_report(settings: Settings | None, fellow_id: str, out: str | Path, *,
                 username: str = "cli", role: str = "director") -> Path:
    """The final report PDF from the logbook, research record and evaluations."""
    settings = settings or get_settings()
    book = logbook(settings, fellow_id, username=username, role=role)
    f = book["fellow"]
    call = get_call(settings, f["call_id"])
    path = final_report_pdf(out, {
        "fellow": f, "programme": call.title, "host": call.host["name"],
        "summary": book["summary"], "months": book["months"], "signoffs": f["signoffs"],
        "research": f["research"], "evaluations": f["evaluations"],
        "text": f["report_text"], "signed_by": f["report_signed_by"],
        "signed_at": f["report_signed_at"]})
    audit.record(settings, username, "fellowship.report.pdf", f"fellow:{fellow_id}")
    return path


# ---------------------------------------------------------------- certificate
VERIFY_HINT = ("Verify at the host's oncohybrid /fellowship/verify page or with "
               "'oncohybrid fellowship verify CODE'.")


def issue_certificate(settings: Settings | None, fellow_id: str, out: str | Path, *,
                      actor: str = "cli", today: dt.date | None = None) -> tuple[str, Path]:
    """Issue (once) and write the certificate PDF; the code signs its content. Needs the
    final report signed off by the mentor."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        f = _fellow(s, fellow_id)
        cert = s.scalar(sa.select(FellowshipCertificate).where(
            FellowshipCertificate.fellow_pk == f.id))
        if cert is None:
            if not f.report_signed_by or not f.report_signed_at:
                raise OncohybridError(
                    f"fellow {fellow_id!r}: the final report is not signed off by the mentor "
                    f"yet (web: the fellow's page; CLI: oncohybrid fellowship report "
                    f"{fellow_id} --sign-off MENTOR)")
            call = get_call(settings, f.call_id)
            serial = f"{call.society['short'].upper()}{f.start.year}-{f.id:04d}"
            content = {
                "serial": serial, "fellow_id": f.fellow_id, "fellow_name": f.name,
                "programme": call.programme, "topic": call.topic, "track": f.track,
                "host": call.host["name"], "city": call.host["city"],
                "school": call.society["school"], "society": call.society["name"],
                "start": f.start.isoformat(), "end": f.end.isoformat(),
                "report_signed_on": _aware(f.report_signed_at).date().isoformat(),  # type: ignore[union-attr]
                "issued_on": (today or _now().date()).isoformat(),
            }
            code = certmod.make_code(certificate_key(settings), content)
            cert = FellowshipCertificate(serial=serial, fellow_pk=f.id, content=content,
                                         code=code, issued_by=actor)
            s.add(cert)
            new = True
        else:
            new = False
        content, code = dict(cert.content), cert.code
    path = certificate_pdf(out, content, code, VERIFY_HINT)
    audit.record(settings, actor, "fellowship.certificate." + ("issue" if new else "print"),
                 f"fellow:{fellow_id}", {"serial": content["serial"]})
    return code, path


def verify(settings: Settings | None, code: str) -> dict[str, Any]:
    """``{"valid": bool, "serial", "certificate" (the content, only when valid), "reason"}``.
    The signature is recomputed over the stored content with the workspace key."""
    settings = settings or get_settings()
    parts = certmod.split_code(code or "")
    if parts is None:
        return {"valid": False, "serial": None, "certificate": None,
                "reason": "not a certificate code (SERIAL-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-"
                          "XXXX-XXXX)"}
    with session_scope(settings) as s:
        cert = s.scalar(sa.select(FellowshipCertificate).where(
            FellowshipCertificate.serial == parts[0]))
        content = dict(cert.content) if cert else None
    if content is None:
        return {"valid": False, "serial": parts[0], "certificate": None,
                "reason": f"no certificate with serial {parts[0]} was issued here"}
    if not certmod.verify_code(certificate_key(settings), code, content):
        return {"valid": False, "serial": parts[0], "certificate": None,
                "reason": "the signature does not match the certificate's content"}
    return {"valid": True, "serial": parts[0], "certificate": content,
            "reason": "the signature matches the certificate's content"}
