"""Cohort processing on Dask distributed: idempotent, recorded tasks (issue #17, docs/scale.md).

Each unit of work (one patient for ``assess``, one PET study for ``quantify``) is a row of
``batch_tasks`` (store/models_batch.py) carrying its inputs' content hash, parameters'
hash and software version. A run:

1. resolves the units (``--patients``, ``--cohort``, ``--all``) and records one task each;
   a unit whose inputs, parameters and version equal those of an earlier ``done`` task is
   ``skipped`` and shows that task's stored result;
2. runs the rest serially in this process (``workers=0``), on a local Dask cluster bound to
   127.0.0.1 (``workers=N``), or on an existing cluster (``scheduler="tcp://HOST:PORT"``).
   The unit of work calls the same service function as the single-unit command
   (:func:`oncohybrid.services.assess.assess_patient`,
   :func:`oncohybrid.services.quantify.quantify_pet`) — Dask's own ``retries`` re-run a
   failed task up to K more times and its scheduler re-runs the task of a worker that died
   (Rocklin, "Dask: Parallel computation with blocked algorithms and task scheduling",
   Proc. SciPy 2015; https://distributed.dask.org/en/stable/resilience.html);
3. each attempt is recorded by the worker itself through the database: ``running`` with
   ``attempts + 1`` when it starts, then ``done`` with the result JSON in one transaction
   (the same JSON is first written to the file store by atomic rename), or the error.

SQLite refuses concurrent writers, so multi-worker and remote-cluster runs need
PostgreSQL through ``ONCOHYBRID_DATABASE_URL``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from oncohybrid import __version__
from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, StoreError
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Instance, Patient, Series, Study
from oncohybrid.store.models_batch import BatchRun, BatchTask

#: Batch kinds and what one task of each is.
KINDS = {"assess": "patient", "quantify": "PET study", "radiomics": "patient",
         "segment": "PET study"}
#: Kinds whose unit is one PET series (with the CT sharing its Frame of Reference).
PET_KINDS = ("quantify", "segment")
#: Dask resource a worker started with ``--resources GPU=1`` advertises (segment --gpu).
GPU_RESOURCE = "GPU"
#: Environment variable naming the database for multi-worker runs.
DATABASE_ENV = "ONCOHYBRID_DATABASE_URL"
#: Memory limit of each local Dask worker (Dask's byte-size syntax).
WORKER_MEMORY_ENV = "ONCOHYBRID_BATCH_WORKER_MEMORY"
DEFAULT_WORKER_MEMORY = "4GiB"
#: Loopback only: the local cluster never binds or probes another address.
LOOPBACK = "127.0.0.1"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------------------
# Units, hashes, parameters
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One unit of work: its key (Patient ID or PET Series Instance UID) and inputs."""

    key: str
    patient_id: str
    #: series whose instances are the inputs (their content hash decides reuse)
    series_uids: tuple[str, ...]
    #: kind-specific arguments (quantify: the CT series UID)
    extra: dict[str, Any] = field(default_factory=dict)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def params_for(kind: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters a task of ``kind`` runs with: the single-unit command's defaults.

    ``segment`` needs ``options["model"]`` (the model folder); its parameters carry the
    folder and the SHA-256 of its files, so a changed model is computed again on a rerun.
    """
    options = options or {}
    if kind == "segment":
        model = options.get("model")
        if not model:
            raise InputError("batch segment: give --model DIR (the model folder of "
                             "oncohybrid segment)")
        folder = Path(model).expanduser().resolve()
        if not folder.is_dir():
            raise InputError(f"--model {model}: not a folder")
        return {"model": str(folder), "model_sha256": _folder_hash(folder),
                "device": "auto", "connectivity": 18}
    if kind == "radiomics":
        # ``oncohybrid radiomics --patient ID --json``'s defaults (settings pet-suvbw).
        return {"settings": "pet-suvbw", "filter": None, "names": "ibsi"}
    if kind == "assess":
        from oncohybrid.services.assess import AssessParams, parse_criteria

        return {"criteria": parse_criteria(None), "assess_params": AssessParams().to_json()}
    if kind == "quantify":
        return {"method": "percist", "connectivity": 26, "min_volume_ml": 0.5,
                "background_corrected": False, "exclude_physiological": None,
                "allow_tracer_mismatch": False}
    raise InputError(f"batch kind {kind!r}: expected one of {', '.join(KINDS)}")


def _folder_hash(folder: Path) -> str:
    """SHA-256 over a folder's files (relative path and bytes, sorted by path)."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(params).encode()).hexdigest()


def input_hash(series_uids: Sequence[str], settings: Settings | None = None,
               record_of: str | None = None) -> str:
    """SHA-256 over the inputs' content identity: every instance of the series, as
    (Series Instance UID, (0008,0018) *SOP Instance UID*, stored file size), sorted.

    A SOP Instance UID names one content for ever (PS3.3 §C.12.1.1.1: changed pixel data
    or attributes that change meaning need a new UID), so a changed, added or removed
    image changes the hash without re-reading every file's bytes at the driver
    (docs/scale.md: 3 TB for 10,000 patients).

    ``record_of`` (a Patient ID; ``radiomics``): the stored assessment is an input too —
    each record timepoint's mask SEG and the lesions in use on it are hashed as well.
    """
    with session_scope(settings) as s:
        rows = s.execute(
            sa.select(Series.series_instance_uid, Instance.sop_instance_uid,
                      Instance.file_size_bytes)
            .join(Instance, Instance.series_pk == Series.id)
            .where(Series.series_instance_uid.in_(list(series_uids)))
        ).all()
    h = hashlib.sha256()
    for se, sop, size in sorted((r[0], r[1], r[2] or 0) for r in rows):
        h.update(f"{se}\t{sop}\t{size}\n".encode())
    if record_of is not None:
        for line in _record_identity(record_of, settings):
            h.update(f"record\t{line}\n".encode())
    return h.hexdigest()


def _record_identity(patient_id: str, settings: Settings | None) -> list[str]:
    """What of the stored assessment the lesion masks depend on: per timepoint its mask
    SEG path, and the lesions in use with their segment numbers."""
    from oncohybrid.store.models_record import Lesion, Observation, Timepoint

    with session_scope(settings) as s:
        rows = s.execute(
            sa.select(Timepoint.tp_index, Timepoint.mask_seg_path, Lesion.key,
                      Observation.mask_segment_number, Observation.in_use,
                      Observation.present)
            .join(Patient, Timepoint.patient_pk == Patient.id)
            .outerjoin(Observation, Observation.timepoint_pk == Timepoint.id)
            .outerjoin(Lesion, Observation.lesion_pk == Lesion.id)
            .where(Patient.patient_id == patient_id)
        ).all()
    return sorted("\t".join(str(v) for v in r) for r in rows)


def resolve_patients(patients: Sequence[str] | None, cohort: str | None, all_patients: bool,
                     settings: Settings | None = None) -> list[str]:
    """The Patient IDs selected by exactly one of ``--patients``, ``--cohort``, ``--all``."""
    given = sum(x for x in (bool(patients), cohort is not None, all_patients))
    if given != 1:
        raise InputError("choose the patients with exactly one of --patients ID,…, "
                         "--cohort NAME or --all")
    if patients:
        ids = [p.strip() for p in patients if p.strip()]
        if not ids:
            raise InputError("--patients: no Patient ID given")
        return list(dict.fromkeys(ids))
    if cohort is not None:
        return _cohort_patients(cohort, settings)
    with session_scope(settings) as s:
        ids = list(s.scalars(sa.select(Patient.patient_id).order_by(Patient.patient_id)).all())
    if not ids:
        raise InputError("--all: the study database holds no patient (ingest studies first)")
    return list(dict.fromkeys(ids))


def _cohort_patients(name: str, settings: Settings | None) -> list[str]:
    """A saved research cohort's Patient IDs (services.research, issue #16)."""
    try:
        from oncohybrid.services import research  # type: ignore[attr-defined]
    except ImportError:
        research = None
    fn = getattr(research, "cohort_patient_ids", None)
    if fn is None:
        raise InputError(f"--cohort {name!r}: saved cohorts come with research studies, "
                         "which this installation does not have; use --patients or --all")
    ids = list(fn(settings, name))
    if not ids:
        raise InputError(f"--cohort {name!r}: the cohort has no patient")
    return ids


def _patient_series(patient_id: str, settings: Settings | None) -> list[tuple[str, str, str | None,
                                                                               str | None, str]]:
    """(series UID, modality, frame of reference, study date, study UID) of a patient."""
    with session_scope(settings) as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            sa.select(Series.series_instance_uid, Series.modality,
                      Series.frame_of_reference_uid, Study.study_date,
                      Study.study_instance_uid)
            .join(Study, Series.study_pk == Study.id)
            .join(Patient, Study.patient_pk == Patient.id)
            .where(Patient.patient_id == patient_id)
            .order_by(Study.study_date, Series.series_instance_uid)
        ).all()]


