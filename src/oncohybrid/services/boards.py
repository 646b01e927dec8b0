"""Use-case: tumour boards — boards, sessions, cases, preparation, decisions, attendance.

The rules (schedule, agenda timing, checklist, follow-up dates, category wording) live in
:mod:`oncohybrid.boards`; this module reads and writes the tables of
:mod:`oncohybrid.store.models_board` around them, records every change in the audit log
(:mod:`oncohybrid.services.audit`, targets by database key, never by patient name or
identifier) and feeds the reading room: follow-up badges of the worklist, the patient
page's board history, and the fellowship logbook (:func:`logbook_entries`).

The meeting pack, slides and minutes are written by :mod:`oncohybrid.services.boards_pack`.

Identifiers: boards, sessions and cases are named by their database keys (``board 3``,
``session 12``); patients by (0010,0020) *Patient ID* at the command line and by the
database key in the web application. An unknown id is invalid input (exit code 2) whose
message names it; nothing is written then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid.boards.agenda import agenda as agenda_slots
from oncohybrid.boards.checklist import MANUAL_ITEMS, CaseFacts, checklist, is_ready
from oncohybrid.boards.followup import follow_up_due, follow_up_state
from oncohybrid.boards.schedule import parse_hhmm, parse_weekday, session_dates
from oncohybrid.boards.vocabulary import CRITERION_NAMES, category_text
from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError
from oncohybrid.services import audit
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Study
from oncohybrid.store.models_board import (
    Board,
    BoardAttendance,
    BoardCase,
    BoardDecision,
    BoardMember,
    BoardSession,
)

__all__ = [
    "create_board", "list_boards", "board_detail", "add_member", "create_session",
    "schedule_sessions", "list_sessions", "session_detail", "add_case", "remove_case",
    "tick", "decide", "attend", "close_session", "follow_up_badges", "patient_history",
    "patient_notes", "logbook_entries", "resolve_patient", "case_of", "open_follow_ups",
]

#: Longest free text accepted for a question, decision, rationale or dissent.
MAX_TEXT = 4000
#: Default follow-up examination when a decision orders one without naming it.
DEFAULT_FOLLOW_UP_EXAM = "imaging"


# --------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------


def _text(value: str | None, field: str, *, required: bool = False, limit: int = MAX_TEXT
          ) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InputError(f"{field}: must not be empty")
        return None
    if len(text) > limit:
        raise InputError(f"{field}: {len(text)} characters; at most {limit}")
    if any(ord(ch) < 32 and ch not in "\n\t\r" for ch in text):
        raise InputError(f"{field}: control characters are not allowed")
    return text


def _board(s: Session, board_id: int) -> Board:
    row = s.get(Board, int(board_id))
    if row is None:
        raise InputError(f"board {board_id}: no such board")
    return row


def _session(s: Session, session_id: int) -> BoardSession:
    row = s.get(BoardSession, int(session_id))
    if row is None:
        raise InputError(f"session {session_id}: no such board session")
    return row


def _open_session(s: Session, session_id: int) -> BoardSession:
    row = _session(s, session_id)
    if row.status == "closed":
        raise InputError(f"session {session_id}: closed on "
                         f"{row.closed_at:%Y-%m-%d} by {row.closed_by}; no further changes")
    return row


def _patient(s: Session, patient: str | int) -> Patient:
    if isinstance(patient, int):
        row = s.get(Patient, patient)
        if row is None:
            raise InputError(f"patient #{patient}: not in the study database")
        return row
    pid = str(patient).strip()
    rows = s.scalars(sa.select(Patient).where(Patient.patient_id == pid)).all()
    if not rows:
        raise InputError(f"patient {pid}: not in the study database")
    if len(rows) > 1:
        raise InputError(f"patient {pid}: ambiguous, {len(rows)} issuers of patient ID")
    return rows[0]


def resolve_patient(settings: Settings | None, patient: str | int) -> int:
    """Database key of a patient given by Patient ID (str) or key (int)."""
    with session_scope(settings) as s:
        return _patient(s, patient).id


def _case(s: Session, session_pk: int, patient_pk: int, patient_text: str) -> BoardCase:
    row = s.scalars(sa.select(BoardCase).where(BoardCase.session_pk == session_pk,
                                               BoardCase.patient_pk == patient_pk)).first()
    if row is None:
        raise InputError(f"patient {patient_text}: not on the agenda of session {session_pk}; "
                         "add the case first (board add)")
    return row


def case_of(settings: Settings | None, case_id: int) -> dict[str, int]:
    """``{"case_id", "session_id", "patient_pk"}`` of a case (InputError when unknown)."""
    with session_scope(settings) as s:
        row = s.get(BoardCase, int(case_id))
        if row is None:
            raise InputError(f"case {case_id}: no such board case")
        return {"case_id": row.id, "session_id": row.session_pk, "patient_pk": row.patient_pk}


# --------------------------------------------------------------------------------------
# boards and sessions
# --------------------------------------------------------------------------------------


def create_board(settings: Settings | None, name: str, specialty: str, *,
                 weekday: str | int | None = None, start_time: str = "08:00",
                 minutes_per_case: int = 10, every_weeks: int = 1,
                 actor: str = "cli") -> dict[str, Any]:
    """A new board; ``weekday`` (``"tuesday"`` or 1–7) makes it a weekly meeting."""
    settings = settings or get_settings()
    name_t = _text(name, "NAME", required=True, limit=128)
    spec = _text(specialty, "--specialty", required=True, limit=64)
    day = parse_weekday(weekday) if weekday not in (None, "") else None
    start = parse_hhmm(start_time)
    if not 1 <= int(minutes_per_case) <= 240:
        raise InputError(f"--minutes-per-case {minutes_per_case}: must be 1 … 240")
    if not 1 <= int(every_weeks) <= 52:
        raise InputError(f"--every-weeks {every_weeks}: must be 1 … 52")
    with session_scope(settings) as s:
        row = Board(name=name_t, specialty=spec, weekday=day, start_time=start,
                    minutes_per_case=int(minutes_per_case), every_weeks=int(every_weeks),
                    created_by=actor)
        s.add(row)
        s.flush()
        board_id = row.id
    audit.record(settings, actor, "board.create", f"board:{board_id}",
                 {"specialty": spec, "weekday": day})
    return {"board_id": board_id}


def _board_dict(b: Board) -> dict[str, Any]:
    return {"board_id": b.id, "name": b.name, "specialty": b.specialty,
            "weekday": b.weekday, "start_time": b.start_time,
            "minutes_per_case": b.minutes_per_case, "every_weeks": b.every_weeks}


def list_boards(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every board with its next planned session."""
    today = dt.date.today()
    with session_scope(settings) as s:
        out = []
        for b in s.scalars(sa.select(Board).order_by(Board.name, Board.id)):
            d = _board_dict(b)
            nxt = s.scalars(sa.select(BoardSession).where(
                BoardSession.board_pk == b.id, BoardSession.date >= today,
                BoardSession.status == "planned").order_by(BoardSession.date)).first()
            d["next_session"] = ({"session_id": nxt.id, "date": nxt.date.isoformat()}
                                 if nxt else None)
            d["members"] = [{"name": m.name, "username": m.username, "specialty": m.specialty}
                            for m in s.scalars(sa.select(BoardMember).where(
                                BoardMember.board_pk == b.id).order_by(
                                    BoardMember.specialty, BoardMember.name))]
            out.append(d)
        return out


