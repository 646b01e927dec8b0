"""Breast imaging use-cases (issue #21): the BI-RADS outcome audit from CSV files or from
the platform's signed reports, structured reports (text, PDF, DICOM SR) and their storage,
radiology-pathology correlation.

The computation lives in :mod:`oncohybrid.breast`; this module reads and writes files and
the database and adds the Wilson score intervals of :mod:`oncohybrid.stats`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oncohybrid.breast import audit as ba
from oncohybrid.breast.benchmarks import BENCHMARKS
from oncohybrid.errors import InputError
from oncohybrid.stats.diagnostic import wilson_ci

__all__ = ["audit_files", "audit_json", "read_text"]

#: The audit keys of the command-line contract, per purpose, and the rate each reads.
_SCREENING_KEYS = ("recall_rate", "cdr_per_1000", "ppv1", "sensitivity", "specificity",
                   "minimal_cancer_fraction", "node_negative_invasive_fraction")
_DIAGNOSTIC_KEYS = ("ppv2", "ppv3", "sensitivity", "specificity",
                    "abnormal_interpretation_rate", "cdr_per_1000",
                    "minimal_cancer_fraction", "node_negative_invasive_fraction")
SCREENING_MODALITIES = ("MG", "DBT", "CEM")


def read_text(path: Path, what: str) -> str:
    """The text of a CSV file (UTF-8 with or without a BOM, else Windows-1252); InputError
    naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise InputError(f"{what} {path}: not a text (CSV) file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # spreadsheet exports on Windows are Windows-1252 (accented reader names)
        return data.decode("cp1252", errors="replace")


def _purpose_json(p: ba.PurposeAudit) -> dict[str, Any]:
    rates = p.rates()
    keys = _SCREENING_KEYS if p.purpose == "screening" else _DIAGNOSTIC_KEYS
    out: dict[str, Any] = {"exams": p.exams}
    ci: dict[str, list[float] | None] = {}
    bench: dict[str, Any] = {}
    for key in keys:
        rate = rates["cdr" if key == "cdr_per_1000" else key]
        scale = 1000.0 if key == "cdr_per_1000" else 1.0
        value = None if rate.value is None else rate.value * scale
        out[key] = value
        if rate.n:
            lo, hi = wilson_ci(rate.k, rate.n)
            ci[key] = [lo * scale, hi * scale]
        else:
            ci[key] = None
        b = BENCHMARKS[p.purpose].get(key)
        if b is not None:
            bench[key] = b.as_dict(value)
    minimal = [c.minimal for c in p.cancers]
    invasive_known = [c for c in p.cancers if c.cancer_type == "invasive"
                      and c.nodes in ("positive", "negative")]
    out["counts"] = {"positive": p.positive, "tp": p.tp, "fp": p.fp, "fn": p.fn,
                     "tn": p.tn, "cancers": len(p.cancers),
                     "minimal_cancers": sum(1 for m in minimal if m),
                     "node_negative_invasive": sum(1 for c in invasive_known
                                                   if c.nodes == "negative"),
                     "invasive_nodes_known": len(invasive_known)}
    if p.purpose == "diagnostic":
        out["counts"].update({"biopsy_recommended": p.biopsy_recommended,
                              "biopsy_recommended_cancer": p.biopsy_recommended_cancer,
                              "biopsies": p.biopsies,
                              "biopsies_malignant": p.biopsies_malignant})
    out["ci95"] = ci
    out["benchmarks"] = bench
    return out


def _group_json(g: ba.GroupAudit) -> dict[str, Any]:
    return {"screening": _purpose_json(g.screening), "diagnostic": _purpose_json(g.diagnostic)}


def _modality_comparison(result: ba.AuditResult) -> dict[str, Any]:
    """Screening DM vs DBT vs CEM: per modality recall rate, CDR and PPV1 with Wilson CIs,
    and Pearson's chi-squared test of equal recall rates (and of equal CDRs) across the
    modalities with screens."""
    from scipy.stats import chi2_contingency

    rows = []
    tables: dict[str, list[list[int]]] = {"recall_rate": [], "cdr": []}
    for mod in SCREENING_MODALITIES:
        s = [(e, v) for e, v in result.judged if e.modality == mod and e.purpose == "screening"]
        n = len(s)
        if not n:
            continue
        pos = sum(1 for _, v in s if v in ("TP", "FP"))
        tp = sum(1 for _, v in s if v == "TP")
        row: dict[str, Any] = {"modality": mod, "exams": n}
        for key, k, d, scale in (("recall_rate", pos, n, 1.0), ("cdr_per_1000", tp, n, 1000.0),
                                 ("ppv1", tp, pos, 1.0)):
            row[key] = k / d * scale if d else None
            row[f"{key}_ci95"] = ([c * scale for c in wilson_ci(k, d)] if d else None)
        rows.append(row)
        tables["recall_rate"].append([pos, n - pos])
        tables["cdr"].append([tp, n - tp])
    tests: dict[str, Any] = {}
    for key, table in tables.items():
        usable = len(table) >= 2 and all(sum(col) > 0 for col in zip(*table, strict=True))
        if usable:
            chi2, pval, dof, _ = chi2_contingency(table, correction=False)
            tests[key] = {"chi2": float(chi2), "df": int(dof), "p": float(pval),
                          "method": "Pearson chi-squared test of homogeneity"}
        else:
            tests[key] = None
    return {"screening": {"modalities": rows, "tests": tests}}


def audit_json(result: ba.AuditResult) -> dict[str, Any]:
    """The audit as the command prints it (docs/breast.md, "CLI contract")."""
    out: dict[str, Any] = _group_json(result.overall)
    out["bad_rows"] = [b.row for b in result.bad_rows if b.file == "exams"]
    out["bad_outcome_rows"] = [b.row for b in result.bad_rows if b.file == "outcomes"]
    out["bad_row_reasons"] = [{"file": b.file, "row": b.row, "reason": b.reason}
                              for b in result.bad_rows]
    out["left_out"] = dict(result.left_out)
    out["by"] = result.by
    out["groups"] = {k: _group_json(g) for k, g in result.groups.items()}
    out["modality_comparison"] = _modality_comparison(result)
    out["follow_up_days"] = ba.FOLLOW_UP_DAYS
    out["exams_read"] = result.exams_read
    out["outcomes_read"] = result.outcomes_read
    return out


def write_funnel_plots(result: ba.AuditResult, directory: Path) -> list[str]:
    """Funnel plots per radiologist of the screening recall rate, CDR and PPV1."""
    from oncohybrid.breast.plots import funnel_plot, save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    per: dict[str, dict[str, list[int]]] = {}
    for e, v in result.judged:
        if e.purpose != "screening":
            continue
        c = per.setdefault(e.radiologist, {"n": [0], "pos": [0], "tp": [0]})
        c["n"][0] += 1
        c["pos"][0] += v in ("TP", "FP")
        c["tp"][0] += v == "TP"
    specs = [("funnel_recall_rate.png", "Screening recall rate by radiologist",
              "recall rate", {r: (c["pos"][0], c["n"][0]) for r, c in per.items()}, 1.0),
             ("funnel_cdr.png", "Cancer detection rate by radiologist", "CDR per 1,000",
              {r: (c["tp"][0], c["n"][0]) for r, c in per.items()}, 1000.0),
             ("funnel_ppv1.png", "PPV1 by radiologist", "PPV1",
              {r: (c["tp"][0], c["pos"][0]) for r, c in per.items()}, 1.0)]
    written = []
    for name, title, ylabel, points, scale in specs:
        path = directory / name
        save(funnel_plot(points, title, ylabel, scale), path)
        written.append(str(path))
    return written


def audit_files(exams_csv: Path, outcomes_csv: Path, by: str | None = None,
                plots: Path | None = None) -> dict[str, Any]:
    """The audit of EXAMS.csv against OUTCOMES.csv as a JSON-ready dict."""
    if by not in (None, "radiologist", "modality"):
        raise InputError(f"--by: {by!r} is not one of radiologist, modality")
    exams, bad_e = ba.read_exams(read_text(exams_csv, "EXAMS.csv"), str(exams_csv))
    outcomes, bad_o = ba.read_outcomes(read_text(outcomes_csv, "OUTCOMES.csv"),
                                       str(outcomes_csv))
    result = ba.audit(exams, outcomes, bad_e + bad_o, by=by)
    out = audit_json(result)
    out["plots"] = write_funnel_plots(result, plots) if plots is not None else []
    return out


# --------------------------------------------------------------------------- reports


def read_report_json(path: Path) -> dict[str, Any]:
    """The structured-findings JSON file as a mapping; InputError naming the file."""
    import json

    text = read_text(path, "findings JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with modality and findings")
    return data


def report_outputs(data: dict[str, Any], *, lang: str = "en", pdf: Path | None = None,
                   sr: Path | None = None, signed_by: str | None = None) -> dict[str, Any]:
    """Validate a structured report and produce its text (EN and FR), category, and on
    request its PDF and DICOM SR (TID 4200) files."""
    from oncohybrid.breast.categories import CATEGORY_INFO
    from oncohybrid.breast.report import parse_report, report_text

    if lang not in ("en", "fr"):
        raise InputError(f"--lang: {lang!r} is not en or fr")
    report = parse_report(data)
    info = CATEGORY_INFO[report.overall]
    out: dict[str, Any] = {
        "overall_category": report.overall.value,
        "category_name": info.name_fr if lang == "fr" else info.name_en,
        "management": info.management_fr if lang == "fr" else info.management_en,
        "likelihood_of_malignancy": info.likelihood_fr if lang == "fr" else info.likelihood,
        "language": lang,
        "text": report_text(report, lang),
        "findings": [{"index": f.index, "type": f.type, "laterality": f.laterality,
                      "category": f.category.value,
                      **({"elastography": f.elastography.as_dict()} if f.elastography
                         else {})}
                     for f in report.findings],
        "report": report.as_dict(),
        "pdf": None, "sr": None,
    }
    if pdf is not None:
        from oncohybrid.breast.pdf import render_breast_pdf

        pdf = Path(pdf)
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(render_breast_pdf(report, lang, patient=str(data.get(
            "patient_name") or data.get("patient_id") or ""), signed_by=signed_by))
        out["pdf"] = str(pdf)
    if sr is not None:
        from oncohybrid.breast.sr import build_breast_sr

        sr = Path(sr)
        sr.parent.mkdir(parents=True, exist_ok=True)
        ds = build_breast_sr(report, lang=lang, patient_id=str(data.get("patient_id") or ""),
                             patient_name=str(data.get("patient_name") or ""),
                             study_instance_uid=data.get("study_instance_uid") or None,
                             accession_number=str(data.get("accession_number") or ""),
                             reader=str(data.get("reader") or ""), signed_by=signed_by)
        ds.save_as(sr, enforce_file_format=True)
        out["sr"] = str(sr)
    return out


def read_sr_file(path: Path) -> dict[str, Any]:
    """A Breast Imaging Report SR file read back into its structured report."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from oncohybrid.breast.sr import read_breast_sr

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError) as exc:
        raise InputError(f"{path}: not a DICOM file ({exc})") from None
    return read_breast_sr(ds)


def swe(lesion: list[float], fat: list[float], unit: str) -> dict[str, Any]:
    """Shear-wave elastography summary (Emax, Emean, lesion-to-fat ratio)."""
    from oncohybrid.breast.elastography import swe_summary

    return swe_summary(lesion, fat, unit, where="swe").as_dict()


# --------------------------------------------------------------------------- the record
# Structured reports of the platform's patients, their signing, the pathology results
# linked to their findings, and the outcome audit of the signed reports.


def _settings(settings: Any) -> Any:
    from oncohybrid.config import get_settings

    return settings or get_settings()


def _report_dict(r: Any, identified: bool = True) -> dict[str, Any]:
    return {"pk": r.id, "patient_pk": r.patient_pk, "exam_date": r.exam_date.isoformat(),
            "modality": r.modality, "purpose": r.purpose,
            "overall_category": r.overall_category,
            "biopsy_recommended": r.biopsy_recommended, "structured": r.structured,
            "text_en": r.text_en, "text_fr": r.text_fr, "status": r.status,
            "created_by": r.created_by if identified else None,
            "signed_by": r.signed_by if identified else None,
            "signed_at": r.signed_at.isoformat(timespec="seconds") if r.signed_at else None,
            "has_sr": bool(r.sr_path)}


def _validated(data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    import datetime as dt

    from oncohybrid.breast.report import parse_report

    data = dict(data)
    data.setdefault("exam_date", dt.date.today().isoformat())
    report = parse_report(data)
    return report, report.as_dict()


def save_report(settings: Any, patient_pk: int, data: dict[str, Any], username: str,
                report_pk: int | None = None, client: str | None = None) -> int:
    """Create (or, for a draft, replace) the structured report of an examination of a
    patient; the text (EN and FR) and the category are generated from the findings."""
    import datetime as dt

    from oncohybrid.breast.categories import CATEGORY_INFO
    from oncohybrid.breast.report import report_text
    from oncohybrid.errors import StoreError
    from oncohybrid.services import audit
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient
    from oncohybrid.store.models_breast import BreastReport

    settings = _settings(settings)
    report, structured = _validated(data)
    with session_scope(settings) as s:
        if s.get(Patient, patient_pk) is None:
            raise StoreError(f"patient #{patient_pk}: not in the study database")
        if report_pk is None:
            row = BreastReport(patient_pk=patient_pk, created_by=username)
            s.add(row)
        else:
            row = s.get(BreastReport, report_pk)
            if row is None or row.patient_pk != patient_pk:
                raise InputError(f"breast report #{report_pk}: not a report of patient "
                                 f"#{patient_pk}")
            if row.status == "signed":
                raise InputError(f"breast report #{report_pk} is signed and cannot change")
        assert report.exam_date is not None
        row.exam_date = report.exam_date
        row.modality = report.modality
        row.purpose = report.purpose
        row.overall_category = report.overall.value
        row.biopsy_recommended = CATEGORY_INFO[report.overall].tissue_diagnosis
        row.structured = structured
        row.text_en = report_text(report, "en")
        row.text_fr = report_text(report, "fr")
        row.updated_at = dt.datetime.now(dt.UTC)
        s.flush()
        pk = row.id
    audit.record(settings, username, "breast.report.save" if report_pk is None
                 else "breast.report.update", f"breast_report:{pk}",
                 {"patient": patient_pk, "modality": report.modality,
                  "category": report.overall.value}, client=client)
    return pk


def get_report(settings: Any, report_pk: int, identified: bool = True) -> dict[str, Any]:
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_breast import BreastReport

    with session_scope(_settings(settings)) as s:
        row = s.get(BreastReport, report_pk)
        if row is None:
            raise InputError(f"breast report #{report_pk}: no such report")
        out = _report_dict(row, identified)
        out["pathology"] = _pathology_rows(s, report_pk=report_pk)
        return out


def list_reports(settings: Any, patient_pk: int | None = None, status: str | None = None,
                 identified: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_breast import BreastReport

    stmt = sa.select(BreastReport).order_by(BreastReport.exam_date.desc(),
                                            BreastReport.id.desc())
    if patient_pk is not None:
        stmt = stmt.where(BreastReport.patient_pk == patient_pk)
    if status:
        stmt = stmt.where(BreastReport.status == status)
    with session_scope(_settings(settings)) as s:
        return [_report_dict(r, identified) for r in s.scalars(stmt.limit(limit))]


def sign_report(settings: Any, report_pk: int, username: str,
                client: str | None = None) -> dict[str, Any]:
    """Sign a draft: frozen from now on, its DICOM SR (TID 4200, VERIFIED) written to the
    workspace, and counted in the outcome audit."""
    import datetime as dt

    from oncohybrid.breast.report import parse_report
    from oncohybrid.breast.sr import build_breast_sr
    from oncohybrid.services import audit
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient
    from oncohybrid.store.models_breast import BreastReport

    settings = _settings(settings)
    with session_scope(settings) as s:
        row = s.get(BreastReport, report_pk)
        if row is None:
            raise InputError(f"breast report #{report_pk}: no such report")
        if row.status == "signed":
            raise InputError(f"breast report #{report_pk} is already signed "
                             f"by {row.signed_by}")
        patient = s.get(Patient, row.patient_pk)
        now = dt.datetime.now(dt.UTC)
        ds = build_breast_sr(parse_report(row.structured), lang="en",
                             patient_id=patient.patient_id if patient else "",
                             patient_name=(patient.patient_name or "") if patient else "",
                             reader=row.created_by, signed_by=username, signed_at=now)
        rel = Path("breast") / f"report-{row.id}.dcm"
        dest = settings.derived_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dest, enforce_file_format=True)
        row.status = "signed"
        row.signed_by = username
        row.signed_at = now
        row.sr_path = str(rel)
        out = _report_dict(row)
    audit.record(settings, username, "breast.report.sign", f"breast_report:{report_pk}",
                 {"category": out["overall_category"]}, client=client)
    return out


def sr_path(settings: Any, report_pk: int) -> Path:
    """Where the signed report's SR lies."""
    rep = get_report(settings, report_pk)
    if not rep["has_sr"]:
        raise InputError(f"breast report #{report_pk} is not signed: no SR yet")
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_breast import BreastReport

    settings = _settings(settings)
    with session_scope(settings) as s:
        row = s.get(BreastReport, report_pk)
        return settings.derived_dir / str(row.sr_path)


def _pathology_rows(s: Any, report_pk: int | None = None,
                    patient_pk: int | None = None) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from oncohybrid.store.models_breast import BreastPathology

    stmt = sa.select(BreastPathology).order_by(BreastPathology.diagnosis_date,
                                               BreastPathology.id)
    if report_pk is not None:
        stmt = stmt.where(BreastPathology.report_pk == report_pk)
    if patient_pk is not None:
        stmt = stmt.where(BreastPathology.patient_pk == patient_pk)
    return [{"pk": p.id, "report_pk": p.report_pk, "finding_index": p.finding_index,
             "diagnosis_date": p.diagnosis_date.isoformat(), "result": p.result,
             "cancer_type": p.cancer_type, "size_mm": p.size_mm, "nodes": p.nodes,
             "biopsy_performed": p.biopsy_performed, "histology": p.histology,
             "concordance": p.concordance, "concordance_note": p.concordance_note}
            for p in s.scalars(stmt)]


def add_pathology(settings: Any, report_pk: int, username: str, *, finding_index: int | None,
                  diagnosis_date: str, result: str, cancer_type: str | None = None,
                  size_mm: float | None = None, nodes: str | None = None,
                  biopsy_performed: bool = True, histology: str = "",
                  concordance: str | None = None, note: str = "",
                  client: str | None = None) -> dict[str, Any]:
    """Link a tissue diagnosis to a finding of a report and record the radiology-pathology
    concordance (the suggestion of :mod:`oncohybrid.breast.correlation` when the physician
    gives none)."""
    import datetime as dt

    from oncohybrid.breast.categories import Category
    from oncohybrid.breast.correlation import RESULTS, suggest_concordance
    from oncohybrid.services import audit
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_breast import BreastPathology, BreastReport

    settings = _settings(settings)
    if result not in RESULTS:
        raise InputError(f"result: {result!r} is not one of {', '.join(RESULTS)}")
    if cancer_type not in (None, "", "invasive", "dcis"):
        raise InputError(f"cancer_type: {cancer_type!r} is not invasive or dcis")
    if cancer_type and result != "malignant":
        raise InputError("cancer_type: only a malignant result has a cancer type")
    if nodes not in (None, "", "positive", "negative"):
        raise InputError(f"nodes: {nodes!r} is not positive or negative")
    if concordance not in (None, "", "concordant", "discordant"):
        raise InputError(f"concordance: {concordance!r} is not concordant or discordant")
    if size_mm is not None and not 0 < size_mm <= 300:
        raise InputError(f"size_mm: {size_mm} is not a tumour size in mm")
    try:
        day = dt.date.fromisoformat(diagnosis_date)
    except ValueError:
        raise InputError(f"diagnosis_date: {diagnosis_date!r} is not a date "
                         "(YYYY-MM-DD)") from None
    with session_scope(settings) as s:
        rep = s.get(BreastReport, report_pk)
        if rep is None:
            raise InputError(f"breast report #{report_pk}: no such report")
        findings = rep.structured.get("findings", [])
        suggestion = None
        if finding_index is not None:
            if not 0 <= finding_index < len(findings):
                raise InputError(f"finding: report #{report_pk} has no finding "
                                 f"{finding_index + 1}")
            suggestion = suggest_concordance(Category(findings[finding_index]["category"]),
                                             result)
        verdict = concordance or (suggestion.verdict if suggestion and
                                  suggestion.verdict != "review" else None)
        row = BreastPathology(patient_pk=rep.patient_pk, report_pk=report_pk,
                              finding_index=finding_index, diagnosis_date=day, result=result,
                              cancer_type=cancer_type or None, size_mm=size_mm,
                              nodes=nodes or None, biopsy_performed=biopsy_performed,
                              histology=histology[:255], concordance=verdict,
                              concordance_note=note or (suggestion.reason if suggestion
                                                        else ""),
                              recorded_by=username)
        s.add(row)
        s.flush()
        out = {"pk": row.id, "concordance": verdict,
               "suggestion": suggestion.verdict if suggestion else None,
               "reason": suggestion.reason if suggestion else None}
    audit.record(settings, username, "breast.pathology.add", f"breast_report:{report_pk}",
                 {"finding": finding_index, "result": result, "concordance": verdict},
                 client=client)
    return out


def platform_audit(settings: Any, by: str | None = None) -> dict[str, Any]:
    """The outcome audit of the platform's signed reports against the recorded pathology
    results (same definitions as :func:`audit_files`)."""
    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_breast import BreastPathology, BreastReport

    exams: list[ba.Exam] = []
    outcomes: list[ba.Outcome] = []
    with session_scope(_settings(settings)) as s:
        for r in s.scalars(sa.select(BreastReport).where(BreastReport.status == "signed")
                           .order_by(BreastReport.id)):
            exams.append(ba.Exam(row=r.id, exam_id=str(r.id), patient_id=str(r.patient_pk),
                                 date=r.exam_date, radiologist=r.signed_by or "",
                                 modality=r.modality, purpose=r.purpose,
                                 assessment=r.overall_category,
                                 biopsy_recommended=r.biopsy_recommended))
        for p in s.scalars(sa.select(BreastPathology).order_by(BreastPathology.id)):
            outcomes.append(ba.Outcome(row=p.id, patient_id=str(p.patient_pk),
                                       date=p.diagnosis_date, result=p.result,
                                       cancer_type=p.cancer_type or "", size_mm=p.size_mm,
                                       nodes=p.nodes or "",
                                       biopsy_performed=p.biopsy_performed))
    result = ba.audit(exams, outcomes, [], by=by)
    out = audit_json(result)
    out["verdicts"] = {e.exam_id: v for e, v in result.judged}
    return out


# --------------------------------------------------------------------------- CEM


def cem_pairs(settings: Any, patient_pk: int) -> dict[str, Any]:
    """The patient's CEM low-energy and recombined images (mammography series), paired
    per study, breast and view (:mod:`oncohybrid.breast.cem`)."""
    import pydicom
    import sqlalchemy as sa

    from oncohybrid.breast.cem import CEMImage, classify, pair_images
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance, Series, Study

    with session_scope(_settings(settings)) as s:
        rows = s.execute(
            sa.select(Instance.id, Instance.file_path, Study.study_instance_uid,
                      Study.study_date)
            .join(Series, Instance.series_pk == Series.id)
            .join(Study, Series.study_pk == Study.id)
            .where(Study.patient_pk == patient_pk, Series.modality == "MG")
            .order_by(Study.study_date, Instance.id)).all()
    images, dates = [], {}
    for pk, path, study_uid, study_date in rows:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - an unreadable file is listed as unpaired
            continue
        header = {k: ds.get(k) for k in ("ImageType", "SeriesDescription", "KVP")}
        lat = str(ds.get("ImageLaterality") or ds.get("Laterality") or "?")
        images.append(CEMImage(key=pk, study=study_uid, laterality=lat,
                               view=str(ds.get("ViewPosition") or "?"),
                               kind=classify(header), time=str(ds.get("AcquisitionTime") or ""),
                               number=int(ds.get("InstanceNumber") or 0)))
        dates[study_uid] = study_date.isoformat() if study_date else None
    out = pair_images(images)
    for p in out["pairs"]:
        p["study_date"] = dates.get(p["study"])
    out["images"] = len(images)
    return out


def cem_png(settings: Any, instance_pk: int, max_px: int = 512) -> bytes:
    """A mammography image as an 8-bit PNG (VOI LUT or window of the header, else the 0.5-
    99.5 percentiles; MONOCHROME1 inverted), at most ``max_px`` high."""
    import io

    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_voi_lut

    from oncohybrid.errors import StoreError
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance, Series

    with session_scope(_settings(settings)) as s:
        inst = s.get(Instance, instance_pk)
        series = s.get(Series, inst.series_pk) if inst else None
        if inst is None or series is None or series.modality != "MG":
            raise StoreError(f"instance #{instance_pk}: no mammography image")
        path = inst.file_path
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.astype(np.float64)
    if arr.ndim == 3:
        arr = arr[0]
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        arr = apply_voi_lut(arr, ds).astype(np.float64)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    img = np.clip((arr - lo) / max(hi - lo, 1e-9), 0, 1)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        img = 1.0 - img
    pil = Image.fromarray((img * 255).astype(np.uint8))
    if pil.height > max_px:
        pil = pil.resize((max(1, round(pil.width * max_px / pil.height)), max_px))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def patient_notes(settings: Any, patient_pk: int) -> list[str]:
    """Sentences for the patient page: what the latest signed breast report still asks for
    (BI-RADS 3 follow-up date, BI-RADS 0 work-up, BI-RADS 4/5 without a pathology result)
    and discordant radiology-pathology results."""
    import datetime as dt

    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_breast import BreastPathology, BreastReport

    notes: list[str] = []
    with session_scope(_settings(settings)) as s:
        reports = s.scalars(sa.select(BreastReport).where(
            BreastReport.patient_pk == patient_pk, BreastReport.status == "signed")
            .order_by(BreastReport.exam_date.desc(), BreastReport.id.desc())).all()
        paths = s.scalars(sa.select(BreastPathology).where(
            BreastPathology.patient_pk == patient_pk)).all()
        if reports:
            last = reports[0]
            cat = last.overall_category
            what = f"BI-RADS {cat} ({last.modality} {last.exam_date.isoformat()})"
            if cat == "3":
                due = last.exam_date + dt.timedelta(days=182)
                notes.append(f"{what}: short-interval follow-up due {due.isoformat()}.")
            elif cat == "0":
                notes.append(f"{what}: additional imaging and/or comparison pending.")
            elif last.biopsy_recommended and not any(p.report_pk == last.id for p in paths):
                notes.append(f"{what}: tissue diagnosis recommended, no pathology result "
                             "recorded.")
        for p in paths:
            if p.concordance == "discordant":
                notes.append(f"Discordant radiology-pathology result of "
                             f"{p.diagnosis_date.isoformat()} (breast report #{p.report_pk}):"
                             " repeat biopsy or surgical excision to be decided.")
    return notes


def export_record_csv(settings: Any, folder: Path) -> dict[str, Any]:
    """The signed reports and pathology results of the record as EXAMS.csv and OUTCOMES.csv
    (the audit's input format), so that they can be audited together with historic data.
    Patients are written by their Patient ID, readers by the signer's user name."""
    import csv

    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient
    from oncohybrid.store.models_breast import BreastPathology, BreastReport

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    exams_path, outcomes_path = folder / "EXAMS.csv", folder / "OUTCOMES.csv"
    n_exams = n_outcomes = 0
    with session_scope(_settings(settings)) as s, \
            exams_path.open("w", newline="", encoding="utf-8") as fe, \
            outcomes_path.open("w", newline="", encoding="utf-8") as fo:
        ids = dict(s.execute(sa.select(Patient.id, Patient.patient_id)).all())
        we, wo = csv.writer(fe), csv.writer(fo)
        we.writerow(ba.EXAM_COLUMNS)
        wo.writerow(ba.OUTCOME_COLUMNS)
        for r in s.scalars(sa.select(BreastReport).where(BreastReport.status == "signed")
                           .order_by(BreastReport.exam_date, BreastReport.id)):
            we.writerow([f"breast-report-{r.id}", ids.get(r.patient_pk, r.patient_pk),
                         r.exam_date.isoformat(), r.signed_by or "", r.modality, r.purpose,
                         r.overall_category, "yes" if r.biopsy_recommended else "no"])
            n_exams += 1
        for p in s.scalars(sa.select(BreastPathology).order_by(BreastPathology.diagnosis_date,
                                                               BreastPathology.id)):
            wo.writerow([ids.get(p.patient_pk, p.patient_pk), p.diagnosis_date.isoformat(),
                         p.result, p.cancer_type or "",
                         "" if p.size_mm is None else f"{p.size_mm:g}", p.nodes or "",
                         "yes" if p.biopsy_performed else "no"])
            n_outcomes += 1
    return {"exams_csv": str(exams_path), "outcomes_csv": str(outcomes_path),
            "exams": n_exams, "outcomes": n_outcomes}