def units_for(kind: str, patient_ids: Sequence[str],
              settings: Settings | None = None) -> list[Unit]:
    """The units of work of ``kind`` for these patients, in patient then study order.

    ``assess`` and ``radiomics``: one unit per patient, its inputs every stored series of
    the patient (a patient with nothing stored is still a unit: its task fails with the
    reason). ``quantify`` and ``segment``: one unit per PET series with a CT sharing its
    Frame of Reference in the same study (the CT with most instances places the
    references), as ``assess`` pairs them; a patient without any PET series is one unit
    keyed by the Patient ID whose ``extra["missing"]`` says so (recorded ``failed``).
    """
    units: list[Unit] = []
    for pid in patient_ids:
        series = _patient_series(pid, settings)
        if kind in ("assess", "radiomics"):
            units.append(Unit(pid, pid, tuple(sorted(r[0] for r in series))))
            continue
        if not any(r[1] == "PT" for r in series):
            why = ("not in the study database" if not series else
                   f"no PET series stored (modalities: "
                   f"{', '.join(sorted({str(r[1]) for r in series}))})")
            units.append(Unit(pid, pid, (), {"missing": f"patient {pid}: {why}; "
                                                        f"nothing to {kind}"}))
            continue
        counts = _instance_counts([r[0] for r in series], settings)
        for se, modality, frame, _date, study in series:
            if modality != "PT":
                continue
            cts = sorted((r for r in series if r[1] == "CT" and r[4] == study
                          and r[2] is not None and r[2] == frame),
                         key=lambda r: (-counts.get(r[0], 0), r[0]))
            ct = cts[0][0] if cts else None
            units.append(Unit(se, pid, tuple(sorted(x for x in (se, ct) if x)),
                              {"ct_series_uid": ct}))
    return units


