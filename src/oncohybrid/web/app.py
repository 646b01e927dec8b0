"""The reading-room web application: worklist, patient timeline, PET/CT viewer, lesions.

``create_app(settings)`` builds the FastAPI application; ``serve(settings, host, port)``
runs it with uvicorn. Routes are thin: they check the session and role, call one
service and render a Jinja2 template or return JSON/PNG.

Privacy: URLs carry only database keys and DICOM UIDs (never names or patient IDs), the
uvicorn access log is replaced by one that logs the route path without query strings
(search terms may be names), and the researcher role gets pseudonymised pages.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import URLSafeTimedSerializer
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import URL, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oncohybrid import __version__
from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, OncohybridError, StoreError
from oncohybrid.services import audit, batch, users, viewer, viewer_advanced, worklist
from oncohybrid.services.catalog import open_database
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web import clinical, privacy
from oncohybrid.web.areas import WebContext, register_areas
from oncohybrid.web.charts import trend_svg
from oncohybrid.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    NotAuthenticated,
    check_login_csrf,
    clinical_session,
    cookie_value,
    csrf_session,
    current_session,
    new_login_csrf,
    require_edit,
    require_roles,
    safe_next,
    token_from_cookie,
)

__all__ = ["create_app", "serve"]

log = logging.getLogger("oncohybrid.web")
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"

#: Content-Security-Policy: no inline script or style, no third-party origins.
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
       "style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


#: Database keys are 32-bit on PostgreSQL (``Integer``); larger numbers are input errors,
#: not overflows in the driver.
MAX_PK = 2**31 - 1
PatientPk = Annotated[int, PathParam(ge=1, le=MAX_PK)]
RunPk = Annotated[int, PathParam(ge=1, le=MAX_PK)]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
#: SUV display ceilings: positive and finite (a zero range divides by zero).
SuvMax = Annotated[float, Query(gt=0, le=10_000, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
LesionKey = Annotated[str, Field(min_length=1, max_length=64)]
#: Slice, row and column indices of a display plane (far above any real volume).
PlaneIndex = Annotated[int, Field(ge=0, le=100_000)]
TimepointIndex = Annotated[int, Field(ge=0, le=10_000)]


_M = TypeVar("_M", bound=BaseModel)


class _HeadersAndLog:
    """Security headers on every response and one log line per request: method, path
    (no query string: search terms may be names), status and time.

    A plain ASGI middleware (it only edits the response's start message): Starlette's
    ``@app.middleware("http")`` (``BaseHTTPMiddleware``) ran every request through an
    extra task and a memory stream, a fixed cost on each page, tile and API call.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = URL(scope=scope).path
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                # "same-origin", not "no-referrer": the latter makes browsers send
                # "Origin: null" on form posts, which the CSRF origin check must refuse.
                headers["Referrer-Policy"] = "same-origin"
                if not path.startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
        log.info("%s %s %d %.1fms", scope["method"], path, status,
                 (time.perf_counter() - t0) * 1000)


class _Body(BaseModel):
    """JSON request bodies: strict types, extra keys ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)


class MeasurementBody(_Body):
    """A reader's two clicked points (image fractions) on one plane."""

    lesion_id: LesionKey
    axis: Literal["long", "short"]
    orientation: Literal["axial", "coronal", "sagittal"]
    index: PlaneIndex
    p1: Annotated[list[Fraction], Field(min_length=2, max_length=2)]
    p2: Annotated[list[Fraction], Field(min_length=2, max_length=2)]


class RoleBody(_Body):
    criterion: Annotated[str, Field(max_length=32)]
    role: Annotated[str, Field(max_length=32)]
    timepoint: TimepointIndex | None = None


class MatchBody(_Body):
    match: LesionKey
    timepoint: Annotated[int, Field(ge=1, le=10_000)]


def _problems(errors: list[Any]) -> str:
    """One line per invalid parameter: where, which, what is wrong, what was given."""
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ())]
        where = loc[0] if loc and loc[0] in ("query", "path", "body", "form") else None
        name = ".".join(loc[1:] if where else loc) or "request"
        given = repr(e.get("input"))
        given = given if len(given) <= 40 else given[:37] + "..."
        parts.append(f"{where + ' ' if where else ''}parameter {name!r}: "
                     f"{e.get('msg', 'invalid')}, got {given}")
    return "; ".join(parts)


