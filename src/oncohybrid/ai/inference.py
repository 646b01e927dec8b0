"""Sliding-window inference with Gaussian importance weighting and optional mirroring.

The image (``C × z × y × x``, already normalised and at the model spacing) is tiled with
patches of :attr:`ModelCard.patch_size`; neighbouring tiles share ``overlap`` of the patch.
Each tile's output is weighted by a Gaussian centred on the tile (σ = patch / 8), the
weighted outputs and the weights are summed per voxel and divided, so every voxel's
prediction is a weighted *average* of the tiles that saw it (weights sum to one). Tile
positions follow nnU-Net v2 (``compute_steps_for_sliding_window``: as few steps as the
overlap allows, spread evenly so the first and last tile touch the image borders);
an image smaller than the patch is padded with zeros (in normalised units) and cropped
back. Mirroring averages the prediction over every combination of flips of the chosen axes
(nnU-Net test-time augmentation).

Written here because the reference implementations (``nnunetv2.inference``,
``monai.inferers.sliding_window_inference``) both require PyTorch, which the CPU path
does not install; the arithmetic is that of nnU-Net v2 (Isensee et al., Nat Methods 2021).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["Predictor", "gaussian_importance", "sliding_window", "tile_starts"]

#: A model run: ``1 × C × pz × py × px`` float32 in, ``1 × K × pz × py × px`` out.
Predictor = Callable[[np.ndarray], np.ndarray]


def tile_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start indices of the tiles along one axis (nnU-Net v2 rule).

    >>> tile_starts(100, 40, 0.5)
    [0, 20, 40, 60]
    >>> tile_starts(30, 40, 0.5)
    [0]
    """
    if size <= patch:
        return [0]
    step = patch * (1.0 - overlap)
    n = int(np.ceil((size - patch) / step)) + 1
    actual = (size - patch) / (n - 1)
    return [int(round(actual * i)) for i in range(n)]


def gaussian_importance(patch: Sequence[int], sigma_scale: float = 1.0 / 8.0) -> np.ndarray:
    """Gaussian weight map of a patch: σ = patch × ``sigma_scale`` per axis, peak 1 at the
    centre voxel (``patch // 2``), strictly positive everywhere (nnU-Net clips the
    near-zero border to the smallest positive value so no voxel has weight 0).

    >>> w = gaussian_importance((8, 8, 8)); float(w.max()), bool(w.min() > 0)
    (1.0, True)
    """
    w = np.ones(tuple(int(p) for p in patch), dtype=np.float64)
    for axis, p in enumerate(patch):
        sigma = max(p * sigma_scale, 1e-6)
        x = np.arange(p, dtype=np.float64) - p // 2
        g = np.exp(-0.5 * (x / sigma) ** 2)
        shape = [1, 1, 1]
        shape[axis] = p
        w = w * g.reshape(shape)
    w /= w.max()
    positive = w[w > 0]
    floor = positive.min() if positive.size else 1.0
    w[w < floor] = floor
    return w.astype(np.float32)


def _predict_tile(predict: Predictor, tile: np.ndarray, mirror_axes: Sequence[int],
                  n_classes: int | None) -> np.ndarray:
    """One tile (C × pz × py × px) → K × pz × py × px, averaged over the mirror flips."""
    combos: list[tuple[int, ...]] = [()]
    axes = sorted(set(mirror_axes))
    for r in range(1, len(axes) + 1):
        combos.extend(itertools.combinations(axes, r))
    total: np.ndarray | None = None
    for flip in combos:
        flip_dims = tuple(a + 1 for a in flip)  # + channel axis
        x = np.flip(tile, axis=flip_dims) if flip else tile
        out = np.asarray(predict(np.ascontiguousarray(x[None], dtype=np.float32)))
        if out.ndim != 5 or out.shape[0] != 1 or out.shape[2:] != tile.shape[1:]:
            raise ValueError(f"model output has shape {out.shape}; expected 1 × classes × "
                             f"{' × '.join(map(str, tile.shape[1:]))}")
        if n_classes is not None and out.shape[1] != n_classes:
            raise ValueError(f"model output has {out.shape[1]} channels, the model card's "
                             f"labels need {n_classes} (background + labels)")
        y = out[0].astype(np.float32, copy=False)
        if flip:
            y = np.flip(y, axis=flip_dims)
        total = y.copy() if total is None else total + y
    assert total is not None
    return total / np.float32(len(combos))


def sliding_window(image: np.ndarray, predict: Predictor, patch_size: Sequence[int], *,
                   overlap: float = 0.5, mirror_axes: Sequence[int] = (),
                   n_classes: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Gaussian-weighted sliding-window prediction of ``image`` (``C × z × y × x``).

    Returns the ``K × z × y × x`` float32 weighted average of the tile outputs (logits or
    probabilities, whatever the model gives). ``progress(done, total)`` is called after
    each tile.

    Example:
        >>> img = np.zeros((1, 10, 12, 14), np.float32)
        >>> out = sliding_window(img, lambda x: np.concatenate([x, -x], 1), (8, 8, 8))
        >>> out.shape
        (2, 10, 12, 14)
    """
    if image.ndim != 4:
        raise ValueError(f"image must be C × z × y × x, got shape {image.shape}")
    patch = tuple(int(p) for p in patch_size)
    spatial = image.shape[1:]
    pad = [(0, max(p - s, 0)) for s, p in zip(spatial, patch, strict=True)]
    if any(b for _, b in pad):
        # Pad symmetrically like nnU-Net (image centred in the patch), zeros in normalised units.
        pad = [((b // 2), b - b // 2) for _, b in pad]
        image = np.pad(image, [(0, 0), *pad], mode="constant")
    padded = image.shape[1:]
    weight = gaussian_importance(patch)
    starts = [tile_starts(s, p, overlap) for s, p in zip(padded, patch, strict=True)]
    tiles = list(itertools.product(*starts))
    acc: np.ndarray | None = None
    wsum = np.zeros(padded, dtype=np.float32)
    for done, (z, y, x) in enumerate(tiles, start=1):
        sl = (slice(z, z + patch[0]), slice(y, y + patch[1]), slice(x, x + patch[2]))
        out = _predict_tile(predict, image[(slice(None), *sl)], mirror_axes, n_classes)
        if acc is None:
            acc = np.zeros((out.shape[0], *padded), dtype=np.float32)
        acc[(slice(None), *sl)] += out * weight
        wsum[sl] += weight
        if progress is not None:
            progress(done, len(tiles))
    assert acc is not None
    acc /= wsum
    crop = tuple(slice(a, a + s) for (a, _), s in zip(pad, spatial, strict=True))
    return np.ascontiguousarray(acc[(slice(None), *crop)])
