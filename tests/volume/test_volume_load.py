"""load_series / sort_slices against SimpleITK's ImageSeriesReader and error cases."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from oncohybrid.dicom.volume import load_series, read_series, sort_slices
from oncohybrid.errors import DicomError, GeometryError


def sitk_read(directory):
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(directory))
    return sitk.ReadImage(files, sitk.sitkFloat32)


def assert_matches_sitk(volume, image, *, atol_mm=1e-4):
    """Geometry (origin, spacing, direction) and voxel values equal SimpleITK's."""
    sz, sy, sx = volume.spacing
    np.testing.assert_allclose(image.GetSpacing(), (sx, sy, sz), atol=atol_mm)
    np.testing.assert_allclose(image.GetOrigin(), volume.position, atol=atol_mm)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    # sitk axes (x=column, y=row, z=slice) <-> highdicom axes (slice, row, column)
    np.testing.assert_allclose(direction[:, ::-1], volume.direction, atol=1e-6)
    # Same LPS position for every voxel index: compare the full affines.
    sitk_affine = np.eye(4)
    sitk_affine[:3, :3] = direction * np.asarray(image.GetSpacing())
    sitk_affine[:3, 3] = image.GetOrigin()
    perm = np.eye(4)[[2, 1, 0, 3]]  # (slice,row,col) -> (x,y,z) index
    np.testing.assert_allclose(sitk_affine @ perm, volume.affine, atol=atol_mm)
    arr = sitk.GetArrayFromImage(image)
    assert arr.shape == volume.array.shape
    np.testing.assert_allclose(volume.array, arr, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize(
    "rotation_deg",
    [(0, 0, 0), (0, 0, 17), (25, -10, 40), (90, 0, 0)],
    ids=["axial", "rot-z", "oblique", "coronal"],
)
def test_geometry_and_values_equal_simpleitk_for_shuffled_instance_numbers(
    tmp_path, series_factory, series_writer, rotation_deg
):
    rot = Rotation.from_euler("xyz", rotation_deg, degrees=True).as_matrix()
    iop = np.concatenate([rot[:, 0], rot[:, 1]])
    slopes = np.linspace(0.013, 0.41, 12)[::-1]
    datasets = series_factory(iop=iop, slopes=slopes, intercept=-3.5, dz=3.27, seed=3)
    series_writer(datasets, tmp_path / "s")
    volume = load_series(tmp_path / "s")
    assert_matches_sitk(volume, sitk_read(tmp_path / "s"))
    # slice k carries marker k in its first stored pixel (written in position order)
    markers = (volume.array[:, 0, 0] + 3.5) / slopes
    np.testing.assert_allclose(markers, np.arange(12), atol=1e-3)
    assert volume.frame_of_reference_uid == datasets[0].FrameOfReferenceUID


def test_sort_slices_orders_by_position_not_instance_number(series_factory):
    datasets = series_factory(n=9, seed=5)
    shuffled = [datasets[i] for i in np.random.default_rng(2).permutation(9)]
    ordered = sort_slices(shuffled)
    z = [float(ds.ImagePositionPatient[2]) for ds in ordered]
    assert z == sorted(z)
    assert [ds.SOPInstanceUID for ds in ordered] == [ds.SOPInstanceUID for ds in datasets]


def test_sources_directory_paths_and_datasets_agree(tmp_path, series_factory, series_writer):
    datasets = series_factory(slopes=np.linspace(0.5, 2.0, 12), seed=9)
    paths = series_writer(datasets, tmp_path / "s")
    from_dir = load_series(tmp_path / "s")
    from_paths = load_series([str(p) for p in reversed(paths)])
    from_ds = load_series(read_series(tmp_path / "s"))
    for other in (from_paths, from_ds):
        np.testing.assert_array_equal(other.array, from_dir.array)
        np.testing.assert_array_equal(other.affine, from_dir.affine)


def test_rescale_false_returns_stored_values(series_factory):
    datasets = series_factory(slopes=np.full(12, 0.25), intercept=10.0, shuffle=False)
    raw = load_series(datasets, rescale=False, dtype=np.int32)
    assert raw.array.dtype == np.int32
    stored = np.frombuffer(datasets[4].PixelData, "<i2").reshape(20, 24)
    np.testing.assert_array_equal(raw.array[4], stored)
    scaled = load_series(datasets)
    np.testing.assert_allclose(scaled.array[4], stored * 0.25 + 10.0, rtol=1e-6)


def test_enhanced_multiframe_equals_single_frame_series(
    series_factory, enhanced_factory
):
    rot = Rotation.from_euler("xyz", (12, 5, -30), degrees=True).as_matrix()
    singles = series_factory(
        iop=np.concatenate([rot[:, 0], rot[:, 1]]), slopes=np.linspace(0.1, 1.3, 12), seed=4
    )
    enhanced = enhanced_factory(singles)
    ref = load_series(singles)
    vol = load_series([enhanced])
    np.testing.assert_allclose(vol.affine, ref.affine, atol=1e-9)
    np.testing.assert_array_equal(vol.array, ref.array)


def test_read_series_filters_by_series_uid(tmp_path, series_factory, series_writer):
    a = series_factory(n=5, seed=1)
    b = series_factory(n=6, seed=2)
    series_writer(a, tmp_path / "mix" / "a")
    series_writer(b, tmp_path / "mix" / "b")
    (tmp_path / "mix" / "README.txt").write_text("not dicom")
    with pytest.raises(DicomError, match="holds 2 series"):
        read_series(tmp_path / "mix")
    got = read_series(tmp_path / "mix", series_instance_uid=b[0].SeriesInstanceUID)
    assert len(got) == 6


# --- error cases ------------------------------------------------------------------------


def test_gantry_tilt_is_rejected_naming_the_series_when_correction_is_off(series_factory):
    n, dz, tilt = 10, 2.5, np.radians(15)
    positions = np.array([[0.0, k * dz * np.tan(tilt), k * dz] for k in range(n)])
    datasets = series_factory(positions=positions)
    with pytest.raises(GeometryError, match=r"gantry tilt.*") as info:
        load_series(datasets, correct_tilt=False)
    assert datasets[0].SeriesInstanceUID in str(info.value)


def test_missing_slice_is_rejected(series_factory):
    datasets = series_factory(n=12)
    del datasets[6]
    with pytest.raises(GeometryError, match="missing slice"):
        load_series(datasets)


def test_non_uniform_spacing_is_resampled_with_a_note(series_factory):
    # was refused before issue #12; now resampled (values: test_volume_scanner_geometry)
    z = np.array([0, 2.5, 5.0, 7.5, 10.6, 12.5, 15.0])  # ~0.5 mm off the fitted grid
    positions = np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1)
    volume = load_series(series_factory(positions=positions))
    assert volume.spatial_shape[0] == 7
    assert "non-uniform slice spacing" in volume.notes[0]


