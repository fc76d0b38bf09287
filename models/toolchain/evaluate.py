"""Checks that a trained policy learned something: held-out action error against simple baselines, and how
much its sampled actions move when one input changes (instruction, images, state, embodiment).

Actions are sampled with the reference sampler (sampling.py) at the manifest's default steps, from fixed noise.
Errors are mean squared errors in the normalised action space ([-1, 1] per dimension), over the embodiment's
real action columns.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .data.episodes import BatchBuilder, Episode, image_to_tensor
from .model import DustPolicy
from .sampling import denoiser_field, joint_sample


def initial_noise(policy: DustPolicy, n: int, noise_seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Seeded initial noise of n rows: actions [n, H, d_A], then the future [n, T_o, d_o], from one generator."""
    d = policy.cfg.denoiser
    g = torch.Generator().manual_seed(noise_seed)
    a0 = torch.randn((n, d.action_horizon, d.action_dim), generator=g)
    o0 = torch.randn((n, d.future_tokens, d.future_dim), generator=g)
    return a0, o0


def sample_actions(policy: DustPolicy, batch: Dict[str, torch.Tensor], noise_seed: int, action_steps: int,
                   vision_steps: int) -> torch.Tensor:
    a0, o0 = initial_noise(policy, batch["state"].shape[0], noise_seed)
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


def other_layout(episodes: Sequence[Episode], i: int) -> Optional[int]:
    """The next episode (cyclically) of the same embodiment showing a different scene. Push episodes carry their
    layout `seed`, and one layout is recorded once per ball named, so the next episode usually shows the same
    scene; episodes without a seed (synthetic ones) each have a layout of their own. None when there is none."""
    seed = getattr(episodes[i], "seed", None)
    for step in range(1, len(episodes)):
        j = (i + step) % len(episodes)
        ep = episodes[j]
        if ep.embodiment == episodes[i].embodiment and (seed is None or getattr(ep, "seed", None) != seed):
            return j
    return None


def input_sensitivity(policy: DustPolicy, builder: BatchBuilder, episodes: Sequence[Episode], noise_seed: int = 99) -> Dict[str, float]:
    """Mean |delta| of sampled (normalised) actions when exactly one input changes, same initial noise.

    Pairs: instruction swapped for another episode's; camera frames swapped for those of an episode with another
    layout (other_layout); state swapped (another time step); embodiment id flipped (compared on the columns
    both embodiments have)."""
    cfg = policy.cfg
    n = min(16, len(episodes) - 1)
    # Steps 5 and 20, or the last step of a shorter episode.
    at = lambda i, t: (i, min(t, episodes[i].length - 1))  # noqa: E731
    base = builder.batch(episodes, [at(i, 5) for i in range(n)])
    other = builder.batch(episodes, [at(i + 1, 5) for i in range(n)])
    swaps = [other_layout(episodes, i) for i in range(n)]
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
        # None where some episode has no other layout to swap in (a change of images would show the same scene).
        "images": (delta(swapped(["pixel_values"], builder.batch(episodes, [at(j, 5) for j in swaps])))
                   if all(j is not None for j in swaps) else None),
        "state": delta(swapped(["state"], later)),
        "embodiment": delta(flipped),
        "noise_only": round(float((sample_actions(policy, base, noise_seed + 1, cfg.action_steps, cfg.vision_steps) - ref)[..., :common].abs().mean()), 5),
    }


def target_change(embed, frames_now: torch.Tensor, frames_later: torch.Tensor, layouts: torch.Tensor) -> Dict[str, float]:
    """Is the world-model target informative? `embed` maps frames [N, 3, H, W] to targets [N, T_o, d_o].

    mean_sq_change: mean over elements of (O(o_{t+k}) - O(o_t))^2, what the world model has to predict;
    layout_variance: the variance of O(o_t) across the rows (one per layout), what tells scenes apart. A target
    whose change is a vanishing fraction of the variance barely depends on what happens in the chunk."""
    with torch.no_grad():
        now, later = embed(frames_now), embed(frames_later)
    change = float(((later - now) ** 2).mean())
    variance = float(now[layouts].var(dim=0, unbiased=False).mean())
    return {"mean_sq_change": round(change, 6), "layout_variance": round(variance, 6),
            "ratio": round(change / max(variance, 1e-12), 4)}


