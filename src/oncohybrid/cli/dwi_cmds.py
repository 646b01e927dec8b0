"""``oncohybrid dwi …``: diffusion-weighted MR (issue #19). Invalid input (one or no b-value,
a b-value the series lacks, a malformed ROI) exits 2 with the reason on stderr and nothing
on stdout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

dwi_app = typer.Typer(help="Diffusion-weighted MR: ADC maps (Parametric Map, µm²/s).",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(dwi_app, name="dwi")


def _numbers(text: str | None, option: str, count: int | None = None) -> list[float] | None:
    from oncohybrid.errors import InputError

    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise InputError(f"{option}: expected {count} numbers, got {text!r}")
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"{option}: numbers must be finite, got {text!r}")
    return values


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dwi_app.command("adc")
def adc(
    series_dir: Path = typer.Argument(..., help="Folder of one DWI series (classic or "
                                      "enhanced multi-frame)."),
    out: Path = typer.Option(..., "--out", help="Parametric Map to write (ADC in µm²/s)."),
    b_values: str = typer.Option(None, "--b-values", help="b-values to fit, e.g. 50,400,800 "
                                 "(default: all)."),
    roi_centre: str = typer.Option(None, "--roi-centre", help="Spherical ROI centre X,Y,Z "
                                   "in LPS mm."),
    roi_radius_mm: float = typer.Option(None, "--roi-radius-mm", help="ROI radius (mm)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Mono-exponential ADC map of SERIES_DIR written as a DICOM Parametric Map."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services.dwi import adc_map

    try:
        result = adc_map(series_dir, out, b_values=_numbers(b_values, "--b-values"),
                         roi_centre_lps_mm=_numbers(roi_centre, "--roi-centre", 3),
                         roi_radius_mm=roi_radius_mm)
    except OncohybridError as exc:
        fail(exc)
        return
    roi = None
    if result.roi is not None:
        roi = {"adc_mean_um2_s": _finite(result.roi.mean_um2_s),
               "adc_median_um2_s": _finite(result.roi.median_um2_s),
               "n_voxels": result.roi.n_voxels}
    if as_json:
        typer.echo(json.dumps({"b_values": result.b_values,
                               "b_value_source": result.b_value_source, "roi": roi}))
        return
    typer.echo(f"ADC map: {result.out} ({result.n_fitted} voxels fitted, "
               f"{result.n_negative} negative clipped to 0)")
    typer.echo(f"b-values: {', '.join(f'{b:g}' for b in result.b_values)} s/mm² "
               f"(from {result.b_value_source})")
    if roi is not None:
        typer.echo(f"ROI: mean {result.roi.mean_um2_s:.1f} µm²/s, median "
                   f"{result.roi.median_um2_s:.1f} µm²/s, {result.roi.n_voxels} voxels")
    typer.echo(f"# {result.method}")
