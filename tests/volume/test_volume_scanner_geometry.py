"""Scanner geometries seen on real data (issue #12): GE bed overlap spacing, gantry tilt,
multi-volume series and enhanced + classic exports under one Series Instance UID.

Each series is synthetic (pydicom) but reproduces the geometry of the real case; pixel
values sample a known linear function of the LPS position, so a correctly placed voxel
holds ``f(affine @ index)`` whatever resampling the loader did.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from oncohybrid.dicom import volume as volume_module
from oncohybrid.dicom.split import frame_ranges
from oncohybrid.dicom.volume import load_series
from oncohybrid.errors import GeometryError

#: The stored value is round(10 * f); slope 0.1 gives f back to 0.05.
SLOPE = 0.1


def f_lps(points: np.ndarray) -> np.ndarray:
    """A linear field of the LPS position (mm); linear interpolation reproduces it."""
    return 200.0 + 0.5 * points[..., 0] - 0.75 * points[..., 1] + 1.25 * points[..., 2]


def paint(datasets: list[Dataset]) -> None:
    """Store round(f / SLOPE) at every pixel's LPS centre (PS3.3 C.7.6.2.1.1)."""
    for ds in datasets:
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
        dr, dc = (float(v) for v in ds.PixelSpacing)
        r, c = np.mgrid[0 : ds.Rows, 0 : ds.Columns]
        pts = ipp + c[..., None] * dc * iop[:3] + r[..., None] * dr * iop[3:]
        ds.PixelData = np.round(f_lps(pts) / SLOPE).astype("<i2").tobytes()
        ds.RescaleSlope = str(SLOPE)
        ds.RescaleIntercept = "0"


def voxel_points(volume) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in volume.spatial_shape], indexing="ij"), -1)
    return idx @ volume.affine[:3, :3].T + volume.affine[:3, 3]


def ge_discovery_st_z() -> np.ndarray:
    """267 slice positions of a 6-bed GE Discovery ST whole-body PET: within each bed
    3.27 mm, at the five bed junctions steps of 3.29 mm (four times) and 3.19 mm (once),
    every slice within 0.04 mm of the least-squares uniform grid."""
    steps = np.full(266, 3.27)
    for k, s in zip((44, 88, 132, 176, 220), (3.29, 3.29, 3.19, 3.29, 3.29), strict=True):
        steps[k] = s
    return -820.0 + np.concatenate([[0.0], np.cumsum(steps)])


def axial_positions(z: np.ndarray) -> np.ndarray:
    return np.stack([np.full_like(z, -300.0), np.full_like(z, -280.0), z], axis=1)


# --- 1. slice spacing judged against the fitted uniform grid ---------------------------


def test_ge_discovery_st_bed_overlap_spacing_loads_like_simpleitk(
    tmp_path, series_factory, series_writer
):
    z = ge_discovery_st_z()
    fit = np.polyfit(np.arange(z.size), z, 1)
    assert np.abs(np.polyval(fit, np.arange(z.size)) - z).max() < 0.04  # the real case
    datasets = series_factory(positions=axial_positions(z), rows=4, cols=5, modality="PT")
    series_writer(datasets, tmp_path / "pt")
    volume = load_series(tmp_path / "pt")
    assert volume.spatial_shape == (267, 4, 5)
    assert volume.notes == ()  # within a tenth of a voxel: no resampling
    reader = sitk.ImageSeriesReader()
    image = sitk.ReadImage(reader.GetGDCMSeriesFileNames(str(tmp_path / "pt")))
    np.testing.assert_allclose(image.GetOrigin(), volume.position, atol=1e-4)
    assert image.GetSpacing()[2] == pytest.approx(volume.spacing[0], abs=0.01)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume.array)


def test_spacing_beyond_a_tenth_of_a_voxel_is_resampled_with_a_note(series_factory):
    z = np.array([0.0, 2.5, 5.0, 7.5, 10.3, 12.5, 15.0, 17.5])
    datasets = series_factory(positions=axial_positions(z), rows=6, cols=7)
    paint(datasets)
    volume = load_series(datasets)
    assert volume.spatial_shape == (8, 6, 7)
    assert volume.spacing[0] == pytest.approx(2.5)
    np.testing.assert_allclose(volume.position, [-300.0, -280.0, 0.0])
    # every resampled voxel holds the field at its own position (linear field, exact)
    np.testing.assert_allclose(volume.array, f_lps(voxel_points(volume)), atol=0.06)
    # the note names the deviation from the least-squares grid (0.26 mm > 0.25 mm)
    k = np.arange(z.size)
    deviation = np.abs(np.polyval(np.polyfit(k, z, 1), k) - z).max()
    assert 0.25 < deviation < 0.3
    assert len(volume.notes) == 1
    assert "resampled" in volume.notes[0]
    assert f"lies {deviation:.2f} mm off" in volume.notes[0]


