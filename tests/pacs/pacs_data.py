"""Small synthetic PET/CT studies for the PACS tests (pydicom only, no PHI).

Each instance has a distinct, seeded pixel pattern so that a retrieved copy can be
compared with its original; the headers carry what the index needs (patient, study,
series, modality, date, instance number).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)


def make_instance(
    *,
    study_uid: str,
    series_uid: str,
    modality: str,
    index: int,
    patient_id: str = "PACSTEST01",
    study_date: str = "20240315",
    size: int = 16,
    seed: int = 0,
) -> Dataset:
    sop_class = PositronEmissionTomographyImageStorage if modality == "PT" else CTImageStorage
    uid = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = generate_uid(prefix=None) if index < 0 else study_uid
    ds.PatientID = patient_id
    ds.PatientName = "Synthetic^Pacs"
    ds.PatientSex = "O"
    ds.PatientBirthDate = "19600101"
    ds.ReferringPhysicianName = ""
    ds.Manufacturer = "oncohybrid-test"
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC" + patient_id[-4:]
    ds.StudyDescription = "PET-CT synthetic"
    ds.Modality = modality
    ds.SeriesNumber = 1 if modality == "CT" else 2
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [0.0, 0.0, float(index) * 3.0]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [4.0, 4.0]
    ds.SliceThickness = 3.0
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = 1
    ds.RescaleIntercept = 0 if modality == "PT" else -1024
    if modality == "PT":
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["ATTN", "DECY"]
    rng = np.random.default_rng(seed * 100_003 + index)
    ds.PixelData = rng.integers(0, 4000, (size, size), dtype=np.uint16).tobytes()
    return ds


def make_study(
    *,
    n_ct: int = 3,
    n_pt: int = 3,
    patient_id: str = "PACSTEST01",
    study_date: str = "20240315",
    size: int = 16,
    seed: int = 0,
) -> list[Dataset]:
    study_uid = generate_uid()
    out = []
    for modality, n in (("CT", n_ct), ("PT", n_pt)):
        series_uid = generate_uid()
        out += [
            make_instance(
                study_uid=study_uid,
                series_uid=series_uid,
                modality=modality,
                index=i,
                patient_id=patient_id,
                study_date=study_date,
                size=size,
                seed=seed,
            )
            for i in range(n)
        ]
    return out


def write_study(datasets: list[Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        path = folder / f"{ds.Modality}_{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
