"""Radiology-pathology correlation of image-guided breast biopsies.

After every percutaneous biopsy the radiologist decides whether the histology explains the
imaging finding (ACR Practice Parameter for the Performance of Stereotactic-Guided /
Ultrasound-Guided Breast Interventional Procedures, "radiologic-pathologic correlation").
The platform *suggests* a verdict from the
finding's BI-RADS category and the result; the physician records the final one:

- malignant result: concordant for categories 4, 4A-4C, 5 and 6; discordant for 1, 2 and
  3 (a cancer in a finding judged benign or probably benign must be re-reviewed), "review"
  for 0 (no final assessment was given);
- benign result: concordant for 2, 3, 4A and 4B; discordant for 4C and 5 (a benign
  result does not explain a highly suspicious finding: repeat biopsy or excision);
  "review" otherwise;
- high-risk result (atypia, papilloma, radial scar ...): concordant as a sampling result but
  flagged for surgical consultation.
"""

from __future__ import annotations

from dataclasses import dataclass

from oncohybrid.breast.categories import Category
from oncohybrid.errors import InputError

__all__ = ["Suggestion", "suggest_concordance", "RESULTS"]

RESULTS = ("malignant", "benign", "high-risk")


@dataclass(frozen=True)
class Suggestion:
    verdict: str  # concordant | discordant | review
    reason: str


def suggest_concordance(category: Category, result: str) -> Suggestion:
    """The suggested radiology-pathology verdict for a finding's category and result.

    >>> suggest_concordance(Category.C5, "benign").verdict
    'discordant'
    """
    if result not in RESULTS:
        raise InputError(f"result: {result!r} is not one of {', '.join(RESULTS)}")
    c = category
    if result == "malignant":
        if c.is_4 or c in (Category.C5, Category.C6):
            return Suggestion("concordant", f"malignant result in a BI-RADS {c.value} finding")
        if c is Category.C0:
            return Suggestion("review", "malignant result; the finding had no final "
                                        "assessment (BI-RADS 0)")
        return Suggestion("discordant", f"malignant result in a finding assessed BI-RADS "
                                        f"{c.value}: review the imaging")
    if result == "high-risk":
        return Suggestion("concordant", "high-risk lesion: surgical consultation "
                                        "(excision or surveillance)")
    if c in (Category.C4C, Category.C5):
        return Suggestion("discordant", f"benign result does not explain a BI-RADS {c.value} "
                                        "finding: repeat biopsy or surgical excision")
    if c in (Category.C2, Category.C3, Category.C4A, Category.C4B):
        return Suggestion("concordant", f"benign result in a BI-RADS {c.value} finding: "
                                        "imaging follow-up")
    return Suggestion("review", f"benign result in a BI-RADS {c.value} finding: judge the "
                                "concordance on the images")
