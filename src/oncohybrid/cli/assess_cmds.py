"""``oncohybrid assess PATIENT_ID``: segment, measure, track and assess a stored patient."""

from __future__ import annotations

import json
import sys

import typer


def register(app: typer.Typer) -> None:
    app.command("assess")(assess)


def assess(
    patient_id: str = typer.Argument(..., help="(0010,0020) Patient ID of a stored patient."),
    criteria: str | None = typer.Option(
        None, "--criteria",
        help="Comma-separated criteria (default recist1.1,percist,lugano); also irecist, "
        "choi, eortc, lugano-pet, lugano-ct, lyric, recip.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only (stdout)."),
    allow_tracer_mismatch: bool = typer.Option(
        False, "--allow-tracer-mismatch",
        help="Assess criteria on a tracer/modality they are not valid for (e.g. PERCIST on "
        "a non-FDG PET); the mismatch is reported.",
    ),
    liver_centre: list[str] = typer.Option(
        [], "--liver-centre",
        help="DATE=X,Y,Z: place that visit's PERCIST liver sphere at this LPS centre (mm) "
        "instead of automatically (repeatable).",
    ),
    blood_pool_centre: list[str] = typer.Option(
        [], "--blood-pool-centre",
        help="DATE=X,Y,Z: place that visit's blood-pool cylinder at this LPS centre (mm) "
        "instead of automatically (repeatable).",
    ),
) -> None:
    """Segment each PET timepoint, measure, track, apply the criteria, store and print."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services.assess import AssessParams, assess_patient

    try:
        centres: dict[str, dict[str, tuple[float, float, float]]] = {}
        for option, region, values in (("--liver-centre", "liver", liver_centre),
                                       ("--blood-pool-centre", "blood_pool", blood_pool_centre)):
            for value in values:
                date, point = parse_dated_point(value, option)
                centres.setdefault(date, {})[region] = point
        params = AssessParams(reference_centres=centres,
                              allow_tracer_mismatch=allow_tracer_mismatch)
        if as_json:
            result = assess_patient(patient_id, criteria=criteria, params=params)
        else:
            result = _with_progress(patient_id, criteria, params)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    print_tables(result)


def parse_dated_point(value: str, option: str) -> tuple[str, tuple[float, float, float]]:
    """``YYYY-MM-DD=X,Y,Z`` → (ISO date, LPS point in mm); InputError naming the option."""
    import datetime as dt

    from oncohybrid.errors import InputError

    date, sep, point = value.partition("=")
    try:
        iso = dt.date.fromisoformat(date.strip()).isoformat()
        xyz = tuple(float(v) for v in point.split(","))
    except ValueError:
        iso, xyz = "", ()
    if not sep or not iso or len(xyz) != 3:
        raise InputError(f"{option} {value!r}: expected DATE=X,Y,Z, e.g. 2024-09-14=-80,20,-150 "
                         "(study date, LPS millimetres)")
    return iso, (xyz[0], xyz[1], xyz[2])


def _with_progress(patient_id: str, criteria: str | None, params=None):  # noqa: ANN001, ANN202
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from oncohybrid.services.assess import assess_patient

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"assess {patient_id}", total=None)

        def step(msg: str) -> None:
            bar.update(task, description=f"assess {patient_id}: {msg}")

        return assess_patient(patient_id, criteria=criteria, params=params, progress=step)


def _pct(v: object) -> str:
    return f"{v:+.1f}%" if isinstance(v, int | float) else "—"


def print_tables(result) -> None:  # noqa: ANN001 - AssessResult
    from rich.console import Console
    from rich.table import Table

    from oncohybrid.response.summary import change_vs_baseline, change_vs_nadir, key_number

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    for k, tr in enumerate(getattr(result, "tracers", []) or []):
        console.print(f"tracer (timepoint {k}): {tr['summary'] if tr else 'unknown'}",
                      markup=False)
    for name, out in result.criteria.items():
        table = Table(title=f"{result.patient_id} — {name}")
        for col in ("Timepoint", "Date", "Key number", "vs baseline", "vs nadir", "Category"):
            table.add_column(col, no_wrap=True)
        for k, tp in enumerate(out["timepoints"]):
            key = key_number(tp)
            table.add_row(
                "baseline" if k == 0 else f"follow-up {k}",
                tp["date"],
                key[0] if key else "—",
                _pct(change_vs_baseline(tp)),
                _pct(change_vs_nadir(tp)),
                tp["overall"],
            )
        console.print(table)
        console.print(f"Best overall response ({name}): "
                      f"[bold]{out.get('best_overall_response') or '—'}[/bold]")
        for w in out.get("warnings", []):
            console.print(f"warning: {w}", markup=False)
    if result.notes:
        console.print("Pipeline notes (exclusions, CT re-detections, registration):")
        for note in result.notes:
            console.print(f"  • {note}", markup=False)
