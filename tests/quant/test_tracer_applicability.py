"""dicom.tracer identification and response.applicability (pure, headers built here)."""

from __future__ import annotations

import pytest
from pydicom import Dataset

from oncohybrid.dicom.tracer import identify_tracer
from oncohybrid.errors import InputError
from oncohybrid.response.applicability import check_criteria, check_criterion


def _pet(text="", half=None, pharm_code=None, modality="PT"):
    ds = Dataset()
    ds.Modality = modality
    item = Dataset()
    if text:
        item.Radiopharmaceutical = text
    if half is not None:
        item.RadionuclideHalfLife = str(half)
    if pharm_code:
        c = Dataset()
        c.CodeValue, c.CodingSchemeDesignator = pharm_code, "SCT"
        item.RadiopharmaceuticalCodeSequence = [c]
    ds.RadiopharmaceuticalInformationSequence = [item]
    return ds


@pytest.mark.parametrize(("text", "half", "family", "nuclide"), [
    ("FDG -- fluorodeoxyglucose", 6588, "FDG", "F-18"),
    ("Ga68 DOTATATE", 4057, "SSTR", "Ga-68"),
    ("Octreoscan In-111 pentetreotide", 242326, "SSTR", "In-111"),
    ("18F-PSMA-1007", 6586.2, "PSMA", "F-18"),
    ("Ga-68 PSMA-11", None, "PSMA", "Ga-68"),
    ("", 4057, "unknown", "Ga-68"),
])
def test_tracer_from_text_and_half_life(text, half, family, nuclide):
    info = identify_tracer(_pet(text, half))
    imaging = "SPECT/NM" if nuclide == "In-111" else "PET"  # In-111 emits no positrons
    assert (info.family, info.radionuclide, info.imaging) == (family, nuclide, imaging)


def test_fdg_code_and_lu177_stored_as_pt():
    assert identify_tracer(_pet(pharm_code="35321007")).family == "FDG"
    lu = identify_tracer(_pet("Lutathera", 574300))
    assert lu.family == "SSTR" and lu.radionuclide == "Lu-177" and lu.imaging == "SPECT/NM"
    assert any("no positrons" in p for p in lu.problems)


def test_criteria_applicability():
    fdg = identify_tracer(_pet("FDG", 6586.2))
    ga = identify_tracer(_pet("Ga-68 DOTATOC", 4057))
    psma = identify_tracer(_pet("Ga-68 PSMA-11", 4057))
    assert check_criterion("percist", fdg).level == "ok"
    assert check_criterion("percist", ga).level == "refuse"
    assert check_criterion("krenning", ga).level == "ok"
    assert check_criterion("recip", psma).level == "ok"
    assert check_criterion("recip", fdg).level == "refuse"
    assert check_criterion("recist1.1", ga).level == "ok"  # CT measurements: any tracer
    assert check_criterion("percist", None).level == "warn"
    with pytest.raises(InputError, match="percist.*SSTR.*--allow-tracer-mismatch"):
        check_criteria(["recist1.1", "percist"], ga)
    warnings = check_criteria(["percist"], ga, allow_mismatch=True)
    assert any("assessed anyway" in w for w in warnings)


def test_family_names_of_the_response_engine_match_the_tracer_reader():
    """response.applicability spells the families itself (it may not import dicom)."""
    from oncohybrid.dicom import tracer
    from oncohybrid.response import applicability

    for name in ("FDG", "SSTR", "PSMA", "UNKNOWN"):
        assert getattr(applicability, name) == getattr(tracer, name)
