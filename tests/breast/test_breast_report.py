"""Structured BI-RADS reports: categories and their hierarchy, the lexicon checks, the
report text in English and French, shear-wave elastography, PDF and the TID 4200 SR
round trip (dciodvfy-clean)."""

from __future__ import annotations

import json
import math
import subprocess

import pydicom
import pytest
from typer.testing import CliRunner

from oncohybrid.breast.categories import CATEGORY_INFO, Category, overall_category
from oncohybrid.breast.elastography import kpa_from_speed, speed_from_kpa, swe_summary
from oncohybrid.breast.report import parse_report, quadrant, report_text
from oncohybrid.breast.sr import build_breast_sr, read_breast_sr
from oncohybrid.cli.main import app
from oncohybrid.errors import InputError

MAMMO = {
    "modality": "MG", "purpose": "diagnostic", "exam_date": "2026-11-02", "composition": "b",
    "findings": [
        {"type": "mass", "laterality": "R", "clock": 10, "distance_from_nipple_cm": 4,
         "depth": "middle", "shape": "irregular", "margin": "spiculated", "density": "high",
         "size_mm": 12, "associated": ["skin_retraction"], "category": "4C"},
        {"type": "calcifications", "laterality": "R", "clock": 10,
         "morphology": "fine_pleomorphic", "distribution": "grouped", "size_mm": 8,
         "category": "4A"},
        {"type": "architectural_distortion", "laterality": "L", "clock": 6, "category": "0"},
    ],
}
US_SWE = {
    "modality": "US", "purpose": "diagnostic",
    "findings": [{"type": "mass", "laterality": "L", "clock": 2, "shape": "oval",
                  "margin": "circumscribed", "orientation": "parallel",
                  "echo_pattern": "hypoechoic", "posterior_features": "enhancement",
                  "size_mm": [9, 6], "category": "3",
                  "elastography": {"unit": "m/s", "lesion": [3.0, 4.0], "fat": [1.0]}}],
}


def test_overall_category_follows_the_atlas_hierarchy():
    c = Category
    # 1 < 2 < 3 < 6 < 0 < 4 (4A < 4B < 4C) < 5
    order = [c.C1, c.C2, c.C3, c.C6, c.C0, c.C4A, c.C4B, c.C4C, c.C5]
    for lo, hi in zip(order, order[1:], strict=False):
        assert overall_category([hi, lo]) == hi
        assert overall_category([lo, hi]) == hi
    assert overall_category([]) == c.C1
    assert overall_category([c.C6, c.C0]) == c.C0
    assert overall_category([c.C0, c.C4A, c.C2]) == c.C4A


def test_categories_carry_management_and_likelihood():
    assert CATEGORY_INFO[Category.C3].management_en.startswith("Short-interval (6-month)")
    assert CATEGORY_INFO[Category.C4B].likelihood == "> 10 % to ≤ 50 %"
    assert all(CATEGORY_INFO[c].tissue_diagnosis for c in
               (Category.C4, Category.C4A, Category.C4B, Category.C4C, Category.C5))
    assert not CATEGORY_INFO[Category.C3].tissue_diagnosis
    assert CATEGORY_INFO[Category.C0].management_en.startswith("Recall for additional")
    assert CATEGORY_INFO[Category.C6].management_en.startswith("Surgical excision")


