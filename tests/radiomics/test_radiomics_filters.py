"""IBSI 2 phase 1: filter response maps of the digital phantoms against the consensus maps.

Each test's filter and parameters are those of the IBSI 2 reference manual's phase-1 table
(arXiv:2006.05470, chapter 5 "Phase 1"; recorded here as data). A response map passes when
every voxel is within 1 % of the reference map's intensity range (IBSI 2 reference data
README). Phantoms and maps are NIfTI arrays (i, j, k) = (x, y, z); they are transposed to
(z, y, x) for the filters and the result compared in the same order as the reference map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from oncohybrid.radiomics import filters as F
from refdata import path_of, require

nib = pytest.importorskip("nibabel")

PHANTOMS = "ibsi-radiomics/ibsi2_digital_phantoms"
MAPS = "ibsi-radiomics/ibsi2_reference/response_maps"
SP = (2.0, 2.0, 2.0)  # phantom spacing (z, y, x), mm

Filter = Callable[[np.ndarray], np.ndarray]

#: test id -> (phantom, filter with the manual's parameters)
PHASE1: dict[str, tuple[str, Filter]] = {
    # 1: mean filter, support 15 voxels; 3D with each boundary condition, then 2D
    "1_a_1": ("checkerboard", lambda a: F.mean_filter(a, 15, "zero")),
    "1_a_2": ("checkerboard", lambda a: F.mean_filter(a, 15, "nearest")),
    "1_a_3": ("checkerboard", lambda a: F.mean_filter(a, 15, "periodic")),
    "1_a_4": ("checkerboard", lambda a: F.mean_filter(a, 15, "mirror")),
    "1_b_1": ("impulse", lambda a: F.mean_filter(a, 15, "zero", dims=2)),
    # 2: LoG, truncation 4σ
    "2_a": ("impulse", lambda a: F.log_filter(a, SP, 3.0, 4.0, "zero")),
    "2_b": ("checkerboard", lambda a: F.log_filter(a, SP, 5.0, 4.0, "mirror")),
    "2_c": ("checkerboard", lambda a: F.log_filter(a, SP, 5.0, 4.0, "mirror", dims=2)),
    # 3: Laws; plain, rotation-invariant (max pooling), energy map δ = 7
    "3_a_1": ("impulse", lambda a: F.laws_filter(a, "E5L5S5", "zero")),
    "3_a_2": ("impulse", lambda a: F.laws_filter(a, "E5L5S5", "zero",
                                                rotation_invariant=True, pooling="max")),
    "3_a_3": ("impulse", lambda a: F.laws_filter(a, "E5L5S5", "zero", rotation_invariant=True,
                                                pooling="max", energy_delta=7)),
    "3_b_1": ("checkerboard", lambda a: F.laws_filter(a, "E3W5R5", "mirror")),
    "3_b_2": ("checkerboard", lambda a: F.laws_filter(a, "E3W5R5", "mirror",
                                                     rotation_invariant=True, pooling="max")),
    "3_b_3": ("checkerboard", lambda a: F.laws_filter(a, "E3W5R5", "mirror",
                                                     rotation_invariant=True, pooling="max",
                                                     energy_delta=7)),
    "3_c_1": ("checkerboard", lambda a: F.laws_filter(a, "L5S5", "mirror", dims=2)),
    "3_c_2": ("checkerboard", lambda a: F.laws_filter(a, "L5S5", "mirror", dims=2,
                                                     rotation_invariant=True, pooling="max")),
    "3_c_3": ("checkerboard", lambda a: F.laws_filter(a, "L5S5", "mirror", dims=2,
                                                     rotation_invariant=True, pooling="max",
                                                     energy_delta=7)),
    # 4: Gabor modulus; 2D axial at one θ, or θ pooled (mean) over the 3 orthogonal planes
    "4_a_1": ("impulse", lambda a: F.gabor_filter(a, SP, 10.0, 4.0, 0.5, theta_deg=60.0,
                                                 boundary="zero")),
    "4_a_2": ("impulse", lambda a: F.gabor_filter(a, SP, 10.0, 4.0, 0.5, theta_step_deg=45.0,
                                                 orthogonal_planes=True, boundary="zero",
                                                 pooling="mean")),
    "4_b_1": ("sphere", lambda a: F.gabor_filter(a, SP, 20.0, 8.0, 2.5, theta_deg=225.0,
                                                boundary="mirror")),
    "4_b_2": ("sphere", lambda a: F.gabor_filter(a, SP, 20.0, 8.0, 2.5, theta_step_deg=22.5,
                                                orthogonal_planes=True, boundary="mirror",
                                                pooling="mean")),
    # 5-7: separable wavelets (undecimated); rotation invariance = mean over 24 rotations
    "5_a_1": ("impulse", lambda a: F.separable_wavelet(a, "db2", "LHL", 1, "zero")),
    "5_a_2": ("impulse", lambda a: F.separable_wavelet(a, "db2", "LHL", 1, "zero",
                                                      rotation_invariant=True)),
    "6_a_1": ("sphere", lambda a: F.separable_wavelet(a, "coif1", "HHL", 1, "periodic")),
    "6_a_2": ("sphere", lambda a: F.separable_wavelet(a, "coif1", "HHL", 1, "periodic",
                                                     rotation_invariant=True)),
    "7_a_1": ("checkerboard", lambda a: F.separable_wavelet(a, "haar", "LLL", 2, "mirror",
                                                           rotation_invariant=True)),
    "7_a_2": ("checkerboard", lambda a: F.separable_wavelet(a, "haar", "HHH", 2, "mirror",
                                                           rotation_invariant=True)),
    # 8: Simoncelli non-separable wavelet, periodic, decomposition levels 1-3
    "8_a_1": ("checkerboard", lambda a: F.simoncelli_wavelet(a, 1)),
    "8_a_2": ("checkerboard", lambda a: F.simoncelli_wavelet(a, 2)),
    "8_a_3": ("checkerboard", lambda a: F.simoncelli_wavelet(a, 3)),
    # 9: Riesz-transformed LoG (σ 3 mm, 4σ, zero padding); 10: Riesz-transformed Simoncelli
    # (level 1, nearest padding); Riesz orders along (x, y, z)
    "9_a": ("impulse", lambda a: F.riesz_transform(F.log_filter(a, SP, 3.0, 4.0, "zero"),
                                                  (1, 0, 0), "zero")),
    "9_b_1": ("sphere", lambda a: F.riesz_transform(F.log_filter(a, SP, 3.0, 4.0, "zero"),
                                                   (0, 2, 0), "zero")),
    "10_b_1": ("pattern_1", lambda a: F.riesz_transform(F.simoncelli_wavelet(a, 1, "nearest"),
                                                       (0, 2, 0), "nearest")),
}


def _load_zyx(relative: str) -> np.ndarray:
    return np.asarray(nib.load(str(path_of(relative))).dataobj, dtype=np.float64).transpose(2, 1, 0)


@pytest.mark.parametrize("test_id", sorted(PHASE1))
def test_phase1_response_map_within_one_percent_of_reference_range(test_id: str) -> None:
    require(f"{MAPS}/{test_id}-ValidCRM.nii.gz")
    phantom, fn = PHASE1[test_id]
    image = _load_zyx(f"{PHANTOMS}/{phantom}.nii.gz")
    ref = _load_zyx(f"{MAPS}/{test_id}-ValidCRM.nii.gz")
    out = fn(image)
    assert out.shape == ref.shape
    tolerance = 0.01 * (ref.max() - ref.min())
    worst = float(np.abs(out - ref).max())
    assert worst <= tolerance, f"{test_id}: max |diff| {worst:.4g} > 1 % of range {tolerance:.4g}"


def test_there_are_24_proper_right_angle_rotations_in_3d_and_4_in_plane() -> None:
    rots = F.right_angle_rotations(3)
    assert len(set(rots)) == 24
    assert len(set(F.right_angle_rotations(2))) == 4
    # each is a rotation: a shape-asymmetric array comes back unchanged through it
    a = np.arange(24.0).reshape(2, 3, 4)
    for rot in rots:
        assert np.array_equal(F._rotated(a, rot, lambda x: x), a)


def test_mirror_boundary_is_symmetric_d_c_b_a() -> None:
    # a mean over 5 at the first voxel of [1, 2, 3, 4] sees two padded voxels:
    # mirror (2, 1), nearest (1, 1), periodic (3, 4); zero pads the single row with 4 zero
    # rows too, so its 5 x 5 window holds 6 / 25
    img = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4)
    first = {b: F.mean_filter(img, 5, b, dims=2)[0, 0, 0]
             for b in ("mirror", "nearest", "periodic", "zero")}
    assert first == pytest.approx({"mirror": 9 / 5, "nearest": 8 / 5, "periodic": 13 / 5,
                                   "zero": 6 / 25})


def test_invalid_parameters_are_refused_with_the_value() -> None:
    img = np.zeros((3, 3, 3))
    with pytest.raises(ValueError, match="reflect"):
        F.mean_filter(img, 3, "reflect")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="odd"):
        F.mean_filter(img, 4)
    with pytest.raises(ValueError, match="X5"):
        F.laws_filter(img, "E5L5X5")
    with pytest.raises(ValueError, match="Riesz order"):
        F.riesz_transform(img, (0, 0, 0))


def test_response_filter_by_phase2_id_or_spec_is_the_named_filter() -> None:
    a = np.random.default_rng(0).normal(size=(9, 10, 11))
    sp = (2.0, 1.0, 1.0)
    assert np.allclose(F.response_filter("3.B")(a, sp), F.log_filter(a, sp, 1.5, 4.0, "mirror"))
    assert np.allclose(F.response_filter("6.a")(a, sp),
                       F.separable_wavelet(a, "db3", "LH", 1, "mirror", rotation_invariant=True))
    spec = "laws:kernels=E3W5R5,boundary=zero,rotation_invariant=1,pooling=max"
    assert np.allclose(F.response_filter(spec)(a, sp),
                       F.laws_filter(a, "E3W5R5", "zero", rotation_invariant=True))
    for bad in ("nope", "log:sigma_mm", "log:foo=1", "mean:support=4"):
        with pytest.raises(ValueError, match="filter"):
            F.response_filter(bad)


# ------------------------------------------------------------------------------- phase 2
#: IBSI 2 phase 2 (IBSI 2 manual, chapter 6, as data): the CT phantom, re-segmentation
#: [-1000, 400] HU; configuration A = 2D filters on the original grid, B = 3D filters after
#: tricubic-spline resampling to 1 mm (rounded), linear mask interpolation at 0.5. Filters
#: with the mirror boundary except Simoncelli (periodic). Keys: "<filter>.<config>".
Response = Callable[[np.ndarray, tuple[float, float, float]], np.ndarray]
PHASE2: dict[str, Response | None] = {
    "1.A": None, "1.B": None,
    "2.A": lambda x, s: F.mean_filter(x, 5, "mirror", dims=2),
    "2.B": lambda x, s: F.mean_filter(x, 5, "mirror"),
    "3.A": lambda x, s: F.log_filter(x, s, 1.5, 4.0, "mirror", dims=2),
    "3.B": lambda x, s: F.log_filter(x, s, 1.5, 4.0, "mirror"),
    "4.A": lambda x, s: F.laws_filter(x, "L5E5", "mirror", dims=2, rotation_invariant=True,
                                      pooling="max", energy_delta=7),
    "4.B": lambda x, s: F.laws_filter(x, "L5E5E5", "mirror", rotation_invariant=True,
                                      pooling="max", energy_delta=7),
    "5.A": lambda x, s: F.gabor_filter(x, s, 5.0, 2.0, 1.5, theta_step_deg=22.5,
                                       boundary="mirror", pooling="mean"),
    "5.B": lambda x, s: F.gabor_filter(x, s, 5.0, 2.0, 1.5, theta_step_deg=22.5,
                                       orthogonal_planes=True, boundary="mirror",
                                       pooling="mean"),
    "6.A": lambda x, s: F.separable_wavelet(x, "db3", "LH", 1, "mirror",
                                            rotation_invariant=True),
    "6.B": lambda x, s: F.separable_wavelet(x, "db3", "LLH", 1, "mirror",
                                            rotation_invariant=True),
    "7.A": lambda x, s: F.separable_wavelet(x, "db3", "HH", 2, "mirror",
                                            rotation_invariant=True),
    "7.B": lambda x, s: F.separable_wavelet(x, "db3", "HHH", 2, "mirror",
                                            rotation_invariant=True),
    "8.A": lambda x, s: F.simoncelli_wavelet(x, 1, "periodic", dims=2),
    "8.B": lambda x, s: F.simoncelli_wavelet(x, 1, "periodic"),
    "9.A": lambda x, s: F.simoncelli_wavelet(x, 2, "periodic", dims=2),
    "9.B": lambda x, s: F.simoncelli_wavelet(x, 2, "periodic"),
}


def _settings(config: str):  # type: ignore[no-untyped-def]
    from oncohybrid.radiomics.configs import RadiomicsSettings

    if config == "A":
        return RadiomicsSettings(name="ibsi2-A", by_slice=True, resegment_range=(-1000.0, 400.0),
                                 discretisation="fbs", bin_width=25.0, round_input=True,
                                 texture_dims=("2D",))
    return RadiomicsSettings(name="ibsi2-B", new_spacing_mm=(1.0, 1.0, 1.0),
                             image_interpolation="cubic", round_intensities=True,
                             resegment_range=(-1000.0, 400.0), discretisation="fbs",
                             bin_width=25.0, round_input=True)


def _stat_id(tag: str) -> str:
    from oncohybrid.radiomics.intensity import _SHARED_IDS

    name = tag.removeprefix("stat_")
    return {"energy": "N8CA", "rms": "5ZWQ"}.get(name) or _SHARED_IDS[name][0]


@pytest.fixture(scope="module")
def ct_phantom() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    base = require("ibsi-radiomics/ibsi1_ct_radiomics_phantom")
    img = nib.load(str(base / "image.nii.gz"))
    image = np.round(np.asarray(img.dataobj, dtype=np.float64).transpose(2, 1, 0))
    mask = np.asarray(nib.load(str(base / "mask.nii.gz")).dataobj).transpose(2, 1, 0) > 0.5
    spacing = tuple(float(s) for s in img.header.get_zooms()[::-1])
    return image, mask, spacing  # type: ignore[return-value]


_WHOLE: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float]]] = {}


def _whole_image(ct_phantom, config: str):  # type: ignore[no-untyped-def]
    """The whole image on the configuration's grid with its ROI masks (IBSI 2 filters the
    whole image, not a crop around the ROI): the image and the mask are interpolated
    separately (image by the configuration's spline, mask linearly, threshold 0.5)."""
    from dataclasses import replace

    from oncohybrid.radiomics.preprocess import interpolate, resegment

    if config not in _WHOLE:
        image, mask, spacing = ct_phantom
        settings = _settings(config)
        everywhere = np.ones(mask.shape, dtype=bool)  # the crop window is then the image
        img, _, sp = interpolate(image, everywhere, spacing, settings)
        if settings.new_spacing_mm is None:
            morph = mask
        else:
            frac, _, _ = interpolate(mask.astype(np.float64), everywhere, spacing,
                                     replace(settings, image_interpolation="linear",
                                             round_intensities=False))
            morph = np.round(frac, 6) >= settings.mask_threshold
        _WHOLE[config] = (img, morph, resegment(img, morph, settings), sp)
    return _WHOLE[config]


def _phase2_rows(filter_id: str) -> list[dict[str, str]]:
    import csv

    path = require("ibsi-radiomics/ibsi2_reference/ibsi2_phase2_reference_feature_values.csv")
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh, delimiter=";")
                if r["filter_id"] == filter_id and r["consensus_value"]]


