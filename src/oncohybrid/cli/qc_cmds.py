"""``oncohybrid qc …``: scanner QC and EARL harmonisation (issue #20).

``qc iec PET_DIR --sphere-activity-bq-ml A --background-activity-bq-ml B [--at ISO] --json``
prints ``{"spheres": [{"diameter_mm", "rc_max", "rc_mean", "rc_peak", …}], "earl1",
"earl2", "background_cv", …}``. Invalid input (no PET series, bad activities, spheres not
found) exits 2 with the reason on stderr and nothing on stdout.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

qc_app = typer.Typer(help="Scanner QC and harmonisation: IEC/NEMA phantom (EARL1/EARL2), "
                     "cross-calibration, daily QC log, equipment registry, study flags.",
                     no_args_is_help=True)
registry_app = typer.Typer(help="Equipment registry built from the stored DICOM headers.",
                           no_args_is_help=True)
qc_app.add_typer(registry_app, name="registry")

JSON = typer.Option(False, "--json", help="Print JSON only.")
AT = typer.Option(None, "--at", help="ISO 8601 time the activities refer to (default: the "
                  "series' decay-correction reference time); F-18 decay to that time.")


def register(app: typer.Typer) -> None:
    app.add_typer(qc_app, name="qc")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _run(compute: Callable[[], Any], as_json: bool, to_text: Callable[[Any], str]) -> None:
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


def _iec_text(r: dict[str, Any]) -> str:
    lines = [f"{'sphere':>8} {'RCmax':>7} {'RCmean':>7} {'RCpeak':>7} {'BV %':>6}"]
    for s in r["spheres"]:
        bv = s["background_variability_pct"]
        lines.append(f"{s['diameter_mm']:>6g}mm {s['rc_max']:7.3f} {s['rc_mean']:7.3f} "
                     f"{s['rc_peak']:7.3f} {bv:6.2f}")
    lines.append(f"EARL1 {'PASS' if r['earl1'] else 'FAIL'}   EARL2 "
                 f"{'PASS' if r['earl2'] else 'FAIL'}   background CV {r['background_cv']:.4f}"
                 f"   lung residual {r['lung_residual_pct']:.1f} %")
    for std in ("earl1", "earl2"):
        for f in r["earl_detail"][std]["failures"]:
            lines.append(f"  {std.upper()} out of band: {f['metric']} {f['diameter_mm']:g} mm "
                         f"{f['value']:.3f} not in {f['band'][0]:.2f}–{f['band'][1]:.2f}")
    lines.append(f"# activities at {r['activities_at']}, image reference "
                 f"{r['reference_time']} ({r['reference_time_source']})")
    if r.get("result_id"):
        lines.append(f"# recorded as QC result {r['result_id']} for {r['scanner']['key']}")
    return "\n".join(lines)


@qc_app.command("iec")
def iec(
    pet_dir: Path = typer.Argument(..., help="Folder of one PET series of the NEMA/IEC body "
                                   "phantom."),
    sphere: float = typer.Option(..., "--sphere-activity-bq-ml",
                                 help="True sphere activity concentration (Bq/ml) at --at."),
    background: float = typer.Option(..., "--background-activity-bq-ml",
                                     help="True background activity concentration (Bq/ml) "
                                     "at --at."),
    at: str = AT,
    record: bool = typer.Option(False, "--record", help="Store the result for the scanner "
                                "in the headers (an EARL-compliant reconstruction becomes "
                                "its EARL protocol)."),
    plot: Path = typer.Option(None, "--plot", help="Write the contrast recovery curves "
                              "(PNG) with the EARL bands."),
    as_json: bool = JSON,
) -> None:
    """Recovery coefficients (RCmax, RCmean A50, RCpeak), background variability, lung
    residual and EARL1/EARL2 compliance of an IEC body-phantom PET series."""
    from oncohybrid.services import qc

    _run(lambda: qc.analyse_iec_dir(pet_dir, sphere_bq_ml=sphere, background_bq_ml=background,
                                    at=at, record=record, plot=plot), as_json, _iec_text)


@qc_app.command("calibration")
def calibration(
    pet_dir: Path = typer.Argument(..., help="Folder of one PET series of a uniform "
                                   "cylinder."),
    activity: float = typer.Option(..., "--activity-bq-ml", help="Dose-calibrator activity "
                                   "concentration (activity / fill volume, Bq/ml) at --at."),
    at: str = AT,
    tolerance: float = typer.Option(0.10, "--tolerance", help="Allowed |measured/expected − "
                                    "1| (EARL: 0.10)."),
    record: bool = typer.Option(False, "--record", help="Store the result for the scanner."),
    as_json: bool = JSON,
) -> None:
    """Cross-calibration: PET-measured vs dose-calibrator concentration of a cylinder."""
    from oncohybrid.services import qc

    _run(lambda: qc.analyse_calibration_dir(pet_dir, activity_bq_ml=activity, at=at,
                                            tolerance=tolerance, record=record), as_json,
         lambda r: (f"measured {r['measured_bq_ml']:.1f} Bq/ml, expected "
                    f"{r['expected_bq_ml']:.1f} Bq/ml, ratio {r['ratio']:.4f} "
                    f"({r['deviation_pct']:+.2f} %, tolerance ±{r['tolerance_pct']:g} %): "
                    f"{'PASS' if r['passed'] else 'FAIL'}"))


@qc_app.command("daily")
def daily(
    scanner: str = typer.Argument(..., help="Scanner registry key (see `qc registry ls`) or "
                                  "id."),
    date: str = typer.Option(..., "--date", help="Day of the QC (YYYY-MM-DD)."),
    measure: list[str] = typer.Option(..., "--measure", help="NAME=VALUE, repeatable "
                                      "(calibration_ratio, uniformity_cov_pct, "
                                      "detector_efficiency_ratio, ct_water_hu or your own)."),
    tolerance: list[str] = typer.Option([], "--tolerance", help="NAME=LOW:HIGH, repeatable "
                                        "(overrides the default)."),
    as_json: bool = JSON,
) -> None:
    """Log one day's QC measurements of a scanner and check them against tolerances."""
    from oncohybrid.errors import InputError
    from oncohybrid.qc.daily import parse_tolerance
    from oncohybrid.services import qc

    def compute() -> dict[str, Any]:
        measures: dict[str, float] = {}
        for m in measure:
            try:
                name, val = m.split("=", 1)
                measures[name.strip()] = float(val)
            except ValueError:
                raise InputError(f"--measure {m!r}: expected NAME=NUMBER") from None
        tols = dict(parse_tolerance(t) for t in tolerance)
        return qc.record_daily(scanner, date, measures, tols)

    _run(compute, as_json, lambda r: f"{r['scanner']} {r['date']}: "
         f"{'PASS' if r['passed'] else 'FAIL ' + r['summary']} (result {r['result_id']})")


