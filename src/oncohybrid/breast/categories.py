"""BI-RADS assessment categories 0-6 (4A/4B/4C), their management and the overall category.

Categories, likelihoods of malignancy and management follow the ACR BI-RADS Atlas, 5th
edition (2013), mammography "Reporting system", Table "Concordance between BI-RADS
assessment categories and management recommendations"; the French wording is that of the
French edition of the atlas.

The overall category of an examination is the category of its most worrisome finding,
ranked with the atlas's hierarchy of increasing likelihood of malignancy
``1 < 2 < 3 < 6 < 0 < 4 (4A < 4B < 4C) < 5`` (5th edition, mammography "Guidance":
an examination with several findings is assessed by the most abnormal one; 0 ranks above
6 because an unresolved finding elsewhere must still be worked up, and 4/5 above 0
because a finding needing tissue diagnosis is not delayed by the work-up of another).
An examination without findings is category 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from oncohybrid.errors import InputError

__all__ = ["Category", "CATEGORY_INFO", "CategoryInfo", "overall_category",
           "parse_category"]


class Category(StrEnum):
    """A BI-RADS assessment category (5th edition)."""

    C0 = "0"
    C1 = "1"
    C2 = "2"
    C3 = "3"
    C4 = "4"
    C4A = "4A"
    C4B = "4B"
    C4C = "4C"
    C5 = "5"
    C6 = "6"

    @property
    def is_4(self) -> bool:
        return self.value.startswith("4")

    @property
    def rank(self) -> int:
        """Position in the atlas hierarchy 1 < 2 < 3 < 6 < 0 < 4A < 4 < 4B < 4C < 5.

        An unsubdivided 4 (> 2 % to < 95 %) ranks with 4B, between 4A and 4C.
        """
        return _RANK[self]


_RANK = {Category.C1: 1, Category.C2: 2, Category.C3: 3, Category.C6: 4, Category.C0: 5,
         Category.C4A: 6, Category.C4: 7, Category.C4B: 7, Category.C4C: 8, Category.C5: 9}


@dataclass(frozen=True)
class CategoryInfo:
    """What a category means and implies, in English and French, with its SR code."""

    name_en: str
    name_fr: str
    management_en: str
    management_fr: str
    likelihood: str
    likelihood_fr: str
    #: (code value, coding scheme designator, meaning) of CID 6027 "Assessment from BI-RADS"
    code: tuple[str, str, str]
    tissue_diagnosis: bool


_TISSUE_EN = "Tissue diagnosis"
_TISSUE_FR = "Prélèvement histologique (biopsie)"

CATEGORY_INFO: dict[Category, CategoryInfo] = {
    Category.C0: CategoryInfo(
        "Incomplete - need additional imaging evaluation and/or prior mammograms for comparison",
        "Évaluation incomplète - nécessite un complément d'imagerie et/ou la comparaison avec "
        "les examens antérieurs",
        "Recall for additional imaging and/or comparison with prior examination(s)",
        "Rappel pour imagerie complémentaire et/ou comparaison avec les examens antérieurs",
        "N/A", "N/A", ("397138000", "SCT",
                "0 - Incomplete - Need additional imaging evaluation +/- priors"), False),
    Category.C1: CategoryInfo(
        "Negative", "Négatif", "Routine screening", "Dépistage selon le rythme habituel",
        "essentially 0 %", "quasi nulle", ("397140005", "SCT", "1 - Negative"), False),
    Category.C2: CategoryInfo(
        "Benign", "Bénin", "Routine screening", "Dépistage selon le rythme habituel",
        "essentially 0 %", "quasi nulle", ("397141009", "SCT", "2 - Benign"), False),
    Category.C3: CategoryInfo(
        "Probably benign", "Probablement bénin",
        "Short-interval (6-month) follow-up or continued surveillance",
        "Surveillance à court terme (6 mois) ou surveillance rapprochée",
        "> 0 % but ≤ 2 %", "> 0 % et ≤ 2 %", ("397143007", "SCT", "3 - Probably Benign"), False),
    Category.C4: CategoryInfo(
        "Suspicious", "Suspect", _TISSUE_EN, _TISSUE_FR, "> 2 % but < 95 %", "> 2 % et < 95 %",
        ("397144001", "SCT", "4 - Suspicious"), True),
    Category.C4A: CategoryInfo(
        "Low suspicion for malignancy", "Faible suspicion de malignité", _TISSUE_EN,
        _TISSUE_FR, "> 2 % to ≤ 10 %", "> 2 % à ≤ 10 %",
        ("MA.II.A.5.4A", "BI", "4A - Low suspicion"), True),
    Category.C4B: CategoryInfo(
        "Moderate suspicion for malignancy", "Suspicion modérée de malignité", _TISSUE_EN,
        _TISSUE_FR, "> 10 % to ≤ 50 %", "> 10 % à ≤ 50 %",
        ("MA.II.A.5.4B", "BI", "4B - Intermediate suspicion"), True),
    Category.C4C: CategoryInfo(
        "High suspicion for malignancy", "Forte suspicion de malignité", _TISSUE_EN,
        _TISSUE_FR, "> 50 % to < 95 %", "> 50 % à < 95 %",
        ("MA.II.A.5.4C", "BI", "4C - Moderate suspicion"),
        True),
    Category.C5: CategoryInfo(
        "Highly suggestive of malignancy", "Hautement évocateur de malignité", _TISSUE_EN,
        _TISSUE_FR, "≥ 95 %", "≥ 95 %", ("397145000", "SCT", "5 - Highly suggestive of malignancy"),
        True),
    Category.C6: CategoryInfo(
        "Known biopsy-proven malignancy", "Malignité prouvée par biopsie",
        "Surgical excision when clinically appropriate",
        "Exérèse chirurgicale lorsque cliniquement appropriée", "N/A", "N/A",
        ("MA.II.A.5.6", "BI", "6 - Known biopsy proven malignancy"), False),
}


def parse_category(value: object, where: str = "category") -> Category:
    """``"4a"``, ``"4A"``, ``4`` … → :class:`Category`; anything else is an InputError
    naming ``where``."""
    text = str(value).strip().upper()
    for prefix in ("BI-RADS", "BIRADS", "ACR"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    try:
        return Category(text)
    except ValueError:
        allowed = ", ".join(c.value for c in Category)
        raise InputError(f"{where}: {value!r} is not a BI-RADS category (one of "
                         f"{allowed})") from None


def overall_category(categories: list[Category]) -> Category:
    """The most worrisome of the findings' categories (1 when there is none).

    >>> overall_category([Category.C2, Category.C4A, Category.C0]).value
    '4A'
    >>> overall_category([Category.C6, Category.C0]).value
    '0'
    """
    if not categories:
        return Category.C1
    return max(categories, key=lambda c: c.rank)
