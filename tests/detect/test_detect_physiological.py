"""Physiological-uptake rules (detect/physiological.py) on synthetic PET components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from oncohybrid.detect.physiological import (
    PhysiologicalRules,
    organ_regions,
    physiological_components,
)

SPACING = (4.0, 4.0, 4.0)  # 0.064 ml voxels


def _components(arr, threshold):
    lab, _n = ndimage.label(arr >= threshold)
    return lab, ndimage.find_objects(lab)


def _image():
    arr = np.full((60, 60, 60), 1.0, np.float32)
    arr[5:20, 5:20, 5:20] = 6.0    # 3375 voxels = 216 ml, hot: rule (a), heart/bladder size
    arr[30:45, 30:45, 5:12] = 2.2  # 1575 voxels = 101 ml of flat moderate uptake: rule (b)
    arr[45:49, 5:9, 45:49] = 9.0   # 64 voxels = 4.1 ml, hot: a lesion
    return arr


def test_large_components_and_flat_organ_like_regions_are_physiological_lesions_are_not():
    arr = _image()
    lab, boxes = _components(arr, 2.0)
    ids = {int(lab[10, 10, 10]): "big", int(lab[35, 35, 8]): "organ", int(lab[46, 6, 46]): "lesion"}
    out = physiological_components(lab, boxes, arr, SPACING, liver_mean=1.0)
    why = {ids[k]: v for k, v in out.items()}
    assert set(why) == {"big", "organ"}
    assert why["big"].startswith("MTV 216 ml")
    assert "organ-like region" in why["organ"]


def test_without_a_liver_mean_only_the_volume_rule_applies():
    arr = _image()
    lab, boxes = _components(arr, 2.0)
    out = physiological_components(lab, boxes, arr, SPACING, liver_mean=None)
    assert list(out) == [int(lab[10, 10, 10])]


def test_an_organ_region_hotter_than_the_uptake_ceiling_is_not_an_organ():
    arr = _image()
    # p95 of the smoothed region 2.2 > 2.5 x a liver mean of 0.8 = 2.0: too hot for an organ.
    regions, desc = organ_regions(arr, SPACING, 0.8, PhysiologicalRules())
    assert regions[35, 35, 8] == 0
    regions, desc = organ_regions(arr, SPACING, 1.0, PhysiologicalRules())
    assert regions[35, 35, 8] > 0 and len(desc) == 1
    # the smoothed region spreads past the 101 ml box; its p95 stays at most the 2.2 plateau
    assert 2.0 < float(desc[0].split("p95 ")[1]) <= 2.2
