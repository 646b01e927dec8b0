"""Tiny ONNX models built in the tests (onnx.helper), with outputs known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def conv1x1_model(weights: np.ndarray, bias: np.ndarray, *, relu: bool = False) -> bytes:
    """A 1×1×1 3-D convolution ``K × C`` (+ optional ReLU): translation-equivariant, each
    output voxel depends on the input voxel alone. Input ``1 × C × z × y × x`` with free
    spatial dimensions."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, c = weights.shape
    w = numpy_helper.from_array(weights.reshape(k, c, 1, 1, 1).astype(np.float32), "W")
    b = numpy_helper.from_array(bias.astype(np.float32), "B")
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["conv" if relu else "output"],
                              kernel_shape=[1, 1, 1])]
    if relu:
        nodes.append(helper.make_node("Relu", ["conv"], ["output"]))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, "z", "y", "x"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, k, "z", "y", "x"])],
        initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def suv_threshold_model(n_channels: int = 1, pet_channel: int = 0,
                        threshold: float = 2.5) -> bytes:
    """Logits (0, SUV − threshold): argmax is "lesion" exactly where SUV > threshold."""
    w = np.zeros((2, n_channels))
    w[1, pet_channel] = 1.0
    return conv1x1_model(w, np.array([0.0, -threshold]))


def write_onnx_folder(folder: Path, model: bytes, card: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(model)
    (folder / "oncohybrid-model.json").write_text(json.dumps(card))
    return folder
