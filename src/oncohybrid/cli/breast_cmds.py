"""``oncohybrid breast …``: the BI-RADS outcome audit and structured breast reports
(issue #21). Invalid input exits 2 with the reason on stderr and nothing on stdout."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

breast_app = typer.Typer(help="Breast imaging: BI-RADS outcome audit, structured reports "
                         "(text EN/FR, PDF, DICOM SR TID 4200), shear-wave elastography.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(breast_app, name="breast")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _fmt(v: float | None, pct: bool = True) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.1f} %" if pct else f"{v:.1f}"


def _audit_text(out: dict[str, Any]) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    buf = StringIO()
    con = Console(file=buf, width=120, highlight=False)
    for purpose in ("screening", "diagnostic"):
        p = out[purpose]
        t = Table(title=f"{purpose} ({p['exams']} examinations)")
        for col in ("metric", "value", "95 % CI", "benchmark", "BCSC", "within"):
            t.add_column(col)
        for key, bench in p["benchmarks"].items():
            pct = key != "cdr_per_1000"
            ci = p["ci95"].get(key)
            lo, hi = bench["range"]
            rng = f"{_fmt(lo, pct) if lo is not None else ''} - " \
                  f"{_fmt(hi, pct) if hi is not None else ''}"
            t.add_row(key, _fmt(p[key], pct),
                      "" if ci is None else f"{_fmt(ci[0], pct)} - {_fmt(ci[1], pct)}",
                      rng, _fmt(bench["bcsc"], pct) if bench["bcsc"] is not None else "",
                      {True: "yes", False: "NO", None: ""}[bench["within_range"]])
        con.print(t)
    left = out["left_out"]
    con.print(f"left out: {left['category 6']} category 6, {left['diagnostic category 0']} "
              f"diagnostic category 0, {left['bad exam rows']} bad exam rows "
              f"{out['bad_rows']}, {left['bad outcome rows']} bad outcome rows "
              f"{out['bad_outcome_rows']}")
    for b in out["bad_row_reasons"]:
        con.print(f"  {b['file']} row {b['row']}: {b['reason']}")
    for name, g in out["groups"].items():
        s, d = g["screening"], g["diagnostic"]
        con.print(f"{out['by']} {name or '(none)'}: screens {s['exams']} recall "
                  f"{_fmt(s['recall_rate'])} CDR {_fmt(s['cdr_per_1000'], False)}/1000 "
                  f"PPV1 {_fmt(s['ppv1'])}; diagnostic {d['exams']} PPV2 {_fmt(d['ppv2'])} "
                  f"PPV3 {_fmt(d['ppv3'])}")
    for path in out["plots"]:
        con.print(f"plot: {path}")
    return buf.getvalue().rstrip()


@breast_app.command("audit")
def audit(exams: Path = typer.Argument(..., help="EXAMS.csv: exam_id, patient_id, date, "
                                       "radiologist, modality, purpose, assessment, "
                                       "biopsy_recommended."),
          outcomes: Path = typer.Option(..., "--outcomes", help="OUTCOMES.csv: patient_id, "
                                        "date, result, cancer_type, size_mm, nodes, "
                                        "biopsy_performed."),
          by: str | None = typer.Option(None, "--by", help="radiologist or modality: one "
                                        "audit per value under \"groups\"."),
          plots: Path | None = typer.Option(None, "--plots", help="Write funnel plots per "
                                            "radiologist (PNG) into this folder."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """The ACR BI-RADS outcome audit (recall rate, CDR, PPV1-3, sensitivity, specificity)
    with Wilson 95 % CIs and benchmark ranges."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import breast as svc

    try:
        out = svc.audit_files(exams, outcomes, by=by, plots=plots)
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(_finite(out), allow_nan=False))
    else:
        typer.echo(_audit_text(out))


def _run(compute, as_json: bool, to_text) -> None:  # noqa: ANN001
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError

    try:
        out = compute()
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(_finite(out), allow_nan=False, ensure_ascii=False))
    else:
        typer.echo(to_text(out))