def test_english_text_from_the_structured_findings():
    text = report_text(parse_report(MAMMO), "en")
    lines = text.splitlines()
    assert lines[0] == "Examination: digital mammography (diagnostic), 2026-11-02."
    assert "Breast composition: ACR b – there are scattered areas of fibroglandular density." \
        in lines
    assert ("1. Right breast, upper outer quadrant, 10 o'clock, 4 cm from the nipple, middle "
            "depth: irregular mass with spiculated margins, high density, measuring 12 mm; "
            "associated features: skin retraction. BI-RADS 4C.") in lines
    assert ("2. Right breast, upper outer quadrant, 10 o'clock: fine pleomorphic "
            "calcifications in a grouped distribution, spanning 8 mm. BI-RADS 4A.") in lines
    assert "3. Left breast, junction of the lower quadrants, 6 o'clock: architectural " \
        "distortion. BI-RADS 0." in lines
    # overall = most worrisome (4C above 4A and 0), with its management
    assert lines[-2] == ("Assessment: BI-RADS 4C – High suspicion for malignancy "
                         "(likelihood of malignancy > 50 % to < 95 %).")
    assert lines[-1] == "Recommendation: Tissue diagnosis."


def test_french_text_uses_french_radiological_terminology():
    text = report_text(parse_report(MAMMO), "fr")
    assert "Examen : mammographie numérique (diagnostic), 02/11/2026." in text
    assert "Composition mammaire : type ACR b – seins comportant des zones éparses de " \
        "densité fibroglandulaire." in text
    assert ("1. Sein droit, quadrant supéro-externe, à 10 h, à 4 cm du mamelon, tiers moyen : "
            "masse irrégulière à contours spiculés, de haute densité, mesurant 12 mm ; "
            "signes associés : rétraction cutanée. Catégorie BI-RADS 4C.") in text
    assert "microcalcifications fines pléomorphes groupées en foyer, s'étendant sur 8 mm. " \
        "Catégorie BI-RADS 4A." in text
    assert "Sein gauche, union des quadrants inférieurs, à 6 h : distorsion architecturale. " \
        "Catégorie BI-RADS 0." in text
    assert "Conclusion : catégorie BI-RADS 4C (ACR 4C) : forte suspicion de malignité " \
        "(probabilité de malignité > 50 % à < 95 %)." in text
    assert "Recommandation : Prélèvement histologique (biopsie)." in text
    # no English left in the French report
    for word in ("mass ", "margins", "breast", "calcifications in", "Assessment"):
        assert word not in text


def test_no_finding_report_is_category_1():
    r = parse_report({"modality": "DBT", "purpose": "screening", "composition": "d"})
    assert r.overall == Category.C1
    fr = report_text(r, "fr")
    assert "Pas de masse, de microcalcifications suspectes ni de distorsion architecturale." \
        in fr
    assert "catégorie BI-RADS 1 (ACR 1) : négatif" in fr
    assert "seins extrêmement denses" in fr


def test_quadrants_are_mirrored_between_the_breasts():
    assert quadrant("R", 10) == "UOQ" and quadrant("L", 10) == "UIQ"
    assert quadrant("R", 2) == "UIQ" and quadrant("L", 2) == "UOQ"
    assert quadrant("R", 7) == "LOQ" and quadrant("L", 7) == "LIQ"
    assert quadrant("R", 3) == "inner" and quadrant("L", 3) == "outer"
    assert quadrant("L", 12) == "upper" and quadrant("R", 6) == "lower"


