"""Scanner QC in the reading room (issue #20): the equipment registry, the QC log with
trend plots and recovery curves, daily QC entry, and the harmonisation warnings of the
patient page ("SUV not harmonised" when the scanner failed QC that week; whether each PET
reconstruction matches the scanner's EARL-compliant protocol)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oncohybrid.errors import InputError
from oncohybrid.services import audit
from oncohybrid.services import qc as qc_service
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import csrf_session, require_roles

#: Roles that see the QC pages (QC data are about machines, not patients).
VIEW_ROLES = (Role.PHYSICIAN, Role.MENTOR, Role.FELLOW, Role.ADMIN, Role.RESEARCHER)
#: Roles that may log daily QC and refresh the registry.
EDIT_ROLES = (Role.PHYSICIAN, Role.MENTOR, Role.ADMIN)
#: Database keys in paths (404 rather than 500 beyond the integer range).
DbKey = Annotated[int, Path(ge=1, le=2**31 - 1)]


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    viewer = require_roles(*VIEW_ROLES)

    def editor(sess: SessionInfo = Depends(csrf_session)) -> SessionInfo:
        if sess.user.role not in EDIT_ROLES:
            raise HTTPException(status_code=403, detail="your role does not allow QC entries")
        return sess

    ctx.add_nav("Scanner QC", "/qc", *VIEW_ROLES)
    ctx.patient_notes.append(qc_service.patient_notes)

    def qc_page(request: Request, sess: SessionInfo, error: str | None = None,
                message: str | None = None) -> Response:
        return ctx.page(request, "qc/index.html", sess, status=400 if error else 200,
                        scanners=qc_service.list_scanners(settings),
                        results=list(reversed(qc_service.list_results(None, settings)))[:100],
                        can_edit=sess.user.role in EDIT_ROLES, error=error, message=message)

    @app.get("/qc", response_class=HTMLResponse)
    def qc_index(request: Request, sess: SessionInfo = Depends(viewer)) -> Response:
        return qc_page(request, sess)

    @app.get("/qc/scanners/{scanner_id}/trend.png")
    def qc_trend(scanner_id: DbKey, sess: SessionInfo = Depends(viewer)) -> Response:
        import tempfile
        from pathlib import Path as FsPath

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = qc_service.trend_plot(str(scanner_id), FsPath(tmp) / "t.png", settings)
            except InputError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from exc
            return Response(path.read_bytes(), media_type="image/png")

    @app.get("/qc/results/{result_id}/curves.png")
    def qc_curves(result_id: DbKey, sess: SessionInfo = Depends(viewer)) -> Response:
        from oncohybrid.qc.plots import recovery_curves_png

        hit = [r for r in qc_service.list_results(None, settings, kind="iec")
               if r["id"] == result_id]
        if not hit or not hit[0]["values"].get("spheres"):
            raise HTTPException(status_code=404, detail="no IEC phantom result with this id")
        r = hit[0]
        return Response(recovery_curves_png(r["values"]["spheres"],
                                            title=f"{r['scanner']} {r['date']}"),
                        media_type="image/png")

    @app.post("/qc/daily", response_class=HTMLResponse)
    def qc_daily(request: Request, scanner: str = Form(...), date: str = Form(...),
                 name: str = Form(...), value: str = Form(...),
                 low: str = Form(""), high: str = Form(""),
                 sess: SessionInfo = Depends(editor)) -> Response:
        try:
            try:
                v = float(value)
                tol = None
                if low.strip() or high.strip():
                    tol = {name.strip(): (float(low), float(high))}
            except ValueError:
                raise InputError("value, low and high must be numbers") from None
            res = qc_service.record_daily(scanner, date, {name.strip(): v}, tol,
                                          settings=settings, actor=sess.user.username)
        except InputError as exc:
            return qc_page(request, sess, error=str(exc))
        return RedirectResponse(f"/qc?logged={res['result_id']}", status_code=303)

    @app.post("/qc/registry/refresh", response_class=HTMLResponse)
    def qc_refresh(request: Request, sess: SessionInfo = Depends(editor)) -> Response:
        res = qc_service.refresh_registry(settings, actor=sess.user.username)
        audit.record(settings, sess.user.username, "qc.registry.view-refresh", None,
                     {"linked": res["linked"]}, client=ctx.client(request))
        return RedirectResponse("/qc", status_code=303)
