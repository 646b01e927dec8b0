"""load_series refuses what it cannot turn into values, naming the file and the attribute.

(0028,1053) Rescale Slope 0 used to be read as 1 (``or 1.0``): a CT/MR user got stored
values labelled as HU. A slice without (7FE0,0010) Pixel Data used to raise a bare
AttributeError. Both fail before the fix.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from oncohybrid.dicom.volume import load_series
from oncohybrid.errors import DicomError, GeometryError


def test_rescale_slope_zero_is_refused_naming_the_file_and_attribute(
    tmp_path, series_factory, series_writer
):
    datasets = series_factory(n=5, shuffle=False)
    datasets[3].RescaleSlope = "0"
    paths = series_writer(datasets, tmp_path / "CT")
    with pytest.raises(GeometryError, match=r"\(0028,1053\) Rescale Slope") as info:
        load_series(paths)
    assert paths[3].name in str(info.value)


def test_rescale_slope_zero_in_a_dataset_names_the_instance(series_factory):
    datasets = series_factory(n=4, shuffle=False)
    datasets[1].RescaleSlope = "0"
    with pytest.raises(GeometryError, match=r"\(0028,1053\).*0") as info:
        load_series(datasets)
    assert str(datasets[1].SOPInstanceUID) in str(info.value)


def test_rescale_slope_zero_in_an_enhanced_frame_is_refused(series_factory, enhanced_factory):
    singles = series_factory(n=4, shuffle=False)
    singles[2].RescaleSlope = "0"
    enhanced = enhanced_factory(singles)
    with pytest.raises(GeometryError, match=r"frame \d+.*\(0028,1053\) Rescale Slope"):
        load_series([enhanced])


def test_garbage_rescale_slope_is_refused_not_a_value_error(series_factory):
    datasets = series_factory(n=4, shuffle=False)
    # As read from a file: pydicom converts the raw "abc" on first access (ValueError).
    datasets[0][0x00281053] = RawDataElement(Tag(0x00281053), "DS", 4, b"abc ", 0, False,
                                             True)
    with pytest.raises(GeometryError, match=r"\(0028,1053\) Rescale Slope"):
        load_series(datasets)


def test_stored_values_need_no_slope(series_factory):
    """rescale=False reads stored values; the slope is not used, so it is not checked."""
    datasets = series_factory(n=4, shuffle=False)
    datasets[1].RescaleSlope = "0"
    raw = load_series(datasets, rescale=False, dtype=np.int32)
    assert raw.array.shape[0] == 4


def test_absent_or_empty_slope_is_still_one(series_factory):
    datasets = series_factory(n=4, shuffle=False, intercept=-1024.0)
    del datasets[0].RescaleSlope
    datasets[1].RescaleSlope = ""
    vol = load_series(datasets, dtype=np.float64)
    raw = load_series(datasets, rescale=False, dtype=np.float64)
    np.testing.assert_array_equal(vol.array, raw.array - 1024.0)


def test_slice_without_pixel_data_is_refused_naming_the_file(
    tmp_path, series_factory, series_writer
):
    datasets = series_factory(n=4, shuffle=False)
    paths = series_writer(datasets, tmp_path / "CT")
    read = [pydicom.dcmread(p) for p in paths]
    del read[2].PixelData
    with pytest.raises(DicomError, match=r"\(7FE0,0010\) Pixel Data") as info:
        load_series(read)
    assert paths[2].name in str(info.value)


def test_headers_read_without_pixels_are_refused_not_an_attribute_error(
    tmp_path, series_factory, series_writer
):
    paths = series_writer(series_factory(n=3, shuffle=False), tmp_path / "CT")
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    with pytest.raises(DicomError, match=r"\(7FE0,0010\) Pixel Data"):
        load_series(headers)
