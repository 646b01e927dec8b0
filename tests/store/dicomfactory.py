"""Small synthetic DICOM files for the storage tests (CT and PET, a few patients).

Built with pydicom only, so the tests do not depend on the phantom generator.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

ROOT = "1.2.826.0.1.3680043.10.1087."  # test prefix


def uid() -> str:
    return generate_uid(prefix=ROOT)


@dataclass
class SeriesSpec:
    modality: str  # "CT" | "PT"
    n_slices: int
    series_uid: str = field(default_factory=uid)
    frame_uid: str = field(default_factory=uid)
    description: str = ""
    manufacturer: str = "SIEMENS"
    rows: int = 8


@dataclass
class StudySpec:
    patient_id: str
    patient_name: str
    study_date: str  # YYYYMMDD
    series: list[SeriesSpec]
    study_uid: str = field(default_factory=uid)
    description: str = "PET-CT whole body"
    sex: str = "F"
    birth_date: str = "19600101"


def make_instance(study: StudySpec, series: SeriesSpec, index: int) -> Dataset:
    """One single-slice CT or PET image with the modules an indexer reads."""
    pet = series.modality == "PT"
    ds = Dataset()
    ds.SOPClassUID = PositronEmissionTomographyImageStorage if pet else CTImageStorage
    ds.SOPInstanceUID = uid()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDate = study.study_date
    ds.SeriesDate = study.study_date
    ds.StudyTime = "101500"
    ds.SeriesTime = "102000"
    ds.AccessionNumber = "ACC" + study.patient_id
    ds.Modality = series.modality
    ds.Manufacturer = series.manufacturer
    ds.ManufacturerModelName = "Biograph"
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description or ("PET WB" if pet else "CT WB")
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.BodyPartExamined = "WHOLEBODY"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 2 if pet else 1
    ds.InstanceNumber = index + 1
    ds.FrameOfReferenceUID = series.frame_uid
    ds.ImagePositionPatient = [-100.0, -100.0, -float(index) * 3.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [4.0, 4.0]
    ds.SliceThickness = 3.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = series.rows
    ds.Columns = series.rows
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = 1.0
    ds.RescaleIntercept = 0.0 if pet else -1024.0
    if pet:
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        info = Dataset()
        info.Radiopharmaceutical = "Fluorodeoxyglucose"
        info.RadionuclideTotalDose = 350e6
        info.RadionuclideHalfLife = 6586.2
        info.RadiopharmaceuticalStartTime = "091500"
        ds.RadiopharmaceuticalInformationSequence = [info]
    pixels = (np.arange(series.rows * series.rows, dtype=np.uint16) + index).reshape(
        series.rows, series.rows
    )
    ds.PixelData = pixels.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    dcmwrite(path, ds, enforce_file_format=True)
    return path


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def raw_bytes(ds: Dataset) -> bytes:
    """The dataset alone, implicit VR little endian, without preamble or file meta."""
    buf = io.BytesIO()
    del ds.file_meta
    dcmwrite(buf, ds, implicit_vr=True, little_endian=True)
    return buf.getvalue()


@dataclass
class Cohort:
    """What was written: every valid instance and every bad file with its defect."""

    root: Path
    studies: list[StudySpec]
    valid: dict[str, Path] = field(default_factory=dict)  # SOP UID -> file (or zip)
    bad: dict[str, str] = field(default_factory=dict)  # path -> defect
    zip_members: dict[str, str] = field(default_factory=dict)  # SOP UID -> 'zip!member'
    raw_valid: dict[str, Path] = field(default_factory=dict)  # bare datasets (no DICM)

    @property
    def n_valid(self) -> int:
        return len(self.valid)


def default_studies() -> list[StudySpec]:
    """3 patients, 4 studies, 8 series (CT + PET per study), 3-4 slices each."""
    return [
        StudySpec("PAT001", "Doe^Jane", "20240105", [SeriesSpec("CT", 4), SeriesSpec("PT", 3)]),
        StudySpec("PAT001", "Doe^Jane", "20240410", [SeriesSpec("CT", 3), SeriesSpec("PT", 3)]),
        StudySpec(
            "PAT002",
            "Roe^Rich",
            "20240220",
            [
                SeriesSpec("CT", 3, manufacturer="GE MEDICAL SYSTEMS"),
                SeriesSpec("PT", 4, manufacturer="GE MEDICAL SYSTEMS"),
            ],
            sex="M",
        ),
        StudySpec("PAT003", "Poe^Ann", "20231130", [SeriesSpec("CT", 3), SeriesSpec("PT", 3)]),
    ]


def build_cohort(root: Path, *, junk: bool = True) -> Cohort:
    """Write the default studies under ``root/good`` (+ junk and a zip under ``root/junk``)."""
    studies = default_studies()
    cohort = Cohort(root, studies)
    for st in studies:
        for se in st.series:
            for i in range(se.n_slices):
                ds = make_instance(st, se, i)
                p = write(
                    ds, root / "good" / st.patient_id / st.study_date / se.modality / f"{i:03d}.dcm"
                )
                cohort.valid[ds.SOPInstanceUID] = p
    if not junk:
        return cohort
    j = root / "junk"
    j.mkdir(parents=True, exist_ok=True)
    extra_study = StudySpec("PAT004", "Zip^Zed", "20240301", [SeriesSpec("PT", 3)])
    cohort.studies.append(extra_study)
    # 1. plain text
    (j / "notes.txt").write_text("This is not DICOM.\n" * 20)
    cohort.bad[str(j / "notes.txt")] = "text"
    # 2. truncated: pixel data cut short
    ds = make_instance(extra_study, extra_study.series[0], 10)
    data = to_bytes(ds)
    (j / "truncated.dcm").write_bytes(data[:-40])
    cohort.bad[str(j / "truncated.dcm")] = "truncated"
    # 2b. truncated exactly at the start of the Pixel Data element (a clean boundary)
    ds = make_instance(extra_study, extra_study.series[0], 14)
    data = to_bytes(ds)
    (j / "cut_at_pixels.dcm").write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00")])
    cohort.bad[str(j / "cut_at_pixels.dcm")] = "truncated before pixel data"
    # 3. header-stripped garbage: the first 300 bytes (preamble, meta, start) cut off
    ds = make_instance(extra_study, extra_study.series[0], 11)
    (j / "headless.dcm").write_bytes(to_bytes(ds)[300:])
    cohort.bad[str(j / "headless.dcm")] = "header cut off"
    # 4. missing SOP Instance UID
    ds = make_instance(extra_study, extra_study.series[0], 12)
    del ds.SOPInstanceUID
    write(ds, j / "no_sop_uid.dcm")
    cohort.bad[str(j / "no_sop_uid.dcm")] = "missing SOPInstanceUID"
    # 5. a legitimate bare dataset (no preamble/DICM, implicit VR): ingested
    ds = make_instance(extra_study, extra_study.series[0], 13)
    (j / "raw_implicit.dcm").write_bytes(raw_bytes(ds))
    cohort.valid[ds.SOPInstanceUID] = j / "raw_implicit.dcm"
    cohort.raw_valid[ds.SOPInstanceUID] = j / "raw_implicit.dcm"
    # 6. a zip with valid files (and one junk member)
    zpath = j / "archive.zip"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            ds = make_instance(extra_study, extra_study.series[0], i)
            name = f"PT/{i:03d}.dcm"
            zf.writestr(name, to_bytes(ds))
            cohort.valid[ds.SOPInstanceUID] = zpath
            cohort.zip_members[ds.SOPInstanceUID] = f"{zpath}!{name}"
        zf.writestr("README.txt", "zip junk member")
    cohort.bad[f"{zpath}!README.txt"] = "text in zip"
    return cohort


__all__ = [
    "Cohort",
    "ImplicitVRLittleEndian",
    "SeriesSpec",
    "StudySpec",
    "build_cohort",
    "make_instance",
    "raw_bytes",
    "to_bytes",
    "uid",
    "write",
]
