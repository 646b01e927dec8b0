"""Real scanner DICOM shipped inside installed PyPI packages (no network, runs in CI).

Sources (see docs/real-data.md for provenance and licences):
- pydicom ``data/test_files``: ``CT_small.dcm`` (GE RHAPSODE CT), ``MR_small.dcm``
  (Toshiba MRT50H1 MR).
- nibabel ``nicom/tests/data``: ``siemens_dwi_0.dcm.gz`` and ``siemens_dwi_1000.dcm.gz``
  (Siemens TrioTim DWI, b = 0 and b = 1000 s/mm² of one series at one position),
  ``philips_mprage.dcm.gz`` (Philips Achieva enhanced MR, 176 frames).

Files are located in the installed packages' folders, never through
``pydicom.data.get_testdata_file`` for names outside the wheel (that would download).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from oncohybrid.dicom.volume import load_series, series_parts
from oncohybrid.errors import GeometryError

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def nibabel_file(name: str) -> Path:
    nibabel = pytest.importorskip("nibabel")
    path = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / name
    if not path.is_file():
        pytest.skip(f"{name} is not shipped in the installed nibabel ({nibabel.__version__})")
    return path


def unpack(path: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / path.name.removesuffix(".gz")
    if path.suffix == ".gz":
        with gzip.open(path) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copyfile(path, out)
    return out


def assert_same_grid_as_simpleitk(volume, path: Path) -> None:
    """Every voxel at the same LPS position with the same value as SimpleITK (GDCM)."""
    image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    in_plane = (affine @ np.eye(4)[[2, 1, 0, 3]])[:3, 1:]  # sitk (x,y,z) -> (slice,row,col)
    np.testing.assert_allclose(in_plane, volume.affine[:3, 1:], atol=1e-4)
    if volume.spatial_shape[0] > 1:
        np.testing.assert_allclose(affine[:3, 2], volume.affine[:3, 0], atol=1e-4)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), volume.array, rtol=1e-6)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_pydicom_bundled_ge_ct_and_toshiba_mr_load_like_simpleitk(tmp_path, name):
    path = unpack(PYDICOM_FILES / name, tmp_path)
    volume = load_series([path])
    assert volume.spatial_shape[0] == 1 and volume.notes == ()
    assert_same_grid_as_simpleitk(volume, path)


def test_philips_enhanced_mr_176_frames_loads_like_simpleitk(tmp_path):
    path = unpack(nibabel_file("philips_mprage.dcm.gz"), tmp_path)
    parts = series_parts([path])
    assert len(parts) == 1 and parts[0].n_planes == 176
    volume = load_series([path])
    assert volume.spatial_shape == (176, 256, 256)
    assert_same_grid_as_simpleitk(volume, path)


def test_siemens_dwi_b0_and_b1000_in_one_series_split_by_b_value(tmp_path):
    b0 = unpack(nibabel_file("siemens_dwi_0.dcm.gz"), tmp_path / "dwi")
    b1000 = unpack(nibabel_file("siemens_dwi_1000.dcm.gz"), tmp_path / "dwi")
    first, second = pydicom.dcmread(b0), pydicom.dcmread(b1000)
    assert first.SeriesInstanceUID == second.SeriesInstanceUID  # the real case
    assert first.ImagePositionPatient == second.ImagePositionPatient
    with pytest.raises(GeometryError, match=r"2 volumes.*Diffusion b-value.*part="):
        load_series(tmp_path / "dwi")
    parts = series_parts(tmp_path / "dwi")
    assert [p.values["Diffusion b-value"] for p in parts] == ["0", "1000"]
    assert [p.files for p in parts] == [(b0.name,), (b1000.name,)]
    for part, ds in zip(parts, (first, second), strict=True):
        volume = load_series(tmp_path / "dwi", part=part)
        np.testing.assert_array_equal(volume.array[0], ds.pixel_array.astype(np.float32))
