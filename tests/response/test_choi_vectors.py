"""Choi / mChoi vectors: criteria.md §14.5 (C-01, C-03, C-05) and §5 rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oncohybrid.response import assess_case, load_case


def gist(sld, hu, variant="choi", criteria="choi", extra=None):
    """Baseline SLD 80 mm (two targets 50 + 30), 60 HU; follow-up SLD split 5:3."""
    s = Decimal(str(sld))  # exact: 89.6 * 3 / 8 in floats is 33.599999…
    a, b = s * 5 / 8, s * 3 / 8
    data = {
        "criteria": criteria,
        "options": {"choi_variant": variant},
        "timepoints": [
            {
                "date": "2024-01-01",
                "lesions": [
                    {"id": "G1", "role": "target", "site": "liver", "ld_mm": 50, "hu_mean": 60},
                    {
                        "id": "G2",
                        "role": "target",
                        "site": "peritoneum",
                        "ld_mm": 30,
                        "hu_mean": 60,
                    },
                ],
            },
            {
                "date": "2024-03-01",
                "lesions": [
                    {"id": "G1", "ld_mm": a, "hu_mean": hu},
                    {"id": "G2", "ld_mm": b, "hu_mean": hu},
                    *(extra or []),
                ],
            },
        ],
    }
    return assess_case(load_case(data)).timepoints[1]


C = [
    ("C-01", 76, 48, "PR", "SD", "SD"),
    ("C-03", 89.6, 55, "PD", "PD", "SD"),
    ("C-05", 70, 50, "PR", "PR", "SD"),
]


@pytest.mark.parametrize(("vid", "sld", "hu", "choi", "mchoi", "recist"), C, ids=[c[0] for c in C])
def test_choi_table_14_5(vid, sld, hu, choi, mchoi, recist):
    """§14.5: Choi, mChoi and RECIST 1.1 categories for the same measurements."""
    assert gist(sld, hu).overall == choi
    assert gist(sld, hu, "mchoi").overall == mchoi
    assert gist(sld, hu, criteria="recist1.1").overall == recist


def test_size_up_10_but_density_down_15_is_pr_not_pd():
    """§5.2: size +10% with density −15% meets PR by density — not PD."""
    tp = gist(88, 51)
    assert tp.overall == "PR"


def test_exact_thresholds_are_inclusive():
    """−10% size (72 mm) alone is PR; +10% size (88 mm) with density −14% is PD."""
    assert gist(72, 60).overall == "PR"
    assert gist(88, 52).overall == "PD"
    assert gist(87.9, 52).overall == "SD"


def test_new_lesion_and_intratumoral_nodule_are_pd():
    assert gist(60, 40, extra=[{"id": "X", "role": "new", "site": "liver"}]).overall == "PD"
    data_nodule = gist(60, 40)
    assert data_nodule.overall == "PR"


def test_intratumoral_nodule_is_pd():
    data = {
        "criteria": "choi",
        "timepoints": [
            {
                "date": "2024-01-01",
                "lesions": [{"id": "G1", "role": "target", "ld_mm": 50, "hu_mean": 60}],
            },
            {
                "date": "2024-03-01",
                "lesions": [{"id": "G1", "ld_mm": 40, "hu_mean": 40, "intratumoral_nodule": True}],
            },
        ],
    }
    assert assess_case(load_case(data)).timepoints[1].overall == "PD"


def test_numbers_reported():
    tp = gist(76, 48)
    assert tp.numbers["hu_mean"] == 48
    assert tp.numbers["hu_change_pct"] == -20
    assert tp.numbers["change_from_baseline_pct"] == -5
