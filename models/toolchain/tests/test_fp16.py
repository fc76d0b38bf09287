"""Half-precision packages (fp16.py): float16 weights and computation, float32 inputs and outputs."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from models.toolchain.data import generate_dataset, normalization_stats
from models.toolchain.fp16 import FLOAT, FLOAT16, convert_to_float16, float16_share, float32_island, tensor_types
from models.toolchain.package import load_package, validate_package, write_half_package, write_package

from .conftest import TINY_PACKAGE, onnxruntime_vs_pytorch

FP16_REL_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def stats():
    return normalization_stats(generate_dataset(2, seed=11, image_size=16))


@pytest.fixture(params=[False, True], ids=["embedded", "external-data"])
def half(request, micro_policy, tokenizer, stats, tmp_path):
    out = tmp_path / "dust-micro" / "1"
    write_package(micro_policy, tokenizer, stats, out, version=1, description="test", training={"steps": 0},
                  precision="float16", external_data=request.param)
    return out, micro_policy


def _consumers_of(model, op_types):
    return [n for n in model.graph.node if n.op_type in op_types]


def test_half_package_keeps_the_float32_contract_and_records_its_precision(half):
    out, _ = half
    assert validate_package(out) == []  # declared inputs/outputs are float32, digests match
    arch = json.loads((out / "manifest.json").read_text())["architecture"]
    assert arch["precision"] == "float16" and arch["weights_dtype"] == "float16"
    for graph in ("vlm", "denoiser"):
        model = onnx.load(str(out / f"{graph}.onnx"))
        assert float16_share(model) == 1.0, graph
        assert all(vi.type.tensor_type.elem_type != FLOAT16 for vi in list(model.graph.input) + list(model.graph.output))


def test_timestep_sinusoids_and_the_mask_bias_stay_float32(half):
    out, _ = half
    den = onnx.load(str(out / "denoiser.onnx"))
    types = tensor_types(den)
    trig = _consumers_of(den, {"Sin", "Cos"})
    assert trig and all(types[n.input[0]] == FLOAT for n in trig)
    # Most of the compute is float16: every MatMul reads float16 operands.
    matmuls = _consumers_of(den, {"MatMul", "Gemm"})
    assert matmuls and all(types[n.input[0]] == FLOAT16 for n in matmuls)
    vlm = onnx.load(str(out / "vlm.onnx"))
    vtypes = tensor_types(vlm)
    big = [n for n in vlm.graph.node if n.op_type == "Constant" and n.attribute[0].t.data_type == FLOAT
           and np.abs(onnx.numpy_helper.to_array(n.attribute[0].t)).max() > 65504]
    assert big, "the VLM's -1e9 mask bias is a float32 constant"
    softmax = _consumers_of(vlm, {"Softmax"})
    assert softmax and all(vtypes[n.input[0]] == FLOAT16 for n in softmax)


def test_half_package_loads_back_into_the_float16_rounded_policy(half):
    out, policy = half
    loaded = load_package(out)["policy"]
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, policy.state_dict()[k].half().float()), k


def test_the_walk_back_from_sin_stops_at_integer_tensors():
    # y = Sin(Cast(Shape(x)) * w): Shape's output is int64, so x's producer (a MatMul) is not pulled into float32.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3], np.eye(3, dtype=np.float32).ravel().tolist())
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Shape", ["h"], ["s"]),
        helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        helper.make_node("Sin", ["sf"], ["y"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)])
    island = float32_island(model, tensor_types(model))
    assert {model.graph.node[i].op_type for i in island} == {"Sin", "Cast"}
    converted = convert_to_float16(model)
    onnx.checker.check_model(converted, full_check=True)
    assert [i.data_type for i in converted.graph.initializer] == [FLOAT16]


def test_half_of_the_shipped_tiny_package_is_valid(tmp_path):
    out = tmp_path / "dust-tiny" / "1"
    write_half_package(TINY_PACKAGE, out)
    assert validate_package(out) == []
    with pytest.raises(ValueError, match="already a float16"):
        write_half_package(out, tmp_path / "again")


def test_float16_graphs_track_pytorch_in_onnxruntime(half):
    """Where Python onnxruntime is installed (the GPU host's torch 2.x environment): the float16 graphs against the
    float32 PyTorch modules with the same (rounded) weights, relative L2 error within FP16_REL_TOLERANCE (the bound
    of test/model-fp16.test.ts, which says why)."""
    out, policy = half
    for got, want in onnxruntime_vs_pytorch(out, policy, 3):
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < FP16_REL_TOLERANCE
