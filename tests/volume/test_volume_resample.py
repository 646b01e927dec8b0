"""resample_to / to_sitk / from_sitk: geometry round trips and preservation of units."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.transform import Rotation

from oncohybrid.dicom.volume import load_series
from oncohybrid.errors import GeometryError
from oncohybrid.imaging.resample import from_sitk, resample_to, to_sitk

FOR = "1.2.826.0.1.3680043.8.498.1"


def grid(shape, spacing, position, array=None, *, direction=None, dtype=np.float32):
    if array is None:
        array = np.zeros(shape, dtype=dtype)
    return hd.Volume.from_components(
        array,
        spacing=spacing,
        position=position,
        direction=np.eye(3)[:, ::-1] if direction is None else direction,  # slice axis = z
        coordinate_system="PATIENT",
        frame_of_reference_uid=FOR,
    )


def lps_of_voxels(volume):
    idx = np.indices(volume.spatial_shape).reshape(3, -1).T
    return volume.map_indices_to_reference(idx).reshape(*volume.spatial_shape, 3)


def ball(volume, centre, radius, inside, outside=0.0):
    pts = lps_of_voxels(volume)
    r = np.linalg.norm(pts - np.asarray(centre), axis=-1)
    return np.where(r <= radius, inside, outside).astype(np.float32)


def test_to_sitk_matches_series_reader_layout(tmp_path, series_factory, series_writer):
    rot = Rotation.from_euler("xyz", (10, -20, 35), degrees=True).as_matrix()
    series_writer(series_factory(iop=np.r_[rot[:, 0], rot[:, 1]], seed=8), tmp_path / "s")
    volume = load_series(tmp_path / "s")
    reader = sitk.ImageSeriesReader()
    ref = sitk.ReadImage(reader.GetGDCMSeriesFileNames(str(tmp_path / "s")), sitk.sitkFloat32)
    mine = to_sitk(volume)
    assert mine.GetSize() == ref.GetSize()
    np.testing.assert_allclose(mine.GetOrigin(), ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(mine.GetSpacing(), ref.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(mine.GetDirection(), ref.GetDirection(), atol=1e-6)
    back = from_sitk(mine, volume.frame_of_reference_uid)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-9)
    np.testing.assert_array_equal(back.array, volume.array)


def test_constant_activity_region_keeps_its_value_on_the_ct_grid():
    pet = grid((30, 40, 40), (4.0, 4.0, 4.0), (-80.0, -80.0, -60.0))
    pet.array[:] = 1.0
    pet.array[8:22, 10:30, 10:30] = 5000.0  # Bq/ml
    ct = grid((50, 64, 64), (2.5, 1.95, 1.95), (-61.0, -62.3, -40.2))
    on_ct = resample_to(pet, ct)
    assert on_ct.dtype == np.float32
    np.testing.assert_array_equal(resample_to(pet, ct.get_geometry()).array, on_ct.array)
    np.testing.assert_allclose(on_ct.affine, ct.affine)
    assert on_ct.frame_of_reference_uid == FOR
    # CT voxels at least one PET voxel inside the block read exactly the block value.
    pts = lps_of_voxels(on_ct)
    pet_idx = pet.map_reference_to_indices(pts.reshape(-1, 3), round_output=False)
    pet_idx = pet_idx.reshape(*on_ct.spatial_shape, 3)
    deep = np.all((pet_idx >= [9, 11, 11]) & (pet_idx <= [20, 28, 28]), axis=-1)
    assert deep.sum() > 1000
    np.testing.assert_allclose(on_ct.array[deep], 5000.0, rtol=1e-6)


def test_total_activity_is_conserved_when_downsampling_to_pet_grid():
    ct = grid((80, 100, 100), (2.0, 1.6, 1.6), (-60.0, -80.0, -80.0))
    body = ball(ct, (3.0, -4.0, 20.0), 40.0, 500.0)
    lesion = ball(ct, (-30.0, 25.0, 40.0), 7.0, 12000.0)  # small hot lesion, 1.4 ml
    ct = ct.with_array(body + lesion)
    pet = grid((44, 44, 44), (4.0, 4.0, 4.0), (-85.0, -85.0, -62.0))
    on_pet = resample_to(ct, pet)
    total_ct = float(ct.array.sum(dtype=np.float64)) * ct.voxel_volume
    total_pet = float(on_pet.array.sum(dtype=np.float64)) * pet.voxel_volume
    assert total_pet == pytest.approx(total_ct, rel=0.01)
    # The lesion's own activity (counted in a 4 cm box around it) is kept too.
    near = ball(pet, (-30.0, 25.0, 40.0), 20.0, 1.0) > 0
    lesion_pet = float(on_pet.array[near].sum()) * pet.voxel_volume
    body_pet = float(ball(pet, (3.0, -4.0, 20.0), 40.0, 500.0)[near].sum()) * pet.voxel_volume
    lesion_true = float(lesion.sum(dtype=np.float64)) * ct.voxel_volume
    assert lesion_pet - body_pet == pytest.approx(lesion_true, rel=0.05)


def test_round_trip_pet_ct_pet_is_small_in_the_interior():
    pet = grid((30, 40, 40), (4.0, 4.0, 4.0), (-80.0, -80.0, -60.0))
    smooth = ndimage.gaussian_filter(
        np.random.default_rng(0).normal(size=pet.spatial_shape).astype(np.float32), 3
    )
    pet = pet.with_array(1000.0 + 2e4 * smooth)
    ct = grid((60, 90, 90), (2.0, 1.8, 1.8), (-82.0, -83.0, -63.0))
    back = resample_to(resample_to(pet, ct), pet)
    interior = (slice(3, -3), slice(3, -3), slice(3, -3))
    err = np.abs(back.array[interior] - pet.array[interior])
    spread = float(np.ptp(pet.array[interior]))  # contrast in the field
    assert float(np.max(err)) < 0.05 * spread
    assert float(np.mean(err)) < 0.01 * spread


def test_nearest_keeps_labels_and_dtype():
    mask_vol = grid((20, 20, 20), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), dtype=np.uint8)
    mask_vol.array[5:15, 5:15, 5:15] = 3
    target = grid((40, 40, 40), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), dtype=np.uint8)
    out = resample_to(mask_vol, target, interpolation="nearest")
    assert out.dtype == np.uint8
    assert set(np.unique(out.array)) == {0, 3}
    assert (out.array == 3).sum() * 8.0 == pytest.approx(10**3 * 64.0, rel=0.1)


def test_different_frames_of_reference_are_refused():
    a = grid((4, 4, 4), (1.0, 1.0, 1.0), (0, 0, 0))
    b = hd.Volume.from_components(
        np.zeros((4, 4, 4), np.float32), spacing=(1.0, 1.0, 1.0), position=(0, 0, 0),
        direction=np.eye(3), coordinate_system="PATIENT", frame_of_reference_uid="1.2.3",
    )
    with pytest.raises(GeometryError, match="frames of reference"):
        resample_to(a, b)
