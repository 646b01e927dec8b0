"""``oncohybrid report``: tumour-board PDF of one patient (+ DICOM SR/SEG), or a meeting pack."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@contextmanager
def _progress(enabled: bool):  # noqa: ANN202
    """A transient rich spinner on stderr whose text follows the service's steps."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from oncohybrid.cli.main import err_console

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("report", total=None)
        yield lambda message: bar.update(task, description=f"report: {message}")


def report(
    patient: str | None = typer.Argument(
        None, help="Patient ID (0010,0020) as stored in the database."),
    out: Path = typer.Option(..., "--out", "-o", help="PDF file to write."),
    meeting: str | None = typer.Option(
        None, "--meeting",
        help="Comma-separated patient IDs: one meeting-pack PDF with a cover agenda."),
    sr: Path | None = typer.Option(
        None, "--sr", help="Also write a TID 1500 Comprehensive 3D SR of the timepoint."),
    seg: Path | None = typer.Option(
        None, "--seg", help="Also write a DICOM SEG of the lesions of the timepoint."),
    encapsulated: Path | None = typer.Option(
        None, "--encapsulated", help="Also write the PDF as DICOM Encapsulated PDF."),
    timepoint: str | None = typer.Option(
        None, "--timepoint", help="Timepoint of the DICOM outputs (TP0, TP1…; default: last)."),
    pseudonymise: bool = typer.Option(
        False, "--pseudonymise",
        help="PDF without name, ID, birth date, accession numbers or calendar dates."),
    reader: str | None = typer.Option(None, "--reader", help="Reader shown on the report."),
    title: str = typer.Option("Tumour board", "--title", help="Meeting-pack title."),
    meeting_date: str | None = typer.Option(
        None, "--date", help="Meeting date YYYY-MM-DD (default: today)."),
    dpi: int = typer.Option(110, "--dpi", min=50, max=300, help="Figure resolution."),
    as_json: bool = typer.Option(False, "--json", help="Print the written paths as JSON only."),
) -> None:
    """Tumour-board report: PDF (MIPs, key slices, lesion table, plots, rule traces)."""
    from oncohybrid.errors import InputError, OncohybridError
    from oncohybrid.services import report as service

    try:
        with _progress(not as_json) as step:
            written = _run(service, patient, out, meeting, sr, seg, encapsulated, timepoint,
                           pseudonymise, reader, title, meeting_date, dpi, step, InputError)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    doc = {k: str(v) for k, v in written.items()}
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    for kind, path in doc.items():
        typer.echo(f"{kind}: {path}")


def _run(service: Any, patient: str | None, out: Path, meeting: str | None, sr: Path | None,
         seg: Path | None, encapsulated: Path | None, timepoint: str | None,
         pseudonymise: bool, reader: str | None, title: str, meeting_date: str | None,
         dpi: int, step: Callable[[str], None] | None, input_error: type) -> dict[str, Path]:
    if meeting is not None:
        if patient is not None:
            raise input_error("give either PATIENT or --meeting, not both")
        if any(x is not None for x in (sr, seg, encapsulated, timepoint)):
            raise input_error("--sr/--seg/--encapsulated/--timepoint apply to one patient, "
                              "not to --meeting")
        ids = [p.strip() for p in meeting.split(",") if p.strip()]
        if not ids:
            raise input_error("--meeting: no patient ID given")
        date = None
        if meeting_date is not None:
            try:
                date = dt.date.fromisoformat(meeting_date)
            except ValueError:
                raise input_error(f"--date {meeting_date!r}: expected YYYY-MM-DD") from None
        path = service.build_meeting_pack(ids, out=out, title=title, meeting_date=date,
                                          pseudonymise=pseudonymise, reader=reader, dpi=dpi,
                                          progress=step)
        return {"pdf": path}
    if patient is None:
        raise input_error("give a PATIENT ID or --meeting ID1,ID2,…")
    return service.write_patient_outputs(
        patient, out=out, sr=sr, seg=seg, encapsulated=encapsulated, timepoint=timepoint,
        pseudonymise=pseudonymise, reader=reader, dpi=dpi, progress=step)
