"""The reading room's viewer for MR diffusion, contrast ultrasound and DECT iodine (issue
#19): ``/studies/{uid}/advanced`` and its JSON/PNG API under ``/api/advanced/{uid}/``.

Layers with their own windows (b-images, ADC map in µm²/s, plain MR), disc ROIs with the
ADC statistics of ``oncohybrid dwi adc``, ultrasound cine playback with the ROI's
time-intensity curve and bolus fit, and the DECT iodine overlay on CT; the computation is
:mod:`oncohybrid.services.viewer_advanced`. Identified clinical roles only (researchers use
the pseudonymised PET/CT viewer and exports): the study UID in the URL is the real one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from oncohybrid.services import audit, worklist
from oncohybrid.services import viewer_advanced as va
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import require_edit, require_roles

__all__ = ["register"]

VIEWERS = (Role.PHYSICIAN, Role.FELLOW, Role.ADMIN, Role.MENTOR)
Uid = Annotated[str, PathParam(pattern=r"^[0-9.]{1,64}$")]
Index = Annotated[int, PathParam(ge=0, le=100_000)]
Frac = Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)]
_PNG = {"Cache-Control": "private, max-age=300"}


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    viewer = require_roles(*VIEWERS)

    @app.get("/studies/{study_uid}/advanced", response_class=HTMLResponse)
    def advanced_page(request: Request, study_uid: Uid,
                      sess: SessionInfo = Depends(viewer)) -> Response:
        patient_pk = worklist.patient_pk_of_study(study_uid, settings)
        summary = worklist.patient_summary(patient_pk, settings, identified=True)
        study = next(s for s in summary["studies"] if s["study_uid"] == study_uid)
        audit.record(settings, sess.user.username, "patient.read", f"patient:{patient_pk}",
                     {"view": "advanced-viewer"}, ctx.client(request))
        return ctx.page(request, "viewer_advanced.html", sess, patient=summary, study=study,
                        dark=True)

    @app.get("/api/advanced/{study_uid}/info")
    def info(study_uid: Uid, _sess: SessionInfo = Depends(viewer)) -> dict[str, Any]:
        return va.study_layers(settings, study_uid).info()

    @app.get("/api/advanced/{study_uid}/series/{series_uid}/layer/{layer}/{index}.png")
    def layer_png(study_uid: Uid, series_uid: Uid,
                  layer: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9.]{1,16}$")],
                  index: Index,
                  wc: Annotated[float | None, Query(ge=-1e7, le=1e7, allow_inf_nan=False)] = None,
                  ww: Annotated[float | None, Query(gt=0, le=1e7, allow_inf_nan=False)] = None,
                  overlay: bool = True,
                  _sess: SessionInfo = Depends(viewer)) -> Response:
        view = va.study_layers(settings, study_uid).get(series_uid)
        png = va.layer_png(view, layer, index, centre=wc, width=ww, overlay=overlay)
        return Response(png, media_type="image/png", headers=_PNG)

    @app.get("/api/advanced/{study_uid}/series/{series_uid}/frame/{index}.png")
    def frame_png(study_uid: Uid, series_uid: Uid, index: Index,
                  _sess: SessionInfo = Depends(viewer)) -> Response:
        view = va.study_layers(settings, study_uid).get(series_uid)
        return Response(va.frame_png(view, index), media_type="image/png", headers=_PNG)

    @app.get("/api/advanced/{study_uid}/series/{series_uid}/probe")
    def probe(study_uid: Uid, series_uid: Uid,
              layer: Annotated[str, Query(pattern=r"^[A-Za-z0-9.]{1,16}$")],
              index: Annotated[int, Query(ge=0, le=100_000)], fx: Frac, fy: Frac,
              _sess: SessionInfo = Depends(viewer)) -> dict[str, Any]:
        view = va.study_layers(settings, study_uid).get(series_uid)
        return va.probe(view, layer, index, fx, fy)

    @app.get("/api/advanced/{study_uid}/series/{series_uid}/roi")
    def roi(study_uid: Uid, series_uid: Uid,
            layer: Annotated[str, Query(pattern=r"^[A-Za-z0-9.]{1,16}$")],
            index: Annotated[int, Query(ge=0, le=100_000)], fx: Frac, fy: Frac,
            radius_mm: Annotated[float, Query(gt=0, le=500, allow_inf_nan=False)],
            _sess: SessionInfo = Depends(viewer)) -> dict[str, Any]:
        view = va.study_layers(settings, study_uid).get(series_uid)
        return va.roi_stats(view, layer, index, fx, fy, radius_mm)

    @app.get("/api/advanced/{study_uid}/measurements")
    def measurements(study_uid: Uid, _sess: SessionInfo = Depends(viewer)
                     ) -> list[dict[str, Any]]:
        return va.study_measurements(settings, study_uid)

    @app.post("/api/advanced/{study_uid}/series/{series_uid}/measurements")
    async def save(request: Request, study_uid: Uid, series_uid: Uid,
                   sess: SessionInfo = Depends(require_edit)) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(status_code=400, detail="expected a JSON body") from None
        if not isinstance(body, dict):
            raise HTTPException(status_code=400, detail="expected a JSON object")
        entry = va.save_measurement(settings, study_uid, series_uid, body,
                                    sess.user.username)
        patient_pk = worklist.patient_pk_of_study(study_uid, settings)
        audit.record(settings, sess.user.username, "advanced.measurement",
                     f"patient:{patient_pk}", {"kind": entry["kind"],
                                               "series_kind": entry["series_kind"]},
                     ctx.client(request))
        return entry

    @app.get("/api/advanced/{study_uid}/series/{series_uid}/tic")
    def tic(study_uid: Uid, series_uid: Uid,
            x: Annotated[int, Query(ge=0, le=100_000)],
            y: Annotated[int, Query(ge=0, le=100_000)],
            w: Annotated[int, Query(ge=1, le=100_000)],
            h: Annotated[int, Query(ge=1, le=100_000)],
            model: Annotated[str, Query(max_length=16)] = "lognormal",
            dynamic_range_db: Annotated[float, Query(gt=0, le=200, allow_inf_nan=False)] = 60.0,
            _sess: SessionInfo = Depends(viewer)) -> dict[str, Any]:
        view = va.study_layers(settings, study_uid).get(series_uid)
        return va.tic_of_roi(view, x, y, w, h, model=model, dynamic_range_db=dynamic_range_db)