@pytest.mark.parametrize("bad, where", [
    ({"margin": "obscured", "modality": "US"}, "findings[0].margin"),  # mammography-only term
    ({"shape": "lobulated"}, "findings[0].shape"),  # 4th-edition term, gone in the 5th
    ({"category": "7"}, "findings[0].category"),
    ({"laterality": "X"}, "findings[0].laterality"),
    ({"echo_pattern": "hypoechoic"}, "echo_pattern"),  # an ultrasound descriptor on MG
    ({"clock": 13}, "findings[0].clock"),
])
def test_descriptors_are_checked_against_the_lexicon_of_the_modality(bad, where):
    modality = bad.pop("modality", "MG")
    finding = {"type": "mass", "laterality": "R", "category": "4A", **bad}
    data = {"modality": modality, "purpose": "diagnostic", "findings": [finding]}
    if modality == "MG":
        data["composition"] = "a"
    with pytest.raises(InputError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse_report(data)


def test_mammography_report_needs_the_breast_composition():
    with pytest.raises(InputError, match="composition"):
        parse_report({"modality": "MG", "findings": []})


def test_shear_wave_modulus_is_three_rho_c_squared():
    rho = 1000.0
    for c in (1.0, 2.5, 5.0, 7.3):
        assert kpa_from_speed(c) == pytest.approx(3 * rho * c * c / 1000)
        assert speed_from_kpa(3 * rho * c * c / 1000) == pytest.approx(c)
    # 3 and 4 m/s -> 27 and 48 kPa; fat 1 m/s -> 3 kPa
    r = swe_summary([3.0, 4.0], [1.0], unit="m/s")
    assert r.emax_kpa == pytest.approx(48.0)
    assert r.emean_kpa == pytest.approx(37.5)  # mean of the moduli, not of the speeds
    assert r.lesion_to_fat_ratio == pytest.approx(37.5 / 3.0)
    assert r.emax_m_s == pytest.approx(4.0)
    assert r.emean_m_s == pytest.approx(math.sqrt(37.5 / 3))
    k = swe_summary([120, 160], [20, 30], unit="kPa")
    assert (k.emax_kpa, k.emean_kpa, k.lesion_to_fat_ratio) == (160, 140, pytest.approx(5.6))
    with pytest.raises(InputError, match="m/s"):
        swe_summary([75.0], unit="m/s")  # a kPa value entered as a speed


def test_elastography_in_the_ultrasound_report():
    en = report_text(parse_report(US_SWE), "en")
    assert "shear-wave elastography: Emax 48 kPa (4 m/s), Emean 37.5 kPa, lesion-to-fat " \
        "ratio 12.5. BI-RADS 3." in en
    fr = report_text(parse_report(US_SWE), "fr")
    assert "élastographie par ondes de cisaillement : Emax 48 kPa (4 m/s), Emoy 37,5 kPa, " \
        "rapport lésion/graisse 12,5. Catégorie BI-RADS 3." in fr
    assert "masse ovale à contours circonscrits, d'orientation parallèle à la peau, " \
        "hypoéchogène, avec renforcement acoustique postérieur, mesurant 9 × 6 mm" in fr


def _dciodvfy_errors(path) -> list[str]:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith("Error")]


@pytest.mark.parametrize("data, lang", [(MAMMO, "en"), (US_SWE, "fr")])
def test_sr_round_trip_and_dciodvfy(tmp_path, data, lang):
    report = parse_report(data)
    ds = build_breast_sr(report, lang=lang, patient_id="BR-1", patient_name="Doe, Jane",
                         reader="Martin, Claire", signed_by="Martin, Claire")
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert _dciodvfy_errors(path) == []
    back = read_breast_sr(pydicom.dcmread(path))
    assert back["report"] == report.as_dict()
    assert back["overall_category"] == report.overall.value
    assert back["verified"] is True and back["signed_by"] == "Martin^Claire"
    assert report_text(report, lang).splitlines()[-1] in back["text"]
    read = pydicom.dcmread(path)
    assert read.ContentTemplateSequence[0].TemplateIdentifier == "4200"
    assert read.ConceptNameCodeSequence[0].CodeValue == "111400"


