"""Nuclear medicine in the reading room (issue #20): per patient, the therapy cycles found
in the stored SPECT-CTs, a form to compute the dosimetry of a cycle (local deposition or
voxel S-values), the stored runs, and per run the time–activity curves, the dose table
(mass, TIA, dose, Gy/GBq, fit, kidney BED, cumulative dose) with every constant, and the
DVHs; and the PSMA/SSTR lesion table (PROMISE V2 expression score, Krenning score).

Identified clinical data: physicians, mentors, fellows and administrators see it;
researchers (pseudonymised only) do not. Running a computation needs an editing role.
Every page read is audited as a patient read, every run as ``nm.dosimetry``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oncohybrid.errors import OncohybridError
from oncohybrid.nm.kinetics import MODELS
from oncohybrid.services import audit, worklist
from oncohybrid.services import nm as nm_service
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import csrf_session, require_roles

#: Roles that see the dosimetry pages (identified clinical data).
VIEW_ROLES = (Role.PHYSICIAN, Role.MENTOR, Role.FELLOW, Role.ADMIN)
DbKey = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _float(text: str | None, name: str) -> float | None:
    from oncohybrid.errors import InputError

    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{name}: expected a number, got {text!r}") from None


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    viewer = require_roles(*VIEW_ROLES)

    def runner(sess: SessionInfo = Depends(csrf_session)) -> SessionInfo:
        if sess.user.role not in VIEW_ROLES or not sess.user.role.can_edit:
            raise HTTPException(status_code=403, detail="your role does not run dosimetry")
        return sess

    ctx.add_nav("Dosimetry", "/nuclear", *VIEW_ROLES)
    ctx.add_patient_action("Dosimetry / PSMA-SSTR", "/nuclear/patients/{pk}", *VIEW_ROLES)
    ctx.patient_notes.append(nm_service.kidney_notes)

    def _patient(pk: int) -> dict[str, Any]:
        try:
            return worklist.patient_summary(pk, settings, identified=True)
        except OncohybridError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    def _read(request: Request, sess: SessionInfo, pk: int, view: str) -> None:
        audit.record(settings, sess.user.username, "patient.read", f"patient:{pk}",
                     {"view": view}, ctx.client(request))

    @app.get("/nuclear", response_class=HTMLResponse)
    def nuclear_index(request: Request, sess: SessionInfo = Depends(viewer)) -> Response:
        return ctx.page(request, "nuclear/index.html", sess,
                        patients=nm_service.nm_patients(settings))

    def patient_page(request: Request, sess: SessionInfo, pk: int, *, error: str | None = None,
                     form: dict[str, Any] | None = None, tracer_args: dict[str, Any] | None = None
                     ) -> Response:
        head = _patient(pk)
        cycles: list[dict[str, Any]] = []
        cycle_error = None
        try:
            cycles = nm_service.list_cycles(head["patient_id"], settings=settings)
        except OncohybridError as exc:
            cycle_error = str(exc)
        targs = tracer_args or {}
        table = None
        table_error = None
        try:
            table = nm_service.tracer_lesion_table(settings, head["patient_id"], **targs)
        except OncohybridError as exc:
            table_error = str(exc)
        _read(request, sess, pk, "nuclear")
        return ctx.page(request, "nuclear/patient.html", sess, status=400 if error else 200,
                        patient=head, cycles=cycles, cycle_error=cycle_error,
                        runs=nm_service.patient_runs(settings, pk), error=error,
                        form=form or {"cycle": 1, "method": "local", "fit": "auto"},
                        can_run=sess.user.role.can_edit, table=table,
                        table_error=table_error, targs=targs, methods=nm_service.METHODS,
                        fits=MODELS)

    @app.get("/nuclear/patients/{pk}", response_class=HTMLResponse)
    def nuclear_patient(request: Request, pk: DbKey,
                        date: Annotated[str | None, Query(max_length=10)] = None,
                        blood_pool: Annotated[str | None, Query(max_length=20)] = None,
                        liver: Annotated[str | None, Query(max_length=20)] = None,
                        parotid: Annotated[str | None, Query(max_length=20)] = None,
                        spleen: Annotated[str | None, Query(max_length=20)] = None,
                        liver_max: Annotated[str | None, Query(max_length=20)] = None,
                        spleen_max: Annotated[str | None, Query(max_length=20)] = None,
                        sess: SessionInfo = Depends(viewer)) -> Response:
        try:
            targs = {"scan_date": date or None,
                     "blood_pool_suv_mean": _float(blood_pool, "blood pool SUVmean"),
                     "liver_suv_mean": _float(liver, "liver SUVmean"),
                     "parotid_suv_mean": _float(parotid, "parotid SUVmean"),
                     "spleen_suv_mean": _float(spleen, "spleen SUVmean"),
                     "liver_suv_max": _float(liver_max, "liver SUVmax"),
                     "spleen_suv_max": _float(spleen_max, "spleen SUVmax")}
        except OncohybridError as exc:
            return patient_page(request, sess, pk, error=str(exc))
        return patient_page(request, sess, pk, tracer_args=targs)

    @app.post("/nuclear/patients/{pk}/dosimetry", response_class=HTMLResponse)
    def nuclear_run(request: Request, pk: DbKey, cycle: str = Form(...),
                    method: str = Form("local"), fit: str = Form("auto"),
                    sensitivity: str = Form(""), sess: SessionInfo = Depends(runner)
                    ) -> Response:
        head = _patient(pk)
        form = {"cycle": cycle, "method": method, "fit": fit, "sensitivity": sensitivity}
        try:
            try:
                n = int(cycle)
            except ValueError:
                from oncohybrid.errors import InputError

                raise InputError(f"cycle: expected a whole number, got {cycle!r}") from None
            nm_service.dosimetry(head["patient_id"], n, method=method, fit=fit,
                                 sensitivity_cps_mbq=_float(sensitivity, "sensitivity"),
                                 actor=sess.user.username, settings=settings)
        except OncohybridError as exc:
            return patient_page(request, sess, pk, error=str(exc), form=form)
        runs = [r for r in nm_service.patient_runs(settings, pk)
                if r["cycle"] == n and r["method"] == method]
        newest = max(runs, key=lambda r: r["id"])
        return RedirectResponse(f"/nuclear/runs/{newest['id']}", status_code=303)

    def _run(run_id: int) -> dict[str, Any]:
        run = nm_service.run_by_id(settings, run_id)
        if run is None:
            raise HTTPException(status_code=404, detail="no dosimetry run with this number")
        return run

    @app.get("/nuclear/runs/{run_id}", response_class=HTMLResponse)
    def nuclear_run_page(request: Request, run_id: DbKey,
                         sess: SessionInfo = Depends(viewer)) -> Response:
        run = _run(run_id)
        head = _patient(run["patient_pk"])
        _read(request, sess, run["patient_pk"], f"dosimetry:{run_id}")
        return ctx.page(request, "nuclear/run.html", sess, run=run, doc=run["doc"],
                        patient=head)

    @app.get("/nuclear/runs/{run_id}/report.pdf")
    def nuclear_pdf(request: Request, run_id: DbKey,
                    sess: SessionInfo = Depends(viewer)) -> Response:
        import tempfile
        from pathlib import Path as FsPath

        from oncohybrid.nm.report import dosimetry_pdf

        run = _run(run_id)
        head = _patient(run["patient_pk"])
        with tempfile.TemporaryDirectory() as tmp:
            path = dosimetry_pdf(run["doc"], FsPath(tmp) / "dosimetry.pdf",
                                 patient_label=head["label"])
            data = path.read_bytes()
        audit.record(settings, sess.user.username, "report.download",
                     f"patient:{run['patient_pk']}", {"view": f"dosimetry:{run_id}"},
                     ctx.client(request))
        return Response(data, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="dosimetry-{run_id}.pdf"'})

    @app.get("/nuclear/runs/{run_id}/tac.png")
    def nuclear_tac(run_id: DbKey, sess: SessionInfo = Depends(viewer)) -> Response:
        from oncohybrid.nm.plots import tac_png

        return Response(tac_png(_run(run_id)["doc"]), media_type="image/png")

    @app.get("/nuclear/runs/{run_id}/dvh.png")
    def nuclear_dvh(run_id: DbKey, sess: SessionInfo = Depends(viewer)) -> Response:
        from oncohybrid.nm.plots import dvh_png

        return Response(dvh_png(_run(run_id)["doc"]), media_type="image/png")
