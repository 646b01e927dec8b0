"""IHE TCE capture: a "For Teaching" Key Object Selection received with a study becomes a
teaching case when the listener reports the study complete (#14).

The manifest is built with highdicom (PS3.3 A.35.4, document title (113004, DCM, "For
Teaching"), Key Object Description holding ``title=…`` as MIRC does), stored through the
ingest path the listener uses, and the registered ``teaching-tce`` study hook is run.
"""

from __future__ import annotations

import time

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes

from oncohybrid.pacs.hooks import StudyCompleted, resolve_study_hooks
from oncohybrid.services import teaching
from oncohybrid.services.ingest import Ingestor


def _manifest(pet_files, title_code, text: str) -> pydicom.Dataset:
    refs = [pydicom.dcmread(f, stop_before_pixels=True) for f in pet_files[:3]]
    content = hd.ko.KeyObjectSelection(
        document_title=title_code,
        referenced_objects=refs,
        observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name="Mentor^Max")),
        description=text)
    return hd.ko.KeyObjectSelectionDocument(
        evidence=refs, content=content, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="PACS viewer")


def _store(ws, ds, tmp_path, name):
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    ing = Ingestor(ws.settings)
    try:
        ing.ingest_paths([path])
    finally:
        ing.close()


def test_for_teaching_manifest_is_captured_once(teach_ws, tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(teach_ws.settings.home))
    follow = teach_ws.patient["timepoints"][-1]
    pet = sorted((teach_ws.data_dir / follow["pt_dir"]).glob("*.dcm"))
    other = _manifest(pet, codes.DCM.OfInterest, "just a bookmark")
    _store(teach_ws, other, tmp_path, "of-interest")
    tce = _manifest(pet, codes.DCM.ForTeaching, "title=Metabolic response in lung\nnice case")
    _store(teach_ws, tce, tmp_path, "tce")
    [hook] = resolve_study_hooks(["teaching-tce"])  # the listener's --on-complete name
    before = {c["case_id"] for c in teaching.list_cases(teach_ws.settings)}
    event = StudyCompleted(follow["study_uid"], 2, 2, ("MIRC",), time.time(), time.time())
    hook(event)
    new = [c for c in teaching.list_cases(teach_ws.settings) if c["case_id"] not in before]
    assert len(new) == 1, new
    case = new[0]
    assert case["title"] == "Metabolic response in lung"
    assert (case["origin"], case["author"], case["status"]) == ("tce", "tce:MIRC", "draft")
    assert case["timepoints"] == 1  # the referenced follow-up study only
    hook(event)  # the study completes again (more instances): no second case
    assert len(teaching.list_cases(teach_ws.settings)) == len(before) + 1
    # the manifest's original UID is not exported
    out = tmp_path / "tce.zip"
    teaching.export_case(case["case_id"], out, teach_ws.settings)
    import zipfile

    with zipfile.ZipFile(out) as zf:
        text = zf.read("case.json").decode()
    assert "_tce_manifest" not in text and str(tce.SOPInstanceUID) not in text


def test_manifest_of_unassessed_studies_is_not_captured(teach_ws, tmp_path, caplog,
                                                        monkeypatch):
    monkeypatch.setenv("ONCOHYBRID_HOME", str(teach_ws.settings.home))
    # a study no record timepoint holds: refused, and the log names no patient
    ds = _manifest(sorted((teach_ws.data_dir / teach_ws.patient["timepoints"][0]["pt_dir"])
                          .glob("*.dcm")), codes.DCM.ForTeaching, "title=x")
    ds.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID = hd.UID()
    ds.StudyInstanceUID = hd.UID()
    _store(teach_ws, ds, tmp_path, "unassessed")
    with pytest.raises(Exception, match="assessed timepoint"):
        teaching.capture_from_tce(str(ds.StudyInstanceUID), settings=teach_ws.settings)
    n = len(teaching.list_cases(teach_ws.settings))
    with caplog.at_level("INFO"):
        teaching.tce_study_hook(StudyCompleted(str(ds.StudyInstanceUID), 1, 1, ("X",),
                                               time.time(), time.time()))
    assert "not captured (InputError)" in caplog.text
    assert teach_ws.patient["patient_id"] not in caplog.text
    assert len(teaching.list_cases(teach_ws.settings)) == n
