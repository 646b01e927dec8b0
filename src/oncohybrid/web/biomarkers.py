"""Image biomarkers in the reading room (issue #18): AI segmentation and radiomics of a
patient as background jobs with progress, started from the patient page.

``/biomarkers?patient=PK`` lists the patient's jobs and the workspace's models
(``<home>/models/``) and starts a job (physicians, mentors, admins: a segmentation kept
for the record changes the next assessment); ``/biomarkers/jobs/RUN`` shows the job's
progress (the page reloads itself while it runs: no script, CSP) and its results.
Researchers are not offered the page (identified results, patient IDs in the tasks).
The job itself is :mod:`oncohybrid.services.segment_jobs` (a recorded batch run).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oncohybrid.services import audit, segment_jobs, worklist
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import require_edit, require_roles

__all__ = ["register"]

MAX_PK = 2**31 - 1
#: Roles that see the page (identified clinical data) and that start jobs.
VIEWERS = (Role.PHYSICIAN, Role.FELLOW, Role.ADMIN, Role.MENTOR)
STARTERS = (Role.PHYSICIAN, Role.ADMIN, Role.MENTOR)


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    viewer = require_roles(*VIEWERS)
    ctx.add_patient_action("AI segmentation & radiomics", "/biomarkers?patient={pk}", *VIEWERS)
    # provenance of AI-placed reference VOIs and AI lesions (no identifiers in the text)
    ctx.patient_notes.append(segment_jobs.reference_notes)

    @app.get("/biomarkers", response_class=HTMLResponse)
    def biomarkers_page(request: Request,
                        patient: Annotated[int, Query(ge=1, le=MAX_PK)],
                        sess: SessionInfo = Depends(viewer)) -> Response:
        summary = worklist.patient_summary(patient, settings, identified=True)
        jobs = segment_jobs.patient_jobs(settings, summary["patient_id"])
        resp = ctx.page(request, "biomarkers/patient.html", sess, patient=summary, jobs=jobs,
                        models=segment_jobs.available_models(settings),
                        can_start=sess.user.role in STARTERS,
                        models_dir=str(settings.home / segment_jobs.MODELS_DIR))
        return _refreshing(resp, any(j["status"] == "running" for j in jobs))

    @app.post("/biomarkers/start")
    def start(request: Request, patient: Annotated[int, Form(ge=1, le=MAX_PK)],
              kind: Annotated[str, Form(max_length=16)],
              model: Annotated[str | None, Form(max_length=255)] = None,
              store: Annotated[str | None, Form(max_length=8)] = None,
              sess: SessionInfo = Depends(require_edit)) -> Response:
        if sess.user.role not in STARTERS:
            raise HTTPException(status_code=403, detail="your role does not start jobs")
        summary = worklist.patient_summary(patient, settings, identified=True)
        run_pk = segment_jobs.start_job(settings, kind, summary["patient_id"],
                                        model=model or None, store=bool(store))
        details: dict[str, Any] = {"kind": kind, "run": run_pk}
        if kind == "segment":
            details.update(model=model, keep_for_record=bool(store))
        audit.record(settings, sess.user.username, f"biomarkers.{kind}.start",
                     f"patient:{patient}", details, client=ctx.client(request))
        return RedirectResponse(f"/biomarkers/jobs/{run_pk}?patient={patient}",
                                status_code=303)

    @app.get("/biomarkers/jobs/{run_pk}", response_class=HTMLResponse)
    def job_page(request: Request, run_pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                 patient: Annotated[int, Query(ge=1, le=MAX_PK)],
                 sess: SessionInfo = Depends(viewer)) -> Response:
        summary = worklist.patient_summary(patient, settings, identified=True)
        job = segment_jobs.job_view(settings, run_pk)
        if job["kind"] not in segment_jobs.JOB_KINDS or (
                job["patient_id"] not in (None, summary["patient_id"])):
            raise HTTPException(status_code=404, detail="no such job for this patient")
        resp = ctx.page(request, "biomarkers/job.html", sess, patient=summary, job=job)
        return _refreshing(resp, job["status"] == "running")

    @app.get("/api/biomarkers/jobs/{run_pk}")
    def job_api(run_pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                _sess: SessionInfo = Depends(viewer)) -> dict[str, Any]:
        job = segment_jobs.job_view(settings, run_pk)
        if job["kind"] not in segment_jobs.JOB_KINDS:
            raise HTTPException(status_code=404, detail="not a reading-room job")
        return job


def _refreshing(resp: Response, running: bool) -> Response:
    if running:  # the page reloads itself while the job runs (no script: CSP)
        resp.headers["Refresh"] = "3"
    return resp
