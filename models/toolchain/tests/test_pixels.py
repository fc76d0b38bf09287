"""uint8 pixel_values: a VLM that takes the resized pixels and normalises them itself (onnx_export.take_uint8_pixels,
docs/model-package.md "Images") computes what the float32 VLM of the same weights computes on host-normalised rows."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from models.toolchain.data import generate_dataset, normalization_stats
from models.toolchain.onnx_export import PIXELS_NORMALIZED, cuda_graph_hazards, declared_signature, pixel_dtype
from models.toolchain.package import (
    load_package,
    validate_package,
    write_half_package,
    write_package,
    write_pixels_package,
)

from .conftest import TINY_PACKAGE, random_inputs


@pytest.fixture(scope="module")
def stats():
    return normalization_stats(generate_dataset(2, seed=11, image_size=16))


@pytest.fixture
def pair(micro_policy, tokenizer, stats, tmp_path):
    """The same weights exported twice: float32 pixels and uint8 pixels."""
    out = {}
    for pixels in ("float32", "uint8"):
        out[pixels] = tmp_path / pixels / "dust-micro" / "1"
        write_package(micro_policy, tokenizer, stats, out[pixels], version=1, description="test", training={"steps": 0},
                      pixels=pixels)
    return out


def images(cfg, batch: int, seed: int = 0) -> np.ndarray:
    """Resized camera pixels as the server's decode threads produce them: uint8 [B, V, 3, H, W], every value 0..255
    present."""
    v = cfg.vlm
    shape = (batch, len(v.cameras), 3, v.image_size, v.image_size)
    flat = np.random.default_rng(seed).integers(0, 256, size=int(np.prod(shape)), dtype=np.uint8)
    flat[:256] = np.arange(256, dtype=np.uint8)
    return flat.reshape(shape)


def host_normalized(pixels: np.ndarray, mean, std) -> np.ndarray:
    """The float32 row the server builds for a float32-pixel package: (x / 255 - mean[c]) / std[c] in float64, rounded
    once (src/preprocess/images.ts normalizationTable)."""
    m = np.asarray(mean, dtype=np.float64).reshape(1, 1, 3, 1, 1)
    s = np.asarray(std, dtype=np.float64).reshape(1, 1, 3, 1, 1)
    return ((pixels.astype(np.float64) / 255.0 - m) / s).astype(np.float32)


def run_pixel_prefix(model: onnx.ModelProto, pixels: np.ndarray) -> np.ndarray:
    """Interprets, in float32 numpy, the nodes of a uint8-pixel VLM up to the tensor the float32 VLM takes as its
    input; fails on an op it does not know, so a rewrite that grows a new op must be taught here."""
    values = {"pixel_values": pixels, **{t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name.startswith("pixel_values::")}}
    for node in model.graph.node:
        if PIXELS_NORMALIZED in values:
            break
        a = [values[i] for i in node.input]
        if node.op_type == "Cast":
            to = next(attr.i for attr in node.attribute if attr.name == "to")
            assert to == onnx.TensorProto.FLOAT
            out = a[0].astype(np.float32)
        elif node.op_type == "Mul":
            out = (a[0] * a[1]).astype(np.float32)
        elif node.op_type == "Add":
            out = (a[0] + a[1]).astype(np.float32)
        else:
            raise AssertionError(f"unexpected {node.op_type} before {PIXELS_NORMALIZED}")
        values[node.output[0]] = out
    return values[PIXELS_NORMALIZED]


def test_manifest_and_graph_agree_on_the_pixel_dtype(pair):
    for pixels, out in pair.items():
        assert validate_package(out) == []
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["image"]["pixel_dtype"] == pixels
        assert pixel_dtype(out / "vlm.onnx") == pixels
        shape = declared_signature(out / "vlm.onnx")["inputs"]["pixel_values"][1]
        assert shape[0] == "batch" and shape[2] == 3


def test_uint8_vlm_computes_the_float32_vlm_on_normalised_pixels(pair, micro_policy):
    cfg = micro_policy.cfg
    f32 = onnx.load(str(pair["float32"] / "vlm.onnx"))
    u8 = onnx.load(str(pair["uint8"] / "vlm.onnx"))
    # Beyond the prefix the graphs are the same nodes and weights: only what they read as pixels differs.
    prefix = [n for n in u8.graph.node if n.name.startswith("pixel_values::")]
    assert [n.op_type for n in prefix] == ["Cast", "Mul", "Add"]
    rest = [n for n in u8.graph.node if not n.name.startswith("pixel_values::")]
    renamed = [[PIXELS_NORMALIZED if i == "pixel_values" else i for i in n.input] for n in f32.graph.node]
    assert [list(n.input) for n in rest] == renamed
    assert [(n.op_type, list(n.output)) for n in rest] == [(n.op_type, list(n.output)) for n in f32.graph.node]
    weights = {t.name: numpy_helper.to_array(t) for t in u8.graph.initializer if not t.name.startswith("pixel_values::")}
    assert set(weights) == {t.name for t in f32.graph.initializer}

    pixels = images(cfg, 3)
    normalized = run_pixel_prefix(u8, pixels)
    host = host_normalized(pixels, cfg.image_mean, cfg.image_std)
    np.testing.assert_allclose(normalized, host, rtol=0, atol=1e-6)
    _, ids, mask, _ = random_inputs(cfg, 3)
    with torch.no_grad():
        got = micro_policy.vlm(torch.from_numpy(normalized), ids, mask)
        want = micro_policy.vlm(torch.from_numpy(host), ids, mask)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=0, atol=1e-5)


def test_onnx_runtime_gives_the_same_vlm_outputs_when_available(pair, micro_policy):
    """The two packages' VLMs in ONNX Runtime (the CI machine has no Python onnxruntime; test/pixels-uint8.test.ts runs
    them in onnxruntime-node)."""
    ort = pytest.importorskip("onnxruntime")
    cfg = micro_policy.cfg
    pixels = images(cfg, 3)
    _, ids, mask, _ = random_inputs(cfg, 3)
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    run = lambda path, px: ort.InferenceSession(str(path / "vlm.onnx"), providers=["CPUExecutionProvider"]).run(None, {**feeds, "pixel_values": px})
    for g, w in zip(run(pair["uint8"], pixels), run(pair["float32"], host_normalized(pixels, cfg.image_mean, cfg.image_std))):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


def test_the_normalisation_adds_no_cuda_graph_hazard(pair):
    f32, u8 = (cuda_graph_hazards(onnx.load(str(pair[p] / "vlm.onnx"))) for p in ("float32", "uint8"))
    assert u8 == f32


def test_validate_reports_a_manifest_that_disagrees_with_the_graph(pair):
    out = pair["uint8"]
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["image"]["pixel_dtype"] = "float32"
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert any("pixel_values: dtype uint8 != float32" in p for p in validate_package(out))
    del manifest["image"]["pixel_dtype"]  # absent: float32, as packages written before the field
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert any("pixel_values: dtype uint8 != float32" in p for p in validate_package(out))
    manifest["image"]["pixel_dtype"] = "uint8"
    manifest["image"]["mean"] = [0.4, 0.5, 0.5]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert validate_package(out) == ["vlm.onnx pixel_values::shift does not match the manifest's image mean/std"]


def test_pixels_variant_of_the_shipped_package(tmp_path):
    out = tmp_path / "dust-tiny" / "1"
    manifest = write_pixels_package(TINY_PACKAGE, out)
    assert validate_package(out) == []
    assert manifest["image"]["pixel_dtype"] == "uint8"
    src = json.loads((TINY_PACKAGE / "manifest.json").read_text())
    assert manifest["files"]["denoiser.onnx"] == src["files"]["denoiser.onnx"]
    assert manifest["files"]["vlm.onnx"] != src["files"]["vlm.onnx"]
    # The weights stay where load_package finds them.
    loaded = load_package(out)["policy"]
    reference = load_package(TINY_PACKAGE)["policy"]
    for (name, a), (_, b) in zip(loaded.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="does not take float32"):
        write_pixels_package(out, tmp_path / "again" / "1")
    # In place, as scripts/gpu/torch_bench.py converts the packages `half` made.
    in_place = tmp_path / "copy" / "dust-tiny" / "1"
    shutil.copytree(TINY_PACKAGE, in_place)
    assert write_pixels_package(in_place, in_place)["files"] == manifest["files"]
    assert validate_package(in_place) == []
    with pytest.raises(ValueError, match="float16 first"):
        write_half_package(out, tmp_path / "half" / "1")


def test_uint8_pixels_with_external_data(micro_policy, tokenizer, stats, tmp_path):
    out = tmp_path / "dust-micro" / "2"
    write_package(micro_policy, tokenizer, stats, out, version=2, description="test", training={"steps": 0},
                  external_data=True, pixels="uint8")
    assert validate_package(out) == []
    assert (out / "vlm.onnx.data").exists()
    assert pixel_dtype(out / "vlm.onnx") == "uint8"
    loaded = load_package(out)["policy"]
    for (name, a), (_, b) in zip(loaded.state_dict().items(), micro_policy.state_dict().items()):
        assert torch.equal(a, b), name