def board_detail(settings: Settings | None, board_id: int) -> dict[str, Any]:
    with session_scope(settings) as s:
        b = _board(s, board_id)
        d = _board_dict(b)
        d["members"] = [{"name": m.name, "username": m.username, "specialty": m.specialty}
                        for m in s.scalars(sa.select(BoardMember).where(
                            BoardMember.board_pk == b.id).order_by(BoardMember.specialty,
                                                                    BoardMember.name))]
        d["sessions"] = [{"session_id": x.id, "date": x.date.isoformat(), "status": x.status}
                         for x in s.scalars(sa.select(BoardSession).where(
                             BoardSession.board_pk == b.id).order_by(BoardSession.date))]
        return d


def _username_of(s: Session, name: str) -> str | None:
    from oncohybrid.services.users import username_key
    from oncohybrid.store.models_web import WebUser

    key = username_key(name)
    user = s.scalars(sa.select(WebUser).where(WebUser.username_key == key)).first()
    return user.username if user else None


def add_member(settings: Settings | None, board_id: int, name: str, specialty: str, *,
               actor: str = "cli") -> dict[str, Any]:
    """A standing member; ``name`` that is a user name links the member to that user."""
    name_t = _text(name, "member name", required=True, limit=128)
    spec = _text(specialty, "member specialty", required=True, limit=64)
    with session_scope(settings) as s:
        _board(s, board_id)
        row = BoardMember(board_pk=int(board_id), name=name_t, specialty=spec,
                          username=_username_of(s, name_t or ""))
        s.add(row)
        s.flush()
        out = {"member_id": row.id, "username": row.username}
    audit.record(settings, actor, "board.member", f"board:{board_id}", {"specialty": spec})
    return out


