"""CT diameters/PPD/volume/HU from masks against analytic ellipsoids (criteria.md §2.4, §8.3)."""

from __future__ import annotations

import math

import highdicom as hd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncohybrid.errors import InputError
from oncohybrid.quant.ct import measure_ct_lesion


def _affine(spacing, theta_deg=0.0, origin=(-100.0, -80.0, 30.0)):
    """Index (slice,row,col) -> LPS; rows/cols rotated in the axial plane by theta."""
    t = math.radians(theta_deg)
    col_dir = np.array([math.cos(t), math.sin(t), 0.0])
    row_dir = np.array([-math.sin(t), math.cos(t), 0.0])
    aff = np.eye(4)
    aff[:3, 0] = np.array([0, 0, 1.0]) * spacing[0]
    aff[:3, 1] = row_dir * spacing[1]
    aff[:3, 2] = col_dir * spacing[2]
    aff[:3, 3] = origin
    return aff


def _ellipsoid(shape, aff, centre, axes_mm, angle_deg):
    """Mask of an ellipsoid with semi-axes (a, b, c); a,b in the axial plane at angle."""
    idx = np.indices(shape).reshape(3, -1).T.astype(float)
    lps = idx @ aff[:3, :3].T + aff[:3, 3] - np.asarray(centre)
    t = math.radians(angle_deg)
    u = lps[:, 0] * math.cos(t) + lps[:, 1] * math.sin(t)
    v = -lps[:, 0] * math.sin(t) + lps[:, 1] * math.cos(t)
    a, b, c = axes_mm
    inside = (u / a) ** 2 + (v / b) ** 2 + (lps[:, 2] / c) ** 2 <= 1.0
    z = lps[:, 2].reshape(shape)
    return inside.reshape(shape), z


def _chord_mm(direction_lps, a_mm, b_mm, angle_deg):
    """Longest chord of an ellipse (semi-axes a, b at angle) parallel to a direction.

    For an ellipse the longest chord in any direction passes through its centre.
    """
    t = math.radians(angle_deg)
    d = np.asarray(direction_lps[:2], float)
    d = d / np.linalg.norm(d)
    cu = d[0] * math.cos(t) + d[1] * math.sin(t)
    cv = -d[0] * math.sin(t) + d[1] * math.cos(t)
    return 2.0 / math.sqrt((cu / a_mm) ** 2 + (cv / b_mm) ** 2)


def _expected(mask, z, axes_mm):
    """Analytic in-plane axes on the slice with the largest cross-section."""
    a, b, c = axes_mm
    zs = np.unique(np.round(z[mask], 6))
    zbest = zs[np.argmin(np.abs(zs))]
    f = math.sqrt(max(0.0, 1 - (zbest / c) ** 2))
    return 2 * a * f, 2 * b * f


CASES = [
    # spacing (slice,row,col), grid rotation, ellipse angle, axes a,b,c
    ((5.0, 0.8, 0.8), 0.0, 0.0, (20.0, 10.0, 12.0)),
    ((5.0, 0.8, 0.8), 0.0, 30.0, (20.0, 10.0, 12.0)),
    ((3.0, 0.7, 1.1), 0.0, 45.0, (15.0, 6.0, 9.0)),
    ((3.0, 0.7, 1.1), 0.0, 72.0, (15.0, 6.0, 9.0)),
    ((2.5, 1.2, 0.6), 0.0, 120.0, (25.0, 14.0, 20.0)),
    ((1.0, 0.9, 0.9), 0.0, 160.0, (8.0, 5.0, 6.0)),
    ((4.0, 1.0, 1.0), 20.0, 10.0, (18.0, 9.0, 10.0)),
    ((4.0, 0.6, 0.9), -35.0, 95.0, (12.0, 7.5, 8.0)),
]


