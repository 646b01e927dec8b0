"""Texture families against the IBSI-1 reference values (IBSI 1 §3.6–§3.11).

Every digital-phantom texture row of the IBSI reference table must be reproduced exactly to
3 significant digits under its aggregation (IBSI 1 Table 3.1 identifiers), and every CT
phantom row of configurations A–E within its published tolerance after the IBSI
preprocessing of :mod:`oncohybrid.radiomics.preprocess`.
"""

from __future__ import annotations

from functools import cache

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


def test_a_slice_without_pairs_takes_no_part_in_the_2d_averages():
    rng = np.random.default_rng(7)
    levels = rng.integers(1, 5, size=(3, 6, 6))
    alone = np.zeros((1, 6, 6), dtype=levels.dtype)
    alone[0, 2, 2] = 3                        # one voxel: no in-plane neighbour, no zone pair
    with_single = texture_features(np.concatenate([levels, alone]), 4,
                                   families=["glcm", "ngtdm"])
    without = texture_features(np.concatenate([levels, np.zeros_like(alone)]), 4,
                               families=["glcm", "ngtdm"])
    for key in ("ACUI/BTW3", "8ZQL/SUJT", "QCDE/8QNN"):
        assert with_single[key] == pytest.approx(without[key]), key


def test_a_single_grey_level_gives_the_ibsi_coarseness_ceiling():
    features = texture_features(np.ones((2, 3, 3), dtype=int), 1, families=["ngtdm"])
    assert features["QCDE/KOBO"] == 1.0e6     # IBSI 1 §3.10.1: sum p_i s_i = 0


def test_levels_beyond_n_levels_are_refused():
    with pytest.raises(ValueError, match="grey levels"):
        texture_features(np.array([[[1, 7]]]), 6)


CONFIGS = ("A", "B", "C", "D", "E")


@cache
def _config_features(config: str) -> dict[str, float]:
    """Texture features of the CT phantom's GTV after the IBSI preprocessing of ``config``."""
    import nibabel as nib

    from oncohybrid.radiomics.configs import ibsi_config
    from oncohybrid.radiomics.preprocess import preprocess

    folder = require("ibsi-radiomics/ibsi1_ct_radiomics_phantom")
    arrays = []
    for name in ("image.nii.gz", "mask.nii.gz"):
        img = nib.load(str(folder / name))
        arrays.append(np.asarray(img.dataobj).transpose(2, 1, 0))  # (i, j, k) → (z, y, x)
    zooms = img.header.get_zooms()
    spacing = (float(zooms[2]), float(zooms[1]), float(zooms[0]))
    pre = preprocess(arrays[0], arrays[1], spacing, ibsi_config(config))
    return roi_texture_features(pre.roi)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("config", CONFIGS)
def test_every_ct_phantom_row_of_the_family_is_within_the_ibsi_tolerance(config, family):
    rows = texture_rows(require("ibsi-radiomics") / "ibsi1_reference_values.csv",
                        f"config_{config}")
    rows = [r for r in rows if r.family == FAMILY_OF[family]]
    assert rows, f"no reference rows for config {config} / {family}"
    features = _config_features(config)
    wrong = [f"{r.key} {r.math_tag} ({r.aggregation}): {features.get(r.key)} vs {r.value} "
             f"± {r.tolerance}" for r in rows
             if not r.accepts(features.get(r.key, float("nan")))]
    assert not wrong, f"{len(wrong)}/{len(rows)} rows off:\n" + "\n".join(wrong)


@pytest.mark.parametrize("dims", [["2D"], ["2.5D"], ["3D"]])
def test_zone_aggregation_without_its_zones_is_refused_by_name(dims) -> None:
    """A caller asking for an aggregation without passing its zones gets a ValueError (not
    an ``assert``, which ``python -O`` removes)."""
    from oncohybrid.radiomics.texture import glszm
    from oncohybrid.radiomics.texture._grid import TextureGrid

    levels = np.ones((2, 3, 3), dtype=int)
    grid = TextureGrid.from_levels(levels, 1, levels > 0)
    with pytest.raises(ValueError, match="aggregation needs|aggregation need"):
        glszm.aggregate(None, None, None, None, grid, {"x": "X"}, dims=dims)
