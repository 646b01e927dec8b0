"""PERCIST reference regions on a synthetic torso and the measurability threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oncohybrid.errors import GeometryError, InputError
from oncohybrid.quant.references import (
    UnprovenReferenceError,
    blood_pool_reference,
    liver_reference,
    percist_threshold,
    prove_liver_voi,
)
from oncohybrid.segment.grid import VoxelGrid

SP = 4.0
SHAPE = (80, 60, 80)  # slices (z), rows (y), columns (x)
ORIGIN = (-158.0, -118.0, -60.0)  # LPS of voxel (0, 0, 0): x, y, z
AFFINE = np.array(
    [
        [0, 0, SP, ORIGIN[0]],
        [0, SP, 0, ORIGIN[1]],
        [SP, 0, 0, ORIGIN[2]],
        [0, 0, 0, 1.0],
    ]
)
LIVER_C = np.array([-60.0, 0.0, 40.0])
LIVER_AXES = np.array([60.0, 50.0, 45.0])
LESION_C = np.array([-60.0, 0.0, 40.0])
AORTA_XY = np.array([25.0, 45.0])


def _lps_grid():
    k, i, j = np.indices(SHAPE, dtype=np.float64)
    return ORIGIN[0] + SP * j, ORIGIN[1] + SP * i, ORIGIN[2] + SP * k


def torso():
    """PET (SUV) and CT (HU) of a torso: liver with a hot lesion, lungs, aorta, spine."""
    x, y, z = _lps_grid()
    body = (x / 140) ** 2 + (y / 100) ** 2 <= 1
    pet = np.where(body, 0.8, 0.0)
    ct = np.where(body, -80.0, -1000.0)
    liver = (
        ((x - LIVER_C[0]) / LIVER_AXES[0]) ** 2
        + ((y - LIVER_C[1]) / LIVER_AXES[1]) ** 2
        + ((z - LIVER_C[2]) / LIVER_AXES[2]) ** 2
    ) <= 1
    pet[liver], ct[liver] = 2.0, 60.0
    lesion = (x - LESION_C[0]) ** 2 + (y - LESION_C[1]) ** 2 + (z - LESION_C[2]) ** 2 <= 10**2
    pet[lesion] = 8.0
    thorax = (z >= 100) & (z <= 220)
    for sx in (-70.0, 70.0):
        lung = thorax & (((x - sx) / 50) ** 2 + (y / 70) ** 2 <= 1)
        pet[lung], ct[lung] = 0.3, -800.0
    aorta = (z >= 60) & ((x - AORTA_XY[0]) ** 2 + (y - AORTA_XY[1]) ** 2 <= 12**2)
    pet[aorta], ct[aorta] = 1.6, 40.0
    spine = (x**2 + (y - 78) ** 2) <= 15**2
    pet[spine], ct[spine] = 1.0, 400.0
    return pet.astype(np.float32), ct.astype(np.float32)


def test_manual_liver_sphere_statistics_match_voxel_centres_within_15_mm():
    rng = np.random.default_rng(1)
    pet, _ = torso()
    pet = pet * rng.normal(1, 0.1, pet.shape).astype(np.float32)
    centre = (-80.0, 10.0, 20.0)
    ref = liver_reference(pet, centre_lps_mm=centre, sul_per_suv=0.75, affine=AFFINE)
    x, y, z = _lps_grid()
    inside = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= 15.0**2
    vals = pet[inside].astype(np.float64)
    assert ref.placement == "manual" and ref.n_voxels == inside.sum()
    assert ref.suv_mean == pytest.approx(vals.mean()) and ref.suv_sd == pytest.approx(
        vals.std(ddof=1)
    )
    assert ref.sul_mean == pytest.approx(0.75 * vals.mean())
    assert ref.volume_ml == pytest.approx(inside.sum() * 0.064)
    assert ref.inside_image


def test_auto_liver_from_pet_lies_in_the_right_lobe_away_from_the_lesion():
    # Without a CT the anatomy is unproven: placed only on request, with a note saying so.
    pet, _ = torso()
    ref = liver_reference(pet, affine=AFFINE, require_proof=False)
    c = np.asarray(ref.centre_lps_mm)
    assert ref.placement == "auto-pet"
    assert ref.notes == ("anatomy not proven: no CT: the anatomy of the VOI cannot be checked",)
    assert ref.anatomy_checks == ()
    assert c[0] < 0  # patient's right
    assert np.sum(((c - LIVER_C) / (LIVER_AXES - 15)) ** 2) <= 1.0 + 1e-6  # sphere fits
    assert np.linalg.norm(c - LESION_C) >= 10 + 15  # does not touch the lesion
    assert ref.suv_mean == pytest.approx(2.0, abs=1e-6) and ref.suv_sd == pytest.approx(0, abs=1e-6)


def test_auto_liver_from_ct_agrees():
    pet, ct = torso()
    ref = liver_reference(pet, ct=ct, affine=AFFINE)
    assert ref.placement == "auto-ct"
    assert ref.suv_mean == pytest.approx(2.0, abs=1e-6)
    # the proof: thorax in view, under the right lung base (z 100 mm), right side, 60 HU
    assert ref.centre_lps_mm[2] < 100.0 and ref.centre_lps_mm[0] < 0.0 and not ref.notes
    assert any("below the right lung base" in c for c in ref.anatomy_checks)
    assert any("CT median 60 HU" in c for c in ref.anatomy_checks)


def test_auto_liver_without_ct_is_not_placed():
    pet, _ = torso()
    with pytest.raises(UnprovenReferenceError, match="without a CT.*--liver-centre"):
        liver_reference(pet, affine=AFFINE)


def test_auto_liver_is_not_placed_in_a_field_of_view_without_the_thorax():
    # Abdomen only (z < 90 mm: the liver but no lung): the liver-like region is not proven
    # to lie under the right hemidiaphragm, so no automatic VOI.
    pet, ct = torso()
    n = int((90.0 - ORIGIN[2]) // SP)
    aff = AFFINE
    with pytest.raises(UnprovenReferenceError, match="does not cover the thorax"):
        liver_reference(pet[:n], ct=ct[:n], affine=aff)
    # a reader-placed centre is still accepted (the reader vouches for it)
    ref = liver_reference(pet[:n], ct=ct[:n], affine=aff, centre_lps_mm=(-80.0, 10.0, 20.0))
    assert ref.placement == "manual" and ref.suv_mean == pytest.approx(2.0)
    # on request it is placed, with the failed check in its notes
    ref = liver_reference(pet[:n], ct=ct[:n], affine=aff, require_proof=False)
    assert any("does not cover the thorax" in x for x in ref.notes)


def test_auto_liver_refused_when_the_candidate_has_no_liver_density():
    # The liver enhanced to 150 HU leaves the placement's 20..100 HU band; what is left of
    # the candidates is the blurred rim of the liver, whose sphere holds mostly fat
    # (-80 HU): not liver parenchyma, so no automatic VOI.
    pet, ct = torso()
    ct[ct == 60.0] = 150.0
    with pytest.raises(UnprovenReferenceError, match="CT median -80 HU is outside 25..160"):
        liver_reference(pet, ct=ct, affine=AFFINE)
    grid = VoxelGrid(shape=SHAPE, affine=AFFINE)
    assert prove_liver_voi(ct, grid, LIVER_C + [-10.0, 0.0, 0.0]).ok  # 150 HU is in range
    fat = prove_liver_voi(ct, grid, (-100.0, -60.0, 40.0))
    assert not fat.ok and any("-80 HU" in f for f in fat.failures)
    # a kidney-sized liver-like region (~150 ml) is not a liver, whatever its density
    small = prove_liver_voi(ct, grid, LIVER_C + [-10.0, 0.0, 0.0], region_ml=150.0)
    assert small.failures == ("the liver-like region is 150 ml, less than 400 ml (a kidney "
                              "or muscle, or a liver mostly outside the field of view)",)
    assert prove_liver_voi(ct, grid, LIVER_C + [-10.0, 0.0, 0.0], region_ml=1500.0).ok


def test_auto_blood_pool_finds_the_descending_aorta_on_ct():
    pet, ct = torso()
    ref = blood_pool_reference(pet, ct=ct, affine=AFFINE, sul_per_suv=0.8)
    c = np.asarray(ref.centre_lps_mm)
    assert np.linalg.norm(c[:2] - AORTA_XY) <= 4.0
    assert 100 <= c[2] <= 220
    assert ref.suv_mean == pytest.approx(1.6, abs=1e-6)
    # 10 mm x 20 mm cylinder of 4 mm voxels: centres within 5 mm radially and 10 mm axially
    assert ref.n_voxels > 0 and ref.volume_ml < math.pi * 0.5**2 * 2.0 * 1.6


@pytest.mark.parametrize("hot", [True, False])
def test_auto_blood_pool_is_not_fooled_by_a_round_lung_tumour_in_a_short_thorax(hot):
    # A field of view holding only 4 cm of lung (10 slices), and a round 30 mm tumour in
    # the medial left lung, in front of the aorta, spanning more of those slices than the
    # aorta scores in: on CT alone it looks like the vessel (soft-tissue disk in a ring of
    # lung). Hot, it is excluded by its uptake; cold (e.g. after treatment) by lying away
    # from the spine and by the aorta's longer head-to-foot run.
    pet, ct = torso()
    x, y, z = _lps_grid()
    outside = (z < 140) | (z > 176)
    ct[outside & (ct == -800.0)] = -80.0  # lungs only in 140..176 mm
    pet[outside & (pet == 0.3)] = 0.8
    tumour_c = np.array([45.0, 5.0, 158.0])
    tumour = (x - tumour_c[0]) ** 2 + (y - tumour_c[1]) ** 2 + (z - tumour_c[2]) ** 2 <= 15**2
    pet[tumour], ct[tumour] = (9.0 if hot else 1.2), 40.0
    ref = blood_pool_reference(pet, ct=ct, affine=AFFINE)
    c = np.asarray(ref.centre_lps_mm)
    assert np.linalg.norm(c[:2] - AORTA_XY) <= 4.0, c
    assert ref.suv_mean == pytest.approx(1.6, abs=1e-6)


def test_auto_blood_pool_needs_the_spine_beside_it():
    # A soft-tissue tube between the lungs with no vertebral body behind it is not proven
    # to be the descending aorta.
    pet, ct = torso()
    x, y, _z = _lps_grid()
    spine = (x**2 + (y - 78) ** 2) <= 15**2
    ct[spine] = -80.0
    with pytest.raises(UnprovenReferenceError, match="no vertebral bone"):
        blood_pool_reference(pet, ct=ct, affine=AFFINE)


def test_auto_blood_pool_is_not_placed_below_the_thorax():
    pet, ct = torso()
    n = int((90.0 - ORIGIN[2]) // SP)
    with pytest.raises(GeometryError, match="no lungs"):
        blood_pool_reference(pet[:n], ct=ct[:n], affine=AFFINE)


def test_blood_pool_without_ct_needs_a_manual_centre():
    pet, _ = torso()
    with pytest.raises(InputError, match="needs the CT"):
        blood_pool_reference(pet, affine=AFFINE)
    ref = blood_pool_reference(pet, centre_lps_mm=(25.0, 45.0, 150.0), affine=AFFINE)
    assert ref.placement == "manual" and ref.suv_mean == pytest.approx(1.6)


def test_percist_threshold_liver_and_blood_pool_fallback():
    rng = np.random.default_rng(2)
    pet, _ = torso()
    pet = pet * rng.normal(1, 0.1, pet.shape).astype(np.float32)
    liver = liver_reference(pet, centre_lps_mm=(-80.0, 10.0, 20.0), affine=AFFINE)
    blood = blood_pool_reference(pet, centre_lps_mm=(25.0, 45.0, 150.0), affine=AFFINE)
    f = 0.75
    t = percist_threshold(liver, blood, sul_per_suv=f)
    expect = 1.5 * liver.suv_mean * f + 2 * liver.suv_sd * f
    assert t.reference == "liver" and t.threshold_sul == pytest.approx(expect)
    assert t.threshold_suv == pytest.approx(expect / f)
    tb = percist_threshold(liver, blood, sul_per_suv=f, liver_usable=False)
    assert tb.reference == "blood_pool"
    assert tb.threshold_sul == pytest.approx(2.0 * blood.suv_mean * f + 2 * blood.suv_sd * f)
    with pytest.raises(InputError):
        percist_threshold(None, None)
