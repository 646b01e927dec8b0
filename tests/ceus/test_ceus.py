"""CEUS perfusion (#19): linearisation, bolus models, fits on synthetic cine with speckle,
noise and motion, the DICOM cine reader and the ``oncohybrid ceus tic`` contract.

Truth values of the EFSUMB terms are computed here, by brute force on a dense grid of the
generator's curve, independently of :mod:`oncohybrid.quant.ceus`.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.dicom.ultrasound import read_us_cine
from oncohybrid.phantom.ceus import bolus_curve, synthetic_ceus_cine, write_us_multiframe
from oncohybrid.quant import ceus as q
from oncohybrid.services import ceus as svc

MODELS = ["lognormal", "gamma-variate", "ldrw"]
TRUTH = {
    "lognormal": {"auc": 0.6, "mu": 2.3, "sigma": 0.45, "t0_s": 8.0},
    "gamma-variate": {"auc": 0.6, "alpha": 2.5, "beta_s": 4.0, "t0_s": 8.0},
    "ldrw": {"auc": 0.6, "mu_s": 12.0, "lambda": 4.0, "t0_s": 8.0},
}


def dciodvfy_errors(path: Path) -> list[str]:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [ln for ln in (proc.stdout + proc.stderr).splitlines()
            if ln.startswith(("Error", "Warning"))]


def brute_force_terms(model: str, truth: dict[str, float]) -> dict[str, float]:
    """EFSUMB terms of the true curve by dense sampling (steps of 0.2 ms)."""
    t0 = truth["t0_s"]
    t = t0 + np.arange(1, 2_000_001) * 2e-4  # 400 s after t0
    f = bolus_curve(model, t, truth)
    ip = int(np.argmax(f))
    slope = np.gradient(f, t)
    i_in, i_out = int(np.argmax(slope[:ip])), ip + int(np.argmin(slope[ip:]))
    t_rise0 = t[i_in] - f[i_in] / slope[i_in]
    t_fall0 = t[i_out] - f[i_out] / slope[i_out]
    area = integrate.trapezoid(f, t)
    wi = integrate.trapezoid(f[:ip + 1], t[:ip + 1]) + f[0] * 2e-4 / 2
    rise = t[ip] - t_rise0
    return {
        "peak_enhancement": f[ip], "time_to_peak_s": t[ip] - t0, "rise_time_s": rise,
        "fall_time_s": t_fall0 - t[ip], "wash_in_rate_per_s": slope[i_in],
        "wash_out_rate_per_s": slope[i_out], "wash_in_auc": wi, "wash_out_auc": area - wi,
        "auc": area, "wash_in_perfusion_index": wi / rise,
        "mean_transit_time_s": integrate.trapezoid(f * (t - t0), t) / area,
    }


@pytest.fixture(scope="module")
def cines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, Path]]:
    out = {}
    d = tmp_path_factory.mktemp("ceus")
    for i, model in enumerate(MODELS):
        cine = synthetic_ceus_cine(model, TRUTH[model], seed=11 + i, jitter_s=0.02)
        out[model] = (cine, write_us_multiframe(cine, d / f"{model}.dcm"))
    return out


# --------------------------------------------------------------------------- method
def test_linearisation_inverts_the_stated_log_compression():
    power = np.array([1.0, 0.5, 1e-3, 1e-6])
    grey = 255 * (1 + 10 * np.log10(power) / 60)  # 60 dB over 0…255
    assert np.allclose(q.linearise(grey, 60.0), power, rtol=1e-12)
    # 3.0103 dB is twice the power, whatever the range
    assert q.linearise(np.array([255 - 255 * 3.0103 / 40]), 40.0)[0] == pytest.approx(0.5,
                                                                                       rel=1e-4)
    with pytest.raises(ValueError):
        q.linearise(grey, 0.0)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_has_the_stated_area_and_first_moment(model):
    p = {**TRUTH[model], "offset": 0.0}
    m = q.TicModel.parse(model)
    f = lambda s: q.model_curve(m, np.array([s]), p)[0]  # noqa: E731
    area = integrate.quad(f, p["t0_s"], np.inf, limit=400)[0]
    first = integrate.quad(lambda s: (s - p["t0_s"]) * f(s), p["t0_s"], np.inf, limit=400)[0]
    assert area == pytest.approx(p["auc"], rel=1e-7)
    terms = q.perfusion_terms(m, p)
    assert terms["mean_transit_time_s"] == pytest.approx(first / area, rel=1e-7)
    # the model is the generator's curve, written separately
    t = np.linspace(0, 80, 801)
    assert np.allclose(q.model_curve(m, t, p), bolus_curve(model, t, TRUTH[model]),
                       rtol=1e-10, atol=1e-15)


def test_closed_form_peaks_of_lognormal_and_gamma_variate():
    ln = {**TRUTH["lognormal"], "offset": 0.0}
    terms = q.perfusion_terms(q.TicModel.LOGNORMAL, ln)
    assert terms["time_to_peak_s"] == pytest.approx(math.exp(ln["mu"] - ln["sigma"] ** 2),
                                                    rel=1e-7)
    gv = {**TRUTH["gamma-variate"], "offset": 0.0}
    terms = q.perfusion_terms(q.TicModel.GAMMA_VARIATE, gv)
    assert terms["time_to_peak_s"] == pytest.approx(gv["alpha"] * gv["beta_s"], rel=1e-7)


@pytest.mark.parametrize("model", MODELS)
def test_efsumb_terms_of_the_true_curve_match_brute_force(model):
    terms = q.perfusion_terms(q.TicModel.parse(model), {**TRUTH[model], "offset": 0.0})
    for key, value in brute_force_terms(model, TRUTH[model]).items():
        assert terms[key] == pytest.approx(value, rel=2e-3), key


# --------------------------------------------------------------------------- acceptance
@pytest.mark.parametrize("model", MODELS)
def test_parameters_recovered_within_5_percent_on_noisy_moving_cine(cines, model):
    cine, path = cines[model]
    x, y, w, h = cine.lesion_roi
    result = svc.tic(path, f"{x},{y},{w},{h}", 60.0, model)
    fit = result.fit
    assert fit.r2 > 0.99
    for key, value in cine.truth.items():
        assert fit.parameters[key] == pytest.approx(value, rel=0.05), key
    # the baseline is the tissue echo before the bolus arrives; a nuisance parameter
    # ~600 times smaller than the peak, so checked against the peak
    before = np.asarray(result.times_s) < cine.truth["t0_s"]
    baseline = np.mean(np.asarray(result.echo_power)[before])
    assert abs(fit.parameters["offset"] - baseline) < 0.001 * fit.perfusion["peak_enhancement"]
    for key, value in brute_force_terms(model, cine.truth).items():
        assert fit.perfusion[key] == pytest.approx(value, rel=0.05), key


def test_motion_is_measured_to_a_fraction_of_a_pixel(cines):
    cine, _ = cines["lognormal"]
    shifts = q.motion_shifts(cine.frames.astype(float))
    assert np.abs(cine.shifts_rc).max() > 1.5  # the cine does move
    assert np.abs(shifts + cine.shifts_rc).max() < 0.3


# --------------------------------------------------------------------------- DICOM
def test_generator_writes_valid_ultrasound_multiframe(tmp_path, cines):
    cine, path = cines["ldrw"]
    assert dciodvfy_errors(path) == []
    rgb = write_us_multiframe(cine, tmp_path / "rgb.dcm", timing="constant",
                              photometric="RGB")
    assert dciodvfy_errors(rgb) == []


def test_reader_returns_frame_times_and_grey_levels(tmp_path, cines):
    cine, path = cines["gamma-variate"]
    read = read_us_cine(path)
    assert read.frame_time_source == "frame_time_vector"
    assert np.allclose(read.times_s, cine.times_s, atol=1e-6)  # jittered intervals
    assert np.array_equal(read.grey, cine.frames)
    rgb = read_us_cine(write_us_multiframe(cine, tmp_path / "rgb.dcm", timing="constant",
                                           photometric="RGB"))
    assert rgb.frame_time_source == "frame_time"
    assert np.allclose(rgb.times_s, np.arange(len(cine.times_s)) * np.diff(cine.times_s).mean(),
                       atol=1e-6)
    assert np.allclose(rgb.grey, cine.frames, atol=1e-9)


# --------------------------------------------------------------------------- CLI
def test_cli_tic_json_contract(cines):
    cine, path = cines["lognormal"]
    x, y, w, h = cine.lesion_roi
    res = CliRunner().invoke(app, ["ceus", "tic", str(path), "--roi", f"{x},{y},{w},{h}",
                                   "--dynamic-range-db", "60", "--model", "lognormal",
                                   "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["model"] == "lognormal"
    assert {"auc", "mu", "sigma", "t0_s", "offset", "peak_enhancement", "time_to_peak_s",
            "rise_time_s", "mean_transit_time_s", "wash_in_rate_per_s",
            "wash_out_rate_per_s", "wash_in_auc", "wash_out_auc",
            "wash_in_perfusion_index"} <= set(data["parameters"])
    assert data["parameters"]["mu"] == pytest.approx(2.3, rel=0.05)
    assert 0.99 < data["r2"] <= 1


@pytest.mark.parametrize("args, field", [
    (["--roi", "150,10,20,20"], "--roi"),
    (["--roi", "-1,10,20,20"], "--roi"),
    (["--roi", "10,10,20"], "--roi"),
    (["--roi", "10,10,20,20", "--model", "biexponential"], "--model"),
    (["--roi", "10,10,20,20", "--dynamic-range-db", "0"], "--dynamic-range-db"),
])
def test_cli_invalid_input_exits_2_naming_the_field(tmp_path, args, field):
    cine = synthetic_ceus_cine(n_frames=12, rows=40, columns=60, lesion_radius_px=12)
    path = write_us_multiframe(cine, tmp_path / "c.dcm")
    res = CliRunner().invoke(app, ["ceus", "tic", str(path), *args, "--json"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert field in res.stderr


def test_cli_cine_without_frame_timing_exits_2(tmp_path):
    cine = synthetic_ceus_cine(n_frames=12, rows=40, columns=60, lesion_radius_px=12)
    path = write_us_multiframe(cine, tmp_path / "c.dcm", timing="none")
    res = CliRunner().invoke(app, ["ceus", "tic", str(path), "--roi", "10,10,20,20",
                                   "--json"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert "Frame Time" in res.stderr


def test_reader_handles_ybr_and_monochrome1(tmp_path):
    import pydicom
    from pydicom.pixels import convert_color_space

    cine = synthetic_ceus_cine(n_frames=6, rows=32, columns=48, lesion_radius_px=10)
    path = write_us_multiframe(cine, tmp_path / "rgb.dcm", photometric="RGB")
    ds = pydicom.dcmread(path)
    ybr = convert_color_space(ds.pixel_array, "RGB", "YBR_FULL")
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.PixelData = np.ascontiguousarray(ybr).tobytes()
    ds.save_as(tmp_path / "ybr.dcm")
    assert np.abs(read_us_cine(tmp_path / "ybr.dcm").grey - cine.frames).max() <= 1.0

    ds = pydicom.dcmread(write_us_multiframe(cine, tmp_path / "m2.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.PixelData = (255 - cine.frames).astype(np.uint8).tobytes()
    ds.save_as(tmp_path / "m1.dcm")
    assert np.array_equal(read_us_cine(tmp_path / "m1.dcm").grey, cine.frames)
