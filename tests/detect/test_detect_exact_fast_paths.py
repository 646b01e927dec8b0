"""#11 speed work of detection: every fast path gives bit-identical results to the
computation it replaced (same arrays, same dtype), on varied synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from oncohybrid.detect.physiological import (
    PhysiologicalRules,
    organ_map,
    organ_regions,
    physiological_components,
)
from oncohybrid.imaging.resample import _gaussian_pass, gaussian_filter


def _volumes(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        shape = tuple(int(v) for v in rng.integers(1, 24, 3))
        scale = 10.0 ** rng.uniform(-3, 4)
        kind = rng.integers(3)
        if kind == 0:
            x = rng.standard_normal(shape) * scale
        elif kind == 1:  # CT-like: air with a few dense blocks, large magnitudes
            x = np.full(shape, -1000.0)
            x[tuple(slice(0, max(1, s // 2)) for s in shape)] = 1500.0
        else:  # constant, single voxel variation
            x = np.zeros(shape)
            x[tuple(s // 2 for s in shape)] = scale
        yield x, rng


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("mode", ["nearest", "reflect"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_pass_equals_scipy_bit_for_bit(dtype, mode, axis):
    for x, rng in _volumes(1, 150):
        x = x.astype(dtype)
        # radius up to 4 x 12 = 48 voxels: also wider than the array (repeated reflection)
        sigma = float(rng.choice([rng.uniform(0.05, 1.0), rng.uniform(1.0, 12.0)]))
        ref = ndimage.gaussian_filter1d(x, sigma, axis=axis, mode=mode)
        got = _gaussian_pass(x, sigma, axis, mode)
        assert got.dtype == ref.dtype
        assert np.array_equal(got, ref), (x.shape, sigma)


@pytest.mark.parametrize("mode", ["nearest", "reflect"])
def test_gaussian_filter_equals_scipy_bit_for_bit(mode):
    for x, rng in _volumes(2, 150):
        x = x.astype(np.float32)
        sigma = rng.uniform(0.0, 3.0, 3)
        sigma[rng.random(3) < 0.25] = 0.0  # skipped axes, as in scipy
        ref = ndimage.gaussian_filter(x, sigma, mode=mode)
        got = gaussian_filter(x, sigma, mode=mode)
        assert got.dtype == ref.dtype
        assert np.array_equal(got, ref), (x.shape, sigma)


def test_gaussian_nearest_on_a_ct_sized_slab_with_the_resample_sigmas():
    rng = np.random.default_rng(3)
    x = rng.integers(-1024, 2000, (20, 64, 64)).astype(np.int16).astype(np.float32)
    sigma = np.array([0.19148542, 0.52823338, 0.52823338])  # 2.5/1.95 mm CT -> 3/4.07 PET
    assert np.array_equal(gaussian_filter(x, sigma, mode="nearest"),
                          ndimage.gaussian_filter(x, sigma, mode="nearest"))
    assert np.array_equal(gaussian_filter(x, 1.5), ndimage.gaussian_filter(x, 1.5))


def test_gaussian_filter_hands_other_inputs_to_scipy():
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    for args in ((x, 1.0, "wrap"), (x[0], 1.0, "reflect"), (x.astype(np.int16), 1.0, "nearest")):
        expected = ndimage.gaussian_filter(args[0], args[1], mode=args[2])
        assert np.array_equal(gaussian_filter(*args), expected)


def _image():
    arr = np.full((40, 40, 40), 1.0, np.float32)
    arr[3:15, 3:15, 3:15] = 6.0     # rule (a)
    arr[20:32, 20:32, 3:9] = 2.2    # rule (b)
    arr[33:36, 3:6, 33:36] = 9.0    # lesion
    return arr


@pytest.mark.parametrize("liver_mean", [1.0, None, 0.0])
def test_shared_organ_map_gives_the_same_decisions(liver_mean):
    arr = _image()
    spacing = (4.0, 4.0, 4.0)
    rules = PhysiologicalRules()
    organs = organ_map(arr, spacing, liver_mean, rules)
    for thr in (2.0, 1.5):
        lab, _n = ndimage.label(arr >= thr)
        boxes = ndimage.find_objects(lab)
        old = physiological_components(lab, boxes, arr, spacing, liver_mean, rules)
        new = physiological_components(lab, boxes, arr, spacing, liver_mean, rules,
                                       organs=organs)
        assert new == old
    if liver_mean:
        assert np.array_equal(organs(), organ_regions(arr, spacing, liver_mean, rules)[0])
    else:
        assert organs() is None


def _masks(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for k in range(n):
        shape = tuple(int(v) for v in rng.integers(1, 16, 3))
        if k % 5 == 0:
            m = np.zeros(shape, bool)  # empty
        elif k % 5 == 1:
            m = np.zeros(shape, bool)  # single voxel, often on a border
            m[tuple(int(rng.integers(s)) for s in shape)] = True
        elif k % 5 == 2:
            m = np.ones(shape, bool)  # touches every border
        else:
            m = rng.random(shape) < rng.uniform(0.02, 0.6)
        yield m


def test_true_box_equals_find_objects():
    from oncohybrid.detect.ct_detection import _true_box

    for m in _masks(4, 200):
        ref = ndimage.find_objects(m.astype(np.uint8))
        assert _true_box(m) == (ref[0] if ref else None)


def test_boxes_of_equals_find_objects_for_the_wanted_labels():
    from oncohybrid.detect.ct_detection import _boxes_of

    rng = np.random.default_rng(5)
    for m in _masks(6, 200):
        lab, n = ndimage.label(m)
        wanted = rng.random(n + 1) < 0.5
        wanted[0] = False
        ref = [(i, box) for i, box in enumerate(ndimage.find_objects(lab), start=1)
               if wanted[i]]
        assert _boxes_of(lab, wanted) == ref


def test_shell_inside_the_grown_box_equals_the_full_size_shell():
    from oncohybrid.detect.ct_detection import _grown, _true_box

    rng = np.random.default_rng(7)
    for m in _masks(8, 200):
        pet = rng.random(m.shape).astype(np.float32)
        outer = ndimage.binary_dilation(m, iterations=4)
        shell = outer & ~ndimage.binary_dilation(m, iterations=2)
        near = _grown(_true_box(m), 4, m.shape)
        sub = m[near]
        shell2 = ndimage.binary_dilation(sub, iterations=4) & \
            ~ndimage.binary_dilation(sub, iterations=2)
        assert np.array_equal(pet[shell], pet[near][shell2])
        assert shell.any() == shell2.any()


def _old_enclosed(band, holes, keep):
    """The selection detect_on_ct made before #11: label the whole band, compare counts."""
    lab, n = ndimage.label(band)
    total = np.bincount(lab.ravel(), minlength=n + 1)
    enclosed = np.bincount(lab[holes], minlength=n + 1)
    out = []
    for i, box in enumerate(ndimage.find_objects(lab), start=1):
        if box is None or enclosed[i] < total[i]:
            continue
        comp = lab[box] == i
        if not keep(np.array([comp.sum()]))[0]:
            continue
        out.append((box, comp))
    return out