def _instance_counts(series_uids: Sequence[str], settings: Settings | None) -> dict[str, int]:
    if not series_uids:
        return {}
    with session_scope(settings) as s:
        return dict(s.execute(  # type: ignore[arg-type]
            sa.select(Series.series_instance_uid, sa.func.count(Instance.id))
            .join(Instance, Instance.series_pk == Series.id)
            .where(Series.series_instance_uid.in_(list(series_uids)))
            .group_by(Series.series_instance_uid)
        ).all())


# ---------------------------------------------------------------------------------------
# The unit of work (runs on a worker)
# ---------------------------------------------------------------------------------------


def _series_source(series_uid: str, settings: Settings) -> str | list[str]:
    """The series' folder when it holds exactly the series' files, else the file list."""
    from oncohybrid.store.queries import series_files

    files = series_files(series_uid, settings)
    parents = {f.parent for f in files}
    if len(parents) == 1:
        folder = next(iter(parents))
        on_disk = {p for p in folder.iterdir() if p.is_file()}
        if on_disk == set(files):
            return str(folder)
    return [str(f) for f in files]


def run_unit(kind: str, unit_key: str, patient_id: str, params: dict[str, Any],
             extra: dict[str, Any], settings: Settings, task_pk: int = 0) -> dict[str, Any]:
    """The single-unit command's JSON for one unit: what ``oncohybrid assess PATIENT_ID
    --json``, ``oncohybrid quantify PET --ct CT --json``, ``oncohybrid radiomics --patient
    ID --json`` or ``oncohybrid segment PET --ct CT --model DIR --json`` prints (segment:
    the DICOM SEG is written to ``derived/batch/segment/task-<task_pk>.dcm`` by atomic
    rename and ``seg_file`` names it)."""
    if extra.get("missing"):
        raise InputError(str(extra["missing"]))
    if kind == "radiomics":
        from oncohybrid.services import radiomics as rad

        rows, _notes = rad.radiomics_of_patient(patient_id, rad.PET_SUV_SETTINGS, settings,
                                                filter_id=params.get("filter"))
        return json.loads(json.dumps(rows, allow_nan=True))
    if kind == "segment":
        from oncohybrid.services.segment import segment_study

        ct_uid = extra.get("ct_series_uid")
        final = settings.derived_dir / "batch" / "segment" / f"task-{task_pk}.dcm"
        partial = final.with_name(f".task-{task_pk}.{os.getpid()}.partial.dcm")
        doc = segment_study(
            _series_source(unit_key, settings), params["model"], partial,  # type: ignore[arg-type]
            ct_dir=None if ct_uid is None else _series_source(ct_uid, settings),  # type: ignore[arg-type]
            device=params["device"], connectivity=params["connectivity"])
        os.replace(partial, final)
        doc["seg_file"] = str(final)
        return json.loads(json.dumps(doc))
    if kind == "assess":
        from oncohybrid.services.assess import assess_patient

        # One thread per task: the cluster's workers are the parallelism.
        result = assess_patient(patient_id, criteria=params["criteria"], settings=settings,
                                workers=1)
        return result.to_json()
    if kind == "quantify":
        from oncohybrid.services.quantify import quantify_pet

        ct_uid = extra.get("ct_series_uid")
        q = quantify_pet(
            _series_source(unit_key, settings),  # type: ignore[arg-type]
            ct_source=None if ct_uid is None else _series_source(ct_uid, settings),  # type: ignore[arg-type]
            method=params["method"], connectivity=params["connectivity"],
            min_volume_ml=params["min_volume_ml"],
            background_corrected=params["background_corrected"],
            exclude_physiological=params["exclude_physiological"],
            allow_tracer_mismatch=params["allow_tracer_mismatch"],
        )
        doc = q.to_json()
        doc["seg_file"] = None
        return doc
    raise InputError(f"batch kind {kind!r}: expected one of {', '.join(KINDS)}")


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never a
    part (write a sibling, fsync, rename: POSIX rename(2) is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def execute_task(task_pk: int, home: str, database_url: str, max_attempts: int) -> str:
    """Run one recorded task on this worker; returns its final status.

    Records the attempt (``running``, ``attempts + 1``, worker) first; then the result in
    the file store and, in one transaction, ``done`` with the result JSON. On an error the
    task is ``queued`` again while attempts remain (``attempts < max_attempts``) or
    ``failed``, and the error is re-raised so that Dask's ``retries`` run it again.
    """
    settings = Settings(home=Path(home), database_url=database_url)
    with session_scope(settings) as s:
        task = s.get(BatchTask, task_pk)
        if task is None:
            raise StoreError(f"batch task {task_pk}: not in the database")
        run = s.get(BatchRun, task.run_pk)
        if run is not None and run.cancel_requested:
            task.status = "cancelled"
            task.finished_at = _utcnow()
            return "cancelled"
        task.status = "running"
        task.attempts += 1
        task.started_at = _utcnow()
        task.worker = _worker_name()
        task.error = None
        kind, key, pid = task.kind, task.unit_key, task.patient_id
        params, extra = dict(task.params.get("params", {})), dict(task.params.get("unit", {}))
        attempt = task.attempts
    t0 = time.perf_counter()
    try:
        result = run_unit(kind, key, pid, params, extra, settings, task_pk)
        text = json.dumps(result, ensure_ascii=False)
        rel = Path("batch") / kind / f"task-{task_pk}.json"
        _write_atomically(settings.derived_dir / rel, text)
    except Exception as exc:
        seconds = time.perf_counter() - t0
        with session_scope(settings) as s:
            task = s.get(BatchTask, task_pk)
            if task is not None:
                task.status = "queued" if attempt < max_attempts else "failed"
                task.error = f"{type(exc).__name__}: {exc}"
                task.seconds = seconds
                task.finished_at = _utcnow()
        raise
    seconds = time.perf_counter() - t0
    with session_scope(settings) as s:
        task = s.get(BatchTask, task_pk)
        if task is None:
            raise StoreError(f"batch task {task_pk}: removed while it ran")
        task.status = "done"
        task.result_json = text
        task.result_location = rel.as_posix()
        task.seconds = seconds
        task.finished_at = _utcnow()
    return "done"


# ---------------------------------------------------------------------------------------
# The run (driver)
# ---------------------------------------------------------------------------------------


@dataclass
class TaskReport:
    """One line of ``batch --json``'s ``tasks``."""

    task_pk: int
    unit_key: str
    patient_id: str
    status: str
    attempts: int
    seconds: float
    result: dict[str, Any] | None
    error: str | None = None

    def to_json(self, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {"patient_id": self.patient_id, "status": self.status,
                               "attempts": self.attempts, "seconds": self.seconds,
                               "result": self.result}
        if kind in PET_KINDS:
            out["unit"] = self.unit_key
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class BatchReport:
    """What ``oncohybrid batch … --json`` prints (``to_json``)."""

    run_pk: int
    kind: str
    tasks: list[TaskReport]
    wall_s: float
    cluster: str

    def summary(self) -> dict[str, int]:
        out = {"done": 0, "failed": 0, "skipped": 0}
        for t in self.tasks:
            if t.status in out:
                out[t.status] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"tasks": [t.to_json(self.kind) for t in self.tasks], "summary": self.summary()}


def check_backend(settings: Settings, workers: int, scheduler: str | None) -> None:
    """Multi-worker and remote-cluster runs need a database with concurrent writers."""
    if (workers > 1 or scheduler) and settings.database_url.startswith("sqlite"):
        where = f"--scheduler {scheduler}" if scheduler else f"--workers {workers}"
        raise InputError(
            f"{where}: SQLite refuses concurrent writers; set {DATABASE_ENV} to a PostgreSQL "
            "database (postgresql+psycopg://user@host/db) shared by every worker, or run "
            "with --workers 1")


def create_run(kind: str, patient_ids: Sequence[str], *, retries: int, cluster: str,
               settings: Settings, options: dict[str, Any] | None = None) -> int:
    """Record the run and one task per unit; units already done with the same inputs,
    parameters and version are recorded ``skipped`` (pointing at the done task); a unit
    with nothing to compute on (``extra["missing"]``) is recorded ``failed`` with the
    reason, without an attempt. ``retries`` is K, the attempts a task may have in all."""
    params = params_for(kind, options)
    p_hash = params_hash(params)
    units = units_for(kind, patient_ids, settings)
    hashes = [input_hash(u.series_uids, settings,
                         record_of=u.patient_id if kind == "radiomics" else None)
              for u in units]
    with session_scope(settings) as s:
        run = BatchRun(kind=kind, status="running", cancel_requested=False,
                       params={"params": params, "patients": list(patient_ids)},
                       cluster=cluster, retries=retries, host=socket.gethostname(),
                       pid=os.getpid(), created_at=_utcnow())
        s.add(run)
        s.flush()
        for k, (u, h) in enumerate(zip(units, hashes, strict=True)):
            missing = u.extra.get("missing")
            if missing:
                s.add(BatchTask(
                    run_pk=run.id, position=k, kind=kind, unit_key=u.key,
                    patient_id=u.patient_id, input_hash=h, params_hash=p_hash,
                    params={"params": params, "unit": u.extra},
                    software_version=__version__, status="failed", attempts=0,
                    queued_at=_utcnow(), finished_at=_utcnow(), seconds=0.0,
                    error=f"InputError: {missing}"))
                continue
            done = s.scalar(
                sa.select(BatchTask.id).where(
                    BatchTask.kind == kind, BatchTask.unit_key == u.key,
                    BatchTask.input_hash == h, BatchTask.params_hash == p_hash,
                    BatchTask.software_version == __version__, BatchTask.status == "done",
                ).order_by(BatchTask.id.desc()).limit(1))
            s.add(BatchTask(
                run_pk=run.id, position=k, kind=kind, unit_key=u.key, patient_id=u.patient_id,
                input_hash=h, params_hash=p_hash,
                params={"params": params, "unit": u.extra},
                software_version=__version__, status="skipped" if done else "queued",
                attempts=0, queued_at=_utcnow(), reused_task_pk=done,
                seconds=0.0 if done else None))
        return run.id


def pending_tasks(run_pk: int, settings: Settings) -> list[int]:
    with session_scope(settings) as s:
        return list(s.scalars(sa.select(BatchTask.id).where(
            BatchTask.run_pk == run_pk, BatchTask.status == "queued")
            .order_by(BatchTask.position)).all())


def _run_serial(tasks: Sequence[int], settings: Settings, max_attempts: int,
                on_done: Callable[[int, str], None]) -> None:
    for pk in tasks:
        status = "failed"
        for _attempt in range(max_attempts):
            try:
                status = execute_task(pk, str(settings.home), settings.database_url,
                                      max_attempts)
                break
            except Exception:  # noqa: BLE001 - recorded on the task; retried
                continue
        on_done(pk, status)


def local_cluster(workers: int, *, threads_per_worker: int = 1,
                  memory_limit: str | None = None, resources: dict[str, float] | None = None
                  ) -> Any:
    """A Dask ``LocalCluster`` of ``workers`` processes bound to 127.0.0.1 (scheduler,
    workers and the dashboard when bokeh is installed; otherwise no dashboard)."""
    from distributed import LocalCluster

    try:
        import bokeh  # noqa: F401

        dashboard: str | None = f"{LOOPBACK}:0"
    except ImportError:
        dashboard = None
    return LocalCluster(
        n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
        host=LOOPBACK, scheduler_port=0, dashboard_address=dashboard,
        worker_dashboard_address=None,
        memory_limit=memory_limit or os.environ.get(WORKER_MEMORY_ENV, DEFAULT_WORKER_MEMORY),
        resources=resources,
    )


def gpu_workers(client: Any) -> list[str]:
    """Addresses of the cluster's workers that advertise the ``GPU`` resource (started
    with ``dask worker … --resources GPU=1``)."""
    workers = client.scheduler_info().get("workers", {})
    return sorted(addr for addr, w in workers.items()
                  if float((w.get("resources") or {}).get(GPU_RESOURCE, 0)) >= 1)


def _run_dask(run_pk: int, tasks: Sequence[int], settings: Settings, max_attempts: int,
              workers: int, scheduler: str | None,
              on_done: Callable[[int, str], None], gpu: bool = False) -> None:
    from distributed import Client, as_completed

    if not tasks:
        return
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler, timeout="30s"))
            if gpu and not gpu_workers(client):
                raise InputError(
                    f"--gpu: no worker of {scheduler} advertises the {GPU_RESOURCE} resource; "
                    f"start GPU workers with 'dask worker {scheduler} --resources "
                    f"{GPU_RESOURCE}=1 --nthreads 1'")
        else:
            # --gpu on a local cluster: this machine's GPU, one task at a time per worker.
            cluster = stack.enter_context(local_cluster(
                workers, resources={GPU_RESOURCE: 1} if gpu else None))
            client = stack.enter_context(Client(cluster))
        # Dask's ``retries`` are the attempts after the first: K attempts in all.
        futures = {
            client.submit(execute_task, pk, str(settings.home), settings.database_url,
                          max_attempts, key=f"oncohybrid-batch-{run_pk}-{pk}", pure=False,
                          retries=max_attempts - 1,
                          resources={GPU_RESOURCE: 1} if gpu else None): pk
            for pk in tasks
        }
        for fut in as_completed(list(futures)):
            pk = futures[fut]
            try:
                status = fut.result()
            except Exception as exc:  # noqa: BLE001 - recorded below / on the task
                status = "failed"
                _mark_failed_if_unfinished(pk, exc, settings)
            on_done(pk, status)


