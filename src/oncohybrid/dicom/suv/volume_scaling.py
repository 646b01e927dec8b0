"""SUV volume: a PET series loaded by :func:`oncohybrid.dicom.volume.load_series` (per-slice
rescale, PS3.3 C.8.9.4.1.3) and each slice multiplied by its own SUV factor."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from oncohybrid.dicom.suv.compute import compute_suv
from oncohybrid.dicom.suv.headers import _get, _text
from oncohybrid.dicom.suv.model import Normalisation, SUVOverrides, SUVScaling

if TYPE_CHECKING:  # pragma: no cover
    import highdicom


def suv_volume(source: str | os.PathLike[str] | Iterable[Dataset | str | os.PathLike[str]], *,
               normalisation: Normalisation = Normalisation.BW,
               overrides: SUVOverrides | None = None,
               scaling: SUVScaling | None = None) -> tuple[highdicom.Volume, SUVScaling]:
    """Load a PET series (directory, files or datasets) as a float32 SUV volume.

    Each rescaled slice (:func:`oncohybrid.dicom.volume.load_series`) is multiplied by its
    own factor; per-slice factors are matched to volume slices by position, not order.
    ``scaling`` is the result of :func:`compute_suv` for these datasets when the caller
    already has it (``oncohybrid suv`` reports the factors even if the volume fails).

    >>> vol, scaling = suv_volume("PT/", normalisation=Normalisation.LBM_JANMA)  # doctest: +SKIP
    >>> float(vol.array.max())  # SULmax                                          # doctest: +SKIP
    """
    from oncohybrid.dicom.volume import load_series, read_series

    if isinstance(source, str | os.PathLike):
        datasets = read_series(source)
    else:
        datasets = [d if isinstance(d, Dataset) else pydicom.dcmread(d) for d in source]
    if scaling is None:
        scaling = compute_suv(datasets, overrides=overrides)
    norm = Normalisation(normalisation)
    vol = load_series(datasets, rescale=True, dtype=np.float32)
    arr = vol.array
    if scaling.per_slice is None:
        arr *= np.float32(scaling.factor(norm))
    else:
        scaling.factor(norm, next(iter(scaling.per_slice)))  # raises if norm unavailable
        inv = np.linalg.inv(vol.affine)
        for key, pos in _slice_positions(datasets):
            k = int(round((inv @ np.append(pos, 1.0))[0]))
            arr[k] *= np.float32(scaling.per_slice[key][norm])
    vol.array = arr
    return vol, scaling


def _slice_positions(datasets: Sequence[Dataset]) -> list[tuple[str, np.ndarray]]:
    if len(datasets) == 1 and "PerFrameFunctionalGroupsSequence" in datasets[0]:
        out = []
        for i, fg in enumerate(datasets[0].PerFrameFunctionalGroupsSequence):
            pos = fg.PlanePositionSequence[0].ImagePositionPatient
            out.append((str(i), np.asarray(pos, dtype=float)))
        return out
    return [
        (_text(_get(ds, 0x00080018)) or str(i), np.asarray(ds.ImagePositionPatient, dtype=float))
        for i, ds in enumerate(datasets)
    ]
