"""SUVpeak: exact partial-volume kernel and bounding-box convolution vs a brute-force reference.

The reference computes every sphere separately, with weights obtained independently of the
implementation: the voxel-sphere overlap is integrated numerically (adaptive quadrature of
the analytic chord length along one axis over the other two), not with the implementation's
analytic disk-rectangle formula.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from scipy import integrate, ndimage

from oncohybrid.errors import InputError
from oncohybrid.quant.pet import SUV_PEAK_RADIUS_MM, sphere_kernel, suv_peak

R = SUV_PEAK_RADIUS_MM


def _overlap_quad(offset: tuple[int, int, int], spacing: tuple[float, float, float]) -> float:
    """Volume (mm^3) of the voxel at integer ``offset`` inside the ball (independent)."""
    (x0, x1), (y0, y1), (z0, z1) = [
        ((o - 0.5) * s, (o + 0.5) * s) for o, s in zip(offset, spacing, strict=True)
    ]
    near = [0.0 if a <= 0 <= b else min(abs(a), abs(b)) for a, b in ((x0, x1), (y0, y1), (z0, z1))]
    if math.hypot(*near) >= R:
        return 0.0

    def chord(y: float, x: float) -> float:
        h2 = R * R - x * x - y * y
        if h2 <= 0:
            return 0.0
        h = math.sqrt(h2)
        return max(0.0, min(z1, h) - max(z0, -h))

    def inner(x: float) -> float:
        pts = []
        for zz in (z0, z1, 0.0):
            t = R * R - x * x - zz * zz
            if t > 0:
                pts += [-math.sqrt(t), math.sqrt(t)]
        pts = [p for p in pts if y0 < p < y1]
        return integrate.quad(
            chord, y0, y1, args=(x,), points=pts or None, epsabs=1e-12, epsrel=1e-12, limit=200
        )[0]

    xpts = []
    for yy in (y0, y1, 0.0):
        for zz in (z0, z1, 0.0):
            t = R * R - yy * yy - zz * zz
            if t > 0:
                xpts += [-math.sqrt(t), math.sqrt(t)]
    xpts = [p for p in xpts if x0 < p < x1]
    return integrate.quad(
        inner, x0, x1, points=xpts or None, epsabs=1e-11, epsrel=1e-12, limit=200
    )[0]


@cache
def _weight(offset: tuple[int, int, int], spacing: tuple[float, float, float]) -> float:
    # Symmetry: the overlap depends on |offset| only.
    return _overlap_quad(tuple(abs(o) for o in offset), spacing) / float(np.prod(spacing))


def brute_force_peak(img, mask, spacing, *, local=False, centre_weights=False):
    """Sphere by sphere; voxels outside the image are left out of the mean."""
    half = [int(math.ceil(R / s + 0.5)) - 1 for s in spacing]
    cands = np.argwhere(mask)
    if local:
        vmax = img[mask].max()
        cands = np.argwhere(mask & (img == vmax))
    best, best_c = -np.inf, None
    for c in cands:
        num = den = 0.0
        for off in np.ndindex(*[2 * h + 1 for h in half]):
            o = tuple(int(v - h) for v, h in zip(off, half, strict=True))
            p = tuple(int(ci + oi) for ci, oi in zip(c, o, strict=True))
            if any(not 0 <= pi < n for pi, n in zip(p, img.shape, strict=True)):
                continue
            if centre_weights:
                w = float(sum((oi * s) ** 2 for oi, s in zip(o, spacing, strict=True)) <= R * R)
            else:
                w = _weight(o, spacing)
            num += w * float(img[p])
            den += w
        if num / den > best:
            best, best_c = num / den, tuple(int(v) for v in c)
    return best, best_c


@pytest.mark.parametrize(
    "spacing",
    [(4.0, 4.0, 4.0), (3.0, 4.0, 4.0), (2.0, 2.0, 2.0), (2.03, 2.73, 2.73), (5.0, 3.0, 1.7)],
)
def test_partial_volume_kernel_holds_exactly_one_ml(spacing):
    k = sphere_kernel(spacing)
    assert k.sum() * np.prod(spacing) / 1000.0 == pytest.approx(1.0, abs=1e-10)
    assert k.max() <= 1.0 + 1e-12 and k.min() >= 0.0
    # Symmetric about every axis through the centre.
    for axis in range(3):
        assert np.allclose(k, np.flip(k, axis), atol=1e-14)


def test_kernel_weights_match_independent_quadrature():
    spacing = (3.0, 4.0, 4.0)
    k = sphere_kernel(spacing)
    h = [s // 2 for s in k.shape]
    for off in [
        (0, 0, 0),
        (0, 0, 1),
        (1, 0, 1),
        (1, 1, 1),
        (2, 0, 0),
        (2, 1, 1),
        (1, 0, 2),
        (0, 1, 1),
        (2, 0, 1),
    ]:
        assert k[h[0] + off[0], h[1] + off[1], h[2] + off[2]] == pytest.approx(
            _weight(off, spacing), abs=1e-9
        )


def test_spherical_cap_weight_is_analytic():
    # 4 mm voxel two steps along one axis: only a cap of height r - 6 mm lies inside, and
    # its base (radius 1.57 mm) fits the 4 x 4 mm face.
    k = sphere_kernel((4.0, 4.0, 4.0))
    hcap = R - 6.0
    cap = math.pi * hcap**2 * (3 * R - hcap) / 3
    assert k[4, 2, 2] * 64.0 == pytest.approx(cap, rel=1e-12)


def test_centre_kernel_counts_match_the_notes():
    # Voxel-centre spheres (docs/pet-quantification.md, SUVpeak table).
    for spacing, n in [
        ((4, 4, 4), 19),
        ((3, 4, 4), 21),
        ((2, 2, 2), 123),
        ((3, 3, 3), 33),
        ((5, 5, 5), 7),
        ((1.5, 1.5, 1.5), 305),
    ]:
        assert int(sphere_kernel(spacing, weights="centre").sum()) == n


def _random_case(rng, shape, n_blobs=3):
    img = rng.gamma(2.0, 1.0, size=shape)
    img = ndimage.gaussian_filter(img, 0.8) * rng.uniform(1, 5)
    mask = np.zeros(shape, bool)
    for _ in range(n_blobs):
        c = rng.integers(0, shape)
        r = rng.integers(1, 3, size=3)
        sl = tuple(slice(max(0, ci - ri), ci + ri + 1) for ci, ri in zip(c, r, strict=True))
        mask[sl] = True
    return img.astype(np.float32), mask


@pytest.mark.parametrize(
    "seed,spacing",
    [(0, (3.0, 4.0, 4.0)), (1, (2.0, 2.0, 2.0)), (2, (5.0, 3.0, 1.7)), (3, (2.03, 2.73, 2.73))],
)
def test_global_peak_equals_brute_force_on_random_volumes(seed, spacing):
    rng = np.random.default_rng(seed)
    img, mask = _random_case(rng, (9, 11, 13))  # blobs may touch the image border
    got = suv_peak(img, mask, spacing_mm=spacing)
    want, want_c = brute_force_peak(img, mask, spacing)
    assert got.value == pytest.approx(want, abs=1e-6)
    assert got.centre_index == want_c
    # spacing_mm = (slice, row, column) of an axial grid: LPS (x, y, z) = (col, row, slice)
    want_lps = np.multiply(want_c, spacing)[::-1]
    assert got.centre_lps_mm == pytest.approx(want_lps)
    assert got.kernel_volume_ml == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("seed,spacing", [(4, (3.0, 4.0, 4.0)), (5, (2.0, 3.0, 1.5))])
def test_local_and_centre_weight_modes_equal_brute_force(seed, spacing):
    rng = np.random.default_rng(seed)
    img, mask = _random_case(rng, (8, 10, 12), n_blobs=2)
    loc = suv_peak(img, mask, spacing_mm=spacing, mode="local")
    want, want_c = brute_force_peak(img, mask, spacing, local=True)
    assert loc.value == pytest.approx(want, abs=1e-6) and loc.centre_index == want_c
    glob_c = suv_peak(img, mask, spacing_mm=spacing, mode="global", weights="centre")
    want, _ = brute_force_peak(img, mask, spacing, centre_weights=True)
    assert glob_c.value == pytest.approx(want, abs=1e-6)
    # Centred on the max is never hotter than the best sphere anywhere in the lesion.
    assert loc.value <= suv_peak(img, mask, spacing_mm=spacing).value + 1e-12


def test_large_lesion_uses_fft_path_and_still_matches_direct_correlation():
    # A box big enough for the FFT branch (> 4e6 voxel x weight products); the reference is
    # a full-image direct correlation normalised by the in-image kernel weight.
    rng = np.random.default_rng(11)
    spacing = (1.0, 1.0, 1.0)
    img = rng.random((30, 30, 30)).astype(np.float32)
    mask = np.zeros(img.shape, bool)
    mask[1:29, 3:27, 3:27] = True  # touches near the border along the first axis
    k = sphere_kernel(spacing)
    assert mask.sum() * np.count_nonzero(k) > 4_000_000
    num = ndimage.correlate(img.astype(np.float64), k, mode="constant")
    den = ndimage.correlate(np.ones(img.shape), k, mode="constant")
    ref = np.where(mask, num / den, -np.inf)
    got = suv_peak(img, mask, spacing_mm=spacing)
    assert got.value == pytest.approx(ref.max(), abs=1e-9)
    assert got.centre_index == tuple(int(v) for v in np.unravel_index(np.argmax(ref), ref.shape))


def test_single_hot_voxel_gives_voxel_volume_fraction():
    # Notes 4.7 (1): exact PV kernel -> V x voxel volume (ml) / 1 ml; voxel centres -> V / N.
    spacing = (3.0, 4.0, 4.0)
    img = np.zeros((15, 15, 15), np.float32)
    img[7, 7, 7] = 10.0
    mask = img > 0
    assert suv_peak(img, mask, spacing_mm=spacing).value == pytest.approx(10 * 0.048, abs=1e-9)
    assert suv_peak(img, mask, spacing_mm=spacing, mode="local", weights="centre").value == (
        pytest.approx(10 / 21, abs=1e-9)
    )
    iso = suv_peak(img, mask, spacing_mm=(2, 2, 2), mode="local", weights="centre").value
    assert iso == pytest.approx(10 / 123, abs=1e-9)


def test_uniform_ball_gives_its_value_for_every_definition():
    spacing = (2.0, 2.0, 2.0)
    g = np.indices((31, 31, 31)) - 15
    ball = (g**2).sum(axis=0) * 4.0 <= 14.0**2  # r = 14 mm > 6.2 + voxel diagonal
    img = np.where(ball, 3.5, 0.5).astype(np.float32)
    for mode in ("percist", "global", "local"):
        for weights in ("partial_volume", "centre"):
            p = suv_peak(img, ball, spacing_mm=spacing, mode=mode, weights=weights)
            assert p.value == pytest.approx(3.5, abs=1e-6)


def test_local_peak_is_the_isolated_max_voxel_global_finds_the_hot_cube():
    # Notes 4.7 (3): voxel of 10 plus a separate 30 mm cube of 8 (2 mm voxels, zero elsewhere).
    img = np.zeros((40, 40, 60), np.float32)
    img[20, 20, 5] = 10.0
    img[5:20, 10:25, 30:45] = 8.0
    mask = img > 0
    assert suv_peak(
        img, mask, spacing_mm=(2, 2, 2), mode="local", weights="centre"
    ).value == pytest.approx(10 / 123, abs=1e-9)
    glob = suv_peak(img, mask, spacing_mm=(2, 2, 2), mode="global")
    assert glob.value == pytest.approx(8.0, abs=1e-9)
    assert 5 <= glob.centre_index[0] < 20 and 30 <= glob.centre_index[2] < 45


def test_sphere_in_mask_is_nan_for_lesions_smaller_than_the_sphere():
    img = np.ones((12, 12, 12), np.float32)
    mask = np.zeros(img.shape, bool)
    mask[5:7, 5:7, 5:7] = True
    p = suv_peak(img, mask, spacing_mm=(2, 2, 2), constrain="sphere_in_mask")
    assert math.isnan(p.value) and p.centre_index is None
    assert p.to_json()["value"] is None


def test_peak_location_uses_the_affine():
    aff = np.array([[0, 0, 4.0, -100], [0, 4.0, 0, 50], [3.0, 0, 0, 20], [0, 0, 0, 1]])
    img = np.zeros((10, 10, 10), np.float32)
    img[4:7, 3:6, 2:5] = 5.0
    img[5, 4, 3] = 9.0
    p = suv_peak(img, img > 0, affine=aff)
    k = np.asarray(p.centre_index, float)
    assert p.centre_lps_mm == pytest.approx(aff[:3, :3] @ k + aff[:3, 3])


def test_empty_mask_is_refused():
    with pytest.raises(InputError, match="empty"):
        suv_peak(np.ones((4, 4, 4)), np.zeros((4, 4, 4), bool), spacing_mm=(1, 1, 1))