@pytest.mark.parametrize(("spacing", "grid_deg", "angle_deg", "axes"), CASES)
def test_axes_of_rotated_ellipsoid_within_one_voxel_diagonal(spacing, grid_deg, angle_deg, axes):
    extent = 2.4 * max(axes[:2])
    shape = (
        int(2.4 * axes[2] / spacing[0]) + 3,
        int(extent / spacing[1]) + 3,
        int(extent / spacing[2]) + 3,
    )
    aff = _affine(spacing, grid_deg)
    centre = aff[:3, :3] @ (np.array(shape) / 2 - 0.37) + aff[:3, 3]
    mask, z = _ellipsoid(shape, aff, centre, axes, angle_deg)
    m = measure_ct_lesion(mask, affine=aff)
    ld, sa = _expected(mask, z, axes)
    diag = math.hypot(spacing[1], spacing[2])
    assert abs(m.ld_mm - ld) <= diag, (m.ld_mm, ld)
    assert abs(m.sa_mm - sa) <= diag, (m.sa_mm, sa)
    assert m.ppd_mm2 == pytest.approx(m.ld_mm * m.sa_mm)
    # Endpoints: their distance is the diameter, they lie on the measured slice and
    # are consistent between voxel indices and LPS.
    for d in (m.long_axis, m.perpendicular):
        lps = d.endpoints_lps_mm
        assert np.linalg.norm(lps[1] - lps[0]) == pytest.approx(d.length_mm, abs=1e-6)
        back = np.c_[d.endpoints_index, np.ones(2)] @ aff.T
        np.testing.assert_allclose(back[:, :3], lps, atol=1e-9)
        assert np.all(d.endpoints_index[:, 0] == m.slice_index)
    # The long axis points along the ellipse's major axis (mod 180°).
    vec = m.long_axis.endpoints_lps_mm[1] - m.long_axis.endpoints_lps_mm[0]
    got = math.degrees(math.atan2(vec[1], vec[0])) % 180
    err = abs((got - angle_deg % 180 + 90) % 180 - 90)
    assert err < 8.0
    # Perpendicular really is perpendicular (within the documented tolerance).
    pvec = m.perpendicular.endpoints_lps_mm[1] - m.perpendicular.endpoints_lps_mm[0]
    cos = abs(vec @ pvec) / (np.linalg.norm(vec) * np.linalg.norm(pvec))
    assert cos <= math.sin(math.radians(m.perpendicular_tolerance_deg)) + 1e-9
    # Volume against the analytic ellipsoid: within 6 % for these sizes.
    vol = 4 / 3 * math.pi * axes[0] * axes[1] * axes[2] / 1000
    assert m.volume_ml == pytest.approx(vol, rel=0.06)
    assert m.volume_ml == pytest.approx(mask.sum() * np.prod(spacing) / 1000)


@settings(max_examples=25, deadline=None)
@given(
    a=st.floats(5.0, 25.0),
    ratio=st.floats(0.3, 1.0),
    angle=st.floats(0.0, 180.0),
    drow=st.floats(0.5, 1.5),
    dcol=st.floats(0.5, 1.5),
    phase=st.floats(0.0, 1.0),
)
def test_property_single_slice_ellipse_axes(a, ratio, angle, drow, dcol, phase):
    b = max(2.5, a * ratio)
    a = max(a, b)
    spacing = (5.0, drow, dcol)
    shape = (1, int(2.3 * a / drow) + 4, int(2.3 * a / dcol) + 4)
    aff = _affine(spacing)
    centre = aff[:3, :3] @ np.array([0.0, shape[1] / 2 + phase, shape[2] / 2 - phase]) + aff[:3, 3]
    mask, _ = _ellipsoid(shape, aff, centre, (a, b, 1e6), angle)
    m = measure_ct_lesion(mask, affine=aff)
    diag = math.hypot(drow, dcol)
    assert abs(m.ld_mm - 2 * a) <= diag
    # The short axis is judged along the direction actually measured (for a near-circle
    # the long axis may lie anywhere), against the analytic chord of the ellipse.
    pvec = m.perpendicular.endpoints_lps_mm[1] - m.perpendicular.endpoints_lps_mm[0]
    assert abs(m.sa_mm - _chord_mm(pvec, a, b, angle)) <= diag
    assert 2 * b - diag <= m.sa_mm


def test_long_axis_is_taken_on_the_slice_where_it_is_largest():
    # Two stacked discs: 10 mm on slice 1, 30 mm on slice 3; SA belongs to slice 3.
    mask = np.zeros((5, 60, 60), bool)
    rr, cc = np.mgrid[:60, :60]
    mask[1] = (rr - 30) ** 2 + (cc - 30) ** 2 <= 5**2
    mask[3] = ((rr - 30) / 8.0) ** 2 + ((cc - 30) / 15.0) ** 2 <= 1
    m = measure_ct_lesion(mask, spacing_mm=(5.0, 1.0, 1.0))
    assert m.slice_index == 3
    assert abs(m.ld_mm - 30) <= math.sqrt(2)
    assert abs(m.sa_mm - 16) <= math.sqrt(2)


