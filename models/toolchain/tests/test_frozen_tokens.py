"""Training on a frozen vision tower from its tokens, computed once for every frame (train.FrozenTokens): the
batches and the loss are the ones built from pixels, up to float rounding, and a tower that trains is refused."""
# The tensors live on the training device; these tests run on the CPU (the same gathers on CUDA are not run here).

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

from models.toolchain.config import TrainConfig
from models.toolchain.data.episodes import BatchBuilder, all_windows, normalization_stats
from models.toolchain.model import DustPolicy, randomize_zero_init
from models.toolchain.tokenizer import WordTokenizer
from models.toolchain.train import FrozenTokens, flow_matching_loss, train

from .scenes import pusher_episodes
from .test_world_model import FROM_SCRATCH, FROZEN, K

ITEMS = [(0, 0), (3, 5), (7, 2), (11, 20)]  # the last window's future frame is past the end: the last frame


def picks(episodes):
    """ITEMS as indices into all_windows, what FrozenTokens.batch takes."""
    windows = all_windows(episodes)
    return [windows.index(item) for item in ITEMS]


def make(cfg, seed: int = 0):
    episodes = pusher_episodes(12)
    tok = WordTokenizer.build([ep.instruction for ep in episodes])
    torch.manual_seed(seed)
    policy = DustPolicy(cfg.with_vocab(len(tok)))
    randomize_zero_init(policy, 0.02, torch.Generator().manual_seed(seed))  # non-zero velocity heads, so the loss depends on everything
    return episodes, policy, BatchBuilder(policy.cfg, tok, normalization_stats(episodes))


def test_token_batches_are_the_pixel_batches_through_the_tower() -> None:
    episodes, policy, builder = make(FROZEN)
    assert episodes[11].length - 1 < 20 + K
    tokens = FrozenTokens(policy, builder, episodes, chunk=7, log_stream=io.StringIO())
    cached, pixels = tokens.batch(picks(episodes)), builder.batch(episodes, ITEMS)
    assert set(cached) == (set(pixels) - {"pixel_values", "future_pixels"}) | {"vision_tokens", "future_tokens"}
    for key in set(cached) & set(pixels):
        assert torch.equal(cached[key], pixels[key]), key
    tower, v = policy.vlm.vision.eval(), len(FROZEN.vlm.cameras)
    with torch.no_grad():
        views = tower(pixels["pixel_values"].flatten(0, 1)).unflatten(0, (len(ITEMS), v))
        future = tower(pixels["future_pixels"])
    assert torch.allclose(cached["vision_tokens"], views, atol=1e-5)
    assert torch.allclose(cached["future_tokens"], future, atol=1e-5)
    # Not the current frame: the future one (the check would pass on a target that ignored the time).
    assert not torch.allclose(cached["future_tokens"], views[:, 0], atol=1e-3)


def test_the_loss_and_its_gradients_match_training_on_pixels() -> None:
    episodes, policy, builder = make(FROZEN)
    tokens = FrozenTokens(policy, builder, episodes, log_stream=io.StringIO())
    tcfg = TrainConfig(batch_size=len(ITEMS))
    results = []
    for batch in (builder.batch(episodes, ITEMS), tokens.batch(picks(episodes))):
        policy.zero_grad(set_to_none=True)
        loss, parts = flow_matching_loss(policy, batch, tcfg, np.random.default_rng(3), torch.Generator().manual_seed(3))
        loss.backward()
        results.append((parts, {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}))
    (pixel_parts, pixel_grads), (token_parts, token_grads) = results
    assert pixel_parts["loss_wm"] > 0 and pixel_parts["loss_action"] > 0
    for key in pixel_parts:
        assert token_parts[key] == pytest.approx(pixel_parts[key], rel=1e-5), key
    assert pixel_grads.keys() == token_grads.keys() and pixel_grads
    for name, grad in pixel_grads.items():
        assert torch.allclose(token_grads[name], grad, rtol=1e-4, atol=1e-6), name


def test_a_run_with_the_cache_trains_the_run_without_it() -> None:
    episodes, policy, builder = make(FROZEN)
    twin = copy.deepcopy(policy)
    tcfg = TrainConfig(steps=3, batch_size=4, lr=1e-3, log_every=1, seed=0)
    log = io.StringIO()
    plain, _, _ = train(policy, episodes, builder, tcfg, torch.device("cpu"), log_stream=io.StringIO())
    cached, _, _ = train(twin, episodes, builder, TrainConfig(**{**tcfg.__dict__, "frozen_token_cache": True}),
                         torch.device("cpu"), log_stream=log)
    assert "frozen tower tokens of" in log.getvalue()
    for a, b in zip(plain, cached):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
    for (name, p), q in zip(policy.named_parameters(), twin.parameters()):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-5), name


def test_a_tower_that_trains_is_refused() -> None:
    episodes, policy, builder = make(FROM_SCRATCH)
    with pytest.raises(ValueError, match="frozen vision tower"):
        FrozenTokens(policy, builder, episodes)


def test_loader_workers_are_refused_with_the_cache() -> None:
    with pytest.raises(ValueError, match="no loader workers"):
        TrainConfig(frozen_token_cache=True, loader_workers=2)


def test_a_stopped_run_with_the_cache_resumes_to_the_same_weights() -> None:
    """The tokens are computed again on resume, from the same frozen tower: the pieces train the whole run's weights."""
    episodes, policy, builder = make(FROZEN)
    pieces = copy.deepcopy(policy)
    tcfg = TrainConfig(steps=4, batch_size=4, lr=1e-3, log_every=1, seed=0, frozen_token_cache=True)
    train(policy, episodes, builder, tcfg, torch.device("cpu"), log_stream=io.StringIO())
    _, step, state = train(pieces, episodes, builder, tcfg, torch.device("cpu"), log_stream=io.StringIO(), stop_after_s=0.0)
    assert step == 1
    pieces.train()
    train(pieces, episodes, builder, tcfg, torch.device("cpu"), log_stream=io.StringIO(), resume=state)
    for (name, p), q in zip(policy.named_parameters(), pieces.parameters()):
        assert torch.equal(p, q), name
