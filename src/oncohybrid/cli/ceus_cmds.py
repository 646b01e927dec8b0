"""``oncohybrid ceus …``: contrast-enhanced ultrasound perfusion (issue #19). Invalid input
exits 2 with the reason on stderr and nothing on stdout."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

ceus_app = typer.Typer(help="Contrast-enhanced ultrasound perfusion (time-intensity curves, "
                       "bolus model fits, EFSUMB terms).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(ceus_app, name="ceus")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


@ceus_app.command("tic")
def tic(cine: Path = typer.Argument(..., help="Ultrasound Multi-frame Image (DICOM)."),
        roi: str = typer.Option(..., "--roi", help="X,Y,W,H in pixels (column and row of the "
                                "top-left corner, width, height)."),
        dynamic_range_db: float = typer.Option(60.0, "--dynamic-range-db", help="Dynamic "
                                               "range of the log compression in dB."),
        model: str = typer.Option("lognormal", "--model", help="lognormal, gamma-variate "
                                  "or ldrw."),
        no_motion: bool = typer.Option(False, "--no-motion-correction", help="Skip the "
                                       "rigid motion compensation."),
        curve: bool = typer.Option(False, "--curve", help="Include the time-intensity "
                                   "curve in the JSON."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Fit a bolus model to the ROI time-intensity curve; EFSUMB perfusion terms."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import ceus as svc

    try:
        result = svc.tic(cine, roi, dynamic_range_db, model, not no_motion)
    except OncohybridError as exc:
        fail(exc)
        return
    data = _finite(result.as_dict(with_curve=curve))
    if as_json:
        typer.echo(json.dumps(data, allow_nan=False))
        return
    lines = [f"model {data['model']}  r2 {data['r2']:.4f}  frames {data['n_frames']} "
             f"({data['frame_time_source']})"]
    lines += [f"  {k:<26} {v:.6g}" if isinstance(v, float) else f"  {k:<26} {v}"
              for k, v in data["parameters"].items()]
    typer.echo("\n".join(lines))
