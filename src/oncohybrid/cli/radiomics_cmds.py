"""``oncohybrid radiomics``: IBSI features of a region of interest (IBSI 1 and 2)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("radiomics")(radiomics)


def radiomics(
    image: Path | None = typer.Argument(None, help="DICOM series directory or NIfTI file."),
    mask: Path | None = typer.Option(None, "--mask", help="ROI mask: DICOM SEG of the "
                                     "series or NIfTI on the image grid."),
    ibsi_config: str | None = typer.Option(None, "--ibsi-config", help="digital-phantom, "
                                           "A, B, C, D or E (IBSI 1 Table 5.1; default C)."),
    params: Path | None = typer.Option(None, "--params", help="YAML settings (keys of "
                                       "RadiomicsSettings; 'base: C' starts from config C)."),
    filter_id: str | None = typer.Option(None, "--filter", help="IBSI 2 filter id applied "
                                         "to the interpolated image."),
    label: int | None = typer.Option(None, "--label", help="Mask label / SEG segment number."),
    names: str = typer.Option("ibsi", "--names", help="ibsi (default) or pyradiomics."),
    table: Path | None = typer.Option(None, "--table", help="CSV with columns image, mask "
                                      "(and any others): prints one CSV row per ROI."),
    patient: str | None = typer.Option(None, "--patient", help="Patient ID: one row per "
                                       "(timepoint, lesion) of the stored assessment, from "
                                       "the stored lesion masks on the PET in SUVbw (CSV, "
                                       "or a JSON list with --json; default settings "
                                       "pet-suvbw: native grid, FBS 0.25 SUV)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON {features, settings}."),
) -> None:
    """Print the IBSI feature values of one ROI, keyed by IBSI identifier (``Q4LE``,
    ``ID/AGG`` for texture, ``BC2M/V10`` for the intensity-volume histogram)."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import InputError, OncohybridError
    from oncohybrid.radiomics.names import pyradiomics_names
    from oncohybrid.services import radiomics as svc

    try:
        if names not in ("ibsi", "pyradiomics"):
            raise InputError(f"--names {names!r}: expected ibsi or pyradiomics")
        rename = pyradiomics_names if names == "pyradiomics" else None
        if patient is not None:
            if image is not None or mask is not None or table is not None:
                raise InputError("--patient replaces IMAGE, --mask and --table; give one")
            settings = (svc.settings_for(ibsi_config, params) if ibsi_config or params
                        else svc.PET_SUV_SETTINGS)
            rows, notes = svc.radiomics_of_patient(patient, settings, filter_id=filter_id)
            for note in notes:
                typer.echo(f"# {note}", err=True)
            if as_json:
                out = [{**r, "features": rename(r["features"]) if rename else r["features"]}
                       for r in rows]
                typer.echo(json.dumps(out, allow_nan=True))
            else:
                typer.echo(svc.patient_rows_csv(rows, rename), nl=False)
            return
        settings = svc.settings_for(ibsi_config, params)
        if table is not None:
            if image is not None or mask is not None:
                raise InputError("--table replaces IMAGE and --mask; give one or the other")
            typer.echo(svc.radiomics_table(table, settings, filter_id=filter_id,
                                           rename=rename), nl=False)
            return
        if image is None or mask is None:
            raise InputError("give IMAGE and --mask (or --table LIST.csv)")
        result = svc.radiomics_of_files(image, mask, settings, filter_id=filter_id,
                                        label=label)
    except OncohybridError as exc:
        fail(exc)
        return
    features = rename(result.features) if rename else result.features
    if as_json:
        typer.echo(json.dumps({"features": features, "settings": result.settings},
                              allow_nan=True))
        return
    for key, value in features.items():
        typer.echo(f"{key}\t{value:.6g}")
    missing = result.settings.get("families_missing") or {}
    for fam, why in missing.items():
        typer.echo(f"# not computed: {fam} ({why})", err=True)
