"""The exported teaching case holds no PHI and keeps every SUV (#14 acceptance).

PHI is read independently from the original phantom files (names, IDs, accession
numbers, birth date, every non-registered UID, every date) and looked for in every
element of every nested sequence (private ones included) of every exported file and in
the text of case.json. SUVmax is computed by oncohybrid's SUV code
(:func:`oncohybrid.dicom.suv.suv_volume`) on the original PET series and on the exported
one: the whole SUV volumes are equal, and the SUVmax inside lesion L1's exported mask
equals the SUVmax stored in the record when the patient was assessed.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.dicom.suv import suv_volume
from oncohybrid.dicom.validate import is_valid_uid
from oncohybrid.report.seg import read_segment_masks
from oncohybrid.services.record import patient_record

runner = CliRunner()


def _walk(ds: pydicom.Dataset):
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


def _phi(files) -> tuple[set[str], set[str], set[str]]:
    strings, uids, dates = set(), set(), set()
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for elem in _walk(ds):
            if not elem.value:
                continue
            if elem.VR == "PN":
                strings.add(str(elem.value).strip())
            if elem.keyword in ("PatientID", "AccessionNumber", "OtherPatientIDs",
                                "InstitutionAddress", "ReferringPhysicianName"):
                strings.add(str(elem.value))
            if elem.VR == "UI" and not str(elem.value).startswith("1.2.840.10008"):
                uids.add(str(elem.value))
            if elem.VR == "DA" and len(str(elem.value)) == 8:
                dates.add(str(elem.value))
    return {s for s in strings if len(s) >= 4}, uids, dates


@pytest.fixture(scope="module")
def exported(teach_ws, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ONCOHYBRID_HOME", str(teach_ws.settings.home))
    res = runner.invoke(app, ["teach", "capture", teach_ws.patient["patient_id"],
                              "--title", "PHI check", "--json"])
    assert res.exit_code == 0, res.output
    case_id = json.loads(res.stdout)["case_id"]
    out = tmp_path_factory.mktemp("phi") / "case.zip"
    res = runner.invoke(app, ["teach", "export", case_id, "--out", str(out)])
    assert res.exit_code == 0, res.output
    folder = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
    yield folder
    mp.undo()


def test_no_phi_in_any_tag_sequence_or_case_json(teach_ws, exported):
    p = teach_ws.patient
    originals = sorted((teach_ws.data_dir / p["patient_id"]).rglob("*.dcm"))
    strings, uids, dates = _phi(originals)
    strings |= {p["patient_id"], p["patient_name"], p["patient_name"].replace("^", " ")}
    birth = p["birth_date"].replace("-", "")
    dates.add(birth)
    copies = sorted(exported.rglob("*.dcm"))
    assert len(copies) > 400
    for f in copies:
        ds = pydicom.dcmread(f)
        assert ds.PatientIdentityRemoved == "YES"
        for elem in _walk(ds):
            if elem.tag == 0x7FE00010:
                continue
            text = elem.value.decode("latin-1") if isinstance(elem.value, bytes) \
                else str(elem.value)
            for s in strings:
                assert s.lower() not in text.lower(), (f.name, elem.tag, elem.keyword)
            for d in dates:
                assert d not in text, (f.name, elem.tag, elem.keyword)
            if elem.VR == "UI" and elem.value:
                values = elem.value if isinstance(elem.value, pydicom.multival.MultiValue) \
                    else [elem.value]
                for v in values:
                    assert str(v) not in uids, (f.name, elem.tag, elem.keyword)
                    assert is_valid_uid(str(v))
            if elem.tag.is_private and not elem.tag.is_private_creator:
                creator = ds.get((elem.tag.group << 16) | (elem.tag.element >> 8))
                assert creator is not None and str(creator.value) in (
                    "GEMS_PETD_01", "Philips PET Private Group", "SIEMENS MED PT")
    text = (exported / "case.json").read_text()
    for s in strings | {p["patient_id"]}:
        assert s.lower() not in text.lower(), s
    for d in dates | {t["date"] for t in p["timepoints"]} | {p["birth_date"]}:
        assert d not in text, d
    for u in uids:
        assert u not in text, u


def test_case_json_dates_are_shifted_like_the_images(teach_ws, exported):
    doc = json.loads((exported / "case.json").read_text())
    shifts = set()
    for tp, orig in zip(doc["ground_truth"]["timepoints"], teach_ws.patient["timepoints"],
                        strict=True):
        ds = pydicom.dcmread(next((exported / f"tp{tp['position']}" / "PT").glob("*.dcm")))
        assert ds.StudyDate == tp["date"].replace("-", "")
        assert ds.StudyInstanceUID == tp["study_uid"]
        shift = dt.date.fromisoformat(tp["date"]) - dt.date.fromisoformat(orig["date"])
        shifts.add(shift.days)
        # times of day are kept (decay correction depends on them)
        o = pydicom.dcmread(next((teach_ws.data_dir / orig["pt_dir"]).glob("*.dcm")))
        assert ds.SeriesTime == o.SeriesTime
        rp, orp = ds.RadiopharmaceuticalInformationSequence[0], \
            o.RadiopharmaceuticalInformationSequence[0]
        assert rp.RadionuclideTotalDose == orp.RadionuclideTotalDose
    assert len(shifts) == 1 and -3650 <= shifts.pop() <= -365
    # dates inside the stored assessments are shifted alike
    recist = doc["ground_truth"]["assessments"]["recist1.1"]["result"]["timepoints"]
    assert [t["date"] for t in recist] == [t["date"] for t in doc["ground_truth"]["timepoints"]]
    assert doc["ground_truth"]["assessments"]["recist1.1"]["case"]["patient_id"] \
        == doc["pseudonym"]


def test_exported_pet_gives_the_same_suvmax(teach_ws, exported):
    rec = patient_record(teach_ws.patient["patient_id"], teach_ws.settings)
    for pos, orig in enumerate(teach_ws.patient["timepoints"]):
        vol_o, _ = suv_volume(teach_ws.data_dir / orig["pt_dir"])
        files = sorted((exported / f"tp{pos}" / "PT").glob("*.dcm"))
        vol_c, _ = suv_volume(files)
        assert float(vol_c.array.max()) == float(vol_o.array.max())
        np.testing.assert_array_equal(vol_c.array, vol_o.array)
        np.testing.assert_allclose(vol_c.affine, vol_o.affine)
    # SUVmax inside the exported mask of L1 = the SUVmax the record stored at baseline
    files = sorted((exported / "tp0" / "PT").glob("*.dcm"))
    vol, _ = suv_volume(files)
    masks = read_segment_masks(exported / "tp0" / "SEG.dcm",
                               [pydicom.dcmread(f, stop_before_pixels=True) for f in files])
    les = next(les for les in rec["lesions"] if les["key"] == "L1")
    obs = next(o for o in les["observations"] if o["date"] == rec["timepoints"][0]["date"])
    assert float(vol.array[masks[obs["mask_segment_number"]]].max()) == \
        pytest.approx(obs["suv_max"], rel=1e-6)
