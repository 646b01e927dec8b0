"""Background jobs of the reading room: AI segmentation and radiomics of one patient
(issue #18, "inference runs as a background job in the web app with progress").

A job is a batch run (:mod:`oncohybrid.services.batch`, docs/scale.md) of one patient,
recorded like any other (``batch_runs``/``batch_tasks``: one task per PET study for
``segment``, one per patient for ``radiomics``; reuse of a done task with the same inputs,
parameters and version), run one task after the other on a thread of the web process, so
the page returns at once. Progress has two levels: the tasks' states in the database
(queued → running → done/failed: they survive a restart of the app) and, while a task
runs, the step it is at ("inference: tile 3/8", "TP1 lesion L2") kept in this process.

Model folders are those under ``<home>/models/`` (``ONCOHYBRID_HOME``): the reading room
never takes a server path from a form. A segmentation job can keep each SEG for the record
(:func:`oncohybrid.services.segment.store_labels`): the next ``assess`` then takes the
model's lesion and organ labels.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oncohybrid.config import Settings
from oncohybrid.errors import InputError, OncohybridError

__all__ = ["JOB_KINDS", "MODELS_DIR", "available_models", "job_view", "patient_jobs",
           "progress_sink", "start_job", "wait"]

#: Job kinds of the patient page (batch kinds).
JOB_KINDS = ("segment", "radiomics")
#: Folder of the workspace holding the model folders the reading room offers.
MODELS_DIR = "models"
#: Cluster name recorded on the batch run of a job started from the reading room.
WEB_CLUSTER = "web"

#: Where the running task reports its step: set by the job's thread, read by
#: :func:`oncohybrid.services.segment.segment_study` and
#: :func:`oncohybrid.services.radiomics.radiomics_of_patient` when no callback is given.
progress_sink: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "oncohybrid_job_progress", default=None)

_steps: dict[int, str] = {}  # run pk -> the running task's current step
_threads: dict[int, threading.Thread] = {}
_lock = threading.Lock()


def available_models(settings: Settings) -> list[dict[str, Any]]:
    """The model folders under ``<home>/models/`` that parse (card, nnU-Net or MONAI
    layout): ``[{"name", "folder", "layout", "labels"}]``; folders that do not parse are
    listed with their ``error``."""
    from oncohybrid.ai.loaders import load_model

    root = Path(settings.home) / MODELS_DIR
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            model = load_model(folder)
            out.append({"name": model.card.name or folder.name, "folder": folder.name,
                        "layout": model.layout,
                        "labels": {str(k): v for k, v in model.card.labels.items()}})
        except OncohybridError as exc:
            out.append({"name": folder.name, "folder": folder.name, "error": str(exc)})
    return out


def _model_folder(settings: Settings, name: str | None) -> Path:
    if not name:
        raise InputError("model: choose one of the models in the workspace's models folder")
    root = (Path(settings.home) / MODELS_DIR).resolve()
    folder = (root / name).resolve()
    if folder.parent != root or not folder.is_dir():
        raise InputError(f"model {name!r}: not a folder of {root}")
    return folder


def start_job(settings: Settings, kind: str, patient_id: str, *, model: str | None = None,
              store: bool = True) -> int:
    """Record a job (a batch run of one patient) and start it on a thread; returns the
    run's id at once. ``model``: the folder name under ``<home>/models/`` (segment);
    ``store``: keep each SEG for the record (segment)."""
    from oncohybrid.services import batch

    if kind not in JOB_KINDS:
        raise InputError(f"job kind {kind!r}: expected one of {', '.join(JOB_KINDS)}")
    options = {"model": str(_model_folder(settings, model))} if kind == "segment" else None
    run_pk = batch.create_run(kind, [patient_id], retries=1, cluster=WEB_CLUSTER,
                              settings=settings, options=options)
    thread = threading.Thread(target=_run, args=(settings, run_pk, kind, store),
                              name=f"job-{run_pk}", daemon=True)
    with _lock:
        _threads[run_pk] = thread
    thread.start()
    return run_pk


def _run(settings: Settings, run_pk: int, kind: str, store: bool) -> None:
    from oncohybrid.services import batch

    def step(message: str) -> None:
        with _lock:
            _steps[run_pk] = message

    progress_sink.set(step)
    try:
        tasks = batch.pending_tasks(run_pk, settings)
        for n, pk in enumerate(tasks, start=1):
            step(f"task {n} of {len(tasks)}: starting")
            try:
                batch.execute_task(pk, str(settings.home), settings.database_url, 1)
            except Exception:  # noqa: BLE001 - recorded on the task by execute_task
                continue
        if kind == "segment" and store:
            step("keeping the SEGs for the record")
            _store_results(settings, run_pk)
    finally:
        _finish(settings, run_pk)
        with _lock:
            _steps.pop(run_pk, None)


def _finish(settings: Settings, run_pk: int) -> None:
    """Mark the run finished (as :func:`oncohybrid.services.batch.run_batch` does)."""
    import datetime as dt

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchRun

    with session_scope(settings) as s:
        run = s.get(BatchRun, run_pk)
        if run is not None:
            run.status = "cancelled" if run.cancel_requested else "finished"
            run.finished_at = dt.datetime.now(dt.UTC)


def _store_results(settings: Settings, run_pk: int) -> None:
    from oncohybrid.services import batch
    from oncohybrid.services.segment import store_labels

    report = batch.collect(run_pk, settings, 0.0)
    for task in report.tasks:
        if task.result and task.result.get("seg_file"):
            try:
                store_labels(task.result["seg_file"], settings)
            except OncohybridError:
                continue  # shown on the job page: the SEG is not kept


def _alive(pid: int | None) -> bool:
    import os

    if not pid:
        return False
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(settings: Settings) -> int:
    """Stop reading-room jobs whose web process is gone (the app was restarted while they
    ran): their unfinished tasks become ``failed`` with the reason and the run
    ``cancelled``, so the pages stop waiting. Only runs started on this host are judged.
    Returns how many runs were stopped."""
    import datetime as dt
    import os
    import socket

    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchRun, BatchTask

    now = dt.datetime.now(dt.UTC)
    n = 0
    with session_scope(settings) as s:
        runs = s.scalars(sa.select(BatchRun).where(BatchRun.cluster == WEB_CLUSTER,
                                                   BatchRun.status == "running")).all()
        for run in runs:
            if run.host != socket.gethostname():
                continue
            if run.pid == os.getpid():
                with _lock:
                    thread = _threads.get(run.id)
                if thread is not None and thread.is_alive():
                    continue
            elif _alive(run.pid):
                continue
            for task in s.scalars(sa.select(BatchTask).where(
                    BatchTask.run_pk == run.id,
                    BatchTask.status.in_(("queued", "running")))).all():
                task.status = "failed"
                task.error = "the reading room stopped while this job ran; start it again"
                task.finished_at = now
            run.status, run.finished_at = "cancelled", now
            n += 1
    return n


def wait(run_pk: int, timeout_s: float | None = None) -> bool:
    """Wait for a job started in this process (tests, the CLI); True when it ended."""
    with _lock:
        thread = _threads.get(run_pk)
    if thread is None:
        return True
    thread.join(timeout_s)
    return not thread.is_alive()


def job_view(settings: Settings, run_pk: int) -> dict[str, Any]:
    """A job's progress and results for the patient page: the batch run's summary and
    tasks, the running task's step, the fraction of tasks finished, and per task its
    result (segment: per label volume and components, and whether the SEG is kept for the
    record; radiomics: per lesion a few headline features)."""
    from oncohybrid.services import batch
    from oncohybrid.services.segment import stored_labels_file

    reap_orphans(settings)
    run = batch.run_detail(run_pk, settings)
    report = batch.collect(run_pk, settings, 0.0)
    counts = run["counts"]
    total = sum(counts.values())
    finished = counts["done"] + counts["failed"] + counts["skipped"] + counts["cancelled"]
    with _lock:
        run["step"] = _steps.get(run_pk)
    run["fraction"] = finished / total if total else 1.0
    run["patient_id"] = (report.tasks[0].patient_id if report.tasks else None)
    results = []
    for task in report.tasks:
        item: dict[str, Any] = {"unit": task.unit_key, "status": task.status,
                                "seconds": task.seconds, "error": task.error}
        res = task.result
        if run["kind"] == "segment" and res:
            kept = stored_labels_file(settings, task.unit_key)
            item["segment"] = {
                "model": res.get("model"),
                "labels": [{"value": v, "name": d["name"], "volume_ml": d["volume_ml"],
                            "n_components": d["n_components"]}
                           for v, d in res.get("labels", {}).items()],
                "kept_for_record": kept is not None and res.get("seg_file") is not None
                and _same_file(kept, res["seg_file"]),
            }
        elif run["kind"] == "radiomics" and res:
            item["radiomics"] = [_headline(row) for row in res]
        results.append(item)
    run["results"] = results
    return run


def _same_file(a: Path, b: str) -> bool:
    try:
        return a.read_bytes() == Path(b).read_bytes()
    except OSError:
        return False


#: IBSI identifiers shown on the job page (IBSI 1 reference manual): volume (RNU0),
#: sphericity (QCFX), mean (Q4LE), maximum (84IY), GLCM joint entropy 3D merged (TU9B/IAZD).
HEADLINE = {"RNU0": "Volume (mm³)", "QCFX": "Sphericity", "Q4LE": "Mean", "84IY": "Maximum",
            "TU9B/IAZD": "GLCM joint entropy (3D merged)"}


def _headline(row: dict[str, Any]) -> dict[str, Any]:
    feats = row.get("features", {})
    return {"timepoint": row.get("timepoint"), "lesion": row.get("lesion"),
            "n_voxels": row.get("n_voxels"), "n_features": len(feats),
            "values": {label: feats.get(key) for key, label in HEADLINE.items()}}


def patient_jobs(settings: Settings, patient_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The patient's jobs (segment/radiomics runs naming only this patient), newest first."""
    from oncohybrid.services import batch

    reap_orphans(settings)
    out = []
    for run in batch.list_runs(settings, limit=200):
        if run["kind"] not in JOB_KINDS:
            continue
        detail = batch.run_detail(run["id"], settings)
        if detail["tasks"] and all(t["patient_id"] == patient_id for t in detail["tasks"]):
            out.append(run)
        if len(out) >= limit:
            break
    return out


