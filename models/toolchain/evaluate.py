"""Checks that a trained policy learned something: held-out action error against simple baselines, and how
much its sampled actions move when one input changes (instruction, images, state, embodiment).

Actions are sampled with the reference sampler (sampling.py) at the manifest's default steps, from fixed noise.
Errors are mean squared errors in the normalised action space ([-1, 1] per dimension), over the embodiment's
real action columns.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from .data.episodes import BatchBuilder, Episode
from .model import DustPolicy
from .sampling import denoiser_field, joint_sample


def sample_actions(policy: DustPolicy, batch: Dict[str, torch.Tensor], noise_seed: int, action_steps: int,
                   vision_steps: int) -> torch.Tensor:
    d = policy.cfg.denoiser
    n = batch["state"].shape[0]
    g = torch.Generator().manual_seed(noise_seed)
    a0 = torch.randn((n, d.action_horizon, d.action_dim), generator=g)
    o0 = torch.randn((n, d.future_tokens, d.future_dim), generator=g)
    with torch.no_grad():
        vl, _ = policy.vlm(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
        f = denoiser_field(policy.denoiser, vl, batch["state"], batch["embodiment_id"])
        a, _ = joint_sample(f, a0, o0, action_steps, vision_steps)
    return a


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.unsqueeze(1).expand_as(pred)
    return float((((pred - target) ** 2) * m).sum() / m.sum())


def heldout_errors(policy: DustPolicy, builder: BatchBuilder, episodes: Sequence[Episode], train_episodes: Sequence[Episode],
                   steps_per_episode: int = 8, noise_seed: int = 1234) -> Dict[str, float]:
    """Model vs two baselines: the training mean chunk of the embodiment ("mean"), and repeating the previous
    executed action for the whole chunk ("hold", which already knows where the arm is)."""
    cfg = policy.cfg
    items = [(i, t) for i, ep in enumerate(episodes) for t in np.linspace(0, ep.length - 1, steps_per_episode).astype(int)]
    batch = builder.batch(episodes, items)
    pred = sample_actions(policy, batch, noise_seed, cfg.action_steps, cfg.vision_steps)
    target, mask = batch["actions"], batch["action_mask"]

    # Mean chunk per embodiment over the training windows (normalised space).
    means = {}
    for e in cfg.embodiments:
        eps = [ep for ep in train_episodes if ep.embodiment == e.name]
        acts = np.concatenate([builder.stats[e.name]["action"].normalize(ep.actions) for ep in eps])
        m = np.zeros(cfg.denoiser.action_dim, dtype=np.float32)
        m[: e.action_dim] = acts.mean(axis=0)
        means[e.id] = torch.from_numpy(m)
    mean_pred = torch.stack([means[int(i)] for i in batch["embodiment_id"]]).unsqueeze(1).expand_as(target)

    hold = torch.zeros_like(target)
    for row, (e_idx, t) in enumerate(items):
        ep = episodes[e_idx]
        emb = cfg.embodiment(ep.embodiment)
        prev = builder.stats[ep.embodiment]["action"].normalize(ep.actions[max(t - 1, 0)])
        hold[row, :, : emb.action_dim] = torch.from_numpy(prev)
    return {
        "samples": len(items),
        "action_mse": round(_masked_mse(pred, target, mask), 5),
        "baseline_mean_mse": round(_masked_mse(mean_pred, target, mask), 5),
        "baseline_hold_mse": round(_masked_mse(hold, target, mask), 5),
    }


def input_sensitivity(policy: DustPolicy, builder: BatchBuilder, episodes: Sequence[Episode], noise_seed: int = 99) -> Dict[str, float]:
    """Mean |delta| of sampled (normalised) actions when exactly one input changes, same initial noise.

    Pairs: instruction swapped for another episode's; camera frames swapped; state swapped (another time step);
    embodiment id flipped (compared on the columns both embodiments have)."""
    cfg = policy.cfg
    n = min(16, len(episodes) - 1)
    # Steps 5 and 20, or the last step of a shorter episode.
    at = lambda i, t: (i, min(t, episodes[i].length - 1))  # noqa: E731
    base = builder.batch(episodes, [at(i, 5) for i in range(n)])
    other = builder.batch(episodes, [at(i + 1, 5) for i in range(n)])
    later = builder.batch(episodes, [at(i, 20) for i in range(n)])
    ref = sample_actions(policy, base, noise_seed, cfg.action_steps, cfg.vision_steps)
    common = min(e.action_dim for e in cfg.embodiments)

    def delta(batch: Dict[str, torch.Tensor]) -> float:
        out = sample_actions(policy, batch, noise_seed, cfg.action_steps, cfg.vision_steps)
        return round(float((out - ref)[..., :common].abs().mean()), 5)

    def swapped(keys: List[str], source: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        b = dict(base)
        for k in keys:
            b[k] = source[k]
        return b

    flipped = dict(base)
    flipped["embodiment_id"] = (base["embodiment_id"] + 1) % cfg.denoiser.num_embodiments
    return {
        "instruction": delta(swapped(["input_ids", "attention_mask"], other)),
        "images": delta(swapped(["pixel_values"], other)),
        "state": delta(swapped(["state"], later)),
        "embodiment": delta(flipped),
        "noise_only": round(float((sample_actions(policy, base, noise_seed + 1, cfg.action_steps, cfg.vision_steps) - ref)[..., :common].abs().mean()), 5),
    }
