"""Run a loaded model on image channels: normalise, resample to the model spacing,
sliding-window inference, resample the class scores back to the image grid, argmax.

Steps follow nnU-Net v2 inference (Isensee et al., Nat Methods 2021): normalisation per
channel on the image grid (card ``normalisation``), resampling to ``spacing_mm``
(linear, pixel-area aligned: ``scipy.ndimage.zoom`` with ``grid_mode=True``), Gaussian
sliding window (:mod:`oncohybrid.ai.inference`), class scores resampled back linearly to
the image's own shape, then ``argmax`` over classes. The mask is a plain label map with no
post-processing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from oncohybrid.ai.card import InputChannel, ModelCard, Normalisation
from oncohybrid.ai.inference import Predictor, sliding_window
from oncohybrid.errors import InputError

__all__ = ["normalise", "resample_array", "segment_arrays"]

#: Relative spacing difference below which no resampling is done.
SPACING_RTOL = 1e-3


def normalise(array: np.ndarray, channel: InputChannel) -> np.ndarray:
    """Apply the card's normalisation to one channel (float32 out).

    >>> from oncohybrid.ai.card import InputChannel, Modality, Units
    >>> ch = InputChannel(Modality.CT, Units.HU, Normalisation.CT_WINDOW, (-1000.0, 1000.0))
    >>> normalise(np.array([-2000.0, 0.0, 3000.0]), ch).tolist()
    [0.0, 0.5, 1.0]
    """
    x = np.asarray(array, dtype=np.float32)
    norm = channel.normalisation
    if norm is Normalisation.NONE:
        return x.copy()
    if norm is Normalisation.CT_WINDOW:
        assert channel.window is not None
        lo, hi = channel.window
        return ((np.clip(x, lo, hi) - lo) / np.float32(hi - lo)).astype(np.float32)
    if norm is Normalisation.CT_CLIP_ZSCORE:
        assert channel.window is not None and channel.mean is not None and channel.std
        lo, hi = channel.window
        return ((np.clip(x, lo, hi) - channel.mean) / np.float32(channel.std)).astype(np.float32)
    # z-score: the card's moments, else the image's own (nnU-Net ZScoreNormalization).
    if channel.mean is not None and channel.std is not None:
        mean, std = channel.mean, channel.std
    else:
        mean, std = float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
    return ((x - mean) / np.float32(max(std, 1e-8))).astype(np.float32)


def resample_array(array: np.ndarray, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """Resample the last three axes of ``array`` to ``shape`` (voxel areas aligned: the
    first and last voxel edges coincide, ``grid_mode=True``)."""
    shape = tuple(int(s) for s in shape)
    if array.shape[-3:] == shape:
        return array
    lead = array.shape[:-3]
    flat = array.reshape((-1, *array.shape[-3:]))
    out = np.empty((flat.shape[0], *shape), dtype=np.float32)
    for k in range(flat.shape[0]):
        zoom = [t / s for t, s in zip(shape, flat.shape[1:], strict=True)]
        out[k] = ndimage.zoom(flat[k], zoom, output=np.float32, order=order, mode="nearest",
                              grid_mode=True)
    return out.reshape((*lead, *shape))


def model_shape(shape: Sequence[int], spacing_mm: Sequence[float],
                target_mm: Sequence[float]) -> tuple[int, int, int]:
    """Grid shape at the model spacing covering the same extent (nnU-Net rounding)."""
    out = []
    for n, s, t in zip(shape, spacing_mm, target_mm, strict=True):
        out.append(n if abs(s - t) <= SPACING_RTOL * t else max(int(round(n * s / t)), 1))
    return tuple(out)  # type: ignore[return-value]


def segment_arrays(card: ModelCard, predict: Predictor, channels: Sequence[np.ndarray],
                   spacing_mm: Sequence[float], *,
                   progress: Callable[[int, int], None] | None = None,
                   return_scores: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Label map (uint8, image grid) of ``channels`` — arrays on one (z, y, x) grid in the
    order of ``card.inputs``, with voxel ``spacing_mm`` (z, y, x).

    With ``return_scores`` the class scores on the image grid (``K × z × y × x``) come too.
    """
    if len(channels) != len(card.inputs):
        raise InputError(f"the model takes {len(card.inputs)} channels "
                         f"({', '.join(c.modality.value for c in card.inputs)}), "
                         f"got {len(channels)}")
    shape = np.asarray(channels[0]).shape
    if len(shape) != 3 or any(np.asarray(c).shape != shape for c in channels):
        raise InputError("all input channels must be 3-D arrays on one grid, got shapes "
                         f"{[np.asarray(c).shape for c in channels]}")
    image = np.stack([normalise(c, ch) for c, ch in zip(channels, card.inputs, strict=True)])
    target = model_shape(shape, spacing_mm, card.spacing_mm)
    image = resample_array(image, target)
    scores = sliding_window(image, predict, card.patch_size, overlap=card.overlap,
                            mirror_axes=card.mirroring, n_classes=card.n_classes,
                            progress=progress)
    scores = resample_array(scores, shape)
    labels = np.argmax(scores, axis=0).astype(np.uint8)
    return (labels, scores) if return_scores else labels
