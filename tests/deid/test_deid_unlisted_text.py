"""Text attributes that PS3.15 Table E.1-1 does not list are scrubbed of the patient's
identifiers and of calendar dates (our own lesion-mask SEG writes "Tracked lesions of
YYYYMMDD" in (0070,0081) Content Description, which the table does not list), while
PET-relevant text such as the radiopharmaceutical stays as it was."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from oncohybrid.deid.engine import Deidentifier, PatientKey
from oncohybrid.deid.profile import DEFAULT_OPTIONS


def _ds() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Galloway^Ann"
    ds.PatientID = "PID-778812"
    ds.PatientBirthDate = "19610203"
    ds.StudyDate = "20261106"
    ds.ContentDescription = "Tracked lesions of 20261106 (Galloway, PID-778812)"
    ds.ContentLabel = "LESIONS"
    item = Dataset()
    item.Radiopharmaceutical = "Fluorodeoxyglucose"
    item.RadiopharmaceuticalStartTime = "093000"
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    ds.add_new(0x00091001, "LO", "seen 2026-11-06 and 06/11/2026")  # unsafe private: removed
    return ds


def test_unlisted_text_loses_identifiers_and_dates_but_keeps_pet_text() -> None:
    ds = _ds()
    Deidentifier(PatientKey("PSN-1", -30), lambda u: "2.25.1", DEFAULT_OPTIONS).apply(ds)
    desc = str(ds.ContentDescription)
    for leak in ("20261106", "Galloway", "PID-778812", "778812"):
        assert leak not in desc, desc
    assert desc.startswith("Tracked lesions of")
    assert ds.ContentLabel == "LESIONS"
    assert ds.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical == \
        "Fluorodeoxyglucose"
    assert ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime == \
        "093000"


def test_dates_written_in_other_ways_are_removed_from_unlisted_text() -> None:
    ds = _ds()
    ds.ContentDescription = "baseline 2026-11-06, follow-up 06/11/2026 and 2026.11.06"
    Deidentifier(PatientKey("PSN-1", 12), lambda u: "2.25.1", DEFAULT_OPTIONS).apply(ds)
    desc = str(ds.ContentDescription)
    assert "2026" not in desc and "06/11" not in desc, desc
