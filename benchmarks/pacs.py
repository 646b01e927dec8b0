"""Storage SCP throughput: our listener against DCMTK ``storescu`` → ``storescp``.

Both receivers get the same files from the same sender (DCMTK ``storescu``, one
process per association, ``--concurrency`` associations at once) on loopback, in the
same run. ``TCP_NODELAY=1`` is set for DCMTK, which otherwise leaves Nagle's algorithm
on and stalls on delayed ACKs; our listener disables Nagle itself. ``storescp`` runs
with ``--fork`` so it, too, serves the associations concurrently.

Printed: instances/s until every instance was acknowledged (received and spooled to
disk - the comparable work to ``storescp`` writing files) and until every instance was
also indexed in the database, and the ratio of our acknowledged rate to DCMTK's
(goal ≥ 0.5). Ours runs with ``--processes`` receiver processes (default 2, the
configuration the goal is measured on) and, for comparison, receiving in-process
(``oncohybrid listen``'s default). Each receiver: best of ``--rounds`` interleaved runs,
plus the ratio of each round's pair (DCMTK, then ours right after) and their median.

Both receivers create one file per instance, so the file system weighs on both: on a
virtual disk whose file creation cost varies (measured here from 20 to 600 µs of
kernel time per file) the ratio moves with it; ``--workdir /dev/shm`` compares the
receivers' own cost.

    .venv/bin/python benchmarks/pacs.py [--instances 2000] [--size 64] [--concurrency 3]
                                        [--processes 2] [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PositronEmissionTomographyImageStorage, generate_uid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_files(root: Path, n: int, size: int, folders: int) -> list[Path]:
    dirs = [root / f"assoc{k}" for k in range(folders)]
    for d in dirs:
        d.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    rng = np.random.default_rng(0)
    for i in range(n):
        uid = generate_uid()
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = PositronEmissionTomographyImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SOPClassUID = PositronEmissionTomographyImageStorage
        ds.SOPInstanceUID = uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName, ds.Modality = "BENCH01", "Bench^Pacs", "PT"
        ds.StudyDate, ds.InstanceNumber = "20240101", i + 1
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = rng.integers(0, 30000, (size, size), dtype=np.uint16).tobytes()
        ds.save_as(dirs[i % folders] / f"{i:06d}.dcm", enforce_file_format=True)
    return dirs


def send_all(port: int, dirs: list[Path]) -> float:
    env = {**os.environ, "TCP_NODELAY": "1"}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["storescu", "-aec", "ONCOHYBRID", "+sd", "127.0.0.1", str(port), str(d)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for d in dirs
    ]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        if p.returncode:
            raise SystemExit(f"storescu failed: {err.decode()[-500:]}")
    return time.perf_counter() - start


def wait_port(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def run_dcmtk(dirs: list[Path], out: Path, n: int) -> float:
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        ["storescp", "--fork", "-od", str(out), "-aet", "ONCOHYBRID", str(port)],
        env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        seconds = send_all(port, dirs)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    got = sum(1 for _ in out.iterdir())
    if got != n:
        raise SystemExit(f"storescp wrote {got} of {n} files")
    return seconds


def run_ours(
    dirs: list[Path], home: Path, n: int, processes: int = 0
) -> tuple[float, float, dict[str, int]]:
    from oncohybrid.config import get_settings
    from oncohybrid.pacs.scp import StorageListener
    from oncohybrid.services.ingest import Ingestor

    os.environ.pop("ONCOHYBRID_DATABASE_URL", None)
    settings = get_settings(home)
    listener = StorageListener(Ingestor(settings), spool_dir=home / "spool", port=free_port(),
                               receive_processes=processes)
    listener.start()
    try:
        start = time.perf_counter()
        acked_s = send_all(listener.port, dirs)
        if not listener.flush(600):
            raise SystemExit("indexing did not finish")
        indexed_s = time.perf_counter() - start
    finally:
        listener.stop()
    stats = listener.stats.as_dict()
    if stats["indexed_new"] != n:
        raise SystemExit(f"indexed {stats['indexed_new']} of {n}")
    return acked_s, indexed_s, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=2000)
    ap.add_argument("--size", type=int, default=64, help="rows = columns of each image")
    ap.add_argument("--concurrency", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="best of N runs of each receiver")
    ap.add_argument("--workdir", default=None,
                    help="where files are written (default: the system temp folder; a "
                    "tmpfs such as /dev/shm leaves the disk out of the comparison)")
    ap.add_argument("--processes", type=int, default=2,
                    help="receiver processes of our listener (0: receive in-process)")
    args = ap.parse_args()
    if not (shutil.which("storescu") and shutil.which("storescp")):
        raise SystemExit("DCMTK storescu/storescp not found (Debian package dcmtk)")
    with tempfile.TemporaryDirectory(prefix="oncohybrid-bench-pacs-", dir=args.workdir) as tmp:
        root = Path(tmp)
        dirs = make_files(root / "files", args.instances, args.size, args.concurrency)
        # interleaved rounds: the machine (and its file system) may be shared, so besides
        # the best of each, every round's DCMTK run is paired with our run right after it
        dcmtk_s = acked_s = indexed_s = inproc_acked_s = inproc_indexed_s = float("inf")
        paired: list[float] = []
        for k in range(args.rounds):
            d_s = run_dcmtk(dirs, root / f"dcmtk-out{k}", args.instances)
            a_s, i_s, _stats = run_ours(dirs, root / f"home{k}", args.instances, args.processes)
            paired.append(d_s / a_s)
            dcmtk_s, acked_s, indexed_s = min(dcmtk_s, d_s), min(acked_s, a_s), min(indexed_s, i_s)
            if args.processes:  # the in-process receiver, for comparison
                a_s, i_s, _stats = run_ours(dirs, root / f"home-inproc{k}", args.instances)
                inproc_acked_s = min(inproc_acked_s, a_s)
                inproc_indexed_s = min(inproc_indexed_s, i_s)
    n = args.instances
    result = {
        "instances": n,
        "image": f"{args.size}x{args.size} uint16",
        "associations": args.concurrency,
        "rounds": args.rounds,
        "dcmtk_storescp_per_s": round(n / dcmtk_s, 1),
        "ours_acknowledged_per_s": round(n / acked_s, 1),
        "ours_indexed_per_s": round(n / indexed_s, 1),
        "ratio_acknowledged_vs_dcmtk": round(dcmtk_s / acked_s, 3),
        "ratio_indexed_vs_dcmtk": round(dcmtk_s / indexed_s, 3),
        "ratio_acknowledged_per_round": [round(r, 3) for r in paired],
        "ratio_acknowledged_median_of_rounds": round(statistics.median(paired), 3),
        "receive_processes": args.processes,
        "goal_ratio": 0.5,
        **(
            {
                "in_process_acknowledged_per_s": round(n / inproc_acked_s, 1),
                "in_process_indexed_per_s": round(n / inproc_indexed_s, 1),
                "in_process_ratio_acknowledged_vs_dcmtk": round(dcmtk_s / inproc_acked_s, 3),
            }
            if args.processes
            else {}
        ),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "workdir": str(Path(args.workdir or tempfile.gettempdir()).resolve()),
    }
    print(json.dumps(result, indent=2))
    print(
        f"ratio ours/DCMTK: {result['ratio_acknowledged_vs_dcmtk']:.2f} (acknowledged), "
        f"{result['ratio_indexed_vs_dcmtk']:.2f} (indexed); goal >= 0.5",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
