"""Public real-scanner DICOM (not in the repository): dcm2niix's QA sets.

The data are read from ``$ONCOHYBRID_REALDATA`` or ``../shared/data/real-scanner/`` next
to the repository, laid out as ``<root>/<repo>/…`` exactly as in each source repository
(docs/real-data.md lists repository, commit, paths and licences). Every test skips with
the missing path when the data are absent, so CI without them stays green.

References are independent: SimpleITK (GDCM) for untilted series, dcm2niix (run here,
when installed) for gantry-tilt correction, the NIfTI files dcm2niix's authors committed
next to the DICOM (``Ref/``) for enhanced MR, and the same phantom scanned at two tilts.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from oncohybrid.dicom.volume import load_series, read_series, series_parts
from oncohybrid.imaging.resample import resample_to

REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    env = os.environ.get("ONCOHYBRID_REALDATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real-scanner"


def need(relative: str) -> Path:
    path = data_root() / relative
    if not path.exists():
        pytest.skip(
            f"real-scanner data {path} absent (set ONCOHYBRID_REALDATA; see docs/real-data.md)"
        )
    return path


def images(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name != "DIRFILE")


@functools.lru_cache(maxsize=2)
def _nifti(path: str) -> tuple[np.ndarray, np.ndarray]:
    nib = pytest.importorskip("nibabel")
    img = nib.load(path)
    return img.affine, img.get_fdata()


def sample_nifti(volume, nifti: Path, t: int | None = None, order: int = 1) -> np.ndarray:
    """Values of a NIfTI (RAS) at every voxel centre of ``volume`` (LPS), interpolated
    (``order`` 1 linear, 0 nearest for grids that coincide), NaN outside."""
    affine, data = _nifti(str(nifti))
    if t is not None:
        data = data[..., t]
    to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    m = np.linalg.inv(affine) @ to_ras @ volume.affine
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in volume.spatial_shape], indexing="ij"))
    ijk = np.tensordot(m[:3, :3], grid, axes=1) + m[:3, 3][:, None, None, None]
    # a hair of tolerance at the border: the grids coincide there up to float rounding
    shape = np.asarray(data.shape[:3], dtype=float).reshape(3, 1, 1, 1)
    outside = ((ijk < -1e-3) | (ijk > shape - 1 + 1e-3)).any(axis=0)
    values = ndimage.map_coordinates(data, ijk, order=order, mode="nearest")
    values[outside] = np.nan
    return values


def acquired(volume, other: np.ndarray) -> np.ndarray:
    """Voxels both volumes hold (not outside the other grid, not tilt fill)."""
    return ~np.isnan(other) & ~np.isclose(volume.array, volume.array.min())


def dcm2niix(source: Path, out: Path) -> list[Path]:
    exe = shutil.which("dcm2niix") or shutil.which("dcm2niix", path=str(Path(
        sys.executable).parent))
    if exe is None:
        pytest.skip("dcm2niix is not installed (pip install dcm2niix)")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-z", "n", "-f", "%s", "-o", str(out), str(source)],
                   check=True, capture_output=True, timeout=120)
    return sorted(out.glob("*.nii"))


# --- CT: gantry tilt (dcm_qa_ct) ---------------------------------------------------------


def test_ge_hispeed_tilted_head_ct_with_4_and_7_mm_slices_agrees_with_dcm2niix(tmp_path):
    src = need("dcm_qa_ct/In/GE")
    volume = load_series(images(src))
    assert volume.spatial_shape == (37, 512, 512)
    assert volume.spacing[0] == pytest.approx(4.0025, abs=1e-3)
    assert any("18.5°" in n for n in volume.notes) and any("resampled" in n for n in volume.notes)
    ref = [p for p in dcm2niix(src, tmp_path) if "Tilt_Eq" in p.name]
    theirs = sample_nifti(volume, ref[0])
    m = acquired(volume, theirs)
    # two different resamplings (dcm2niix equalises to 2.62 mm) of a bony head
    assert np.corrcoef(volume.array[m], theirs[m])[0, 1] > 0.995
    assert np.median(np.abs(volume.array[m] - theirs[m])) < 2.0


def test_philips_ingenuity_minus_18_5_degree_tilt_agrees_with_dcm2niix(tmp_path):
    src = need("dcm_qa_ct/In/Philips/S21610/S2010")
    volume = load_series(images(src))
    assert volume.spatial_shape == (54, 512, 512)
    ref = [p for p in dcm2niix(src, tmp_path) if "Tilt" in p.name]
    theirs = sample_nifti(volume, ref[0])
    m = acquired(volume, theirs)
    assert m.mean() > 0.5
    assert np.corrcoef(volume.array[m], theirs[m])[0, 1] > 0.9999
    assert np.percentile(np.abs(volume.array[m] - theirs[m]), 99) < 1.0


def test_philips_phantom_at_two_tilts_gives_the_same_lps_volume():
    a = load_series(images(need("dcm_qa_ct/In/Philips/S21610/S2010")))  # -18.5°
    b = load_series(images(need("dcm_qa_ct/In/Philips/S21610/S3010")))  # +16.5°
    assert a.frame_of_reference_uid == b.frame_of_reference_uid
    b_on_a = resample_to(b, a, default=np.nan, antialias=False).array
    m = acquired(a, b_on_a) & ~np.isclose(b_on_a, b.array.min())
    assert m.sum() > 1_000_000
    # 0.96 measured; a volume left sheared (or sheared the wrong way) correlates far less
    assert np.corrcoef(a.array[m], b_on_a[m])[0, 1] > 0.9


@pytest.mark.parametrize("series", ["S2020", "S2030"])
def test_philips_untilted_head_ct_equals_simpleitk(series):
    files = images(need(f"dcm_qa_ct/In/Philips/S21570/{series}"))
    volume = load_series(files)
    reader = sitk.ImageSeriesReader()
    image = sitk.ReadImage(reader.GetGDCMSeriesFileNames(str(files[0].parent)), sitk.sitkFloat32)
    np.testing.assert_allclose(image.GetOrigin(), volume.position, atol=1e-3)
    assert image.GetSpacing()[2] == pytest.approx(volume.spacing[0], abs=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume.array)


# --- enhanced MR (dcm_qa_enh) -------------------------------------------------------------


def test_philips_enhanced_field_map_is_split_by_frame_type_and_matches_dcm2niix():
    src = need("dcm_qa_enh/In/Philips/IM_0027_fMAP.dcm")
    parts = series_parts([src])
    assert [p.values["Image Type"] for p in parts] == [
        "ORIGINAL\\PRIMARY\\T1\\FIELD_MAP", "ORIGINAL\\PRIMARY\\T1\\M"]
    assert parts[0].frames == tuple(range(33, 65)) and parts[1].frames == tuple(range(1, 33))
    field = load_series([src], part=parts[0])
    theirs = sample_nifti(field, need("dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e2_fieldmaphz.nii"))
    m = ~np.isnan(theirs)
    assert m.mean() > 0.99
    # Hz from (0028,1053)/(0028,1052) of each frame; the NIfTI's float32 scl_slope rounds
    # 0.24420024 to 0.24420166, hence up to 0.005 Hz apart over +-500 Hz
    np.testing.assert_allclose(field.array[m], theirs[m], atol=0.01)
    magnitude = load_series([src], part=parts[1])
    theirs = sample_nifti(magnitude, need("dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e1.nii"))
    m = ~np.isnan(theirs)
    # dcm2niix applies Philips' private floating-point scale (2005,100E) to magnitudes;
    # we keep the DICOM rescale (display values): proportional, same voxels
    assert np.corrcoef(magnitude.array[m], theirs[m])[0, 1] > 0.999999


def test_siemens_xa10_enhanced_time_series_split_by_temporal_position_matches_dcm2niix():
    src = need("dcm_qa_enh/In/Siemens/XA10")
    parts = series_parts(src)
    assert [p.values for p in parts] == [{"Temporal Position Index": str(t)}
                                         for t in range(1, 5)]
    ref = need("dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6.nii")
    for t, part in enumerate(parts):
        volume = load_series(src, part=part)
        assert volume.spatial_shape == (6, 64, 64)
        theirs = sample_nifti(volume, ref, t=t)
        m = ~np.isnan(theirs)
        assert m.mean() > 0.99
        np.testing.assert_allclose(volume.array[m], theirs[m], rtol=1e-4, atol=1e-3)


# --- Canon/Toshiba DTI (dcm_qa_toshiba) ---------------------------------------------------


def test_canon_galan_dti_series_splits_into_b0_and_12_directions_like_dcm2niix(tmp_path):
    src = need("dcm_qa_toshiba/In/Galan/8006_DTI_AX_30d")
    datasets = read_series(src)  # read the 520 files once
    parts = series_parts(datasets)
    bvals = need("dcm_qa_toshiba/Ref/8006_DTI_AX_30d.bval").read_text().split()
    assert sorted(p.values["Diffusion b-value"] for p in parts) == sorted(
        "(absent)" if b == "0" else b for b in bvals)  # the b = 0 images carry no b-value
    assert len({p.values.get("Diffusion Gradient Orientation") for p in parts}) == 13
    ref = dcm2niix(src, tmp_path)[0]  # the repository's Ref/*.nii is not mirrored
    matched = set()
    for part in parts:
        volume = load_series(datasets, part=part)
        assert volume.spatial_shape == (40, 64, 64)
        errors = [np.nanmax(np.abs(volume.array - sample_nifti(volume, ref, t=t, order=0)))
                  for t in range(13)]
        t = int(np.argmin(errors))
        assert errors[t] == 0  # one of dcm2niix's volumes, voxel for voxel
        matched.add(t)
    assert matched == set(range(13))