def test_short_axis_of_a_kidney_shaped_node_does_not_bridge_the_notch():
    # A C-shape: the widest perpendicular extent spans the gap, the chord must not.
    mask = np.zeros((1, 80, 80), bool)
    rr, cc = np.mgrid[:80, :80]
    outer = ((rr - 40) / 30.0) ** 2 + ((cc - 40) / 15.0) ** 2 <= 1
    notch = ((rr - 40) / 22.0) ** 2 + ((cc - 52) / 14.0) ** 2 <= 1
    mask[0] = outer & ~notch
    m = measure_ct_lesion(mask, spacing_mm=(5.0, 1.0, 1.0))
    assert abs(m.ld_mm - 60) <= math.sqrt(2)
    # Through the middle only the rim (c 25..~38) is lesion; a bridged chord would be ~30 mm.
    assert m.sa_mm < 25


def test_accepts_highdicom_volume_and_hu_statistics():
    rng = np.random.default_rng(3)
    spacing = (3.0, 0.75, 0.75)
    aff = _affine(spacing, 0.0)
    shape = (12, 64, 64)
    centre = aff[:3, :3] @ (np.array(shape) / 2) + aff[:3, 3]
    mask, _ = _ellipsoid(shape, aff, centre, (15.0, 9.0, 12.0), 25.0)
    hu = rng.normal(40, 12, shape)
    vol = hd.Volume(mask.astype(np.uint8), aff, "PATIENT", frame_of_reference_uid="1.2.3")
    huv = hd.Volume(hu, aff, "PATIENT", frame_of_reference_uid="1.2.3")
    m = measure_ct_lesion(vol, hu=huv)
    m2 = measure_ct_lesion(mask, affine=aff, hu=hu)
    assert m.ld_mm == m2.ld_mm
    assert m.hu_mean == pytest.approx(float(np.mean(hu[mask])))
    assert m.hu_sd == pytest.approx(float(np.std(hu[mask], ddof=1)))
    assert m.to_json()["long_axis"]["length_mm"] == round(m.ld_mm, 2)


def test_single_voxel_and_empty_mask():
    one = np.zeros((3, 5, 5), bool)
    one[1, 2, 2] = True
    m = measure_ct_lesion(one, spacing_mm=(2.0, 0.5, 1.0))
    # A voxel alone measures edge to edge (documented EDGE_FRACTION rule).
    assert 0 < m.ld_mm <= math.hypot(0.5, 1.0)
    assert m.volume_ml == pytest.approx(0.001)
    with pytest.raises(InputError, match="empty"):
        measure_ct_lesion(np.zeros((2, 3, 3), bool), spacing_mm=1.0)
    with pytest.raises(InputError, match="affine"):
        measure_ct_lesion(np.zeros((2, 3, 3), bool))


def test_slice_axis_comes_from_the_affine_not_the_array_order():
    # The same ellipsoid stored with axes permuted (columns along S): the measurement
    # must still be taken in the axial plane and agree with the axial-first layout.
    spacing = (3.0, 0.8, 1.2)
    aff = _affine(spacing)
    shape = (14, 70, 50)
    centre = aff[:3, :3] @ (np.array(shape) / 2) + aff[:3, 3]
    mask, _ = _ellipsoid(shape, aff, centre, (18.0, 9.0, 12.0), 35.0)
    ref = measure_ct_lesion(mask, affine=aff)
    perm = (1, 2, 0)
    aff_p = np.eye(4)
    aff_p[:3, :3] = aff[:3, :3][:, perm]
    aff_p[:3, 3] = aff[:3, 3]
    m = measure_ct_lesion(np.transpose(mask, perm), affine=aff_p)
    assert m.slice_axis == 2
    assert m.ld_mm == pytest.approx(ref.ld_mm)
    assert m.sa_mm == pytest.approx(ref.sa_mm)
    np.testing.assert_allclose(np.sort(m.long_axis.endpoints_lps_mm, axis=0),
                               np.sort(ref.long_axis.endpoints_lps_mm, axis=0), atol=1e-6)