def test_spacing_jitter_within_tolerance_is_accepted(series_factory):
    z = np.arange(10) * 3.0 + np.array([0, 0.004, -0.003, 0.002, 0, 0, 0.005, 0, -0.004, 0])
    positions = np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1)
    vol = load_series(series_factory(positions=positions))
    assert vol.spacing[0] == pytest.approx((z[-1] - z[0]) / 9)


def test_mixed_orientation_is_rejected(series_factory):
    datasets = series_factory(n=8)
    datasets[3].ImageOrientationPatient = [1, 0, 0, 0, 0.9950042, -0.0998334]
    with pytest.raises(GeometryError, match="mixed orientations"):
        load_series(datasets)


def test_mixed_sizes_are_rejected(series_factory):
    datasets = series_factory(n=8)
    datasets[2].Rows = 10
    datasets[2].PixelData = datasets[2].PixelData[: 10 * 24 * 2]
    with pytest.raises(GeometryError, match="mixed image sizes"):
        load_series(datasets)


def test_duplicate_positions_are_rejected(series_factory):
    datasets = series_factory(n=8)
    datasets[5].ImagePositionPatient = datasets[4].ImagePositionPatient
    with pytest.raises(GeometryError, match="duplicate slice positions"):
        load_series(datasets)


def test_images_of_two_series_are_rejected(series_factory):
    with pytest.raises(DicomError, match="different series"):
        load_series(series_factory(n=4, seed=1) + series_factory(n=4, seed=2))


def test_non_orthogonal_orientation_is_rejected(series_factory):
    datasets = series_factory(n=4, iop=(1, 0, 0, 0.01, 1, 0))
    with pytest.raises(GeometryError, match="not orthogonal"):
        load_series(datasets)


def test_same_voxels_and_positions_as_highdicom_get_volume_from_series(series_factory):
    import highdicom as hd

    rot = Rotation.from_euler("xyz", (5, 10, -20), degrees=True).as_matrix()
    datasets = series_factory(iop=np.r_[rot[:, 0], rot[:, 1]], slopes=np.linspace(0.2, 1, 12))
    ours = load_series(datasets)
    theirs = hd.get_volume_from_series(datasets, dtype=np.float32)
    # highdicom stacks along -normal (right-handed (slice,row,col)); ours along +normal.
    flipped = ours.flip_spatial(0)
    np.testing.assert_allclose(flipped.affine, theirs.affine, atol=1e-4)
    np.testing.assert_allclose(flipped.array, theirs.array, rtol=1e-6)


@pytest.mark.parametrize("signed", [True, False])
def test_12_bit_stored_values_match_pydicom_decoding(series_factory, signed):
    datasets = series_factory(n=3, shuffle=False)
    rng = np.random.default_rng(0)
    for ds in datasets:
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, int(signed)
        values = rng.integers(-2048 if signed else 0, 2048 if signed else 4096, size=(20, 24))
        # 12-bit two's complement / unsigned with junk in the 4 unused high bits
        raw = (values.astype("<i4") & 0x0FFF).astype("<u2") | np.uint16(0xA000)
        ds.PixelData = raw.tobytes()
    vol = load_series(datasets, rescale=False, dtype=np.int32)
    for k, ds in enumerate(datasets):
        np.testing.assert_array_equal(vol.array[k], ds.pixel_array)
        assert vol.array[k].min() < 0 if signed else vol.array[k].max() < 4096