def create_session(settings: Settings | None, board_id: int, date: dt.date | str, *,
                   start_time: str | None = None, actor: str = "cli") -> dict[str, Any]:
    """One dated session of ``board_id``."""
    settings = settings or get_settings()
    day = _date(date, "--date")
    with session_scope(settings) as s:
        b = _board(s, board_id)
        clash = s.scalars(sa.select(BoardSession).where(BoardSession.board_pk == b.id,
                                                        BoardSession.date == day)).first()
        if clash is not None:
            raise InputError(f"board {board_id}: already has session {clash.id} on {day}")
        row = BoardSession(board_pk=b.id, date=day,
                           start_time=parse_hhmm(start_time) if start_time else b.start_time,
                           status="planned", created_by=actor)
        s.add(row)
        s.flush()
        session_id = row.id
    audit.record(settings, actor, "board.session", f"board-session:{session_id}",
                 {"board": int(board_id), "date": day.isoformat()})
    return {"session_id": session_id}


def _date(value: dt.date | str, field: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"{field} {value!r}: expected a date YYYY-MM-DD") from None


def schedule_sessions(settings: Settings | None, board_id: int, start: dt.date | str,
                      end: dt.date | str, *, skip: Iterable[dt.date] = (),
                      actor: str = "cli") -> list[dict[str, Any]]:
    """Sessions on the board's weekly schedule from ``start`` to ``end`` (existing kept)."""
    d0, d1 = _date(start, "start"), _date(end, "end")
    with session_scope(settings) as s:
        b = _board(s, board_id)
        if b.weekday is None:
            raise InputError(f"board {board_id}: has no weekly schedule (no weekday)")
        dates = session_dates(b.weekday, d0, d1, every_weeks=b.every_weeks, skip=skip)
        existing = set(s.scalars(sa.select(BoardSession.date).where(
            BoardSession.board_pk == b.id)))
    out = []
    for day in dates:
        if day not in existing:
            out.append({"date": day.isoformat(),
                        **create_session(settings, board_id, day, actor=actor)})
    return out


def list_sessions(settings: Settings | None = None, *, board_id: int | None = None
                  ) -> list[dict[str, Any]]:
    with session_scope(settings) as s:
        stmt = (sa.select(BoardSession, Board).join(Board, Board.id == BoardSession.board_pk)
                .order_by(BoardSession.date.desc(), BoardSession.id.desc()))
        if board_id is not None:
            stmt = stmt.where(BoardSession.board_pk == int(board_id))
        counts = dict(s.execute(sa.select(BoardCase.session_pk, sa.func.count(BoardCase.id))
                                .group_by(BoardCase.session_pk)).all())
        return [{"session_id": x.id, "board_id": b.id, "board": b.name,
                 "specialty": b.specialty, "date": x.date.isoformat(), "status": x.status,
                 "cases": int(counts.get(x.id, 0))} for x, b in s.execute(stmt)]


# --------------------------------------------------------------------------------------
# cases and preparation
# --------------------------------------------------------------------------------------


def add_case(settings: Settings | None, session_id: int, patient: str | int, *,
             question: str | None = None, minutes: int | None = None,
             actor: str = "cli") -> dict[str, Any]:
    """Put a patient on a session's agenda with the clinical question."""
    settings = settings or get_settings()
    q = _text(question, "--question")
    if minutes is not None and not 1 <= int(minutes) <= 240:
        raise InputError(f"--minutes {minutes}: must be 1 … 240")
    with session_scope(settings) as s:
        sess = _open_session(s, session_id)
        p = _patient(s, patient)
        dup = s.scalars(sa.select(BoardCase).where(BoardCase.session_pk == sess.id,
                                                   BoardCase.patient_pk == p.id)).first()
        if dup is not None:
            raise InputError(f"patient {patient}: already on the agenda of session "
                             f"{session_id} (case {dup.id})")
        last = s.scalar(sa.select(sa.func.max(BoardCase.position))
                        .where(BoardCase.session_pk == sess.id)) or 0
        row = BoardCase(session_pk=sess.id, patient_pk=p.id, position=last + 1, question=q,
                        minutes=minutes, checklist={}, added_by=actor)
        s.add(row)
        s.flush()
        out = {"case_id": row.id, "session_id": sess.id, "patient_pk": p.id,
               "position": row.position}
    audit.record(settings, actor, "board.case.add", f"board-case:{out['case_id']}",
                 {"session": sess.id, "patient_pk": out["patient_pk"]})
    return out


def remove_case(settings: Settings | None, case_id: int, *, actor: str = "cli") -> None:
    with session_scope(settings) as s:
        row = s.get(BoardCase, int(case_id))
        if row is None:
            raise InputError(f"case {case_id}: no such board case")
        _open_session(s, row.session_pk)
        if s.scalars(sa.select(BoardDecision).where(BoardDecision.case_pk == row.id)).first():
            raise InputError(f"case {case_id}: already decided; a decided case stays")
        session_pk = row.session_pk
        s.delete(row)
        s.flush()
        for k, c in enumerate(s.scalars(sa.select(BoardCase).where(
                BoardCase.session_pk == session_pk).order_by(BoardCase.position)), start=1):
            c.position = k
    audit.record(settings, actor, "board.case.remove", f"board-case:{case_id}",
                 {"session": session_pk})


