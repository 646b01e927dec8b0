"""Texture families against the IBSI-1 reference values (IBSI 1 §3.6–§3.11).

Every digital-phantom texture row of the IBSI reference table must be reproduced exactly to
3 significant digits under its aggregation (IBSI 1 Table 3.1 identifiers).
"""

from __future__ import annotations

import numpy as np
import pytest
from ibsi_ref_texture import digital_phantom, texture_rows

from oncohybrid.radiomics.roi import Roi
from oncohybrid.radiomics.texture import FAMILIES, roi_texture_features, texture_features
from refdata import require

FAMILY_OF = {"glcm": "cm", "glrlm": "rlm", "glszm": "szm", "gldzm": "dzm", "ngtdm": "ngt",
             "ngldm": "ngl"}


@pytest.fixture(scope="module")
def phantom_features() -> dict[str, float]:
    folder = require("ibsi-radiomics/ibsi1_digital_phantom")
    image, mask = digital_phantom(folder)
    # the phantom is used as-is: intensities are the grey levels, N_g = 6 (levels 2, 5 empty)
    levels = np.where(mask, image, 0)
    return texture_features(levels, 6, mask)


@pytest.fixture(scope="module")
def phantom_rows():
    return texture_rows(require("ibsi-radiomics") / "ibsi1_reference_values.csv",
                        "digital_phantom")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_digital_phantom_row_of_the_family_matches_ibsi(family, phantom_features,
                                                             phantom_rows):
    rows = [r for r in phantom_rows if r.family == FAMILY_OF[family]]
    assert rows, f"no reference rows for {family}"
    wrong = [f"{r.key} {r.math_tag} ({r.aggregation}): {phantom_features.get(r.key)} "
             f"vs {r.value}" for r in rows if not r.accepts(phantom_features.get(r.key,
                                                                                  float("nan")))]
    assert not wrong, f"{len(wrong)}/{len(rows)} rows differ:\n" + "\n".join(wrong)


def test_roi_entry_point_matches_the_array_entry_point(phantom_features):
    image, mask = digital_phantom(require("ibsi-radiomics/ibsi1_digital_phantom"))
    levels = np.where(mask, image, 0)
    roi = Roi(image.astype(float), mask, mask, (2.0, 2.0, 2.0), levels, 6)
    assert roi_texture_features(roi) == phantom_features


def test_levels_beyond_n_levels_are_refused():
    with pytest.raises(ValueError, match="grey levels"):
        texture_features(np.array([[[1, 7]]]), 6)
