"""Shapes of both graphs per docs/model-package.md, and the batching properties the server relies on."""

from __future__ import annotations

import pytest
import torch

from models.toolchain.config import paper_config, tiny_config
from models.toolchain.onnx_export import graph_signature

from .conftest import random_inputs


@pytest.mark.parametrize("batch", [1, 3])
def test_vlm_and_denoiser_shapes(micro_policy, batch):
    cfg = micro_policy.cfg
    pixels, ids, mask, den = random_inputs(cfg, batch)
    with torch.no_grad():
        vl, obs = micro_policy.vlm(pixels, ids, mask)
        va, vo = micro_policy.denoiser(vl, **den)
    sig = graph_signature(cfg)
    assert list(vl.shape) == [batch] + sig["vlm"]["outputs"]["vl_embs"][1][1:]
    assert list(obs.shape) == [batch] + sig["vlm"]["outputs"]["obs_embedding"][1][1:]
    assert list(va.shape) == [batch] + sig["denoiser"]["outputs"]["v_actions"][1][1:]
    assert list(vo.shape) == [batch] + sig["denoiser"]["outputs"]["v_future"][1][1:]
    assert torch.isfinite(va).all() and torch.isfinite(vo).all()


def test_rows_are_independent_and_embodiment_is_per_row(micro_policy):
    """The server batches requests of different robots at different steps into one call: each row's output
    must equal what that row gives alone."""
    cfg = micro_policy.cfg
    pixels, ids, mask, den = random_inputs(cfg, 4)
    with torch.no_grad():
        vl, _ = micro_policy.vlm(pixels, ids, mask)
        va, vo = micro_policy.denoiser(vl, **den)
        for i in range(4):
            row = {k: v[i : i + 1] for k, v in den.items()}
            a1, o1 = micro_policy.denoiser(vl[i : i + 1], **row)
            torch.testing.assert_close(a1, va[i : i + 1], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(o1, vo[i : i + 1], atol=1e-5, rtol=1e-5)
        flipped = dict(den, embodiment_id=1 - den["embodiment_id"])
        va2, _ = micro_policy.denoiser(vl, **flipped)
    assert (va2 - va).abs().max() > 1e-3, "the embodiment id must select different encoder/decoder weights"


def test_padded_text_does_not_leak(micro_policy):
    """Tokens under attention_mask = 0 change nothing (the server pads with id 0, others may pad otherwise)."""
    cfg = micro_policy.cfg
    pixels, ids, mask, _ = random_inputs(cfg, 2)
    other = ids.clone()
    other[mask == 0] = 5
    with torch.no_grad():
        a, _ = micro_policy.vlm(pixels, ids, mask)
        b, _ = micro_policy.vlm(pixels, other, mask)
    torch.testing.assert_close(a, b)


def test_obs_embedding_is_the_main_camera_and_matches_the_training_target(micro_policy):
    cfg = micro_policy.cfg
    pixels, ids, mask, _ = random_inputs(cfg, 2)
    with torch.no_grad():
        _, obs = micro_policy.vlm(pixels, ids, mask)
        target = micro_policy.vlm.image_embedding(pixels[:, 0])
        changed = pixels.clone()
        changed[:, 1] = 0.0  # the wrist view
        _, obs2 = micro_policy.vlm(changed, ids, mask)
    torch.testing.assert_close(obs, target)
    torch.testing.assert_close(obs, obs2)


def test_presets_are_consistent():
    tiny = tiny_config(17)
    sig = graph_signature(tiny)
    assert sig["vlm"]["outputs"]["vl_embs"][1] == ["B", 48, 128]
    assert sig["denoiser"]["inputs"]["actions"][1] == ["B", 16, 32]
    assert sig["denoiser"]["inputs"]["state"][1] == ["B", 64]
    paper = paper_config(17)
    d = paper.denoiser
    assert (d.mmdit_layers, d.dit_layers, d.hidden, d.heads, d.hidden // d.heads) == (12, 4, 1536, 32, 48)
    assert (d.future_tokens, d.future_dim, d.cond_dim, d.cond_tokens) == (64, 1152, 1536, 300)


def test_self_cross_pattern_shapes_and_row_independence(tokenizer):
    import dataclasses

    from models.toolchain.model import DustPolicy, randomize_zero_init

    from .conftest import micro_config

    cfg = micro_config(len(tokenizer), attention_pattern="self_cross")
    torch.manual_seed(0)
    policy = DustPolicy(cfg).eval()
    randomize_zero_init(policy, 0.2, torch.Generator().manual_seed(0))
    assert all(blk.mode == "self_cross" for blk in policy.denoiser._blocks())
    pixels, ids, mask, den = random_inputs(cfg, 3)
    with torch.no_grad():
        vl, _ = policy.vlm(pixels, ids, mask)
        va, vo = policy.denoiser(vl, **den)
        a1, _ = policy.denoiser(vl[1:2], **{k: v[1:2] for k, v in den.items()})
        va_other, _ = policy.denoiser(vl.flip(0), **den)
    torch.testing.assert_close(a1, va[1:2], atol=1e-5, rtol=1e-5)
    assert (va_other - va).abs().max() > 1e-4  # the conditioning is read
    assert dataclasses.asdict(cfg.denoiser)["attention_pattern"] == "self_cross"


def test_alternate_pattern_follows_gr00t_interleave(micro_policy):
    modes = [blk.mode for blk in micro_policy.denoiser.mmdit] + [blk.mode for blk in micro_policy.denoiser.dit_action]
    assert modes == ["cross", "self", "cross"]  # 2 MMDiT blocks, then the DiT block at global index 2
