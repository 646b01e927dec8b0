"""Body-size formulas used to normalise SUV: lean body mass, ideal body weight, body surface.

Each function takes weight in kilograms and height in metres and returns kilograms (or
square metres for BSA). They are the closed forms named by (0054,1006) *SUV Type*
(PS3.3 C.8.9.1.1.3 / CID 85 "SUV Units"): ``LBMJAMES128``, ``LBM`` (James with 120),
``LBMJANMA``, ``IBW`` and ``BSA``. Sex is ``"M"`` or ``"F"``; callers decide what to do
for ``"O"`` or an empty (0010,0040) *Patient's Sex* (see :mod:`oncohybrid.dicom.suv`).

Written by hand: the formulas are one line each and no maintained Python library
exposes them with the coefficients DICOM names.
"""

from __future__ import annotations

import math

__all__ = [
    "bmi_kg_m2",
    "bsa_dubois_m2",
    "ibw_kg",
    "james_lbm_kg",
    "james_peak_bmi_kg_m2",
    "janmahasatian_lbm_kg",
]

# James (1976) coefficients: (a, b) in LBM = a·W − b·(W/H_cm)², per sex. The male b is 128
# (James 1976; DICOM LBMJAMES128); 120 is the "Morgan"/calculate-suv variant (SUV Type LBM).
_JAMES_A = {"M": 1.10, "F": 1.07}
_JAMES_B_FEMALE = 148.0


def _check_sex(sex: str) -> str:
    if sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F' for this formula, got {sex!r}")
    return sex


def bmi_kg_m2(weight_kg: float, height_m: float) -> float:
    """Body-mass index W / H² (kg/m²)."""
    return weight_kg / (height_m * height_m)


def james_lbm_kg(weight_kg: float, height_m: float, sex: str, *, male_coefficient: float = 128.0
                 ) -> float:
    """Lean body mass after James (1976): M ``1.10·W − 128·(W/H)²``, F ``1.07·W − 148·(W/H)²``.

    W in kg, H in cm inside the formula. ``male_coefficient=120`` gives the "Morgan" variant
    (DICOM SUV Type ``LBM``) used by calculate-suv/OHIF; use it only by explicit name.
    The formula is not monotonic: it peaks at BMI ≈ 43 (M) / 36 (F) and reaches zero near
    BMI 86 / 72, see :func:`james_peak_bmi_kg_m2`.

    >>> round(james_lbm_kg(70, 1.75, "M"), 4)
    56.52
    """
    b = male_coefficient if _check_sex(sex) == "M" else _JAMES_B_FEMALE
    ratio = weight_kg / (height_m * 100.0)
    return _JAMES_A[sex] * weight_kg - b * ratio * ratio


def james_peak_bmi_kg_m2(sex: str, *, male_coefficient: float = 128.0) -> float:
    """BMI above which James LBM decreases with weight (dLBM/dW = 0 at W/H_cm² = a / 2b).

    >>> round(james_peak_bmi_kg_m2("M"), 2)
    42.97
    """
    b = male_coefficient if _check_sex(sex) == "M" else _JAMES_B_FEMALE
    return _JAMES_A[sex] / (2.0 * b) * 1e4


def janmahasatian_lbm_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass after Janmahasatian et al. (Clin Pharmacokinet 2005;44:1051), "SUL".

    M ``9270·W / (6680 + 216·BMI)``, F ``9270·W / (8780 + 244·BMI)``; recommended for
    SUL by Tahari et al. (JNM 2014) and the EANM 2015 guideline (DICOM ``LBMJANMA``).

    >>> round(janmahasatian_lbm_kg(75, 1.85, "M"), 4)
    60.9153
    """
    bmi = bmi_kg_m2(weight_kg, height_m)
    if _check_sex(sex) == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)


def ibw_kg(height_m: float, sex: str) -> float:
    """Ideal body weight as used by Slicer, MIRP, MITK and IBSI (Sugawara pair).

    M ``48.0 + 1.06·(H_cm − 152)``, F ``45.5 + 0.91·(H_cm − 152)``. Not clamped to the
    body weight (MIRP, MITK, IBSI; Slicer clamps) — the caller reports IBW > W.

    >>> round(ibw_kg(1.75, "M"), 3)
    72.38
    """
    h_cm = height_m * 100.0
    if _check_sex(sex) == "M":
        return 48.0 + 1.06 * (h_cm - 152.0)
    return 45.5 + 0.91 * (h_cm - 152.0)


def bsa_dubois_m2(weight_kg: float, height_m: float) -> float:
    """Body surface area after Du Bois & Du Bois (1916): ``0.007184·W^0.425·H_cm^0.725`` m².

    Multiply by 1e4 for cm², the unit of SUVbsa ``{SUVbsa}cm2/ml``.

    >>> round(bsa_dubois_m2(70, 1.75), 5)
    1.84814
    """
    return 0.007184 * math.pow(weight_kg, 0.425) * math.pow(height_m * 100.0, 0.725)
