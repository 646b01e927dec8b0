"""CT extent, site and confirmation of a PET-located lesion (detect/ct_lesions.py), and
the CT-only third tier (detect/ct_detection.py), on synthetic volumes with known sizes."""

from __future__ import annotations

from types import SimpleNamespace

import highdicom as hd
import numpy as np
import pytest

from oncohybrid.detect.ct_detection import detect_on_ct
from oncohybrid.detect.ct_lesions import CTRules, ct_confirms, ct_extent, guess_site
from oncohybrid.tracking.course import DetectedLesion

FOR = "1.2.826.0.1.3680043.8.498.1"


def _grid(shape, spacing):
    aff = np.diag([*spacing, 1.0])
    idx = np.indices(shape).reshape(3, -1).T
    return aff, (idx * np.asarray(spacing)).reshape(*shape, 3)


def _ball(lps, centre, radius):
    return ((lps - np.asarray(centre)) ** 2).sum(-1) <= radius**2


def _ct_with_nodule(background_hu, nodule_hu=40.0, radius=6.0, shape=(30, 60, 60),
                    spacing=(2.0, 1.0, 1.0)):
    aff, lps = _grid(shape, spacing)
    hu = np.full(shape, background_hu, np.int16)
    centre = (30.0, 30.0, 30.0)
    hu[_ball(lps, centre, radius)] = nodule_hu
    return hd.Volume(hu, aff, "PATIENT", frame_of_reference_uid=FOR), centre


def _pet_around(centre, radius, shape=(15, 15, 15), spacing=(4.0, 4.0, 4.0), hot=8.0, bg=1.0):
    aff, lps = _grid(shape, spacing)
    arr = np.full(shape, bg, np.float32)
    arr[_ball(lps, centre, radius)] = hot
    return hd.Volume(arr, aff, "PATIENT", frame_of_reference_uid=FOR)


@pytest.mark.parametrize(("ring_hu", "site", "nodal"), [
    (-850.0, "lung", False), (-401.0, "lung", False), (-399.0, "lymph node", True),
    (-31.0, "lymph node", True), (-30.0, "soft tissue", False), (51.9, "soft tissue", False),
    (52.0, "liver", False), (120.0, "liver", False), (121.0, "soft tissue", False),
    (251.0, "bone", False),
])
def test_site_is_guessed_from_the_ring_ct_number(ring_hu, site, nodal):
    assert guess_site(ring_hu) == (site, nodal)


def test_a_node_in_fat_is_measured_on_ct_at_its_ct_size_not_the_pet_blur():
    ct, centre = _ct_with_nodule(-100.0, radius=6.0)
    pet = _pet_around(centre, 9.0)  # PET blob larger than the lesion (partial volume)
    pet_mask = pet.with_array((pet.array > 4).astype(np.uint8))
    mask, meas, site, nodal, method = ct_extent(pet_mask, ct, centre)
    assert (site, nodal) == ("lymph node", True)
    assert method["method"] == "pet-located CT band threshold"
    assert method["parameters"]["enclosed"] is True
    assert meas.ld_mm == pytest.approx(12.0, abs=1.5)  # true diameter 12 mm
    assert meas.volume_ml == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.15)
    assert ct_confirms(method, meas)
    assert not ct_confirms(method, meas, CTRules(max_confirm_volume_ml=0.5))


def test_without_ct_contrast_the_pet_mask_is_kept_and_nothing_is_confirmed():
    ct, centre = _ct_with_nodule(40.0, nodule_hu=45.0)
    pet = _pet_around(centre, 8.0)
    pet_mask = pet.with_array((pet.array > 4).astype(np.uint8))
    _mask, meas, _site, _nodal, method = ct_extent(pet_mask, ct, centre)
    assert method["method"] == "PET mask on CT (no CT contrast)"
    assert not ct_confirms(method, meas)


def _ct_lung_with_nodule(radius=5.0):
    shape, spacing = (40, 80, 80), (2.0, 1.0, 1.0)
    aff, lps = _grid(shape, spacing)
    hu = np.full(shape, -1000, np.int16)
    body = ((lps[..., 1] - 40) ** 2 + (lps[..., 2] - 40) ** 2) <= 38**2
    hu[body] = 40  # soft-tissue wall
    lung = ((lps[..., 1] - 40) ** 2 + (lps[..., 2] - 40) ** 2) <= 30**2
    hu[lung] = -800
    centre = (40.0, 40.0, 40.0)
    hu[_ball(lps, centre, radius)] = 30
    return hd.Volume(hu, aff, "PATIENT", frame_of_reference_uid=FOR), centre


@pytest.mark.parametrize(("hot", "found"), [(6.0, True), (1.0, False)])
def test_ct_only_tier_keeps_an_enclosed_lung_nodule_only_when_fdg_avid(hot, found):
    ct, centre = _ct_lung_with_nodule()
    pet = _pet_around(centre, 6.0, shape=(20, 20, 20), hot=hot, bg=0.5)
    out = detect_on_ct(ct, pet, [], liver_suv=2.0, sul_per_suv=0.75)
    assert bool(out) is found
    if found:
        (det,) = out
        assert (det.label, det.site, det.nodal) == ("c1", "lung", False)
        assert det.ct.ld_mm == pytest.approx(10.0, abs=1.5)
        assert det.pet.suv_max == pytest.approx(hot)


def test_ct_only_tier_skips_lesions_pet_found_already():
    ct, centre = _ct_lung_with_nodule()
    pet = _pet_around(centre, 6.0, shape=(20, 20, 20), hot=6.0, bg=0.5)
    (first,) = detect_on_ct(ct, pet, [], liver_suv=2.0, sul_per_suv=0.75)
    known = DetectedLesion("d1", first.pet, first.ct, first.ct_mask, "lung", False, {})
    assert detect_on_ct(ct, pet, [known], liver_suv=2.0, sul_per_suv=0.75) == []
    assert detect_on_ct(ct, pet, [], liver_suv=None, sul_per_suv=0.75) == []


def test_confirmation_needs_an_enclosed_band_component():
    meas = SimpleNamespace(volume_ml=1.0)
    base = {"method": "pet-located CT band threshold",
            "parameters": {"band_hu": 30.0, "enclosed": False}}
    assert not ct_confirms(base, meas)
    assert not ct_confirms({"method": "PET mask on CT (no CT contrast)",
                            "parameters": {"band_hu": 30.0, "enclosed": True}}, meas)
