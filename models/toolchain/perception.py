"""How well actions can be predicted from what a policy perceives, measured on the push task's chunks.

A chunk head is an MLP from one feature vector per sample to the whole normalised action chunk
A_t = (a_t .. a_{t+k-1}), trained with plain MSE on the same windows, normalisation statistics and horizon as the
DUST policy (data/episodes.py). Its held-out error on the first EXECUTED_ACTIONS actions of each chunk (what the
fleet executes before it asks again) is the yardstick:

- `privileged`: features are the simulator's ground truth (ball, zone and pusher positions, data/push.py labels)
  plus the named ball and the embodiment. Nothing about the task is hidden from it, so its error is the
  reference a policy that has to see the scene should approach (`perception-gate`).
- any other feature table (vision.py's frozen encoder) goes through the same head, so the comparison isolates
  what the features carry.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .data.episodes import MinMax, normalization_stats
from .data.push import PushDataset, PushEpisode

# The fleet's robots execute 4 actions of a chunk before the next one arrives (docs/mujoco-fleet.md, --execute).
EXECUTED_ACTIONS = 4
ACTION_HORIZON = 16
COLORS = ("red", "green", "blue")
# Table half-extent in metres (sim/push/src/scene.ts TABLE_HALF): positions scaled to about [-1, 1].
POSITION_SCALE = 1.0 / 0.3
# A policy passes the perception gate when its held-out first-4 MSE is within this fraction of the privileged
# head's, per embodiment.
GATE_TOLERANCE = 0.25


def named_ball(instruction: str) -> int:
    """Index into COLORS of the ball an instruction names (every push instruction names exactly one)."""
    found = [i for i, c in enumerate(COLORS) if c in instruction.split()]
    if len(found) != 1:
        raise ValueError(f"instruction {instruction!r} does not name exactly one of {COLORS}")
    return found[0]


def task_features(ep: PushEpisode, embodiments: Sequence[str]) -> np.ndarray:
    """What every policy is told, not shown: the named ball (from the instruction) and the embodiment, one-hot."""
    f = np.zeros(len(COLORS) + len(embodiments), dtype=np.float32)
    f[named_ball(ep.instruction)] = 1.0
    f[len(COLORS) + list(embodiments).index(ep.embodiment)] = 1.0
    return f


def scaled_labels(ep: PushEpisode, names: Sequence[str]) -> np.ndarray:
    """The ground truth with positions in table half-extents (about [-1, 1]); the yaw stays in radians."""
    if ep.labels is None:
        raise ValueError("this needs a dataset with ground-truth labels (format 2)")
    scale = np.array([1.0 if n.endswith("yaw") else POSITION_SCALE for n in names], dtype=np.float32)
    return ep.labels * scale


def privileged_features(ep: PushEpisode, embodiments: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """[T, F]: ground-truth positions of everything in the scene, plus the task one-hots."""
    return np.concatenate([scaled_labels(ep, names), np.tile(task_features(ep, embodiments), (ep.length, 1))], axis=1)


@dataclass
class ChunkTable:
    """Every window of a dataset as arrays: features [N, F], normalised chunks [N, k, A] with a mask of the real
    action columns [N, A], and each row's embodiment."""

    features: np.ndarray
    chunks: np.ndarray
    mask: np.ndarray
    embodiment: np.ndarray  # [N] index into `embodiments`
    embodiments: Tuple[str, ...]


def chunk_table(ds: PushDataset, features: Callable[[PushEpisode], np.ndarray],
                stats: Dict[str, Dict[str, MinMax]], horizon: int = ACTION_HORIZON) -> ChunkTable:
    """One row per step of every episode, the chunk padded past the end with the last action (as BatchBuilder)."""
    names = tuple(ds.embodiments)
    width = max(int(e["action_dim"]) for e in ds.embodiments.values())
    feats, chunks, masks, emb = [], [], [], []
    for ep in ds.episodes:
        f = features(ep)
        if f.shape[0] != ep.length:
            raise ValueError(f"features have {f.shape[0]} rows for an episode of {ep.length} steps")
        a = stats[ep.embodiment]["action"].normalize(ep.actions)
        idx = np.minimum(np.arange(ep.length)[:, None] + np.arange(horizon)[None, :], ep.length - 1)
        c = np.zeros((ep.length, horizon, width), dtype=np.float32)
        c[:, :, : a.shape[1]] = a[idx]
        m = np.zeros((ep.length, width), dtype=np.float32)
        m[:, : a.shape[1]] = 1.0
        feats.append(f.astype(np.float32))
        chunks.append(c)
        masks.append(m)
        emb.append(np.full(ep.length, names.index(ep.embodiment)))
    return ChunkTable(np.concatenate(feats), np.concatenate(chunks), np.concatenate(masks), np.concatenate(emb), names)


class ChunkHead(nn.Module):
    """Features -> the whole normalised chunk, in one shot (no sampling: a deterministic regressor)."""

    def __init__(self, in_dim: int, horizon: int, action_dim: int, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        blocks: List[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, horizon * action_dim))
        self.horizon, self.action_dim = horizon, action_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1, self.horizon, self.action_dim)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(1).expand_as(pred)
    return (((pred - target) ** 2) * m).sum() / m.sum().clamp(min=1.0)


