"""Identify the tracer, radionuclide and acquisition modality of a nuclear-medicine series.

Pure functions over a pydicom header (no pixel data, no I/O). Sources, most specific first:

- (0054,0016) *Radiopharmaceutical Information Sequence* (PS3.3 C.8.9.2 PET Isotope
  Module; C.8.4.10 NM Isotope Module), item 1:
  - (0054,0304) *Radiopharmaceutical Code Sequence*: SNOMED CT / SRT codes of CID 4021
    "PET Radiopharmaceutical" and CID 25 "Radiopharmaceuticals" (PS3.16);
  - (0018,0031) *Radiopharmaceutical*: free text ("FDG -- fluorodeoxyglucose", "Ga68
    DOTATATE", "PSMA-1007" ...), matched by keywords;
  - (0054,0300) *Radionuclide Code Sequence* (CID 4020 "PET Radionuclide", CID 18
    "Isotopes in Radiopharmaceuticals") and (0018,1075) *Radionuclide Half Life*.
- (0008,0060) *Modality* and (0008,0016) *SOP Class UID* (PS3.4 B.5): a Lu-177 or Tc-99m
  series stored as ``PT`` is a SPECT / planar study in the wrong container, not PET.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

#: SOP classes (PS3.4 Annex B.5) by imaging family.
PET_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.128": "PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.128.1": "Legacy Converted Enhanced PET Image Storage",
}
NM_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.20": "Nuclear Medicine Image Storage"}

#: Radionuclides: key -> (display name, half-life s, positron emitter). Half-lives from
#: the NNDC/DDEP tables as used by DICOM PS3.16 CID 4020 / CID 18 users.
RADIONUCLIDES: dict[str, tuple[str, float, bool]] = {
    "F-18": ("F-18", 6586.2, True),
    "Ga-68": ("Ga-68", 4062.6, True),
    "C-11": ("C-11", 1223.4, True),
    "N-13": ("N-13", 597.9, True),
    "O-15": ("O-15", 122.2, True),
    "Rb-82": ("Rb-82", 75.4, True),
    "Cu-64": ("Cu-64", 45721.1, True),
    "Zr-89": ("Zr-89", 282276.0, True),
    "I-124": ("I-124", 360806.4, True),
    "Ge-68": ("Ge-68", 23410080.0, True),
    "Lu-177": ("Lu-177", 574300.8, False),
    "Tc-99m": ("Tc-99m", 21624.12, False),
    "In-111": ("In-111", 242326.1, False),
    "I-131": ("I-131", 692988.0, False),
    "I-123": ("I-123", 47604.0, False),
    "Y-90": ("Y-90", 230400.0, False),
    "Ga-67": ("Ga-67", 281810.0, False),
    "Tl-201": ("Tl-201", 263030.0, False),
}
#: Radionuclide codes (SNOMED CT / SRT, CID 4020) mapped directly; any other code is read
#: through its Code Meaning text and the half-life.
NUCLIDE_CODES = {"77004003": "F-18", "C-111A1": "F-18"}

#: Tracer families a criterion can be valid for.
FDG, SSTR, PSMA, FAPI, FLT, FET, OTHER, UNKNOWN = (
    "FDG", "SSTR", "PSMA", "FAPI", "FLT", "amino acid", "other", "unknown")

#: Radiopharmaceutical codes (SNOMED CT / SRT, CID 4021) mapped directly; any other code
#: is read through its Code Meaning text (keywords below).
PHARM_CODES: dict[str, tuple[str, str]] = {
    "35321007": ("Fluorodeoxyglucose F^18^", FDG),
    "C-B1031": ("Fluorodeoxyglucose F^18^", FDG),
}

#: Free-text keywords (upper case, punctuation removed) -> (name, family), first match.
_KEYWORDS: tuple[tuple[str, str, str], ...] = (
    (r"PSMA|PSMA11|PSMA1007|DCFPYL|PYLARIFY|PIFLUFOLASTAT|GOZETOTIDE|ILLUCCIX|LOCAMETZ|"
     r"POSLUMA|FLOTUFOLASTAT|RH ?PSMA|DCFBC|PSMA617|PSMAI&T|PSMA I&T|VIPIVOTIDE|PLUVICTO",
     "PSMA ligand", PSMA),
    (r"DOTA ?TATE|DOTA ?TOC|DOTA ?NOC|DOTA ?LAN|NETSPOT|DETECTNET|SOMAKIT|OCTREOSCAN|"
     r"PENTETREOTIDE|OCTREOTIDE|SSTR|LUTATHERA|EDOTREOTIDE|OXODOTREOTIDE|SOMATOSTATIN",
     "somatostatin-receptor ligand", SSTR),
    (r"FAPI", "FAP inhibitor", FAPI),
    (r"FLT|FLUOROTHYMIDINE", "Fluorothymidine F^18^", FLT),
    (r"FET|FLUOROETHYL ?TYROSINE|FDOPA|F ?DOPA|METHIONINE|FACBC|FLUCICLOVINE|AXUMIN",
     "amino-acid tracer", "amino acid"),
    (r"FDG|FLUORODEOXYGLUCOSE|FLUDEOXYGLUCOSE|DEOXYGLUCOSE|GLUCOSE", "Fluorodeoxyglucose F^18^",
     FDG),
    (r"CHOLINE|NAF|SODIUM FLUORIDE|FLUORIDE|FES|ESTRADIOL|FMISO|MISO|RUBIDIUM|AMMONIA|WATER|"
     r"FLORBETA|FLUTEMETAMOL|FLORTAUCIPIR|PIB|MDP|HDP|SESTAMIBI|MIBG|IODIDE|DOTAREM",
     "other tracer", OTHER),
)
#: Radionuclide in free text, matched with spaces and hyphens removed.
_NUCLIDE_TEXT = (
    (r"F18|18F|FLUORINE", "F-18"), (r"GA68|68GA|GALLIUM68|68GALLIUM", "Ga-68"),
    (r"CU64|64CU|COPPER", "Cu-64"), (r"LU177|177LU|LUTETIUM", "Lu-177"),
    (r"IN111|111IN|INDIUM", "In-111"), (r"TC99M?|99M?TC|TECHNETIUM", "Tc-99m"),
    (r"ZR89|89ZR|ZIRCONIUM", "Zr-89"), (r"C11(?!\d)|(?<!\d)11C(?![A-Z])|CARBON", "C-11"),
    (r"I131|131I", "I-131"), (r"I124|124I", "I-124"), (r"Y90|90Y|YTTRIUM", "Y-90"),
    (r"RB82|82RB|RUBIDIUM", "Rb-82"), (r"N13|13N", "N-13"),
)


@dataclass(frozen=True)
class TracerInfo:
    """What a series says about its tracer and modality, and where each fact came from."""

    modality: str | None
    sop_class: str | None
    radiopharmaceutical: str | None  # display name (code meaning or matched name)
    family: str  # FDG, SSTR, PSMA, FAPI, FLT, amino acid, other, unknown
    radionuclide: str | None  # "F-18", "Lu-177" ...
    half_life_s: float | None
    positron_emitter: bool | None
    sources: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def imaging(self) -> str:
        """``PET``, ``SPECT/NM`` or the stored modality; a non-positron nuclide stored as
        PT counts as SPECT/NM (the container is wrong, the physics is not PET)."""
        if self.modality == "PT" and self.positron_emitter is False:
            return "SPECT/NM"
        if self.modality == "PT":
            return "PET"
        if self.modality == "NM":
            return "SPECT/NM"
        return self.modality or "unknown"

    def summary(self) -> str:
        """One line for CLI and web display, e.g. ``FDG (Fluorodeoxyglucose F^18^), F-18, PET``."""
        name = self.radiopharmaceutical or "tracer not stated"
        nuc = self.radionuclide or "radionuclide unknown"
        return f"{self.family} ({name}), {nuc}, {self.imaging}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"], d["problems"] = list(self.sources), list(self.problems)
        d["imaging"] = self.imaging
        d["summary"] = self.summary()
        return d


def _norm(text: str) -> str:
    return re.sub(r"[^A-Z0-9&+ ]+", " ", text.upper().replace("^", ""))


def _nuclide_from_half_life(t: float) -> str | None:
    best = min(RADIONUCLIDES, key=lambda k: abs(RADIONUCLIDES[k][1] - t) / RADIONUCLIDES[k][1])
    return best if abs(RADIONUCLIDES[best][1] - t) <= 0.02 * RADIONUCLIDES[best][1] else None


def identify_tracer(ds: Any) -> TracerInfo:
    """Tracer family, radionuclide and imaging modality of one image header.

    >>> from pydicom import Dataset
    >>> ds = Dataset(); ds.Modality = "PT"
    >>> item = Dataset(); item.Radiopharmaceutical = "Lu177-PSMA-617"
    >>> item.RadionuclideHalfLife = "574300"; ds.RadiopharmaceuticalInformationSequence = [item]
    >>> info = identify_tracer(ds)
    >>> info.family, info.radionuclide, info.imaging
    ('PSMA', 'Lu-177', 'SPECT/NM')
    """
    modality = str(getattr(ds, "Modality", "") or "") or None
    sop = str(getattr(ds, "SOPClassUID", "") or "") or None
    sources: list[str] = []
    problems: list[str] = []
    name: str | None = None
    family = UNKNOWN
    nuclide: str | None = None
    half: float | None = None
    seq = getattr(ds, "RadiopharmaceuticalInformationSequence", None) or []
    item = seq[0] if len(seq) else None
    if item is not None:
        for code in getattr(item, "RadiopharmaceuticalCodeSequence", None) or []:
            value = str(getattr(code, "CodeValue", "") or "").strip()
            if value in PHARM_CODES:
                name, family = PHARM_CODES[value]
                sources.append(f"(0054,0304) code {value}")
                break
            meaning = str(getattr(code, "CodeMeaning", "") or "")
            if meaning:
                name = name or meaning
        text = str(getattr(item, "Radiopharmaceutical", "") or "").strip()
        if family == UNKNOWN and (text or name):
            norm = _norm(f"{text} {name or ''}")
            for pattern, label, fam in _KEYWORDS:
                if re.search(rf"(?<![A-Z0-9])(?:{pattern})(?![A-Z])", norm):
                    family, name = fam, text or label
                    sources.append(f"(0018,0031) text {text!r}" if text else "(0054,0304) meaning")
                    break
        if name is None and text:
            name = text
        for code in getattr(item, "RadionuclideCodeSequence", None) or []:
            value = str(getattr(code, "CodeValue", "") or "").strip()
            if value in NUCLIDE_CODES:
                nuclide = NUCLIDE_CODES[value]
                sources.append(f"(0054,0300) code {value}")
                break
        meanings = " ".join(str(getattr(c, "CodeMeaning", "") or "")
                            for c in getattr(item, "RadionuclideCodeSequence", None) or [])
        for what, source in ((meanings, "(0054,0300) meaning"), (text, "(0018,0031) text")):
            if nuclide is not None or not what:
                continue
            norm = _norm(what).replace(" ", "")
            for pattern, key in _NUCLIDE_TEXT:
                if re.search(pattern, norm):
                    nuclide = key
                    sources.append(f"{source} {what!r}")
                    break
        raw_half = getattr(item, "RadionuclideHalfLife", None)
        try:
            half = float(raw_half) if raw_half not in (None, "") else None
        except (TypeError, ValueError):
            half = None
        if half is not None and half > 0:
            by_half = _nuclide_from_half_life(half)
            if nuclide is None and by_half is not None:
                nuclide = by_half
                sources.append(f"(0018,1075) half-life {half:g} s")
            elif nuclide is not None and by_half is not None and by_half != nuclide:
                problems.append(f"(0018,1075) half-life {half:g} s is {by_half}, but the "
                                f"series names {nuclide}")
    positron = RADIONUCLIDES[nuclide][2] if nuclide in RADIONUCLIDES else None
    if family == FDG and nuclide is None:
        nuclide, positron = "F-18", True
    if modality == "PT" and positron is False:
        problems.append(f"{nuclide} emits no positrons: this series is stored with Modality "
                        "PT but is a SPECT/planar study; PET criteria do not apply")
    if sop and modality == "PT" and sop in NM_SOP_CLASSES:
        problems.append(f"Modality PT with the {NM_SOP_CLASSES[sop]} SOP class")
    if sop and modality == "NM" and sop in PET_SOP_CLASSES:
        problems.append(f"Modality NM with the {PET_SOP_CLASSES[sop]} SOP class")
    return TracerInfo(modality, sop, name, family, nuclide, half, positron, tuple(sources),
                      tuple(problems))
