"""The action-only baseline (DenoiserConfig.future_stream False; docs/model-package.md, "Action-only packages"): GR00T-N1's
design, which the DUST paper compares against, served beside DUST so that a fleet can A/B the two."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.toolchain.build import apply_overrides, parse_overrides, typed_value
from models.toolchain.data import generate_dataset, normalization_stats
from models.toolchain.data.episodes import BatchBuilder
from models.toolchain.config import TrainConfig
from models.toolchain.model import DustPolicy, randomize_zero_init
from models.toolchain.onnx_export import declared_signature
from models.toolchain.package import load_package, validate_package, write_package
from models.toolchain.sampling import denoiser_field, joint_sample
from models.toolchain.train import flow_matching_loss

from .conftest import micro_config, random_inputs

FUTURE_NAMES = {"obs_embedding", "future", "tau_o", "v_future"}


@pytest.fixture
def action_only(tokenizer) -> DustPolicy:
    torch.manual_seed(0)
    policy = DustPolicy(micro_config(len(tokenizer), future_stream=False)).eval()
    randomize_zero_init(policy, std=0.2, generator=torch.Generator().manual_seed(1))
    return policy


@pytest.fixture(scope="module")
def stats():
    return normalization_stats(generate_dataset(2, seed=11, image_size=16))


def test_the_denoiser_has_no_vision_stream(action_only, tokenizer):
    names = [n for n, _ in action_only.denoiser.named_parameters()]
    assert not [n for n in names if "vision" in n], "an action-only denoiser holds vision-stream weights"
    assert all(len(blk.streams) == 1 for blk in action_only.denoiser.mmdit)
    dust = DustPolicy(micro_config(len(tokenizer)))
    # The same action pathway: every action-stream parameter of DUST exists, with its shape, in the baseline.
    own = dict(action_only.denoiser.named_parameters())
    for name, p in dust.denoiser.named_parameters():
        if "vision" in name or ".streams.1." in name:
            continue
        assert name in own and own[name].shape == p.shape, name


def test_actions_ignore_the_future_and_no_future_is_returned(action_only):
    pixels, ids, mask, den = random_inputs(action_only.cfg, 3)
    with torch.no_grad():
        vl, _ = action_only.vlm(pixels, ids, mask)
        va, vo = action_only.denoiser(vl, **den)
        va_other, _ = action_only.denoiser(vl, **dict(den, future=torch.randn_like(den["future"]), tau_o=den["tau_o"] * 0.3))
        va_none, _ = action_only.denoiser(vl, **dict(den, future=None, tau_o=None))
    assert vo is None
    assert torch.equal(va, va_other) and torch.equal(va, va_none)
    # It still reads what an action policy must: the flow time and the conditioning.
    with torch.no_grad():
        va_tau, _ = action_only.denoiser(vl, **dict(den, tau_a=den["tau_a"] * 0.5))
        va_vl, _ = action_only.denoiser(vl.flip(0), **den)
    assert (va_tau - va).abs().max() > 1e-4 and (va_vl - va).abs().max() > 1e-4


def test_the_reference_sampler_runs_it(action_only):
    pixels, ids, mask, den = random_inputs(action_only.cfg, 2)
    with torch.no_grad():
        vl, _ = action_only.vlm(pixels, ids, mask)
    f = denoiser_field(action_only.denoiser, vl, den["state"], den["embodiment_id"])
    a, o = joint_sample(f, den["actions"], den["future"], 4, 4)
    assert torch.isfinite(a).all() and not torch.equal(a, den["actions"])
    assert torch.equal(o, den["future"])  # nothing moves the initial noise of a stream that does not exist


def test_training_has_no_world_model_term_and_reaches_the_action_weights(action_only, tokenizer, stats):
    episodes = generate_dataset(2, seed=3, image_size=16)
    builder = BatchBuilder(action_only.cfg, tokenizer, stats)
    batch = builder.batch(episodes, [(i, 0) for i in range(len(episodes))])
    action_only.train()
    loss, parts = flow_matching_loss(action_only, batch, TrainConfig(lambda_wm=1.0), np.random.default_rng(0),
                                     torch.Generator().manual_seed(0))
    assert parts["loss_wm"] == 0.0 and parts["loss"] == pytest.approx(parts["loss_action"], rel=1e-6)
    loss.backward()
    decoder = action_only.denoiser.action_decoder.weight.grad
    assert decoder is not None and decoder.abs().sum() > 0


def test_export_writes_the_action_only_contract(action_only, tokenizer, stats, tmp_path):
    out = tmp_path / "dust-micro" / "2"
    write_package(action_only, tokenizer, stats, out, version=2, description="test", training={"steps": 0})
    assert validate_package(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert "future" not in manifest and manifest["architecture"]["family"] == "action-only"
    s = manifest["sampling"]
    assert s["action_steps"] == s["vision_steps"] <= s["max_vision_steps"]
    names = set()
    for graph in ("vlm", "denoiser"):
        sig = declared_signature(out / f"{graph}.onnx")
        names |= set(sig["inputs"]) | set(sig["outputs"])
    assert not names & FUTURE_NAMES and {"v_actions", "vl_embs", "tau_a"} <= names

    # The package rebuilds the same policy, and ONNX Runtime computes its actions.
    loaded = load_package(out)["policy"]
    pixels, ids, mask, den = random_inputs(action_only.cfg, 2)
    with torch.no_grad():
        vl, _ = action_only.vlm(pixels, ids, mask)
        want = action_only.denoiser(vl, **den)[0]
        assert torch.allclose(loaded.denoiser(vl, **den)[0], want, atol=1e-5)
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(out / "denoiser.onnx"), providers=["CPUExecutionProvider"])
    feed = {"vl_embs": vl.numpy(), **{k: v.numpy() for k, v in den.items() if k not in FUTURE_NAMES}}
    (got,) = session.run(None, feed)
    assert np.abs(got - want.numpy()).max() < 1e-4


def test_validate_refuses_an_action_only_package_with_vision_steps(action_only, tokenizer, stats, tmp_path):
    out = tmp_path / "dust-micro" / "2"
    write_package(action_only, tokenizer, stats, out, version=2, description="test", training={"steps": 0})
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["sampling"].update(vision_steps=8, max_vision_steps=8)
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert any("action-only package's vision_steps" in p for p in validate_package(out))
    manifest["sampling"].update(vision_steps=4, max_vision_steps=8)  # a cap on the action steps: fine
    manifest["architecture"]["family"] = "dust"
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert any("architecture.family" in p for p in validate_package(out))


def test_set_parses_booleans_by_name(tokenizer):
    cfg = micro_config(len(tokenizer))
    assert apply_overrides(cfg, parse_overrides(["denoiser.future_stream=false"])).denoiser.future_stream is False
    assert apply_overrides(cfg, parse_overrides(["denoiser.future_stream=True"])).denoiser.future_stream is True
    assert typed_value(3, "5") == 5
    with pytest.raises(ValueError, match="true or false"):
        typed_value(True, "0")
