"""IBSI 1 benchmark settings as data: the digital phantom and CT-phantom configurations A–E.

Source: IBSI reference manual (arXiv:1612.07003), chapter 5 "Reference data sets", table of
the configurations of the CT radiomics phantom ("PAT1"), and §2 (image processing). All
settings share: GLCM symmetric, Chebyshev distance δ = 1, NGTDM/NGLDM δ = 1, NGLDM α = 0,
zone linkage δ = 1 (those are the texture families' defaults).

A :class:`RadiomicsSettings` is also what ``--params FILE.yaml`` fills (:func:`from_mapping`),
so a user configuration and an IBSI configuration travel through the same pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from oncohybrid.errors import InputError

Interpolation = Literal["none", "linear", "cubic", "nearest"]
Discretisation = Literal["none", "fbs", "fbn"]


@dataclass(frozen=True)
class RadiomicsSettings:
    """One IBSI processing configuration (IBSI 1 §2; manual Table 5.1 for A–E).

    Spacings are in array order (z, y, x), millimetres. ``by_slice`` = 2D processing:
    in-plane interpolation only and 2D / 2.5D texture aggregation (configs A, B);
    otherwise 3D. ``discretisation`` is ``"fbs"`` (fixed bin size ``bin_width``, bins start
    at the re-segmentation lower bound, IBSI 1 §2.7.2), ``"fbn"`` (fixed bin number
    ``n_bins``, §2.7.1) or ``"none"`` (intensities already are grey levels: the digital
    phantom). ``ivh_*`` choose the intensity-volume histogram's own discretisation (IBSI 1
    §3.5): ``"none"`` = the intensities themselves (discrete CT numbers; bin width 1).
    ``texture_dims``: which texture aggregations are reported ("2D", "2.5D", "3D"; IBSI
    benchmarks 2D and 2.5D for configs A and B, 3D for C–E, all for the digital phantom).
    """

    name: str = "custom"
    by_slice: bool = False
    new_spacing_mm: tuple[float, float, float] | None = None
    image_interpolation: Interpolation = "none"
    round_intensities: bool = False
    mask_interpolation: Interpolation = "linear"
    mask_threshold: float = 0.5
    resegment_range: tuple[float | None, float | None] | None = None
    outlier_sigma: float | None = None
    discretisation: Discretisation = "fbn"
    bin_width: float | None = None
    n_bins: int | None = None
    ivh_discretisation: Discretisation = "none"
    ivh_bin_width: float | None = None
    ivh_n_bins: int | None = None
    round_input: bool = False
    texture_dims: tuple[str, ...] = ("3D",)

    def __post_init__(self) -> None:
        if self.discretisation == "fbs" and not (self.bin_width and self.bin_width > 0):
            raise InputError(f"settings {self.name!r}: discretisation 'fbs' needs bin_width > 0")
        if self.discretisation == "fbn" and not (self.n_bins and self.n_bins >= 1):
            raise InputError(f"settings {self.name!r}: discretisation 'fbn' needs n_bins >= 1")
        if self.discretisation not in ("none", "fbs", "fbn"):
            raise InputError(f"settings {self.name!r}: discretisation must be none, fbs or "
                             f"fbn, got {self.discretisation!r}")
        if self.ivh_discretisation == "fbs" and not (self.ivh_bin_width
                                                     and self.ivh_bin_width > 0):
            raise InputError(f"settings {self.name!r}: ivh_discretisation 'fbs' needs "
                             "ivh_bin_width > 0")
        if self.ivh_discretisation == "fbn" and not (self.ivh_n_bins and self.ivh_n_bins >= 1):
            raise InputError(f"settings {self.name!r}: ivh_discretisation 'fbn' needs "
                             "ivh_n_bins >= 1")
        for name in ("image_interpolation", "mask_interpolation"):
            if getattr(self, name) not in ("none", "linear", "cubic", "nearest"):
                raise InputError(f"settings {self.name!r}: {name} must be none, linear, "
                                 f"cubic or nearest, got {getattr(self, name)!r}")
        if self.new_spacing_mm is not None and (len(self.new_spacing_mm) != 3 or not all(
                math.isfinite(s) and s > 0 for s in self.new_spacing_mm)):
            raise InputError(f"settings {self.name!r}: new_spacing_mm must be three "
                             f"positive numbers (z, y, x), got {self.new_spacing_mm!r}")
        if not 0.0 < self.mask_threshold <= 1.0:
            raise InputError(f"settings {self.name!r}: mask_threshold must be in (0, 1]")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping (the ``settings`` block of the CLI output)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


def from_mapping(data: Mapping[str, Any], *, source: str = "params") -> RadiomicsSettings:
    """Settings from a mapping (``--params FILE.yaml``); unknown keys are refused by name.

    ``base: A`` (or any IBSI configuration name) starts from that configuration.
    """
    known = {f.name for f in fields(RadiomicsSettings)}
    data = dict(data)
    base_name = data.pop("base", None)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: "
                         f"base, {', '.join(sorted(known))}")
    # Without a base the file itself must make a valid setting (RadiomicsSettings() alone is
    # not one: fixed bin number needs n_bins), so it is built from the file's values.
    base = ibsi_config(str(base_name)) if base_name is not None else None
    if "texture_dims" in data and data["texture_dims"] is not None:
        dims = data["texture_dims"]
        dims = [dims] if isinstance(dims, str) else list(dims)
        bad = [d for d in dims if str(d) not in ("2D", "2.5D", "3D")]
        if bad:
            raise InputError(f"{source}: texture_dims must be among 2D, 2.5D, 3D, got {bad}")
        data["texture_dims"] = tuple(str(d) for d in dims)
    for key in ("new_spacing_mm", "resegment_range"):
        if key in data and data[key] is not None:
            value = data[key]
            if not isinstance(value, (list, tuple)):
                raise InputError(f"{source}: {key} must be a list, got {value!r}")
            data[key] = tuple(None if v is None else float(v) for v in value)
    data.setdefault("name", f"{base.name}+params" if base is not None else "custom")
    try:
        return replace(base, **data) if base is not None else RadiomicsSettings(**data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: {exc}") from None


#: IBSI digital phantom: no interpolation, no re-segmentation, intensities are grey levels,
#: morphological mask = intensity mask (IBSI 1 §5.1).
DIGITAL_PHANTOM = RadiomicsSettings(
    name="digital-phantom", discretisation="none", ivh_discretisation="none",
    texture_dims=("2D", "2.5D", "3D"))

_CT = dict(round_input=True, mask_interpolation="linear", mask_threshold=0.5)

#: CT phantom configurations (IBSI manual Table 5.1; radiomics-ai.md §1.3).
CONFIG_A = RadiomicsSettings(
    name="A", by_slice=True, texture_dims=("2D", "2.5D"), resegment_range=(-500.0, 400.0),
    discretisation="fbs", bin_width=25.0, ivh_discretisation="none", **_CT)
CONFIG_B = RadiomicsSettings(
    name="B", by_slice=True, texture_dims=("2D", "2.5D"), new_spacing_mm=(3.0, 2.0, 2.0),
    image_interpolation="linear",
    round_intensities=True, resegment_range=(-500.0, 400.0),
    discretisation="fbn", n_bins=32, ivh_discretisation="none", **_CT)
CONFIG_C = RadiomicsSettings(
    name="C", new_spacing_mm=(2.0, 2.0, 2.0), image_interpolation="linear",
    round_intensities=True, resegment_range=(-1000.0, 400.0),
    discretisation="fbs", bin_width=25.0, ivh_discretisation="fbs", ivh_bin_width=2.5, **_CT)
CONFIG_D = RadiomicsSettings(
    name="D", new_spacing_mm=(2.0, 2.0, 2.0), image_interpolation="linear",
    round_intensities=True, outlier_sigma=3.0,
    discretisation="fbn", n_bins=32, ivh_discretisation="none", **_CT)
CONFIG_E = RadiomicsSettings(
    name="E", new_spacing_mm=(2.0, 2.0, 2.0), image_interpolation="cubic",
    round_intensities=True, resegment_range=(-1000.0, 400.0), outlier_sigma=3.0,
    discretisation="fbn", n_bins=32, ivh_discretisation="fbn", ivh_n_bins=1000, **_CT)

IBSI_CONFIGS: dict[str, RadiomicsSettings] = {
    "digital-phantom": DIGITAL_PHANTOM, "A": CONFIG_A, "B": CONFIG_B, "C": CONFIG_C,
    "D": CONFIG_D, "E": CONFIG_E,
}


def ibsi_config(name: str) -> RadiomicsSettings:
    """The IBSI configuration called ``name`` (``digital-phantom``, ``A`` … ``E``)."""
    key = name if name in IBSI_CONFIGS else name.upper()
    if key not in IBSI_CONFIGS:
        raise InputError(f"--ibsi-config {name!r}: expected one of "
                         f"{', '.join(IBSI_CONFIGS)}")
    return IBSI_CONFIGS[key]
