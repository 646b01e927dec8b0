"""Rigid+affine CT registration on synthetic torsos with known repositioning."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest
import SimpleITK as sitk
from tracking_torso import default_lesions, grid_affine, make_timepoint

from oncohybrid.errors import GeometryError, InputError
from oncohybrid.imaging.register import map_points, register_ct, resample_to_baseline


@pytest.fixture(scope="module")
def patient():
    rng = np.random.default_rng(7)
    lesions = default_lesions(rng, 6)
    base = make_timepoint(lesions, seed=1)
    return lesions, base


@pytest.mark.parametrize(
    ("rotation_deg", "shift_mm", "stages"),
    [
        (4.0, (25.0, -20.0, 15.0), ("rigid",)),
        (-5.0, (-30.0, 15.0, -25.0), ("rigid", "affine")),
        (0.0, (0.0, 0.0, 40.0), ("rigid", "affine")),
    ],
)
def test_recovers_repositioning_at_lesion_centroids(patient, rotation_deg, shift_mm, stages):
    lesions, base = patient
    fu = make_timepoint(lesions, rotation_deg=rotation_deg, shift_mm=shift_mm, seed=3)
    reg = register_ct(base.ct, fu.ct, stages=stages)
    centres = np.array([c for c, _ in fu.lesions.values()])
    err = np.linalg.norm(reg.map_points(centres) - fu.to_baseline(centres), axis=1)
    # Working resolution is 5 mm; the analytic truth is recovered to ~1 mm.
    assert err.max() < 2.5, err
    assert reg.rotation_deg == pytest.approx(abs(rotation_deg), abs=1.0)
    assert reg.elapsed_s < 30
    assert reg.stages[0] == "rigid"


def test_matrix_and_itk_transform_are_inverse_conventions(patient):
    lesions, base = patient
    fu = make_timepoint(lesions, rotation_deg=3.0, shift_mm=(20, 10, -10), seed=4)
    reg = register_ct(base.ct, fu.ct, stages=("rigid",))
    p_base = np.array([[10.0, -20.0, 5.0], [-40.0, 30.0, -60.0]])
    p_fu = np.array([reg.transform.TransformPoint(p.tolist()) for p in p_base])
    np.testing.assert_allclose(map_points(reg, p_fu), p_base, atol=1e-6)
    np.testing.assert_allclose(map_points(None, p_fu), p_fu)
    js = reg.to_json()
    np.testing.assert_allclose(np.array(js["matrix_lps"]), reg.matrix_lps, atol=1e-6)
    assert js["stages"] == ["rigid"]


def test_resampled_followup_mask_overlaps_baseline_mask(patient):
    lesions, base = patient
    fu = make_timepoint(lesions, rotation_deg=-4.0, shift_mm=(-22, 18, 12), seed=5)
    reg = register_ct(base.ct, fu.ct)
    gid = max(base.masks, key=lambda g: base.masks[g].array.sum())
    out = resample_to_baseline(reg, fu.masks[gid], base.ct)
    a, b = base.masks[gid].array > 0, out.array > 0
    dice = 2 * (a & b).sum() / (a.sum() + b.sum())
    assert dice > 0.8
    assert out.frame_of_reference_uid == base.ct.frame_of_reference_uid
    # Without the registration the mask would be far off.
    raw = resample_to_baseline(None, fu.masks[gid], base.ct).array > 0
    assert 2 * (a & raw).sum() / (a.sum() + raw.sum()) < dice - 0.3
    # sitk reference in → sitk image out
    ref = sitk.Image(30, 30, 10, sitk.sitkUInt8)
    assert isinstance(resample_to_baseline(reg, fu.masks[gid], ref), sitk.Image)


def test_frame_of_reference_must_match_the_registered_followup(patient):
    lesions, base = patient
    fu = make_timepoint(lesions, shift_mm=(20, 0, 0), seed=6, frame_uid="1.2.3.4")
    reg = register_ct(base.ct, fu.ct, stages=("rigid",))
    other = make_timepoint(lesions[:1], seed=6, frame_uid="1.2.3.5")
    with pytest.raises(GeometryError, match="FrameOfReferenceUID"):
        resample_to_baseline(reg, next(iter(other.masks.values())), base.ct)


def test_invalid_arguments():
    with pytest.raises(InputError, match="stages"):
        register_ct(None, None, stages=("affine",))
    with pytest.raises(InputError, match="resolution_mm"):
        register_ct(None, None, resolution_mm=0.1)
    with pytest.raises(InputError, match="highdicom.Volume"):
        register_ct(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)))


def test_pet_grid_mask_follows_the_ct_transform_through_the_shared_frame(patient):
    lesions, base = patient
    fu = make_timepoint(lesions, rotation_deg=3.0, shift_mm=(-25, 20, 10), seed=8)
    reg = register_ct(base.ct, fu.ct)
    gid = max(base.masks, key=lambda g: base.masks[g].array.sum())
    # Rasterise the follow-up lesion on a coarser "PET" grid with the CT's frame UID.
    ct_mask = fu.masks[gid]
    pet_shape, pet_spacing = (30, 50, 60), (8.0, 6.5, 6.5)
    pet_aff = grid_affine(pet_shape, pet_spacing)
    idx = np.indices(pet_shape).reshape(3, -1).T
    lps = idx @ pet_aff[:3, :3].T + pet_aff[:3, 3]
    ct_idx = np.rint((lps - ct_mask.affine[:3, 3]) @ np.linalg.inv(ct_mask.affine[:3, :3]).T)
    ok = np.all((ct_idx >= 0) & (ct_idx < np.array(ct_mask.array.shape)), axis=1)
    vals = np.zeros(len(idx), np.uint8)
    ci = ct_idx[ok].astype(int)
    vals[ok] = ct_mask.array[ci[:, 0], ci[:, 1], ci[:, 2]]
    pet_mask = hd.Volume(vals.reshape(pet_shape), pet_aff, "PATIENT",
                         frame_of_reference_uid=fu.ct.frame_of_reference_uid)
    assert pet_mask.array.sum() > 0
    out = resample_to_baseline(reg, pet_mask, base.ct).array > 0
    a = base.masks[gid].array > 0
    assert 2 * (a & out).sum() / (a.sum() + out.sum()) > 0.6
