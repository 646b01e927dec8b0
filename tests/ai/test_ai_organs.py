"""PERCIST reference VOI centres inside AI organ labels (ai/organs.py; PERCIST 1.0, Wahl et
al., J Nucl Med 2009;50 Suppl 1:122S, Appendix: 3 cm liver sphere, 1 × 2 cm aorta
cylinder). Expected centres are worked out by hand from the drawn shapes."""

from __future__ import annotations

import numpy as np
import pytest

from oncohybrid.ai.organs import blood_pool_centre, label_role, liver_centre
from oncohybrid.errors import GeometryError


def _affine(spacing, origin=(0.0, 0.0, 0.0)):
    """(z, y, x) array axes → LPS: axis 0 along +z, 1 along +y, 2 along +x."""
    a = np.zeros((4, 4))
    a[2, 0], a[1, 1], a[0, 2] = spacing
    a[:3, 3] = origin
    a[3, 3] = 1.0
    return a


def _lps(shape, aff):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    return idx @ aff[:3, :3].T + aff[:3, 3]


def test_label_roles_follow_the_names_models_use() -> None:
    assert label_role("liver") == "liver"
    assert label_role("Liver_left_lobe") == "liver"
    for name in ("aorta", "aorta_descending", "thoracic aorta", "blood pool"):
        assert label_role(name) == "blood_pool"
    for name in ("lesion", "tumour", "Lymph node metastasis"):
        assert label_role(name) == "lesion"
    assert label_role("spleen") is None


def test_liver_sphere_goes_to_the_deepest_point_of_an_ellipsoid_liver() -> None:
    aff = _affine((3.0, 2.0, 2.0), origin=(-100.0, -80.0, 300.0))
    shape = (60, 90, 100)
    lps = _lps(shape, aff)
    centre = np.array([-20.0, 10.0, 390.0])
    semi = np.array([70.0, 60.0, 50.0])
    liver = np.sum(((lps - centre) / semi) ** 2, -1) <= 1.0
    voi = liver_centre(liver, affine=aff)
    assert np.linalg.norm(np.asarray(voi.centre_lps_mm) - centre) <= 3.0
    assert voi.fits and voi.depth_mm == pytest.approx(50.0, abs=3.0)


def test_a_thin_liver_label_is_flagged_as_not_holding_the_sphere() -> None:
    aff = _affine((2.0, 2.0, 2.0))
    m = np.zeros((30, 30, 30), bool)
    m[5:25, 5:25, 10:20] = True  # 20 mm thick: a 30 mm sphere cannot fit
    voi = liver_centre(m, affine=aff)
    assert not voi.fits and voi.depth_mm < 15.0
    assert "does NOT fit" in voi.provenance("m")


def test_whole_aorta_uses_the_posterior_descending_part_of_its_upper_half() -> None:
    aff = _affine((2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    shape = (150, 100, 100)  # z 0..298 mm
    lps = _lps(shape, aff)
    x, y, z = lps[..., 0], lps[..., 1], lps[..., 2]
    # descending tube at (x 60, y 70) from z 0 to 260; ascending tube at (x 50, y 30)
    # from z 200 to 260 (anterior: smaller LPS y); the arch joins them at z 260-270
    desc = ((x - 60) ** 2 + (y - 70) ** 2 <= 11 ** 2) & (z <= 270)
    asc = ((x - 50) ** 2 + (y - 30) ** 2 <= 13 ** 2) & (z >= 200) & (z <= 270)
    arch = (np.abs(x - 55) <= 10) & (y >= 30) & (y <= 70) & (z >= 260) & (z <= 270)
    voi = blood_pool_centre(desc | asc | arch, label="aorta", affine=aff)
    got = np.asarray(voi.centre_lps_mm)
    assert voi.fits
    assert np.hypot(got[0] - 60, got[1] - 70) <= 1.0  # in the descending tube
    # upper half of z 0..270 is 136..270; the cylinder (±10 mm) fits in 136..258 (the
    # arch slices join the tubes) → its middle ≈ 197
    assert 180.0 <= got[2] <= 215.0


def test_a_descending_aorta_label_is_used_whole() -> None:
    aff = _affine((2.0, 1.0, 1.0))
    lps = _lps((100, 60, 60), aff)
    tube = ((lps[..., 0] - 30) ** 2 + (lps[..., 1] - 30) ** 2 <= 8 ** 2)
    tube &= (lps[..., 2] >= 20) & (lps[..., 2] <= 160)
    voi = blood_pool_centre(tube, label="aorta_descending", affine=aff)
    # the cylinder fits for z in 30..150: middle 90
    assert voi.fits
    assert voi.centre_lps_mm[2] == pytest.approx(90.0, abs=2.0)
    assert np.hypot(voi.centre_lps_mm[0] - 30, voi.centre_lps_mm[1] - 30) <= 1.0


def test_a_narrow_aorta_label_still_gives_a_centre_but_says_it_does_not_fit() -> None:
    aff = _affine((2.0, 1.0, 1.0))
    lps = _lps((60, 40, 40), aff)
    tube = ((lps[..., 0] - 20) ** 2 + (lps[..., 1] - 20) ** 2 <= 3 ** 2)
    voi = blood_pool_centre(tube, label="aorta_descending", affine=aff)
    assert not voi.fits
    assert np.hypot(voi.centre_lps_mm[0] - 20, voi.centre_lps_mm[1] - 20) <= 1.0


def test_empty_labels_are_refused_with_the_label_named() -> None:
    with pytest.raises(GeometryError, match="'liver' is empty"):
        liver_centre(np.zeros((5, 5, 5), bool), spacing_mm=(1, 1, 1))
    with pytest.raises(GeometryError, match="'aorta' is empty"):
        blood_pool_centre(np.zeros((5, 5, 5), bool), spacing_mm=(1, 1, 1))
