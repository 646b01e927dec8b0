"""``oncohybrid deid`` on the ingested phantom cohort and on pydicom's test files (#16).

Checks what the issue asks: no PHI in any tag, nested sequence or private element; the
SUV of every PET voxel (hence every lesion's SUVmax) identical after de-identification,
computed by oncohybrid's SUV code on the original and on the copy; the same pseudonyms
and UIDs in two runs; every UID valid per PS3.5 §9.1; nothing of the original in names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.config import get_settings
from oncohybrid.dicom.suv import suv_volume
from oncohybrid.dicom.validate import is_valid_uid
from oncohybrid.phantom.cohort import generate_cohort
from oncohybrid.services.ingest import Ingestor

runner = CliRunner()


def _ingest(paths: list[Path]) -> None:
    ing = Ingestor(get_settings())
    try:
        ing.ingest_paths(paths)
    finally:
        ing.close()


def _walk(ds: pydicom.Dataset):
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


def _phi_of(ds: pydicom.Dataset) -> tuple[set[str], set[str], set[str]]:
    """Identifying strings, original non-registered UIDs and dates, read independently."""
    strings, uids, dates = set(), set(), set()
    for elem in _walk(ds):
        if elem.VR == "PN" and elem.value:
            strings.add(str(elem.value).strip())  # whole names (components may be common words)
        if elem.keyword in ("PatientID", "AccessionNumber", "OtherPatientIDs",
                            "InstitutionAddress") and elem.value:
            strings.add(str(elem.value))
        if elem.VR == "UI" and elem.value and not str(elem.value).startswith("1.2.840.10008"):
            uids.add(str(elem.value))
        if elem.VR == "DA" and elem.value and len(str(elem.value)) == 8:
            dates.add(str(elem.value))
    return {s for s in strings if len(s) >= 4}, uids, dates


def _assert_clean(orig: pydicom.Dataset, copy: pydicom.Dataset) -> None:
    strings, uids, dates = _phi_of(orig)
    for elem in _walk(copy):
        text = elem.value.decode("latin-1") if isinstance(elem.value, bytes) and \
            elem.tag != 0x7FE00010 else str(elem.value)
        for s in strings:
            assert s.lower() not in text.lower(), (elem.tag, elem.keyword)
        if elem.VR == "UI":
            assert str(elem.value) not in uids, (elem.tag, elem.keyword)
            for v in (elem.value if isinstance(elem.value, pydicom.multival.MultiValue)
                      else [elem.value]):
                assert not v or is_valid_uid(str(v)), (elem.tag, v)
        if elem.VR == "DA":
            assert str(elem.value) not in dates or elem.keyword == "", (elem.tag, elem.keyword)
        if elem.tag.is_private and not elem.tag.is_private_creator:
            creator = copy.get((elem.tag.group << 16) | (elem.tag.element >> 8))
            assert creator is not None and str(creator.value) in (
                "GEMS_PETD_01", "Philips PET Private Group", "SIEMENS MED PT"), elem.tag
    assert copy.PatientIdentityRemoved == "YES"
    codes = [i.CodeValue for i in copy.DeidentificationMethodCodeSequence]
    assert codes[0] == "113100" and {"113107", "113108", "113109"} <= set(codes)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("deid-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("ONCOHYBRID_HOME", str(home))
    data = home / "phantom"
    truth = generate_cohort(data, patients=3, timepoints=1, vendor="mixed", seed=3,
                            size="small")
    _ingest([data])
    yield truth, data, home
    mp.undo()


def _run(args: list[str]) -> dict:
    res = runner.invoke(app, ["deid", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_phantom_copies_hold_no_phi_keep_suv_and_repeat(cohort, tmp_path, monkeypatch):
    truth, data, home = cohort
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    ids = [p["patient_id"] for p in truth["patients"]]
    out1, out2 = tmp_path / "a" / "b", tmp_path / "second"
    doc1 = _run([*ids, "--out", str(out1)])
    doc2 = _run([*ids, "--out", str(out2)])
    assert doc1 == doc2  # same pseudonyms, files, shifts
    assert [set(p) for p in doc1["patients"]] == [{"pseudonym", "files", "date_shift_days"}] * 3
    files1 = sorted(p.relative_to(out1) for p in out1.rglob("*.dcm"))
    files2 = sorted(p.relative_to(out2) for p in out2.rglob("*.dcm"))
    assert files1 == files2 and files1  # same UIDs (they name the files)
    orig_files = sorted(data.rglob("*.dcm"))
    assert len(files1) == len(orig_files) == sum(p["files"] for p in doc1["patients"])
    for p in doc1["patients"]:
        assert p["date_shift_days"] != 0
    names = " ".join(str(f) for f in files1)
    for p in truth["patients"]:
        assert p["patient_id"] not in names
    # Originals untouched; every copy clean.
    by_sop = {}
    for f in out1.rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        by_sop[ds.SOPInstanceUID] = ds
    orig_by_series: dict[str, list[Path]] = {}
    for f in orig_files:
        ds = pydicom.dcmread(f)
        orig_by_series.setdefault(ds.SeriesInstanceUID, []).append(f)
    for f in orig_files[:: max(1, len(orig_files) // 40)]:
        orig = pydicom.dcmread(f)
        copies = [c for c in by_sop.values() if c.InstanceNumber == orig.InstanceNumber
                  and c.Modality == orig.Modality and c.PatientWeight == orig.PatientWeight]
        assert copies
        _assert_clean(orig, copies[0])
        # Dates shifted by whole days, times of day kept.
        assert copies[0].get("SeriesTime") == orig.get("SeriesTime")
        assert copies[0].get("StudyDate") != orig.get("StudyDate")
    # SUV identical voxel by voxel for every PET series (so every lesion's SUVmax).
    copies_by_series: dict[str, list[Path]] = {}
    for f in out1.rglob("*.dcm"):
        copies_by_series.setdefault(f.parent.name, []).append(f)
    pet_orig = [fs for fs in orig_by_series.values() if pydicom.dcmread(fs[0]).Modality == "PT"]
    pet_copy = [fs for fs in copies_by_series.values()
                if pydicom.dcmread(fs[0]).Modality == "PT"]
    assert len(pet_orig) == len(pet_copy) == 3
    orig_suv = sorted((suv_volume(fs)[0].array for fs in pet_orig), key=lambda a: a.size)
    copy_suv = sorted((suv_volume(fs)[0].array for fs in pet_copy), key=lambda a: a.size)
    matched = 0
    for a in orig_suv:
        if any(a.shape == b.shape and np.array_equal(a, b) for b in copy_suv):
            matched += 1
    assert matched == 3
    report = json.loads((out1 / "deid-report.json").read_text())
    text = json.dumps(report)
    for p in truth["patients"]:
        assert p["patient_id"] not in text
    actions = {(c["tag"], c["action"]) for p in report["patients"] for c in p["changes"]}
    assert ("(0010,0010)", "D") in actions and ("(0008,0018)", "U") in actions
    assert ("(0010,1030)", "K") in actions  # weight kept (Retain Patient Characteristics)


def test_dry_run_writes_only_the_report(cohort, tmp_path, monkeypatch):
    truth, _, home = cohort
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    out = tmp_path / "dry"
    doc = _run([truth["patients"][0]["patient_id"], "--out", str(out), "--dry-run"])
    assert doc["patients"][0]["files"] > 0
    assert [p.name for p in out.iterdir()] == ["deid-report.json"]


def test_invalid_input_exits_2_with_nothing_on_stdout(cohort, tmp_path, monkeypatch):
    _, _, home = cohort
    monkeypatch.setenv("ONCOHYBRID_HOME", str(home))
    for args in (["NOPE", "--out", str(tmp_path / "x")],
                 ["NOPE", "--out", str(tmp_path / "y"), "--options", "retain-everything"]):
        res = runner.invoke(app, ["deid", *args, "--json"])
        assert res.exit_code == 2
        assert res.stdout == ""


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm",
                                  "SC_rgb_small_odd.dcm", "rtstruct.dcm",
                                  "examples_overlay.dcm"])
def test_pydicom_test_files_hold_no_phi(name, tmp_path):
    src = Path(get_testdata_file(name))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "f.dcm").write_bytes(src.read_bytes())
    _ingest([folder])
    orig = pydicom.dcmread(src, force=True)
    doc = _run([str(orig.PatientID), "--out", str(tmp_path / "out")])
    copies = list((tmp_path / "out").rglob("*.dcm"))
    report = json.loads((tmp_path / "out" / "deid-report.json").read_text())
    if report["patients"][0]["excluded"]:  # burned-in annotation suspected: not written
        assert copies == [] and doc["patients"][0]["files"] == 0
        return
    assert len(copies) == 1
    _assert_clean(orig, pydicom.dcmread(copies[0]))
