"""#11: the one-pass per-slice hole filling equals scipy's 2-D fill of every slice."""

import numpy as np
from scipy import ndimage

from oncohybrid.quant.references import _fill_holes_per_slice


def test_fill_holes_per_slice_equals_binary_fill_holes_of_each_slice() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 12, 3))
        mask = rng.random(shape) < rng.random()
        expected = np.stack([ndimage.binary_fill_holes(s) for s in mask])
        assert np.array_equal(_fill_holes_per_slice(mask), expected)
    ring = np.zeros((2, 7, 7), bool)
    ring[:, 1:6, 1:6] = True
    ring[:, 3, 3] = False  # a hole in each slice
    assert _fill_holes_per_slice(ring)[:, 3, 3].all()
