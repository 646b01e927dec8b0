"""Ingest and PET volume-load benchmark (run: ``.venv/bin/python benchmarks/ingest.py``).

(a) ``oncohybrid ingest --in-place`` rate against a bare
    ``pydicom.dcmread(f, stop_before_pixels=True)`` loop over the same files
    (goal: ratio ≥ 0.8, issue #11), and the peak RSS of the ingest process (goal: < 500 MB
    for 20,000 files, flat in the number of files: printed for 1/4, 1/2 and all files).
    Each is measured in a fresh subprocess.
(b) PET volume load with ``oncohybrid.dicom.volume.load_series`` against SimpleITK's
    ``ImageSeriesReader`` on the same files (goal: time ratio ≤ 1.5) and the peak
    memory of the load against the float32 volume size (goal ≤ 2.5×, tracemalloc).

Options: ``--files N`` (default 2000; the issue's scale test is ``--files 20000``),
``--keep DIR`` to keep the generated files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

SLICES_PER_SERIES = 200
PET_MATRIX = 128
CT_MATRIX = 256


def _instance(pet: bool, study: dict, series_uid: str, frame_uid: str, i: int) -> Dataset:
    n = PET_MATRIX if pet else CT_MATRIX
    ds = Dataset()
    ds.SOPClassUID = PositronEmissionTomographyImageStorage if pet else CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = study["date"]
    ds.SeriesDate = study["date"]
    ds.StudyTime = "100000"
    ds.Modality = "PT" if pet else "CT"
    ds.Manufacturer = "SIEMENS"
    ds.StudyDescription = "PET-CT WB"
    ds.SeriesDescription = "PET AC" if pet else "CT WB"
    ds.PatientName = study["name"]
    ds.PatientID = study["pid"]
    ds.PatientSex = "F"
    ds.PatientBirthDate = "19600101"
    ds.BodyPartExamined = "WHOLEBODY"
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 2 if pet else 1
    ds.InstanceNumber = i + 1
    ds.FrameOfReferenceUID = frame_uid
    ds.ImagePositionPatient = [-300.0, -300.0, -float(i) * 3.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [4.0, 4.0] if pet else [2.0, 2.0]
    ds.SliceThickness = 3.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = n
    ds.Columns = n
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0 if pet else 1
    ds.RescaleSlope = 0.5 + (i % 7) * 0.1 if pet else 1.0
    ds.RescaleIntercept = 0.0 if pet else -1024.0
    if pet:
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        info = Dataset()
        info.Radiopharmaceutical = "Fluorodeoxyglucose"
        info.RadionuclideTotalDose = 350e6
        info.RadionuclideHalfLife = 6586.2
        info.RadiopharmaceuticalStartTime = "090000"
        ds.RadiopharmaceuticalInformationSequence = [info]
    rng = np.random.default_rng(i)
    dtype = np.uint16 if pet else np.int16
    ds.PixelData = rng.integers(0, 3000, size=(n, n), dtype=dtype).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def make_files(root: Path, n_files: int) -> tuple[list[Path], Path]:
    """Write ``n_files`` single-slice files: alternating PET and CT series of 200 slices.

    Returns every file and the folder of the first PET series.
    """
    files: list[Path] = []
    first_pet: Path | None = None
    k = 0
    while len(files) < n_files:
        pid = f"BENCH{k // 2:04d}"
        study = {"pid": pid, "name": f"Bench^{k // 2}", "date": "20240101", "uid": generate_uid()}
        for pet in (True, False):
            series_uid, frame_uid = generate_uid(), generate_uid()
            folder = root / pid / ("PT" if pet else "CT")
            folder.mkdir(parents=True, exist_ok=True)
            n = min(SLICES_PER_SERIES, n_files - len(files))
            for i in range(n):
                p = folder / f"{i:04d}.dcm"
                pydicom.dcmwrite(
                    p, _instance(pet, study, series_uid, frame_uid, i), enforce_file_format=True
                )
                files.append(p)
            if pet and first_pet is None:
                first_pet = folder
            if len(files) >= n_files:
                break
        k += 2
    assert first_pet is not None
    return files, first_pet


def bare_loop_s(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        pydicom.dcmread(f, stop_before_pixels=True)
    return time.perf_counter() - t0


_INGEST_CHILD = r"""
import contextlib, glob, io, json, os, resource, sys, time
import pydicom
from oncohybrid.cli.main import app
from oncohybrid.store.db import get_engine

roots, in_place = sys.argv[1].split(os.pathsep), sys.argv[2] == "1"
files = sorted(f for r in roots for f in glob.glob(os.path.join(r, "**", "*.dcm"), recursive=True))


def bare():
    w, c = time.perf_counter(), time.process_time()
    for f in files:
        pydicom.dcmread(f, stop_before_pixels=True)
    return time.perf_counter() - w, time.process_time() - c


get_engine()  # migrations are not part of the ingest time
runs = [bare(), bare()]
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
args = ["ingest", *roots, "--json"] + (["--in-place"] if in_place else [])
out = io.StringIO()
w, c = time.perf_counter(), time.process_time()
with contextlib.redirect_stdout(out):
    app(args, standalone_mode=False)  # exactly what `oncohybrid ingest` runs
wall, cpu = time.perf_counter() - w, time.process_time() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
runs.append(bare())
rep = json.loads(out.getvalue())
print(json.dumps({"elapsed_s": wall, "cpu_s": cpu, "new": rep["new"],
                  "bare_s": min(r[0] for r in runs), "bare_cpu_s": min(r[1] for r in runs),
                  "rss_before_mb": rss0 / 1024, "peak_rss_mb": peak / 1024}))
