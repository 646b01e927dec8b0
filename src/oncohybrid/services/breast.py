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
    """The text of a CSV file (UTF-8, a BOM allowed); InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path}: not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from None


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