def reference_notes(settings: Settings, patient_pk: int) -> list[str]:
    """Sentences for the patient page: where the record's PERCIST reference VOIs came from
    when an AI organ label placed them ("2024-07-21: liver VOI from AI organ label 'liver'
    (model M): …"), and which timepoints' lesions are the model's."""
    import sqlalchemy as sa

    from oncohybrid.services.record import patient_record
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient

    with session_scope(settings) as s:
        patient_id = s.scalar(sa.select(Patient.patient_id).where(Patient.id == patient_pk))
    if patient_id is None:
        return []
    try:
        rec = patient_record(patient_id, settings)
    except OncohybridError:
        return []
    # timepoint labels, not calendar dates: the page is also shown to researchers
    label = {tp["date"]: tp["label"] or f"TP{tp['index']}" for tp in rec["timepoints"]}
    out: dict[tuple[str, str], None] = {}
    for les in rec["lesions"]:
        for o in les["observations"]:
            seg = ((o.get("methods") or {}).get("suv_max") or {}).get("parameters") or {}
            for key in ("liver_reference", "blood_pool_reference"):
                ref = seg.get(key) or {}
                if ref.get("placement") == "ai-organ-label":
                    for check in ref.get("anatomy_checks") or []:
                        out[(o["date"], check)] = None
            if seg.get("method") == "ai-label":
                out[(o["date"], f"lesions from the AI model {seg.get('model')}")] = None
    return [f"{label.get(d, '?')}: {text}" for d, text in sorted(out)]
