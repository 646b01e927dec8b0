"""Storage SCP throughput: our listener against DCMTK ``storescu`` → ``storescp``.

Both receivers get the same files from the same sender (DCMTK ``storescu``, one
process per association, ``--concurrency`` associations at once) on loopback, in the
same run. ``TCP_NODELAY=1`` is set for DCMTK, which otherwise leaves Nagle's algorithm
on and stalls on delayed ACKs; our listener disables Nagle itself. ``storescp`` runs
with ``--fork`` so it, too, serves the associations concurrently.

Printed: instances/s until every instance was acknowledged (received and spooled to
disk - the comparable work to ``storescp`` writing files) and until every instance was
also indexed in the database, and the ratios of both rates to DCMTK's (goal of #11:
indexed ≥ 0.5). Ours runs with ``--processes`` receiver processes (default 2, the
configuration the goal is measured on) and, for comparison, receiving in-process
(``oncohybrid listen``'s default). Each receiver: best of ``--rounds`` interleaved runs,
plus the ratio of each round's pair (DCMTK, then ours right after) and their median.

Both receivers create one file per instance, so the file system weighs on both: on a
virtual disk whose file creation cost varies (measured here from 20 to 600 µs of
kernel time per file) the ratio moves with it; ``--workdir /dev/shm`` compares the
receivers' own cost.

    .venv/bin/python benchmarks/pacs.py [--instances 2000] [--size 64] [--concurrency 3]
                                        [--processes 2] [--rounds 3] [--workdir DIR]

``--stream-seconds N`` measures something else: ``oncohybrid listen`` (a process of its
own, its default receiver processes) gets a steady stream for N seconds - every second
one new ``storescu`` association with ``--stream-rate`` fresh instances (new UIDs, the
same image), at most ``--concurrency`` associations in flight (a sender that waits for
acknowledgements falls behind; the rate it achieved is printed). Every
``--sample-seconds`` the spool's file count is printed; at the end its maximum, the
listener's statistics (delayed acknowledgements, A700 refusals) and whether the spool
stayed under the listener's bound (``--max-spooled``, plus one instance per
association in flight).

    .venv/bin/python benchmarks/pacs.py --stream-seconds 600 [--stream-rate 500]
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


def _template(size: int) -> tuple[bytes, bytes]:
    """One encoded PET instance whose SOP Instance UID is a fixed-width placeholder."""
    placeholder = "1.2.826.0.1.3680043.8.498." + "9" * 38  # 64 characters
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = PositronEmissionTomographyImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = placeholder
    ds.SOPClassUID, ds.SOPInstanceUID = PositronEmissionTomographyImageStorage, placeholder
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "STREAM01", "Bench^Stream", "PT"
    ds.StudyDate, ds.InstanceNumber = "20240101", 1
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.random.default_rng(0).integers(0, 30000, (size, size),
                                                      dtype=np.uint16).tobytes()
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue(), placeholder.encode()


def _count_spool(spool: Path) -> int:
    try:
        return sum(1 for e in os.scandir(spool) if e.name.endswith(".dcm"))
    except FileNotFoundError:
        return 0


def run_stream(args: argparse.Namespace) -> None:
    """Steady stream into ``oncohybrid listen``; the spool's size over time."""
    data, placeholder = _template(args.size)
    prefix = "1.2.826.0.1.3680043.8.498."
    with tempfile.TemporaryDirectory(prefix="oncohybrid-bench-stream-", dir=args.workdir) as tmp:
        root = Path(tmp)
        port = free_port()
        env = {**os.environ, "ONCOHYBRID_HOME": str(root / "home")}
        env.pop("ONCOHYBRID_DATABASE_URL", None)
        listen = [sys.executable, "-m", "oncohybrid.cli.main", "listen", "--port", str(port),
                  "--quiet-period", "5"]
        if args.max_spooled is not None:
            listen += ["--max-spooled", str(args.max_spooled)]
        log_path = root / "listen.log"  # a file, not a pipe nobody reads while it runs
        log_file = log_path.open("w")
        listener = subprocess.Popen(listen, env=env, stdout=subprocess.DEVNULL,
                                    stderr=log_file, text=True)
        spool = root / "home" / "spool" / f"listen-{port}"
        wait_port(port, 60)
        senders: list[subprocess.Popen[bytes]] = []
        samples: list[tuple[float, int]] = []
        sent = seq = 0
        start = time.monotonic()
        next_sample = start
        tick = 0
        try:
            while time.monotonic() - start < args.stream_seconds:
                senders = [p for p in senders if p.poll() is None]
                if len(senders) < args.concurrency:  # else the sender falls behind
                    batch = root / f"send{tick}"
                    batch.mkdir()
                    for _ in range(args.stream_rate):
                        seq += 1
                        uid = f"{prefix}9{seq:037d}".encode()  # PS3.5 9.1: no leading 0
                        (batch / f"{seq:09d}.dcm").write_bytes(data.replace(placeholder, uid))
                    senders.append(subprocess.Popen(
                        f"storescu -aec ONCOHYBRID +sd 127.0.0.1 {port} {batch} "
                        f"&& rm -rf {batch}", shell=True,
                        env={**os.environ, "TCP_NODELAY": "1"},
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                    sent += args.stream_rate
                tick += 1
                while time.monotonic() < start + tick:
                    if time.monotonic() >= next_sample:
                        t = round(time.monotonic() - start, 1)
                        samples.append((t, _count_spool(spool)))
                        print(f"t={t:7.1f}s spool={samples[-1][1]:6d} files "
                              f"load={os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
                        # from now: a loop that fell behind samples once, not in a burst
                        next_sample = time.monotonic() + args.sample_seconds
                    time.sleep(0.05)
            for p in senders:
                p.wait(timeout=600)
            elapsed = time.monotonic() - start
        finally:
            listener.terminate()
            listener.wait(timeout=600)
            log_file.close()
            err = log_path.read_text()
        # reported before the temporary folder (the whole store) is removed: that takes minutes
        stats: dict[str, int] = {}
        for line in err.splitlines():
            if line.startswith("stopped: {"):  # the CLI's last line: statistics as JSON
                stats = json.loads(line.split("stopped: ", 1)[1])
        problems = [ln for ln in err.splitlines() if " ERROR " in ln or "Traceback" in ln]
        if problems:
            print("\n".join(problems[:20]), file=sys.stderr)
        bound = args.max_spooled if args.max_spooled is not None else 2000
        peak = max((n for _t, n in samples), default=0)
        result = {
            "stream_seconds": args.stream_seconds,
            "requested_rate_per_s": args.stream_rate,
            "sent": sent,
            "achieved_send_rate_per_s": round(sent / elapsed, 1),
            "spool_samples": samples,
            "spool_max_files": peak,
            "spool_last_files": samples[-1][1] if samples else 0,
            "spool_bound": bound,
            "bounded": peak <= bound + 32 * 2 * args.concurrency,
            "listener_stats": stats,
            "cpus": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result, indent=1))


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
    ap.add_argument("--stream-seconds", type=float, default=0,
                    help="instead: a steady stream into `oncohybrid listen` for this long, "
                    "printing the spool size over time")
    ap.add_argument("--stream-rate", type=int, default=500,
                    help="instances per second of the stream (one association a second)")
    ap.add_argument("--sample-seconds", type=float, default=5.0)
    ap.add_argument("--max-spooled", type=int, default=None,
                    help="the listener's spool bound (default: its own)")
    args = ap.parse_args()
    if not (shutil.which("storescu") and shutil.which("storescp")):
        raise SystemExit("DCMTK storescu/storescp not found (Debian package dcmtk)")
    if args.stream_seconds:
        run_stream(args)
        return
    with tempfile.TemporaryDirectory(prefix="oncohybrid-bench-pacs-", dir=args.workdir) as tmp:
        root = Path(tmp)
        dirs = make_files(root / "files", args.instances, args.size, args.concurrency)
        # interleaved rounds: the machine (and its file system) may be shared, so besides
        # the best of each, every round's DCMTK run is paired with our run right after it
        dcmtk_s = acked_s = indexed_s = inproc_acked_s = inproc_indexed_s = float("inf")
        paired: list[float] = []
        paired_indexed: list[float] = []
        for k in range(args.rounds):
            d_s = run_dcmtk(dirs, root / f"dcmtk-out{k}", args.instances)
            a_s, i_s, _stats = run_ours(dirs, root / f"home{k}", args.instances, args.processes)
            paired.append(d_s / a_s)
            paired_indexed.append(d_s / i_s)
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
        "ratio_indexed_per_round": [round(r, 3) for r in paired_indexed],
        "ratio_indexed_median_of_rounds": round(statistics.median(paired_indexed), 3),
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
        f"{result['ratio_indexed_vs_dcmtk']:.2f} (indexed; median of rounds "
        f"{result['ratio_indexed_median_of_rounds']:.2f}); goal >= 0.5 indexed",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