@breast_app.command("report")
def report(findings: Path = typer.Argument(..., help="Structured findings JSON (modality, "
                                           "purpose, composition, findings[] with BI-RADS "
                                           "descriptors and a category each)."),
           lang: str = typer.Option("en", "--lang", help="Report language: en or fr."),
           pdf: Path | None = typer.Option(None, "--pdf", help="Write the report PDF here."),
           sr: Path | None = typer.Option(None, "--sr", help="Write the DICOM SR (Breast "
                                          "Imaging Report, TID 4200) here."),
           signed_by: str | None = typer.Option(None, "--signed-by", help="Sign the report "
                                                "(SR VerificationFlag VERIFIED)."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Report text (English or French), per-finding and overall BI-RADS category with its
    management, PDF and DICOM SR from structured findings."""
    from oncohybrid.services import breast as svc

    def compute() -> dict[str, Any]:
        return svc.report_outputs(svc.read_report_json(findings), lang=lang, pdf=pdf, sr=sr,
                                  signed_by=signed_by)

    _run(compute, as_json, lambda o: o["text"] + "".join(
        f"\n{k}: {o[k]}" for k in ("pdf", "sr") if o[k]))


@breast_app.command("read-sr")
def read_sr(path: Path = typer.Argument(..., help="A Breast Imaging Report SR file."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Read a Breast Imaging Report SR (TID 4200) back into its structured findings."""
    from oncohybrid.services import breast as svc

    _run(lambda: svc.read_sr_file(path), as_json,
         lambda o: f"{o['text']}\nBI-RADS {o['overall_category']}"
                   f"{' (verified by ' + o['signed_by'] + ')' if o['verified'] else ''}")


@breast_app.command("swe")
def swe(lesion: list[float] = typer.Option(..., "--lesion", help="Lesion measurement "
                                           "(repeat for several ROIs)."),
        fat: list[float] = typer.Option([], "--fat", help="Fat reference measurement "
                                        "(repeat)."),
        unit: str = typer.Option("kPa", "--unit", help="kPa or m/s."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Shear-wave elastography: Emax, Emean (kPa and m/s; E = 3ρc², ρ = 1000 kg/m³) and the
    lesion-to-fat ratio."""
    from oncohybrid.services import breast as svc

    def text(o: dict[str, Any]) -> str:
        ratio = o["lesion_to_fat_ratio"]
        return (f"Emax {o['emax_kpa']:.1f} kPa ({o['emax_m_s']:.2f} m/s)  Emean "
                f"{o['emean_kpa']:.1f} kPa ({o['emean_m_s']:.2f} m/s)  lesion/fat "
                f"{'n/a' if ratio is None else f'{ratio:.2f}'}")

    _run(lambda: svc.swe(lesion, fat, unit), as_json, text)


@breast_app.command("audit-record")
def audit_record(by: str | None = typer.Option(None, "--by", help="radiologist or modality."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """The outcome audit of the workspace's signed breast reports against the recorded
    pathology results (same definitions and output as ``breast audit``)."""
    from oncohybrid.services import breast as svc

    def compute() -> dict[str, Any]:
        if by not in (None, "radiologist", "modality"):
            from oncohybrid.errors import InputError

            raise InputError(f"--by: {by!r} is not one of radiologist, modality")
        out = svc.platform_audit(None, by=by)
        out["plots"] = []
        return out

    _run(compute, as_json, _audit_text)


@breast_app.command("export-csv")
def export_csv(folder: Path = typer.Argument(..., help="Folder for EXAMS.csv and "
                                             "OUTCOMES.csv."),
               as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Write the workspace's signed breast reports and pathology results as EXAMS.csv and
    OUTCOMES.csv (the input of ``breast audit``)."""
    from oncohybrid.services import breast as svc

    _run(lambda: svc.export_record_csv(None, folder), as_json,
         lambda o: f"{o['exams']} exams -> {o['exams_csv']}\n"
                   f"{o['outcomes']} outcomes -> {o['outcomes_csv']}")
