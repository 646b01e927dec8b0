"""Lesion and whole-body metrics on analytic volumes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from oncohybrid.errors import InputError
from oncohybrid.quant.pet import dmax, lesion_metrics, whole_body_metrics

# Oblique but orthogonal grid: rows/columns rotated 30 degrees about z, 2.5 mm slices.
_c, _s = math.cos(math.pi / 6), math.sin(math.pi / 6)
AFFINE = np.array(
    [
        [0.0, 2.0 * _c, -3.0 * _s, -120.0],
        [0.0, 2.0 * _s, 3.0 * _c, 40.0],
        [2.5, 0.0, 0.0, -300.0],
        [0, 0, 0, 1.0],
    ]
)
VOX_ML = 2.5 * 2.0 * 3.0 / 1000


def _to_lps(idx):
    return AFFINE[:3, :3] @ np.asarray(idx, float) + AFFINE[:3, 3]


def test_cube_lesion_metrics_are_analytic():
    img = np.full((20, 20, 20), 1.0, np.float32)
    lab = np.zeros(img.shape, np.int32)
    lab[4:8, 5:10, 6:12] = 1  # 4 x 5 x 6 = 120 voxels
    img[4:8, 5:10, 6:12] = 3.0
    img[6, 7, 9] = 7.0  # max voxel
    m = lesion_metrics(img, lab, affine=AFFINE, sul_per_suv=0.8)[0]
    n = 120
    mean = (3.0 * (n - 1) + 7.0) / n
    assert m.n_voxels == n and m.lesion_id == 1
    assert m.mtv_ml == pytest.approx(n * VOX_ML)
    assert m.suv_max == 7.0 and m.suv_max_index == (6, 7, 9)
    assert m.suv_max_lps_mm == pytest.approx(_to_lps((6, 7, 9)))
    assert m.suv_mean == pytest.approx(mean)
    assert m.tlg_suv_ml == pytest.approx(mean * n * VOX_ML)
    assert m.centroid_lps_mm == pytest.approx(_to_lps((5.5, 7.0, 8.5)))
    corners = np.array([_to_lps((a, b, c)) for a in (4, 7) for b in (5, 9) for c in (6, 11)])
    assert m.extent_min_lps_mm == pytest.approx(corners.min(axis=0))
    assert m.extent_max_lps_mm == pytest.approx(corners.max(axis=0))
    assert m.sul_max == pytest.approx(5.6) and m.sul_mean == pytest.approx(mean * 0.8)
    assert m.sul_peak == pytest.approx(m.suv_peak.value * 0.8)
    json.dumps(m.to_json())


def test_peak_of_a_large_uniform_lesion_is_its_value():
    img = np.full((30, 30, 30), 0.5, np.float32)
    lab = np.zeros(img.shape, np.int32)
    lab[5:25, 5:25, 5:25] = 1
    img[lab == 1] = 4.0
    m = lesion_metrics(img, lab, affine=AFFINE)[0]
    assert m.suv_peak.value == pytest.approx(4.0, abs=1e-9)
    assert m.sul_max is None


def test_tmtv_counts_overlapping_voxels_once():
    img = np.full((10, 10, 20), 2.0, np.float32)
    a = np.zeros(img.shape, bool)
    b = np.zeros(img.shape, bool)
    a[2:6, 2:6, 2:8] = True  # 96 voxels
    b[2:6, 2:6, 5:12] = True  # 112 voxels, 48 shared
    wb = whole_body_metrics(img, [a, b], affine=AFFINE)
    assert wb.lesion_count == 2
    assert wb.tmtv_ml == pytest.approx((96 + 112 - 48) * VOX_ML)
    assert wb.total_tlg_suv_ml == pytest.approx(2.0 * (96 + 112 - 48) * VOX_ML)


def test_label_volume_totals_equal_the_sum_of_lesions():
    img = np.random.default_rng(0).random((12, 12, 12)).astype(np.float32) + 3
    lab = np.zeros(img.shape, np.int32)
    lab[1:4, 1:4, 1:4] = 1
    lab[6:10, 6:10, 6:10] = 2
    mets = lesion_metrics(img, lab, affine=AFFINE)
    wb = whole_body_metrics(img, lab, affine=AFFINE)
    assert wb.tmtv_ml == pytest.approx(sum(m.mtv_ml for m in mets))
    assert wb.total_tlg_suv_ml == pytest.approx(img[lab > 0].astype(float).sum() * VOX_ML)


def test_dmax_and_sdmax_from_known_centroids():
    spacing = (2.0, 2.0, 2.0)
    img = np.ones((60, 40, 40), np.float32)
    lab = np.zeros(img.shape, np.int32)
    lab[4:7, 4:7, 4:7] = 1  # centroid index (5,5,5)
    lab[50:53, 30:33, 20:23] = 2  # (51,31,21)
    lab[20:22, 20:22, 20:22] = 3  # (20.5, 20.5, 20.5) inside
    wb = whole_body_metrics(img, lab, spacing_mm=spacing, bsa_m2=1.85)
    expect = 2.0 * math.sqrt(46**2 + 26**2 + 16**2)
    assert wb.dmax_mm == pytest.approx(expect)
    assert wb.dmax_lesion_ids == (1, 2)
    assert wb.sdmax_per_m == pytest.approx(expect / 1000 / 1.85)
    json.dumps(wb.to_json())


def test_dmax_needs_two_lesions():
    assert dmax(np.zeros((1, 3))) == (None, None)
    img = np.ones((5, 5, 5), np.float32)
    lab = np.zeros(img.shape, np.int32)
    lab[2, 2, 2] = 1
    wb = whole_body_metrics(img, lab, spacing_mm=(1, 1, 1), bsa_m2=2.0)
    assert wb.dmax_mm is None and wb.sdmax_per_m is None and wb.lesion_count == 1


def test_float_labels_and_bad_ratio_are_refused():
    img = np.ones((4, 4, 4), np.float32)
    with pytest.raises(InputError, match="integer"):
        lesion_metrics(img, np.ones((4, 4, 4)), spacing_mm=(1, 1, 1))
    with pytest.raises(InputError, match="sul_per_suv"):
        lesion_metrics(img, np.ones((4, 4, 4), np.int32), spacing_mm=(1, 1, 1), sul_per_suv=0)
