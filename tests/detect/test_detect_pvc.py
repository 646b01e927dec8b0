"""Recovery-coefficient PVC (detect/pvc.py) against numbers computed another way.

The centre of a uniform ball of radius R blurred by an isotropic Gaussian (σ) keeps the
probability that a 3-D normal vector lies within R: the chi distribution with 3 degrees of
freedom, CDF(R/σ). The 1 cm³ peak RC is checked against a voxelised ball blurred with
``scipy.ndimage.gaussian_filter`` and averaged over a 1 cm³ ball (Hoetjes et al., EJNMMI
2010, RC-based correction).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage, stats

from oncohybrid.detect.pvc import partial_volume_correction, recovery_coefficients


def _sigma(fwhm_mm: float) -> float:
    return fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@pytest.mark.parametrize("radius_mm", [2.0, 4.0, 6.0, 10.0, 20.0])
def test_rc_of_the_maximum_is_the_chi3_cdf_of_radius_over_sigma(radius_mm):
    rc_max, _ = recovery_coefficients(radius_mm, 6.0)
    assert rc_max == pytest.approx(stats.chi(3).cdf(radius_mm / _sigma(6.0)), abs=1e-9)


def test_rc_of_the_peak_matches_a_voxelised_blurred_ball():
    step, radius, fwhm = 0.4, 7.0, 6.0
    n = int(2 * 24 / step)
    g = (np.indices((n, n, n)) - (n - 1) / 2.0) * step
    r2 = (g**2).sum(0)
    blurred = ndimage.gaussian_filter((r2 <= radius**2).astype(np.float64), _sigma(fwhm) / step)
    peak_ball = r2 <= 6.2035**2  # 1 cm³
    _, rc_peak = recovery_coefficients(radius, fwhm)
    assert rc_peak == pytest.approx(float(blurred[peak_ball].mean()), abs=0.01)


def test_large_lesions_are_not_corrected_and_small_ones_are_raised_above_background():
    assert recovery_coefficients(40.0, 6.0) == pytest.approx((1.0, 1.0), abs=1e-6)
    rc_max, rc_peak = recovery_coefficients(3.0, 6.0)
    assert 0.25 < rc_max < 0.6 and rc_peak < rc_max


def test_correction_is_background_plus_excess_over_rc_and_keeps_the_raw_values():
    pet = SimpleNamespace(array=np.full((20, 20, 20), 1.5, np.float32))
    mask = np.zeros((20, 20, 20), bool)
    mask[8:12, 8:12, 8:12] = True
    pet.array[mask] = 6.0
    metrics = SimpleNamespace(suv_max=6.0, suv_peak=SimpleNamespace(value=5.0))
    radius = 5.0
    vol_ml = 4.0 / 3.0 * math.pi * radius**3 / 1000.0
    out = partial_volume_correction(metrics, vol_ml, pet, mask, sul_per_suv=0.8, fwhm_mm=6.0)
    rc_max, rc_peak = recovery_coefficients(radius, 6.0)
    assert out["parameters"]["background_suv"] == 1.5
    assert out["suv_max"] == pytest.approx(1.5 + 4.5 / rc_max)
    assert out["suv_peak"] == pytest.approx(1.5 + 3.5 / rc_peak)
    assert out["sul_peak"] == pytest.approx(out["suv_peak"] * 0.8)
    assert out["parameters"]["raw_suv_max"] == 6.0
    assert out["parameters"]["radius_mm"] == pytest.approx(radius, abs=0.01)


def test_tiny_lesions_are_corrected_at_most_fourfold():
    pet = SimpleNamespace(array=np.zeros((9, 9, 9), np.float32))
    mask = np.zeros((9, 9, 9), bool)
    mask[4, 4, 4] = True
    metrics = SimpleNamespace(suv_max=2.0, suv_peak=SimpleNamespace(value=float("nan")))
    out = partial_volume_correction(metrics, 0.001, pet, mask, sul_per_suv=None, fwhm_mm=8.0)
    assert out["suv_max"] == pytest.approx(8.0)  # RC floored at 0.25
    assert out["suv_peak"] is None and out["sul_peak"] is None
