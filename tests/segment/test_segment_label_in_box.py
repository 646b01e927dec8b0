"""#11: labelling lesions inside the mask's bounding box gives the same labels, count and
boxes as labelling the whole volume (the code before #11)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from oncohybrid.segment.components import label_lesions, order_labels, structure


def _old(mask, image, connectivity, min_voxels):
    labels = np.empty(mask.shape, dtype=np.int32)
    n = ndimage.label(mask, structure=structure(connectivity), output=labels)
    return order_labels(labels, image, int(n), min_voxels)


def _cases(seed, n):
    rng = np.random.default_rng(seed)
    for k in range(n):
        shape = tuple(int(v) for v in rng.integers(1, 18, 3))
        image = rng.random(shape).astype(np.float32)
        if k % 3 == 0:
            image = np.round(image * 4) / 4  # ties of the max: broken by the voxel index
        if k % 6 == 0:
            mask = np.zeros(shape, bool)
        elif k % 6 == 1:
            mask = np.zeros(shape, bool)
            mask[tuple(int(rng.integers(s)) for s in shape)] = True
        elif k % 6 == 2:
            mask = np.ones(shape, bool)
        else:
            mask = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0) > rng.uniform(0, .5)
        yield mask, image, rng


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_label_lesions_in_the_box_equals_the_whole_volume(connectivity):
    for mask, image, rng in _cases(connectivity, 200):
        min_voxels = int(rng.integers(1, 4))
        old = _old(mask, image, connectivity, min_voxels)
        new = label_lesions(mask, image, connectivity=connectivity, min_voxels=min_voxels)
        assert new[0].dtype == old[0].dtype == np.int32
        assert np.array_equal(new[0], old[0])
        assert new[1] == old[1]
        assert new[2] == old[2]
