"""``oncohybrid suv``: SUV factors of one PET series, with the reason for the reference time."""

from __future__ import annotations

import json
import math
from datetime import datetime, time
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("suv")(suv)


def _parse_when(text: str) -> datetime | time:
    """ISO 8601 (``2025-01-01T10:00:00``), DICOM DT (``20250101100000``) or a time of day
    (``10:00[:00]``, treated like a TM-only injection time)."""
    from oncohybrid.errors import InputError

    s = text.strip()
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            return datetime.strptime(s, fmt).time()
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        pass
    digits = s.split(".")[0]
    for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M"):
        try:
            return datetime.strptime(digits, fmt)
        except ValueError:
            pass
    raise InputError(f"--injection-time {text!r}: expected ISO 8601 date-time, DICOM DT "
                     "(YYYYMMDDHHMMSS) or HH:MM[:SS]")


def suv(
    series_dir: Path = typer.Argument(..., help="Directory holding one PET series."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    dose_bq: float | None = typer.Option(None, "--dose-bq", help="Injected activity (Bq) "
                                         "at the injection time; overrides (0018,1074)."),
    injection_time: str | None = typer.Option(
        None, "--injection-time", help="Injection date-time (ISO 8601 or DICOM DT) or time "
        "of day; overrides (0018,1078)/(0018,1072)."),
    weight_kg: float | None = typer.Option(None, "--weight-kg", help="Overrides (0010,1030)."),
    height_m: float | None = typer.Option(None, "--height-m", help="Overrides (0010,1020)."),
    sex: str | None = typer.Option(None, "--sex", help="M, F or O; overrides (0010,0040)."),
) -> None:
    """Print the SUV factors (BW, SUL, BSA, IBW), the reference time and why it was chosen."""
    from oncohybrid.dicom.suv import Normalisation, SUVOverrides, suv_volume
    from oncohybrid.dicom.volume import read_series
    from oncohybrid.errors import OncohybridError

    try:
        overrides = SUVOverrides(
            dose_bq=dose_bq,
            injection_time=_parse_when(injection_time) if injection_time else None,
            weight_kg=weight_kg, height_m=height_m, sex=sex,
        )
        if as_json:
            datasets = read_series(series_dir)
            volume, scaling = suv_volume(datasets, overrides=overrides)
        else:
            from rich.console import Console

            with Console(stderr=True).status(f"Reading {series_dir} …"):
                datasets = read_series(series_dir)
                volume, scaling = suv_volume(datasets, overrides=overrides)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    out = scaling.to_json()
    vmax = float(volume.array.max()) if volume.array.size else math.nan
    out["suvbw_max"] = vmax if math.isfinite(vmax) else None
    out["suvbw_max_unit"] = Normalisation.BW.ucum_unit
    if as_json:
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    _print_human(out)


def _print_human(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title="SUV scaling", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("units", "decay_correction", "reference_time", "reference_time_source",
                "injected_dose_bq", "dose_at_reference_bq", "half_life_s", "weight_kg",
                "height_m", "sex", "suvbw_factor", "sul_factor", "suvbsa_factor",
                "suvibw_factor", "suvbw_max"):
        value = out.get(key)
        text = "—" if value is None else (f"{value:.6g}" if isinstance(value, float)
                                          else str(value))
        table.add_row(key, text)
    console.print(table)
    if out.get("per_slice"):
        console.print(f"per-slice factors: {len(out['per_slice'])} slices/frames "
                      "(see --json)", markup=False)
    ref = out["provenance"].get("reference_time", {})
    if ref:
        console.print(f"[bold]Why this reference time:[/] {ref.get('path', '')}")
        for name, value in ref.get("candidates", {}).items():
            if value is not None:
                console.print(f"  • {name}: {value}", markup=False)
    adm = out["provenance"].get("administration_time", {})
    if adm.get("source"):
        console.print(f"[bold]Administration time:[/] {adm.get('value')} from {adm['source']}")
    units = out["provenance"].get("units_path", {})
    if units.get("formula"):
        console.print("[bold]Factor:[/] ", end="")
        console.print(units["formula"], markup=False)
    if out["provenance"].get("overrides"):
        console.print("[bold]User overrides:[/] ", end="")
        console.print(str(out["provenance"]["overrides"]), markup=False)
    for w in out.get("warnings", []):
        console.print(f"warning: {w}", markup=False)
