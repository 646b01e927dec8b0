"""SUV volume: a PET series loaded by :func:`oncohybrid.dicom.volume.load_series` (per-slice
rescale, PS3.3 C.8.9.4.1.3) and each slice multiplied by its own SUV factor."""

from __future__ import annotations

import os
from collections.abc import Iterable
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
    from oncohybrid.dicom.reading import gc_paused
    from oncohybrid.dicom.volume import load_series, read_series

    if isinstance(source, str | os.PathLike):
        datasets = read_series(source)
    else:
        with gc_paused():  # many surviving small objects: see dicom/reading.py
            datasets = [d if isinstance(d, Dataset) else pydicom.dcmread(d) for d in source]
    if scaling is None:
        scaling = compute_suv(datasets, overrides=overrides)
    norm = Normalisation(normalisation)
    if scaling.per_slice is None:
        vol = load_series(datasets, rescale=True, dtype=np.float32)
        arr = vol.array
        arr *= np.float32(scaling.factor(norm))
        vol.array = arr
        return vol, scaling
    per_slice = scaling.per_slice
    # Each stored plane is scaled by its own factor inside load_series, before any
    # resampling (non-uniform spacing, gantry tilt): scaling the finished volume by
    # position left the resampled planes in Bq/ml. An unavailable normalisation raises
    # SUVError at the first plane, after the geometry checks (as before).
    keys = {id(ds): _text(_get(ds, 0x00080018)) or str(i) for i, ds in enumerate(datasets)}

    def plane_factor(ds: Dataset, frame: int | None) -> float:
        key = str(frame) if frame is not None and str(frame) in per_slice else keys[id(ds)]
        return scaling.factor(norm, key)

    vol = load_series(datasets, rescale=True, dtype=np.float32, plane_scale=plane_factor)
    return vol, scaling

