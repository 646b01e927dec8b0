"""Teaching file and self-assessment pages (issue #14, docs/teaching.md).

- capture from the patient page in two clicks (button → "Capture"), physician/mentor/admin;
- the case list (search by words and tags), the case page (known mode: answers, trace,
  teaching points, revisions), authoring (fields, status draft → in review → published,
  multiple-choice and free-text questions), collections;
- quizzes: practice (feedback at once), timed exam and unknown case (answers revealed
  when the trainee commits), SM-2 review of missed questions; lesion clicks and
  measurements on the case's own de-identified slices (``/api/teaching/…/slice``);
- the trainee record, for the trainee and for mentors; mentors mark free-text answers.

Every change is audited (no PHI in the details: case ids, question keys and scores only).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from oncohybrid.errors import InputError
from oncohybrid.services import audit, teaching, users
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import clinical_session, csrf_session, require_roles

#: Who may capture and author cases (a physician's rights).
EDITORS = (Role.PHYSICIAN, Role.MENTOR, Role.ADMIN)
#: Who sees the teaching file (cases are de-identified: researchers too).
READERS = (Role.PHYSICIAN, Role.FELLOW, Role.RESEARCHER, Role.ADMIN, Role.MENTOR)
#: Who sees other trainees' records and marks free text.
SUPERVISORS = (Role.MENTOR, Role.ADMIN)
Pk = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
CaseId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
Pos = Annotated[int, PathParam(ge=0, le=1000)]
Index = Annotated[int, PathParam(ge=0, le=100_000)]


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    page = ctx.page
    editors = require_roles(*EDITORS)

    ctx.add_nav("Teaching", "/teaching", *READERS)
    ctx.add_patient_action("Capture as teaching case", "/teaching/capture?patient={pk}",
                           *EDITORS)

    def _captured_note(s: Any, patient_pk: int) -> list[str]:
        return [f"Teaching case {c['case_id']} ({c['status']}) was captured from this "
                f"patient: {c['title']}" for c in teaching.cases_of_patient(s, patient_pk)]

    ctx.patient_notes.append(_captured_note)

    def _audit(request: Request, sess: SessionInfo, action: str, target: str,
               details: dict[str, Any] | None = None) -> None:
        audit.record(settings, sess.user.username, action, target, details or {},
                     ctx.client(request))

    def _edit_ok(sess: SessionInfo) -> bool:
        return sess.user.role in EDITORS

    def _visible(sess: SessionInfo, case: dict[str, Any]) -> None:
        if case["status"] != "published" and not _edit_ok(sess):
            raise HTTPException(status_code=404, detail="teaching case not found")

    def _reader(sess: SessionInfo = Depends(clinical_session)) -> SessionInfo:
        if sess.user.role not in READERS:
            raise HTTPException(status_code=403, detail="your role does not open the "
                                "teaching file")
        return sess

    # ------------------------------------------------------------ list and capture
    @app.get("/teaching", response_class=HTMLResponse)
    def teaching_home(request: Request, q: str = "", tag: Annotated[list[str], Query()] = [],  # noqa: B006
                      sess: SessionInfo = Depends(_reader)) -> Response:
        statuses = None if _edit_ok(sess) else ["published"]
        cases = teaching.list_cases(settings, q=q[:200], tags=[t[:80] for t in tag][:10],
                                    statuses=statuses)
        all_tags = sorted({t for c in teaching.list_cases(settings, statuses=statuses)
                           for t in c["tags"]})
        return page(request, "teaching/index.html", sess, cases=cases, q=q, tags=tag,
                    all_tags=all_tags, can_edit=_edit_ok(sess),
                    collections=teaching.list_collections(
                        settings, published_only=not _edit_ok(sess)))

    @app.get("/teaching/capture", response_class=HTMLResponse)
    def capture_form(request: Request, patient: Annotated[int, Query(ge=1, le=2**31 - 1)],
                     sess: SessionInfo = Depends(editors)) -> Response:
        from oncohybrid.services.reading import patient_id_of
        from oncohybrid.services.record import patient_record

        pid = patient_id_of(patient, settings)
        rec = patient_record(pid, settings)
        if not rec["timepoints"]:
            raise InputError("this patient has no assessed timepoint to capture: assess "
                             "it first")
        return page(request, "teaching/capture.html", sess, patient_pk=patient,
                    timepoints=rec["timepoints"], lesions=len(rec["lesions"]),
                    title=f"Teaching case {len(teaching.list_cases(settings)) + 1}")

    @app.post("/teaching/capture")
    def capture(request: Request, patient: Annotated[int, Form(ge=1, le=2**31 - 1)],
                title: Annotated[str, Form(max_length=200)],
                timepoint: Annotated[list[str], Form()] = [],  # noqa: B006
                sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow this")
        from oncohybrid.services.reading import patient_id_of

        if not [t for t in timepoint if t.strip()]:
            raise InputError("capture: tick at least one timepoint")
        pid = patient_id_of(patient, settings)
        dates = teaching.parse_dates(",".join(timepoint))
        result = teaching.capture_case(pid, title=title, timepoints=dates,
                                       author=sess.user.username, settings=settings)
        _audit(request, sess, "teaching.capture", f"teaching-case:{result['case_id']}",
               {"patient_pk": patient, "timepoints": result["timepoints"],
                "files": result["files"]})
        return RedirectResponse(f"/teaching/cases/{result['case_id']}/edit", status_code=303)

    # ------------------------------------------------------------ case pages
    @app.get("/teaching/cases/{case_id}", response_class=HTMLResponse)
    def case_page(request: Request, case_id: CaseId,
                  sess: SessionInfo = Depends(_reader)) -> Response:
        case = teaching.case_detail(case_id, settings)
        _visible(sess, case)
        return page(request, "teaching/case.html", sess, case=case, can_edit=_edit_ok(sess),
                    show_source=sess.user.role.sees_identity)

    @app.get("/teaching/cases/{case_id}/edit", response_class=HTMLResponse)
    def edit_form(request: Request, case_id: CaseId,
                  sess: SessionInfo = Depends(editors)) -> Response:
        case = teaching.case_detail(case_id, settings)
        return page(request, "teaching/edit.html", sess, case=case,
                    statuses=teaching.CASE_STATUSES, certainties=teaching.CERTAINTIES,
                    saved=request.query_params.get("saved"))

    @app.post("/teaching/cases/{case_id}/edit")
    def edit(request: Request, case_id: CaseId,
             title: Annotated[str, Form(max_length=200)],
             history: Annotated[str, Form(max_length=20000)] = "",
             findings: Annotated[str, Form(max_length=20000)] = "",
             diagnosis: Annotated[str, Form(max_length=5000)] = "",
             certainty: Annotated[str, Form(max_length=32)] = "",
             discussion: Annotated[str, Form(max_length=20000)] = "",
             teaching_points: Annotated[str, Form(max_length=20000)] = "",
             references: Annotated[str, Form(max_length=20000)] = "",
             tags: Annotated[str, Form(max_length=4000)] = "",
             note: Annotated[str, Form(max_length=500)] = "",
             sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow changes")
        number = teaching.update_case(case_id, {
            "title": title, "history": history, "findings": findings,
            "diagnosis": diagnosis, "certainty": certainty, "discussion": discussion,
            "teaching_points": teaching_points, "references": references,
            "tags": [t for t in (x.strip() for x in tags.replace("\n", ",").split(","))
                     if t]}, username=sess.user.username, note=note, settings=settings)
        _audit(request, sess, "teaching.edit", f"teaching-case:{case_id}",
               {"revision": number})
        return RedirectResponse(f"/teaching/cases/{case_id}/edit?saved={number}",
                                status_code=303)

    @app.post("/teaching/cases/{case_id}/status")
    def status(request: Request, case_id: CaseId,
               status: Annotated[str, Form(max_length=16)],
               sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow changes")
        teaching.set_status(case_id, status, username=sess.user.username, settings=settings)
        _audit(request, sess, "teaching.status", f"teaching-case:{case_id}",
               {"status": status})
        return RedirectResponse(f"/teaching/cases/{case_id}/edit", status_code=303)

    @app.post("/teaching/cases/{case_id}/key-images")
    def key_image(request: Request, case_id: CaseId,
                  timepoint: Annotated[int, Form(ge=0, le=1000)],
                  index: Annotated[int, Form(ge=0, le=100_000)],
                  note: Annotated[str, Form(max_length=300)] = "",
                  sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow changes")
        number = teaching.add_key_image(case_id, timepoint, index, note,
                                        username=sess.user.username, settings=settings)
        _audit(request, sess, "teaching.key_image", f"teaching-case:{case_id}",
               {"revision": number, "timepoint": timepoint, "index": index})
        return RedirectResponse(f"/teaching/cases/{case_id}", status_code=303)

    @app.post("/teaching/cases/{case_id}/questions")
    def add_question(request: Request, case_id: CaseId,
                     kind: Annotated[str, Form(max_length=16)],
                     prompt: Annotated[str, Form(max_length=2000)],
                     options: Annotated[str, Form(max_length=4000)] = "",
                     correct: Annotated[str, Form(max_length=4000)] = "",
                     explanation: Annotated[str, Form(max_length=4000)] = "",
                     sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow changes")
        opts = [o.strip() for o in options.split("\n") if o.strip()]
        right = [o.strip() for o in correct.split("\n") if o.strip()]
        pk = teaching.add_question(
            case_id, kind, prompt, {"options": opts},
            {"answer": right if kind == "choice" else correct.strip(),
             "trace": [explanation.strip()] if explanation.strip() else []},
            settings=settings)
        _audit(request, sess, "teaching.question.add", f"teaching-case:{case_id}",
               {"question": pk, "kind": kind})
        return RedirectResponse(f"/teaching/cases/{case_id}/edit", status_code=303)

    @app.post("/teaching/cases/{case_id}/questions/{question_pk}/delete")
    def delete_question(request: Request, case_id: CaseId, question_pk: Pk,
                        sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow changes")
        teaching.delete_question(case_id, question_pk, settings)
        _audit(request, sess, "teaching.question.delete", f"teaching-case:{case_id}",
               {"question": question_pk})
        return RedirectResponse(f"/teaching/cases/{case_id}/edit", status_code=303)

    @app.post("/teaching/cases/{case_id}/unknown")
    def unknown_case(request: Request, case_id: CaseId,
                     sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in READERS:
            raise HTTPException(status_code=403, detail="your role does not open the "
                                "teaching file")
        _visible(sess, teaching.case_detail(case_id, settings, reveal=False))
        pk = teaching.create_quiz(sess.user.username, mode="case", case_id=case_id,
                                  settings=settings)
        _audit(request, sess, "teaching.quiz.start", f"quiz:{pk}", {"mode": "case",
                                                                    "case": case_id})
        return RedirectResponse(f"/teaching/quiz/{pk}", status_code=303)

    # ------------------------------------------------------------ collections
    @app.post("/teaching/collections")
    def new_collection(request: Request, name: Annotated[str, Form(max_length=128)],
                       kind: Annotated[str, Form(max_length=32)] = "course",
                       description: Annotated[str, Form(max_length=2000)] = "",
                       sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow changes")
        pk = teaching.create_collection(name, kind=kind, description=description,
                                        username=sess.user.username, settings=settings)
        _audit(request, sess, "teaching.collection.create", f"collection:{pk}", {})
        return RedirectResponse("/teaching", status_code=303)

    @app.post("/teaching/collections/{collection_pk}/add")
    def add_to_collection(request: Request, collection_pk: Pk,
                          case_id: Annotated[str, Form(max_length=40)],
                          sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in EDITORS:
            raise HTTPException(status_code=403, detail="your role does not allow changes")
        teaching.add_to_collection(collection_pk, case_id, settings)
        _audit(request, sess, "teaching.collection.add", f"collection:{collection_pk}",
               {"case": case_id})
        return RedirectResponse(f"/teaching/cases/{case_id}", status_code=303)

    # ------------------------------------------------------------ images
    @app.get("/api/teaching/cases/{case_id}/tp/{pos}/info")
    def slice_info(case_id: CaseId, pos: Pos, sess: SessionInfo = Depends(_reader)) -> Any:
        from oncohybrid.services.viewer import viewer_info

        _visible(sess, teaching.case_detail(case_id, settings, reveal=False))
        return JSONResponse(viewer_info(teaching.case_volumes(case_id, pos, settings)))

    @app.get("/api/teaching/cases/{case_id}/tp/{pos}/slice/{orientation}/{index}.png")
    def slice_png(case_id: CaseId, pos: Pos, orientation: str, index: Index,
                  mode: str = "fused", window: str = "soft",
                  suv_max: Annotated[float, Query(gt=0, le=100)] = 8.0,
                  sess: SessionInfo = Depends(_reader)) -> Response:
        from oncohybrid.services.viewer import render_plane_png

        if orientation not in ("axial", "coronal", "sagittal"):
            raise InputError(f"orientation: axial, coronal or sagittal, got {orientation!r}")
        _visible(sess, teaching.case_detail(case_id, settings, reveal=False))
        vols = teaching.case_volumes(case_id, pos, settings)
        png = render_plane_png(vols, orientation, index, mode=mode, window=window,
                               suv_max=suv_max)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=300"})

    # ------------------------------------------------------------ quizzes
    @app.get("/teaching/quiz/new", response_class=HTMLResponse)
    def quiz_form(request: Request, sess: SessionInfo = Depends(_reader)) -> Response:
        tags: set[str] = set()
        for c in teaching.list_cases(settings, statuses=["published"]):
            tags.update(t for t in c["tags"] if not t.startswith("criterion:"))
        detail_tags = teaching.question_tags(settings)
        return page(request, "teaching/quiz_new.html", sess,
                    tags=sorted(tags | detail_tags))

    @app.post("/teaching/quiz")
    def quiz_create(request: Request,
                    mode: Annotated[str, Form(max_length=16)] = "practice",
                    tag: Annotated[list[str], Form()] = [],  # noqa: B006
                    n: Annotated[int, Form(ge=1, le=100)] = 10,
                    minutes: Annotated[int | None, Form(ge=1, le=240)] = None,
                    sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in READERS:
            raise HTTPException(status_code=403, detail="your role does not open the "
                                "teaching file")
        pk = teaching.create_quiz(sess.user.username, mode=mode, tags=tag[:20], n=n,
                                  time_limit_s=minutes * 60 if mode == "exam" and minutes
                                  else None, settings=settings)
        _audit(request, sess, "teaching.quiz.start", f"quiz:{pk}", {"mode": mode, "n": n})
        return RedirectResponse(f"/teaching/quiz/{pk}", status_code=303)

    @app.get("/teaching/quiz/{quiz_pk}", response_class=HTMLResponse)
    def quiz_page(request: Request, quiz_pk: Pk,
                  sess: SessionInfo = Depends(_reader)) -> Response:
        view = teaching.quiz_view(quiz_pk, sess.user.username, settings)
        return page(request, "teaching/quiz.html", sess, quiz=view,
                    scales=teaching.scales())

    @app.post("/api/teaching/quiz/{quiz_pk}/answer")
    async def quiz_answer(request: Request, quiz_pk: Pk,
                          sess: SessionInfo = Depends(csrf_session)) -> Any:
        if sess.user.role not in READERS:
            raise HTTPException(status_code=403, detail="your role does not open the "
                                "teaching file")
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("request body: JSON expected") from None
        if not isinstance(body, dict) or not isinstance(body.get("question_pk"), int) \
                or not isinstance(body.get("answer"), dict):
            raise InputError("request body: {\"question_pk\": int, \"answer\": {...}}")
        result = teaching.answer_question(quiz_pk, body["question_pk"], body["answer"],
                                          username=sess.user.username, settings=settings)
        _audit(request, sess, "teaching.answer", f"quiz:{quiz_pk}",
               {"question": body["question_pk"], "score": result.get("score")})
        return JSONResponse(result)

    @app.post("/teaching/quiz/{quiz_pk}/finish")
    def quiz_finish(request: Request, quiz_pk: Pk,
                    sess: SessionInfo = Depends(csrf_session)) -> Response:
        teaching.finish_quiz(quiz_pk, username=sess.user.username, settings=settings)
        _audit(request, sess, "teaching.quiz.finish", f"quiz:{quiz_pk}", {})
        return RedirectResponse(f"/teaching/quiz/{quiz_pk}", status_code=303)

    # ------------------------------------------------------------ record and marking
    @app.get("/teaching/record", response_class=HTMLResponse)
    def my_record(request: Request, sess: SessionInfo = Depends(_reader)) -> Response:
        return _record_page(request, sess, sess.user.username)

    @app.get("/teaching/record/{username}", response_class=HTMLResponse)
    def trainee_record(request: Request, username: Annotated[str, PathParam(max_length=64)],
                       sess: SessionInfo = Depends(_reader)) -> Response:
        if username != sess.user.username and sess.user.role not in SUPERVISORS:
            raise HTTPException(status_code=403, detail="only mentors see other trainees' "
                                "records")
        return _record_page(request, sess, username)

    def _record_page(request: Request, sess: SessionInfo, username: str) -> Response:
        rec = teaching.trainee_record(username, settings)
        trainees = []
        if sess.user.role in SUPERVISORS:
            trainees = [u["username"] for u in users.list_users(settings)
                        if u["role"] == Role.FELLOW.value]
        if username != sess.user.username:
            _audit(request, sess, "teaching.record.read", f"user:{username}", {})
        return page(request, "teaching/record.html", sess, rec=rec, trainees=trainees,
                    pending=teaching.pending_marks(settings)
                    if sess.user.role in SUPERVISORS else [])

    @app.post("/teaching/marks/{answer_pk}")
    def mark(request: Request, answer_pk: Pk,
             score: Annotated[float, Form(ge=0.0, le=1.0)],
             comment: Annotated[str, Form(max_length=2000)] = "",
             sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in SUPERVISORS:
            raise HTTPException(status_code=403, detail="only mentors mark answers")
        teaching.mark_answer(answer_pk, score, mentor=sess.user.username, comment=comment,
                             settings=settings)
        _audit(request, sess, "teaching.mark", f"answer:{answer_pk}", {"score": score})
        return RedirectResponse("/teaching/record", status_code=303)
