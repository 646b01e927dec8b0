"""Threshold segmentation, labelling order, connectivity, exclusion masks, region growing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from oncohybrid.errors import InputError
from oncohybrid.segment.components import label_lesions
from oncohybrid.segment.grid import as_grid
from oncohybrid.segment.threshold import region_grow, segment_lesions

SP = (2.0, 2.0, 2.0)
FWHM_SIGMA = 6.0 / (2 * math.sqrt(2 * math.log(2)))  # 6 mm FWHM -> sigma in mm


def sphere_image(shape, centres_mm, volumes_ml, values, spacing=SP, sub=4):
    """Spheres with partial-volume voxel values (sub^3 supersampling)."""
    img = np.zeros(shape, np.float64)
    u = (np.arange(sub) + 0.5) / sub - 0.5
    for c, v_ml, val in zip(centres_mm, volumes_ml, values, strict=True):
        r = (3 * v_ml * 1000 / (4 * math.pi)) ** (1 / 3)
        lo = [max(0, int((ci - r) / s) - 1) for ci, s in zip(c, spacing, strict=True)]
        hi = [min(n, int((ci + r) / s) + 2) for ci, n, s in zip(c, shape, spacing, strict=True)]
        ax = [
            ((np.arange(a, b)[:, None] + u[None, :]) * s).ravel() - ci
            for a, b, s, ci in zip(lo, hi, spacing, c, strict=True)
        ]
        g = np.meshgrid(*ax, indexing="ij")
        inside = (g[0] ** 2 + g[1] ** 2 + g[2] ** 2 <= r * r).astype(float)
        n = [b - a for a, b in zip(lo, hi, strict=True)]
        frac = inside.reshape(n[0], sub, n[1], sub, n[2], sub).mean(axis=(1, 3, 5))
        img[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] += val * frac
    return img


@pytest.mark.parametrize("volume_ml", [10.0, 20.0, 50.0])
def test_41pct_mtv_of_blurred_spheres_within_10_percent(volume_ml):
    # Noise-free, 6 mm FWHM blur, zero background: the 41% iso-contour sits near the true edge
    # for spheres much larger than the blur (EANM 2015 rationale for 41%).
    shape = (48, 48, 48)
    img = sphere_image(shape, [(48.3, 47.9, 48.1)], [volume_ml], [8.0])
    img = ndimage.gaussian_filter(img, FWHM_SIGMA / 2.0).astype(np.float32)
    seg = segment_lesions(img, method="41pct", preselect_suv=1.0, spacing_mm=SP)
    assert seg.n_lesions == 1
    mtv = np.count_nonzero(seg.labels == 1) * 0.008
    assert mtv == pytest.approx(volume_ml, rel=0.10)
    assert seg.parameters()["fraction_of_suvmax"] == 0.41


def test_41pct_uses_each_lesions_own_max():
    # Two lesions, 8 and 4 SUV: each is cut at 41% of its own max, so the cooler one keeps
    # its full size although a global 41% of 8 would shrink it.
    shape = (40, 40, 80)
    img = sphere_image(shape, [(40, 40, 40), (40, 40, 120)], [15.0, 15.0], [8.0, 4.0])
    img = ndimage.gaussian_filter(img, FWHM_SIGMA / 2.0).astype(np.float32)
    seg = segment_lesions(img, method="41pct", preselect_suv=1.0, spacing_mm=SP)
    assert seg.n_lesions == 2
    v1, v2 = (np.count_nonzero(seg.labels == i) * 0.008 for i in (1, 2))
    assert v1 == pytest.approx(15.0, rel=0.1) and v2 == pytest.approx(15.0, rel=0.1)
    # Hotter lesion first
    assert img[seg.labels == 1].max() > img[seg.labels == 2].max()


def test_41pct_with_user_voi_stays_inside_the_voi():
    shape = (30, 30, 30)
    img = sphere_image(shape, [(30, 30, 30)], [10.0], [6.0]).astype(np.float32)
    voi = np.zeros(shape, bool)
    voi[:, :, :15] = True  # only half of the sphere
    seg = segment_lesions(img, method="relative", fraction=0.5, vois=[voi], spacing_mm=SP)
    assert seg.n_lesions == 1
    assert not (seg.labels.astype(bool) & ~voi).any()
    assert seg.preselect_suv is None


@pytest.mark.parametrize("method,thr", [("suv2.5", 2.5), ("suv4", 4.0)])
def test_fixed_threshold_counts_exactly_the_voxels_at_or_above(method, thr):
    rng = np.random.default_rng(3)
    img = (rng.random((20, 20, 20)) * 6).astype(np.float32)
    img[img == np.float32(thr)] = thr  # inclusive rule
    seg = segment_lesions(img, method=method, spacing_mm=SP, connectivity=26)
    assert np.array_equal(seg.labels > 0, img >= thr)
    assert seg.threshold_suv == thr


def test_connectivity_6_splits_diagonal_neighbours_26_joins_them():
    img = np.zeros((5, 5, 5), np.float32)
    img[1, 1, 1] = 5
    img[2, 2, 2] = 6
    assert segment_lesions(img, method="suv4", connectivity=26, spacing_mm=SP).n_lesions == 1
    assert segment_lesions(img, method="suv4", connectivity=18, spacing_mm=SP).n_lesions == 2
    assert segment_lesions(img, method="suv4", connectivity=6, spacing_mm=SP).n_lesions == 2
    img[1, 1, 2] = 5  # edge neighbour of both
    assert segment_lesions(img, method="suv4", connectivity=18, spacing_mm=SP).n_lesions == 1
    with pytest.raises(InputError, match="connectivity"):
        segment_lesions(img, method="suv4", connectivity=8, spacing_mm=SP)


def test_minimum_volume_drops_small_lesions():
    img = np.zeros((10, 10, 20), np.float32)
    img[2:4, 2:4, 2:4] = 5  # 8 voxels = 0.064 ml
    img[2:6, 2:6, 10:14] = 5  # 64 voxels = 0.512 ml
    seg = segment_lesions(img, method="suv4", min_volume_ml=0.1, spacing_mm=SP)
    assert seg.n_lesions == 1 and np.count_nonzero(seg.labels) == 64
    assert seg.labels.max() == 1


def test_lesion_ids_follow_descending_suvmax_then_position():
    img = np.zeros((10, 10, 30), np.float32)
    img[2, 2, 2:4] = 5.0  # ties with the next by max, earlier position
    img[2, 2, 10:12] = 5.0
    img[5, 5, 20:23] = 9.0
    lab, n, boxes = label_lesions(img > 1, img)
    assert n == 3
    assert lab[5, 5, 21] == 1 and lab[2, 2, 2] == 2 and lab[2, 2, 10] == 3
    assert boxes[0] == (slice(5, 6), slice(5, 6), slice(20, 23))
    # Same answer whatever the array's initial labelling order: flip and compare.
    lab2, _, _ = label_lesions(np.flip(img, 2) > 1, np.flip(img, 2))
    assert np.flip(lab2, 2)[5, 5, 21] == 1


def test_physiological_uptake_masks_are_excluded():
    img = np.zeros((10, 10, 30), np.float32)
    img[2:5, 2:5, 2:5] = 6.0  # lesion
    img[2:8, 2:8, 15:25] = 20.0  # "bladder"
    bladder = np.zeros(img.shape, bool)
    bladder[1:9, 1:9, 14:26] = True
    seg = segment_lesions(img, method="suv4", exclude={"bladder": bladder}, spacing_mm=SP)
    assert seg.n_lesions == 1 and seg.excluded_regions == ("bladder",)
    assert not (seg.labels.astype(bool) & bladder).any()
    seg41 = segment_lesions(img, method="41pct", exclude={"bladder": bladder}, spacing_mm=SP)
    assert seg41.n_lesions == 1 and not (seg41.labels.astype(bool) & bladder).any()


def test_percist_method_needs_and_uses_a_threshold():
    img = np.zeros((6, 6, 6), np.float32)
    img[2:4, 2:4, 2:4] = 3.2
    with pytest.raises(InputError, match="threshold_suv"):
        segment_lesions(img, method="percist", spacing_mm=SP)
    seg = segment_lesions(img, method="percist", threshold_suv=3.0, spacing_mm=SP)
    assert seg.n_lesions == 1 and seg.method == "percist"
    assert segment_lesions(img, method="percist", threshold_suv=3.3, spacing_mm=SP).n_lesions == 0


def test_unknown_method_and_missing_geometry_are_refused():
    with pytest.raises(InputError, match="unknown segmentation method"):
        segment_lesions(np.zeros((3, 3, 3)), method="otsu", spacing_mm=SP)
    with pytest.raises(InputError, match="spacing_mm or affine"):
        segment_lesions(np.zeros((3, 3, 3)), method="suv4")


def test_region_grow_follows_connected_voxels_above_the_bound():
    img = np.zeros((9, 9, 9), np.float32)
    img[4, 4, 1:6] = [3, 4, 5, 2, 6]
    img[4, 4, 7] = 9  # not connected
    grown = region_grow(img, (4, 4, 3), lower_suv=2.5, spacing_mm=SP, connectivity=6)
    assert np.count_nonzero(grown) == 3  # 3, 4, 5; stops at 2
    frac = region_grow(img, (4, 4, 3), fraction_of_seed=0.3, spacing_mm=SP)
    assert np.count_nonzero(frac) == 5  # >= 1.5
    capped = region_grow(img, (4, 4, 3), lower_suv=1.0, upper_suv=5.5, spacing_mm=SP)
    assert np.count_nonzero(capped) == 4
    with pytest.raises(InputError, match="outside"):
        region_grow(img, (9, 0, 0), lower_suv=1.0, spacing_mm=SP)


def test_highdicom_volume_input_carries_its_geometry():
    hd = pytest.importorskip("highdicom")
    arr = np.zeros((4, 5, 6), np.float32)
    arr[1:3, 1:3, 1:3] = 5.0
    vol = hd.Volume.from_attributes(
        array=arr,
        image_position=(10.0, 20.0, 30.0),
        image_orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing=(4.0, 3.0),
        spacing_between_slices=2.5,
        coordinate_system="PATIENT",
    )
    a, grid = as_grid(vol)
    assert grid.voxel_volume_ml == pytest.approx(4.0 * 3.0 * 2.5 / 1000)
    seg = segment_lesions(vol, method="suv4")
    assert seg.n_lesions == 1