# --- 2. gantry tilt ----------------------------------------------------------------------


def tilted_ct(series_factory, *, tilt_deg: float, steps: np.ndarray, rows=24, cols=20):
    """CT tilted about the x axis: image planes tilted by ``tilt_deg``, positions moved
    along z by the table (the way a tilted gantry stores them)."""
    t = np.radians(tilt_deg)
    iop = (1.0, 0.0, 0.0, 0.0, np.cos(t), np.sin(t))
    z = np.concatenate([[0.0], np.cumsum(steps)])
    positions = np.stack([np.full_like(z, -8.0), np.full_like(z, -10.0), z], axis=1)
    datasets = series_factory(positions=positions, iop=iop, rows=rows, cols=cols)
    paint(datasets)
    return datasets


def test_gantry_tilt_18_5_degrees_is_corrected_onto_an_orthogonal_grid(series_factory):
    datasets = tilted_ct(series_factory, tilt_deg=18.5, steps=np.full(15, 2.5))
    volume = load_series(datasets)
    directions = volume.direction
    np.testing.assert_allclose(directions.T @ directions, np.eye(3), atol=1e-9)
    assert volume.spacing[0] == pytest.approx(2.5 * np.cos(np.radians(18.5)), abs=1e-4)
    # voxels whose source position lies inside the acquired slices hold the field there
    inside = ~np.isclose(volume.array, volume.array.min())
    assert inside.mean() > 0.5
    np.testing.assert_allclose(
        volume.array[inside], f_lps(voxel_points(volume))[inside], atol=0.06
    )
    assert any("gantry tilt" in n and "18.5" in n for n in volume.notes)


def test_gantry_tilt_with_variable_spacing_is_corrected_and_resampled(series_factory):
    steps = np.array([2.0, 2.6, 2.0, 2.6, 2.0, 2.0, 2.6, 2.0, 2.6, 2.0, 2.0])
    volume = load_series(tilted_ct(series_factory, tilt_deg=18.5, steps=steps))
    inside = ~np.isclose(volume.array, volume.array.min())
    np.testing.assert_allclose(
        volume.array[inside], f_lps(voxel_points(volume))[inside], atol=0.06
    )
    text = " ".join(volume.notes)
    assert "gantry tilt" in text and "resampled" in text


def test_tilted_head_ct_with_4_mm_then_7_mm_slices_is_resampled_not_refused(series_factory):
    """GE HiSpeed Dual head CT (dcm_qa_ct): 18.5° tilt, 14 slices 4 mm thick 4.002 mm
    apart, one 1.08 mm step, then 14 slices 7 mm thick 7 mm apart. The 7 mm steps are the
    protocol, not missing slices (Slice Thickness says so)."""
    steps = np.r_[np.full(13, 4.22), 1.14, np.full(13, 7.38)]  # table moves (along z)
    datasets = tilted_ct(series_factory, tilt_deg=18.5, steps=steps, rows=40, cols=12)
    for k, ds in enumerate(datasets):
        ds.SliceThickness = "4" if k < 14 else "7"
    volume = load_series(datasets)
    along = np.cos(np.radians(18.5))
    span = float(np.sum(steps)) * along
    assert volume.spatial_shape[0] == round(span / 4.0) + 1  # on the thin slices' grid
    inside = ~np.isclose(volume.array, volume.array.min())
    np.testing.assert_allclose(
        volume.array[inside], f_lps(voxel_points(volume))[inside], atol=0.06
    )
    assert len(volume.notes) == 2


def test_a_missing_slice_of_constant_thickness_is_still_refused(series_factory):
    z = np.r_[np.arange(6) * 2.5, 17.5, 20.0]
    with pytest.raises(GeometryError, match="missing slice"):
        load_series(series_factory(positions=axial_positions(z)))


def test_gantry_tilt_correction_can_be_turned_off(series_factory):
    datasets = tilted_ct(series_factory, tilt_deg=18.5, steps=np.full(6, 2.5))
    with pytest.raises(GeometryError, match=r"gantry tilt.*18\.5.*correct_tilt"):
        load_series(datasets, correct_tilt=False)


# --- 3. multi-volume series --------------------------------------------------------------


def two_echo_series(series_factory):
    a = series_factory(n=6, rows=4, cols=5, modality="MR", seed=1)
    b = series_factory(n=6, rows=4, cols=5, modality="MR", seed=2)
    for ds in b:  # same series, same positions
        ds.SeriesInstanceUID = a[0].SeriesInstanceUID
        ds.FrameOfReferenceUID = a[0].FrameOfReferenceUID
    for echo, group in ((1, a), (2, b)):
        for ds in group:
            ds.EchoNumbers = echo
            ds.EchoTime = f"{4.6 * echo:.2f}"
    return a, b