def tick(settings: Settings | None, case_id: int, item: str, done: bool, *,
         actor: str = "cli") -> None:
    """Tick (or untick) a manual checklist item of a case."""
    if item not in MANUAL_ITEMS:
        raise InputError(f"checklist item {item!r}: one of "
                         f"{', '.join(sorted(MANUAL_ITEMS))}")
    with session_scope(settings) as s:
        row = s.get(BoardCase, int(case_id))
        if row is None:
            raise InputError(f"case {case_id}: no such board case")
        _open_session(s, row.session_pk)
        ticks = dict(row.checklist or {})
        if done:
            ticks[item] = actor
        else:
            ticks.pop(item, None)
        row.checklist = ticks
    audit.record(settings, actor, "board.case.checklist", f"board-case:{case_id}",
                 {"item": item, "done": bool(done)})


# --------------------------------------------------------------------------------------
# what a session shows
# --------------------------------------------------------------------------------------


def _latest_responses(s: Session, patient_pk: int) -> dict[str, dict[str, Any]]:
    """criterion → latest category (code), its text, best overall response, date, trace."""
    from oncohybrid.store.models_record import AssessmentRecord

    latest: dict[str, Any] = {}
    for row in s.scalars(sa.select(AssessmentRecord).where(
            AssessmentRecord.patient_pk == patient_pk).order_by(AssessmentRecord.id)):
        latest[row.criterion] = row.result_json or {}
    out: dict[str, dict[str, Any]] = {}
    for crit, res in latest.items():
        tps = res.get("timepoints") or []
        last = tps[-1] if tps else {}
        code = last.get("overall")
        out[crit] = {
            "criterion": crit, "name": CRITERION_NAMES.get(crit, crit), "code": code,
            "text": category_text(code, crit), "date": last.get("date"),
            "best": res.get("best_overall_response"),
            "best_text": (category_text(res.get("best_overall_response"), crit)
                          if res.get("best_overall_response") else None),
            "trace": list(last.get("trace") or []),
            "history": [{"date": t.get("date"), "code": t.get("overall"),
                         "change_pct": t.get("change_from_baseline_pct")} for t in tps],
        }
    return out


def _facts(s: Session, case: BoardCase, session_date: dt.date) -> CaseFacts:
    from oncohybrid.store.models_record import AssessmentRecord

    dates = tuple(d for d in s.scalars(sa.select(Study.study_date).where(
        Study.patient_pk == case.patient_pk)) if d is not None)
    until: dict[str, dt.date | None] = {}
    for row in s.scalars(sa.select(AssessmentRecord).where(
            AssessmentRecord.patient_pk == case.patient_pk).order_by(AssessmentRecord.id)):
        tps = (row.result_json or {}).get("timepoints") or []
        try:
            until[row.criterion] = dt.date.fromisoformat(tps[-1]["date"]) if tps else None
        except (KeyError, TypeError, ValueError):
            until[row.criterion] = None
    return CaseFacts(
        imaging_dates=dates, assessed_until=until,
        prior_decisions=len(_prior_decisions(s, case.patient_pk, session_date, case.id)),
        ticks=dict(case.checklist or {}))


def _prior_decisions(s: Session, patient_pk: int, before: dt.date, case_pk: int | None
                     ) -> list[dict[str, Any]]:
    """Decisions of earlier sessions (any board) for the patient, newest first."""
    stmt = (sa.select(BoardDecision, BoardCase, BoardSession, Board)
            .join(BoardCase, BoardCase.id == BoardDecision.case_pk)
            .join(BoardSession, BoardSession.id == BoardCase.session_pk)
            .join(Board, Board.id == BoardSession.board_pk)
            .where(BoardDecision.patient_pk == patient_pk, BoardSession.date <= before)
            .order_by(BoardSession.date.desc(), BoardDecision.id.desc()))
    out = []
    for d, c, x, b in s.execute(stmt):
        if case_pk is not None and c.id == case_pk:
            continue
        out.append({**_decision_dict(d), "session_id": x.id, "date": x.date.isoformat(),
                    "board": b.name})
    return out


def _decision_dict(d: BoardDecision) -> dict[str, Any]:
    return {"decision_id": d.id, "recommendation": d.recommendation,
            "consensus": d.consensus, "rationale": d.rationale, "dissent": d.dissent,
            "follow_up_exam": d.follow_up_exam,
            "follow_up_due": d.follow_up_due.isoformat() if d.follow_up_due else None,
            "follow_up_done": d.follow_up_done, "decided_by": d.decided_by}