@dataclass(frozen=True)
class HeadConfig:
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 256
    layers: int = 3
    seed: int = 0
    log_every: int = 500


def fit_head(train: ChunkTable, cfg: HeadConfig, log=sys.stderr, label: str = "head") -> ChunkHead:
    """Adam with a cosine schedule; features standardised with the training table's mean/std (kept in the head)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    x = torch.from_numpy(train.features)
    mu, sd = x.mean(0), x.std(0).clamp(min=1e-3)
    y, m = torch.from_numpy(train.chunks), torch.from_numpy(train.mask)
    head = ChunkHead(x.shape[1], y.shape[1], y.shape[2], cfg.hidden, cfg.layers)
    head.register_buffer("mu", mu)
    head.register_buffer("sd", sd)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps))))
    t0, acc = time.time(), 0.0
    for step in range(1, cfg.steps + 1):
        idx = torch.from_numpy(rng.integers(len(x), size=cfg.batch_size))
        loss = masked_mse(head((x[idx] - mu) / sd), y[idx], m[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc += float(loss)
        if step % cfg.log_every == 0 or step == cfg.steps:
            n = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
            print(f"{label}: step {step}/{cfg.steps}  chunk mse {acc / n:.4f}  {step / (time.time() - t0):.0f} steps/s",
                  file=log, flush=True)
            acc = 0.0
    head.eval()
    return head


def predict(head: ChunkHead, features: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        x = torch.from_numpy(features)
        return head((x - head.mu) / head.sd)


def first_actions_mse(pred: torch.Tensor, table: ChunkTable, first: int = EXECUTED_ACTIONS) -> Dict[str, float]:
    """Held-out MSE over the first `first` actions of every chunk, real action columns only, per embodiment."""
    y, m = torch.from_numpy(table.chunks), torch.from_numpy(table.mask)
    out = {}
    for i, name in enumerate(table.embodiments):
        rows = torch.from_numpy(table.embodiment == i)
        out[name] = round(float(masked_mse(pred[rows, :first], y[rows, :first], m[rows])), 5)
    return out


def gate(candidate: Dict[str, float], reference: Dict[str, float], tolerance: float = GATE_TOLERANCE) -> Dict:
    """Per embodiment: does the candidate's error stay within (1 + tolerance) x the reference's?"""
    rows = {name: {"mse": candidate[name], "reference": reference[name],
                   "ratio": round(candidate[name] / reference[name], 3),
                   "pass": candidate[name] <= (1.0 + tolerance) * reference[name]} for name in reference}
    return {"tolerance": tolerance, "embodiments": rows, "pass": all(r["pass"] for r in rows.values())}


def privileged_baseline(data: PushDataset, heldout: PushDataset, cfg: HeadConfig,
                        log=sys.stderr) -> Tuple[ChunkHead, Dict[str, float]]:
    """The reference: a chunk head on the ground truth. Returns the head and its held-out first-4 MSE."""
    data.require_labels()
    heldout.require_labels()
    names = tuple(data.embodiments)
    stats = normalization_stats(data.episodes)
    labels = data.label_names
    train = chunk_table(data, lambda ep: privileged_features(ep, names, labels), stats)
    held = chunk_table(heldout, lambda ep: privileged_features(ep, names, labels), stats)
    head = fit_head(train, cfg, log, label="privileged")
    return head, first_actions_mse(predict(head, held.features), held)


def mean_chunk_mse(data: PushDataset, heldout: PushDataset) -> Dict[str, float]:
    """The floor any head must beat: each embodiment's mean training chunk."""
    names = tuple(data.embodiments)
    stats = normalization_stats(data.episodes)
    train = chunk_table(data, lambda ep: task_features(ep, names)[None].repeat(ep.length, 0), stats)
    held = chunk_table(heldout, lambda ep: task_features(ep, names)[None].repeat(ep.length, 0), stats)
    pred = torch.zeros_like(torch.from_numpy(held.chunks))
    for i in range(len(names)):
        mean = torch.from_numpy(train.chunks[train.embodiment == i].mean(0))
        pred[torch.from_numpy(held.embodiment == i)] = mean
    return first_actions_mse(pred, held)


def image_free_mse(data: PushDataset, heldout: PushDataset, cfg: HeadConfig, log=sys.stderr) -> Dict[str, float]:
    """What a head gets from proprioception and the task alone (no scene): the level a policy that ignores its
    cameras sits at."""
    names = tuple(data.embodiments)
    stats = normalization_stats(data.episodes)
    width = max(int(e["state_dim"]) for e in data.embodiments.values())

    def feats(ep: PushEpisode) -> np.ndarray:
        s = np.zeros((ep.length, width), dtype=np.float32)
        s[:, : ep.state.shape[1]] = stats[ep.embodiment]["state"].normalize(ep.state)
        return np.concatenate([s, np.tile(task_features(ep, names), (ep.length, 1))], axis=1)

    train, held = chunk_table(data, feats, stats), chunk_table(heldout, feats, stats)
    head = fit_head(train, cfg, log, label="image-free")
    return first_actions_mse(predict(head, held.features), held)
