"""Shared fixtures: a micro DUST (every code path of the tiny preset, a fraction of its size) so the suite runs
in well under a minute on two cores."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch

from models.toolchain.config import DenoiserConfig, ModelConfig, TINY_EMBODIMENTS, VLMConfig
from models.toolchain.data.synthetic import vocabulary_texts
from models.toolchain.model import DustPolicy, randomize_zero_init
from models.toolchain.tokenizer import WordTokenizer

REPO = Path(__file__).resolve().parents[3]
TINY_PACKAGE = REPO / "models" / "dust-tiny" / "1"
TINY_FIXTURES = REPO / "test" / "fixtures" / "dust-tiny"

warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)


def micro_config(vocab_size: int, **denoiser_overrides) -> ModelConfig:
    # 16x16 images, patch 4 -> 4x4 grid -> 2x2 = 4 tokens per view; S = 2 * 4 + 6 = 14 conditioning tokens.
    vlm = VLMConfig(image_size=16, patch_size=4, vision_width=16, vision_layers=1, vision_heads=2, width=32,
                    layers=1, heads=2, max_tokens=6, vocab_size=vocab_size, future_dim=8)
    den = DenoiserConfig(hidden=32, heads=2, mmdit_layers=2, dit_layers=1, mlp_ratio=2.0, timestep_dim=16,
                         timestep_freq_dim=16, action_horizon=4, action_dim=10, state_dim=12, future_tokens=4,
                         future_dim=8, cond_dim=32, cond_tokens=14)
    den = dataclasses.replace(den, **denoiser_overrides)
    return ModelConfig(name="dust-micro", vlm=vlm, denoiser=den, embodiments=TINY_EMBODIMENTS)


@pytest.fixture(scope="session")
def tokenizer() -> WordTokenizer:
    return WordTokenizer.build(vocabulary_texts())


@pytest.fixture
def micro_cfg(tokenizer) -> ModelConfig:
    return micro_config(len(tokenizer))


@pytest.fixture
def micro_policy(micro_cfg) -> DustPolicy:
    """Random weights with the zero initialisations replaced by noise, so every path carries signal."""
    torch.manual_seed(0)
    policy = DustPolicy(micro_cfg).eval()
    randomize_zero_init(policy, std=0.2, generator=torch.Generator().manual_seed(1))
    return policy


def random_inputs(cfg: ModelConfig, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    v, d = cfg.vlm, cfg.denoiser
    pixels = torch.randn((batch, len(v.cameras), 3, v.image_size, v.image_size), generator=g)
    ids = torch.randint(2, v.vocab_size, (batch, v.max_tokens), generator=g)
    mask = torch.ones((batch, v.max_tokens), dtype=torch.int64)
    mask[:, v.max_tokens // 2 :] = 0
    ids = ids * mask
    den = {
        "state": torch.randn((batch, d.state_dim), generator=g),
        "actions": torch.randn((batch, d.action_horizon, d.action_dim), generator=g),
        "future": torch.randn((batch, d.future_tokens, d.future_dim), generator=g),
        "tau_a": torch.rand((batch,), generator=g),
        "tau_o": torch.rand((batch,), generator=g),
        "embodiment_id": torch.arange(batch, dtype=torch.int64) % d.num_embodiments,
    }
    return pixels, ids, mask, den


def onnxruntime_vs_pytorch(package_dir: Path, policy: DustPolicy, batch: int, seed: int = 0):
    """(ONNX Runtime output, PyTorch output) for vl_embs, obs_embedding, v_actions, v_future of a package's graphs on
    the same random inputs; skips the calling test where Python onnxruntime is not installed."""
    ort = pytest.importorskip("onnxruntime")
    pixels, ids, mask, den = random_inputs(policy.cfg, batch, seed)
    with torch.no_grad():
        vl, obs = policy.vlm(pixels, ids, mask)
        va, vo = policy.denoiser(vl, **den)
    cpu = ["CPUExecutionProvider"]
    vlm = ort.InferenceSession(str(package_dir / "vlm.onnx"), providers=cpu)
    got = vlm.run(None, {"pixel_values": pixels.numpy(), "input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    denoiser = ort.InferenceSession(str(package_dir / "denoiser.onnx"), providers=cpu)
    got += denoiser.run(None, {"vl_embs": vl.numpy(), **{k: v.numpy() for k, v in den.items()}})
    return list(zip(got, (t.numpy() for t in (vl, obs, va, vo))))

