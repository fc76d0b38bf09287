"""Decoupled flow-matching training (docs/sampling.md "Flow matching", paper eq. 3-4, Algorithm 1)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from models.toolchain.config import TrainConfig
from models.toolchain.data import BatchBuilder, generate_dataset, normalization_stats
from models.toolchain.model import DustPolicy, randomize_zero_init
from models.toolchain.train import decoupled_noising, flow_matching_loss, param_groups, sample_tau, warmup_cosine

from .conftest import micro_config, random_inputs


@pytest.fixture(scope="module")
def micro_batch(tokenizer):
    cfg = micro_config(len(tokenizer))
    episodes = generate_dataset(2, seed=5, image_size=16)
    builder = BatchBuilder(cfg, tokenizer, normalization_stats(episodes))
    return cfg, builder.batch(episodes, [(i % len(episodes), (7 * i) % 40) for i in range(8)])


def _grads(policy, batch, tcfg):
    policy.zero_grad(set_to_none=True)
    loss, parts = flow_matching_loss(policy, batch, tcfg, np.random.default_rng(0), torch.Generator().manual_seed(0))
    loss.backward()
    return {n: p.grad for n, p in policy.named_parameters()}, parts


def test_lambda_wm_zero_gives_the_vision_head_no_gradient(micro_batch):
    cfg, batch = micro_batch
    torch.manual_seed(0)
    policy = DustPolicy(cfg)
    randomize_zero_init(policy, 0.1, torch.Generator().manual_seed(0))
    head = [n for n, _ in policy.named_parameters() if n.startswith(("denoiser.vision_decoder.", "denoiser.final_vision."))]
    assert head
    grads, _ = _grads(policy, batch, TrainConfig(lambda_wm=0.0))
    for n in head:
        assert grads[n] is None or torch.count_nonzero(grads[n]) == 0, n
    # ...while the action head does learn, and lambda_WM = 1 does reach the vision head.
    assert torch.count_nonzero(grads["denoiser.action_decoder.weight"]) > 0
    grads, _ = _grads(policy, batch, TrainConfig(lambda_wm=1.0))
    assert all(grads[n] is not None and torch.count_nonzero(grads[n]) > 0 for n in head)


def test_world_model_target_is_stop_gradient(micro_batch):
    """With lambda_WM = 1 and the action term masked out, the obs projection (used only to build the target)
    gets no gradient: the target is computed under no_grad."""
    cfg, batch = micro_batch
    policy = DustPolicy(cfg)
    grads, _ = _grads(policy, dict(batch, action_mask=torch.zeros_like(batch["action_mask"])), TrainConfig())
    assert grads["vlm.obs_proj.weight"] is None


def test_flow_times_are_independent_per_modality():
    tcfg = TrainConfig()
    n = 20000
    actions = torch.randn(n, 2, 3)
    future = torch.randn(n, 4, 5)
    out = decoupled_noising(actions, future, torch.ones(n), tcfg, np.random.default_rng(3), torch.Generator().manual_seed(3))
    ta, to = out["tau_a"], out["tau_o"]
    assert not torch.equal(ta, to)
    assert abs(float(np.corrcoef(ta.numpy(), to.numpy())[0, 1])) < 0.03
    # Each modality is noised with its own time and its own noise (paper eq. 3).
    torch.testing.assert_close(out["noisy_actions"], ta.view(-1, 1, 1) * actions + (1 - ta.view(-1, 1, 1)) * out["eps_a"])
    torch.testing.assert_close(out["noisy_future"], to.view(-1, 1, 1) * future + (1 - to.view(-1, 1, 1)) * out["eps_o"])


def test_each_stream_is_modulated_by_its_own_flow_time(micro_cfg):
    """Without MMDiT blocks the streams never meet: then v_actions may depend on tau_a only and v_future on
    tau_o only. This pins the AdaLN wiring (paper A.2, Fig. 6)."""
    cfg = dataclasses.replace(micro_cfg, denoiser=dataclasses.replace(micro_cfg.denoiser, mmdit_layers=0, dit_layers=2))
    torch.manual_seed(0)
    policy = DustPolicy(cfg).eval()
    randomize_zero_init(policy, 0.2, torch.Generator().manual_seed(0))
    pixels, ids, mask, den = random_inputs(cfg, 3)
    with torch.no_grad():
        vl, _ = policy.vlm(pixels, ids, mask)
        va, vo = policy.denoiser(vl, **den)
        va_o, vo_o = policy.denoiser(vl, **dict(den, tau_o=den["tau_o"] * 0.5))
        va_a, vo_a = policy.denoiser(vl, **dict(den, tau_a=den["tau_a"] * 0.5))
    torch.testing.assert_close(va_o, va)
    torch.testing.assert_close(vo_a, vo)
    assert (vo_o - vo).abs().max() > 1e-4 and (va_a - va).abs().max() > 1e-4


def test_beta_time_distribution_matches_gr00t():
    tau = sample_tau(200000, TrainConfig(), np.random.default_rng(0)).numpy()
    # tau = (s - u) / s, u ~ Beta(1.5, 1): E[u] = 0.6.
    assert abs(tau.mean() - (0.999 - 0.6) / 0.999) < 0.005
    assert tau.min() >= (0.999 - 1.0) / 0.999 - 1e-7 and tau.max() <= 1.0
    uni = sample_tau(200000, TrainConfig(tau_distribution="uniform"), np.random.default_rng(0)).numpy()
    assert abs(uni.mean() - 0.5) < 0.005 and uni.min() >= 0.0


def test_video_only_mode_uses_pure_noise_actions_and_only_the_world_model_term(micro_batch):
    cfg, batch = micro_batch
    tcfg = TrainConfig(mode="video_only", lambda_wm=0.5)
    out = decoupled_noising(batch["actions"], torch.zeros(8, 4, 8), batch["has_actions"], tcfg,
                            np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert torch.count_nonzero(out["tau_a"]) == 0
    torch.testing.assert_close(out["noisy_actions"], out["eps_a"])
    policy = DustPolicy(cfg)
    loss, parts = flow_matching_loss(policy, batch, tcfg, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert parts["loss"] == pytest.approx(0.5 * parts["loss_wm"], rel=1e-6)


def test_no_weight_decay_on_bias_and_norm(micro_cfg):
    policy = DustPolicy(micro_cfg)
    decay, no_decay = param_groups(policy, 1e-5)
    names = {id(p): n for n, p in policy.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert all(not n.endswith("bias") for n in decayed)
    assert "vlm.norm.weight" not in decayed and "denoiser.cond_norm.weight" not in decayed
    assert "denoiser.mmdit.0.streams.0.proj.weight" in decayed
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0


def test_warmup_then_cosine():
    f = warmup_cosine(1000, 0.05)
    assert f(0) == pytest.approx(1 / 50) and f(49) == pytest.approx(1.0)
    assert f(50) == pytest.approx(1.0) and f(525) == pytest.approx(0.5, abs=1e-3) and f(1000) == pytest.approx(0.0)
