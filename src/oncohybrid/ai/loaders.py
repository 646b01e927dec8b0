"""Load a user-supplied segmentation model folder into a :class:`LoadedModel`.

Three layouts are recognised (nothing is ever downloaded):

* **ONNX + model card**: ``model.onnx`` and ``oncohybrid-model.json``
  (:mod:`oncohybrid.ai.card`); runs on ONNX Runtime (CUDA provider when available, else CPU).
* **nnU-Net v2 trained-model folder** ``<Trainer>__<Plans>__<configuration>/`` with
  ``plans.json``, ``dataset.json`` and ``fold_<k>/checkpoint_final.pth`` (or
  ``checkpoint_best.pth``): spacing, patch size, normalisation per channel
  (``CTNormalization`` → ``ct-clip-zscore`` with the plans' foreground percentiles and
  moments, ``ZScoreNormalization`` → ``zscore``, ``NoNormalization`` → ``none``), labels and
  ``transpose_forward`` come from the plans; channels from ``dataset.json``
  ``channel_names`` (an ``oncohybrid-model.json`` beside them may name the modalities, e.g.
  for the autoPET convention of declaring the PET channel as "CT"). The checkpoints of all
  folds present are averaged. Running needs PyTorch and ``nnunetv2``.
* **MONAI bundle**: ``configs/metadata.json`` (``network_data_format``),
  ``configs/inference.json`` (``Spacingd`` pixdim, ``ScaleIntensityRanged`` /
  ``NormalizeIntensityd``, ``SlidingWindowInferer`` roi_size and overlap) and
  ``models/model.onnx`` (ONNX Runtime), ``models/model.ts`` (TorchScript) or
  ``models/model.pt`` (state dict; needs MONAI to build ``network_def``). MONAI reads images
  with reversed indexing, so a bundle's arrays are ``C × x × y × z``: its pixdim, roi_size
  are reversed into the card's (z, y, x) and the predictor transposes each patch.
  An ``oncohybrid-model.json`` in the bundle overrides what is derived.

Errors: a folder matching no layout or with inconsistent files raises
:class:`~oncohybrid.errors.InputError` (exit 2) naming the file and field; a checkpoint
that needs PyTorch when it is not importable raises :class:`ModelRuntimeError` starting
"PyTorch is not installed: …".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oncohybrid.ai.card import CARD_FILE, ModelCard
from oncohybrid.ai.inference import Predictor
from oncohybrid.errors import InputError, OncohybridError

__all__ = ["LoadedModel", "ModelRuntimeError", "load_model"]


class ModelRuntimeError(OncohybridError):
    """The model folder is valid but cannot be run here (runtime missing or failing)."""


@dataclass(frozen=True)
class LoadedModel:
    """A parsed model folder: its card, its layout and how to build its predictor."""

    card: ModelCard
    layout: str  # "onnx" | "nnunetv2" | "monai-bundle"
    path: Path
    weights: tuple[Path, ...]
    _factory: Callable[[str], Predictor]

    def predictor(self, device: str = "auto") -> Predictor:
        """Build the runnable model (``device``: ``auto``, ``cpu`` or ``cuda``)."""
        if device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be auto, cpu or cuda, got {device!r}")
        return self._factory(device)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc


# --------------------------------------------------------------------------- runtimes

def _onnx_predictor(path: Path, device: str, transpose: tuple[int, int, int] | None = None
                    ) -> Predictor:
    """ONNX Runtime session on ``path``; CUDA provider first when asked or available."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelRuntimeError(f"ONNX Runtime is not installed: {path} needs "
                                "`pip install onnxruntime`") from exc
    available = ort.get_available_providers()
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ModelRuntimeError(f"CUDA requested but ONNX Runtime offers only "
                                    f"{', '.join(available)} (install onnxruntime-gpu)")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif device == "auto" and "CUDAExecutionProvider" in available:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise InputError(f"{path}: ONNX Runtime cannot load the model: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise InputError(f"{path}: the model must take one input (1 × C × z × y × x), "
                         f"it takes {len(inputs)}")
    name = inputs[0].name

    def run(x: np.ndarray) -> np.ndarray:
        if transpose is not None:
            x = np.ascontiguousarray(np.transpose(x, (0, 1, *(a + 2 for a in transpose))))
        try:
            out = session.run(None, {name: x})[0]
        except Exception as exc:
            raise ModelRuntimeError(f"{path}: inference failed: {exc}") from exc
        if transpose is not None:
            inverse = tuple(int(a) for a in np.argsort(transpose))
            out = np.transpose(out, (0, 1, *(a + 2 for a in inverse)))
        return out

    return run


