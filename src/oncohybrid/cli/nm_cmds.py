"""Nuclear medicine beyond FDG (issue #20): ``oncohybrid spect`` (activity and SUV of one
SPECT reconstruction), ``oncohybrid dosimetry`` (MIRD dosimetry of a therapy cycle),
``oncohybrid nm-calibrate`` (a camera's sensitivity) and ``oncohybrid nm-phantom`` (a
synthetic SPECT-CT patient with known kinetics).

With ``--json`` only JSON is printed on stdout. Invalid input (counts without a
sensitivity, fewer than two time points for a fit, an unknown patient or cycle, no VOIs)
exits 2 with the reason on stderr and nothing on stdout.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("spect")(spect)
    app.command("dosimetry")(dosimetry)
    app.command("nm-calibrate")(nm_calibrate)
    app.command("nm-phantom")(nm_phantom)
    app.command("psma")(psma)


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


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (containers)
        return "cli"


def spect(
    series: Path = typer.Argument(..., help="An NM RECON TOMO file or the folder holding it."),
    sensitivity_cps_mbq: float = typer.Option(None, "--sensitivity-cps-mbq",
                                              help="System sensitivity (cps/MBq) for a counts "
                                              "reconstruction."),
    duration_s: float = typer.Option(None, "--duration-s", help="Acquisition duration (s) "
                                     "when the rotation sequence lacks it."),
    isotope: str = typer.Option(None, "--isotope", help="Tc-99m, In-111, I-123, I-131 or "
                                "Lu-177 when the header does not say."),
    weight_kg: float = typer.Option(None, "--weight-kg", help="Patient weight for the SUV."),
    roi_centre: str = typer.Option(None, "--roi-centre", help="Spherical ROI centre X,Y,Z "
                                   "(LPS mm)."),
    roi_radius_mm: float = typer.Option(None, "--roi-radius-mm", help="ROI radius (mm)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Activity concentration (Bq/ml) and SUV of one SPECT reconstruction, with provenance."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services.nm import spect_series

    try:
        doc = spect_series(series, sensitivity_cps_mbq=sensitivity_cps_mbq,
                           duration_s=duration_s, isotope=isotope, weight_kg=weight_kg,
                           roi_centre_lps_mm=_numbers(roi_centre, "--roi-centre", 3),
                           roi_radius_mm=roi_radius_mm)
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(doc))
        return
    typer.echo(f"SPECT {doc['series_uid']} ({doc['isotope']}, {doc['pixel_units']})")
    typer.echo(f"activity source: {doc['activity_source']}; total in field "
               f"{doc['total_activity_mbq']} MBq; max {doc['max_bq_ml']} Bq/ml")
    if doc["suv_max"] is not None:
        typer.echo(f"SUVbw max {doc['suv_max']}")
    else:
        typer.echo(f"SUV not available: {doc['suv_unavailable']}")
    if doc["roi"]:
        r = doc["roi"]
        typer.echo(f"ROI: {r['n_voxels']} voxels, mean {r['mean_bq_ml']} Bq/ml, "
                   f"{r['activity_mbq']} MBq")
    for line in doc["provenance"]:
        typer.echo(f"# {line}")


def dosimetry(
    patient_id: str = typer.Argument(..., help="(0010,0020) Patient ID in the workspace."),
    cycle: int = typer.Option(..., "--cycle", help="Therapy cycle number (1 = first "
                              "administration)."),
    method: str = typer.Option("local", "--method", help="local (energy deposited in the "
                               "VOI) or voxel-s (voxel S-value convolution)."),
    fit: str = typer.Option("auto", "--fit", help="auto, mono-exp, bi-exp (uptake and "
                            "washout), bi-exp-clearance (two clearance phases), trapezoid "
                            "or hanscheid (single time point)."),
    sensitivity_cps_mbq: float = typer.Option(None, "--sensitivity-cps-mbq",
                                              help="Sensitivity for counts reconstructions "
                                              "(else the camera's stored calibration)."),
    seg: Path = typer.Option(None, "--seg", help="DICOM SEG with the VOIs (default: the "
                             "patient's stored SEG)."),
    sphere: list[str] = typer.Option(None, "--sphere", help="A drawn spherical VOI "
                                     "NAME=X,Y,Z,R (LPS mm on the first time point); "
                                     "repeatable."),
    isotope: str = typer.Option(None, "--isotope", help="Override the radionuclide."),
    hanscheid_time_h: float = typer.Option(None, "--hanscheid-time-h",
                                           help="Time point for --fit hanscheid (default "
                                           "the one nearest 96 h)."),
    store: bool = typer.Option(True, "--store/--no-store", help="Keep the result in the "
                               "workspace (cumulative doses across cycles)."),
    pdf: Path = typer.Option(None, "--pdf", help="Also write the dosimetry report (PDF)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """MIRD dosimetry of a radionuclide-therapy cycle: TIA, absorbed dose, BED, DVH per VOI."""
    from oncohybrid.cli.main import err_console, fail
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services.nm import dosimetry as run

    try:
        spheres = {}
        for item in sphere or []:
            name, sep, coords = item.partition("=")
            if not sep or not name.strip():
                from oncohybrid.errors import InputError

                raise InputError(f"--sphere: expected NAME=X,Y,Z,R, got {item!r}")
            spheres[name.strip()] = _numbers(coords, f"--sphere {name}", 4) or []
        doc = run(patient_id, cycle, method=method, fit=fit, spheres=spheres,
                  sensitivity_cps_mbq=sensitivity_cps_mbq, seg_path=seg, isotope=isotope,
                  hanscheid_time_h=hanscheid_time_h, store=store, actor=_actor(),
                  progress=None if as_json else (lambda m: err_console.print(m)))
    except OncohybridError as exc:
        fail(exc)
        return
    if pdf is not None:
        from oncohybrid.nm.report import dosimetry_pdf

        dosimetry_pdf(doc, pdf)
    if as_json:
        typer.echo(json.dumps(doc))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{doc['patient_id']} cycle {doc['cycle']}: {doc['isotope']} "
                  f"{doc['injected_mbq']} MBq at {doc['administration']} — {doc['method']}")
    table = Table("VOI", "mass g", "TIA MBq·h", "dose Gy", "Gy/GBq", "fit", "r²", "BED Gy",
                  "cumulative Gy")
    for v in doc["vois"]:
        table.add_row(v["name"], f"{v['mass_g']:.1f}", f"{v['tia_mbq_h']:.0f}",
                      f"{v['dose_gy']:.3f}", f"{v['dose_gy_per_gbq'] or 0:.3f}",
                      v["fit"]["model"], "" if v["fit"]["r2"] is None else f"{v['fit']['r2']:.4f}",
                      "" if v["bed_gy"] is None else f"{v['bed_gy']:.3f}",
                      f"{v['cumulative_dose_gy']:.3f}")
    console.print(table)
    for note in doc["notes"]:
        console.print(f"# {note}", highlight=False, markup=False)


def nm_calibrate(
    station: str = typer.Argument(..., help="(0008,1010) Station Name of the camera."),
    isotope: str = typer.Argument(..., help="Radionuclide, e.g. Lu-177."),
    sensitivity_cps_mbq: float = typer.Argument(..., help="Tomographic sensitivity, cps/MBq."),
    measured_on: str = typer.Option(None, "--measured-on", help="Date measured (YYYY-MM-DD)."),
    note: str = typer.Option(None, "--note", help="Phantom, window, reconstruction."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Record a SPECT camera's sensitivity for an isotope (used for counts reconstructions)."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import InputError, OncohybridError
    from oncohybrid.services.nm import set_calibration

    try:
        when = None
        if measured_on:
            try:
                when = dt.date.fromisoformat(measured_on)
            except ValueError:
                raise InputError(f"--measured-on: expected YYYY-MM-DD, got {measured_on!r}"
                                 ) from None
        doc = set_calibration(station, isotope, sensitivity_cps_mbq, measured_on=when,
                              note=note, actor=_actor())
    except OncohybridError as exc:
        fail(exc)
        return
    typer.echo(json.dumps(doc) if as_json else
               f"calibration {doc['id']}: {doc['station']} {doc['isotope']} "
               f"{doc['sensitivity_cps_mbq']} cps/MBq")


def nm_phantom(
    out: Path = typer.Argument(..., help="Folder to write (cycle<N>/tp<K>/{CT,NM,SEG})."),
    units: str = typer.Option("bqml", "--units", help="bqml (quantitative) or counts."),
    sensitivity_cps_mbq: float = typer.Option(9.2, "--sensitivity-cps-mbq",
                                              help="Sensitivity behind counts."),
    cycles: int = typer.Option(1, "--cycles", help="Number of cycles (8 weeks apart)."),
    times_h: str = typer.Option("4,24,96,168", "--times-h", help="Scan times after each "
                                "administration (h)."),
    patient_id: str = typer.Option("NM-PHANTOM-1", "--patient-id"),
    injected_mbq: float = typer.Option(7400.0, "--injected-mbq"),
    as_json: bool = typer.Option(False, "--json", help="Print the ground truth as JSON."),
) -> None:
    """Write a synthetic Lu-177 SPECT-CT patient with known kinetics and ground truth."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import InputError, OncohybridError
    from oncohybrid.phantom.spect import SpectCycle, SpectPhantom, write_spect_patient

    try:
        if units not in ("bqml", "counts"):
            raise InputError(f"--units must be bqml or counts, got {units!r}")
        if cycles < 1:
            raise InputError(f"--cycles must be 1 or more, got {cycles}")
        times = _numbers(times_h, "--times-h") or []
        if not times or any(t <= 0 for t in times):
            raise InputError(f"--times-h: positive hours expected, got {times_h!r}")
        if not (sensitivity_cps_mbq > 0 and injected_mbq > 0):
            raise InputError("--sensitivity-cps-mbq and --injected-mbq must be positive")
        start = dt.datetime(2026, 3, 2, 9, 0)
        plan = tuple(SpectCycle(start + dt.timedelta(weeks=8 * k), injected_mbq,
                                tuple(times)) for k in range(cycles))
        truth = write_spect_patient(out, SpectPhantom(
            patient_id=patient_id, units=units, sensitivity_cps_mbq=sensitivity_cps_mbq,
            cycles=plan))
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(truth))
        return
    typer.echo(f"SPECT-CT phantom {patient_id}: {cycles} cycle(s) × {len(times)} time points "
               f"under {out} (ground_truth.json)")


def psma(
    case: Path = typer.Argument(..., help="JSON case: tracer, references, lesions (docs/nm.md)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """PROMISE V2 miTNM and miPSMA expression scores of a PSMA PET reading."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import InputError, OncohybridError
    from oncohybrid.nm.psma import promise_report

    try:
        try:
            data = json.loads(case.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{case}: no such file") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{case}: not valid JSON ({exc})") from None
        doc = promise_report(data)
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(doc))
        return
    typer.echo(f"{doc['mitnm']['stage']}  (PROMISE V2)")
    for r in doc["lesions"]:
        score = r["psma_expression_score"]
        typer.echo(f"{r['id']}: {r['site']} {r['region']} SUVmax {r['suv_max']} → miPSMA "
                   f"{score if score is not None else '— (' + str(r['reason']) + ')'}")