def world_model_target_check(policy: DustPolicy, builder: BatchBuilder, episodes: Sequence[Episode], k: Optional[int] = None,
                             per_episode: int = 4) -> Dict[str, float]:
    """target_change on real episodes: `per_episode` steps of each episode (o_t vs o_{t+k}), and for the variance
    one frame of each distinct layout."""
    cfg = policy.cfg
    k = k or cfg.denoiser.action_horizon
    cam = cfg.vlm.cameras[0]
    now, later, first_of_layout, seen = [], [], [], set()
    for i, ep in enumerate(episodes):
        for t in np.linspace(0, max(ep.length - 1 - k, 0), per_episode).astype(int):
            key = (ep.embodiment, getattr(ep, "seed", i))
            if key not in seen:
                seen.add(key)
                first_of_layout.append(len(now))
            now.append(image_to_tensor(ep.frame(cam, int(t)), cfg))
            later.append(image_to_tensor(ep.frame(cam, min(int(t) + k, ep.length - 1)), cfg))
    return {**target_change(policy.vlm.image_embedding, torch.stack(now), torch.stack(later),
                            torch.tensor(first_of_layout)), "k": k, "layouts": len(first_of_layout)}


def oracle_gap(policy: DustPolicy, batch: Dict[str, torch.Tensor], noise_seed: int = 7,
               vision_steps: Sequence[int] = (1, 2, 4, 8, 16)) -> Dict:
    """What the world-model stream is worth to the actions, on one batch with its true future frames.

    - action MSE (normalised, real columns) when the vision stream is the TRUE future target, held at tau_o = 1
      (an oracle world model), against the same with the vision stream pure noise held at tau_o = 0 (no world
      model); both sample the actions with N_A = cfg.action_steps from the same noise. If the denoiser learned to
      read the future, the oracle is better.
    - world-model error: MSE of the future the joint sampler generates with N_o steps against the true target,
      per N_o in `vision_steps` (N_A = 1, so that every N_o is a multiple); it should fall as N_o grows.
    """
    d, cfg = policy.cfg.denoiser, policy.cfg
    n = batch["state"].shape[0]
    a0, o0 = initial_noise(policy, n, noise_seed)
    with torch.no_grad():
        vl, _ = policy.vlm(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
        target = policy.vlm.image_embedding(batch["future_pixels"])
    f = denoiser_field(policy.denoiser, vl, batch["state"], batch["embodiment_id"])

    def actions_with_future(future: torch.Tensor, tau_o: float) -> torch.Tensor:
        a = a0
        for i in range(cfg.action_steps):
            v_a, _ = f(a, future, i / cfg.action_steps, tau_o)
            a = a + v_a / cfg.action_steps
        return a

    oracle = _masked_mse(actions_with_future(target, 1.0), batch["actions"], batch["action_mask"])
    blind = _masked_mse(actions_with_future(o0, 0.0), batch["actions"], batch["action_mask"])
    wm = {}
    for steps in vision_steps:
        _, o = joint_sample(f, a0, o0, 1, steps)
        wm[steps] = round(float(((o - target) ** 2).mean()), 5)
    return {"action_mse_true_future": round(oracle, 5), "action_mse_noise_future": round(blind, 5),
            "world_model_mse_by_vision_steps": wm}


def oracle_gate(gap: Dict) -> Dict[str, bool]:
    """The checks on oracle_gap's result: the true future helps the actions, and more vision steps give a better
    future (the error at the most steps below that at one step)."""
    wm = gap["world_model_mse_by_vision_steps"]
    steps = sorted(wm)
    checks = {"true_future_beats_noise": gap["action_mse_true_future"] < gap["action_mse_noise_future"],
              "world_model_error_falls_with_steps": wm[steps[-1]] < wm[steps[0]]}
    return {**checks, "pass": all(checks.values())}


def first_actions_mse_sampled(policy: DustPolicy, builder: BatchBuilder, episodes: Sequence[Episode], first: int = 4,
                              noise_seed: int = 1234, batch_size: int = 256) -> Dict[str, float]:
    """The perception gate's metric (perception.first_actions_mse) for a sampling policy: every step of every
    episode, actions sampled at the policy's default N_A / N_o, MSE over the first `first` actions, per embodiment."""
    cfg = policy.cfg
    sums: Dict[str, List[float]] = {}
    items = [(i, t) for i, ep in enumerate(episodes) for t in range(ep.length)]
    for s in range(0, len(items), batch_size):
        chunk = items[s: s + batch_size]
        batch = builder.batch(episodes, chunk)
        pred = sample_actions(policy, batch, noise_seed + s, cfg.action_steps, cfg.vision_steps)
        err = ((pred - batch["actions"])[:, :first] ** 2) * batch["action_mask"].unsqueeze(1)
        per_row = err.sum(dim=(1, 2)) / (batch["action_mask"].sum(dim=1) * first)
        for (i, _), e in zip(chunk, per_row.tolist()):
            sums.setdefault(episodes[i].embodiment, []).append(e)
    return {name: round(float(np.mean(v)), 5) for name, v in sums.items()}
