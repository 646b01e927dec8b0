"""Body-size vectors of the PET quantification notes §4.3 (and §2.6 obesity example).

Each row is checked twice: to 1e-9 relative against the closed form written out here by
hand (independent arithmetic), and against the notes' printed value at its printed
precision.
"""

from __future__ import annotations

import pytest

from oncohybrid.dicom import bodysize as bs

# Notes §4.3 table: (W kg, H cm, sex) → James120, James128, Janmahasatian, IBW, BSA m².
NOTES_4_3 = [
    ((75, 185, "M"), 62.7776, 61.4627, 60.9153, 82.980, 1.98138),
    ((75, 185, "F"), 55.9257, 55.9257, 49.2144, 75.530, 1.98138),
    ((70, 175, "M"), None, 56.5200, None, 72.380, 1.84814),
    ((70, 175, "F"), None, 51.2200, None, 66.430, 1.84814),
]


def _closed_forms(w: float, h_cm: float, sex: str) -> dict[str, float]:
    bmi = w / (h_cm / 100) ** 2
    male = sex == "M"
    return {
        "james120": (1.10 * w - 120 * (w / h_cm) ** 2) if male else
                    (1.07 * w - 148 * (w / h_cm) ** 2),
        "james128": (1.10 * w - 128 * (w / h_cm) ** 2) if male else
                    (1.07 * w - 148 * (w / h_cm) ** 2),
        "janma": 9270 * w / (6680 + 216 * bmi) if male else 9270 * w / (8780 + 244 * bmi),
        "ibw": 48.0 + 1.06 * (h_cm - 152) if male else 45.5 + 0.91 * (h_cm - 152),
        "bsa": 0.007184 * w**0.425 * h_cm**0.725,
    }


def _ours(w: float, h_cm: float, sex: str) -> dict[str, float]:
    h = h_cm / 100
    return {
        "james120": bs.james_lbm_kg(w, h, sex, male_coefficient=120),
        "james128": bs.james_lbm_kg(w, h, sex),
        "janma": bs.janmahasatian_lbm_kg(w, h, sex),
        "ibw": bs.ibw_kg(h, sex),
        "bsa": bs.bsa_dubois_m2(w, h),
    }


@pytest.mark.parametrize("row", NOTES_4_3, ids=lambda r: "{}kg-{}cm-{}".format(*r[0]))
def test_body_size_vectors_of_notes_table_4_3(row) -> None:
    (w, h_cm, sex), *printed = row
    ours = _ours(w, h_cm, sex)
    ref = _closed_forms(w, h_cm, sex)
    for key in ours:
        assert ours[key] == pytest.approx(ref[key], rel=1e-9), key
    for key, value in zip(("james120", "james128", "janma", "ibw", "bsa"), printed,
                          strict=True):
        if value is not None:
            decimals = len(str(value).split(".")[1])
            assert round(ours[key], decimals) == pytest.approx(value, abs=10**-decimals), key


def test_james_obesity_example_of_notes_2_6() -> None:
    """H 170 cm, W 200 kg: James128 M 42.8, F 9.2; Janmahasatian M 85.7, F 72.2."""
    assert round(bs.james_lbm_kg(200, 1.70, "M"), 1) == 42.8
    assert round(bs.james_lbm_kg(200, 1.70, "F"), 1) == 9.2
    assert round(bs.janmahasatian_lbm_kg(200, 1.70, "M"), 1) == 85.7
    assert round(bs.janmahasatian_lbm_kg(200, 1.70, "F"), 1) == 72.2


def test_james_peak_bmi_where_lbm_stops_increasing() -> None:
    """Notes §2.6: peak at BMI ≈ 43 (M, 128) / ≈ 36 (F); LBM has zero slope there."""
    for sex, approx in (("M", 43.0), ("F", 36.1)):
        peak = bs.james_peak_bmi_kg_m2(sex)
        assert peak == pytest.approx(approx, abs=0.1)
        w = peak * 1.7**2
        eps = 1e-4
        slope = (bs.james_lbm_kg(w + eps, 1.7, sex) - bs.james_lbm_kg(w - eps, 1.7, sex)) / 2e-4
        assert abs(slope) < 1e-6


def test_ibsi_dro_sex_o_means() -> None:
    """Notes §4.3: 70 kg, 175 cm, sex O → James128 53.87, IBW 69.405 (mean of M and F)."""
    assert (bs.james_lbm_kg(70, 1.75, "M") + bs.james_lbm_kg(70, 1.75, "F")) / 2 == \
        pytest.approx(53.87, abs=5e-5)
    assert (bs.ibw_kg(1.75, "M") + bs.ibw_kg(1.75, "F")) / 2 == pytest.approx(69.405, abs=5e-6)


def test_sex_other_is_rejected_by_single_sex_formulas() -> None:
    with pytest.raises(ValueError, match="sex must be 'M' or 'F'"):
        bs.ibw_kg(1.75, "O")
