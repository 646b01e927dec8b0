"""DWI: b-values from every vendor encoding, ADC within 2 % and IVIM within stated
tolerances at SNR 50 on synthetic series with known truth; fits checked against
scipy.optimize.curve_fit and scipy.stats, never against our own output."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
from scipy import stats
from scipy.optimize import curve_fit

from oncohybrid.dicom.diffusion import (
    BValueSource,
    DiffusionError,
    DiffusionKind,
    plane_diffusion,
    read_dwi,
)
from oncohybrid.phantom.dwi import csa2_header, write_dwi_series
from oncohybrid.quant.adc import (
    adc_change_pct,
    adc_histogram,
    computed_dwi,
    fit_adc,
    fit_ivim,
    ice_water_check,
)

QIBA_B = (0, 50, 400, 800)
IVIM_B = (0, 10, 20, 50, 100, 200, 400, 600, 800)
SOURCE = {"standard": "standard", "siemens": "siemens", "siemens-csa": "siemens",
          "ge": "ge", "philips": "philips"}


@pytest.mark.parametrize("encoding", ["standard", "siemens", "siemens-csa", "ge", "philips"])
def test_adc_within_2_percent_for_each_vendor_encoding_at_snr_50(tmp_path, encoding):
    truth = write_dwi_series(tmp_path, encoding=encoding, b_values=QIBA_B, snr=50, seed=3)
    dwi = read_dwi(tmp_path)
    assert dwi.b_values == [0.0, 50.0, 400.0, 800.0]
    assert dwi.b_value_source.value == SOURCE[encoding]
    assert {v.kind for v in dwi.volumes} == {DiffusionKind.NONE, DiffusionKind.TRACE}
    b, signals, ref = dwi.signals([50, 400, 800])
    np.testing.assert_allclose(ref.affine, truth.affine)
    fit = fit_adc(signals, b, refine=True)
    for tissue in truth.tissues[:3]:  # mono-exponential tissues
        mean = float(np.mean(fit.adc_mm2_s[truth.mask(tissue.name)]))
        assert mean == pytest.approx(tissue.adc_mm2_s, rel=0.02), tissue.name


@pytest.mark.parametrize("directions", [0, 3])
def test_enhanced_multiframe_reads_b_values_from_the_mr_diffusion_macro(tmp_path, directions):
    truth = write_dwi_series(tmp_path, layout="enhanced", b_values=QIBA_B,
                             directions=directions, shape=(3, 48, 48), seed=4)
    dwi = read_dwi(tmp_path)
    assert dwi.b_values == [0.0, 50.0, 400.0, 800.0]
    kinds = {v.kind for v in dwi.volumes if v.b_value > 0}
    assert kinds == {DiffusionKind.DIRECTIONAL if directions else DiffusionKind.TRACE}
    assert all(v.attribute.startswith("(0018,9087)") for v in dwi.volumes)
    if directions:
        assert len(dwi.volumes) == 1 + 3 * 3
        assert {v.direction for v in dwi.volumes if v.b_value == 800} == {
            (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}
    b, signals, _ = dwi.signals([50, 400, 800])
    fit = fit_adc(signals, b)
    liver = truth.tissues[1]
    assert float(np.mean(fit.adc_mm2_s[truth.mask("liver")])) == pytest.approx(
        liver.adc_mm2_s, rel=0.02)


def test_trace_of_directional_images_is_their_geometric_mean(tmp_path):
    write_dwi_series(tmp_path, directions=3, b_values=(0, 800), shape=(2, 24, 24), seed=5)
    dwi = read_dwi(tmp_path)
    directional = [v.volume.array.astype(np.float64) for v in dwi.volumes if v.b_value == 800]
    expected = np.cbrt(np.clip(directional[0], 1e-12, None) * np.clip(directional[1], 1e-12,
                       None) * np.clip(directional[2], 1e-12, None))
    np.testing.assert_allclose(dwi.trace(800).array, expected, rtol=1e-5)


def test_the_standard_attribute_wins_over_a_vendor_private_one(tmp_path):
    write_dwi_series(tmp_path, encoding="standard", b_values=(0, 800), shape=(2, 16, 16))
    for path in sorted(tmp_path.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
        ds.add_new((0x0019, 0x100C), "IS", "1234")
        ds.Manufacturer = "SIEMENS"
        ds.save_as(path)
    dwi = read_dwi(tmp_path)
    assert dwi.b_values == [0.0, 800.0]
    assert dwi.b_value_source is BValueSource.STANDARD


def test_ge_first_value_loses_the_10_to_the_9_offset():
    ds = pydicom.Dataset()
    ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
    ds.add_new((0x0043, 0x1039), "IS", ["1000000600", "8", "0", "0"])
    assert plane_diffusion(ds).b_value == 600.0
    ds[0x00431039].value = ["600", "8", "0", "0"]
    assert plane_diffusion(ds).b_value == 600.0
    assert plane_diffusion(ds).source is BValueSource.GE


def test_csa_header_written_here_reads_with_nibabel():
    nibabel_csa = pytest.importorskip("nibabel.nicom.csareader")
    raw = csa2_header({"B_value": ("IS", ["800"]),
                       "DiffusionGradientDirection": ("FD", ["0.6", "0.8", "0.0"])})
    csa = nibabel_csa.read(raw)
    assert nibabel_csa.get_b_value(csa) == 800
    np.testing.assert_allclose(nibabel_csa.get_g_vector(csa), [0.6, 0.8, 0.0])


def test_a_series_without_b_values_or_with_one_is_refused_naming_the_b_value(tmp_path):
    write_dwi_series(tmp_path, encoding="philips", b_values=(0, 800), shape=(2, 16, 16))
    for path in tmp_path.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds[0x20011003]
        ds.save_as(path)
    with pytest.raises(DiffusionError, match="no b-value"):
        read_dwi(tmp_path)


def test_wlls_matches_curve_fit_on_noiseless_and_noisy_voxels():
    rng = np.random.default_rng(1)
    b = np.array([0.0, 100.0, 400.0, 800.0, 1000.0])
    true_d = rng.uniform(0.5e-3, 2.5e-3, 50)
    clean = 1000 * np.exp(-np.outer(b, true_d))
    noisy = np.hypot(clean + 20 * rng.standard_normal(clean.shape),
                     20 * rng.standard_normal(clean.shape))
    np.testing.assert_allclose(fit_adc(clean, b).adc_mm2_s, true_d, rtol=1e-10)
    refined = fit_adc(noisy, b, refine=True, iterations=30)

    def model(bv: np.ndarray, s0: float, d: float) -> np.ndarray:
        return s0 * np.exp(-bv * d)

    for i in range(0, 50, 7):
        (s0, d), _ = curve_fit(model, b, noisy[:, i], p0=(1000.0, 1e-3))
        assert refined.adc_mm2_s[i] == pytest.approx(d, rel=1e-5)
        assert refined.s0[i] == pytest.approx(s0, rel=1e-5)


def test_noise_floor_and_negative_values_are_handled_as_stated():
    b = np.array([0.0, 500.0, 1000.0])
    s = np.array([[1000.0, 1000.0, 0.0], [600.0, 1100.0, 0.0], [360.0, 1200.0, 0.0]])
    fit = fit_adc(s, b)
    # column 0: normal decay; column 1: rising signal -> clipped to 0; column 2: no signal.
    assert fit.adc_mm2_s[0] == pytest.approx(math.log(1000 / 360) / 1000, rel=0.02)
    assert fit.adc_mm2_s[1] == 0.0 and fit.n_negative == 1
    assert math.isnan(fit.adc_mm2_s[2]) and fit.n_used[2] == 0
    # A zero at the highest b is left out: the other two give the two-point ADC exactly.
    s2 = np.array([[1000.0], [600.0], [0.0]])
    assert fit_adc(s2, b).adc_mm2_s[0] == pytest.approx(math.log(1000 / 600) / 500)
    assert fit_adc(s, b, clip_negative=False).adc_mm2_s[1] < 0


def test_ivim_segmented_fit_within_stated_tolerances_at_snr_50(tmp_path):
    truth = write_dwi_series(tmp_path, b_values=IVIM_B, snr=50, seed=7, shape=(4, 48, 48))
    b, signals, _ = read_dwi(tmp_path).signals()
    fit = fit_ivim(signals, b)
    m = truth.mask("ivim")
    tissue = truth.tissues[3]
    assert float(np.median(fit.d_mm2_s[m])) == pytest.approx(tissue.adc_mm2_s, rel=0.03)
    assert float(np.median(fit.f[m])) == pytest.approx(tissue.f, abs=0.02)
    d_star = fit.d_star_mm2_s[m]  # undefined (NaN) where the fitted f is 0
    assert np.isnan(d_star).mean() < 0.05
    assert float(np.nanmedian(d_star)) == pytest.approx(tissue.d_star_mm2_s, rel=0.25)


def test_ivim_d_star_matches_curve_fit_with_s0_f_d_fixed():
    b = np.array(IVIM_B, dtype=float)
    rng = np.random.default_rng(2)
    clean = 1000 * (0.85 * np.exp(-b * 1e-3) + 0.15 * np.exp(-b * 0.02))
    s = clean[:, None] + 5 * rng.standard_normal((b.size, 20))
    fit = fit_ivim(s, b, iterations=40)
    for i in range(0, 20, 5):
        s0, f, d = fit.s0[i], fit.f[i], fit.d_mm2_s[i]

        def model(bv: np.ndarray, ds: float, s0=s0, f=f, d=d) -> np.ndarray:
            return s0 * ((1 - f) * np.exp(-bv * d) + f * np.exp(-bv * ds))

        (ds,), _ = curve_fit(model, b, s[:, i], p0=(0.02,))
        assert fit.d_star_mm2_s[i] == pytest.approx(ds, rel=1e-4)


def test_computed_high_b_image_follows_the_mono_exponential():
    s0, adc = np.array([1000.0, 500.0]), np.array([1e-3, 2e-3])
    np.testing.assert_allclose(computed_dwi(s0, adc, 1500), s0 * np.exp(-1500 * adc))


def test_roi_histogram_statistics_match_numpy_and_scipy():
    rng = np.random.default_rng(0)
    adc = rng.gamma(20, 5e-5, size=(6, 10, 10))
    mask = np.zeros(adc.shape, bool)
    mask[1:5, 2:8, 2:8] = True
    h = adc_histogram(adc, mask, bin_width_um2_s=25.0)
    v = adc[mask] * 1e6
    assert h.n_voxels == v.size
    assert h.mean_um2_s == pytest.approx(v.mean())
    assert h.median_um2_s == pytest.approx(np.median(v))
    assert h.percentiles_um2_s[10] == pytest.approx(np.percentile(v, 10))
    assert h.skewness == pytest.approx(stats.skew(v))
    assert h.kurtosis == pytest.approx(stats.kurtosis(v))
    counts = np.histogram(v, bins=np.arange(v.min(), v.max() + 25.0, 25.0))[0]
    assert h.entropy_bits == pytest.approx(stats.entropy(counts[counts > 0], base=2))
    assert adc_change_pct(1000.0, 1300.0) == pytest.approx(30.0)


def test_qiba_ice_water_phantom_bias_and_repeatability(tmp_path):
    """Ice-water phantom (1.1e-3 mm²/s at 0 °C): four repeated acquisitions at SNR 50, ROI
    means from b = 0/500/1000; QIBA bias ≤ 3.6 % and wCV ≤ 0.5 %."""
    from oncohybrid.phantom.dwi import DwiTissue

    vial = DwiTissue("ice water", 1.1e-3, (0.0, 0.0), 30.0)
    means = []
    for repeat in range(4):
        truth = write_dwi_series(tmp_path / f"r{repeat}", tissues=(vial,),
                                 b_values=(0, 500, 1000), snr=50, seed=100 + repeat,
                                 shape=(3, 40, 40), pixel_mm=2.0)
        b, s, _ = read_dwi(truth.directory).signals()
        means.append(float(np.mean(fit_adc(s, b).adc_mm2_s[truth.mask("ice water")])))
    check = ice_water_check(means)
    assert abs(check.bias_pct) <= 3.6 and check.wcv_pct <= 0.5 and check.passes
    # the check itself against its definition
    assert check.bias_pct == pytest.approx(100 * (np.mean(means) / 1.1e-3 - 1))
    assert check.wcv_pct == pytest.approx(100 * np.std(means, ddof=1) / np.mean(means))
    assert not ice_water_check([1.2e-3, 1.2e-3]).passes


def test_docstring_examples_of_the_fits_run():
    import doctest

    import oncohybrid.quant.adc as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
