"""Sliding-window inference: every voxel's prediction is a once-weighted average of the
tiles (a translation-equivariant model gives the whole-image result), ONNX Runtime path."""

from __future__ import annotations

import numpy as np
import onnx_models
import pytest

from oncohybrid.ai.inference import gaussian_importance, sliding_window, tile_starts


@pytest.mark.parametrize(("size", "patch", "overlap"), [(100, 40, 0.5), (37, 16, 0.25),
                                                       (16, 16, 0.5), (17, 16, 0.9)])
def test_tiles_cover_the_axis_and_touch_both_borders(size, patch, overlap):
    starts = tile_starts(size, patch, overlap)
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s:s + patch] = True
    assert covered.all() and starts[0] == 0 and starts[-1] + patch == size
    steps = np.diff(starts)
    assert np.all(steps <= patch * (1 - overlap) + 1)


def test_gaussian_weights_are_positive_and_peak_at_the_centre():
    w = gaussian_importance((9, 16, 7))
    assert w.min() > 0 and w[4, 8, 3] == w.max() == 1.0


def _conv_predictor(weights, bias, relu=True):
    def run(x):
        y = np.einsum("kc,bczyx->bkzyx", weights, x) + bias[None, :, None, None, None]
        return np.maximum(y, 0) if relu else y
    return run


@pytest.mark.parametrize(("patch", "overlap", "mirror"), [
    ((8, 8, 8), 0.5, ()), ((5, 7, 9), 0.25, (0, 2)), ((16, 4, 6), 0.8, (0, 1, 2)),
    ((32, 32, 32), 0.5, ()),  # larger than the image: padded and cropped back
])
def test_sliding_window_equals_whole_image_run_of_an_equivariant_model(patch, overlap, mirror):
    rng = np.random.default_rng(1)
    image = rng.normal(size=(2, 13, 11, 17)).astype(np.float32)
    w, b = rng.normal(size=(3, 2)), rng.normal(size=3)
    predict = _conv_predictor(w, b)
    whole = predict(image[None])[0]
    tiled = sliding_window(image, predict, patch, overlap=overlap, mirror_axes=mirror)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-5)


def test_every_voxel_is_weighted_once():
    """A model answering 1 everywhere gives exactly 1: weights are normalised per voxel."""
    calls = []

    def ones(x):
        calls.append(x.shape)
        return np.ones((1, 1, *x.shape[2:]), np.float32)

    out = sliding_window(np.zeros((1, 20, 30, 25), np.float32), ones, (8, 12, 10),
                         overlap=0.5)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)
    assert len(calls) == len(tile_starts(20, 8, .5)) * len(tile_starts(30, 12, .5)) * \
        len(tile_starts(25, 10, .5))
    assert all(s == (1, 1, 8, 12, 10) for s in calls)


def test_mirroring_averages_over_all_flip_combinations():
    seen = []

    def probe(x):
        seen.append(x.copy())
        return x[:, :1]

    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    out = sliding_window(image, probe, (2, 3, 4), mirror_axes=(0, 2))
    assert len(seen) == 4  # none, z, x, z+x
    np.testing.assert_allclose(out, image)


def test_onnx_runtime_model_runs_through_the_sliding_window(tmp_path):
    from oncohybrid.ai.loaders import load_model

    folder = onnx_models.write_onnx_folder(
        tmp_path / "m", onnx_models.suv_threshold_model(),
        {"inputs": [{"modality": "PT", "units": "SUVbw", "normalisation": "none"}],
         "spacing_mm": [2, 2, 2], "patch_size": [8, 8, 8], "labels": {"1": "lesion"}})
    model = load_model(folder)
    assert model.layout == "onnx" and model.card.labels == {1: "lesion"}
    image = np.random.default_rng(0).uniform(0, 5, size=(1, 12, 10, 9)).astype(np.float32)
    out = sliding_window(image, model.predictor("cpu"), model.card.patch_size)
    np.testing.assert_allclose(out[1], image[0] - 2.5, atol=1e-5)
    np.testing.assert_array_equal(out.argmax(0) == 1, image[0] > 2.5)