def session_detail(settings: Settings | None, session_id: int) -> dict[str, Any]:
    """The session with its board, agenda (times), cases, checklists, decisions and
    attendance; patient identity as stored (callers pseudonymise for researchers)."""
    with session_scope(settings) as s:
        x = _session(s, session_id)
        b = _board(s, x.board_pk)
        cases = s.scalars(sa.select(BoardCase).where(BoardCase.session_pk == x.id)
                          .order_by(BoardCase.position)).all()
        slots = agenda_slots(x.start_time, [c.minutes for c in cases],
                                    default_minutes=b.minutes_per_case)
        out_cases = []
        for c, slot in zip(cases, slots, strict=True):
            p = s.get(Patient, c.patient_pk)
            items = checklist(_facts(s, c, x.date))
            dec = s.scalars(sa.select(BoardDecision).where(BoardDecision.case_pk == c.id)).first()
            out_cases.append({
                "case_id": c.id, "position": c.position, "patient_pk": c.patient_pk,
                "patient_id": p.patient_id if p else None,
                "patient_name": p.patient_name if p else None,
                "issuer": p.issuer_of_patient_id if p else "",
                "question": c.question, "start": slot.start, "end": slot.end,
                "minutes": slot.minutes,
                "checklist": [{"key": i.key, "label": i.label, "state": i.state,
                               "note": i.note,
                               "manual": i.key in MANUAL_ITEMS}
                              for i in items],
                "ready": is_ready(items),
                "responses": list(_latest_responses(s, c.patient_pk).values()),
                "decision": _decision_dict(dec) if dec else None,
                "previous": _prior_decisions(s, c.patient_pk, x.date, c.id),
            })
        attendance = [{"name": a.name, "username": a.username, "specialty": a.specialty}
                      for a in s.scalars(sa.select(BoardAttendance).where(
                          BoardAttendance.session_pk == x.id).order_by(
                              BoardAttendance.specialty, BoardAttendance.name))]
        members = [{"name": m.name, "username": m.username, "specialty": m.specialty}
                   for m in s.scalars(sa.select(BoardMember).where(
                       BoardMember.board_pk == b.id))]
        return {
            "session_id": x.id, "date": x.date.isoformat(), "start_time": x.start_time,
            "status": x.status, "closed_by": x.closed_by,
            "closed_at": x.closed_at.isoformat(timespec="minutes") if x.closed_at else None,
            "board": _board_dict(b), "cases": out_cases, "attendance": attendance,
            "members": members,
            "specialties_present": sorted({a["specialty"] for a in attendance}),
            "specialties_missing": sorted({m["specialty"] for m in members}
                                          - {a["specialty"] for a in attendance}),
        }


# --------------------------------------------------------------------------------------
# the meeting
# --------------------------------------------------------------------------------------


def decide(settings: Settings | None, session_id: int, patient: str | int, decision: str, *,
           rationale: str | None = None, dissent: str | None = None,
           consensus: bool = True, follow_up_days: int | None = None,
           follow_up_exam: str | None = None, actor: str = "cli") -> dict[str, Any]:
    """Record (or replace) the room's decision on a case; a follow-up exam gets its due
    date ``follow_up_days`` after the session and shows in the worklist until done."""
    settings = settings or get_settings()
    rec = _text(decision, "--decision", required=True)
    why = _text(rationale, "--rationale")
    against = _text(dissent, "--dissent")
    exam = _text(follow_up_exam, "--follow-up-exam", limit=64)
    if exam and follow_up_days is None:
        raise InputError("--follow-up-exam: give --follow-up-days as well (its due date)")
    with session_scope(settings) as s:
        x = _open_session(s, session_id)
        p = _patient(s, patient)
        c = _case(s, x.id, p.id, str(patient))
        due = follow_up_due(x.date, follow_up_days) if follow_up_days is not None else None
        row = s.scalars(sa.select(BoardDecision).where(BoardDecision.case_pk == c.id)).first()
        replaced = row is not None
        if row is None:
            row = BoardDecision(case_pk=c.id, patient_pk=p.id, recommendation=rec or "",
                                decided_by=actor)
            s.add(row)
        row.recommendation = rec or ""
        row.rationale = why
        row.dissent = against
        row.consensus = bool(consensus)
        row.follow_up_due = due
        row.follow_up_exam = (exam or DEFAULT_FOLLOW_UP_EXAM) if due else None
        row.follow_up_done = False
        row.decided_by = actor
        row.decided_at = dt.datetime.now(dt.UTC)
        s.flush()
        out = {"decision_id": row.id, "case_id": c.id, "session_id": x.id,
               "patient_pk": p.id, "follow_up_exam": row.follow_up_exam,
               "follow_up_due": due.isoformat() if due else None, "replaced": replaced}
    audit.record(settings, actor, "board.decision", f"board-case:{out['case_id']}",
                 {"session": out["session_id"], "patient_pk": out["patient_pk"],
                  "consensus": bool(consensus), "dissent": bool(against),
                  "follow_up_due": out["follow_up_due"], "replaced": replaced})
    return out


