"""Export round trip and package validity (docs/model-package.md)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from models.toolchain.data import generate_dataset, normalization_stats
from models.toolchain.onnx_export import declared_signature, graph_signature
from models.toolchain.package import load_package, validate_package, write_package
from models.toolchain.tokenizer import PAD_ID, UNK_ID, WordTokenizer

from .conftest import TINY_PACKAGE, onnxruntime_vs_pytorch, random_inputs

# The TypeScript view of the manifest (src/model/manifest.ts): every key it declares, per level.
MANIFEST_KEYS = {
    "format_version", "name", "version", "description", "architecture", "image", "cameras", "text",
    "conditioning", "action", "state", "future", "sampling", "embodiments", "training", "files",
}
NESTED_KEYS = {
    "image": {"height", "width", "mean", "std", "pixel_dtype"},
    "text": {"max_tokens", "tokenizer", "prompt_template"},
    "conditioning": {"tokens", "dim"},
    "action": {"horizon", "dim"},
    "state": {"dim"},
    "future": {"tokens", "dim"},
    "sampling": {"action_steps", "vision_steps", "max_vision_steps"},
}


@pytest.fixture(scope="module")
def stats():
    return normalization_stats(generate_dataset(2, seed=11, image_size=16))


@pytest.fixture(params=["float32", "float16"])
def exported(request, micro_policy, tokenizer, stats, tmp_path):
    out = tmp_path / "dust-micro" / "3"
    write_package(micro_policy, tokenizer, stats, out, version=3, description="test", training={"steps": 0},
                  weights_dtype=request.param)
    return out, micro_policy, request.param


def test_package_is_valid_and_matches_the_contract(exported):
    out, policy, _ = exported
    assert validate_package(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest) == MANIFEST_KEYS
    for key, keys in NESTED_KEYS.items():
        assert set(manifest[key]) == keys, key
    assert manifest["format_version"] == 1 and manifest["version"] == 3
    for emb in manifest["embodiments"].values():
        assert set(emb) == {"id", "state_dim", "action_dim", "normalization"}
        assert set(emb["normalization"]) == {"state", "action"}
    assert set(manifest["files"]) == {"vlm.onnx", "denoiser.onnx", "tokenizer.json"}
    assert all(v.startswith("sha256:") and len(v) == 7 + 64 for v in manifest["files"].values())
    # Declared graph inputs/outputs: exactly the contract, batch axis named "batch".
    for graph, sig in graph_signature(policy.cfg).items():
        declared = declared_signature(out / f"{graph}.onnx")
        for side in ("inputs", "outputs"):
            assert list(declared[side]) == list(sig[side]), (graph, side)
            for name, (dtype, shape) in sig[side].items():
                assert declared[side][name] == (dtype, ["batch"] + shape[1:]), (graph, name)
        model = onnx.load(str(out / f"{graph}.onnx"))
        assert model.opset_import[0].version == 17


def test_round_trip_restores_the_exact_modules(exported):
    out, policy, dtype = exported
    loaded = load_package(out)["policy"]
    ref = policy.state_dict()
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, ref[k]), k
    pixels, ids, mask, den = random_inputs(policy.cfg, 2)
    with torch.no_grad():
        a = policy.denoiser(policy.vlm(pixels, ids, mask)[0], **den)
        b = loaded.denoiser(loaded.vlm(pixels, ids, mask)[0], **den)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    if dtype == "float16":
        model = onnx.load(str(out / "denoiser.onnx"))
        assert all(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer if i.dims)


def test_digest_mismatch_and_shape_mismatch_are_reported(exported):
    out, _, _ = exported
    with open(out / "tokenizer.json", "a") as fh:
        fh.write(" ")
    assert any("tokenizer.json: sha256" in p for p in validate_package(out))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["future"]["tokens"] += 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    problems = validate_package(out)
    assert any("obs_embedding" in p for p in problems) and any("v_future" in p for p in problems)


def test_onnx_runtime_parity_when_available(exported):
    """ONNX Runtime vs PyTorch (the CI machine has no Python onnxruntime; test/model-parity.test.ts checks the
    shipped package with onnxruntime-node)."""
    out, policy, _ = exported
    for got, want in onnxruntime_vs_pytorch(out, policy, 5):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_tokenizer_json_format(tokenizer, tmp_path):
    tokenizer.save(tmp_path / "tokenizer.json")
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    assert data["model"]["type"] == "WordLevel" and data["model"]["unk_token"] == "[UNK]"
    assert data["model"]["vocab"]["[PAD]"] == PAD_ID == 0 and data["model"]["vocab"]["[UNK]"] == UNK_ID == 1
    assert data["normalizer"] == {"type": "Lowercase"} and data["pre_tokenizer"] == {"type": "Whitespace"}
    assert data["post_processor"] is None and data["padding"] is None and data["truncation"] is None
    tok = WordTokenizer.load(tmp_path / "tokenizer.json")
    ids = tok.encode("Push the RED block left, purple")
    assert ids[:4] == [tok.vocab["push"], tok.vocab["the"], tok.vocab["red"], tok.vocab["block"]]
    assert ids[-2:] == [UNK_ID, UNK_ID]  # "," and the unknown word
    padded, mask = tok.encode_padded("push the red block", 6)
    assert list(mask) == [1, 1, 1, 1, 0, 0] and list(padded[4:]) == [0, 0]


def test_committed_tiny_package_is_valid():
    assert validate_package(TINY_PACKAGE) == [], "models/dust-tiny/1 must validate (rebuild with build-tiny)"
    manifest = json.loads((TINY_PACKAGE / "manifest.json").read_text())
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["cameras"] == ["front", "wrist"]
    assert {e["id"] for e in manifest["embodiments"].values()} == {0, 1}


def test_self_cross_pattern_exports_and_round_trips(tokenizer, stats, tmp_path):
    from models.toolchain.model import DustPolicy, randomize_zero_init

    from .conftest import micro_config

    torch.manual_seed(0)
    policy = DustPolicy(micro_config(len(tokenizer), attention_pattern="self_cross")).eval()
    randomize_zero_init(policy, 0.2, torch.Generator().manual_seed(0))
    out = tmp_path / "m" / "1"
    write_package(policy, tokenizer, stats, out, version=1, description="t", training={}, weights_dtype="float32")
    assert validate_package(out) == []
    loaded = load_package(out)
    assert loaded["config"].denoiser.attention_pattern == "self_cross"
    pixels, ids, mask, den = random_inputs(policy.cfg, 2)
    with torch.no_grad():
        a = policy.denoiser(policy.vlm(pixels, ids, mask)[0], **den)
        b = loaded["policy"].denoiser(loaded["policy"].vlm(pixels, ids, mask)[0], **den)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_external_data_layout_round_trips(micro_policy, tokenizer, stats, tmp_path):
    """The path paper-size graphs take (> 2 GiB): weights in one `<graph>.onnx.data` per graph, listed with
    their digests in manifest.files."""
    out = tmp_path / "big" / "1"
    manifest = write_package(micro_policy, tokenizer, stats, out, version=1, description="t", training={},
                             external_data=True)
    assert set(manifest["files"]) == {"vlm.onnx", "vlm.onnx.data", "denoiser.onnx", "denoiser.onnx.data", "tokenizer.json"}
    assert sorted(p.name for p in out.iterdir()) == sorted(list(manifest["files"]) + ["manifest.json"])
    assert validate_package(out) == []
    loaded = load_package(out)["policy"]
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, micro_policy.state_dict()[k]), k


def test_external_data_layout_runs_in_onnxruntime_when_available(micro_policy, tokenizer, stats, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "big" / "1"
    write_package(micro_policy, tokenizer, stats, out, version=1, description="t", training={}, external_data=True)
    pixels, ids, mask, _ = random_inputs(micro_policy.cfg, 2)
    with torch.no_grad():
        vl, _ = micro_policy.vlm(pixels, ids, mask)
    got = ort.InferenceSession(str(out / "vlm.onnx"), providers=["CPUExecutionProvider"]).run(
        ["vl_embs"], {"pixel_values": pixels.numpy(), "input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    np.testing.assert_allclose(got[0], vl.numpy(), atol=1e-4)


def test_frozen_conv_encoder_exports_and_round_trips(tokenizer, stats, tmp_path):
    """A policy on the push task's frozen conv encoder (vision.py): the package restores the same modules, its
    manifest says so, and obs_embedding is still the world-model target of the main camera."""
    import dataclasses

    from models.toolchain.model import DustPolicy, randomize_zero_init
    from models.toolchain.train import world_model_target
    from models.toolchain.vision import encoder_vlm_config

    from .conftest import micro_config

    base = micro_config(len(tokenizer))
    vlm = dataclasses.replace(encoder_vlm_config(base.vlm, "conv"), patch_size=4, vision_width=8, future_dim=8)
    den = dataclasses.replace(base.denoiser, future_tokens=vlm.future_tokens, future_dim=8, cond_tokens=vlm.cond_tokens)
    torch.manual_seed(0)
    policy = DustPolicy(dataclasses.replace(base, vlm=vlm, denoiser=den)).eval()
    randomize_zero_init(policy, 0.2, torch.Generator().manual_seed(0))
    out = tmp_path / "m" / "1"
    write_package(policy, tokenizer, stats, out, version=1, description="t", training={}, weights_dtype="float32")
    assert validate_package(out) == []
    loaded = load_package(out)
    assert loaded["config"].vlm == vlm
    pixels, ids, mask, den_in = random_inputs(policy.cfg, 2)
    with torch.no_grad():
        vl, obs = policy.vlm(pixels, ids, mask)
        vl2, obs2 = loaded["policy"].vlm(pixels, ids, mask)
        a = policy.denoiser(vl, **den_in)
        b = loaded["policy"].denoiser(vl2, **den_in)
    torch.testing.assert_close((vl2, obs2), (vl, obs), atol=0, rtol=0)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    torch.testing.assert_close(obs, world_model_target(policy, pixels[:, 0]), atol=1e-6, rtol=0)