def _misses(features: dict[str, float], filter_id: str) -> list[tuple[str, float, str, str]]:
    out = []
    for row in _phase2_rows(filter_id):
        value = float(f"{features[_stat_id(row['feature_tag'])]:.3g}")  # 3 significant digits
        if abs(value - float(row["consensus_value"])) > float(row["tolerance"]):
            out.append((row["feature_tag"], value, row["consensus_value"], row["tolerance"]))
    return out


@pytest.mark.parametrize("filter_id", [
    pytest.param(f, marks=pytest.mark.slow) if f == "5.B" else f for f in sorted(PHASE2)])
def test_phase2_intensity_statistics_of_the_response_map_match_the_reference(
        ct_phantom, filter_id: str) -> None:
    from oncohybrid.radiomics.intensity import intensity_statistics
    from oncohybrid.radiomics.roi import Roi

    img, morph, int_mask, sp = _whole_image(ct_phantom, filter_id[-1])
    fn = PHASE2[filter_id]
    response = img if fn is None else fn(img, sp)
    features = intensity_statistics(Roi(response, morph, int_mask, sp))
    assert not _misses(features, filter_id)


@pytest.mark.parametrize("filter_id", ["3.B", "8.A", "9.A"])
def test_phase2_through_the_pipeline_response_filter_hook(ct_phantom, filter_id) -> None:
    """``pipeline.extract(response_filter=...)`` gives the reference statistics for a local
    filter (LoG, config B) and for global ones (Simoncelli, config A: they failed while the
    pipeline filtered only its crop around the ROI)."""
    from oncohybrid.radiomics.pipeline import extract

    image, mask, spacing = ct_phantom
    res = extract(image, mask, spacing, _settings(filter_id[-1]),
                  response_filter=PHASE2[filter_id])
    assert not _misses(res.features, filter_id)
