"""DICOM SR of a structured breast report: Comprehensive SR following TID 4200 *Breast
Imaging Report* (PS3.16), and its reading back.

Tree (PS3.16 TID 4200 and its sub-templates, as far as the platform's data go):

- root CONTAINER (111400, DCM, "Breast Imaging Report"), template 4200 (DCMR);
  HAS CONCEPT MOD (121049, DCM) *Language of Content Item and Descendants* (TID 1204);
  HAS OBS CONTEXT (121008, DCM) *Person Observer Name* (TID 1001) when the reader is known;
- CONTAINS CONTAINER (111412, DCM) *Narrative Summary* (TID 4201): one section CONTAINER
  per CID 6052 title - (121058, DCM) *Procedure reported*, (18785-6, LN) *Indications for
  Procedure*, (129715009, SCT) *Breast composition*, (59776-5, LN) *Findings*,
  (111413, DCM) *Overall Assessment*, (18783-1, LN) *Recommendations* - each holding TEXT
  items named from CID 6053 ((121071, DCM) *Finding*, (121073, DCM) *Impression*,
  (121075, DCM) *Recommendation* …) with the generated report text;
- CONTAINS CONTAINER (111414, DCM) *Supplementary Data* (TID 4208):
  CODE (121058, DCM) *Procedure reported* (CID 6050) with HAS CONCEPT MOD (111401, DCM)
  *Reason for procedure* = (360156006, SCT) Screening or (261004008, SCT) Diagnostic
  (CID 6051) (TID 4202); CODE (129715009, SCT) *Breast composition* (CID 6000) for
  mammography; per finding a CODE (121071, DCM) *Finding* (CID 6054 where it has the
  concept) with HAS CONCEPT MOD (272741003, SCT) *Laterality* (CID 6022) and HAS
  PROPERTIES its BI-RADS descriptors, size (81827009, SCT) *Diameter* in mm and
  (111005, DCM) *Assessment Category* (CID 6027); and CONTAINER (111413, DCM) *Overall
  Assessment* with the overall (111005, DCM) *Assessment Category*.

The BI-RADS descriptors that DICOM does not code (5th-edition terms, CEM supplement) are
coded in the private scheme ``99OHBIRADS`` (PS3.16 §8.2: a designator starting with "99"),
whose value is the lexicon key, declared in (0008,0110) *Coding Scheme Identification
Sequence*; this makes the round trip exact (:func:`read_breast_sr`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from oncohybrid.breast.categories import CATEGORY_INFO, Category
from oncohybrid.breast.lexicon import lexicon
from oncohybrid.breast.report import BreastReport, parse_report, report_text
from oncohybrid.errors import InputError

__all__ = ["COMPREHENSIVE_SR", "build_breast_sr", "read_breast_sr", "PRIVATE_SCHEME"]

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
PRIVATE_SCHEME = "99OHBIRADS"

_PROCEDURE = {
    "MG": ("71651007", "SCT", "Mammography"),
    "DBT": ("71651007", "SCT", "Mammography"),
    "CEM": ("71651007", "SCT", "Mammography"),
    "US": ("47079000", "SCT", "Ultrasonography of breast"),
    "MRI": ("241615005", "SCT", "MRI of breast"),
}
_PURPOSE = {"screening": ("360156006", "SCT", "Screening"),
            "diagnostic": ("261004008", "SCT", "Diagnostic")}
_COMPOSITION = {"a": ("129716005", "SCT", "Almost entirely fat"),
                "b": ("129717001", "SCT", "Scattered fibroglandular densities"),
                "c": ("129718006", "SCT", "Heterogeneously dense"),
                "d": ("129719003", "SCT", "Extremely dense")}
_FINDING = {
    "mass": ("129788004", "SCT", "Mammographic breast mass"),
    "calcifications": ("309587003", "SCT", "Calcification of breast"),
    "asymmetry": ("129790003", "SCT", "Asymmetric breast tissue"),
    "architectural_distortion": ("129792006", "SCT", "Architectural distortion of breast"),
    "intramammary_lymph_node": ("443808008", "SCT", "Intramammary lymph node"),
    "skin_lesion": ("95324001", "SCT", "Skin lesion"),
    "solitary_dilated_duct": ("129794007", "SCT", "Tubular density"),
    "cyst": ("399294002", "SCT", "Cyst of breast"),
}
_LATERALITY = {"R": ("73056007", "SCT", "Right breast"), "L": ("80248007", "SCT", "Left breast")}
_LANGUAGE = {"en": ("en", "RFC5646", "English"), "fr": ("fr", "RFC5646", "French")}

#: Descriptors DICOM codes (PS3.16 CIDs "… from BI-RADS"): field -> (concept, {lexicon
#: key: value code}); a value without a DICOM code is written in the private scheme.
_STANDARD: dict[str, tuple[tuple[str, str, str], dict[str, tuple[str, str, str]]]] = {
    "shape": (("300842002", "SCT", "Shape"), {  # CID 6005
        "oval": ("84360004", "SCT", "Ovoid shape (Oval)"),
        "round": ("42700002", "SCT", "Round shape"),
        "irregular": ("49608001", "SCT", "Irregular")}),
    "margin": (("111037", "DCM", "Margins"), {  # CID 6007
        "circumscribed": ("129738007", "SCT", "Circumscribed lesion"),
        "obscured": ("129740002", "SCT", "Obscured lesion"),
        "microlobulated": ("129739004", "SCT", "Microlobulated lesion"),
        "indistinct": ("129741003", "SCT", "Indistinct lesion"),
        "spiculated": ("129742005", "SCT", "Spiculated lesion"),
        "angular": ("111343", "DCM", "Angular margins")}),
    "density": (("111035", "DCM", "Lesion Density"), {  # CID 6009
        "high": ("129744006", "SCT", "High density lesion"),
        "equal": ("129745007", "SCT", "Equal density (isodense) lesion"),
        "low": ("129746008", "SCT", "Low density (not containing fat) lesion"),
        "fat_containing": ("129747004", "SCT", "Fat containing (radiolucent) lesion")}),
    "morphology": (("111009", "DCM", "Calcification Type"), {  # CID 6011
        "skin": ("129757003", "SCT", "Calcified skin of breast"),
        "vascular": ("129759000", "SCT", "Vascular calcification"),
        "coarse_popcorn": ("129749001", "SCT", "Coarse (popcorn-like) calcification"),
        "large_rod_like": ("129752009", "SCT", "Large rod-like calcification"),
        "round": ("129756007", "SCT", "Round shaped calcification"),
        "rim": ("129751002", "SCT", "Eggshell calcification"),
        "dystrophic": ("129750001", "SCT", "Dystrophic calcification"),
        "milk_of_calcium": ("129753004", "SCT", "Milk of calcium calcification"),
        "suture": ("129758008", "SCT", "Calcified suture material"),
        "amorphous": ("129760005", "SCT", "Amorphous calcification"),
        "coarse_heterogeneous": ("129763007", "SCT", "Heterogeneous calcification"),
        "fine_pleomorphic": ("111344", "DCM", "Fine pleomorphic calcification"),
        "fine_linear_branching": ("129762002", "SCT",
                                  "Fine linear, branching (casting) calcification")}),
    "distribution": (("111008", "DCM", "Calcification Distribution"), {  # CID 6013
        "diffuse": ("129764001", "SCT", "Diffuse calcification distribution"),
        "regional": ("129767008", "SCT", "Regional calcification distribution"),
        "grouped": ("129766004", "SCT", "Grouped calcification distribution"),
        "linear": ("129765000", "SCT", "Linear calcification distribution"),
        "segmental": ("129768003", "SCT", "Segmental calcification distribution")}),
    "depth": (("111020", "DCM", "Depth"), {  # CID 6025
        "anterior": ("255549009", "SCT", "Anterior"),
        "middle": ("C25569", "NCIt", "Middle"),
        "posterior": ("255551008", "SCT", "Posterior")}),
    "region": (("111014", "DCM", "Clockface or region"), {  # CID 6019
        "retroareolar": ("129784002", "SCT", "Subareolar region"),
        "central": ("129786000", "SCT", "Central region of breast"),
        "axillary_tail": ("129785001", "SCT", "Axillary tail region")}),
}
#: (CID 6019) n o'clock position (SNOMED CT; the last digit is a check digit)
_CLOCK = {h: (code, "SCT", f"{h} o'clock position") for h, code in enumerate(
    ("129772004", "129773009", "129774003", "129775002", "129776001", "129777005",
     "129778000", "129779008", "129780006", "129781005", "129782003", "129783008"), start=1)}
#: CID 6021 quadrant (written for readers of the SR; the clock position is what is read back)
_QUADRANT = {"UOQ": ("76365002", "SCT", "Upper outer quadrant of breast"),
             "UIQ": ("77831004", "SCT", "Upper inner quadrant of breast"),
             "LOQ": ("33564002", "SCT", "Lower outer quadrant of breast"),
             "LIQ": ("19100000", "SCT", "Lower inner quadrant of breast")}
#: CID 6056 associated findings
_ASSOCIATED = {
    "skin_retraction": ("129796009", "SCT", "Skin retraction of breast"),
    "nipple_retraction": ("271955004", "SCT", "Nipple retraction"),
    "skin_thickening": ("129797000", "SCT", "Skin thickening of breast"),
    "trabecular_thickening": ("129795008", "SCT", "Trabecular thickening of breast"),
    "axillary_adenopathy": ("127189005", "SCT", "Axillary adenopathy"),
    "architectural_distortion": ("129792006", "SCT", "Architectural distortion of breast"),
    "edema": ("79654002", "SCT", "Edema"),
}
C_QUADRANT = ("111048", "DCM", "Quadrant location")

C_REPORT = ("111400", "DCM", "Breast Imaging Report")
C_LANGUAGE = ("121049", "DCM", "Language of Content Item and Descendants")
C_OBSERVER = ("121008", "DCM", "Person Observer Name")
C_NARRATIVE = ("111412", "DCM", "Narrative Summary")
C_SUPPLEMENTARY = ("111414", "DCM", "Supplementary Data")
C_PROCEDURE = ("121058", "DCM", "Procedure reported")
C_REASON = ("111401", "DCM", "Reason for procedure")
C_INDICATIONS = ("18785-6", "LN", "Indications for Procedure")
C_COMPOSITION = ("129715009", "SCT", "Breast composition")
C_FINDINGS = ("59776-5", "LN", "Findings")
C_FINDING = ("121071", "DCM", "Finding")
C_IMPRESSION = ("121073", "DCM", "Impression")
C_RECOMMENDATION = ("121075", "DCM", "Recommendation")
C_RECOMMENDATIONS = ("18783-1", "LN", "Recommendations")
C_OVERALL = ("111413", "DCM", "Overall Assessment")
C_CATEGORY = ("111005", "DCM", "Assessment Category")
C_LATERALITY = ("272741003", "SCT", "Laterality")
C_DIAMETER = ("81827009", "SCT", "Diameter")
UNIT_MM = ("mm", "UCUM", "millimeter")
UNIT_CM = ("cm", "UCUM", "centimeter")
UNIT_KPA = ("kPa", "UCUM", "kilopascal")
UNIT_RATIO = ("1", "UCUM", "no units")
UNIT_HOUR = ("h", "UCUM", "hour")


def _code_item(code: tuple[str, str, str]) -> Dataset:
    ds = Dataset()
    if len(code[0]) > 16:  # (0008,0119) Long Code Value carries longer values (PS3.3 8.8)
        ds.LongCodeValue = code[0]
    else:
        ds.CodeValue = code[0]
    ds.CodingSchemeDesignator, ds.CodeMeaning = code[1], code[2][:64]
    if code[1] == "BI":
        # "BI" codes are those of the BI-RADS atlas; PS3.3 Table 8.8-1 wants the version
        # because the designator alone does not fix the edition
        ds.CodingSchemeVersion = "4"
    return ds


def _private(key: str, meaning: str | None = None) -> tuple[str, str, str]:
    return (key, PRIVATE_SCHEME, (meaning or key.replace("_", " "))[:64])


def _item(rel: str | None, vtype: str, concept: tuple[str, str, str]) -> Dataset:
    ds = Dataset()
    if rel:
        ds.RelationshipType = rel
    ds.ValueType = vtype
    ds.ConceptNameCodeSequence = DSequence([_code_item(concept)])
    return ds


def _container(rel: str | None, concept: tuple[str, str, str], children: list[Dataset]
               ) -> Dataset:
    ds = _item(rel, "CONTAINER", concept)
    ds.ContinuityOfContent = "SEPARATE"
    if children:
        ds.ContentSequence = DSequence(children)
    return ds


def _text(rel: str, concept: tuple[str, str, str], text: str) -> Dataset:
    ds = _item(rel, "TEXT", concept)
    ds.TextValue = text
    return ds


def _codev(rel: str, concept: tuple[str, str, str], value: tuple[str, str, str],
           children: list[Dataset] | None = None) -> Dataset:
    ds = _item(rel, "CODE", concept)
    ds.ConceptCodeSequence = DSequence([_code_item(value)])
    if children:
        ds.ContentSequence = DSequence(children)
    return ds


def _num(rel: str, concept: tuple[str, str, str], value: float,
         unit: tuple[str, str, str]) -> Dataset:
    ds = _item(rel, "NUM", concept)
    mv = Dataset()
    mv.NumericValue = f"{value:.6g}"
    mv.MeasurementUnitsCodeSequence = DSequence([_code_item(unit)])
    ds.MeasuredValueSequence = DSequence([mv])
    return ds


def _finding_items(report: BreastReport) -> list[Dataset]:
    lex = lexicon()
    out = []
    for f in report.findings:
        props: list[Dataset] = [_codev("HAS CONCEPT MOD", C_LATERALITY,
                                       _LATERALITY[f.laterality])]
        for name, code in f.descriptors.items():
            term = lex["fields"][name]["terms"][code]["en"]
            std = _STANDARD.get(name)
            if std and code in std[1]:
                props.append(_codev("HAS PROPERTIES", std[0], std[1][code]))
            else:
                props.append(_codev("HAS PROPERTIES", _private(name), _private(code, term)))
        for a in f.associated:
            term = lex["fields"]["associated"]["terms"][a]["en"]
            props.append(_codev("HAS PROPERTIES", _private("associated", "Associated feature"),
                                _ASSOCIATED.get(a) or _private(a, term)))
        if f.clock is not None:
            if f.clock == int(f.clock):
                props.append(_codev("HAS CONCEPT MOD", _STANDARD["region"][0],
                                    _CLOCK[int(f.clock)]))
            else:  # half hours have no code
                props.append(_num("HAS PROPERTIES", _private("clock", "Clock-face position"),
                                  f.clock, UNIT_HOUR))
            q = f.quadrant
            if q in _QUADRANT:
                props.append(_codev("HAS CONCEPT MOD", C_QUADRANT, _QUADRANT[q]))
        if f.region:
            props.append(_codev("HAS CONCEPT MOD", _STANDARD["region"][0],
                                _STANDARD["region"][1][f.region]))
        if f.depth:
            props.append(_codev("HAS CONCEPT MOD", _STANDARD["depth"][0],
                                _STANDARD["depth"][1][f.depth]))
        if f.distance_from_nipple_cm is not None:
            props.append(_num("HAS PROPERTIES", _private("distance_nipple",
                                                         "Distance from nipple"),
                              f.distance_from_nipple_cm, UNIT_CM))
        for s in f.size_mm:
            props.append(_num("HAS PROPERTIES", C_DIAMETER, s, UNIT_MM))
        if f.elastography_input:
            e = f.elastography
            assert e is not None
            props.append(_num("HAS PROPERTIES", _private("swe_emax", "SWE Emax"),
                              e.emax_kpa, UNIT_KPA))
            props.append(_num("HAS PROPERTIES", _private("swe_emean", "SWE Emean"),
                              e.emean_kpa, UNIT_KPA))
            if e.lesion_to_fat_ratio is not None:
                props.append(_num("HAS PROPERTIES", _private("swe_ratio",
                                                             "SWE lesion-to-fat ratio"),
                                  e.lesion_to_fat_ratio, UNIT_RATIO))
            unit = f.elastography_input["unit"]
            for key in ("lesion", "fat"):
                for v in f.elastography_input[key]:
                    props.append(_num("HAS PROPERTIES", _private(f"swe_{key}",
                                                                 f"SWE {key} measurement"),
                                      v, UNIT_KPA if unit == "kPa" else
                                      ("m/s", "UCUM", "meter per second")))
        if f.comment:
            props.append(_text("HAS PROPERTIES", ("121106", "DCM", "Comment"), f.comment))
        props.append(_codev("HAS PROPERTIES", C_CATEGORY, CATEGORY_INFO[f.category].code))
        ftype = _FINDING.get(f.type) or _private(f.type, lex["finding_types"][f.type]["en"])
        out.append(_codev("CONTAINS", C_FINDING, ftype, props))
    return out


def _split_text(text: str) -> dict[str, list[str]]:
    """The generated report's lines by section (procedure, indication, composition,
    findings, impression, recommendation)."""
    lines = text.splitlines()
    out: dict[str, list[str]] = {"procedure": [lines[0]], "other": [], "findings": [],
                                 "impression": [], "recommendation": []}
    section = "other"
    for line in lines[1:]:
        if line.rstrip().endswith(":") and len(line) < 30:
            section = "findings"
            continue
        if line.startswith(("Assessment:", "Conclusion :")):
            out["impression"].append(line)
            section = "done"
        elif line.startswith(("Recommendation:", "Recommandation :")):
            out["recommendation"].append(line)
        elif section == "findings":
            out["findings"].append(line)
        else:
            out["other"].append(line)
    return out


def build_breast_sr(report: BreastReport, *, lang: str = "en", patient_id: str = "",
                    patient_name: str = "", study_instance_uid: str | None = None,
                    accession_number: str = "", reader: str = "",
                    signed_by: str | None = None, signed_at: dt.datetime | None = None,
                    institution: str = "oncohybrid") -> Dataset:
    """The Comprehensive SR (TID 4200) of a structured report; ``signed_by`` makes it a
    VERIFIED document with (0040,A073) *Verifying Observer Sequence*."""
    if lang not in _LANGUAGE:
        raise InputError(f"language: {lang!r} is not en or fr")
    now = dt.datetime.now(dt.UTC)
    text = report_text(report, lang)
    parts = _split_text(text)
    narrative_sections = [
        _container("CONTAINS", C_PROCEDURE,
                   [_text("CONTAINS", C_PROCEDURE, parts["procedure"][0])]),
    ]
    if parts["other"]:
        narrative_sections.append(_container(
            "CONTAINS", C_COMPOSITION if report.composition else C_INDICATIONS,
            [_text("CONTAINS", C_COMPOSITION if report.composition and
                   ("ACR" in line) else C_INDICATIONS, line) for line in parts["other"]]))
    narrative_sections.append(_container(
        "CONTAINS", C_FINDINGS,
        [_text("CONTAINS", C_FINDING, line) for line in parts["findings"]]))
    narrative_sections.append(_container(
        "CONTAINS", C_OVERALL, [_text("CONTAINS", C_IMPRESSION, line)
                                for line in parts["impression"]]))
    narrative_sections.append(_container(
        "CONTAINS", C_RECOMMENDATIONS, [_text("CONTAINS", C_RECOMMENDATION, line)
                                        for line in parts["recommendation"]]))
    supplementary: list[Dataset] = [
        _codev("CONTAINS", C_PROCEDURE, _PROCEDURE[report.modality],
               [_codev("HAS CONCEPT MOD", C_REASON, _PURPOSE[report.purpose]),
                _codev("HAS CONCEPT MOD", _private("modality", "Breast imaging modality"),
                       _private(report.modality,
                                lexicon()["modalities"][report.modality]["en"])),
                _codev("HAS CONCEPT MOD", _private("exam_laterality", "Examined breasts"),
                       _private(report.laterality))])]
    if report.composition:
        supplementary.append(_codev("CONTAINS", C_COMPOSITION,
                                    _COMPOSITION[report.composition]))
    for key in ("fgt", "bpe", "bpe_symmetry"):
        value = getattr(report, key)
        if value:
            supplementary.append(_codev("CONTAINS", _private(key), _private(value)))
    supplementary.extend(_finding_items(report))
    info = CATEGORY_INFO[report.overall]
    supplementary.append(_container("CONTAINS", C_OVERALL, [
        _codev("CONTAINS", C_CATEGORY, info.code),
        _text("CONTAINS", C_RECOMMENDATION,
              info.management_fr if lang == "fr" else info.management_en)]))
    root_children = [_codev("HAS CONCEPT MOD", C_LANGUAGE, _LANGUAGE[lang])]
    if reader:
        obs = _item("HAS OBS CONTEXT", "PNAME", C_OBSERVER)
        obs.PersonName = reader.replace(", ", "^").replace(" ", "^")[:64]
        root_children.append(obs)
    root_children.append(_container("CONTAINS", C_NARRATIVE, narrative_sections))
    root_children.append(_container("CONTAINS", C_SUPPLEMENTARY, supplementary))

    ds = Dataset()
    sop_uid = generate_uid()
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.SOPInstanceUID = sop_uid
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.PatientName = patient_name.replace(", ", "^")
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_instance_uid or generate_uid()
    # Study Date is type 2: empty when the report does not give the examination date
    ds.StudyDate = report.exam_date.strftime("%Y%m%d") if report.exam_date else ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = accession_number[:16]
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.SeriesDescription = "BI-RADS report"
    ds.ReferencedPerformedProcedureStepSequence = DSequence()
    ds.Manufacturer = "oncohybrid"
    ds.InstitutionName = institution
    ds.InstanceNumber = 1
    ds.CompletionFlag = "COMPLETE"
    if signed_by:
        ds.VerificationFlag = "VERIFIED"
        at = signed_at or now
        v = Dataset()
        v.VerifyingObserverName = signed_by.replace(", ", "^").replace(" ", "^")[:64]
        v.VerifyingObserverIdentificationCodeSequence = DSequence()
        v.VerifyingOrganization = institution
        v.VerificationDateTime = at.strftime("%Y%m%d%H%M%S")
        ds.VerifyingObserverSequence = DSequence([v])
    else:
        ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.PerformedProcedureCodeSequence = DSequence([_code_item(_PROCEDURE[report.modality])])
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DSequence([_code_item(C_REPORT)])
    ds.ContinuityOfContent = "SEPARATE"
    tpl = Dataset()
    tpl.MappingResource = "DCMR"
    tpl.TemplateIdentifier = "4200"
    ds.ContentTemplateSequence = DSequence([tpl])
    ds.ContentSequence = DSequence(root_children)
    scheme = Dataset()
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = "oncohybrid BI-RADS 5th edition lexicon keys"
    scheme.CodingSchemeResponsibleOrganization = "oncohybrid"
    ds.CodingSchemeIdentificationSequence = DSequence([scheme])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = COMPREHENSIVE_SR
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    return ds


# --------------------------------------------------------------------------- reading


def _code_of(c: Dataset) -> tuple[str, str]:
    value = c.get("CodeValue") or c.get("LongCodeValue") or c.get("URNCodeValue") or ""
    return (str(value), str(c.CodingSchemeDesignator))


def _concept(item: Dataset) -> tuple[str, str]:
    return _code_of(item.ConceptNameCodeSequence[0])


def _value(item: Dataset) -> tuple[str, str]:
    return _code_of(item.ConceptCodeSequence[0])


def _find(items: Any, concept: tuple[str, str, str]) -> list[Dataset]:
    return [i for i in items if _concept(i) == concept[:2]]


def read_breast_sr(ds: Dataset) -> dict[str, Any]:
    """The structured report (the mapping :func:`parse_report` takes), the overall
    category, the narrative text and the verification of a TID 4200 SR written by
    :func:`build_breast_sr`."""
    if str(getattr(ds, "SOPClassUID", "")) != COMPREHENSIVE_SR or not ds.get(
            "ConceptNameCodeSequence") or _concept(ds) != C_REPORT[:2]:
        raise InputError("not a Breast Imaging Report SR (TID 4200, Comprehensive SR)")
    root = list(ds.ContentSequence)
    supp = _find(root, C_SUPPLEMENTARY)
    if not supp:
        raise InputError("Breast Imaging Report SR: no Supplementary Data container")
    items = list(supp[0].ContentSequence)
    by_code = {v[:2]: k for k, v in _PURPOSE.items()}
    comp_by_code = {v[:2]: k for k, v in _COMPOSITION.items()}
    lat_by_code = {v[:2]: k for k, v in _LATERALITY.items()}
    finding_by_code = {v[:2]: k for k, v in _FINDING.items()}
    cat_by_code = {info.code[:2]: c for c, info in CATEGORY_INFO.items()}
    std_concepts = {concept[:2]: name for name, (concept, _) in _STANDARD.items()
                    if name != "region"}
    std_by_code = {name: {v[:2]: k for k, v in values.items()}
                   for name, (_, values) in _STANDARD.items()}
    clock_by_code = {v[:2]: h for h, v in _CLOCK.items()}
    assoc_by_code = {v[:2]: k for k, v in _ASSOCIATED.items()}
    out: dict[str, Any] = {"findings": []}
    proc = _find(items, C_PROCEDURE)[0]
    for mod in proc.ContentSequence:
        if _concept(mod) == C_REASON[:2]:
            out["purpose"] = by_code[_value(mod)]
        elif _concept(mod) == ("modality", PRIVATE_SCHEME):
            out["modality"] = _value(mod)[0]
        elif _concept(mod) == ("exam_laterality", PRIVATE_SCHEME):
            out["laterality"] = _value(mod)[0]
    for item in items:
        concept = _concept(item)
        if concept == C_COMPOSITION[:2]:
            out["composition"] = comp_by_code[_value(item)]
        elif concept[1] == PRIVATE_SCHEME and concept[0] in ("fgt", "bpe", "bpe_symmetry"):
            out[concept[0]] = _value(item)[0]
        elif concept == C_FINDING[:2]:
            val = _value(item)
            f: dict[str, Any] = {"type": finding_by_code.get(val, val[0])}
            sizes: list[float] = []
            swe: dict[str, Any] = {}
            for p in item.ContentSequence:
                pc = _concept(p)
                if pc == C_LATERALITY[:2]:
                    f["laterality"] = lat_by_code[_value(p)]
                elif pc == C_CATEGORY[:2]:
                    f["category"] = cat_by_code[_value(p)].value
                elif pc == C_DIAMETER[:2]:
                    sizes.append(float(p.MeasuredValueSequence[0].NumericValue))
                elif pc == ("121106", "DCM"):
                    f["comment"] = str(p.TextValue)
                elif pc == C_QUADRANT[:2]:
                    continue  # derived from the clock position
                elif pc == _STANDARD["region"][0][:2]:
                    v = _value(p)
                    if v in clock_by_code:
                        f["clock"] = float(clock_by_code[v])
                    else:
                        f["region"] = std_by_code["region"][v]
                elif pc in std_concepts:
                    name = std_concepts[pc]
                    f[name] = std_by_code[name][_value(p)]
                elif pc == ("associated", PRIVATE_SCHEME):
                    v = _value(p)
                    f.setdefault("associated", []).append(assoc_by_code.get(v, v[0]))
                elif pc[1] == PRIVATE_SCHEME:
                    key = pc[0]
                    if p.ValueType == "NUM":
                        mv = p.MeasuredValueSequence[0]
                        x = float(mv.NumericValue)
                        if key == "clock":
                            f["clock"] = x
                        elif key == "distance_nipple":
                            f["distance_from_nipple_cm"] = x
                        elif key in ("swe_lesion", "swe_fat"):
                            unit = str(mv.MeasurementUnitsCodeSequence[0].CodeValue)
                            swe["unit"] = unit
                            swe.setdefault(key[4:], []).append(x)
                    else:
                        f[key] = _value(p)[0]
            if sizes:
                f["size_mm"] = sizes if len(sizes) > 1 else sizes[0]
            if swe:
                f["elastography"] = {"unit": swe.get("unit", "kPa"),
                                     "lesion": swe.get("lesion", []),
                                     "fat": swe.get("fat", [])}
            out["findings"].append(f)
    overall = _find(items, C_OVERALL)
    category: Category | None = None
    if overall:
        for i in overall[0].ContentSequence:
            if _concept(i) == C_CATEGORY[:2]:
                category = cat_by_code[_value(i)]
    if getattr(ds, "StudyDate", ""):
        d = str(ds.StudyDate)
        out["exam_date"] = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
    narrative = []
    for section in _find(root, C_NARRATIVE)[0].ContentSequence:
        for t in section.get("ContentSequence", []):
            if t.ValueType == "TEXT":
                narrative.append(str(t.TextValue))
    verified = str(ds.get("VerificationFlag", "")) == "VERIFIED"
    signer = (str(ds.VerifyingObserverSequence[0].VerifyingObserverName)
              if verified and ds.get("VerifyingObserverSequence") else None)
    parse_report(out)  # what was read must be a valid report
    return {"report": out, "overall_category": category.value if category else None,
            "text": "\n".join(narrative), "verified": verified, "signed_by": signer}
