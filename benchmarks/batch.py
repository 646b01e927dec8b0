"""Benchmark: ``oncohybrid batch`` on a phantom cohort, 1 vs 2 local Dask workers (#17).

    .venv/bin/python benchmarks/batch.py                    # 20 patients x 2 timepoints, small
    .venv/bin/python benchmarks/batch.py --patients 4 --kind quantify

Generates and ingests the cohort into a temporary workspace on a PostgreSQL server started
for the run (the Debian binaries, as the test suite does: tests/pg_fixture.py; SQLite
refuses concurrent writers), then in the same run processes it with 1 worker and with 2
workers (the tasks of the first run are forgotten so the second computes again), and
prints per run the wall time, throughput (tasks/hour), the mean per-task seconds (worker
time) and the scaling efficiency ``(T1 / T2) / 2``. Checks that both runs stored identical
results. The per-task costs feed the 10,000-patient estimate in docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--timepoints", type=int, default=2)
    ap.add_argument("--kind", default="assess", choices=("assess", "quantify"))
    ap.add_argument("--size", default="small")
    args = ap.parse_args()

    from pg_fixture import PgServer, _pg_bindir

    bindir = _pg_bindir()
    if bindir is None:
        sys.exit("PostgreSQL server binaries (pg_ctl, initdb) not found")
    server = PgServer(bindir)
    server.start()
    try:
        os.environ["ONCOHYBRID_HOME"] = tempfile.mkdtemp(prefix="bench-batch-")
        os.environ["ONCOHYBRID_DATABASE_URL"] = server.create_database()
        run(args)
    finally:
        from oncohybrid.store.db import dispose_engines

        dispose_engines()
        server.stop()


def run(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    from oncohybrid import phantom
    from oncohybrid.services.batch import run_batch
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_batch import BatchTask

    data = Path(tempfile.mkdtemp(prefix="bench-batch-data-"))
    t0 = time.perf_counter()
    truth = phantom.generate_cohort(data, patients=args.patients, timepoints=args.timepoints,
                                    vendor="mixed", seed=7, size=args.size)
    t1 = time.perf_counter()
    with Ingestor() as ing:
        ing.ingest_paths([data])
    t2 = time.perf_counter()
    ids = [p["patient_id"] for p in truth["patients"]]
    print(f"cohort: {len(ids)} patients x {args.timepoints} timepoints ({args.size}); "
          f"generated {t1 - t0:.1f} s, ingested {t2 - t1:.1f} s; kind {args.kind}; "
          f"{os.cpu_count()} CPUs")
    results: dict[int, dict[str, str]] = {}
    walls: dict[int, float] = {}
    for workers in (1, 2):
        with session_scope() as s:
            s.execute(sa.delete(BatchTask))
        t = time.perf_counter()
        report = run_batch(args.kind, ids, workers=workers)
        walls[workers] = time.perf_counter() - t
        per_task = [x.seconds for x in report.tasks if x.status == "done"]
        results[workers] = {x.unit_key: json.dumps(x.result, sort_keys=True)
                            for x in report.tasks}
        n = len(report.tasks)
        print(f"workers {workers}: {n} tasks {report.summary()}, wall {walls[workers]:.1f} s, "
              f"throughput {n / walls[workers] * 3600:.0f} tasks/h, per task mean "
              f"{statistics.mean(per_task):.2f} s (median {statistics.median(per_task):.2f})")
    eff = walls[1] / walls[2] / 2
    print(f"speed-up 2 vs 1 worker: {walls[1] / walls[2]:.2f}x, scaling efficiency "
          f"{eff * 100:.0f}%")
    print(f"stored results identical across runs: {results[1] == results[2]}")


if __name__ == "__main__":
    main()