def _mark_failed_if_unfinished(task_pk: int, exc: BaseException, settings: Settings) -> None:
    """After Dask gave up on a task (its last retry failed, or its workers kept dying:
    ``KilledWorker``), record it ``failed`` unless a worker recorded it done."""
    with session_scope(settings) as s:
        task = s.get(BatchTask, task_pk)
        if task is None or task.status == "done":
            return
        task.status = "failed"
        if task.error is None or type(exc).__name__ == "KilledWorker":
            task.error = f"{type(exc).__name__}: {exc}"
        task.finished_at = task.finished_at or _utcnow()


def collect(run_pk: int, settings: Settings, wall_s: float) -> BatchReport:
    """The run's tasks as stored, results parsed from the stored JSON text (a skipped task
    shows the stored result of the done task it reuses)."""
    with session_scope(settings) as s:
        run = s.get(BatchRun, run_pk)
        if run is None:
            raise StoreError(f"batch run {run_pk}: not in the database")
        rows = s.scalars(sa.select(BatchTask).where(BatchTask.run_pk == run_pk)
                         .order_by(BatchTask.position)).all()
        reused = {r.reused_task_pk for r in rows if r.reused_task_pk is not None}
        texts = dict(s.execute(sa.select(BatchTask.id, BatchTask.result_json)
                               .where(BatchTask.id.in_(reused))).all()) if reused else {}
        tasks = []
        for r in rows:
            text = r.result_json if r.status == "done" else (
                texts.get(r.reused_task_pk) if r.status == "skipped" else None)
            tasks.append(TaskReport(
                task_pk=r.id, unit_key=r.unit_key, patient_id=r.patient_id, status=r.status,
                attempts=r.attempts, seconds=round(float(r.seconds or 0.0), 3),
                result=None if text is None else json.loads(text),
                error=r.error if r.status == "failed" else None))
        return BatchReport(run_pk=run.id, kind=run.kind, tasks=tasks, wall_s=wall_s,
                           cluster=run.cluster or "")