@qc_app.command("results")
def results(
    scanner: str = typer.Option(None, "--scanner", help="Registry key or id."),
    kind: str = typer.Option(None, "--kind", help="iec | calibration | daily"),
    as_json: bool = JSON,
) -> None:
    """The QC log: results per scanner and date."""
    from oncohybrid.services import qc

    _run(lambda: {"results": qc.list_results(scanner, kind=kind)}, as_json,
         lambda r: "\n".join(f"{x['date']} {x['scanner']} {x['kind']:<11} "
                             f"{'pass' if x['passed'] else 'FAIL'} {x['summary']}"
                             for x in r["results"]) or "no QC results")


@qc_app.command("trend")
def trend(
    scanner: str = typer.Argument(..., help="Registry key or id."),
    out: Path = typer.Option(..., "--out", help="PNG to write."),
) -> None:
    """Plot the scanner's daily-QC and calibration trend with tolerance bands."""
    from oncohybrid.services import qc

    _run(lambda: str(qc.trend_plot(scanner, out)), False, lambda p: p)


@qc_app.command("status")
def status(
    patient_id: str = typer.Argument(..., help="(0010,0020) Patient ID of a stored patient."),
    as_json: bool = JSON,
) -> None:
    """Per study: scanner, failed QC that makes its SUV not harmonised, EARL protocol match."""
    from oncohybrid.services import qc

    def text(r: dict[str, Any]) -> str:
        return "\n".join(r["notes"]) or "all studies harmonised (no failed QC on record)"

    _run(lambda: qc.patient_status(patient_id), as_json, text)


@registry_app.command("refresh")
def registry_refresh(
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-read every series."),
    as_json: bool = JSON,
) -> None:
    """Link every stored series to its scanner (from the stored instances' headers)."""
    from oncohybrid.services import qc

    _run(lambda: qc.refresh_registry(rebuild=rebuild), as_json,
         lambda r: f"{r['linked']} series linked ({r['series_linked_total']} in all, "
                   f"{r['unreadable']} unreadable); {len(r['scanners'])} scanner(s)")


@registry_app.command("ls")
def registry_ls(as_json: bool = JSON) -> None:
    """The scanners of the registry."""
    from oncohybrid.services import qc

    _run(lambda: {"scanners": qc.list_scanners()}, as_json,
         lambda r: "\n".join(
             f"{s['id']:>3} {s['key']}  {s['modalities'] or ''}  {s['studies']} studies  "
             f"last QC {_last_qc(s['last_qc'])}"
             for s in r["scanners"]) or "registry empty (run `oncohybrid qc registry refresh`)")


def _last_qc(last: dict[str, Any] | None) -> str:
    if last is None:
        return "—"
    return f"{last['date']} {'pass' if last['passed'] else 'FAIL'} ({last['kind']})"
