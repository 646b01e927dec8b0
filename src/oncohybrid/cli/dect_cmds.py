"""``oncohybrid dect …``: dual-energy CT calibration and iodine / VNC / VMI maps (issue #19).

Invalid input (mismatched grids, missing KVP, a calibration for other spectra, bad
options) exits 2 with the reason on stderr and nothing on stdout.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

dect_app = typer.Typer(help="Dual-energy CT: phantom calibration, iodine density, virtual "
                       "non-contrast and virtual monoenergetic images.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(dect_app, name="dect")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _point(text: str | None, option: str) -> tuple[float, float, float] | None:
    from oncohybrid.errors import InputError

    if text is None:
        return None
    try:
        values = tuple(float(p) for p in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise InputError(f"{option} {text!r}: expected X,Y,Z in LPS millimetres")
    return values  # type: ignore[return-value]


def _run(compute: Callable[[], dict[str, Any]], as_json: bool,
         to_text: Callable[[dict[str, Any]], str]) -> None:
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError

    try:
        result = compute()
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(_finite(result), allow_nan=False))
    else:
        typer.echo(to_text(result))


LOW = typer.Argument(..., help="Low-kV CT series directory (e.g. tube A, 80 or 100 kV).")
HIGH = typer.Argument(..., help="High-kV CT series directory (e.g. tube B, Sn150 kV), "
                      "same grid and frame of reference.")


@dect_app.command("calibrate")
def calibrate(low_dir: Path = LOW, high_dir: Path = HIGH,
              inserts: Path = typer.Option(..., "--inserts", help="JSON: {\"inserts\": "
                                           "[{centre_lps_mm, radius_mm, iodine_mg_ml}]}."),
              out: Path = typer.Option(..., "--out", help="Calibration JSON to write."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Fit the water/iodine basis from a phantom with known iodine inserts."""
    from oncohybrid.services.dect import calibrate_dect

    def text(r: dict[str, Any]) -> str:
        c = r["calibration"]
        return (f"{r['low']['series_description'] or 'low'} / "
                f"{r['high']['series_description'] or 'high'}: iodine "
                f"{c['iodine_low_hu_per_mg_ml']:.2f} / {c['iodine_high_hu_per_mg_ml']:.2f} "
                f"HU per mg/ml, water {c['water_low']:.1f} / {c['water_high']:.1f}, "
                f"{c['n_inserts']} inserts, RMS residual {c['residual_low_hu']:.2f} / "
                f"{c['residual_high_hu']:.2f} HU\nwritten {r['out']}")

    _run(lambda: calibrate_dect(low_dir, high_dir, inserts, out), as_json, text)


@dect_app.command("iodine")
def iodine(low_dir: Path = LOW, high_dir: Path = HIGH,
           calibration: Path = typer.Option(..., "--calibration",
                                            help="CAL.json from 'oncohybrid dect calibrate'."),
           out: Path = typer.Option(..., "--out", help="Output directory."),
           kev: float = typer.Option(70.0, "--kev", help="Virtual monoenergetic energy "
                                     "(40-150 keV)."),
           voi_centre: str | None = typer.Option(None, "--voi-centre",
                                                 help="Lesion VOI centre X,Y,Z (LPS mm)."),
           voi_radius_mm: float | None = typer.Option(None, "--voi-radius-mm",
                                                      help="Lesion VOI radius (mm)."),
           aorta_centre: str | None = typer.Option(None, "--aorta-centre",
                                                   help="Aorta VOI centre X,Y,Z (LPS mm) "
                                                   "for the normalised iodine concentration."),
           aorta_radius_mm: float | None = typer.Option(
               None, "--aorta-radius-mm", help="Aorta VOI radius (default: --voi-radius-mm)."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Iodine density (Parametric Map, mg/ml), VNC and VMI series; VOI iodine and NIC."""
    from oncohybrid.services.dect import iodine_maps

    def compute() -> dict[str, Any]:
        return iodine_maps(low_dir, high_dir, calibration, out, kev=kev,
                           voi_centre_lps_mm=_point(voi_centre, "--voi-centre"),
                           voi_radius_mm=voi_radius_mm,
                           aorta_centre_lps_mm=_point(aorta_centre, "--aorta-centre"),
                           aorta_radius_mm=aorta_radius_mm)

    def text(r: dict[str, Any]) -> str:
        o = r["outputs"]
        lines = [f"iodine {o['iodine']}", f"VNC    {o['vnc']}", f"VMI    {o['vmi']}"]
        if "voi" in r:
            v = r["voi"]
            lines.append(f"VOI iodine {v['iodine_mean_mg_ml']:.2f} mg/ml, VNC "
                         f"{v['vnc_mean_hu']:.1f} HU, DER {v['dual_energy_ratio']}")
            if v.get("normalised_iodine_concentration") is not None:
                lines.append(f"NIC {v['normalised_iodine_concentration']:.3f}")
        return "\n".join(lines)

    _run(compute, as_json, text)