def attend(settings: Settings | None, session_id: int, name: str, specialty: str, *,
           actor: str = "cli") -> dict[str, Any]:
    """Record one attendee by specialty; a name that is a user name links that user
    (the fellowship logbook counts their attendance)."""
    name_t = _text(name, "attendee", required=True, limit=128)
    spec = _text(specialty, "attendee specialty", required=True, limit=64)
    with session_scope(settings) as s:
        x = _open_session(s, session_id)
        row = s.scalars(sa.select(BoardAttendance).where(
            BoardAttendance.session_pk == x.id, BoardAttendance.name == name_t)).first()
        if row is None:
            row = BoardAttendance(session_pk=x.id, name=name_t or "", specialty=spec or "")
            s.add(row)
        row.specialty = spec or ""
        row.username = _username_of(s, name_t or "")
        s.flush()
        out = {"session_id": x.id, "name": row.name, "username": row.username,
               "specialty": row.specialty}
    audit.record(settings, actor, "board.attendance", f"board-session:{session_id}",
                 {"specialty": spec, "user": out["username"]})
    return out


def close_session(settings: Settings | None, session_id: int, *, actor: str = "cli"
                  ) -> dict[str, Any]:
    """Close a session: its decisions become final; undecided cases are listed."""
    with session_scope(settings) as s:
        x = _open_session(s, session_id)
        cases = s.scalars(sa.select(BoardCase).where(BoardCase.session_pk == x.id)).all()
        decided = set(s.scalars(sa.select(BoardDecision.case_pk).where(
            BoardDecision.case_pk.in_([c.id for c in cases]))))
        x.status = "closed"
        x.closed_by = actor
        x.closed_at = dt.datetime.now(dt.UTC)
        out = {"session_id": x.id, "cases": len(cases), "decided": len(decided),
               "undecided_case_ids": sorted(c.id for c in cases if c.id not in decided)}
    audit.record(settings, actor, "board.session.close", f"board-session:{session_id}",
                 {"cases": out["cases"], "decided": out["decided"]})
    return out


# --------------------------------------------------------------------------------------
# follow-up, patient history, logbook
# --------------------------------------------------------------------------------------


