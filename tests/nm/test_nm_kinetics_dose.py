"""Pure nuclear-medicine computation: fits and TIA against closed-form integrals, the
Hänscheid approximation, local dose, BED G-factor, the voxel S-value kernel, DVH."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oncohybrid.errors import InputError
from oncohybrid.nm.dose import (
    DECAYS_PER_MBQ_H,
    bed_gy,
    density_g_ml,
    dvh,
    g_factor,
    local_dose_gy,
    voxel_s_dose_map,
    voxel_s_kernel,
)
from oncohybrid.nm.isotopes import I131, LU177, TC99M, find_isotope
from oncohybrid.nm.kinetics import fit_tac, hanscheid_tia

T = np.array([4.0, 24.0, 96.0, 168.0])
LN2 = math.log(2.0)


def test_isotope_table_half_lives_and_lookup():
    # NNDC/ICRP 107 values as cited in the module
    assert LU177.half_life_h == pytest.approx(6.647 * 24)
    assert I131.half_life_h == pytest.approx(8.0252 * 24)
    assert TC99M.half_life_h == pytest.approx(6.0067)
    assert LU177.electron_mev == pytest.approx(0.1479)
    assert find_isotope("^177^Lutetium") is LU177
    assert find_isotope(None, half_life_s=8.0252 * 86400) is I131
    with pytest.raises(InputError, match="not one of"):
        find_isotope("F-18")


def test_mono_exponential_fit_recovers_closed_form_tia():
    a0, teff = 50.0, 60.0
    y = a0 * np.exp(-LN2 / teff * T)
    f = fit_tac(T, y, physical_half_life_h=LU177.half_life_h, model="mono-exp")
    assert f.tia_mbq_h == pytest.approx(a0 * teff / LN2, rel=1e-6)
    assert f.parameters["effective_half_life_h"] == pytest.approx(teff, rel=1e-6)
    assert f.r2 == pytest.approx(1.0)


def test_uptake_washout_is_chosen_and_integrated_exactly():
    a0, tw, tu = 30.0, 40.0, 1.5
    y = a0 * (np.exp(-LN2 / tw * T) - np.exp(-LN2 / tu * T))
    f = fit_tac(T, y, physical_half_life_h=LU177.half_life_h)  # auto
    assert f.model == "bi-exp"
    assert "AIC" in f.choice
    assert f.tia_mbq_h == pytest.approx(a0 * (tw - tu) / LN2, rel=1e-4)


@pytest.mark.parametrize(("a1", "t1", "a2", "t2"), [(50, 2, 50, 40), (30, 5, 70, 60),
                                                   (80, 10, 20, 80)])
def test_two_phase_clearance_is_taken_when_the_simpler_models_miss_a_point(a1, t1, a2, t2):
    y = a1 * np.exp(-LN2 / t1 * T) + a2 * np.exp(-LN2 / t2 * T)
    f = fit_tac(T, y, physical_half_life_h=LU177.half_life_h)
    assert f.model == "bi-exp-clearance"
    assert "misses a point" in f.choice
    assert f.tia_mbq_h == pytest.approx((a1 * t1 + a2 * t2) / LN2, rel=1e-4)
    assert f.activity_at([30.0])[0] == pytest.approx(
        a1 * math.exp(-LN2 / t1 * 30) + a2 * math.exp(-LN2 / t2 * 30), rel=1e-4)
    with pytest.raises(InputError, match="at least 4 time points"):
        fit_tac(T[:3], y[:3], physical_half_life_h=LU177.half_life_h, model="bi-exp-clearance")


def test_clearance_cannot_be_slower_than_physical_decay():
    # activity that rises over time (e.g. a mis-registered VOI) cannot give λ < λ_phys
    y = np.array([10.0, 10.5, 11.0, 11.2])
    f = fit_tac(T, y, physical_half_life_h=LU177.half_life_h, model="mono-exp")
    assert f.parameters["lambda_per_h"] >= LU177.decay_constant_per_h * (1 - 1e-9)


def test_trapezoid_with_physical_tail():
    y = np.array([10.0, 8.0, 4.0, 2.0])
    f = fit_tac(T, y, physical_half_life_h=LU177.half_life_h, model="trapezoid")
    area = 0.5 * 4 * 10 + (10 + 8) / 2 * 20 + (8 + 4) / 2 * 72 + (4 + 2) / 2 * 72
    assert f.tia_mbq_h == pytest.approx(area + 2.0 / (LN2 / LU177.half_life_h))


def test_hanscheid_is_exact_when_effective_half_life_equals_the_scan_time():
    # Hänscheid 2018: Ã ≈ A(t)·2t/ln2, exact for a mono-exponential with T_eff = t
    a0, teff = 20.0, 96.0
    y = a0 * np.exp(-LN2 / teff * T)
    f = fit_tac(T, y, physical_half_life_h=LU177.half_life_h, model="hanscheid")
    assert f.parameters["time_h"] == 96.0
    assert f.tia_mbq_h == pytest.approx(a0 * teff / LN2, rel=1e-12)
    assert hanscheid_tia(96.0, 10.0) == pytest.approx(10.0 * 192.0 / LN2)


@pytest.mark.parametrize(("n", "model"), [(1, "auto"), (1, "mono-exp"), (1, "trapezoid"),
                                          (2, "bi-exp")])
def test_too_few_time_points_for_a_fit(n, model):
    with pytest.raises(InputError, match=r"at least \d time points, got "):
        fit_tac(T[:n], np.ones(n), physical_half_life_h=100.0, model=model)


def test_local_dose_is_mird_arithmetic():
    tia = 1000.0  # MBq·h
    decays = tia * 1e6 * 3600
    joules = decays * 0.1479 * 1.602176634e-13
    assert local_dose_gy(tia, 150.0, LU177) == pytest.approx(joules / 0.150, rel=1e-12)


def test_density_calibration_points():
    assert density_g_ml([-1000, 0, 100, 1100]).tolist() == pytest.approx([0, 1.0, 1.1, 1.68])


def test_g_factor_matches_closed_form_for_mono_exponential_and_bed():
    lam = LN2 / 50.0
    y = 10 * np.exp(-lam * T)
    f = fit_tac(T, y, physical_half_life_h=LU177.half_life_h, model="mono-exp")
    mu = LN2 / 2.8
    g = g_factor(f, 2.8)
    assert g == pytest.approx(lam / (lam + mu), rel=2e-3)
    # Dale 1985: BED = D (1 + G D / (α/β))
    assert bed_gy(20.0, g, 2.6) == pytest.approx(20.0 * (1 + g * 20.0 / 2.6))


def test_voxel_kernel_conserves_energy_in_a_uniform_medium():
    k = voxel_s_kernel(LU177, (4.8, 4.8, 4.8), radius_mm=40.0, n_samples=400_000)
    frac = k.fraction
    # electrons (81 % of the energy) are absorbed within the kernel; photons mostly escape
    e_frac = LU177.electron_mev / (LU177.electron_mev + LU177.photon_mev)
    assert e_frac < frac.sum() < 1.0
    centre = tuple(s // 2 for s in frac.shape)
    assert frac[centre] > 0.8 * e_frac  # Lu-177 β range (< 2 mm) ≪ 4.8 mm voxels
    # a uniform block larger than the kernel: the centre voxel gets Σ fractions × E
    tia = np.ones((40, 40, 40))
    dose = voxel_s_dose_map(tia, np.ones_like(tia), k)
    m_kg = 4.8**3 / 1e6
    expected = DECAYS_PER_MBQ_H * k.energy_mev * 1.602176634e-13 * frac.sum() / m_kg
    assert dose[20, 20, 20] == pytest.approx(expected, rel=1e-6)


def test_dvh_mass_weighted():
    d = np.array([1.0, 2.0, 3.0, 4.0])
    h = dvh(d, np.ones(4, bool), np.array([1.0, 1.0, 1.0, 5.0]))
    assert h.d_mean_gy == pytest.approx((1 + 2 + 3 + 20) / 8)
    assert h.d50_gy == 4.0  # the heaviest voxel alone is 5/8 of the mass
    assert h.volume_fraction[0] == 1.0