def run_batch(kind: str, patient_ids: Sequence[str], *, workers: int = 0,
              scheduler: str | None = None, retries: int = 1,
              settings: Settings | None = None,
              progress: Callable[[int, int, str], None] | None = None,
              options: dict[str, Any] | None = None, gpu: bool = False) -> BatchReport:
    """Process ``patient_ids`` as a batch of ``kind`` (module docstring).

    ``workers``: 0 runs the tasks one after the other in this process; N ≥ 1 starts a local
    Dask cluster of N single-threaded worker processes on 127.0.0.1; ``scheduler`` (a
    ``tcp://HOST:PORT`` address) runs them on that cluster instead. ``retries`` is K, the
    number of attempts a task may have **in all** (``--retries K``; 1 = no retry): a task
    that always fails is reported ``failed`` with ``attempts == K``. ``options``:
    kind-specific (``segment``: ``{"model": DIR}``). ``gpu`` (``segment`` only): tasks are
    submitted with ``resources={"GPU": 1}``, so Dask runs them only on workers started with
    ``--resources GPU=1`` (a local cluster's workers are tagged so).
    ``progress(finished, total, status)`` is called as tasks finish.
    """
    if kind not in KINDS:
        raise InputError(f"batch kind {kind!r}: expected one of {', '.join(KINDS)}")
    if workers < 0:
        raise InputError(f"--workers {workers}: expected 0 (serial) or more")
    if retries < 1:
        raise InputError(f"--retries {retries}: K is the number of attempts of a task in "
                         "all (1 = no retry); expected 1 or more")
    if gpu and kind != "segment":
        raise InputError(f"--gpu: only segment tasks run on GPU workers, not {kind}")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://")):
        raise InputError(f"--scheduler {scheduler!r}: expected tcp://HOST:PORT")
    settings = settings or get_settings()
    check_backend(settings, workers, scheduler)
    cluster = scheduler or (f"local:{workers}" if workers else "serial")
    t0 = time.perf_counter()
    run_pk = create_run(kind, patient_ids, retries=retries, cluster=cluster, settings=settings,
                        options=options)
    tasks = pending_tasks(run_pk, settings)
    total = len(tasks)
    finished = 0
    report = progress or (lambda _f, _t, _s: None)
    report(0, total, "")

    def on_done(_pk: int, status: str) -> None:
        nonlocal finished
        finished += 1
        report(finished, total, status)

    try:
        if workers == 0 and scheduler is None:
            _run_serial(tasks, settings, retries, on_done)
        else:
            _run_dask(run_pk, tasks, settings, retries, workers, scheduler, on_done, gpu)
    except BaseException as exc:
        # The driver stopped (cluster unreachable, no GPU worker, interrupted): tasks it
        # never handed out are not left ``queued`` for ever on the batch page.
        _stop_queued(run_pk, f"{type(exc).__name__}: {exc}", settings)
        raise
    finally:
        with session_scope(settings) as s:
            run = s.get(BatchRun, run_pk)
            if run is not None:
                run.status = "cancelled" if run.cancel_requested else "finished"
                run.finished_at = _utcnow()
    return collect(run_pk, settings, time.perf_counter() - t0)


