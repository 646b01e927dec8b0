"""The model card: what a segmentation model expects and what its output means.

A model folder with ``model.onnx`` carries ``oncohybrid-model.json``::

    {
      "name": "autopet-fdg-lesions",
      "inputs": [
        {"modality": "CT", "units": "HU", "normalisation": "ct-window", "window": [-1000, 1000]},
        {"modality": "PT", "units": "SUVbw", "normalisation": "none"}
      ],
      "spacing_mm": [3.0, 2.0, 2.0],        # (z, y, x), as nnU-Net plans and highdicom volumes
      "patch_size": [96, 96, 96],           # (z, y, x) voxels
      "labels": {"1": "lesion"},            # 0 is background
      "overlap": 0.5,                       # fraction of the patch shared by neighbouring tiles
      "mirroring": [0, 1, 2]                # optional: axes averaged over flips (test-time)
    }

The model's input is ``1 × channels × z × y × x`` float32 (channels in ``inputs`` order) and
its output ``1 × classes × z × y × x`` (logits or probabilities; the mask is the argmax).
nnU-Net v2 folders and MONAI bundles are translated into the same :class:`ModelCard`
(:mod:`oncohybrid.ai.loaders`). Invalid cards raise :class:`~oncohybrid.errors.InputError`
naming the field, at construction, so nothing invalid reaches inference.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from oncohybrid.errors import InputError

CARD_FILE = "oncohybrid-model.json"


class Modality(StrEnum):
    """(0008,0060) *Modality* of an input channel."""

    PT = "PT"
    CT = "CT"


class Units(StrEnum):
    """Quantity of an input channel: SUVbw for PET (body-weight SUV), HU for CT."""

    SUVBW = "SUVbw"
    HU = "HU"


class Normalisation(StrEnum):
    """Intensity normalisation applied before the model.

    ``none``: values as they are. ``zscore``: ``(x − mean) / std`` with the card's
    ``mean``/``std``, else the image's own (nnU-Net ``ZScoreNormalization``).
    ``ct-window``: clip to ``window`` = [lo, hi] and scale to [0, 1] (MONAI
    ``ScaleIntensityRange`` with clipping). ``ct-clip-zscore``: clip to ``window`` then
    ``(x − mean)/std`` (nnU-Net ``CTNormalization``, percentiles and moments of the
    training foreground from the plans).
    """

    NONE = "none"
    ZSCORE = "zscore"
    CT_WINDOW = "ct-window"
    CT_CLIP_ZSCORE = "ct-clip-zscore"


_EXPECTED_UNITS = {Modality.PT: Units.SUVBW, Modality.CT: Units.HU}


def _fail(where: str, message: str) -> InputError:
    return InputError(f"model card {where}: {message}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"expected a finite number, got {value!r}")
    return float(value)


def _triple(value: Any, where: str, *, integer: bool) -> tuple:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise _fail(where, f"expected 3 values in (z, y, x) order, got {value!r}")
    out = []
    for k, v in enumerate(value):
        x = _number(v, f"{where}[{k}]")
        if x <= 0:
            raise _fail(f"{where}[{k}]", f"must be > 0, got {v!r}")
        if integer:
            if x != int(x):
                raise _fail(f"{where}[{k}]", f"must be a whole number of voxels, got {v!r}")
            out.append(int(x))
        else:
            out.append(x)
    return tuple(out)


@dataclass(frozen=True)
class InputChannel:
    """One input channel of the model (its position in :attr:`ModelCard.inputs` is its
    channel index)."""

    modality: Modality
    units: Units
    normalisation: Normalisation = Normalisation.NONE
    window: tuple[float, float] | None = None
    mean: float | None = None
    std: float | None = None

    @classmethod
    def from_json(cls, item: Any, where: str) -> InputChannel:
        if not isinstance(item, dict):
            raise _fail(where, f"expected an object, got {item!r}")
        try:
            modality = Modality(item.get("modality"))
        except ValueError:
            raise _fail(f"{where}.modality", "must be one of "
                        f"{', '.join(m.value for m in Modality)}, got {item.get('modality')!r}"
                        ) from None
        units_raw = item.get("units", _EXPECTED_UNITS[modality].value)
        try:
            units = Units(units_raw)
        except ValueError:
            raise _fail(f"{where}.units", "must be one of "
                        f"{', '.join(u.value for u in Units)}, got {units_raw!r}") from None
        if units != _EXPECTED_UNITS[modality]:
            raise _fail(f"{where}.units", f"{modality.value} channels are given in "
                        f"{_EXPECTED_UNITS[modality].value}, got {units.value!r}")
        norm_raw = item.get("normalisation", "none")
        try:
            norm = Normalisation(norm_raw)
        except ValueError:
            raise _fail(f"{where}.normalisation", "must be one of "
                        f"{', '.join(n.value for n in Normalisation)}, got {norm_raw!r}"
                        ) from None
        window = None
        if "window" in item or norm in (Normalisation.CT_WINDOW, Normalisation.CT_CLIP_ZSCORE):
            w = item.get("window")
            if not isinstance(w, list | tuple) or len(w) != 2:
                raise _fail(f"{where}.window", f"expected [lower, upper], got {w!r}")
            lo, hi = _number(w[0], f"{where}.window[0]"), _number(w[1], f"{where}.window[1]")
            if not lo < hi:
                raise _fail(f"{where}.window", f"lower must be < upper, got {list(w)!r}")
            window = (lo, hi)
        mean = _number(item["mean"], f"{where}.mean") if "mean" in item else None
        std = _number(item["std"], f"{where}.std") if "std" in item else None
        if std is not None and std <= 0:
            raise _fail(f"{where}.std", f"must be > 0, got {item['std']!r}")
        if (mean is None) != (std is None):
            raise _fail(where, "give both mean and std, or neither")
        if norm is Normalisation.CT_CLIP_ZSCORE and mean is None:
            raise _fail(where, "ct-clip-zscore needs mean and std")
        return cls(modality, units, norm, window, mean, std)


@dataclass(frozen=True)
class ModelCard:
    """Validated description of a segmentation model (see the module docstring)."""

    inputs: tuple[InputChannel, ...]
    spacing_mm: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    labels: dict[int, str]
    overlap: float = 0.5
    mirroring: tuple[int, ...] = ()
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """Output channels: background plus the highest label value."""
        return max(self.labels) + 1

    @classmethod
    def from_json(cls, data: Any, source: str = CARD_FILE) -> ModelCard:
        """Validate a parsed card; :class:`InputError` names the field (``inputs[1].units``)."""
        if not isinstance(data, dict):
            raise InputError(f"model card {source}: expected a JSON object")
        for key in ("inputs", "spacing_mm", "patch_size", "labels"):
            if key not in data:
                raise _fail(key, f"missing (required in {source})")
        raw_inputs = data["inputs"]
        if not isinstance(raw_inputs, list) or not raw_inputs:
            raise _fail("inputs", f"expected a non-empty list of channels, got {raw_inputs!r}")
        inputs = tuple(InputChannel.from_json(item, f"inputs[{k}]")
                       for k, item in enumerate(raw_inputs))
        spacing = _triple(data["spacing_mm"], "spacing_mm", integer=False)
        patch = _triple(data["patch_size"], "patch_size", integer=True)
        raw_labels = data["labels"]
        if not isinstance(raw_labels, dict) or not raw_labels:
            raise _fail("labels", f'expected {{"1": "lesion", …}}, got {raw_labels!r}')
        labels: dict[int, str] = {}
        for key, name in raw_labels.items():
            try:
                value = int(key)
            except (TypeError, ValueError):
                raise _fail(f"labels.{key}", "keys are label values (integers ≥ 1)") from None
            if value == 0:
                continue  # background, implicit
            if value < 0 or value > 255:
                raise _fail(f"labels.{key}", "label values must be in 1…255")
            if not isinstance(name, str) or not name.strip():
                raise _fail(f"labels.{key}", f"expected a name, got {name!r}")
            labels[value] = name.strip()
        if not labels:
            raise _fail("labels", "no foreground label")
        overlap = _number(data.get("overlap", 0.5), "overlap")
        if not 0.0 <= overlap < 1.0:
            raise _fail("overlap", f"must be in [0, 1), got {data.get('overlap')!r}")
        mirror_raw = data.get("mirroring", [])
        if mirror_raw is True:
            mirror_raw = [0, 1, 2]
        elif mirror_raw is False or mirror_raw is None:
            mirror_raw = []
        if not isinstance(mirror_raw, list | tuple) or any(
                isinstance(a, bool) or a not in (0, 1, 2) for a in mirror_raw):
            raise _fail("mirroring", f"expected true/false or a list of axes 0 (z), 1 (y), "
                        f"2 (x), got {mirror_raw!r}")
        name = data.get("name", "")
        if not isinstance(name, str):
            raise _fail("name", f"expected text, got {name!r}")
        known = {"inputs", "spacing_mm", "patch_size", "labels", "overlap", "mirroring", "name"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(inputs, spacing, patch, dict(sorted(labels.items())), overlap,
                   tuple(sorted(set(mirror_raw))), name, extra)

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read and validate ``oncohybrid-model.json``."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read model card {p}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise InputError(f"model card {p}: not valid JSON ({exc})") from exc
        return cls.from_json(data, str(p))

    def to_json(self) -> dict[str, Any]:
        """The card as JSON (round-trips through :meth:`from_json`)."""
        inputs = []
        for ch in self.inputs:
            item: dict[str, Any] = {"modality": ch.modality.value, "units": ch.units.value,
                                    "normalisation": ch.normalisation.value}
            if ch.window is not None:
                item["window"] = list(ch.window)
            if ch.mean is not None:
                item["mean"], item["std"] = ch.mean, ch.std
            inputs.append(item)
        return {"name": self.name, "inputs": inputs, "spacing_mm": list(self.spacing_mm),
                "patch_size": list(self.patch_size),
                "labels": {str(k): v for k, v in self.labels.items()},
                "overlap": self.overlap, "mirroring": list(self.mirroring), **self.extra}
