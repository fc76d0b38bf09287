"""Training-time prefix conditioning for real-time chunking (docs/sampling.md, "Real-time chunking", `condition`):
the action stream reads a flow time per position, committed positions are trained clean at time 1 without a loss,
and the package declares the extra denoiser input and the method."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from models.toolchain.config import TrainConfig
from models.toolchain.data import BatchBuilder, generate_dataset, normalization_stats
from models.toolchain.model import DustPolicy, randomize_zero_init
from models.toolchain.onnx_export import declared_signature
from models.toolchain.package import validate_package, write_package
from models.toolchain import train as train_mod
from models.toolchain.train import commit_prefix, decoupled_noising, flow_matching_loss, prefix_lengths

from .conftest import micro_config, random_inputs


@pytest.fixture(scope="module")
def prefix_setup(tokenizer):
    cfg = micro_config(len(tokenizer), prefix_conditioning=True)
    episodes = generate_dataset(2, seed=5, image_size=16)
    stats = normalization_stats(episodes)
    batch = BatchBuilder(cfg, tokenizer, stats).batch(episodes, [(i % len(episodes), (7 * i) % 40) for i in range(8)])
    torch.manual_seed(0)
    policy = DustPolicy(cfg).eval()
    randomize_zero_init(policy, 0.2, torch.Generator().manual_seed(1))
    return cfg, stats, batch, policy


def test_prefix_lengths_follow_the_configured_share_and_range():
    tcfg = TrainConfig(prefix_fraction=0.5, prefix_max_delay=5)
    d = prefix_lengths(20000, tcfg, np.random.default_rng(0)).numpy()
    assert set(np.unique(d)) == {0, 1, 2, 3, 4, 5}
    assert abs((d > 0).mean() - 0.5) < 0.02
    assert (prefix_lengths(100, dataclasses.replace(tcfg, prefix_fraction=0.0), np.random.default_rng(0)) == 0).all()


def test_committed_positions_are_clean_at_time_one_and_the_rest_untouched():
    tcfg = TrainConfig()
    actions = torch.randn(3, 4, 2)
    future = torch.randn(3, 4, 8)
    has = torch.tensor([1.0, 1.0, 0.0])
    noise = decoupled_noising(actions, future, has, tcfg, np.random.default_rng(0), torch.Generator().manual_seed(0))
    noisy = noise["noisy_actions"].clone()
    committed = commit_prefix(noise, actions, torch.tensor([2, 0, 3]))
    # Row 0: two committed positions; row 1: none; row 2 has no actions, so nothing is committed whatever d says.
    assert committed.tolist() == [[True, True, False, False], [False] * 4, [False] * 4]
    assert torch.equal(noise["noisy_actions"][0, :2], actions[0, :2])
    assert torch.equal(noise["noisy_actions"][0, 2:], noisy[0, 2:])
    assert torch.equal(noise["noisy_actions"][1:], noisy[1:])
    assert noise["action_times"][0].tolist() == [1.0, 1.0, float(noise["tau_a"][0]), float(noise["tau_a"][0])]
    assert torch.equal(noise["action_times"][1], noise["tau_a"][1].expand(4))


def test_committed_positions_carry_no_action_loss(prefix_setup, monkeypatch):
    cfg, _, batch, policy = prefix_setup
    tcfg = TrainConfig()

    def loss_with(d: int) -> float:
        monkeypatch.setattr(train_mod, "prefix_lengths", lambda n, *_: torch.full((n,), d, dtype=torch.int64))
        _, parts = flow_matching_loss(policy, batch, tcfg, np.random.default_rng(0), torch.Generator().manual_seed(0))
        return parts["loss_action"]

    assert loss_with(0) > 0
    # The whole chunk committed: nothing is left to predict.
    assert loss_with(cfg.denoiser.action_horizon) == 0.0


def test_the_action_stream_reads_each_positions_time(prefix_setup):
    cfg, _, _, policy = prefix_setup
    pixels, ids, mask, den = random_inputs(cfg, 2)
    k = cfg.denoiser.action_horizon
    with torch.no_grad():
        vl = policy.vlm(pixels, ids, mask)[0]
        broadcast = policy.denoiser(vl, **den)[0]
        same = policy.denoiser(vl, **den, action_times=den["tau_a"].unsqueeze(1).expand(-1, k))[0]
        times = den["tau_a"].unsqueeze(1).repeat(1, k)
        times[:, 0] = 1.0
        committed = policy.denoiser(vl, **den, action_times=times)[0]
    # Per-position times equal to tau_A are the chunk-wide time; a committed position changes every velocity.
    torch.testing.assert_close(same, broadcast, rtol=0, atol=1e-6)
    assert (committed[:, 1:] - broadcast[:, 1:]).abs().max() > 1e-3


def test_the_package_declares_action_times_and_the_condition_method(prefix_setup, tokenizer, tmp_path):
    cfg, stats, _, policy = prefix_setup
    out = tmp_path / "dust-micro" / "1"
    write_package(policy, tokenizer, stats, out, version=1, description="prefix", training={"steps": 0}, weights_dtype="float32")
    assert validate_package(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["realtime_chunking"] == ["condition", "inpaint", "naive", "ensemble"]
    assert manifest["architecture"]["denoiser"]["prefix_conditioning"] is True
    inputs = declared_signature(out / "denoiser.onnx")["inputs"]
    assert inputs["action_times"] == ("float32", ["batch", cfg.denoiser.action_horizon])
    # The method claimed for a module not trained for it is refused; so is the input without the method (the
    # server feeds action_times only to packages that list condition).
    claimed = json.loads(json.dumps(manifest))
    claimed["architecture"]["denoiser"]["prefix_conditioning"] = False
    (out / "manifest.json").write_text(json.dumps(claimed))
    assert any("prefix_conditioning" in p for p in validate_package(out))
    unlisted = {**manifest, "realtime_chunking": ["inpaint", "naive", "ensemble"]}
    (out / "manifest.json").write_text(json.dumps(unlisted))
    assert any("action_times" in p for p in validate_package(out))