def test_two_echo_series_is_split_by_echo_and_each_echo_loads(series_factory):
    a, b = two_echo_series(series_factory)
    mixed = [ds for pair in zip(b, a, strict=True) for ds in pair]
    with pytest.raises(GeometryError, match=r"2 volumes.*Echo Number.*part="):
        load_series(mixed)
    parts = volume_module.series_parts(mixed)
    assert [p.values for p in parts] == [{"Echo Number": "1"}, {"Echo Number": "2"}]
    for k, group in enumerate((a, b)):
        np.testing.assert_array_equal(
            load_series(mixed, part=k).array, load_series(group).array
        )
        assert parts[k].n_planes == 6


def test_time_points_without_identifier_split_by_rank_of_acquisition_time(series_factory):
    a, b = two_echo_series(series_factory)
    for group, base in ((a, 100000), (b, 100200)):
        for k, ds in enumerate(group):
            del ds.EchoNumbers, ds.EchoTime
            ds.AcquisitionTime = f"{base + k:06d}"  # every slice its own time
    parts = volume_module.series_parts(a + b)
    assert len(parts) == 2
    np.testing.assert_array_equal(load_series(a + b, part=1).array, load_series(b).array)


def test_frame_ranges_are_compact_and_complete():
    assert frame_ranges([8, 1, 2, 3, 5, 7]) == "1-3, 5, 7-8"
    assert frame_ranges([4]) == "4"


def enhanced_two_echo(series_factory, enhanced_factory) -> tuple[Dataset, list[int]]:
    """Enhanced MR whose 10 frames (in shuffled order) are 5 planes at echo 5 ms and the
    same 5 planes at 15 ms; returns it and the 1-based frame numbers of echo 15 ms."""
    singles = series_factory(n=5, rows=4, cols=5, modality="MR", slopes=np.ones(5), seed=3)
    enh = enhanced_factory(singles + singles, shuffle_seed=4)
    order = np.random.default_rng(4).permutation(10)  # the factory's frame order
    enh.SOPClassUID = enh.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    # MR Echo functional group, PS3.3 C.8.13.5.2
    for i, fg in enumerate(enh.PerFrameFunctionalGroupsSequence):
        echo = Dataset()
        echo.EffectiveEchoTime = 5.0 if order[i] < 5 else 15.0
        fg.MREchoSequence = DicomSequence([echo])
    return enh, [i + 1 for i in range(10) if order[i] >= 5]


def test_enhanced_object_with_two_echoes_is_split_and_refusal_names_frames(
    series_factory, enhanced_factory
):
    enh, late = enhanced_two_echo(series_factory, enhanced_factory)
    early = sorted(set(range(1, 11)) - set(late))
    with pytest.raises(GeometryError) as info:
        load_series([enh])
    message = str(info.value)
    assert f"frames {frame_ranges(early)};" in message
    assert f"frames {frame_ranges(late)};" in message
    parts = volume_module.series_parts([enh])
    assert [p.values for p in parts] == [{"Effective Echo Time": "5"},
                                         {"Effective Echo Time": "15"}]
    assert parts[1].frames == tuple(late)
    assert load_series([enh], part=1).spatial_shape == (5, 4, 5)


def test_enhanced_duplicate_positions_without_discriminator_names_frame_numbers(
    series_factory, enhanced_factory
):
    singles = series_factory(n=4, rows=4, cols=5, seed=3)
    enh = enhanced_factory(singles + singles[:1], shuffle_seed=0)
    with pytest.raises(GeometryError, match=r"duplicate slice positions.*frames? \d+ and \d+"):
        load_series([enh])


def test_enhanced_and_classic_export_with_one_series_uid_do_not_mix(
    tmp_path, series_factory, enhanced_factory, series_writer
):
    classic = series_factory(n=6, rows=4, cols=5, seed=7)
    enh = enhanced_factory(classic)
    enh.SeriesInstanceUID = classic[0].SeriesInstanceUID  # as some vendors export
    series_writer([*classic, enh], tmp_path / "both")
    with pytest.raises(GeometryError, match=r"SOP Class.*part="):
        load_series(tmp_path / "both")
    parts = volume_module.series_parts(tmp_path / "both")
    assert sorted(p.values["SOP Class"] for p in parts) == ["CT Image Storage",
                                                            "Enhanced CT Image Storage"]
    vols = [load_series(tmp_path / "both", part=p.index) for p in parts]
    np.testing.assert_array_equal(vols[0].array, vols[1].array)
    np.testing.assert_allclose(vols[0].affine, vols[1].affine, atol=1e-9)