def test_enclosed_components_equal_the_whole_band_labelling():
    from oncohybrid.detect.ct_detection import _enclosed_components

    rng = np.random.default_rng(9)
    n_found = 0
    for k in range(300):
        shape = tuple(int(v) for v in rng.integers(1, 20, 3))
        field = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(0.0, 2.0))
        band = field > rng.uniform(-0.3, 0.3)
        if k % 4 == 0:  # holes from smoothed noise: blobs partly inside, partly outside
            holes = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5) > 0
        elif k % 4 == 1:
            holes = np.ones(shape, bool)  # everything enclosed
        elif k % 4 == 2:
            holes = rng.random(shape) < 0.7
        else:
            holes = np.zeros(shape, bool)
            holes[tuple(slice(1, max(1, s - 1)) for s in shape)] = True  # off the border
        lo, hi = sorted(rng.integers(1, 40, 2))

        def keep(count, lo=lo, hi=hi):
            return (lo <= count) & (count <= hi)

        old = _old_enclosed(band, holes, keep)
        new = _enclosed_components(band, holes, keep)
        assert [b for b, _ in new] == [b for b, _ in old]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(new, old, strict=True))
        n_found += len(new)
    assert n_found > 50  # the cases do exercise the selection


def _old_holes(tissue):
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    rest, n_rest = ndimage.label(~tissue, structure=in_plane)
    edge = np.unique(np.concatenate([rest[:, 0, :].ravel(), rest[:, -1, :].ravel(),
                                     rest[:, :, 0].ravel(), rest[:, :, -1].ravel()]))
    open_ = np.zeros(n_rest + 1, bool)
    open_[edge] = True
    open_[0] = True
    return ~open_[rest]


def test_in_plane_holes_in_the_grown_box_equal_the_whole_volume():
    from oncohybrid.detect.ct_detection import _in_plane_holes

    rng = np.random.default_rng(10)
    n_holes = 0
    for k in range(300):
        shape = tuple(int(v) for v in rng.integers(1, 24, 3))
        tissue = np.zeros(shape, bool)
        if k % 5 == 1:  # rings (holes) somewhere inside, some touching the border
            for _ in range(int(rng.integers(1, 4))):
                z0, y0, x0 = (int(rng.integers(s)) for s in shape)
                h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
                ring = np.zeros(shape[1:], bool)
                ring[y0:y0 + h, x0:x0 + w] = True
                ring[y0 + 1:y0 + h - 1, x0 + 1:x0 + w - 1] = False
                tissue[z0:z0 + int(rng.integers(1, 5))] |= ring
        elif k % 5 == 2:
            tissue[:] = True
        elif k % 5 == 3:
            tissue = rng.random(shape) < rng.uniform(0.2, 0.7)
        elif k % 5 == 4:
            tissue = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0) > 0.2
        expected = _old_holes(tissue)
        assert np.array_equal(_in_plane_holes(tissue), expected)
        n_holes += int(expected.sum())
    assert n_holes > 500
