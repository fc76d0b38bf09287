"""The world-model target of a policy on a frozen encoder (vision.py): it is the encoder's embedding of the
future frame, it moves within a chunk as much as scenes differ from each other, and nothing trainable sits in its
path without a gradient. The same checks on the original from-scratch construction show what they catch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.toolchain.config import DenoiserConfig, EmbodimentConfig, ModelConfig, TrainConfig, VLMConfig
from models.toolchain.data.episodes import BatchBuilder, image_to_tensor, normalization_stats
from models.toolchain.evaluate import target_change
from models.toolchain.model import DustPolicy, randomize_zero_init
from models.toolchain.tokenizer import WordTokenizer
from models.toolchain.train import flow_matching_loss, world_model_target
from models.toolchain.vision import encoder_vlm_config

from .scenes import pusher_episodes

K = 16
# The checks (README, "Push task perception"): the change of the target over one chunk is at least this fraction
# of its variance across layouts, and that variance is at least this fraction of the target's mean square (the
# target is layer-normalised to unit scale, so a target that hardly depends on the image has almost none).
MIN_CHANGE_RATIO = 0.1
MIN_LAYOUT_SHARE = 0.05


def config(vlm: VLMConfig) -> ModelConfig:
    den = DenoiserConfig(hidden=32, heads=2, mmdit_layers=2, dit_layers=1, mlp_ratio=2.0, timestep_dim=16,
                         timestep_freq_dim=16, action_horizon=K, action_dim=2, state_dim=2,
                         future_tokens=vlm.future_tokens, future_dim=vlm.future_dim, cond_dim=vlm.width,
                         cond_tokens=vlm.cond_tokens, num_embodiments=1)
    return ModelConfig(name="wm", vlm=vlm, denoiser=den, embodiments=(EmbodimentConfig("pusher2", 0, 2, 2),))


BASE = VLMConfig(image_size=64, cameras=("top", "gripper"), vocab_size=32, width=32, layers=1, heads=2, max_tokens=8)
FROZEN = config(encoder_vlm_config(BASE, "conv"))
FROM_SCRATCH = config(BASE)


def target_stats(cfg: ModelConfig, seed: int):
    """target_change over 12 layouts, o_t vs o_{t+k} taken from the training batch's future_pixels."""
    episodes = pusher_episodes(12)
    tok = WordTokenizer.build([ep.instruction for ep in episodes])
    torch.manual_seed(seed)
    policy = DustPolicy(cfg.with_vocab(len(tok))).eval()
    batch = BatchBuilder(policy.cfg, tok, normalization_stats(episodes)).batch(episodes, [(i, 2) for i in range(12)])
    assert torch.equal(batch["future_pixels"][0], image_to_tensor(episodes[0].frame("top", 2 + K), policy.cfg))
    stats = target_change(lambda x: world_model_target(policy, x), batch["pixel_values"][:, 0],
                          batch["future_pixels"], torch.arange(12))
    share = stats["layout_variance"] / float((world_model_target(policy, batch["pixel_values"][:, 0]) ** 2).mean())
    return stats, share


@pytest.mark.parametrize("seed", [0, 1])
def test_frozen_encoder_target_moves_within_a_chunk_and_tells_layouts_apart(seed: int) -> None:
    stats, share = target_stats(FROZEN, seed)
    assert stats["ratio"] >= MIN_CHANGE_RATIO, stats
    assert share >= MIN_LAYOUT_SHARE, (stats, share)


def test_the_from_scratch_target_fails_the_same_check() -> None:
    """The original construction (ViT patch embedding + a projection no loss reaches): its target is nearly the
    same for every image, the check the frozen encoder passes."""
    _, share = target_stats(FROM_SCRATCH, 0)
    assert share < MIN_LAYOUT_SHARE


def test_the_target_is_the_frozen_towers_pooled_tokens() -> None:
    torch.manual_seed(0)
    policy = DustPolicy(FROZEN)
    x = torch.from_numpy(np.stack([image_to_tensor(pusher_episodes(1)[0].frame("top", t), FROZEN).numpy() for t in (0, 9)]))
    tokens = policy.vlm.vision(x)  # [2, 64, C] on the 8 x 8 grid
    g, c = FROZEN.vlm.grid, FROZEN.vlm.vision_width
    pooled = tokens.view(2, g // 2, 2, g // 2, 2, c).mean(dim=(2, 4)).reshape(2, -1, c)
    expected = torch.nn.functional.layer_norm(pooled, (c,), eps=1e-6)
    assert torch.allclose(world_model_target(policy, x), expected, atol=1e-5)


def test_every_trainable_parameter_gets_gradient_and_the_encoder_none() -> None:
    """One loss step with lambda_WM = 1: the frozen tower is not trainable, and every trainable parameter, projection
    or head, receives a non-zero gradient (a parameter that never does keeps its random initialisation forever)."""
    episodes = pusher_episodes(4)
    tok = WordTokenizer.build([ep.instruction for ep in episodes])
    cfg = FROZEN.with_vocab(len(tok))
    torch.manual_seed(0)
    policy = DustPolicy(cfg)
    # AdaLN-Zero starts the blocks at zero, which blocks every gradient into the conditioning at step 0 only.
    randomize_zero_init(policy, 0.1, torch.Generator().manual_seed(0))
    batch = BatchBuilder(cfg, tok, normalization_stats(episodes)).batch(episodes, [(i, t) for i in range(4) for t in (0, 5)])
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    loss, _ = flow_matching_loss(policy, batch, TrainConfig(lambda_wm=1.0), rng, gen)
    loss.backward()
    assert all(not p.requires_grad for p in policy.vlm.vision.parameters())
    trainable = [(n, p) for n, p in policy.named_parameters() if p.requires_grad]
    dead = [n for n, p in trainable if p.grad is None or torch.count_nonzero(p.grad) == 0]
    assert trainable and not dead, dead


def test_a_saved_encoder_becomes_the_policys_frozen_tower(tmp_path) -> None:
    from models.toolchain.vision import PushEncoder, load_encoder, save_encoder
    from models.toolchain.push import policy_with_encoder

    torch.manual_seed(0)
    encoder = PushEncoder(FROZEN.vlm, labels=5)
    save_encoder(tmp_path / "enc.pt", encoder, ["a", "b", "c", "d", "e"], {"arch": "conv"})
    loaded, names, meta = load_encoder(tmp_path / "enc.pt")
    assert names == ["a", "b", "c", "d", "e"] and meta["arch"] == "conv" and loaded.vlm == FROZEN.vlm
    policy = policy_with_encoder(FROZEN, tmp_path / "enc.pt")
    for (n, p), q in zip(policy.vlm.vision.named_parameters(), encoder.tower.parameters()):
        assert torch.equal(p, q) and not p.requires_grad, n


def test_keypoints_find_a_bright_spot() -> None:
    """The soft-argmax reads positions off the token grid: a single hot cell gives its centre in [-1, 1]."""
    from models.toolchain.vision import KeypointHead

    head = KeypointHead(width=4, grid=8, labels=3, keypoints=1)
    with torch.no_grad():
        head.attend.weight.zero_()
        head.attend.weight[0, 0] = 50.0
        head.attend.bias.zero_()
    tokens = torch.zeros(1, 64, 4)
    tokens[0, 2 * 8 + 5, 0] = 1.0  # row 2, column 5
    kp = head.keypoints(tokens)[0, 0]
    assert torch.allclose(kp, torch.tensor([(5.5 / 8) * 2 - 1, (2.5 / 8) * 2 - 1]), atol=1e-4)
