"""``oncohybrid batch assess|quantify|radiomics|segment``: a cohort as recorded,
idempotent Dask tasks (#17, docs/scale.md)."""

from __future__ import annotations

import json

import typer

batch_app = typer.Typer(
    help="Process many patients on Dask distributed: a local cluster on 127.0.0.1 "
    "(default) or an existing one (--scheduler); reruns skip finished, unchanged tasks.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")


_PATIENTS = typer.Option(None, "--patients", help="Comma-separated Patient IDs.")
_COHORT = typer.Option(None, "--cohort", help="A saved research cohort's name.")
_ALL = typer.Option(False, "--all", help="Every patient in the study database.")
_WORKERS = typer.Option(
    1, "--workers",
    help="Local Dask worker processes on 127.0.0.1 (0: serially in this process). More "
    "than 1 needs PostgreSQL (ONCOHYBRID_DATABASE_URL).")
_SCHEDULER = typer.Option(
    None, "--scheduler", help="tcp://HOST:PORT of an existing Dask scheduler (needs "
    "PostgreSQL through ONCOHYBRID_DATABASE_URL and a file store the workers share).")
_RETRIES = typer.Option(
    1, "--retries", metavar="K",
    help="Attempts of a task in all (K >= 1; 1 = no retry): a task that always fails is "
    "reported failed after K attempts, and the batch goes on.")
_JSON = typer.Option(False, "--json", help="Print JSON only (stdout).")


@batch_app.command("assess")
def batch_assess(patients: str | None = _PATIENTS, cohort: str | None = _COHORT,
                 all_patients: bool = _ALL, workers: int = _WORKERS,
                 scheduler: str | None = _SCHEDULER, retries: int = _RETRIES,
                 as_json: bool = _JSON) -> None:
    """One task per patient: what `oncohybrid assess PATIENT_ID --json` prints."""
    _run("assess", patients, cohort, all_patients, workers, scheduler, retries, as_json)


@batch_app.command("quantify")
def batch_quantify(patients: str | None = _PATIENTS, cohort: str | None = _COHORT,
                   all_patients: bool = _ALL, workers: int = _WORKERS,
                   scheduler: str | None = _SCHEDULER, retries: int = _RETRIES,
                   as_json: bool = _JSON) -> None:
    """One task per PET study (with its CT): what `oncohybrid quantify PET --ct CT --json`
    prints."""
    _run("quantify", patients, cohort, all_patients, workers, scheduler, retries, as_json)


@batch_app.command("radiomics")
def batch_radiomics(patients: str | None = _PATIENTS, cohort: str | None = _COHORT,
                    all_patients: bool = _ALL, workers: int = _WORKERS,
                    scheduler: str | None = _SCHEDULER, retries: int = _RETRIES,
                    as_json: bool = _JSON) -> None:
    """One task per patient: the features of every stored lesion mask, what `oncohybrid
    radiomics --patient ID --json` prints (run `batch assess` first)."""
    _run("radiomics", patients, cohort, all_patients, workers, scheduler, retries, as_json)


@batch_app.command("segment")
def batch_segment(model: str = typer.Option(..., "--model", help="Model folder, as for "
                                            "`oncohybrid segment --model`."),
                  gpu: bool = typer.Option(False, "--gpu", help="Run the tasks only on "
                                           "workers started with --resources GPU=1 "
                                           "(local workers are tagged so)."),
                  patients: str | None = _PATIENTS, cohort: str | None = _COHORT,
                  all_patients: bool = _ALL, workers: int = _WORKERS,
                  scheduler: str | None = _SCHEDULER, retries: int = _RETRIES,
                  as_json: bool = _JSON) -> None:
    """One task per PET study (with its CT): what `oncohybrid segment PET --ct CT --model
    DIR --json` prints; the DICOM SEG lies in the derived store."""
    _run("segment", patients, cohort, all_patients, workers, scheduler, retries, as_json,
         options={"model": model}, gpu=gpu)


def _run(kind: str, patients: str | None, cohort: str | None, all_patients: bool,
         workers: int, scheduler: str | None, retries: int, as_json: bool,
         options: dict[str, str] | None = None, gpu: bool = False) -> None:
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services.batch import resolve_patients, run_batch

    try:
        ids = resolve_patients(None if patients is None else patients.split(","), cohort,
                               all_patients)
        if as_json:
            report = run_batch(kind, ids, workers=workers, scheduler=scheduler,
                               retries=retries, options=options, gpu=gpu)
        else:
            report = _with_progress(kind, ids, workers, scheduler, retries, options, gpu)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        _print_table(report)
    if summary["failed"]:
        raise typer.Exit(1)


def _with_progress(kind: str, ids: list[str], workers: int, scheduler: str | None,
                   retries: int, options: dict[str, str] | None,
                   gpu: bool):  # noqa: ANN202 - BatchReport
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from oncohybrid.cli.main import err_console
    from oncohybrid.services.batch import run_batch

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console) as bar:
        task = bar.add_task(f"batch {kind}", total=None)

        def step(done: int, total: int, _status: str) -> None:
            bar.update(task, completed=done, total=total)

        return run_batch(kind, ids, workers=workers, scheduler=scheduler, retries=retries,
                         progress=step, options=options, gpu=gpu)


def _print_table(report) -> None:  # noqa: ANN001 - BatchReport
    from rich.console import Console
    from rich.table import Table

    con = Console(highlight=False)
    table = Table(title=f"batch {report.kind} (run {report.run_pk}, {report.cluster})")
    for col in ("Unit", "Patient", "Status", "Attempts", "Seconds", "Error"):
        table.add_column(col)
    for t in report.tasks:
        table.add_row(t.unit_key, t.patient_id, t.status, str(t.attempts),
                      f"{t.seconds:.1f}", t.error or "")
    con.print(table)
    s = report.summary()
    con.print(f"done {s['done']}, failed {s['failed']}, skipped {s['skipped']} "
              f"in {report.wall_s:.1f} s")
