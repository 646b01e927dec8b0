"""Structured BI-RADS reports: validation of the structured findings, per-finding and
overall categories, and the report text in English and French.

Input: a mapping (the JSON a form or a file gives), e.g.::

    {"modality": "MG", "purpose": "diagnostic", "exam_date": "2026-11-02",
     "composition": "b",
     "findings": [
       {"type": "mass", "laterality": "R", "clock": 10, "distance_from_nipple_cm": 4,
        "depth": "middle", "shape": "irregular", "margin": "spiculated",
        "density": "high", "size_mm": 12, "category": "4C"},
       {"type": "calcifications", "laterality": "R", "clock": 10,
        "morphology": "fine_pleomorphic", "distribution": "grouped", "size_mm": 8,
        "category": "4B"}]}

Every descriptor is checked against the lexicon of the modality (:mod:`.lexicon`); an
unknown key or value is an :class:`~oncohybrid.errors.InputError` naming
``findings[i].field`` and the allowed values. The overall category is the most worrisome
finding's (:func:`.categories.overall_category`), its management that of the category
(ACR BI-RADS Atlas, 5th edition).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oncohybrid.breast.categories import (
    CATEGORY_INFO,
    Category,
    overall_category,
    parse_category,
)
from oncohybrid.breast.elastography import SWEResult, swe_summary
from oncohybrid.breast.lexicon import LANGUAGES, MODALITIES, allowed, fields_for, lexicon, term
from oncohybrid.errors import InputError

__all__ = ["BreastReport", "Finding", "parse_report", "report_text", "quadrant"]

_REPORT_KEYS = {"modality", "purpose", "exam_date", "laterality", "indication", "comparison",
                "composition", "fgt", "bpe", "bpe_symmetry", "findings", "recommendation",
                "patient_id", "patient_name", "accession_number", "study_instance_uid",
                "reader", "language"}
_LOCATION_KEYS = {"type", "laterality", "clock", "region", "depth", "distance_from_nipple_cm",
                  "size_mm", "category", "elastography", "comment", "id"}
_MAMMO = ("MG", "DBT", "CEM")


@dataclass(frozen=True)
class Finding:
    """One validated finding."""

    index: int
    type: str
    laterality: str
    category: Category
    descriptors: dict[str, str]
    associated: tuple[str, ...] = ()
    clock: float | None = None
    region: str | None = None
    depth: str | None = None
    distance_from_nipple_cm: float | None = None
    size_mm: tuple[float, ...] = ()
    elastography: SWEResult | None = None
    elastography_input: dict[str, Any] | None = None
    comment: str = ""

    @property
    def quadrant(self) -> str | None:
        return quadrant(self.laterality, self.clock) if self.clock is not None else None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "laterality": self.laterality,
                             "category": self.category.value, **self.descriptors}
        if self.associated:
            d["associated"] = list(self.associated)
        for key in ("clock", "region", "depth", "distance_from_nipple_cm"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.size_mm:
            d["size_mm"] = list(self.size_mm) if len(self.size_mm) > 1 else self.size_mm[0]
        if self.elastography_input:
            d["elastography"] = self.elastography_input
        if self.comment:
            d["comment"] = self.comment
        return d


@dataclass(frozen=True)
class BreastReport:
    """A validated structured report; ``overall`` is derived from the findings."""

    modality: str
    purpose: str
    exam_date: dt.date | None
    findings: tuple[Finding, ...]
    composition: str | None = None
    fgt: str | None = None
    bpe: str | None = None
    bpe_symmetry: str | None = None
    laterality: str = "B"
    indication: str = ""
    comparison: str = ""
    recommendation: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def overall(self) -> Category:
        return overall_category([f.category for f in self.findings])

    def as_dict(self) -> dict[str, Any]:
        """The normalised structured report (parse_report(as_dict()) gives it back)."""
        d: dict[str, Any] = {"modality": self.modality, "purpose": self.purpose,
                             "laterality": self.laterality,
                             "findings": [f.as_dict() for f in self.findings]}
        if self.exam_date:
            d["exam_date"] = self.exam_date.isoformat()
        for key in ("composition", "fgt", "bpe", "bpe_symmetry"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        for key in ("indication", "comparison", "recommendation"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        d.update(self.extra)
        return d


def quadrant(laterality: str, clock: float) -> str:
    """The quadrant (or the junction of two) of a clock-face position, seen facing the
    patient: 12-3 o'clock is upper inner in the right breast, upper outer in the left.

    >>> quadrant("R", 10), quadrant("L", 10), quadrant("R", 12)
    ('UOQ', 'UIQ', 'upper')
    """
    c = clock % 12  # 12 -> 0
    if c == 0:
        return "upper"
    if c == 6:
        return "lower"
    if c in (3, 9):
        inner = (c == 3) == (laterality == "R")
        return "inner" if inner else "outer"
    upper = c < 3 or c > 9
    inner_side = (0 < c < 6) == (laterality == "R")
    return ("U" if upper else "L") + ("I" if inner_side else "O") + "Q"


def _choice(value: object, allowed_codes: list[str] | tuple[str, ...], where: str) -> str:
    v = str(value).strip()
    if v not in allowed_codes:
        raise InputError(f"{where}: {value!r} is not one of {', '.join(allowed_codes)}")
    return v


def _number(value: object, where: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool):
        raise InputError(f"{where}: {value!r} is not a number")
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(x) or not low <= x <= high:
        raise InputError(f"{where}: {value!r} is outside {low:g}-{high:g}")
    return x


def _parse_finding(i: int, raw: Mapping[str, Any], modality: str) -> Finding:
    where = f"findings[{i}]"
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected an object")
    types = lexicon()["finding_types"]
    ftype = _choice(raw.get("type", ""), [t for t, s in types.items()
                                          if modality in s["modalities"]], f"{where}.type")
    fields = fields_for(ftype, modality)
    unknown = set(raw) - _LOCATION_KEYS - set(fields)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for a "
                         f"{modality} {ftype} (descriptors: {', '.join(fields) or 'none'})")
    if "category" not in raw:
        raise InputError(f"{where}.category: every finding needs its BI-RADS category")
    category = parse_category(raw["category"], f"{where}.category")
    laterality = _choice(raw.get("laterality", ""), ("R", "L"), f"{where}.laterality")
    descriptors: dict[str, str] = {}
    associated: tuple[str, ...] = ()
    for name in fields:
        if name not in raw or raw[name] in (None, "", []):
            continue
        codes = allowed(name, modality)
        if lexicon()["fields"][name].get("multiple"):
            values = raw[name] if isinstance(raw[name], list) else [raw[name]]
            associated = tuple(_choice(v, codes, f"{where}.{name}") for v in values)
        else:
            descriptors[name] = _choice(raw[name], codes, f"{where}.{name}")
    clock = region = depth = None
    if raw.get("clock") not in (None, ""):
        clock = _number(raw["clock"], f"{where}.clock", 0.5, 12)
        if clock * 2 != int(clock * 2):
            raise InputError(f"{where}.clock: {raw['clock']!r} is not a whole or half hour")
    if raw.get("region") not in (None, ""):
        region = _choice(raw["region"], list(lexicon()["regions"]), f"{where}.region")
    if raw.get("depth") not in (None, ""):
        depth = _choice(raw["depth"], list(lexicon()["depth"]), f"{where}.depth")
    dist = None
    if raw.get("distance_from_nipple_cm") not in (None, ""):
        dist = _number(raw["distance_from_nipple_cm"], f"{where}.distance_from_nipple_cm", 0, 30)
    size: tuple[float, ...] = ()
    if raw.get("size_mm") not in (None, "", []):
        sizes = raw["size_mm"] if isinstance(raw["size_mm"], list) else [raw["size_mm"]]
        if len(sizes) > 3:
            raise InputError(f"{where}.size_mm: at most three dimensions")
        size = tuple(_number(s, f"{where}.size_mm", 0.1, 300) for s in sizes)
    swe = swe_in = None
    if raw.get("elastography"):
        if modality != "US":
            raise InputError(f"{where}.elastography: shear-wave elastography is an "
                             f"ultrasound measurement, not {modality}")
        e = raw["elastography"]
        if not isinstance(e, Mapping):
            raise InputError(f"{where}.elastography: expected an object with unit, lesion, fat")
        unit = str(e.get("unit", "kPa"))
        lesion = e.get("lesion", [])
        fat = e.get("fat", [])
        lesion = lesion if isinstance(lesion, list) else [lesion]
        fat = fat if isinstance(fat, list) else [fat]
        swe = swe_summary(lesion, fat, unit, where=f"{where}.elastography")
        swe_in = {"unit": unit, "lesion": [float(v) for v in lesion],
                  "fat": [float(v) for v in fat]}
    return Finding(index=i, type=ftype, laterality=laterality, category=category,
                   descriptors=descriptors, associated=associated, clock=clock, region=region,
                   depth=depth, distance_from_nipple_cm=dist, size_mm=size,
                   elastography=swe, elastography_input=swe_in,
                   comment=str(raw.get("comment") or "").strip())


#: Other spellings of keys and finding types accepted on input (the canonical key is what
#: :meth:`BreastReport.as_dict` writes).
_REPORT_ALIASES = {"date": "exam_date", "study_date": "exam_date", "breast_density": "composition",
                   "density": "composition", "breast_composition": "composition",
                   "bpe_level": "bpe", "side": "laterality"}
_FINDING_ALIASES = {"side": "laterality", "birads": "category", "bi_rads": "category",
                    "assessment": "category", "bi-rads": "category",
                    "distance_cm": "distance_from_nipple_cm",
                    "distance_from_nipple": "distance_from_nipple_cm", "size": "size_mm",
                    "calcification_morphology": "morphology",
                    "calcification_distribution": "distribution",
                    "associated_features": "associated", "echo": "echo_pattern",
                    "posterior": "posterior_features", "elasticity": "elastography",
                    "swe": "elastography", "location": "region"}
_TYPE_ALIASES = {"calcification": "calcifications", "distortion": "architectural_distortion",
                 "nme": "non_mass_enhancement", "lymph_node": "intramammary_lymph_node",
                 "asymmetries": "asymmetry"}
_SIDES = {"r": "R", "right": "R", "d": "R", "droit": "R", "l": "L", "left": "L",
          "g": "L", "gauche": "L", "b": "B", "both": "B", "bilateral": "B"}


def _code_text(value: Any) -> Any:
    """``"Fine pleomorphic"`` / ``"fat-containing"`` → the lexicon key form."""
    if isinstance(value, str):
        return "_".join(value.strip().lower().replace("-", " ").split())
    return value


def _clock_value(value: Any) -> Any:
    """``"10:30"``, ``"10 o'clock"``, ``"10h30"`` → 10.5; numbers unchanged."""
    if not isinstance(value, str):
        return value
    t = value.strip().lower().replace("o'clock", "").replace("h", ":").strip().rstrip(":")
    if ":" in t:
        h, _, m = t.partition(":")
        try:
            return int(h) + int(m or 0) / 60
        except ValueError:
            return value
    return t


def _normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    out = {_REPORT_ALIASES.get(k, k): v for k, v in data.items()}
    if isinstance(out.get("laterality"), str):
        out["laterality"] = _SIDES.get(out["laterality"].strip().lower(), out["laterality"])
    findings = out.get("findings")
    if isinstance(findings, list):
        norm = []
        for f in findings:
            if not isinstance(f, Mapping):
                norm.append(f)
                continue
            g = {_FINDING_ALIASES.get(k.lower(), k.lower()): v for k, v in f.items()}
            if isinstance(g.get("type"), str):
                t = _code_text(g["type"])
                g["type"] = _TYPE_ALIASES.get(t, t)
            if isinstance(g.get("laterality"), str):
                g["laterality"] = _SIDES.get(g["laterality"].strip().lower(), g["laterality"])
            if "clock" in g:
                g["clock"] = _clock_value(g["clock"])
            for k, v in list(g.items()):
                if k in lexicon()["fields"] or k in ("depth", "region"):
                    g[k] = [_code_text(x) for x in v] if isinstance(v, list) else _code_text(v)
            norm.append(g)
        out["findings"] = norm
    return out


def parse_report(data: Mapping[str, Any]) -> BreastReport:
    """Validate a structured report (module docstring) into a :class:`BreastReport`.

    Common other spellings are accepted and normalised: ``side``/``birads``/``size`` for
    ``laterality``/``category``/``size_mm``, ``right``/``left`` for ``R``/``L``,
    ``"Fine pleomorphic"`` for ``fine_pleomorphic``, ``"10:30"`` for 10.5 o'clock …
    """
    if not isinstance(data, Mapping):
        raise InputError("report: expected a JSON object")
    data = _normalise(data)
    unknown = set(data) - _REPORT_KEYS
    if unknown:
        raise InputError(f"report: unknown key(s) {', '.join(sorted(unknown))}")
    modality = _choice(str(data.get("modality", "")).upper(), MODALITIES, "modality")
    purpose = _choice(str(data.get("purpose", "diagnostic")).lower(),
                      ("screening", "diagnostic"), "purpose")
    exam_date = None
    if data.get("exam_date"):
        try:
            exam_date = dt.date.fromisoformat(str(data["exam_date"]))
        except ValueError:
            raise InputError(f"exam_date: {data['exam_date']!r} is not a date "
                             "(YYYY-MM-DD)") from None
    lex = lexicon()
    composition = fgt = bpe = bpe_sym = None
    if modality in _MAMMO:
        if not data.get("composition"):
            raise InputError(f"composition: a {modality} report states the breast "
                             "composition (a, b, c or d)")
        composition = _choice(str(data["composition"]).lower(), list(lex["composition"]),
                              "composition")
    elif data.get("composition"):
        raise InputError(f"composition: mammographic breast composition does not apply to "
                         f"{modality}")
    if data.get("fgt"):
        if modality != "MRI":
            raise InputError("fgt: the amount of fibroglandular tissue is an MRI descriptor")
        fgt = _choice(str(data["fgt"]).lower(), list(lex["mri_fgt"]), "fgt")
    if data.get("bpe"):
        if modality not in ("MRI", "CEM"):
            raise InputError("bpe: background parenchymal enhancement is an MRI or CEM "
                             "descriptor")
        bpe = _choice(str(data["bpe"]).lower(), list(lex["bpe"]), "bpe")
    if data.get("bpe_symmetry"):
        bpe_sym = _choice(str(data["bpe_symmetry"]).lower(), list(lex["bpe_symmetry"]),
                          "bpe_symmetry")
    raw_findings = data.get("findings") or []
    if not isinstance(raw_findings, list):
        raise InputError("findings: expected a list")
    findings = tuple(_parse_finding(i, f, modality) for i, f in enumerate(raw_findings))
    laterality = _choice(str(data.get("laterality", "B")).upper(), ("B", "R", "L"),
                         "laterality")
    extra = {k: str(data[k]) for k in ("patient_id", "patient_name", "accession_number",
                                       "study_instance_uid", "reader") if data.get(k)}
    return BreastReport(modality=modality, purpose=purpose, exam_date=exam_date,
                        findings=findings, composition=composition, fgt=fgt, bpe=bpe,
                        bpe_symmetry=bpe_sym, laterality=laterality,
                        indication=str(data.get("indication") or "").strip(),
                        comparison=str(data.get("comparison") or "").strip(),
                        recommendation=str(data.get("recommendation") or "").strip(),
                        extra=extra)


# --------------------------------------------------------------------------- text

_WORDS = {
    "en": {"exam": "Examination", "indication": "Indication", "comparison": "Comparison",
           "composition": "Breast composition", "findings": "Findings",
           "assessment": "Assessment", "recommendation": "Recommendation",
           "screening": "screening", "diagnostic": "diagnostic", "category": "BI-RADS",
           "none": "No mass, suspicious calcifications or architectural distortion.",
           "measuring": "measuring", "spanning": "spanning", "associated":
           "associated features", "from_nipple": "from the nipple", "fgt":
           "Amount of fibroglandular tissue", "bpe": "Background parenchymal enhancement",
           "likelihood": "likelihood of malignancy", "swe": "shear-wave elastography",
           "emean": "Emean", "ratio": "lesion-to-fat ratio", "overall": "Overall assessment",
           "colon": ":", "semicolon": ";"},
    "fr": {"exam": "Examen", "indication": "Indication", "comparison": "Comparaison",
           "composition": "Composition mammaire", "findings": "Résultats",
           "assessment": "Conclusion", "recommendation": "Recommandation",
           "screening": "dépistage", "diagnostic": "diagnostic", "category":
           "catégorie BI-RADS",
           "none": "Pas de masse, de microcalcifications suspectes ni de distorsion "
                   "architecturale.",
           "measuring": "mesurant", "spanning": "s'étendant sur", "associated":
           "signes associés", "from_nipple": "du mamelon", "fgt":
           "Quantité de tissu fibroglandulaire", "bpe":
           "Rehaussement parenchymateux de fond", "likelihood": "probabilité de malignité",
           "swe": "élastographie par ondes de cisaillement", "emean": "Emoy",
           "ratio": "rapport lésion/graisse", "overall": "Classification globale",
           "colon": " :", "semicolon": " ;"},
}


def _num(x: float, lang: str, digits: int = 1) -> str:
    text = f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:.0f}"
    return text.replace(".", ",") if lang == "fr" else text


def _clock(clock: float, lang: str) -> str:
    h = int(clock)
    half = clock != h
    if lang == "fr":
        return f"à {h} h 30" if half else f"à {h} h"
    return f"{h}:30" if half else f"{h} o'clock"


def _location(f: Finding, lang: str) -> str:
    parts = [term("laterality", f.laterality, lang)]
    parts[0] = parts[0][0].upper() + parts[0][1:]
    if f.region:
        parts.append(term("regions", f.region, lang))
    if f.clock is not None:
        parts.append(term("quadrants", quadrant(f.laterality, f.clock), lang))
        parts.append(_clock(f.clock, lang))
    if f.distance_from_nipple_cm is not None:
        d = _num(f.distance_from_nipple_cm, lang)
        parts.append(f"à {d} cm {_WORDS['fr']['from_nipple']}" if lang == "fr"
                     else f"{d} cm {_WORDS['en']['from_nipple']}")
    if f.depth:
        parts.append(term("depth", f.depth, lang))
    return ", ".join(parts)


def _size(f: Finding, lang: str, verb: str) -> str:
    if not f.size_mm:
        return ""
    dims = " × ".join(_num(s, lang) for s in f.size_mm)
    return f"{_WORDS[lang][verb]} {dims} mm"


def _d(f: Finding, name: str, lang: str) -> str | None:
    code = f.descriptors.get(name)
    return term("", code, lang, field=name) if code else None


def _mass_text(f: Finding, lang: str) -> list[str]:
    shape = _d(f, "shape", lang)
    if lang == "fr":
        head = "masse" + (f" {shape}" if shape else "")
        margin = _d(f, "margin", lang)
        parts = [head + (f" à {margin}" if margin else "")]
    else:
        head = (f"{shape} " if shape else "") + "mass"
        margin = _d(f, "margin", lang)
        parts = [head + (f" with {margin}" if margin else "")]
    for name in ("density", "orientation", "echo_pattern", "posterior_features",
                 "internal_enhancement", "conspicuity"):
        t = _d(f, name, lang)
        if t:
            parts.append(t)
    return parts


def _calc_text(f: Finding, lang: str) -> list[str]:
    morph = _d(f, "morphology", lang) or ("calcifications")
    dist = _d(f, "distribution", lang)
    return [f"{morph} {dist}" if dist else morph]


def _nme_text(f: Finding, lang: str) -> list[str]:
    parts = [lexicon()["finding_types"]["non_mass_enhancement"][lang]]
    for name in ("nme_distribution", "nme_pattern", "conspicuity"):
        t = _d(f, name, lang)
        if t:
            parts.append(t)
    return [" ".join(parts[:2])] + parts[2:] if len(parts) > 1 else parts


def finding_text(f: Finding, lang: str = "en") -> str:
    """One numbered finding: location, descriptors, size, features, category."""
    if lang not in LANGUAGES:
        raise InputError(f"language: {lang!r} is not one of {', '.join(LANGUAGES)}")
    w = _WORDS[lang]
    if f.type == "mass":
        parts = _mass_text(f, lang)
    elif f.type == "calcifications":
        parts = _calc_text(f, lang)
    elif f.type == "asymmetry":
        parts = [_d(f, "asymmetry_kind", lang) or lexicon()["finding_types"]["asymmetry"][lang]]
    elif f.type == "non_mass_enhancement":
        parts = _nme_text(f, lang)
    else:
        parts = [lexicon()["finding_types"][f.type][lang]]
    size = _size(f, lang, "spanning" if f.type in ("calcifications", "non_mass_enhancement")
                 else "measuring")
    if size:
        parts.append(size)
    kin = [t for t in (_d(f, "kinetics_initial", lang), _d(f, "kinetics_delayed", lang)) if t]
    text = ", ".join(parts)
    if kin:
        text += f"{w['semicolon']} " + ("cinétique" if lang == "fr" else "kinetics") + \
            f"{w['colon']} " + ", ".join(kin)
    if f.associated:
        assoc = ", ".join(term("", a, lang, field="associated") for a in f.associated)
        text += f"{w['semicolon']} {w['associated']}{w['colon']} {assoc}"
    if f.elastography:
        e = f.elastography
        swe = (f"{w['swe']}{w['colon']} Emax {_num(e.emax_kpa, lang)} kPa "
               f"({_num(e.emax_m_s, lang, 2)} m/s), {w['emean']} {_num(e.emean_kpa, lang)} kPa")
        if e.lesion_to_fat_ratio is not None:
            swe += f", {w['ratio']} {_num(e.lesion_to_fat_ratio, lang)}"
        text += f"{w['semicolon']} {swe}"
    if f.comment:
        text += f" ({f.comment})"
    cat = (f"Catégorie BI-RADS {f.category.value}" if lang == "fr"
           else f"BI-RADS {f.category.value}")
    return f"{_location(f, lang)}{w['colon']} {text}. {cat}."


def report_text(report: BreastReport, lang: str = "en") -> str:
    """The report text from the structured findings, in English (``en``) or French (``fr``)."""
    if lang not in LANGUAGES:
        raise InputError(f"language: {lang!r} is not one of {', '.join(LANGUAGES)}")
    w = _WORDS[lang]
    lex = lexicon()
    lines = []
    exam = f"{lex['modalities'][report.modality][lang]} ({w[report.purpose]})"
    if report.exam_date:
        d = report.exam_date
        exam += ", " + (d.strftime("%d/%m/%Y") if lang == "fr" else d.isoformat())
    lines.append(f"{w['exam']}{w['colon']} {exam}.")
    if report.indication:
        lines.append(f"{w['indication']}{w['colon']} {report.indication}")
    if report.comparison:
        lines.append(f"{w['comparison']}{w['colon']} {report.comparison}")
    if report.composition:
        label = (f"type ACR {report.composition}" if lang == "fr"
                 else f"ACR {report.composition}")
        lines.append(f"{w['composition']}{w['colon']} {label} – "
                     f"{term('composition', report.composition, lang)}.")
    if report.fgt:
        lines.append(f"{w['fgt']}{w['colon']} {report.fgt} – "
                     f"{term('mri_fgt', report.fgt, lang)}.")
    if report.bpe:
        bpe = term("bpe", report.bpe, lang)
        if report.bpe_symmetry:
            bpe += ", " + term("bpe_symmetry", report.bpe_symmetry, lang)
        lines.append(f"{w['bpe']}{w['colon']} {bpe}.")
    lines.append(f"{w['findings']}{w['colon']}")
    if report.findings:
        for n, f in enumerate(report.findings, start=1):
            lines.append(f"{n}. {finding_text(f, lang)}")
    else:
        lines.append(w["none"])
    cat = report.overall
    info = CATEGORY_INFO[cat]
    likelihood = info.likelihood_fr if lang == "fr" else info.likelihood
    lik = "" if likelihood == "N/A" else f" ({w['likelihood']} {likelihood})"
    if lang == "fr":
        name = info.name_fr[0].lower() + info.name_fr[1:]
        lines.append(f"{w['assessment']}{w['colon']} {w['category']} {cat.value} "
                     f"(ACR {cat.value}){w['colon']} {name}{lik}.")
    else:
        lines.append(f"{w['assessment']}{w['colon']} {w['category']} {cat.value} – "
                     f"{info.name_en}{lik}.")
    management = info.management_fr if lang == "fr" else info.management_en
    rec = f"{management}."
    if report.recommendation:
        rec += f" {report.recommendation}"
    lines.append(f"{w['recommendation']}{w['colon']} {rec}")
    return "\n".join(lines)
