"""The denoiser exports as a graph that ONNX Runtime's CUDA provider can capture and replay (README.md, "Graphs a
CUDA graph can replay"): no per-call node stages its metadata in host memory, in the exported graph and in the graph
ONNX Runtime makes of it when a session loads."""

from __future__ import annotations

import json
import shutil
import subprocess

import onnx
import pytest
import torch
from torch import nn

from models.toolchain.data import generate_dataset, normalization_stats
from models.toolchain.model import DustPolicy, randomize_zero_init
from models.toolchain.model.denoiser import hoisted_linear
from models.toolchain.model.layers import cat_tokens, equal_split, split_factor
from models.toolchain.onnx_export import cuda_graph_hazards, export_graphs
from models.toolchain.package import validate_package, write_package

from .conftest import REPO, micro_config

# ONNX Runtime's optimised graph, as a session at the executor's level (all) writes it: onnxruntime-node from the
# repository's node_modules (the Python onnxruntime is not part of the toolchain's dependencies).
OPTIMIZE = """
const ort = require('onnxruntime-node');
ort.InferenceSession.create(process.argv[1], { graphOptimizationLevel: 'all', optimizedModelFilePath: process.argv[2] })
  .then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
"""


def optimized(path, tmp_path):
    if shutil.which("node") is None or not (REPO / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip("needs node and the repository's onnxruntime-node (npm ci)")
    out = tmp_path / "optimized.onnx"
    subprocess.run(["node", "-e", OPTIMIZE, str(path), str(out)], cwd=REPO, check=True, capture_output=True, timeout=300)
    return onnx.load(str(out))


@pytest.mark.parametrize("lengths", [[1, 4], [5, 4, 3], [3, 3]])
def test_cat_tokens_equals_torch_cat_exactly(lengths):
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn((2, n, 6), generator=g) for n in lengths]
    assert torch.equal(cat_tokens(xs, lengths), torch.cat(xs, dim=1))


@pytest.mark.parametrize("n", [1, 6, 8, 20, 98, 24, 49])
def test_equal_split_matches_torch_split(n):
    y = torch.randn(3, 1, n * 5)
    pieces = equal_split(y, n, 5)
    assert len(pieces) == n and all(torch.equal(a, b) for a, b in zip(pieces, torch.split(y, 5, dim=-1)))


def test_hoisted_linear_pads_counts_that_do_not_factor():
    # 11 pieces (prime, above 8 per Split) come from 12 and leave one unused; the values are the layers' own.
    assert split_factor(11) is None and split_factor(12) is not None
    torch.manual_seed(0)
    layers = [nn.Linear(4, 6 * 3) for _ in range(1)] + [nn.Linear(4, 5 * 3)]
    x = torch.randn(2, 4)
    got = hoisted_linear(x, layers, [6, 5])
    want = [p.unsqueeze(1) for lin, k in zip(layers, [6, 5]) for p in torch.split(lin(x), 3, dim=-1)]
    assert len(got) == 11 and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, want))


def micro_policy_with(tokenizer, **overrides):
    cfg = micro_config(len(tokenizer), **overrides)
    # The micro streams are unequal (1 state + 4 action tokens against 4 future tokens), as in every preset.
    assert cfg.denoiser.state_tokens + cfg.denoiser.action_horizon != cfg.denoiser.future_tokens
    torch.manual_seed(0)
    policy = DustPolicy(cfg).eval()
    randomize_zero_init(policy, 0.2, torch.Generator().manual_seed(1))
    return policy


@pytest.mark.parametrize("overrides", [{}, {"prefix_conditioning": True}, {"attention_pattern": "self_cross"}])
def test_exported_denoiser_has_no_cuda_graph_hazards(tokenizer, tmp_path, overrides):
    files = export_graphs(micro_policy_with(tokenizer, **overrides), tmp_path)
    assert cuda_graph_hazards(onnx.load(str(files["denoiser.onnx"]))) == []


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_onnx_runtime_optimizations_add_no_hazard(micro_policy, tokenizer, tmp_path, dtype):
    # ONNX Runtime's GatherSliceToSplitFusion turns Slices that cover an axis back into one Split of unequal
    # pieces; the float16 conversion adds Casts. The graph a session runs must stay free of hazards too.
    stats = normalization_stats(generate_dataset(2, seed=11, image_size=16))
    out = tmp_path / "pkg" / "1"
    write_package(micro_policy, tokenizer, stats, out, version=1, description="test", training={"steps": 0},
                  weights_dtype=dtype)
    assert cuda_graph_hazards(onnx.load(str(out / "denoiser.onnx"))) == []
    assert cuda_graph_hazards(optimized(out / "denoiser.onnx", tmp_path)) == []
    # The manifest records it (the server captures graphs only then), and validation checks the record.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"]["cuda_graph_hazards"] == []
    assert validate_package(out) == []
    manifest["architecture"]["cuda_graph_hazards"] = ["Concat x: 2 pieces of sizes [1, 16] along axis 1"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert any("cuda_graph_hazards" in p for p in validate_package(out))


def test_the_check_finds_the_hazards_of_the_earlier_export(tmp_path):
    # models/dust-tiny/1 was exported before cat_tokens and equal_split: a Concat and Splits of unequal pieces and
    # a per-call Shape, which ONNX Runtime's optimizations keep.
    path = REPO / "models" / "dust-tiny" / "1" / "denoiser.onnx"
    for hazards in (cuda_graph_hazards(onnx.load(str(path))), cuda_graph_hazards(optimized(path, tmp_path))):
        assert any(h.startswith("Concat /denoiser/Concat:") and "axis 1" in h for h in hazards), hazards
        assert any(h.startswith("Split") and "[768, 768, 768, 256]" in h for h in hazards), hazards
        assert any(h.startswith("Split") and "[17, 16]" in h for h in hazards), hazards
    assert any(h.startswith("Shape") for h in cuda_graph_hazards(onnx.load(str(path))))