def _stop_queued(run_pk: int, reason: str, settings: Settings) -> None:
    with contextlib.suppress(Exception), session_scope(settings) as s:
        for task in s.scalars(sa.select(BatchTask).where(
                BatchTask.run_pk == run_pk, BatchTask.status == "queued")).all():
            task.status = "cancelled"
            task.error = f"the batch stopped before this task ran: {reason}"[:2000]
            task.finished_at = _utcnow()


# ---------------------------------------------------------------------------------------
# Progress for the web page
# ---------------------------------------------------------------------------------------


def list_runs(settings: Settings | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent runs, newest first, with per-status counts, throughput and ETA."""
    with session_scope(settings) as s:
        runs = s.scalars(sa.select(BatchRun).order_by(BatchRun.id.desc()).limit(limit)).all()
        return [_run_summary(s, r) for r in runs]


def run_detail(run_pk: int, settings: Settings | None = None) -> dict[str, Any]:
    """One run: its summary and its tasks (no results)."""
    with session_scope(settings) as s:
        run = s.get(BatchRun, run_pk)
        if run is None:
            raise StoreError(f"batch run {run_pk}: not in the database")
        out = _run_summary(s, run)
        out["tasks"] = [
            {"id": t.id, "unit": t.unit_key, "patient_id": t.patient_id, "status": t.status,
             "attempts": t.attempts, "seconds": t.seconds, "worker": t.worker,
             "error": t.error}
            for t in s.scalars(sa.select(BatchTask).where(BatchTask.run_pk == run_pk)
                               .order_by(BatchTask.position)).all()
        ]
        return out


def _run_summary(s: Any, run: BatchRun) -> dict[str, Any]:
    counts = {k: 0 for k in ("queued", "running", "done", "failed", "skipped", "cancelled")}
    for status, n in s.execute(sa.select(BatchTask.status, sa.func.count())
                               .where(BatchTask.run_pk == run.id)
                               .group_by(BatchTask.status)).all():
        counts[status] = counts.get(status, 0) + n
    created = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=dt.UTC)
    end = run.finished_at or _utcnow()
    if end.tzinfo is None:
        end = end.replace(tzinfo=dt.UTC)
    elapsed = max((end - created).total_seconds(), 1e-9)
    finished = counts["done"] + counts["failed"]
    per_hour = finished / elapsed * 3600.0 if finished else None
    left = counts["queued"] + counts["running"]
    eta_s = (left / (finished / elapsed)) if finished and left and run.status == "running" \
        else None
    return {"id": run.id, "kind": run.kind, "status": run.status, "cluster": run.cluster,
            "created_at": created.isoformat(), "counts": counts,
            "tasks_per_hour": per_hour, "eta_s": eta_s,
            "cancel_requested": bool(run.cancel_requested)}


def cancel_run(run_pk: int, settings: Settings | None = None) -> dict[str, Any]:
    """Ask a running batch to stop: tasks not yet started are ``cancelled`` when a worker
    picks them up; running tasks finish. Returns the run's summary (counts before the
    workers see the request). A finished run cannot be cancelled (:class:`InputError`)."""
    with session_scope(settings) as s:
        run = s.get(BatchRun, run_pk)
        if run is None:
            raise StoreError(f"batch run {run_pk}: not in the database")
        if run.status != "running":
            raise InputError(f"batch run {run_pk} is {run.status}: nothing to cancel")
        run.cancel_requested = True
        s.flush()
        return _run_summary(s, run)