"""

_LOAD_CHILD = r"""
import json, sys, time, tracemalloc
from pathlib import Path
import numpy as np
files = sorted(str(p) for p in Path(sys.argv[1]).glob("*.dcm"))
mode = sys.argv[2]
if mode == "sitk":
    import SimpleITK as sitk
    def load():
        r = sitk.ImageSeriesReader()
        r.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(sys.argv[1]))
        img = r.Execute()
        return sitk.GetArrayViewFromImage(sitk.Cast(img, sitk.sitkFloat32))
else:
    from oncohybrid.dicom.volume import load_series
    def load():
        return load_series(files, dtype=np.float32).array
if mode == "memory":
    tracemalloc.start()
    arr = load()
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"peak_bytes": peak, "volume_bytes": int(arr.size * 4)}))
else:
    load()  # warm imports and page cache
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        load()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"elapsed_s": min(times)}))
"""


def _child(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_ingest(files: list[Path], root: Path, work: Path) -> None:
    print(f"(a) ingest of {len(files)} single-slice PET/CT files")
    print("    (bare loop timed in the same process just before and after each ingest)")
    bare_loop_s(files)  # warm the page cache
    for in_place in (True, False):
        # Best of two runs (one for copy), each into a fresh workspace: the machine is shared.
        runs = []
        for k in range(2 if in_place else 1):
            env = dict(os.environ)
            home = work / f"home-{'inplace' if in_place else 'copy'}-{k}"
            env["ONCOHYBRID_HOME"] = str(home)
            env.pop("ONCOHYBRID_DATABASE_URL", None)
            runs.append(_child(_INGEST_CHILD, str(root), "1" if in_place else "0", env=env))
            shutil.rmtree(home, ignore_errors=True)
        res = max(runs, key=lambda r: r["bare_s"] / r["elapsed_s"])
        assert res["new"] == len(files), res
        n = len(files)
        label = "--in-place" if in_place else "copy"
        print(
            f"    ingest {label}: {res['elapsed_s']:.2f} s = {n / res['elapsed_s']:.0f} files/s "
            f"(CPU {res['cpu_s']:.2f} s); bare loop {res['bare_s']:.2f} s = "
            f"{n / res['bare_s']:.0f} files/s (CPU {res['bare_cpu_s']:.2f} s)"
        )
        if in_place:
            print(
                f"      ratio ingest/bare rate: {res['bare_s'] / res['elapsed_s']:.2f}x wall, "
                f"{res['bare_cpu_s'] / res['cpu_s']:.2f}x CPU time (goal >= 0.8x, issue #11)"
            )
        print(
            f"      peak RSS {res['peak_rss_mb']:.0f} MB (process before ingest "
            f"{res['rss_before_mb']:.0f} MB; goal < 500 MB)"
        )
    # Memory flat in the number of files: in-place ingest of a growing share of the tree
    # (whole patient folders), each in a fresh process and workspace.
    patients = sorted(p for p in root.iterdir() if p.is_dir())
    print("    --in-place peak RSS growth over the RSS before ingest, by number of files:")
    for share in (4, 2, 1):
        part = patients[: max(1, len(patients) // share)]
        env = dict(os.environ)
        home = work / f"home-scale-{share}"
        env["ONCOHYBRID_HOME"] = str(home)
        env.pop("ONCOHYBRID_DATABASE_URL", None)
        res = _child(_INGEST_CHILD, os.pathsep.join(map(str, part)), "1", env=env)
        shutil.rmtree(home, ignore_errors=True)
        grow = res["peak_rss_mb"] - res["rss_before_mb"]
        print(
            f"      {res['new']:6d} files: peak RSS {res['peak_rss_mb']:.0f} MB, "
            f"+{grow:.0f} MB during ingest; ratio {res['bare_s'] / res['elapsed_s']:.2f}x wall"
        )


def bench_load(pet_dir: Path) -> None:
    n = len(list(pet_dir.glob("*.dcm")))
    print(f"(b) PET volume load: {n} slices of {PET_MATRIX}x{PET_MATRIX}")
    try:
        import oncohybrid.dicom.volume as volume  # noqa: F401

        getattr(volume, "load_series")  # noqa: B009
    except (ImportError, AttributeError):
        print("    skipped: oncohybrid.dicom.volume.load_series is not available yet")
        return
    ours = _child(_LOAD_CHILD, str(pet_dir), "ours")["elapsed_s"]
    sitk = _child(_LOAD_CHILD, str(pet_dir), "sitk")["elapsed_s"]
    print(
        f"    load_series {ours * 1000:.0f} ms, SimpleITK ImageSeriesReader {sitk * 1000:.0f} ms:"
        f" ratio {ours / sitk:.2f}x (goal <= 1.5x)"
    )
    mem = _child(_LOAD_CHILD, str(pet_dir), "memory")
    ratio = mem["peak_bytes"] / mem["volume_bytes"]
    print(
        f"    peak traced memory {mem['peak_bytes'] / 2**20:.1f} MiB for a "
        f"{mem['volume_bytes'] / 2**20:.1f} MiB float32 volume: {ratio:.2f}x (goal <= 2.5x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated files here")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    work = Path(tempfile.mkdtemp(prefix="oncohybrid-bench-ingest-"))
    root = args.keep or work / "dicom"
    try:
        t0 = time.perf_counter()
        files, pet_dir = make_files(root, args.files)
        print(f"generated {len(files)} files in {time.perf_counter() - t0:.1f} s")
        bench_ingest(files, root, work)
        bench_load(pet_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