def test_cli_report_text_pdf_sr(tmp_path):
    (tmp_path / "f.json").write_text(json.dumps(MAMMO))
    res = CliRunner().invoke(app, ["breast", "report", str(tmp_path / "f.json"), "--lang", "fr",
                                   "--pdf", str(tmp_path / "r.pdf"), "--sr",
                                   str(tmp_path / "r.dcm"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["overall_category"] == "4C"
    assert [f["category"] for f in out["findings"]] == ["4C", "4A", "0"]
    assert out["management"] == "Prélèvement histologique (biopsie)"
    pdf = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True,
                         text=True, check=True).stdout
    pdf = " ".join(pdf.split())
    assert "masse irrégulière à contours spiculés" in pdf
    assert "Catégorie BI-RADS globale: 4C" in pdf
    res = CliRunner().invoke(app, ["breast", "read-sr", str(tmp_path / "r.dcm"), "--json"])
    assert json.loads(res.stdout)["report"]["findings"][0]["margin"] == "spiculated"


def test_cli_report_invalid_input_exits_2(tmp_path):
    bad = dict(MAMMO, findings=[{"type": "mass", "laterality": "R", "category": "4D"}])
    (tmp_path / "f.json").write_text(json.dumps(bad))
    res = CliRunner().invoke(app, ["breast", "report", str(tmp_path / "f.json"), "--json"])
    assert res.exit_code == 2 and res.stdout == ""
    assert "findings[0].category" in res.stderr
    (tmp_path / "g.json").write_text("{not json")
    res = CliRunner().invoke(app, ["breast", "report", str(tmp_path / "g.json"), "--json"])
    assert res.exit_code == 2 and res.stdout == "" and "not valid JSON" in res.stderr


def test_sr_uses_the_dicom_codes_of_the_birads_cids():
    """Descriptor, location and category codes checked against pydicom's copy of PS3.16
    (an independent source of the code values)."""
    from pydicom.sr.codedict import codes

    ds = build_breast_sr(parse_report(MAMMO))

    def walk(items):
        for it in items:
            yield it
            yield from walk(it.get("ContentSequence", []))

    pairs = {(it.ConceptNameCodeSequence[0].CodeMeaning,
              it.ConceptCodeSequence[0].get("CodeValue"))
             for it in walk(ds.ContentSequence) if it.ValueType == "CODE"}
    sct = codes.SCT
    assert ("Shape", sct.Irregular.value) in pairs
    assert ("Margins", sct.SpiculatedLesion.value) in pairs
    assert ("Lesion Density", sct.HighDensityLesion.value) in pairs
    assert ("Calcification Type", codes.DCM.FinePleomorphicCalcification.value) in pairs
    assert ("Calcification Distribution", sct.GroupedCalcificationDistribution.value) in pairs
    assert ("Clockface or region", sct._10OClockPosition.value) in pairs
    assert ("Clockface or region", sct._6OClockPosition.value) in pairs
    assert ("Quadrant location", sct.UpperOuterQuadrantOfBreast.value) in pairs
    assert ("Depth", codes.NCIt.Middle.value) in pairs
    assert ("Associated feature", sct.SkinRetractionOfBreast.value) in pairs
    assert ("Laterality", sct.RightBreast.value) in pairs
    assert ("Breast composition", sct.ScatteredFibroglandularDensities.value) in pairs
    assert ("Assessment Category", "MA.II.A.5.4C") in pairs
    assert ("Assessment Category", "397138000") in pairs  # category 0 (SNOMED CT)


def test_other_spellings_are_normalised_to_the_lexicon_keys():
    loose = {"modality": "mg", "purpose": "Diagnostic", "date": "2026-11-02",
             "breast_density": "B",
             "findings": [
                 {"type": "Mass", "side": "right", "clock": "10 o'clock",
                  "distance_cm": 4, "depth": "Middle", "shape": "Irregular",
                  "margin": "Spiculated", "density": "High", "size": 12,
                  "associated_features": ["Skin retraction"], "birads": "4c"},
                 {"type": "calcification", "side": "R", "clock": 10,
                  "calcification_morphology": "Fine pleomorphic",
                  "calcification_distribution": "grouped", "size_mm": 8, "BIRADS": "4A"},
                 {"type": "distortion", "laterality": "left", "clock": "6:00",
                  "category": 0}]}
    assert parse_report(loose).as_dict() == parse_report(MAMMO).as_dict()
    half = parse_report({"modality": "US", "findings": [
        {"type": "mass", "side": "L", "clock": "2:30", "category": "3"}]})
    assert half.findings[0].clock == 2.5
