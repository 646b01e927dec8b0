"""``oncohybrid teach …``: the teaching file (issue #14, docs/teaching.md).

``capture`` turns an assessed patient into a de-identified draft case, ``export`` writes
it as a zip, ``import`` reads another site's zip (idempotent), ``ls`` lists the cases.
Invalid input exits 2 with the reason on stderr and nothing on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

teach_app = typer.Typer(help="Teaching file: capture, export, import and list teaching "
                        "cases (de-identified, PET-safe).", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON only.")


def register(app: typer.Typer) -> None:
    app.add_typer(teach_app, name="teach")


def _run(compute: Callable[[], Any], as_json: bool, to_text: Callable[[Any], str]) -> None:
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError

    try:
        result = compute()
    except OncohybridError as exc:
        fail(exc)
        return
    typer.echo(json.dumps(result) if as_json else to_text(result))


@teach_app.command("capture")
def capture(patient_id: str = typer.Argument(..., help="Patient ID of an assessed patient."),
            title: str = typer.Option(..., "--title", help="Title of the case."),
            timepoints: str = typer.Option("", "--timepoints",
                                           help="Scan dates YYYY-MM-DD,… (default: all)."),
            author: str = typer.Option("cli", "--author", help="Author recorded on the case."),
            as_json: bool = JSON) -> None:
    """Capture a patient's timepoints (images, lesion masks, assessments) as a draft case."""
    from oncohybrid.services import teaching

    def go() -> dict[str, Any]:
        return teaching.capture_case(patient_id, title=title, author=author,
                                     timepoints=teaching.parse_dates(timepoints))

    _run(go, as_json, lambda r: f"captured {r['case_id']}: {r['timepoints']} timepoint(s), "
                                f"{r['files']} files, {r['lesions']} lesions, "
                                f"{r['questions']} questions")


@teach_app.command("export")
def export(case_id: str = typer.Argument(..., help="The case id (teach ls)."),
           out: Path = typer.Option(..., "--out", help="Zip file to write."),
           as_json: bool = JSON) -> None:
    """Write a case as a zip: de-identified DICOM and case.json (dates shifted)."""
    from oncohybrid.services import teaching

    _run(lambda: teaching.export_case(case_id, out), as_json,
         lambda r: f"wrote {r['out']}: {r['files']} files")


@teach_app.command("import")
def import_(zip_path: Path = typer.Argument(..., help="A case zip from teach export."),
            as_json: bool = JSON) -> None:
    """Import a case zip (idempotent: a case already present is left as it is)."""
    from oncohybrid.services import teaching

    _run(lambda: teaching.import_case(zip_path), as_json,
         lambda r: f"{r['case_id']}: {r['status']}")


@teach_app.command("ls")
def ls(q: str = typer.Option("", "--search", help="Words in the title or authoring text."),
       tag: list[str] = typer.Option([], "--tag", help="Only cases with this tag "
                                     "(repeatable), e.g. tracer:FDG."),
       status: str = typer.Option("", "--status", help="draft, in review or published."),
       as_json: bool = JSON) -> None:
    """List the teaching cases (newest first)."""
    from oncohybrid.errors import InputError
    from oncohybrid.services import teaching

    def go() -> dict[str, Any]:
        if status and status not in ("draft", "in review", "published"):
            raise InputError(f"--status: draft, in review or published, got {status!r}")
        return {"cases": teaching.list_cases(q=q, tags=tag,
                                             statuses=[status] if status else None)}

    def text(r: dict[str, Any]) -> str:
        if not r["cases"]:
            return "no teaching case"
        return "\n".join(f"{c['case_id']}  {c['status']:<10}  {c['title']}  "
                         f"[{', '.join(c['tags'])}]" for c in r["cases"])

    _run(go, as_json, text)
