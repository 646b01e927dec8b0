"""Breast imaging in the reading room (issue #21): the structured BI-RADS report form
(mammography with a mass, calcifications, an asymmetry, an architectural distortion; any
modality through the structured JSON), the generated text in English and French with the
category, signing, pathology results with the radiology-pathology concordance, the
outcome audit of the signed reports (or of uploaded EXAMS.csv/OUTCOMES.csv), and the
pairing of CEM low-energy and recombined images.

Physicians, mentors and administrators write and sign; fellows read. The audit page
shows aggregate numbers only and is open to researchers too. Every change is audited
(:mod:`oncohybrid.services.audit`) without PHI.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from oncohybrid.errors import InputError
from oncohybrid.services import breast as svc
from oncohybrid.services import worklist
from oncohybrid.services.users import Role, SessionInfo
from oncohybrid.web.areas import WebContext
from oncohybrid.web.security import csrf_session, require_edit, require_roles

__all__ = ["register"]

MAX_PK = 2**31 - 1
VIEWERS = (Role.PHYSICIAN, Role.FELLOW, Role.ADMIN, Role.MENTOR)
AUDIT_VIEWERS = (*VIEWERS, Role.RESEARCHER)

#: The blocks of the mammography form: form prefix -> (finding type, its descriptor fields)
_BLOCKS = {
    "mass": ("mass", ("shape", "margin", "density", "orientation", "echo_pattern",
                      "posterior_features", "internal_enhancement", "conspicuity",
                      "kinetics_initial", "kinetics_delayed")),
    "calc": ("calcifications", ("morphology", "distribution")),
    "asym": ("asymmetry", ("asymmetry_kind",)),
    "ad": ("architectural_distortion", ()),
    "nme": ("non_mass_enhancement", ("nme_distribution", "nme_pattern", "conspicuity",
                                     "kinetics_initial", "kinetics_delayed")),
}


def _lexicon_choices() -> dict[str, Any]:
    from oncohybrid.breast.lexicon import lexicon

    lex = lexicon()
    fields = {name: [(code, spec["terms"][code]["en"]) for code in spec["terms"]]
              for name, spec in lex["fields"].items()}
    mg_assoc = lex["fields"]["associated"]["modalities"]["MG"]
    fields["associated_mg"] = [(c, lex["fields"]["associated"]["terms"][c]["en"])
                               for c in mg_assoc]
    return {"fields": fields, "composition": [(k, v["en"]) for k, v in
                                              lex["composition"].items()],
            "fgt": [(k, v["en"]) for k, v in lex["mri_fgt"].items()],
            "bpe": [(k, v["en"]) for k, v in lex["bpe"].items()],
            "bpe_symmetry": [(k, v["en"]) for k, v in lex["bpe_symmetry"].items()],
            "depth": list(lex["depth"]), "modalities": [(k, v["en"]) for k, v in
                                                        lex["modalities"].items()],
            "categories": ["0", "1", "2", "3", "4", "4A", "4B", "4C", "5", "6"]}


def _form_to_report(form: Any) -> dict[str, Any]:
    """The structured report from the form (or from its structured-JSON box)."""
    raw = (form.get("structured_json") or "").strip()
    if raw:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"structured JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(data, dict):
            raise InputError("structured JSON: expected an object")
        return data
    data: dict[str, Any] = {k: form.get(k) for k in ("modality", "purpose", "exam_date",
                                                     "composition", "fgt", "bpe",
                                                     "bpe_symmetry", "indication")
                            if form.get(k)}
    findings = []
    for prefix, (ftype, fields) in _BLOCKS.items():
        if not form.get(f"{prefix}_present"):
            continue
        f: dict[str, Any] = {"type": ftype}
        for key in ("laterality", "clock", "depth", "distance_from_nipple_cm", "size_mm",
                    "category", *fields):
            value = (form.get(f"{prefix}_{key}") or "").strip()
            if value:
                f[key] = value
        assoc = [a for a in form.getlist(f"{prefix}_associated") if a]
        if assoc:
            f["associated"] = assoc
        if prefix == "mass" and (form.get("swe_lesion") or "").strip():
            def values(text: str) -> list[str]:
                return [v for v in text.replace(";", ",").split(",") if v.strip()]
            f["elastography"] = {"unit": form.get("swe_unit") or "kPa",
                                 "lesion": values(form.get("swe_lesion") or ""),
                                 "fat": values(form.get("swe_fat") or "")}
        findings.append(f)
    data["findings"] = findings
    return data


def _report_to_form(structured: dict[str, Any]) -> dict[str, Any]:
    """The form values of a saved structured report (for editing a draft); when the form
    cannot hold it (two findings of one type, a type without a block), the structured JSON
    box is filled instead."""
    values: dict[str, Any] = {k: structured[k] for k in ("modality", "purpose", "exam_date",
                                                         "composition", "fgt", "bpe",
                                                         "bpe_symmetry", "indication")
                              if k in structured}
    prefix_of = {ftype: prefix for prefix, (ftype, _) in _BLOCKS.items()}
    findings = structured.get("findings", [])
    types = [f["type"] for f in findings]
    if any(t not in prefix_of for t in types) or len(set(types)) != len(types) or any(
            k in f for f in findings for k in ("comment",)) or any(
            "associated" in f and f["type"] != "mass" for f in findings) or any(
            isinstance(f.get("size_mm"), list) for f in findings):
        values["structured_json"] = json.dumps(structured, indent=1, ensure_ascii=False)
        return values
    for f in findings:
        prefix = prefix_of[f["type"]]
        values[f"{prefix}_present"] = "1"
        for key, value in f.items():
            if key in ("type", "associated", "elastography"):
                continue
            values[f"{prefix}_{key}"] = f"{value:g}" if isinstance(value, float) else value
        if f.get("associated"):
            values["_assoc"] = list(f["associated"])
        if f.get("elastography"):
            e = f["elastography"]
            values.update(swe_unit=e["unit"],
                          swe_lesion=", ".join(f"{v:g}" for v in e["lesion"]),
                          swe_fat=", ".join(f"{v:g}" for v in e["fat"]))
    return values


def _png_b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def register(app: FastAPI, ctx: WebContext) -> None:
    settings = ctx.settings
    viewer = require_roles(*VIEWERS)
    audit_viewer = require_roles(*AUDIT_VIEWERS)
    ctx.add_nav("Breast", "/breast", *VIEWERS)
    ctx.add_nav("Breast audit", "/breast/audit", Role.RESEARCHER)
    ctx.add_patient_action("Breast report (BI-RADS)", "/breast/new?patient={pk}",
                           Role.PHYSICIAN, Role.ADMIN, Role.MENTOR)
    ctx.add_patient_action("Breast reports", "/breast?patient={pk}", *VIEWERS)

    def _patient(pk: int) -> dict[str, Any]:
        return worklist.patient_summary(pk, settings, identified=True)

    @app.get("/breast", response_class=HTMLResponse)
    def breast_home(request: Request,
                    patient: Annotated[int | None, Query(ge=1, le=MAX_PK)] = None,
                    sess: SessionInfo = Depends(viewer)) -> Response:
        head = _patient(patient) if patient else None
        reports = svc.list_reports(settings, patient_pk=patient)
        return ctx.page(request, "breast/home.html", sess, reports=reports, patient=head,
                        can_edit=sess.user.role.can_edit)

    @app.get("/breast/new", response_class=HTMLResponse)
    def new_report(request: Request, patient: Annotated[int, Query(ge=1, le=MAX_PK)],
                   sess: SessionInfo = Depends(viewer)) -> Response:
        if not sess.user.role.can_edit:
            raise HTTPException(status_code=403, detail="your role does not write reports")
        return ctx.page(request, "breast/form.html", sess, patient=_patient(patient),
                        lex=_lexicon_choices(), values={}, error=None, report_pk=None)

    @app.get("/breast/reports/{pk}/edit", response_class=HTMLResponse)
    def edit_report(request: Request, pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                    sess: SessionInfo = Depends(viewer)) -> Response:
        if not sess.user.role.can_edit:
            raise HTTPException(status_code=403, detail="your role does not write reports")
        rep = _report(pk)
        if rep["status"] != "draft":
            raise InputError(f"breast report #{pk} is signed and cannot change")
        return ctx.page(request, "breast/form.html", sess, patient=_patient(rep["patient_pk"]),
                        lex=_lexicon_choices(), values=_report_to_form(rep["structured"]),
                        error=None, report_pk=pk)

    @app.post("/breast/reports")
    async def create_report(request: Request,
                            sess: SessionInfo = Depends(require_edit)) -> Response:
        form = await request.form()
        try:
            patient = int(str(form.get("patient") or "0"))
        except ValueError:
            patient = 0
        if not 1 <= patient <= MAX_PK:
            raise InputError("patient: missing or not a patient key")
        editing = str(form.get("report") or "")
        try:
            pk = svc.save_report(settings, patient, _form_to_report(form), sess.user.username,
                                 report_pk=int(editing) if editing.isdigit() else None,
                                 client=ctx.client(request))
        except InputError as exc:
            values = {k: form.get(k) for k in form}
            values["_assoc"] = form.getlist("mass_associated")
            return ctx.page(request, "breast/form.html", sess, status=400,
                            patient=_patient(patient), lex=_lexicon_choices(),
                            values=values, error=str(exc),
                            report_pk=int(editing) if editing.isdigit() else None)
        return RedirectResponse(f"/breast/reports/{pk}", status_code=303)

    @app.get("/breast/reports/{pk}", response_class=HTMLResponse)
    def report_page(request: Request, pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                    sess: SessionInfo = Depends(viewer)) -> Response:
        rep = _report(pk)
        return ctx.page(request, "breast/report.html", sess, rep=rep,
                        patient=_patient(rep["patient_pk"]),
                        can_edit=sess.user.role.can_edit)

    def _report(pk: int) -> dict[str, Any]:
        try:
            return svc.get_report(settings, pk)
        except InputError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @app.post("/breast/reports/{pk}/sign")
    def sign(request: Request, pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
             sess: SessionInfo = Depends(require_edit)) -> Response:
        _report(pk)
        svc.sign_report(settings, pk, sess.user.username, client=ctx.client(request))
        return RedirectResponse(f"/breast/reports/{pk}", status_code=303)

    @app.post("/breast/reports/{pk}/pathology")
    async def pathology(request: Request, pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                        sess: SessionInfo = Depends(require_edit)) -> Response:
        _report(pk)
        form = await request.form()

        def text(name: str) -> str:
            return str(form.get(name) or "").strip()

        finding = text("finding")
        size = text("size_mm")
        try:
            svc.add_pathology(
                settings, pk, sess.user.username,
                finding_index=int(finding) - 1 if finding else None,
                diagnosis_date=text("diagnosis_date"), result=text("result"),
                cancer_type=text("cancer_type") or None,
                size_mm=float(size) if size else None, nodes=text("nodes") or None,
                biopsy_performed=text("biopsy_performed") != "no",
                histology=text("histology"), concordance=text("concordance") or None,
                note=text("note"), client=ctx.client(request))
        except ValueError as exc:
            raise InputError(f"pathology: {exc}") from None
        return RedirectResponse(f"/breast/reports/{pk}#pathology", status_code=303)

    @app.get("/breast/reports/{pk}/sr.dcm")
    def sr_download(pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                    sess: SessionInfo = Depends(viewer)) -> Response:
        _report(pk)
        return FileResponse(svc.sr_path(settings, pk), media_type="application/dicom",
                            filename=f"breast-report-{pk}.dcm")

    @app.get("/breast/reports/{pk}/report.pdf")
    def pdf_download(pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                     lang: Annotated[str, Query(pattern="^(en|fr)$")] = "en",
                     sess: SessionInfo = Depends(viewer)) -> Response:
        rep = _report(pk)
        with tempfile.TemporaryDirectory() as tmp:
            out = svc.report_outputs(rep["structured"], lang=lang, pdf=Path(tmp) / "r.pdf",
                                     signed_by=rep["signed_by"])
            data = Path(out["pdf"]).read_bytes()
        return Response(data, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="breast-report-{pk}-{lang}.pdf"'})

    @app.get("/breast/audit", response_class=HTMLResponse)
    def audit_page(request: Request,
                   by: Annotated[str | None, Query(pattern="^(radiologist|modality)$")] = None,
                   sess: SessionInfo = Depends(audit_viewer)) -> Response:
        out = svc.platform_audit(settings, by=by)
        reports = {str(r["pk"]): r for r in svc.list_reports(settings, status="signed",
                                                             limit=10_000)}
        rows = [dict(reports[k], verdict=v) for k, v in out["verdicts"].items()
                if k in reports]
        researcher = not sess.user.role.sees_identity
        if researcher:  # aggregate numbers only: no report links, no reader names
            rows = []
            if by == "radiologist":
                out["groups"] = {f"reader {i}": g
                                 for i, g in enumerate(out["groups"].values(), start=1)}
        return ctx.page(request, "breast/audit.html", sess, audit=out, rows=rows, by=by,
                        source="signed reports", plots=[], researcher=researcher)

    @app.post("/breast/audit/csv", response_class=HTMLResponse)
    async def audit_csv(request: Request,
                        sess: SessionInfo = Depends(csrf_session)) -> Response:
        if sess.user.role not in AUDIT_VIEWERS:
            raise HTTPException(status_code=403, detail="your role does not see the audit")
        form = await request.form()
        by = str(form.get("by") or "") or None
        exams, outcomes = form.get("exams"), form.get("outcomes")
        if not hasattr(exams, "read") or not hasattr(outcomes, "read"):
            raise InputError("upload EXAMS.csv and OUTCOMES.csv")
        with tempfile.TemporaryDirectory() as tmp:
            e, o = Path(tmp) / "EXAMS.csv", Path(tmp) / "OUTCOMES.csv"
            e.write_bytes(await exams.read())  # type: ignore[union-attr]
            o.write_bytes(await outcomes.read())  # type: ignore[union-attr]
            out = svc.audit_files(e, o, by=by if by in ("radiologist", "modality") else None,
                                  plots=Path(tmp) / "plots")
            plots = [(Path(p).stem.replace("_", " "), _png_b64(p)) for p in out["plots"]]
        return ctx.page(request, "breast/audit.html", sess, audit=out, rows=[], by=by,
                        source="uploaded CSV files", plots=plots, researcher=False)

    @app.get("/breast/cem", response_class=HTMLResponse)
    def cem_page(request: Request, patient: Annotated[int, Query(ge=1, le=MAX_PK)],
                 sess: SessionInfo = Depends(viewer)) -> Response:
        head = _patient(patient)
        pairs = svc.cem_pairs(settings, patient)
        return ctx.page(request, "breast/cem.html", sess, patient=head, pairs=pairs)

    @app.get("/breast/cem/image/{instance_pk}.png")
    def cem_image(instance_pk: Annotated[int, PathParam(ge=1, le=MAX_PK)],
                  sess: SessionInfo = Depends(viewer)) -> Response:
        return Response(svc.cem_png(settings, instance_pk), media_type="image/png")

    ctx.add_patient_action("CEM pairs", "/breast/cem?patient={pk}", *VIEWERS)
    ctx.patient_notes.append(svc.patient_notes)
