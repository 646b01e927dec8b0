"""A small breast workspace for the web tests: one patient whose CEM examination (right CC
and left MLO, each low-energy + recombined, plus a high-energy image) is ingested, and
users of each role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from oncohybrid.config import Settings, get_settings

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
PASSWORDS = {"pam": ("physician", "pam-physician-pw"), "fred": ("fellow", "fred-fellow-pass"),
             "rita": ("researcher", "rita-researcher-pw"),
             "amy": ("applicant", "amy-applicant-pass")}


@dataclass
class BreastWorkspace:
    settings: Settings
    patient_pk: int
    study_uid: str
    files: dict[str, Path]


def write_cem_study(folder: Path, patient_id: str = "BR-CEM-1") -> tuple[str, dict[str, Path]]:
    """Five MG images of one CEM study. Kinds are marked three vendor ways: Image Type
    (right CC), Series Description (left MLO recombined) and kVp (left MLO low-energy)."""
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    specs = {
        "R_CC_LE": ("R", "CC", ["ORIGINAL", "PRIMARY", "", "LOW_ENERGY"], "CEM", 29, "101010"),
        "R_CC_RC": ("R", "CC", ["DERIVED", "PRIMARY", "", "RECOMBINED"], "CEM", 49, "101011"),
        "L_MLO_LE": ("L", "MLO", ["ORIGINAL", "PRIMARY"], "L MLO", 31, "101500"),
        "L_MLO_RC": ("L", "MLO", ["DERIVED", "PRIMARY"], "L MLO recombined", 47, "101501"),
        "L_MLO_HE": ("L", "MLO", ["ORIGINAL", "PRIMARY"], "L MLO", 47, "101502"),
    }
    files = {}
    rng = np.random.default_rng(3)
    for n, (name, (lat, view, itype, desc, kvp, time)) in enumerate(specs.items(), start=1):
        ds = Dataset()
        ds.SOPClassUID = MG_FOR_PRESENTATION
        ds.SOPInstanceUID = generate_uid()
        ds.PatientName = "Cem^Test"
        ds.PatientID = patient_id
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "F"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid()
        ds.StudyDate = ds.SeriesDate = "20261102"
        ds.StudyTime = "100000"
        ds.AcquisitionTime = time
        ds.Modality = "MG"
        ds.SeriesNumber = n
        ds.InstanceNumber = 1
        ds.SeriesDescription = desc
        ds.ImageType = itype
        ds.KVP = kvp
        ds.ImageLaterality = lat
        ds.ViewPosition = view
        ds.Rows, ds.Columns = 64, 48
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.PixelData = rng.integers(0, 4000, (64, 48), dtype=np.uint16).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        path = folder / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files[name] = path
    return study, files


def build(home: Path) -> BreastWorkspace:
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.users import add_user
    from oncohybrid.services.worklist import patient_pk_of_study

    settings = get_settings(home)
    study, files = write_cem_study(home / "cem")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "cem"])
    finally:
        ing.close()
    for name, (role, pw) in PASSWORDS.items():
        add_user(settings, name, pw, role, actor="test")
    return BreastWorkspace(settings, patient_pk_of_study(study, settings), study, files)


def login(app, username: str):
    from fastapi.testclient import TestClient

    c = TestClient(app, base_url="http://testserver")
    r = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = c.post("/login", data={"username": username, "password": PASSWORDS[username][1],
                               "csrf_token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def csrf_of(client) -> str:
    r = client.get("/breast")
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', r.text).group(1)
