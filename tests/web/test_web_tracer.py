"""The reading room shows the PET tracer and warns where a stored criterion does not suit it
(issue #12: "quantify, assess and the web app print the tracer and refuse or warn")."""

from __future__ import annotations

from pathlib import Path

import pydicom


def test_viewer_page_shows_the_tracer_of_the_pet_series(web_ws, login):
    c = login("rita")  # researcher: pseudonymous study UID in the URL
    r = c.get(f"/patients/{web_ws.patient_pk}")
    assert r.status_code == 200
    import re

    href = re.search(r'href="(/studies/[^"]+/view)"', r.text).group(1)
    page = c.get(href)
    assert page.status_code == 200
    assert 'id="tracer"' in page.text
    assert "FDG" in page.text and "F-18" in page.text and "PET" in page.text
    assert "tracer-warning" not in page.text  # FDG suits every stored criterion


def test_lu177_stored_as_pet_is_flagged_with_the_criteria_it_does_not_suit(tmp_path: Path):
    from oncohybrid.config import get_settings
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.viewer import study_tracer

    data = tmp_path / "data"
    truth = generate_cohort(data, patients=1, timepoints=1, vendor="siemens", seed=3,
                            size="small")
    for f in data.rglob("*"):
        if not f.is_file():
            continue
        try:
            ds = pydicom.dcmread(f)
        except pydicom.errors.InvalidDicomError:
            continue
        if ds.Modality != "PT":
            continue
        item = ds.RadiopharmaceuticalInformationSequence[0]
        item.Radiopharmaceutical = "Lu-177 DOTATATE"
        item.RadionuclideHalfLife = "574300.8"
        for attr in ("RadiopharmaceuticalCodeSequence", "RadionuclideCodeSequence"):
            if attr in item:
                del item[attr]
        ds.save_as(f)
    settings = get_settings(tmp_path / "home")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([data])
    finally:
        ing.close()
    study_uid = truth["patients"][0]["timepoints"][0]["study_uid"]
    info = study_tracer(study_uid, settings, ["percist", "recist1.1"])
    assert info is not None
    assert "Lu-177" in info["summary"] and "SPECT/NM" in info["summary"]
    text = " ".join(info["warnings"])
    assert "percist" in text  # PERCIST is for FDG PET only
    assert "recist1.1" not in text  # anatomical criterion: any tracer
    assert any("Lu-177" in w or "positron" in w for w in info["warnings"])
