"""``oncohybrid qc iec``: recovery coefficients of synthetic IEC phantoms at two
resolutions against the phantom's own analytic model, computed here independently.

The model (phantom/iec.py docstring): background B in the body, A in the spheres, cold lung
insert, convolved with the PSF (1 + a)·G(σ1) − a·G(σ2) and sampled at the voxel centres.
A uniform ball of radius R convolved with an isotropic Gaussian σ, at distance r from its
centre, is 1/2[erf((R−r)/σ√2) + erf((R+r)/σ√2)] − σ/(r√2π)[exp(−(R−r)²/2σ²) −
exp(−(R+r)²/2σ²)] (the 3-D radial convolution integral). The test re-implements it,
reads the voxel grid from the DICOM headers with pydicom, computes RCmax, RCmean (A50)
and RCpeak (1 ml sphere by 7³ sub-voxel sampling) on that sampled model, and compares.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from iec_cases import EARL1_LIKE, EARL2_LIKE
from scipy import ndimage
from scipy.special import erf
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()
DIAMETERS = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)
F18_S = 109.77 * 60


def _gauss_ball(r: np.ndarray, big_r: float, sigma: float) -> np.ndarray:
    r = np.maximum(np.asarray(r, float), 1e-9)
    k = sigma * math.sqrt(2)
    a = 0.5 * (erf((big_r - r) / k) + erf((big_r + r) / k))
    b = sigma / (r * math.sqrt(2 * math.pi)) * (np.exp(-(big_r - r) ** 2 / (2 * sigma**2))
                                               - np.exp(-(big_r + r) ** 2 / (2 * sigma**2)))
    return a - b


def _psf_ball(r: np.ndarray, big_r: float, psf) -> np.ndarray:
    fw = 2 * math.sqrt(2 * math.log(2))
    out = (1 + psf.overshoot) * _gauss_ball(r, big_r, psf.fwhm_mm / fw)
    if psf.overshoot:
        out -= psf.overshoot * _gauss_ball(r, big_r, psf.wide_fwhm_mm / fw)
    return out


def _grid(directory: Path):
    """Voxel-centre coordinates (z, y, x axes) from the DICOM headers."""
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in directory.glob("*.dcm")]
    zs = np.array(sorted(float(d.ImagePositionPatient[2]) for d in dss))
    d0 = dss[0]
    x0, y0 = float(d0.ImagePositionPatient[0]), float(d0.ImagePositionPatient[1])
    dy, dx = (float(v) for v in d0.PixelSpacing)
    ys = y0 + dy * np.arange(int(d0.Rows))
    xs = x0 + dx * np.arange(int(d0.Columns))
    return zs, ys, xs


def _reference_rcs(ph, conf: dict) -> dict[float, dict[str, float]]:
    zs, ys, xs = _grid(ph.directory)
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    a, b = ph.sphere_bq_ml, ph.background_bq_ml
    spacing = (zs[1] - zs[0], ys[1] - ys[0], xs[1] - xs[0])
    cx, cy, cz = ph.ring_centre_lps_mm
    out = {}
    sign = -1.0 if conf["clockwise"] else 1.0
    for i, d in enumerate(DIAMETERS):
        ang = math.radians(conf["ring_angle_deg"] + sign * 60 * i)
        c = (cx + 57.2 * math.cos(ang), cy + 57.2 * math.sin(ang), cz)
        assert np.allclose(c, ph.sphere_centres_lps_mm[d], atol=1e-9)
        rr = d / 2
        dist = np.sqrt((xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2)
        local = dist <= rr + 25
        model = np.full(dist.shape, b)
        model[local] = b + (a - b) * _psf_ball(dist[local], rr, ph.psf)
        inside = dist <= rr
        vmax = model[inside].max()
        thr = b + 0.5 * (vmax - b)
        lab, _ = ndimage.label((model >= thr) & (dist <= rr + 10))
        at_max = tuple(np.argwhere(inside & (model == vmax))[0])
        rc_mean = model[lab == lab[at_max]].mean() / a
        # RCpeak: 1 ml sphere (r = 6.2035 mm), weights by 7x7x7 sub-voxel sampling
        rp = (3000 / (4 * math.pi)) ** (1 / 3)
        h = [int(math.ceil(rp / s + 0.5)) for s in spacing]
        sub = (np.arange(7) + 0.5) / 7 - 0.5
        kern = np.zeros([2 * x + 1 for x in h])
        for idx in np.ndindex(*kern.shape):
            pts = [((idx[k] - h[k]) + sub) * spacing[k] for k in range(3)]
            gz, gy, gx = np.meshgrid(*pts, indexing="ij")
            kern[idx] = np.mean(gz**2 + gy**2 + gx**2 <= rp * rp)
        kern /= kern.sum()
        cands = np.argwhere(inside)
        best = -np.inf
        for k, j, m in cands:
            sl = model[k - h[0]:k + h[0] + 1, j - h[1]:j + h[1] + 1, m - h[2]:m + h[2] + 1]
            best = max(best, float((sl * kern).sum()))
        out[d] = {"rc_max": vmax / a, "rc_mean": rc_mean, "rc_peak": best / a,
                  "centre": c}
    return out


def _run_iec(ph, *extra: str):
    return runner.invoke(app, ["qc", "iec", str(ph.directory), "--sphere-activity-bq-ml",
                               str(ph.sphere_bq_ml), "--background-activity-bq-ml",
                               str(ph.background_bq_ml), *extra, "--json"])


@pytest.mark.parametrize("which", ["earl1", "earl2"])
def test_recovery_coefficients_match_the_analytic_phantom_within_2_percent(
        which, earl1_phantom, earl2_phantom):
    ph, conf = (earl1_phantom, EARL1_LIKE) if which == "earl1" else (earl2_phantom, EARL2_LIKE)
    res = _run_iec(ph)
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert {"spheres", "earl1", "earl2", "background_cv"} <= set(doc)
    ref = _reference_rcs(ph, conf)
    assert [s["diameter_mm"] for s in doc["spheres"]] == list(DIAMETERS)
    for s in doc["spheres"]:
        r = ref[s["diameter_mm"]]
        # found where the phantom put it (within a third of a voxel)
        assert np.linalg.norm(np.subtract(s["centre_lps_mm"], r["centre"])) < 0.35 * \
            conf["voxel_mm"][0]
        for key in ("rc_max", "rc_mean", "rc_peak"):
            assert s[key] == pytest.approx(r[key], rel=0.02), (s["diameter_mm"], key)
    # noise-free: no background variability, measured background = true background
    assert doc["background_cv"] < 0.005
    assert doc["measured_background_bq_ml"] == pytest.approx(ph.background_bq_ml, rel=0.005)
    # the lung insert is cold: a few % residual from the PSF tails only
    assert 0 <= doc["lung_residual_pct"] < 5


def test_one_phantom_passes_earl1_only_the_other_earl2_only(earl1_phantom, earl2_phantom):
    d1 = json.loads(_run_iec(earl1_phantom).stdout)
    d2 = json.loads(_run_iec(earl2_phantom).stdout)
    assert (d1["earl1"], d1["earl2"]) == (True, False)
    assert (d2["earl1"], d2["earl2"]) == (False, True)
    # the EARL2-like reconstruction overshoots: large-sphere RCmax above 1
    assert next(s for s in d2["spheres"] if s["diameter_mm"] == 37.0)["rc_max"] > 1.05


def test_activities_given_at_a_later_time_are_decay_corrected_to_the_reference(earl1_phantom):
    ph = earl1_phantom
    base = json.loads(_run_iec(ph).stdout)
    later = ph.reference_time + dt.timedelta(seconds=F18_S)  # one half-life later: half
    res = runner.invoke(app, ["qc", "iec", str(ph.directory), "--sphere-activity-bq-ml",
                              str(ph.sphere_bq_ml / 2), "--background-activity-bq-ml",
                              str(ph.background_bq_ml / 2), "--at", later.isoformat(),
                              "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    for s0, s1 in zip(base["spheres"], doc["spheres"], strict=True):
        assert s1["rc_max"] == pytest.approx(s0["rc_max"], rel=1e-9)
        assert s1["rc_mean"] == pytest.approx(s0["rc_mean"], rel=1e-9)
    assert doc["decay_correction_s"] == pytest.approx(F18_S)


def test_wrong_activities_move_the_rcs_proportionally(earl1_phantom):
    ph = earl1_phantom
    base = json.loads(_run_iec(ph).stdout)
    res = runner.invoke(app, ["qc", "iec", str(ph.directory), "--sphere-activity-bq-ml",
                              str(ph.sphere_bq_ml * 1.25), "--background-activity-bq-ml",
                              str(ph.background_bq_ml), "--json"])
    doc = json.loads(res.stdout)
    for s0, s1 in zip(base["spheres"], doc["spheres"], strict=True):
        assert s1["rc_max"] == pytest.approx(s0["rc_max"] / 1.25, rel=1e-9)


def test_recovery_curve_plot_is_written(earl2_phantom, tmp_path):
    png = tmp_path / "rc.png"
    res = _run_iec(earl2_phantom, "--plot", str(png))
    assert res.exit_code == 0, res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


# --- invalid input: exit 2, reason on stderr, nothing on stdout --------------------------


def _expect_2(args: list[str], reason: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert res.stdout == ""
    assert reason in res.stderr


def _uniform_pet(tmp_path: Path) -> Path:
    """A PET series of a warm uniform cylinder: no spheres to find."""
    from oncohybrid.phantom.iec import write_iec_phantom

    # the same writer with the spheres at background level: nothing hot to find
    ph = write_iec_phantom(tmp_path / "uniform", sphere_bq_ml=2000.0, background_bq_ml=2000.0,
                           voxel_mm=(4.0, 4.0, 4.0), noise_cv=0.05, seed=3)
    return ph.directory


def test_no_spheres_found_exits_2(tmp_path):
    d = _uniform_pet(tmp_path)
    _expect_2(["qc", "iec", str(d), "--sphere-activity-bq-ml", "20000",
               "--background-activity-bq-ml", "2000", "--json"], "no spheres found")


@pytest.mark.parametrize("args,reason", [
    (["--sphere-activity-bq-ml", "-5", "--background-activity-bq-ml", "2000"],
     "must be a positive number"),
    (["--sphere-activity-bq-ml", "2000", "--background-activity-bq-ml", "20000"],
     "must exceed the background"),
    (["--sphere-activity-bq-ml", "20000", "--background-activity-bq-ml", "2000", "--at",
      "yesterday"], "not an ISO 8601"),
    (["--sphere-activity-bq-ml", "abc", "--background-activity-bq-ml", "2000"], "Error"),
])
def test_invalid_activities_exit_2(earl1_phantom, args, reason):
    _expect_2(["qc", "iec", str(earl1_phantom.directory), *args, "--json"], reason)


def test_missing_folder_and_non_pet_series_exit_2(tmp_path):
    _expect_2(["qc", "iec", str(tmp_path / "nothing"), "--sphere-activity-bq-ml", "1",
               "--background-activity-bq-ml", "0.1", "--json"], "no such directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not dicom")
    _expect_2(["qc", "iec", str(empty), "--sphere-activity-bq-ml", "1",
               "--background-activity-bq-ml", "0.1", "--json"], "no DICOM files")
    from oncohybrid.phantom import generate_cohort

    generate_cohort(tmp_path / "cohort", patients=1, timepoints=1, vendor="siemens", seed=1,
                    size="small", noise_free=True)
    ct = next((tmp_path / "cohort").rglob("CT"))
    _expect_2(["qc", "iec", str(ct), "--sphere-activity-bq-ml", "1",
               "--background-activity-bq-ml", "0.1", "--json"], "not PT")
