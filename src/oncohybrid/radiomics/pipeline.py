"""All IBSI 1 feature families of one ROI: preprocessing (IBSI 1 §2) then §3.1–§3.11.

:func:`extract` takes an image and ROI mask in array order (z, y, x) with their spacing and a
:class:`~.configs.RadiomicsSettings`, runs :func:`~.preprocess.preprocess` and every family
that is installed, and returns ``{"features": {KEY: value}, "settings": {…}}`` where KEY is
the IBSI identifier (``Q4LE``), ``ID/AGG`` for texture features (aggregations chosen by
``settings.texture_dims``) and ``BC2M/V10``-style keys for the intensity-volume histogram.

A family whose module is not importable (being written) is skipped and named with the reason
in ``settings["families_missing"]``, never silently dropped.

Example (mean of a six-voxel ROI whose intensities are their own grey levels):

>>> import numpy as np
>>> img = np.array([[[1, 4, 4], [6, 1, 1]]], dtype=float)
>>> from oncohybrid.radiomics.configs import DIGITAL_PHANTOM
>>> r = extract(img, np.ones(img.shape, bool), (2.0, 2.0, 2.0), DIGITAL_PHANTOM,
...             families=["intensity_statistics"])
>>> r.features["Q4LE"]
2.8333333333333335
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .configs import RadiomicsSettings
from .preprocess import Preprocessed, preprocess
from .roi import (
    AGG_2D,
    AGG_2D_AVG,
    AGG_2D_SMRG,
    AGG_3D,
    AGG_3D_AVG,
    AGG_3D_MRG,
    AGG_25D,
    AGG_25D_DMRG,
    AGG_25D_MRG,
    Roi,
)

#: IBSI aggregation identifiers per texture dimensionality (IBSI 1 Table 3.1)
AGGREGATIONS_BY_DIM: dict[str, frozenset[str]] = {
    "2D": frozenset({AGG_2D_AVG, AGG_2D_SMRG, AGG_2D}),
    "2.5D": frozenset({AGG_25D_DMRG, AGG_25D_MRG, AGG_25D}),
    "3D": frozenset({AGG_3D_AVG, AGG_3D_MRG, AGG_3D}),
}

#: family name → (module, function); texture is one entry (RB's package computes all six)
FAMILY_FUNCTIONS: dict[str, tuple[str, str]] = {
    "morphology": ("oncohybrid.radiomics.morphology", "morphology_features"),
    "local_intensity": ("oncohybrid.radiomics.local_intensity", "local_intensity_features"),
    "intensity_statistics": ("oncohybrid.radiomics.intensity", "intensity_statistics"),
    "intensity_histogram": ("oncohybrid.radiomics.intensity", "intensity_histogram_features"),
    "intensity_volume_histogram": ("oncohybrid.radiomics.intensity",
                                   "intensity_volume_histogram_features"),
    "texture": ("oncohybrid.radiomics.texture", "roi_texture_features"),
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_FUNCTIONS)


@dataclass
class RadiomicsResult:
    """Features keyed by IBSI id and the settings/provenance they were computed with."""

    features: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"features": self.features, "settings": self.settings}


def _resolve(name: str) -> tuple[Callable[..., dict[str, float]] | None, str | None]:
    module, func = FAMILY_FUNCTIONS[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None, f"{module} not available yet"
        raise
    fn = getattr(mod, func, None)
    if fn is None:
        return None, f"{module}.{func} not available yet"
    return fn, None


def _keep_texture(key: str, dims: Sequence[str]) -> bool:
    if "/" not in key:
        return True
    agg = key.split("/", 1)[1]
    allowed = set().union(*(AGGREGATIONS_BY_DIM[d] for d in dims))
    all_aggs = set().union(*AGGREGATIONS_BY_DIM.values())
    return agg not in all_aggs or agg in allowed


def family_features(pre: Preprocessed, settings: RadiomicsSettings,
                    families: Iterable[str] | None = None, *,
                    filtered_image: np.ndarray | None = None,
                    spatial_autocorr: bool = True) -> RadiomicsResult:
    """The features of an already preprocessed ROI (see :func:`extract`)."""
    chosen = list(FAMILIES if families is None else families)
    unknown = [f for f in chosen if f not in FAMILY_FUNCTIONS]
    if unknown:
        from oncohybrid.errors import InputError

        raise InputError(f"unknown feature famil{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    roi = pre.roi
    if filtered_image is not None:  # IBSI 2: statistics of the response map in the ROI
        roi = Roi(image=filtered_image, morph_mask=roi.morph_mask, int_mask=roi.int_mask,
                  spacing_mm=roi.spacing_mm, levels=roi.levels, n_levels=roi.n_levels)
    features: dict[str, float] = {}
    missing: dict[str, str] = {}
    timings: dict[str, float] = {}
    done: list[str] = []
    for name in chosen:
        fn, why = _resolve(name)
        if fn is None:
            missing[name] = str(why)
            continue
        t0 = time.perf_counter()
        if name == "intensity_volume_histogram":
            out = fn(roi, **pre.ivh)
        elif name == "morphology":
            out = fn(roi, spatial_autocorr=spatial_autocorr)
        elif name == "texture":  # only the aggregations of settings.texture_dims are computed
            out = fn(roi, dims=settings.texture_dims)
        else:
            out = fn(roi)
        timings[name] = round(time.perf_counter() - t0, 4)
        if name == "texture":
            out = {k: v for k, v in out.items() if _keep_texture(k, settings.texture_dims)}
        features.update({k: float(v) for k, v in out.items()})
        done.append(name)
    info: dict[str, Any] = settings.as_dict()
    info.update({"families": done, "families_missing": missing,
                 "diagnostics": pre.diagnostics, "timing_s": timings,
                 "axis_order": "z, y, x", "ivh_parameters": pre.ivh})
    if "morphology" in done and spatial_autocorr:
        from .morphology import spatial_autocorrelation_method

        info["spatial_autocorrelation"] = ("Moran's I N365, Geary's C NPT7: "
                                           + spatial_autocorrelation_method(roi.int_mask))
    return RadiomicsResult(features=features, settings=info)


def extract(image: np.ndarray, mask: np.ndarray, spacing_mm: tuple[float, float, float],
            settings: RadiomicsSettings, *, families: Iterable[str] | None = None,
            response_filter: Callable[[np.ndarray, tuple[float, float, float]], np.ndarray]
            | None = None, filter_name: str | None = None,
            spatial_autocorr: bool = True) -> RadiomicsResult:
    """Preprocess (IBSI 1 §2) and compute every available family (IBSI 1 §3).

    ``response_filter`` (IBSI 2): a function of (image, spacing) applied to the whole
    interpolated image (IBSI 2 §2), read in the ROI's crop; the masks stay those of the
    unfiltered image (IBSI 2 §3: the ROI is re-segmented on the original intensities) and
    only intensity statistics are computed from the response map unless ``families`` says
    otherwise.
    """
    t0 = time.perf_counter()
    pre = preprocess(image, mask, spacing_mm, settings)
    t_pre = time.perf_counter() - t0
    filtered = None
    if response_filter is not None:
        # IBSI 2 filters the whole (interpolated) image, then reads the ROI: a crop would
        # change global filters (Simoncelli, Riesz, wide Gabor) near the crop's edges.
        from .preprocess import interpolate, roi_window

        everywhere = np.ones(np.shape(mask), dtype=bool)
        whole, _, whole_spacing = interpolate(np.asarray(image), everywhere, spacing_mm,
                                              settings)
        response = np.asarray(response_filter(whole, whole_spacing), dtype=np.float64)
        filtered = response[roi_window(mask, spacing_mm, settings)]
        if filtered.shape != pre.roi.image.shape:  # the two crops must be the same voxels
            raise AssertionError(f"filtered window {filtered.shape} differs from the ROI "
                                 f"crop {pre.roi.image.shape}")
        if families is None:
            families = ["intensity_statistics"]
    result = family_features(pre, settings, families, filtered_image=filtered,
                             spatial_autocorr=spatial_autocorr)
    result.settings["timing_s"]["preprocess"] = round(t_pre, 4)
    result.settings["timing_s"]["total"] = round(time.perf_counter() - t0, 4)
    if filter_name is not None:
        result.settings["filter"] = filter_name
    return result
