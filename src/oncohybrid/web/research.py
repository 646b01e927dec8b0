"""Research studies in the reading room (issue #16): study list and dashboard (cohorts
with their CONSORT diagram, exam tracking, CRF completion, exports), CRF entry forms with
branching logic and calculated fields (``static/research.js``), e-signature locking, and
exam badges on the worklist.

Every page goes through :mod:`oncohybrid.services.research` with the signed-in user as
the :class:`~oncohybrid.services.research.Viewer`: members see their studies only, a
member of a data-access group only that group's records, researchers pseudonyms and
shifted dates, and their exports are de-identified. Non-members get 404 (a study's
existence is not revealed).
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oncohybrid.config import Settings
from oncohybrid.errors import InputError
from oncohybrid.services import research as svc
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import csrf_session, require_roles

_ROLES = (Role.PHYSICIAN, Role.FELLOW, Role.RESEARCHER, Role.ADMIN, Role.MENTOR)
Key = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Name = Annotated[str, PathParam(min_length=1, max_length=128)]
Form = Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Rec = Annotated[str, PathParam(min_length=1, max_length=64)]


def _viewer(sess: SessionInfo) -> svc.Viewer:
    return svc.Viewer(sess.user.username, sess.user.role.value)


def _not_found(exc: InputError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    member = require_roles(*_ROLES)

    def member_csrf(sess: SessionInfo = Depends(csrf_session)) -> SessionInfo:
        if sess.user.role not in _ROLES:
            raise HTTPException(status_code=403, detail="your role does not allow this")
        return sess

    ctx.add_nav("Research", "/research", *_ROLES)
    def badges(st: Settings, pks: list[int], sess: SessionInfo | None
               ) -> dict[int, list[str]]:
        # only the viewer's studies and data-access group (docs/research.md, security)
        return svc.worklist_badges(st, pks, _viewer(sess)) if sess else {}

    def notes(st: Settings, pk: int, sess: SessionInfo | None) -> list[str]:
        return [f"Research study {b}" for b in badges(st, [pk], sess).get(pk, [])]

    ctx.worklist_badges.append(badges)
    ctx.patient_notes.append(notes)

    @app.get("/research", response_class=HTMLResponse)
    def research_home(request: Request, sess: SessionInfo = Depends(member)) -> Response:
        studies = svc.list_studies(_viewer(sess), settings)
        return ctx.page(request, "research/index.html", sess, studies=studies)

    @app.get("/research/{key}", response_class=HTMLResponse)
    def study_page(request: Request, key: Key, sess: SessionInfo = Depends(member)
                   ) -> Response:
        try:
            dash = svc.dashboard(key, viewer=_viewer(sess), settings=settings)
        except InputError as exc:
            raise _not_found(exc) from None
        return ctx.page(request, "research/study.html", sess, d=dash,
                        deid_forced=not sess.user.role.sees_identity,
                        message=request.query_params.get("msg"))

    @app.get("/research/{key}/consort/{name}.png")
    def consort_png(key: Key, name: Name, sess: SessionInfo = Depends(member)) -> Response:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = svc.cohort_figure(key, name, Path(tmp) / "consort.png",
                                         viewer=_viewer(sess), settings=settings)
            except InputError as exc:
                raise _not_found(exc) from None
            data = path.read_bytes()
        return Response(data, media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    @app.get("/research/{key}/records/{record_id}/{form}", response_class=HTMLResponse)
    def form_page(request: Request, key: Key, record_id: Rec, form: Form,
                  instance: int = 1, sess: SessionInfo = Depends(member)) -> Response:
        try:
            view = svc.form_view(key, record_id, form, instance=instance,
                                 viewer=_viewer(sess), settings=settings)
            history = svc.crf_history(key, record_id, viewer=_viewer(sess),
                                      settings=settings)
        except InputError as exc:
            raise _not_found(exc) from None
        return ctx.page(request, "research/form.html", sess, v=view,
                        history=[h for h in history if h["form"] == form
                                 and h["instance"] == instance][:50],
                        error=None, message=request.query_params.get("msg"))

    @app.post("/research/{key}/records/{record_id}/{form}", response_class=HTMLResponse)
    async def form_save(request: Request, key: Key, record_id: Rec, form: Form,
                        instance: int = 1, sess: SessionInfo = Depends(member_csrf)
                        ) -> Response:
        viewer = _viewer(sess)
        try:
            view = svc.form_view(key, record_id, form, instance=instance, viewer=viewer,
                                 settings=settings)
        except InputError as exc:
            raise _not_found(exc) from None
        data = await request.form()
        values: dict[str, Any] = {}
        for f in view["fields"]:
            if f["imaging"] or f["type"] in ("calc", "descriptive", "file", "sql"):
                continue
            if f["type"] == "checkbox":
                values[f["name"]] = [c for c, _ in f["choices"]
                                     if data.get(f"{f['name']}___{c.lower()}") in ("1", "on")]
            elif f["identifier"] and not sess.user.role.sees_identity:
                continue
            else:
                raw = data.get(f["name"])
                values[f["name"]] = raw if isinstance(raw, str) else ""
        complete = data.get("form_complete") == "2"
        try:
            svc.save_form(key, record_id, form, values, instance=instance, complete=complete,
                          viewer=viewer, settings=settings)
        except InputError as exc:
            history = svc.crf_history(key, record_id, viewer=viewer, settings=settings)
            for f in view["fields"]:  # show what was typed
                if f["name"] in values:
                    v = values[f["name"]]
                    f["value"] = ",".join(v) if isinstance(v, list) else v
                    f["ticked"] = v if isinstance(v, list) else f["ticked"]
            return ctx.page(request, "research/form.html", sess, v=view,
                            history=[h for h in history if h["form"] == form][:50],
                            error=str(exc), message=None, status=422)
        return RedirectResponse(f"/research/{key}/records/{record_id}/{form}?instance="
                                f"{instance}&msg=saved", status_code=303)

    @app.post("/research/{key}/records/{record_id}/{form}/lock")
    async def form_lock(request: Request, key: Key, record_id: Rec, form: Form,
                        instance: int = 1, sess: SessionInfo = Depends(member_csrf)
                        ) -> Response:
        data = await request.form()
        password = data.get("password")
        try:
            svc.lock_form(key, record_id, form, instance=instance,
                          username=sess.user.username,
                          password=password if isinstance(password, str) else "",
                          viewer=_viewer(sess), settings=settings)
            msg = "locked"
        except InputError as exc:
            msg = re.sub(r"[^A-Za-z0-9 ,.:'#()-]", "", str(exc))[:200]
        return RedirectResponse(f"/research/{key}/records/{record_id}/{form}?instance="
                                f"{instance}&msg={msg.replace(' ', '+')}", status_code=303)

    @app.post("/research/{key}/export")
    async def export(request: Request, key: Key, sess: SessionInfo = Depends(member_csrf)
                     ) -> Response:
        data = await request.form()
        fmt = data.get("format") if data.get("format") in ("csv", "parquet") else "csv"
        deid = data.get("deidentify") == "1" or not sess.user.role.sees_identity
        with tempfile.TemporaryDirectory() as tmp:
            try:
                res = svc.export_study(key, Path(tmp) / "export", fmt=str(fmt),
                                       deidentify=deid, viewer=_viewer(sess),
                                       settings=settings)
            except InputError as exc:
                raise _not_found(exc) from None
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in sorted((Path(tmp) / "export").iterdir()):
                    zf.write(p, p.name)
        name = f"{key}-{'deid-' if res['deidentified'] else ''}export.zip"
        return Response(buf.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