def _validated(model: type[_M], body: dict[str, Any]) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InputError("request body: " + _problems(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()])) from None


def _parse_date(value: str | None, what: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{what}: expected a date YYYY-MM-DD, got {value!r}") from None


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for ``settings`` (migrates the database, creates the secret)."""
    settings = settings or get_settings()
    open_database(settings)
    app = FastAPI(title="oncohybrid reading room", version=__version__,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.signer = URLSafeTimedSerializer(users.secret_key(settings),
                                              salt="oncohybrid.web.session")
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    templates.env.globals["version"] = __version__
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    def page(request: Request, name: str, sess: SessionInfo | None, status: int = 200,
             **ctx: Any) -> HTMLResponse:
        ctx.update(user=sess.user if sess else None, csrf=sess.csrf_token if sess else "",
                   Role=Role, nav_links=areas.nav_for(sess))
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    def _client_of(request: Request) -> str | None:
        return request.client.host if request.client else None

    areas = WebContext(settings=settings, templates=templates, page=page, client=_client_of)

    # ---------------------------------------------------------------- middleware / errors
    app.add_middleware(_HeadersAndLog)

    @app.exception_handler(NotAuthenticated)
    async def _unauth(request: Request, _exc: NotAuthenticated) -> Response:
        if request.url.path.startswith("/api/") or request.method != "GET":
            return JSONResponse({"detail": "sign-in required"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(OncohybridError)
    async def _domain_error(request: Request, exc: OncohybridError) -> Response:
        status = 404 if isinstance(exc, StoreError) else 400
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        sess = getattr(request.state, "session", None)
        return page(request, "error.html", sess, status=status, status_code=status,
                    message=str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # 400 naming the parameter, not FastAPI's 422 dump (and never a 500 later on).
        message = _problems(list(exc.errors()))
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=400)
        sess = getattr(request.state, "session", None)
        return page(request, "error.html", sess, status=400, status_code=400,
                    message=message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 403:
            # Refused privileged actions are security events (HIPAA §164.312(b)).
            sess = getattr(request.state, "session", None)
            audit.record(settings, sess.user.username if sess else "-", "access.denied",
                         f"{request.method} {request.url.path}",
                         {"status": 403, "reason": str(exc.detail)}, _client(request))
        if request.url.path.startswith(("/api/", "/static/")) or exc.status_code == 405:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        sess = getattr(request.state, "session", None)
        return page(request, "error.html", sess, status=exc.status_code,
                    status_code=exc.status_code, message=str(exc.detail))

    def _study_uid(sess: SessionInfo, uid: str) -> str:
        """The real Study Instance UID of a URL: researchers only ever see (and may only
        use) pseudonymous UIDs (:mod:`oncohybrid.web.privacy`)."""
        if sess.user.role.sees_identity:
            return uid
        return privacy.real_study_uid(settings, uid)

    def _client(request: Request) -> str | None:
        return request.client.host if request.client else None

    def _audit_read(request: Request, sess: SessionInfo, patient_pk: int, view: str,
                    lesion: str | None = None) -> None:
        # Reads of a patient's record are disclosures (HIPAA §164.312(b), IHE ATNA
        # "Patient Record" events); image tiles are covered by the viewer-page entry.
        details: dict[str, Any] = {"view": view}
        if lesion is not None:
            details["lesion"] = lesion[:64]
        audit.record(settings, sess.user.username, "patient.read", f"patient:{patient_pk}",
                     details, _client(request))

    # ---------------------------------------------------------------- sign-in
    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002
        token = new_login_csrf()
        resp = page(request, "login.html", None, login_csrf=token, next=safe_next(next),
                    error=None)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/login")
        return resp

    @app.post("/login", dependencies=[Depends(check_login_csrf)])
    def login(request: Request, username: str = Form(...), password: str = Form(...),
              next: str = Form("/")) -> Response:  # noqa: A002
        result = users.sign_in(settings, username, password,
                               request.client.host if request.client else None)
        user = result.user
        if user is None:
            token = new_login_csrf()
            if result.retry_after_s:
                minutes = -(-result.retry_after_s // 60)
                error = (f"Too many failed sign-ins: try again in {minutes} min "
                         "(or ask an administrator to reset the password).")
                resp = page(request, "login.html", None, status=429, login_csrf=token,
                            next=safe_next(next), error=error)
                resp.headers["Retry-After"] = str(result.retry_after_s)
            else:
                resp = page(request, "login.html", None, status=401, login_csrf=token,
                            next=safe_next(next),
                            error="Unknown user name or wrong password.")
            resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/login")
            return resp
        token, _csrf = users.create_session(settings, user)
        audit.record(settings, user.username, "login", None, {},
                     request.client.host if request.client else None)
        resp = RedirectResponse(safe_next(next), status_code=303)
        resp.set_cookie(SESSION_COOKIE, cookie_value(request, token), httponly=True,
                        samesite="lax", secure=request.url.scheme == "https",
                        max_age=users.SESSION_HOURS * 3600, path="/")
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return resp

    @app.post("/logout")
    def logout(request: Request, sess: SessionInfo = Depends(csrf_session)) -> Response:
        token = token_from_cookie(request)
        if token:
            users.end_session(settings, token)
        audit.record(settings, sess.user.username, "logout")
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    # ---------------------------------------------------------------- worklist
    def _worklist_query(q: str | None, modality: str | None, tracer: str | None,
                        date_from: str | None, date_to: str | None, status: str | None,
                        page_no: int) -> worklist.WorklistQuery:
        return worklist.WorklistQuery(
            q=q or None, modality=modality or None, tracer=tracer or None,
            date_from=_parse_date(date_from, "date_from"), date_to=_parse_date(date_to, "date_to"),
            status=status or None, page=page_no)

    def _worklist(sess: SessionInfo, query: worklist.WorklistQuery) -> dict[str, Any]:
        identified = sess.user.role.sees_identity
        if not identified and (query.date_from or query.date_to):
            # A date filter would be an oracle for exact study dates.
            raise InputError("date_from/date_to: date filters are not available to the "
                             "researcher role (pseudonymised data)")
        result = worklist.worklist(query, settings, identified=identified)
        if not identified:
            for row in result["rows"]:
                row["last_study"] = None
        return result

    @app.get("/", response_class=HTMLResponse)
    def worklist_page(request: Request, q: str = "", modality: str = "", tracer: str = "",
                      date_from: str = "", date_to: str = "", status: str = "",
                      page_no: PageNo = 1,
                      sess: SessionInfo = Depends(current_session)) -> Response:
        if not sess.user.role.clinical:  # applicants, reviewers, programme director
            home = areas.homes.get(sess.user.role)
            if home is None:
                raise HTTPException(403, "your role does not open clinical pages")
            return RedirectResponse(home, status_code=303)
        query = _worklist_query(q, modality, tracer, date_from, date_to, status, page_no)
        result = _worklist(sess, query)
        badges = areas.badges_for([row["pk"] for row in result["rows"]], sess)
        for row in result["rows"]:
            row["badges"] = badges.get(row["pk"], [])
        return page(request, "worklist.html", sess, result=result, query=query,
                    statuses=worklist.STATUSES,
                    filters={"q": q, "modality": modality, "tracer": tracer,
                             "date_from": date_from, "date_to": date_to, "status": status})

    @app.get("/api/worklist")
    def worklist_api(q: str = "", modality: str = "", tracer: str = "", date_from: str = "",
                     date_to: str = "", status: str = "", page_no: PageNo = 1,
                     sess: SessionInfo = Depends(clinical_session)) -> dict[str, Any]:
        query = _worklist_query(q, modality, tracer, date_from, date_to, status, page_no)
        return _worklist(sess, query)

    # ---------------------------------------------------------------- patient timeline
    @app.get("/patients/{patient_pk}", response_class=HTMLResponse)
    def patient_page(request: Request, patient_pk: PatientPk,
                     sess: SessionInfo = Depends(clinical_session)) -> Response:
        identified = sess.user.role.sees_identity
        summary = worklist.patient_summary(patient_pk, settings, identified=identified)
        _audit_read(request, sess, patient_pk, "timeline")
        timeline = clinical.timeline(settings, patient_pk, summary)
        if not identified:
            pseudo = privacy.for_patient(settings, summary, timeline)
            summary, timeline = pseudo(summary), pseudo(timeline)
        charts = [Markup(trend_svg(t["title"], t["unit"], t["labels"], t["values"]))
                  for t in timeline.get("trends", [])]
        return page(request, "patient.html", sess, patient=summary, timeline=timeline,
                    charts=charts, area_actions=areas.actions_for(sess, patient_pk),
                    area_notes=areas.notes_for(patient_pk, sess))

    @app.get("/api/patients/{patient_pk}")
    def patient_api(request: Request, patient_pk: PatientPk,
                    sess: SessionInfo = Depends(clinical_session)) -> dict[str, Any]:
        identified = sess.user.role.sees_identity
        summary = worklist.patient_summary(patient_pk, settings, identified=identified)
        _audit_read(request, sess, patient_pk, "api")
        summary["timeline"] = clinical.timeline(settings, patient_pk, summary)
        if not identified:
            summary = privacy.for_patient(settings, summary, summary["timeline"])(summary)
        return summary

    @app.get("/patients/{patient_pk}/report.pdf")
    def report_pdf(request: Request, patient_pk: PatientPk,
                   sess: SessionInfo = Depends(clinical_session)) -> Response:
        identified = sess.user.role.sees_identity
        worklist.patient_summary(patient_pk, settings)  # 404 for an unknown patient
        # Researchers get the pseudonymised report (no name, ID, birth date or dates).
        path = clinical.build_report(settings, patient_pk, pseudonymise=not identified,
                                     reader=sess.user.username)
        audit.record(settings, sess.user.username, "report.download", f"patient:{patient_pk}",
                     {"pseudonymised": not identified})
        return FileResponse(path, media_type="application/pdf",
                            filename=f"report-{patient_pk}.pdf")

    # ---------------------------------------------------------------- viewer
    @app.get("/studies/{study_uid}/view", response_class=HTMLResponse)
    def viewer_page(request: Request, study_uid: str,
                    sess: SessionInfo = Depends(clinical_session)) -> Response:
        shown_uid, study_uid = study_uid, _study_uid(sess, study_uid)
        if sess.user.role.sees_identity and viewer_advanced.shows(settings, study_uid):
            # MR diffusion, ultrasound cine, DECT iodine: their own viewer (issue #19)
            return RedirectResponse(f"/studies/{study_uid}/advanced", status_code=303)
        patient_pk = worklist.patient_pk_of_study(study_uid, settings)
        summary = worklist.patient_summary(patient_pk, settings,
                                           identified=sess.user.role.sees_identity)
        _audit_read(request, sess, patient_pk, "viewer")
        if not sess.user.role.sees_identity:
            summary = privacy.for_patient(settings, summary, clinical.timeline(
                settings, patient_pk, summary))(summary)
        study = next(s for s in summary["studies"] if s["study_uid"] == shown_uid)
        # the tracer, and a warning where a stored criterion does not suit it (issue #12)
        tracer = viewer.study_tracer(study_uid, settings,
                                     clinical.assessed_criteria(settings, patient_pk))
        # PET/MR: the MR series (DWI, ADC) open in the advanced viewer (issue #19)
        advanced = (sess.user.role.sees_identity
                    and viewer_advanced.has_layers(settings, study_uid))
        return page(request, "viewer.html", sess, patient=summary, study=study,
                    tracer=tracer, dark=True, advanced=advanced)

    @app.get("/api/studies/{study_uid}/info")
    def viewer_info(study_uid: str,
                    sess: SessionInfo = Depends(clinical_session)) -> dict[str, Any]:
        study_uid = _study_uid(sess, study_uid)
        vols = viewer.study_volumes(study_uid, settings)
        info = viewer.viewer_info(vols)
        patient_pk = worklist.patient_pk_of_study(study_uid, settings)
        info["lesions"] = clinical.study_lesions(settings, vols, patient_pk, study_uid)
        info["can_edit"] = sess.user.role.can_edit
        return info

    @app.get("/api/studies/{study_uid}/slice/{orientation}/{index}.png")
    def slice_png(study_uid: str, orientation: str,
                  index: Annotated[int, PathParam(ge=0, le=100_000)], mode: str = "fused",
                  window: str = "soft",
                  wc: Annotated[float | None, Query(ge=-100_000, le=100_000,
                                                    allow_inf_nan=False)] = None,
                  ww: Annotated[float | None, Query(gt=0, le=200_000,
                                                    allow_inf_nan=False)] = None,
                  cmap: str = "hot", suv_max: SuvMax = 8.0,
                  alpha: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)] = 0.6,
                  contours: bool = True,
                  _sess: SessionInfo = Depends(clinical_session)) -> Response:
        study_uid = _study_uid(_sess, study_uid)
        vols = viewer.study_volumes(study_uid, settings)
        # Lesion ids are drawn by the page beside the contours (crisp at any zoom).
        labels, colours, _names = (clinical.label_volume(settings, vols, study_uid)
                                   if contours else (None, None, None))
        png = viewer.render_plane_png(vols, orientation, index, mode=mode, window=window,
                                      centre=wc, width=ww, cmap=cmap, suv_max=suv_max,
                                      alpha=alpha, labels=labels, label_colours=colours)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=300"})

    @app.get("/api/studies/{study_uid}/mip/{angle_index}.png")
    def mip_png(study_uid: str, angle_index: Annotated[int, PathParam(ge=0, le=10_000)],
                cmap: str = "grey_inv", suv_max: SuvMax = 8.0,
                _sess: SessionInfo = Depends(clinical_session)) -> Response:
        study_uid = _study_uid(_sess, study_uid)
        vols = viewer.study_volumes(study_uid, settings)
        png = viewer.render_mip_png(vols, angle_index, cmap=cmap, suv_max=suv_max)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=300"})

    @app.get("/api/studies/{study_uid}/probe")
    def probe(study_uid: str, orientation: str,
              index: Annotated[int, Query(ge=0, le=100_000)],
              fx: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)],
              fy: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)],
              _sess: SessionInfo = Depends(clinical_session)) -> dict[str, Any]:
        study_uid = _study_uid(_sess, study_uid)
        vols = viewer.study_volumes(study_uid, settings)
        return viewer.probe(vols, orientation, index, fx, fy)

    # ---------------------------------------------------------------- lesions
    @app.get("/patients/{patient_pk}/lesions", response_class=HTMLResponse)
    def lesions_page(request: Request, patient_pk: PatientPk,
                     tp: Annotated[int | None, Query(ge=0, le=10_000)] = None,
                     sess: SessionInfo = Depends(clinical_session)) -> Response:
        summary = worklist.patient_summary(patient_pk, settings,
                                           identified=sess.user.role.sees_identity)
        _audit_read(request, sess, patient_pk, "lesions")
        table = clinical.lesion_table(settings, patient_pk, tp)
        if not sess.user.role.sees_identity:
            table = privacy.for_patient(settings, summary, clinical.timeline(
                settings, patient_pk, summary))(table)
        return page(request, "lesions.html", sess, patient=summary, table=table)

    @app.get("/api/patients/{patient_pk}/lesions/{lesion_id}")
    def lesion_history(request: Request, patient_pk: PatientPk, lesion_id: str,
                       sess: SessionInfo = Depends(clinical_session)) -> dict[str, Any]:
        out = clinical.lesion_history(settings, patient_pk, lesion_id)
        _audit_read(request, sess, patient_pk, "lesion", lesion_id)
        if not sess.user.role.sees_identity:
            summary = worklist.patient_summary(patient_pk, settings, identified=False)
            out = privacy.for_patient(settings, summary, clinical.timeline(
                settings, patient_pk, summary))(out)
        return out

    @app.post("/api/patients/{patient_pk}/lesions/{lesion_id}/role")
    async def lesion_role(request: Request, patient_pk: PatientPk, lesion_id: str,
                          sess: SessionInfo = Depends(require_edit)) -> dict[str, Any]:
        body = _validated(RoleBody, await _json(request)).model_dump(exclude_none=True)
        result = clinical.set_role(settings, patient_pk, lesion_id, body,
                                   actor=sess.user.username)
        audit.record(settings, sess.user.username, "lesion.role",
                     f"patient:{patient_pk}/lesion:{lesion_id}", _safe_details(body))
        return result

    @app.post("/api/patients/{patient_pk}/lesions/{lesion_id}/match")
    async def lesion_match(request: Request, patient_pk: PatientPk, lesion_id: str,
                           sess: SessionInfo = Depends(require_edit)) -> dict[str, Any]:
        body = _validated(MatchBody, await _json(request)).model_dump()
        result = clinical.fix_match(settings, patient_pk, lesion_id, body,
                                    actor=sess.user.username)
        audit.record(settings, sess.user.username, "lesion.match",
                     f"patient:{patient_pk}/lesion:{lesion_id}", _safe_details(body))
        return result

    @app.post("/api/studies/{study_uid}/measurements")
    async def add_measurement(request: Request, study_uid: str,
                              sess: SessionInfo = Depends(require_edit)) -> dict[str, Any]:
        body = _validated(MeasurementBody, await _json(request)).model_dump()
        study_uid = _study_uid(sess, study_uid)
        vols = viewer.study_volumes(study_uid, settings)
        patient_pk = worklist.patient_pk_of_study(study_uid, settings)
        result = clinical.add_measurement(settings, vols, patient_pk, study_uid, body,
                                          actor=sess.user.username)
        audit.record(settings, sess.user.username, "lesion.measure",
                     f"study:{study_uid}", _safe_details(body))
        return result

    # ---------------------------------------------------------------- administration
    admin_only = require_roles(Role.ADMIN)

    def admin_csrf(sess: SessionInfo = Depends(csrf_session)) -> SessionInfo:
        if sess.user.role is not Role.ADMIN:
            raise HTTPException(403, "your role does not allow this")
        return sess

    @app.get("/admin/audit", response_class=HTMLResponse)
    def audit_page(request: Request, page_no: PageNo = 1,
                   sess: SessionInfo = Depends(admin_only)) -> Response:
        per = 50
        entries = audit.list_entries(settings, limit=per, offset=(max(page_no, 1) - 1) * per)
        total = audit.count_entries(settings)
        return page(request, "audit.html", sess, entries=entries, page_no=page_no,
                    pages=max(1, -(-total // per)), total=total)

    def users_view(request: Request, sess: SessionInfo, error: str | None = None
                   ) -> Response:
        return page(request, "users.html", sess, status=400 if error else 200,
                    users=users.list_users(settings), roles=list(Role), error=error,
                    min_password_len=users.MIN_PASSWORD_LEN)

    @app.get("/admin/users", response_class=HTMLResponse)
    def users_page(request: Request, sess: SessionInfo = Depends(admin_only)) -> Response:
        return users_view(request, sess)

    @app.post("/admin/users", response_class=HTMLResponse)
    def users_add(request: Request, username: str = Form(...), password: str = Form(...),
                  role: str = Form(...), sess: SessionInfo = Depends(admin_csrf)) -> Response:
        try:
            users.add_user(settings, username, password, role, actor=sess.user.username)
        except InputError as exc:
            return users_view(request, sess, str(exc))
        return RedirectResponse("/admin/users", status_code=303)

    @app.post("/admin/users/{username}/{action}", response_class=HTMLResponse)
    def users_action(request: Request, username: str, action: str,
                     password: str = Form(""),
                     sess: SessionInfo = Depends(admin_csrf)) -> Response:
        actor = sess.user.username
        try:
            if action in ("disable", "delete") and \
                    users.username_key(username) == users.username_key(actor):
                raise InputError(f"user {username!r}: you cannot {action} your own account")
            if action == "disable":
                users.set_active(settings, username, False, actor=actor)
            elif action == "enable":
                users.set_active(settings, username, True, actor=actor)
            elif action == "delete":
                users.delete_user(settings, username, actor=actor)
            elif action == "password":
                users.set_password(settings, username, password, actor=actor)
            else:
                raise HTTPException(404, f"unknown user action {action!r}")
        except InputError as exc:
            return users_view(request, sess, str(exc))
        return RedirectResponse("/admin/users", status_code=303)

    # ---------------------------------------------------------------- batch runs (#17)
    # Admins and physicians (the roles that run batches) see every run and may cancel one;
    # fellows and researchers do not (task lists name Patient IDs), docs/scale.md.
    batch_viewer = require_roles(Role.ADMIN, Role.PHYSICIAN)

    def batch_csrf(sess: SessionInfo = Depends(csrf_session)) -> SessionInfo:
        if sess.user.role not in (Role.ADMIN, Role.PHYSICIAN):
            raise HTTPException(403, "your role does not allow this")
        return sess

    def _refreshing(resp: Response, running: bool) -> Response:
        if running:  # the page reloads itself while tasks run (no script: CSP)
            resp.headers["Refresh"] = "10"
        return resp

    @app.get("/batch", response_class=HTMLResponse)
    def batch_runs_page(request: Request, sess: SessionInfo = Depends(batch_viewer)
                        ) -> Response:
        runs = batch.list_runs(settings)
        return _refreshing(page(request, "batch.html", sess, runs=runs, run=None),
                           any(r["status"] == "running" for r in runs))

    @app.get("/batch/{run_pk}", response_class=HTMLResponse)
    def batch_run_page(request: Request, run_pk: RunPk,
                       sess: SessionInfo = Depends(batch_viewer)) -> Response:
        run = batch.run_detail(run_pk, settings)
        return _refreshing(page(request, "batch.html", sess, runs=None, run=run),
                           run["status"] == "running")

    @app.get("/api/batch/{run_pk}")
    def batch_run_api(run_pk: RunPk, _sess: SessionInfo = Depends(batch_viewer)
                      ) -> dict[str, Any]:
        return batch.run_detail(run_pk, settings)

    @app.post("/batch/{run_pk}/cancel")
    def batch_cancel(request: Request, run_pk: RunPk,
                     sess: SessionInfo = Depends(batch_csrf)) -> Response:
        summary = batch.cancel_run(run_pk, settings)
        audit.record(settings, sess.user.username, "batch.cancel", f"batch:{run_pk}",
                     {"kind": summary["kind"], **{k: summary["counts"][k] for k in
                                                   ("queued", "running", "done", "failed")}},
                     _client(request))
        return RedirectResponse(f"/batch/{run_pk}", status_code=303)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # ---------------------------------------------------------------- further areas
    # Tumour boards, teaching file, research, breast, nuclear medicine, fellowship: each
    # in its own module (web/areas.py).
    register_areas(app, areas)

    return app


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InputError("request body: expected a JSON object") from None
    if not isinstance(body, dict):
        raise InputError("request body: expected a JSON object")
    return body


def _safe_details(body: dict[str, Any]) -> dict[str, Any]:
    """What an audit entry keeps of a request body: short scalar values only."""
    return {k: v for k, v in body.items()
            if isinstance(v, int | float | bool) or (isinstance(v, str) and len(v) <= 64)
            or (isinstance(v, list) and len(v) <= 8)}


def serve(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the application with uvicorn until interrupted (access log without queries)."""
    import uvicorn

    settings = settings or get_settings()
    app = create_app(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info",
                proxy_headers=False, server_header=False)
