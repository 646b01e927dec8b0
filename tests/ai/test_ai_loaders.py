"""Model-folder loaders on small synthetic folders in their real layouts: nnU-Net v2
results folder (plans.json, dataset.json, fold_X/checkpoint_final.pth) and MONAI bundle
(configs/metadata.json, configs/inference.json, models/…)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx_models
import pytest
from typer.testing import CliRunner

from oncohybrid.ai.card import Modality, Normalisation
from oncohybrid.ai.loaders import ModelRuntimeError, load_model
from oncohybrid.cli.main import app
from oncohybrid.errors import InputError

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _nnunet_folder(root: Path, *, transpose=(0, 1, 2), channel_names=None) -> Path:
    """Dataset221_AutoPET/nnUNetTrainer__nnUNetPlans__3d_fullres as nnU-Net v2 writes it."""
    folder = root / "Dataset221_AutoPET" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "fold_1").mkdir()
    plans = {
        "dataset_name": "Dataset221_AutoPET", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [3.0, 2.04, 2.04],
        "transpose_forward": list(transpose), "transpose_backward": list(transpose),
        "configurations": {
            "2d": {"patch_size": [192, 160], "spacing": [2.04, 2.04],
                   "normalization_schemes": ["CTNormalization", "ZScoreNormalization"]},
            "3d_fullres": {
                "data_identifier": "nnUNetPlans_3d_fullres", "batch_size": 2,
                "patch_size": [112, 160, 128], "spacing": [3.0, 2.04, 2.0],
                "normalization_schemes": ["CTNormalization", "ZScoreNormalization"],
                "use_mask_for_norm": [False, False],
                "architecture": {"network_class_name":
                                 "dynamic_network_architectures.architectures.unet."
                                 "PlainConvUNet", "arch_kwargs": {"n_stages": 6},
                                 "_kw_requires_import": ["conv_op"]}}},
        "foreground_intensity_properties_per_channel": {
            "0": {"max": 3071.0, "mean": 105.3, "median": 98.0, "min": -1024.0,
                  "percentile_00_5": -785.0, "percentile_99_5": 1290.0, "std": 167.4},
            "1": {"max": 92.1, "mean": 8.9, "median": 6.3, "min": 0.0,
                  "percentile_00_5": 1.2, "percentile_99_5": 41.0, "std": 7.7}},
    }
    dataset = {"channel_names": channel_names or {"0": "CT", "1": "PET"},
               "labels": {"background": 0, "tumor": 1}, "numTraining": 1014,
               "file_ending": ".nii.gz"}
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    (folder / "dataset_fingerprint.json").write_text("{}")
    for f in ("fold_0", "fold_1"):
        (folder / f / "checkpoint_final.pth").write_bytes(b"PK\x03\x04 not a real checkpoint")
    return folder


def test_nnunet_folder_is_parsed_into_a_card(tmp_path):
    folder = _nnunet_folder(tmp_path)
    model = load_model(folder.parent)  # the dataset folder with one trained-model folder
    card = model.card
    assert model.layout == "nnunetv2" and len(model.weights) == 2
    assert card.spacing_mm == (3.0, 2.04, 2.0) and card.patch_size == (112, 160, 128)
    assert [c.modality for c in card.inputs] == [Modality.CT, Modality.PT]
    ct, pt = card.inputs
    assert ct.normalisation is Normalisation.CT_CLIP_ZSCORE
    assert ct.window == (-785.0, 1290.0) and (ct.mean, ct.std) == (105.3, 167.4)
    assert pt.normalisation is Normalisation.ZSCORE and pt.mean is None
    assert card.labels == {1: "tumor"} and card.mirroring == (0, 1, 2)


def test_nnunet_transpose_forward_maps_plans_axes_to_image_axes(tmp_path):
    folder = _nnunet_folder(tmp_path, transpose=(2, 0, 1))
    card = load_model(folder).card
    # network axis k holds image axis transpose[k]: spacing [3, 2.04, 2] → image (2.04, 2, 3)
    assert card.spacing_mm == (2.04, 2.0, 3.0) and card.patch_size == (160, 128, 112)


def test_nnunet_autopet_convention_needs_the_modalities_named(tmp_path):
    folder = _nnunet_folder(tmp_path, channel_names={"0": "CT", "1": "noNorm"})
    with pytest.raises(InputError, match="channel 1 'noNorm' is neither CT nor PET"):
        load_model(folder)
    (folder / "oncohybrid-model.json").write_text(json.dumps(
        {"inputs": [{"modality": "CT"}, {"modality": "PT"}]}))
    assert load_model(folder).card.inputs[1].modality is Modality.PT


@pytest.mark.skipif(HAS_TORCH, reason="checks the message shown when torch is absent")
def test_nnunet_checkpoint_without_torch_says_so(tmp_path):
    model = load_model(_nnunet_folder(tmp_path))
    with pytest.raises(ModelRuntimeError, match=r"^PyTorch is not installed: .*checkpoint"):
        model.predictor()


@pytest.mark.skipif(HAS_TORCH, reason="checks the message shown when torch is absent")
def test_segment_cli_with_an_nnunet_folder_without_torch(tmp_path, phantom_tp):
    folder = _nnunet_folder(tmp_path)
    r = CliRunner().invoke(app, ["segment", str(phantom_tp[0]), "--ct", str(phantom_tp[1]),
                                 "--model", str(folder), "--out", str(tmp_path / "s.dcm")])
    assert r.exit_code == 1 and "PyTorch is not installed" in r.output


def _monai_bundle(root: Path, weights: str, onnx_bytes: bytes | None = None) -> Path:
    """A MONAI bundle in the Model Zoo layout (2-channel CT + PET, autoPET-baseline-like)."""
    b = root / "autopet_bundle"
    (b / "configs").mkdir(parents=True)
    (b / "models").mkdir()
    (b / "docs").mkdir()
    (b / "docs" / "README.md").write_text("test bundle")
    (b / "LICENSE").write_text("Apache-2.0")
    meta = {"version": "0.1.0", "monai_version": "1.6.1", "pytorch_version": "2.5.0",
            "name": "autoPET lesions", "task": "lesion segmentation",
            "network_data_format": {
                "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT",
                                     "num_channels": 2, "spatial_shape": [128, 128, 32],
                                     "dtype": "float32", "value_range": [0, 1],
                                     "is_patch_data": True,
                                     "channel_def": {"0": "CT", "1": "PET"}}},
                "outputs": {"pred": {"type": "image", "format": "segmentation",
                                     "num_channels": 2, "spatial_shape": [128, 128, 32],
                                     "dtype": "float32", "value_range": [0, 1],
                                     "channel_def": {"0": "background", "1": "lesion"}}}}}
    inference = {
        "bundle_root": ".", "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "network_def": {"_target_": "UNet", "spatial_dims": 3, "in_channels": 2,
                        "out_channels": 2, "channels": [16, 32, 64], "strides": [2, 2]},
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": ["ct", "pet"]},
            {"_target_": "EnsureChannelFirstd", "keys": ["ct", "pet"]},
            {"_target_": "Spacingd", "keys": ["ct", "pet"], "pixdim": [2.0, 2.0, 3.0],
             "mode": ["bilinear", "bilinear"]},
            {"_target_": "ScaleIntensityRanged", "keys": "ct", "a_min": -100, "a_max": 250,
             "b_min": 0.0, "b_max": 1.0, "clip": True},
            {"_target_": "ConcatItemsd", "keys": ["ct", "pet"], "name": "image"}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [128, 128, 32],
                    "sw_batch_size": 4, "overlap": 0.25},
    }
    (b / "configs" / "metadata.json").write_text(json.dumps(meta))
    (b / "configs" / "inference.json").write_text(json.dumps(inference))
    if weights == "onnx":
        assert onnx_bytes is not None
        (b / "models" / "model.onnx").write_bytes(onnx_bytes)
    else:
        (b / "models" / f"model.{weights}").write_bytes(b"PK\x03\x04 not real")
    return b


def test_monai_bundle_is_parsed_with_reversed_axes(tmp_path):
    model = load_model(_monai_bundle(tmp_path, "ts"))
    card = model.card
    assert model.layout == "monai-bundle" and model.weights[0].name == "model.ts"
    assert card.spacing_mm == (3.0, 2.0, 2.0)        # pixdim (x, y, z) reversed
    assert card.patch_size == (32, 128, 128) and card.overlap == 0.25
    ct, pt = card.inputs
    assert ct.modality is Modality.CT and ct.normalisation is Normalisation.CT_WINDOW
    assert ct.window == (-100.0, 250.0)
    assert pt.modality is Modality.PT and pt.normalisation is Normalisation.NONE
    assert card.labels == {1: "lesion"}


@pytest.mark.skipif(HAS_TORCH, reason="checks the message shown when torch is absent")
@pytest.mark.parametrize("weights", ["ts", "pt"])
def test_monai_torch_weights_without_torch_say_so(tmp_path, weights):
    model = load_model(_monai_bundle(tmp_path, weights))
    with pytest.raises(ModelRuntimeError, match=r"^PyTorch is not installed: "):
        model.predictor()


def test_monai_bundle_with_onnx_weights_runs_in_x_y_z_order(tmp_path):
    """An anisotropic image (z, y, x) = (7, 9, 11) reaches the model as (x, y, z)."""
    shapes = []
    model = load_model(_monai_bundle(tmp_path, "onnx",
                                     onnx_models.suv_threshold_model(2, pet_channel=1)))
    predict = model.predictor("cpu")
    from oncohybrid.ai.runner import segment_arrays

    def spy(x):
        shapes.append(x.shape)
        return predict(x)

    rng = np.random.default_rng(3)
    pet = rng.uniform(0, 5, size=(7, 9, 11)).astype(np.float32)
    ct = rng.uniform(-200, 200, size=pet.shape).astype(np.float32)
    labels = segment_arrays(model.card, spy, [ct, pet], (3.0, 2.0, 2.0))
    np.testing.assert_array_equal(labels == 1, pet > 2.5)
    assert shapes[0] == (1, 2, 32, 128, 128)  # padded patch in (z, y, x) before the transpose


def test_folder_matching_no_layout_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(InputError, match="not a model folder"):
        load_model(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(InputError, match="model card oncohybrid-model.json"):
        load_model(tmp_path)
