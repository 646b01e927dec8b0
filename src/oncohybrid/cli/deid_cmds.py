"""``oncohybrid deid``: PET-safe de-identified copies of stored patients (PS3.15 Annex E)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("deid")(deid)


def deid(
    patient_ids: list[str] = typer.Argument(..., help="Patient IDs of stored patients."),
    out: Path = typer.Option(..., "--out", help="Folder for the copies and deid-report.json "
                             "(created)."),
    options: list[str] = typer.Option(None, "--options", help="PS3.15 options, repeatable or "
                                      "comma-separated (basic, default, retain-longitudinal-"
                                      "modified-dates, retain-patient-characteristics, "
                                      "retain-device-identity, clean-descriptors, "
                                      "retain-safe-private, ...)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write only the report."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Write de-identified copies of the stored files of PATIENT_ID... to --out."""
    from oncohybrid.deid import parse_options
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services.deid import deidentify_patients

    try:
        doc = deidentify_patients(patient_ids, out, options=parse_options(options),
                                  dry_run=dry_run)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    for p in doc["patients"]:
        typer.echo(f"{p['pseudonym']}: {p['files']} file(s), dates shifted "
                   f"{p['date_shift_days']} days")
