"""Time compute_suv on a 400-slice PET header set (goal: well under 100 ms).

Run: ``.venv/bin/python benchmarks/suv_factors.py [--slices 400] [--repeat 5]``

Headers are written to a temporary directory and read back with
``pydicom.dcmread(stop_before_pixels=True)`` for every timing run, so the cost of the first
access to each (deferred-parsed) element is included, as in real use. Two series: Siemens-like
BQML and Philips CNTS (private factors resolved through the private creator per slice).

Baseline, measured in the same run: a straightforward per-slice implementation in the style
of calculate-suv/pysuv (keyword attribute access, ``datetime.strptime`` per slice, one factor
per slice, series vs acquisition rule only). The ratio printed is baseline / ours.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from oncohybrid.dicom.suv import compute_suv


def _write_series(folder: Path, n: int, units: str) -> None:
    folder.mkdir(parents=True)
    series_uid = generate_uid()
    for i in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series_uid
        ds.Modality = "PT"
        ds.Manufacturer = "Philips Medical Systems" if units == "CNTS" else "SIEMENS"
        ds.PatientName = "BENCH"
        ds.PatientWeight, ds.PatientSize, ds.PatientSex = "81.5", "1.78", "M"
        ds.SeriesDate = ds.AcquisitionDate = "20250101"
        ds.SeriesTime = "110000.000000"
        bed = i // 80  # five beds
        ds.AcquisitionTime = f"11{bed * 2:02d}00.000000"
        ds.FrameReferenceTime = str(150000 + bed * 120000)
        ds.ActualFrameDuration = "120000"
        ds.Units, ds.DecayCorrection = units, "START"
        ds.CorrectedImage = ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"]
        ds.RescaleSlope, ds.RescaleIntercept = f"{1.0 + i * 1e-3:.6f}", "0"
        ds.ImagePositionPatient = [0.0, 0.0, 2.0 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [4.0, 4.0]
        ds.DecayFactor = "1.1"
        item = Dataset()
        item.RadiopharmaceuticalStartDateTime = "20250101100000.000000"
        item.RadiopharmaceuticalStartTime = "100000.000000"
        item.RadionuclideTotalDose = "350000000"
        item.RadionuclideHalfLife = "6586.2"
        ds.RadiopharmaceuticalInformationSequence = Sequence([item])
        if units == "CNTS":
            block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
            block.add_new(0x00, "DS", "0.000412")
            block.add_new(0x09, "DS", "1.31")
        pydicom.dcmwrite(folder / f"{i:04d}.dcm", ds, enforce_file_format=True)


def _read(folder: Path) -> list[Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]


def _baseline(datasets: list[Dataset]) -> list[float]:
    """Per-slice QIBA 'happy path' as typical libraries write it."""
    out = []
    for ds in datasets:
        rp = ds.RadiopharmaceuticalInformationSequence[0]
        series = datetime.strptime(ds.SeriesDate + ds.SeriesTime.split(".")[0], "%Y%m%d%H%M%S")
        acq = datetime.strptime(ds.AcquisitionDate + ds.AcquisitionTime.split(".")[0],
                                "%Y%m%d%H%M%S")
        ref = series if series <= acq else acq
        inj = datetime.strptime(str(rp.RadiopharmaceuticalStartDateTime).split(".")[0],
                                "%Y%m%d%H%M%S")
        dt = (ref - inj).total_seconds()
        dose = float(rp.RadionuclideTotalDose) * math.exp(
            -math.log(2) * dt / float(rp.RadionuclideHalfLife))
        if ds.Units == "CNTS":
            block = ds.private_block(0x7053, "Philips PET Private Group")
            out.append(float(block[0x00].value))
        else:
            out.append(float(ds.PatientWeight) * 1000 / dose)
    return out


def _time(fn, folder: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of fn(datasets) over fresh reads, and over repeats on warm datasets."""
    fresh = []
    for _ in range(repeat):
        datasets = _read(folder)
        t0 = time.perf_counter()
        fn(datasets)
        fresh.append(time.perf_counter() - t0)
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(datasets)
        warm.append(time.perf_counter() - t0)
    return statistics.median(fresh), statistics.median(warm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for units in ("BQML", "CNTS"):
            folder = Path(tmp) / units
            _write_series(folder, args.slices, units)
            check = compute_suv(_read(folder))
            ours_fresh, ours_warm = _time(lambda d: compute_suv(d), folder, args.repeat)
            base_fresh, base_warm = _time(_baseline, folder, args.repeat)
            print(f"{units:5s} {args.slices} slices  compute_suv: {ours_fresh * 1e3:7.1f} ms "
                  f"(fresh datasets), {ours_warm * 1e3:6.1f} ms (warm) | baseline: "
                  f"{base_fresh * 1e3:7.1f} ms fresh, {base_warm * 1e3:6.1f} ms warm | "
                  f"ratio baseline/ours {base_fresh / ours_fresh:4.2f} (fresh) | "
                  f"SUVbw factor {check.factor():.6g} via {check.reference_time_source}")


if __name__ == "__main__":
    main()