def open_follow_ups(settings: Settings | None, patient_pks: Sequence[int] | None = None,
                    *, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Follow-up exams ordered by boards and not done, oldest due first."""
    today = today or dt.date.today()
    with session_scope(settings) as s:
        stmt = (sa.select(BoardDecision, BoardSession, Board)
                .join(BoardCase, BoardCase.id == BoardDecision.case_pk)
                .join(BoardSession, BoardSession.id == BoardCase.session_pk)
                .join(Board, Board.id == BoardSession.board_pk)
                .where(BoardDecision.follow_up_due.is_not(None),
                       BoardDecision.follow_up_done.is_(False))
                .order_by(BoardDecision.follow_up_due))
        if patient_pks is not None:
            stmt = stmt.where(BoardDecision.patient_pk.in_(list(patient_pks)))
        out = []
        for d, x, b in s.execute(stmt):
            if d.follow_up_due is None:
                continue
            p = s.get(Patient, d.patient_pk)
            out.append({"patient_pk": d.patient_pk,
                        "patient_id": p.patient_id if p else None,
                        "issuer": p.issuer_of_patient_id if p else "",
                        "exam": d.follow_up_exam, "due": d.follow_up_due.isoformat(),
                        "board": b.name, "session_id": x.id, "session_date": x.date.isoformat(),
                        "decision_id": d.id, "recommendation": d.recommendation,
                        "state": follow_up_state(d.follow_up_due, today)})
        return out


def follow_up_badges(settings: Settings, patient_pks: list[int]) -> dict[int, list[str]]:
    """Worklist badges: ``"board follow-up: CT due 2027-01-05"`` (``overdue`` when late)."""
    out: dict[int, list[str]] = {}
    if not patient_pks:
        return out
    for f in open_follow_ups(settings, patient_pks):
        word = "overdue since" if f["state"] == "overdue" else "due"
        out.setdefault(f["patient_pk"], []).append(
            f"board follow-up: {f['exam']} {word} {f['due']}")
    return out


def complete_follow_up(settings: Settings | None, decision_id: int, *, actor: str = "cli"
                       ) -> None:
    with session_scope(settings) as s:
        row = s.get(BoardDecision, int(decision_id))
        if row is None:
            raise InputError(f"decision {decision_id}: no such board decision")
        if row.follow_up_due is None or row.follow_up_done:
            raise InputError(f"decision {decision_id}: no open follow-up exam")
        row.follow_up_done = True
    audit.record(settings, actor, "board.follow-up.done", f"board-decision:{decision_id}")


def patient_history(settings: Settings | None, patient_pk: int) -> list[dict[str, Any]]:
    """Every board case of a patient (newest first): session, question, decision."""
    with session_scope(settings) as s:
        stmt = (sa.select(BoardCase, BoardSession, Board)
                .join(BoardSession, BoardSession.id == BoardCase.session_pk)
                .join(Board, Board.id == BoardSession.board_pk)
                .where(BoardCase.patient_pk == int(patient_pk))
                .order_by(BoardSession.date.desc(), BoardCase.id.desc()))
        out = []
        for c, x, b in s.execute(stmt):
            d = s.scalars(sa.select(BoardDecision).where(BoardDecision.case_pk == c.id)).first()
            out.append({"case_id": c.id, "session_id": x.id, "date": x.date.isoformat(),
                        "board": b.name, "question": c.question, "status": x.status,
                        "decision": _decision_dict(d) if d else None})
        return out


def patient_notes(settings: Settings, patient_pk: int) -> list[str]:
    """Sentences of the patient page: the latest board decision and open follow-ups."""
    notes = []
    for h in patient_history(settings, patient_pk):
        if h["decision"]:
            d = h["decision"]
            notes.append(f"Tumour board {h['board']} on {h['date']}: "
                         f"{d['recommendation']}" + ("" if d["consensus"] else " (no consensus)"))
            break
    for f in open_follow_ups(settings, [patient_pk]):
        notes.append(f"Follow-up {f['exam']} ordered by {f['board']} "
                     f"{'overdue since' if f['state'] == 'overdue' else 'due'} {f['due']}.")
    return notes


def logbook_entries(settings: Settings | None, username: str, start: dt.date, end: dt.date
                    ) -> list[dict[str, Any]]:
    """The fellowship logbook's board entries of ``username`` between ``start`` and ``end``
    (both included): sessions attended (``board-attended``) and cases the user added and
    that were decided (``board-case-presented``). No PHI: board names, dates, counts."""
    out: list[dict[str, Any]] = []
    with session_scope(settings) as s:
        att = s.execute(
            sa.select(BoardAttendance, BoardSession, Board)
            .join(BoardSession, BoardSession.id == BoardAttendance.session_pk)
            .join(Board, Board.id == BoardSession.board_pk)
            .where(BoardAttendance.username == username, BoardSession.date >= start,
                   BoardSession.date <= end).order_by(BoardSession.date)).all()
        for a, x, b in att:
            n = s.scalar(sa.select(sa.func.count(BoardCase.id))
                         .where(BoardCase.session_pk == x.id)) or 0
            out.append({"date": x.date.isoformat(), "source": "boards",
                        "category": "board-attended",
                        "title": f"{b.name} ({b.specialty}) tumour board",
                        "detail": f"attended as {a.specialty}; {n} case(s) discussed",
                        "score": None})
        presented = s.execute(
            sa.select(BoardCase, BoardSession, Board)
            .join(BoardSession, BoardSession.id == BoardCase.session_pk)
            .join(Board, Board.id == BoardSession.board_pk)
            .join(BoardDecision, BoardDecision.case_pk == BoardCase.id)
            .where(BoardCase.added_by == username, BoardSession.date >= start,
                   BoardSession.date <= end).order_by(BoardSession.date, BoardCase.position)
        ).all()
        for c, x, b in presented:
            out.append({"date": x.date.isoformat(), "source": "boards",
                        "category": "board-case-presented",
                        "title": f"{b.name} ({b.specialty}) tumour board",
                        "detail": f"case {c.position} of session {x.id} prepared and decided",
                        "score": None})
    out.sort(key=lambda e: (e["date"], e["category"]))
    return out


# --------------------------------------------------------------------------------------
# presentation mode
# --------------------------------------------------------------------------------------


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def case_presentation(settings: Settings | None, case_id: int) -> dict[str, Any]:
    """One case as the room sees it: question, latest response per criterion (with the
    rule trace and the history for the trend), lesion table baseline vs current, key
    images (baseline and current study, the axial slice through the first target lesion),
    earlier and current decisions, and the neighbours on the agenda."""
    from oncohybrid.services import record as record_service

    settings = settings or get_settings()
    ref = case_of(settings, case_id)
    detail = session_detail(settings, ref["session_id"])
    cases = detail["cases"]
    k = next(i for i, c in enumerate(cases) if c["case_id"] == ref["case_id"])
    case = cases[k]
    rec = record_service.patient_record(case["patient_id"], settings) if case["patient_id"] \
        else {"timepoints": [], "lesions": []}
    tps = rec["timepoints"]
    base, cur = (tps[0], tps[-1]) if tps else (None, None)
    lesions = []
    target_centroids: dict[str, list[float] | None] = {}
    for les in rec["lesions"]:
        def obs(tp: dict[str, Any] | None, les: dict[str, Any] = les) -> dict[str, Any] | None:
            if tp is None:
                return None
            return next((o for o in les["observations"]
                         if o["date"] == tp["date"] and o["in_use"]), None)

        o0, o1 = obs(base), obs(cur)
        role = (les["roles"].get("recist1.1") or next(iter(les["roles"].values()), {})
                ).get("role", "—") if les["roles"] else "—"
        size = ("sa_mm" if les["nodal"] else "ld_mm")
        s0 = _num(o0.get(size)) if o0 and o0["present"] else (0.0 if o0 else None)
        s1 = _num(o1.get(size)) if o1 and o1["present"] else (0.0 if o1 else None)
        lesions.append({
            "lesion_id": les["key"], "site": les["site"], "role": role, "nodal": les["nodal"],
            "baseline_mm": s0, "current_mm": s1,
            "change_pct": (round((s1 - s0) / s0 * 100.0, 1) if s0 and s1 is not None
                           else None),
            "suv_max_baseline": _num(o0.get("suv_max")) if o0 else None,
            "suv_max_current": _num(o1.get("suv_max")) if o1 else None,
        })
        if role == "target":
            for tp, o in (("baseline", o0), ("current", o1)):
                if o and o["present"] and o.get("centroid_lps_mm") and tp not in \
                        target_centroids:
                    target_centroids[tp] = list(o["centroid_lps_mm"])
    order = {"target": 0, "non-target": 1, "new": 2}
    lesions.sort(key=lambda r: (order.get(r["role"], 3), r["lesion_id"]))

    def study(tp: dict[str, Any] | None) -> str | None:
        if tp is None:
            return None
        return next((x["study_uid"] for x in tp["studies"] if x["linked"]), None)

    images = []
    for which, tp in (("baseline", base), ("current", cur)):
        if tp is None or (which == "current" and cur is base):
            continue
        images.append({"which": which, "label": tp["label"], "date": tp["date"],
                       "days": tp["days_since_baseline"], "study_uid": study(tp),
                       "centroid_lps_mm": target_centroids.get(which)})
    return {
        "session": {k2: detail[k2] for k2 in ("session_id", "date", "start_time", "status")},
        "board": detail["board"], "case": case, "index": k, "count": len(cases),
        "prev_case_id": cases[k - 1]["case_id"] if k > 0 else None,
        "next_case_id": cases[k + 1]["case_id"] if k + 1 < len(cases) else None,
        "lesions": lesions, "images": images,
        "timepoints": [{"label": t["label"], "date": t["date"],
                        "days": t["days_since_baseline"]} for t in tps],
    }


def key_image_png(settings: Settings | None, case_id: int, which: str, kind: str) -> bytes:
    """A key image of a case through :mod:`oncohybrid.services.viewer`'s renderers: the
    PET coronal MIP (``kind="mip"``) or the fused axial slice through the first target
    lesion (``kind="fused"``) of the baseline or current study."""
    import numpy as np

    from oncohybrid.services import viewer

    if which not in ("baseline", "current") or kind not in ("mip", "fused"):
        raise InputError(f"key image {which}/{kind}: expected baseline|current and mip|fused")
    pres = case_presentation(settings, case_id)
    img = next((i for i in pres["images"] if i["which"] == which), None)
    if img is None or img["study_uid"] is None:
        raise InputError(f"case {case_id}: no {which} study to show")
    vols = viewer.study_volumes(img["study_uid"], settings)
    if kind == "mip":
        return viewer.render_mip_png(vols, 0, cmap="grey_inv", suv_max=10.0)
    n_k = vols.shape[0]
    index = n_k // 2
    if img["centroid_lps_mm"] is not None:
        inv = np.linalg.inv(np.asarray(vols.grid.affine, dtype=float))
        k = int(np.rint((inv @ np.append(img["centroid_lps_mm"], 1.0))[0]))
        index = min(max(k, 0), n_k - 1)
    elif vols.pet_on_grid is not None:  # no target: the hottest axial slice
        index = int(np.argmax(np.asarray(vols.pet_on_grid).reshape(n_k, -1).max(axis=1)))
    return viewer.render_plane_png(vols, "axial", index, mode="fused", window="soft",
                                   suv_max=8.0)


def patient_brief(settings: Settings | None, patient_pk: int) -> dict[str, Any]:
    """``{"patient_pk", "patient_id", "name", "issuer"}`` (InputError when unknown)."""
    with session_scope(settings) as s:
        p = _patient(s, int(patient_pk))
        return {"patient_pk": p.id, "patient_id": p.patient_id, "name": p.patient_name,
                "issuer": p.issuer_of_patient_id}
