"""The fast paths of the non-texture families (#18, RF) against direct computations.

The IBSI reference rows (digital phantom, configs A-E) are checked by
test_radiomics_morph_intensity.py and test_radiomics_pipeline.py; here the FFT / lookup
formulations are compared with the O(N²) or voxel-by-voxel definitions of IBSI 1 on small
random ROIs with anisotropic spacing, where those definitions are cheap.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from oncohybrid.radiomics.local_intensity import local_intensity_features, sphere_offsets
from oncohybrid.radiomics.morphology import (
    spatial_autocorrelation,
    spatial_autocorrelation_method,
)
from oncohybrid.radiomics.roi import Roi


def _direct_moran_geary(image, mask, spacing):
    """IBSI 1 §3.1.24-25 literally: all ordered pairs i ≠ j, w = 1/distance."""
    pos = np.argwhere(mask) * np.asarray(spacing)
    x = image[mask]
    a = x - x.mean()
    d = squareform(pdist(pos))
    with np.errstate(divide="ignore"):
        w = np.where(d > 0, 1.0 / d, 0.0)
    n, s_w, den = len(x), w.sum(), (a * a).sum()
    moran = n / s_w * (w * np.outer(a, a)).sum() / den
    geary = (n - 1) / (2 * s_w) * (w * (a[:, None] - a[None, :]) ** 2).sum() / den
    return moran, geary


@pytest.mark.parametrize("shape,spacing", [((4, 5, 6), (3.0, 0.98, 0.98)),
                                           ((1, 7, 9), (2.0, 1.0, 0.7)),
                                           ((6, 3, 2), (1.0, 1.0, 1.0))])
def test_moran_geary_exact_equals_all_pairs(shape, spacing):
    rng = np.random.default_rng(sum(shape))
    image = rng.normal(size=shape) + np.arange(shape[-1])  # some real autocorrelation
    mask = rng.random(shape) > 0.3
    mask.flat[0] = mask.flat[-1] = True
    got = spatial_autocorrelation(image, mask, spacing)
    want = _direct_moran_geary(image, mask, spacing)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert spatial_autocorrelation_method(mask).startswith("exact")


def test_moran_large_box_uses_the_documented_approximation():
    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[:12, :16, :16]
    mask = (z - 6) ** 2 + (y - 8) ** 2 + (x - 8) ** 2 <= 36
    image = np.sin(x / 3.0) * 50 + rng.normal(size=mask.shape)
    exact = spatial_autocorrelation(image, mask, (2.0, 2.0, 2.0))
    approx = spatial_autocorrelation(image, mask, (2.0, 2.0, 2.0), max_box_voxels=500)
    assert "approximate" in spatial_autocorrelation_method(mask, 500)
    assert approx != exact
    # a smooth image keeps its sign and rough size of autocorrelation on the coarser grid
    assert approx[0] > 0 and exact[0] > 0
    assert abs(approx[1] - exact[1]) < 0.5


def _direct_peaks(image, mask, spacing):
    """IBSI 1 §3.2 voxel by voxel: mean of the image voxels whose centres lie within the
    1 cm³ sphere's radius of the ROI voxel (only existing voxels near the border)."""
    kern = sphere_offsets(spacing)
    half = [k // 2 for k in kern.shape]
    offs = np.argwhere(kern) - np.asarray(half)
    means = {}
    for v in map(tuple, np.argwhere(mask)):
        idx = offs + np.asarray(v)
        ok = np.all((idx >= 0) & (idx < np.asarray(image.shape)), axis=1)
        means[v] = image[tuple(idx[ok].T)].mean()
    vals = {v: image[v] for v in means}
    top = max(vals.values())
    local = max(m for v, m in means.items() if vals[v] == top)
    return local, max(means.values())


@pytest.mark.parametrize("spacing", [(3.0, 0.977, 0.977), (2.0, 2.0, 2.0), (1.0, 1.5, 0.8)])
def test_local_and_global_peak_equal_voxelwise_definition(spacing):
    rng = np.random.default_rng(int(spacing[0] * 10))
    image = np.rint(rng.normal(size=(9, 15, 16)) * 100)
    mask = np.zeros(image.shape, bool)
    mask[1:8, 2:14, 0:9] = rng.random((7, 12, 9)) > 0.4  # touches the image border
    image[4, 6, 5] = image.max() + 10  # one clear maximum, inside the ROI
    mask[4, 6, 5] = True
    f = local_intensity_features(Roi(image, mask, mask, spacing))
    local, glob = _direct_peaks(image, mask, spacing)
    assert f["VJGA"] == pytest.approx(local, rel=1e-9, abs=1e-9)
    assert f["0F91"] == pytest.approx(glob, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mesh_lookup_equals_marching_cubes_mesh(seed):
    """RNU0/C0JK from the 256-case lookup equal the divergence-theorem volume and the
    triangle area of scikit-image's full marching-cubes mesh; the hull of the kept
    surface points equals the hull of every mesh vertex (L0JK, R3ER/7T7F, AABB)."""
    from scipy.spatial import ConvexHull

    from oncohybrid.radiomics.morphology import mesh, mesh_volume_area, surface_points

    rng = np.random.default_rng(seed)
    mask = np.zeros((8, 11, 12), bool)
    mask[1:7, 1:10, 2:11] = rng.random((6, 9, 9)) > 0.35
    spacing = (3.0, 0.977, 0.8)
    verts, _, vol, area = mesh(mask, spacing)
    got_vol, got_area = mesh_volume_area(mask, spacing)
    assert got_vol == pytest.approx(vol, rel=1e-6)
    assert got_area == pytest.approx(area, rel=1e-6)
    pts = surface_points(mask, spacing)
    h_all, h_pts = ConvexHull(verts), ConvexHull(pts)
    assert h_pts.volume == pytest.approx(h_all.volume, rel=1e-6)
    assert h_pts.area == pytest.approx(h_all.area, rel=1e-6)
    assert pdist(pts[h_pts.vertices]).max() == pytest.approx(
        pdist(verts[h_all.vertices]).max(), rel=1e-6)
    assert np.allclose(pts.max(0) - pts.min(0), verts.max(0) - verts.min(0), rtol=1e-6)
