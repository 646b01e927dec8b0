"""Tumour boards in the reading room (issue #15): boards, sessions, agenda with the
preparation checklist, adding a case from the patient page, presentation mode (one case
per screen, keyboard navigation, high contrast), decisions, attendance, closing, and the
pack / slides / minutes downloads.

Who does what: physicians, mentors and administrators create boards and sessions, record
attendance and decisions and close sessions; fellows also prepare cases (add a case, tick
the checklist), since presenting at the board is part of their training. Researchers see
the boards and the agenda with pseudonyms only and download pseudonymised slides and
packs; presentation mode, decisions and minutes show identified data and are refused to
them. Every change goes to the audit log through :mod:`oncohybrid.services.boards`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response
from markupsafe import Markup

from oncohybrid.deid.engine import TEXT_DATES
from oncohybrid.errors import InputError
from oncohybrid.services import audit, boards_pack
from oncohybrid.services import boards as svc
from oncohybrid.services.users import Role, SessionInfo, pseudonym
from oncohybrid.web.areas import WebContext
from oncohybrid.web.charts import trend_svg
from oncohybrid.web.security import clinical_session, csrf_session

Id = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
CLINICAL = (Role.PHYSICIAN, Role.FELLOW, Role.RESEARCHER, Role.ADMIN, Role.MENTOR)
#: May create boards and sessions, record attendance and decisions, close sessions.
CHAIR = (Role.PHYSICIAN, Role.MENTOR, Role.ADMIN)
#: May prepare cases: add them to an agenda and tick the checklist.
PREPARE = (*CHAIR, Role.FELLOW)


def _need(sess: SessionInfo, roles: tuple[Role, ...], what: str) -> None:
    if sess.user.role not in roles:
        raise HTTPException(403, f"your role does not allow {what}")


def _identified(sess: SessionInfo, what: str) -> None:
    if not sess.user.role.sees_identity:
        raise HTTPException(403, f"{what} shows identified data; the researcher role gets "
                                 "the pseudonymised slides and pack")


def _pseudo_detail(settings: Any, detail: dict[str, Any]) -> dict[str, Any]:
    """The agenda for a researcher: pseudonyms, no names, questions or decision texts."""
    for c in detail["cases"]:
        c["label"] = pseudonym(settings, c["patient_id"] or str(c["patient_pk"]), c["issuer"])
        c["patient_id"] = c["patient_name"] = None
        c["question"] = None
        c["previous"] = []
        for item in c["checklist"]:  # "… up to 2024-12-06": no calendar date
            item["note"] = TEXT_DATES.sub("[date]", item["note"])
        for r in c["responses"]:
            r["date"] = None
            r["trace"] = []
            r["history"] = []
        if c["decision"]:
            c["decision"] = {"recommendation": "(recorded)", "consensus":
                             c["decision"]["consensus"], "follow_up_due": None}
    return detail


def _label(c: dict[str, Any]) -> str:
    name = (c.get("patient_name") or "").replace("^", " ").strip()
    return f"{name} — {c['patient_id']}" if name else (c.get("patient_id") or "")


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    ctx.add_nav("Tumour boards", "/boards", *CLINICAL)
    ctx.add_patient_action("Add to a tumour board", "/boards/add?patient={pk}", *PREPARE)
    ctx.worklist_badges.append(svc.follow_up_badges)
    ctx.patient_notes.append(svc.patient_notes)

    def back(session_id: int, anchor: str = "") -> RedirectResponse:
        return RedirectResponse(f"/boards/sessions/{session_id}{anchor}", status_code=303)

    # ---------------------------------------------------------------- boards
    @app.get("/boards")
    def boards_page(request: Request, sess: SessionInfo = Depends(clinical_session)
                    ) -> Response:
        follow = svc.open_follow_ups(settings)
        for f in follow:
            f["label"] = (f["patient_id"] if sess.user.role.sees_identity else
                          pseudonym(settings, f["patient_id"] or "", f["issuer"]))
            if not sess.user.role.sees_identity:
                f["due"] = f["session_date"] = f["recommendation"] = None
        return ctx.page(request, "boards/boards.html", sess, boards=svc.list_boards(settings),
                        sessions=svc.list_sessions(settings), follow_ups=follow,
                        identified=sess.user.role.sees_identity,
                        can_chair=sess.user.role in CHAIR, today=dt.date.today().isoformat())

    @app.post("/boards")
    def create_board(request: Request, name: str = Form(...), specialty: str = Form(...),
                     weekday: str = Form(""), start_time: str = Form("08:00"),
                     minutes_per_case: int = Form(10),
                     sess: SessionInfo = Depends(csrf_session)) -> Response:
        _need(sess, CHAIR, "creating boards")
        svc.create_board(settings, name, specialty, weekday=weekday or None,
                         start_time=start_time, minutes_per_case=minutes_per_case,
                         actor=sess.user.username)
        return RedirectResponse("/boards", status_code=303)

    @app.post("/boards/{board_id}/members")
    def add_member(request: Request, board_id: Id, name: str = Form(...),
                   specialty: str = Form(...), sess: SessionInfo = Depends(csrf_session)
                   ) -> Response:
        _need(sess, CHAIR, "changing board members")
        svc.add_member(settings, board_id, name, specialty, actor=sess.user.username)
        return RedirectResponse("/boards", status_code=303)

    @app.post("/boards/{board_id}/sessions")
    def create_session(request: Request, board_id: Id, date: str = Form(...),
                       sess: SessionInfo = Depends(csrf_session)) -> Response:
        _need(sess, CHAIR, "creating sessions")
        out = svc.create_session(settings, board_id, date, actor=sess.user.username)
        return back(out["session_id"])

    # ---------------------------------------------------------------- sessions
    @app.get("/boards/sessions/{session_id}")
    def session_page(request: Request, session_id: Id,
                     sess: SessionInfo = Depends(clinical_session)) -> Response:
        detail = svc.session_detail(settings, session_id)
        if not sess.user.role.sees_identity:
            detail = _pseudo_detail(settings, detail)
        else:
            for c in detail["cases"]:
                c["label"] = _label(c)
        return ctx.page(request, "boards/session.html", sess, s=detail,
                        can_chair=sess.user.role in CHAIR,
                        can_prepare=sess.user.role in PREPARE,
                        identified=sess.user.role.sees_identity)

    @app.get("/boards/add")
    def add_form(request: Request, patient: Annotated[int, Query(ge=1, le=2**31 - 1)],
                 sess: SessionInfo = Depends(clinical_session)) -> Response:
        _need(sess, PREPARE, "adding cases")
        brief = svc.patient_brief(settings, patient)
        today = dt.date.today().isoformat()
        planned = [x for x in svc.list_sessions(settings)
                   if x["status"] == "planned" and x["date"] >= today]
        planned.sort(key=lambda x: x["date"])
        return ctx.page(request, "boards/add.html", sess, patient_pk=patient,
                        label=_label({"patient_id": brief["patient_id"],
                                      "patient_name": brief["name"]}),
                        sessions=planned, history=svc.patient_history(settings, patient))

    @app.post("/boards/add")
    def add_case(request: Request, patient: int = Form(...), session_id: int = Form(...),
                 question: str = Form(""), sess: SessionInfo = Depends(csrf_session)
                 ) -> Response:
        _need(sess, PREPARE, "adding cases")
        out = svc.add_case(settings, session_id, int(patient), question=question or None,
                           actor=sess.user.username)
        return back(out["session_id"], f"#case-{out['case_id']}")

    @app.post("/boards/cases/{case_id}/checklist")
    def tick(request: Request, case_id: Id, item: str = Form(...), done: str = Form("1"),
             sess: SessionInfo = Depends(csrf_session)) -> Response:
        _need(sess, PREPARE, "preparing cases")
        svc.tick(settings, case_id, item, done == "1", actor=sess.user.username)
        return back(svc.case_of(settings, case_id)["session_id"], f"#case-{case_id}")

    @app.post("/boards/sessions/{session_id}/attend")
    def attend(request: Request, session_id: Id, name: str = Form(...),
               specialty: str = Form(...), sess: SessionInfo = Depends(csrf_session)
               ) -> Response:
        _need(sess, CHAIR, "recording attendance")
        svc.attend(settings, session_id, name, specialty, actor=sess.user.username)
        return back(session_id, "#attendance")

    @app.post("/boards/sessions/{session_id}/close")
    def close(request: Request, session_id: Id, sess: SessionInfo = Depends(csrf_session)
              ) -> Response:
        _need(sess, CHAIR, "closing sessions")
        svc.close_session(settings, session_id, actor=sess.user.username)
        return back(session_id)

    # ---------------------------------------------------------------- presentation
    @app.get("/boards/sessions/{session_id}/present")
    def present_first(session_id: Id, sess: SessionInfo = Depends(clinical_session)
                      ) -> Response:
        _identified(sess, "presentation mode")
        detail = svc.session_detail(settings, session_id)
        if not detail["cases"]:
            raise InputError(f"session {session_id}: no case on the agenda to present")
        return RedirectResponse(f"/boards/cases/{detail['cases'][0]['case_id']}/present",
                                status_code=303)

    @app.get("/boards/cases/{case_id}/present")
    def present(request: Request, case_id: Id,
                sess: SessionInfo = Depends(clinical_session)) -> Response:
        _identified(sess, "presentation mode")
        p = svc.case_presentation(settings, case_id)
        c = p["case"]
        audit.record(settings, sess.user.username, "patient.read", f"patient:{c['patient_pk']}",
                     {"view": "board-presentation", "case": case_id}, ctx.client(request))
        trends = []
        for r in c["responses"]:
            # the baseline is the reference: 0 % change by definition
            vals = [0.0 if k == 0 and h["change_pct"] is None and h["code"] == "baseline"
                    else h["change_pct"] for k, h in enumerate(r["history"])]
            if sum(isinstance(v, int | float) for v in vals) >= 2:
                trends.append(Markup(trend_svg(f"{r['name']} change from baseline", "%",
                                               [h["date"] or "" for h in r["history"]],
                                               [float(v) if isinstance(v, int | float)
                                                else None for v in vals])))
        c["label"] = _label(c)
        return ctx.page(request, "boards/present.html", sess, p=p, c=c, trends=trends,
                        can_chair=sess.user.role in CHAIR, dark=True, present=True)

    @app.get("/boards/cases/{case_id}/image/{which}/{kind}.png")
    def key_image(case_id: Id, which: str, kind: str,
                  sess: SessionInfo = Depends(clinical_session)) -> Response:
        _identified(sess, "key images of a case")
        png = svc.key_image_png(settings, case_id, which, kind)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=300"})

    @app.post("/boards/cases/{case_id}/decision")
    def decide(request: Request, case_id: Id, recommendation: str = Form(...),
               rationale: str = Form(""), dissent: str = Form(""),
               consensus: str = Form(""), follow_up_exam: str = Form(""),
               follow_up_days: str = Form(""), sess: SessionInfo = Depends(csrf_session)
               ) -> Response:
        _need(sess, CHAIR, "recording decisions")
        ref = svc.case_of(settings, case_id)
        days = None
        if follow_up_days.strip():
            if not follow_up_days.strip().isdigit():
                raise InputError(f"follow-up days {follow_up_days!r}: a whole number")
            days = int(follow_up_days)
        svc.decide(settings, ref["session_id"], ref["patient_pk"], recommendation,
                   rationale=rationale or None, dissent=dissent or None,
                   consensus=consensus == "1", follow_up_days=days,
                   follow_up_exam=follow_up_exam or None, actor=sess.user.username)
        p = svc.case_presentation(settings, case_id)
        target = (f"/boards/cases/{p['next_case_id']}/present" if p["next_case_id"]
                  else f"/boards/sessions/{ref['session_id']}#decisions")
        return RedirectResponse(target, status_code=303)

    # ---------------------------------------------------------------- documents
    def _document(session_id: int, kind: str, sess: SessionInfo) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="board-", dir=_out_dir()))
        pseudo = not sess.user.role.sees_identity
        if kind == "minutes":
            _identified(sess, "the minutes")
            return Path(boards_pack.write_minutes(settings, session_id,
                                                  folder / f"minutes-{session_id}.pdf",
                                                  actor=sess.user.username)["pdf"])
        pdf = folder / f"pack-{session_id}.pdf"
        pptx = folder / f"slides-{session_id}.pptx" if kind == "slides" else None
        out = boards_pack.write_pack(settings, session_id, pdf, pptx=pptx,
                                     pseudonymise=pseudo, actor=sess.user.username)
        return Path(out["pptx"] if kind == "slides" else out["pdf"])

    def _out_dir() -> Path:
        d = settings.derived_dir / "boards"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @app.get("/boards/sessions/{session_id}/pack.pdf")
    def pack_pdf(session_id: Id, sess: SessionInfo = Depends(clinical_session)) -> Response:
        return FileResponse(_document(session_id, "pack", sess), media_type="application/pdf",
                            filename=f"board-pack-{session_id}.pdf")

    @app.get("/boards/sessions/{session_id}/slides.pptx")
    def slides(session_id: Id, sess: SessionInfo = Depends(clinical_session)) -> Response:
        return FileResponse(
            _document(session_id, "slides", sess), filename=f"board-slides-{session_id}.pptx",
            media_type="application/vnd.openxmlformats-officedocument.presentationml."
                       "presentation")

    @app.get("/boards/sessions/{session_id}/minutes.pdf")
    def minutes(session_id: Id, sess: SessionInfo = Depends(clinical_session)) -> Response:
        return FileResponse(_document(session_id, "minutes", sess),
                            media_type="application/pdf",
                            filename=f"board-minutes-{session_id}.pdf")