def _import_torch(what: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ModelRuntimeError(f"PyTorch is not installed: {what} can only run with torch "
                                "(pip install torch), or export the model to ONNX and add an "
                                f"{CARD_FILE} model card") from exc
    return torch


def _torch_device(torch: Any, device: str) -> Any:
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelRuntimeError("CUDA requested but PyTorch sees no GPU")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")


def _torch_predictor(torch: Any, nets: list[Any], dev: Any,
                     transpose: tuple[int, int, int] | None) -> Predictor:
    """Average of the networks' outputs (nnU-Net fold ensemble: mean of logits)."""

    def run(x: np.ndarray) -> np.ndarray:
        if transpose is not None:
            x = np.ascontiguousarray(np.transpose(x, (0, 1, *(a + 2 for a in transpose))))
        with torch.inference_mode():
            t = torch.from_numpy(x).to(dev)
            outs = []
            for net in nets:
                y = net(t)
                if isinstance(y, list | tuple):  # deep supervision: full resolution first
                    y = y[0]
                outs.append(y.float())
            out = (sum(outs) / len(outs)).cpu().numpy()
        if transpose is not None:
            inverse = tuple(int(a) for a in np.argsort(transpose))
            out = np.transpose(out, (0, 1, *(a + 2 for a in inverse)))
        return out

    return run


# --------------------------------------------------------------------------- ONNX + card

def _load_onnx(folder: Path) -> LoadedModel:
    card = ModelCard.read(folder / CARD_FILE)
    onnx_path = folder / "model.onnx"
    return LoadedModel(card, "onnx", folder, (onnx_path,),
                       lambda device: _onnx_predictor(onnx_path, device))


# --------------------------------------------------------------------------- nnU-Net v2

_PT_NAMES = ("PET", "PT", "SUV", "FDG", "PSMA")


def _channel_modality(name: str) -> str | None:
    upper = name.upper()
    if any(key in upper for key in _PT_NAMES):
        return "PT"
    if "CT" in upper:
        return "CT"
    return None


def _nnunet_card(folder: Path, configuration: str | None) -> tuple[ModelCard, dict, str,
                                                                    tuple[int, int, int]]:
    plans_path, dataset_path = folder / "plans.json", folder / "dataset.json"
    plans, dataset = _read_json(plans_path), _read_json(dataset_path)
    configs = plans.get("configurations") if isinstance(plans, dict) else None
    if not isinstance(configs, dict) or not configs:
        raise InputError(f"{plans_path}: no 'configurations'")
    if configuration is None:
        parts = folder.name.split("__")
        configuration = parts[2] if len(parts) == 3 and parts[2] in configs else None
    if configuration is None:
        configuration = "3d_fullres" if "3d_fullres" in configs else next(iter(configs))
    if configuration not in configs:
        raise InputError(f"{plans_path}: configuration {configuration!r} not among "
                         f"{', '.join(configs)}")
    conf = dict(configs[configuration])
    while "inherits_from" in conf and conf["inherits_from"] in configs:  # nnU-Net cascades
        parent = dict(configs[conf.pop("inherits_from")])
        parent.update(conf)
        conf = parent
    where = f"{plans_path} configurations.{configuration}"
    for key in ("patch_size", "spacing", "normalization_schemes"):
        if key not in conf:
            raise InputError(f"{where}: missing {key!r}")
    if len(conf["patch_size"]) != 3:
        raise InputError(f"{where}.patch_size: only 3-D configurations run here, got "
                         f"{conf['patch_size']!r}")
    transpose = tuple(int(a) for a in plans.get("transpose_forward", [0, 1, 2]))
    if sorted(transpose) != [0, 1, 2]:
        raise InputError(f"{plans_path}.transpose_forward: not a permutation: {transpose!r}")
    # Plans values are in the transposed (network) order; the card is in image (z, y, x).
    spacing = [0.0] * 3
    patch = [0] * 3
    for net_axis, img_axis in enumerate(transpose):
        spacing[img_axis] = conf["spacing"][net_axis]
        patch[img_axis] = conf["patch_size"][net_axis]
    channels = dataset.get("channel_names", dataset.get("modality")) \
        if isinstance(dataset, dict) else None
    if not isinstance(channels, dict) or not channels:
        raise InputError(f"{dataset_path}: missing 'channel_names'")
    n_ch = len(channels)
    schemes = conf["normalization_schemes"]
    if len(schemes) != n_ch:
        raise InputError(f"{where}.normalization_schemes: {len(schemes)} schemes for "
                         f"{n_ch} channels")
    override = _read_json(folder / CARD_FILE) if (folder / CARD_FILE).exists() else {}
    props = plans.get("foreground_intensity_properties_per_channel", {})
    inputs = []
    for k in range(n_ch):
        name = str(channels.get(str(k), channels.get(k, "")))
        item: dict[str, Any] = {}
        if isinstance(override.get("inputs"), list) and k < len(override["inputs"]):
            item.update({key: v for key, v in override["inputs"][k].items()
                         if key in ("modality", "units")})
        if "modality" not in item:
            modality = _channel_modality(name)
            if modality is None:
                raise InputError(f"{dataset_path}: channel {k} {name!r} is neither CT nor PET; "
                                 f"name the modalities in {folder / CARD_FILE} 'inputs'")
            item["modality"] = modality
        scheme = schemes[k]
        if scheme == "CTNormalization":
            p = props.get(str(k))
            if not isinstance(p, dict) or not all(
                    key in p for key in ("percentile_00_5", "percentile_99_5", "mean", "std")):
                raise InputError(f"{plans_path}: foreground_intensity_properties_per_channel."
                                 f"{k} lacks percentile_00_5/percentile_99_5/mean/std needed "
                                 "by CTNormalization")
            item.update(normalisation="ct-clip-zscore",
                        window=[p["percentile_00_5"], p["percentile_99_5"]],
                        mean=p["mean"], std=max(float(p["std"]), 1e-8))
        elif scheme == "ZScoreNormalization":
            item["normalisation"] = "zscore"
        elif scheme == "NoNormalization":
            item["normalisation"] = "none"
        else:
            raise InputError(f"{where}.normalization_schemes[{k}]: {scheme!r} is not "
                             "supported (CTNormalization, ZScoreNormalization, "
                             "NoNormalization)")
        inputs.append(item)
    raw_labels = dataset.get("labels")
    if not isinstance(raw_labels, dict):
        raise InputError(f"{dataset_path}: missing 'labels'")
    labels = {}
    for name, value in raw_labels.items():
        if isinstance(value, list | tuple):
            raise InputError(f"{dataset_path}: labels.{name} is region-based {value!r}; only "
                             "plain label maps (argmax) are supported")
        if int(value) != 0:
            labels[str(int(value))] = str(name)
    card_json = {"name": override.get("name", folder.parent.name or folder.name),
                 "inputs": inputs, "spacing_mm": spacing, "patch_size": patch,
                 "labels": labels, "overlap": override.get("overlap", 0.5),
                 "mirroring": override.get("mirroring", [0, 1, 2]),
                 "configuration": configuration}
    return ModelCard.from_json(card_json, str(plans_path)), conf, configuration, transpose


def _load_nnunet(folder: Path, folds: list[str] | None) -> LoadedModel:
    card, conf, configuration, transpose = _nnunet_card(folder, None)
    fold_dirs = sorted(p for p in folder.glob("fold_*") if p.is_dir())
    if folds:
        fold_dirs = [folder / f"fold_{f}" for f in folds]
    checkpoints = []
    for fd in fold_dirs:
        for name in ("checkpoint_final.pth", "checkpoint_best.pth"):
            if (fd / name).is_file():
                checkpoints.append(fd / name)
                break
    if not checkpoints:
        raise InputError(f"{folder}: no fold_<k>/checkpoint_final.pth")
    plans = _read_json(folder / "plans.json")
    n_in, n_out = len(card.inputs), card.n_classes

    def factory(device: str) -> Predictor:
        torch = _import_torch(f"the nnU-Net checkpoint {checkpoints[0]}")
        try:
            from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
            from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
        except ImportError as exc:
            raise ModelRuntimeError(f"nnU-Net v2 is not installed: {checkpoints[0]} needs "
                                    "`pip install nnunetv2` to build its network") from exc
        dev = _torch_device(torch, device)
        cm = PlansManager(plans).get_configuration(configuration)
        nets = []
        for ckpt_path in checkpoints:
            net = get_network_from_plans(
                cm.network_arch_class_name, cm.network_arch_init_kwargs,
                cm.network_arch_init_kwargs_req_import, n_in, n_out, allow_init=True,
                deep_supervision=False)
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            net.load_state_dict(ckpt["network_weights"])
            nets.append(net.to(dev).eval())
        return _torch_predictor(torch, nets, dev,
                                None if transpose == (0, 1, 2) else transpose)

    return LoadedModel(card, "nnunetv2", folder, tuple(checkpoints), factory)


# --------------------------------------------------------------------------- MONAI bundle

def _walk_transforms(node: Any) -> list[dict]:
    found: list[dict] = []
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            found.append(node)
        for v in node.values():
            found.extend(_walk_transforms(v))
    elif isinstance(node, list):
        for v in node:
            found.extend(_walk_transforms(v))
    return found


def _target(node: dict) -> str:
    return str(node["_target_"]).rsplit(".", 1)[-1]


def _monai_card(folder: Path) -> ModelCard:
    meta_path = folder / "configs" / "metadata.json"
    inf_path = folder / "configs" / "inference.json"
    meta, inference = _read_json(meta_path), _read_json(inf_path)
    override = _read_json(folder / CARD_FILE) if (folder / CARD_FILE).exists() else {}
    fmt = meta.get("network_data_format", {}) if isinstance(meta, dict) else {}
    inp = next(iter(fmt.get("inputs", {}).values()), None) if isinstance(fmt, dict) else None
    out = next(iter(fmt.get("outputs", {}).values()), None) if isinstance(fmt, dict) else None
    if not isinstance(inp, dict) or not isinstance(out, dict):
        raise InputError(f"{meta_path}: network_data_format needs 'inputs' and 'outputs'")
    nodes = _walk_transforms(inference)
    by_name: dict[str, dict] = {}
    for node in nodes:
        by_name.setdefault(_target(node), node)
    card: dict[str, Any] = {"name": meta.get("name", folder.name)}
    # Spacing: Spacingd pixdim (x, y, z) → (z, y, x).
    spacing_node = by_name.get("Spacingd") or by_name.get("Spacing")
    if spacing_node is not None and isinstance(spacing_node.get("pixdim"), list):
        card["spacing_mm"] = list(reversed(spacing_node["pixdim"]))
    inferer = by_name.get("SlidingWindowInferer")
    roi = inferer.get("roi_size") if inferer else None
    if not isinstance(roi, list):
        roi = inp.get("spatial_shape")
    if isinstance(roi, list):
        card["patch_size"] = list(reversed(roi))
    if inferer is not None and "overlap" in inferer:
        card["overlap"] = inferer["overlap"]
    channel_def = inp.get("channel_def", {})
    n_ch = int(inp.get("num_channels", len(channel_def) or 1))
    scale = by_name.get("ScaleIntensityRanged") or by_name.get("ScaleIntensityRange")
    zscore = by_name.get("NormalizeIntensityd") or by_name.get("NormalizeIntensity")
    inputs = []
    for k in range(n_ch):
        name = str(channel_def.get(str(k), "CT" if n_ch == 1 else ""))
        modality = _channel_modality(name)
        item: dict[str, Any] = {"modality": modality or name}
        if scale is not None and modality == "CT":
            if scale.get("b_min", 0.0) != 0.0 or scale.get("b_max", 1.0) != 1.0:
                raise InputError(f"{inf_path}: ScaleIntensityRanged to [b_min, b_max] other "
                                 f"than [0, 1]; give {CARD_FILE} 'inputs'")
            item.update(normalisation="ct-window", window=[scale.get("a_min"),
                                                          scale.get("a_max")])
        elif zscore is not None:
            item["normalisation"] = "zscore"
        inputs.append(item)
    card["inputs"] = inputs
    out_def = out.get("channel_def", {})
    card["labels"] = {str(k): str(v) for k, v in out_def.items() if str(k) != "0"}
    card.update(override)
    missing = [k for k in ("spacing_mm", "patch_size") if k not in card]
    if missing:
        raise InputError(f"{inf_path}: cannot find {' and '.join(missing)} (Spacingd pixdim, "
                         f"SlidingWindowInferer roi_size); give them in {folder / CARD_FILE}")
    return ModelCard.from_json(card, str(meta_path))


def _load_monai(folder: Path) -> LoadedModel:
    card = _monai_card(folder)
    models = folder / "models"
    reverse = (2, 1, 0)  # MONAI arrays are C × x × y × z
    onnx_path, ts_path, pt_path = models / "model.onnx", models / "model.ts", models / "model.pt"
    if onnx_path.is_file():
        return LoadedModel(card, "monai-bundle", folder, (onnx_path,),
                           lambda device: _onnx_predictor(onnx_path, device, reverse))
    if ts_path.is_file():
        def ts_factory(device: str) -> Predictor:
            torch = _import_torch(f"the TorchScript model {ts_path}")
            dev = _torch_device(torch, device)
            net = torch.jit.load(str(ts_path), map_location=dev).eval()
            return _torch_predictor(torch, [net], dev, reverse)
        return LoadedModel(card, "monai-bundle", folder, (ts_path,), ts_factory)
    if pt_path.is_file():
        def pt_factory(device: str) -> Predictor:
            torch = _import_torch(f"the MONAI state dict {pt_path}")
            try:
                from monai.bundle import ConfigParser
            except ImportError as exc:
                raise ModelRuntimeError(f"MONAI is not installed: {pt_path} is a state dict "
                                        "and needs `pip install monai` to build network_def"
                                        ) from exc
            dev = _torch_device(torch, device)
            parser = ConfigParser()
            parser.read_config(str(folder / "configs" / "inference.json"))
            parser["bundle_root"] = str(folder)
            net = parser.get_parsed_content("network_def")
            state = torch.load(pt_path, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
            return _torch_predictor(torch, [net.to(dev).eval()], dev, reverse)
        return LoadedModel(card, "monai-bundle", folder, (pt_path,), pt_factory)
    raise InputError(f"{folder}: MONAI bundle without models/model.onnx, model.ts or model.pt")


# --------------------------------------------------------------------------- entry point

def load_model(path: str | Path, *, folds: list[str] | None = None) -> LoadedModel:
    """Recognise and parse a model folder (see the module docstring for the layouts).

    Example:
        >>> model = load_model("models/autopet-onnx")   # doctest: +SKIP
        >>> model.card.patch_size, model.layout          # doctest: +SKIP
        ((96, 96, 96), 'onnx')
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"--model {folder}: not a directory")
    if (folder / "model.onnx").is_file():
        if not (folder / CARD_FILE).is_file():
            raise InputError(f"{folder}: model.onnx needs a model card {CARD_FILE}")
        return _load_onnx(folder)
    if (folder / "plans.json").is_file() and (folder / "dataset.json").is_file():
        return _load_nnunet(folder, folds)
    if (folder / "configs" / "metadata.json").is_file():
        if not (folder / "configs" / "inference.json").is_file():
            raise InputError(f"{folder}: MONAI bundle without configs/inference.json")
        return _load_monai(folder)
    # An nnU-Net results folder one level up (DatasetXXX/<Trainer__Plans__config>/).
    subs = [p for p in folder.iterdir() if p.is_dir() and (p / "plans.json").is_file()]
    if len(subs) == 1:
        return _load_nnunet(subs[0], folds)
    raise InputError(f"{folder}: not a model folder (expected model.onnx + {CARD_FILE}, an "
                     "nnU-Net v2 folder with plans.json, dataset.json and fold_<k>/"
                     "checkpoint_final.pth, or a MONAI bundle with configs/metadata.json)")
