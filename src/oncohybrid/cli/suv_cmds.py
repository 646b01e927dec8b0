"""``oncohybrid suv``: SUV factors of one PET series, with the reason for the reference time."""

from __future__ import annotations

import json
import math
from datetime import datetime, time
from pathlib import Path
from typing import Any

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
    allow_implausible: list[str] | None = typer.Option(
        None, "--allow-implausible", help="Accept a header value outside its plausible "
        "range (repeatable): weight, height, dose, half-life, uptake, injection-day, "
        "rescale-slope, series-consistency or all. Recorded in the provenance."),
) -> None:
    """Print the SUV factors (BW, SUL, BSA, IBW), the reference time and why it was chosen.

    The factors come from the headers alone; when the image volume cannot be built they are
    still printed, with the volume problem (JSON key ``volume_problem``) and exit status 0.
    How the volume was made from the slices (spacing resampled, gantry tilt corrected …)
    is printed too (JSON key ``volume_notes``; :func:`oncohybrid.dicom.volume.volume_notes`).
    """
    from contextlib import nullcontext

    from oncohybrid.dicom.suv import Normalisation, SUVOverrides, compute_suv, suv_volume
    from oncohybrid.dicom.volume import read_series, volume_notes
    from oncohybrid.errors import OncohybridError

    if as_json:
        status: Any = nullcontext()
    else:
        from rich.console import Console

        status = Console(stderr=True).status(f"Reading {series_dir} …")
    try:
        overrides = SUVOverrides(
            dose_bq=dose_bq,
            injection_time=_parse_when(injection_time) if injection_time else None,
            weight_kg=weight_kg, height_m=height_m, sex=sex,
            allow_implausible=frozenset(allow_implausible or ()),
        )
        with status:
            datasets = read_series(series_dir)
            scaling = compute_suv(datasets, overrides=overrides)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    out = scaling.to_json()
    out["suvbw_max"] = None
    out["suvbw_max_unit"] = Normalisation.BW.ucum_unit
    out["volume_problem"] = None
    out["volume_notes"] = []
    try:
        with status:
            volume, _ = suv_volume(datasets, scaling=scaling)
    # The factors stand on the headers alone; whatever stops the pixels (geometry, pixel
    # data pydicom cannot decode) is reported beside them, not instead of them.
    except (OncohybridError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            RuntimeError, NotImplementedError) as exc:
        kind = "" if isinstance(exc, OncohybridError) else f"{type(exc).__name__}: "
        out["volume_problem"] = f"the SUV volume could not be built: {kind}{exc}"
    else:
        vmax = float(volume.array.max()) if volume.array.size else math.nan
        out["suvbw_max"] = vmax if math.isfinite(vmax) else None
        # SUVmax is read from these voxels: say when they are not the stored planes as-is.
        out["volume_notes"] = list(volume_notes(volume))
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
    # Rows of their own: rich wraps a long cell, the notes stay readable in the table.
    for note in out.get("volume_notes") or []:
        table.add_row("volume note", note)
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
    if out.get("volume_problem"):
        console.print(f"note: {out['volume_problem']} (the factors above do not need it)",
                      markup=False, soft_wrap=True)
