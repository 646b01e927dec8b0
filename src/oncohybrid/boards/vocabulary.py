"""Response categories of the engine with their spelled-out forms.

The engine reports codes (``PR``, ``PMR``, ``iUPD`` …); the board's pack and slides print
the code beside its spelled-out form so that nobody in the room has to remember what a
code stands for. Forms follow the criteria papers: RECIST 1.1 (Eisenhauer, EJC 2009
§4.3), iRECIST (Seymour, Lancet Oncol 2017 Table 2), mRECIST (Lencioni, Semin Liver Dis
2010), Choi (JCO 2007), PERCIST 1.0 (Wahl, JNM 2009 Table 4) and EORTC 1999 (Young, EJC
1999), Lugano 2014 (Cheson, JCO 2014 Table 3), LYRIC (Cheson, Blood 2016: indeterminate
response IR1–IR3), RECIP 1.0 (Gafita, JNM 2022), Krenning score (Kwekkeboom, Semin Nucl
Med 2002).
"""

from __future__ import annotations

__all__ = ["CATEGORY_NAMES", "CRITERION_NAMES", "spelled_out", "category_text"]

#: Code → spelled-out form, for codes whose meaning does not depend on the criterion.
CATEGORY_NAMES = {
    "CR": "complete response",
    "PR": "partial response",
    "SD": "stable disease",
    "PD": "progressive disease",
    "NE": "not evaluable",
    "ND": "no disease",
    "NON-CR/NON-PD": "neither complete response nor progressive disease",
    "MISSING": "no assessment at this visit",
    "CMR": "complete metabolic response",
    "PMR": "partial metabolic response",
    "SMD": "stable metabolic disease",
    "NMR": "no metabolic response",
    "PMD": "progressive metabolic disease",
    "iCR": "immune complete response",
    "iPR": "immune partial response",
    "iSD": "immune stable disease",
    "iUPD": "immune unconfirmed progressive disease",
    "iCPD": "immune confirmed progressive disease",
    "non-iCR/non-iUPD": "neither immune complete response nor immune unconfirmed progression",
    "IR1": "indeterminate response 1 (early SPD increase)",
    "IR2": "indeterminate response 2 (few lesions growing)",
    "IR3": "indeterminate response 3 (FDG increase without CT progression)",
    "baseline": "baseline",
}
#: Criterion key → its published name.
CRITERION_NAMES = {
    "recist1.1": "RECIST 1.1", "irecist": "iRECIST", "mrecist": "mRECIST", "choi": "Choi",
    "percist": "PERCIST 1.0", "eortc": "EORTC 1999", "lugano": "Lugano 2014",
    "lugano-pet": "Lugano 2014 (PET)", "lugano-ct": "Lugano 2014 (CT)", "lyric": "LYRIC",
    "recip": "RECIP 1.0", "krenning": "Krenning score",
}
#: Codes whose meaning depends on the criterion.
_BY_CRITERION = {
    ("krenning", c): f"uptake grade {c}" for c in ("0", "1", "2", "3", "4")
}


def spelled_out(code: str | None, criterion: str | None = None) -> str | None:
    """Spelled-out form of a category code, ``None`` when the code is not known.

    >>> spelled_out("PMR")
    'partial metabolic response'
    """
    if code is None:
        return None
    return _BY_CRITERION.get((criterion or "", code)) or CATEGORY_NAMES.get(code)


def category_text(code: str | None, criterion: str | None = None) -> str:
    """``"PR — partial response"``: the engine's code, then its spelled-out form.

    >>> category_text("PR")
    'PR — partial response'
    >>> category_text(None)
    'not assessed'
    """
    if code is None or code == "":
        return "not assessed"
    name = spelled_out(code, criterion)
    return f"{code} — {name}" if name and name != code else str(code)
