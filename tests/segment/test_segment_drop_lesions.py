"""drop_lesions gives exactly what segmenting again with the dropped lesions excluded gives.

services.quantify relies on it to exclude physiological uptake from a fixed/PERCIST
segmentation without a second segmentation (issue #11, same outputs).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from oncohybrid.errors import InputError
from oncohybrid.segment.threshold import drop_lesions, segment_lesions


def _image(seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.uniform(0.5, 1.5, (40, 36, 36)).astype(np.float32)
    for _ in range(25):  # blobs of varied size and SUV, some touching each other
        c = rng.integers(3, 33, 3)
        r = int(rng.integers(1, 4))
        img[c[0] - r : c[0] + r + 1, c[1] - r : c[1] + r + 1, c[2] - r : c[2] + r + 1] = (
            rng.uniform(2.6, 12.0))
    return ndimage.gaussian_filter(img, 0.7)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("method", ["suv2.5", "percist"])
def test_drop_lesions_equals_segmenting_again(method, connectivity):
    img = _image()
    kw = {"method": method, "connectivity": connectivity, "min_volume_ml": 0.02,
          "spacing_mm": (2.0, 2.0, 2.0)}
    if method == "percist":
        kw["threshold_suv"] = 2.2
    seg = segment_lesions(img, **kw)
    assert seg.n_lesions >= 8
    ids = [2, 3, seg.n_lesions - 1, 5]
    organs = {"heart": [2, 5], "kidneys": [3, seg.n_lesions - 1]}
    masks = {}
    for organ, ks in organs.items():
        m = np.isin(seg.labels, ks)
        masks[organ] = ndimage.binary_dilation(m)
    again = segment_lesions(img, exclude=masks, **kw)
    dropped = drop_lesions(seg, ids, ["heart", "kidneys"])
    assert dropped.n_lesions == again.n_lesions == seg.n_lesions - 4
    assert dropped.labels.dtype == again.labels.dtype
    np.testing.assert_array_equal(dropped.labels, again.labels)
    assert dropped.boxes == again.boxes
    assert dropped.parameters() == again.parameters()
    # the input segmentation is left as it was
    assert seg.n_lesions - 4 == dropped.n_lesions and int(seg.labels.max()) == seg.n_lesions


def test_drop_lesions_refuses_relative_and_unknown_ids():
    img = _image()
    rel = segment_lesions(img, method="41pct", spacing_mm=(2.0, 2.0, 2.0))
    with pytest.raises(InputError, match="segmented again"):
        drop_lesions(rel, [1])
    fixed = segment_lesions(img, method="suv2.5", spacing_mm=(2.0, 2.0, 2.0))
    with pytest.raises(InputError, match="no lesion"):
        drop_lesions(fixed, [fixed.n_lesions + 1])
