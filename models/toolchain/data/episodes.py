"""Episode datasets: the interface a training run reads, normalisation statistics, and batch assembly.

An episode (paper sec. 3: T_i = {I, {(O_t, A_t)}}) is an instruction, one embodiment, and per time step the
camera frames, the proprioceptive state and the action. A training sample at step t is (paper sec. 3, 4.2,
Algorithm 1): the current frames o_t^v of every camera, the instruction, the state o_t^s, the action chunk
A_t = (a_t, ..., a_{t+k-1}), and the main camera's frame o_{t+k}^v, whose embedding is the world-model target.
Episodes without actions (video, e.g. BridgeV2 in paper sec. 5.2) are allowed; they only feed the world-model
term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ModelConfig
from ..tokenizer import WordTokenizer


class Episode(Protocol):
    """What a dataset must provide per episode (see ArrayEpisode for a plain implementation)."""

    embodiment: str
    instruction: str

    @property
    def length(self) -> int: ...

    @property
    def state(self) -> np.ndarray:
        """[T, state_dim] float32, raw (unnormalised) units."""

    @property
    def actions(self) -> Optional[np.ndarray]:
        """[T, action_dim] float32 raw units, or None for an action-free (video) episode."""

    def frame(self, camera: str, t: int) -> np.ndarray:
        """[H, W, 3] uint8 RGB frame of `camera` at step t."""


@dataclass
class ArrayEpisode:
    """An episode held in memory: frames[camera] is [T, H, W, 3] uint8."""

    embodiment: str
    instruction: str
    frames: Dict[str, np.ndarray]
    state: np.ndarray
    actions: Optional[np.ndarray]

    @property
    def length(self) -> int:
        return int(self.state.shape[0])

    def frame(self, camera: str, t: int) -> np.ndarray:
        return self.frames[camera][t]


@dataclass(frozen=True)
class MinMax:
    min: np.ndarray
    max: np.ndarray

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """GR00T min-max normalisation to [-1, 1] (docs/model-package.md "Normalization")."""
        return (2.0 * (x - self.min) / (self.max - self.min) - 1.0).astype(np.float32)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        return ((y + 1.0) * 0.5 * (self.max - self.min) + self.min).astype(np.float32)

    def to_json(self) -> Dict[str, List[float]]:
        return {"min": [float(v) for v in self.min], "max": [float(v) for v in self.max]}

    @staticmethod
    def from_json(d: Dict[str, Sequence[float]]) -> "MinMax":
        return MinMax(np.asarray(d["min"], dtype=np.float64), np.asarray(d["max"], dtype=np.float64))


# A dimension that never changes in the data still needs a usable range: the server divides by (max - min).
MIN_RANGE = 1e-6


def compute_stats(values: Sequence[np.ndarray]) -> MinMax:
    data = np.concatenate([np.asarray(v, dtype=np.float64) for v in values], axis=0)
    lo, hi = data.min(axis=0), data.max(axis=0)
    hi = np.where(hi - lo < MIN_RANGE, lo + MIN_RANGE, hi)
    # Round-trip through float32 JSON values so training normalises with exactly the numbers the manifest holds.
    return MinMax(lo.astype(np.float32).astype(np.float64), hi.astype(np.float32).astype(np.float64))


def normalization_stats(episodes: Sequence[Episode]) -> Dict[str, Dict[str, MinMax]]:
    """Per embodiment, min/max of state and actions over every step of every episode."""
    by_emb: Dict[str, Dict[str, List[np.ndarray]]] = {}
    for ep in episodes:
        d = by_emb.setdefault(ep.embodiment, {"state": [], "action": []})
        d["state"].append(ep.state)
        if ep.actions is not None:
            d["action"].append(ep.actions)
    out = {}
    for name, d in by_emb.items():
        if not d["action"]:
            raise ValueError(f"embodiment {name} has no episode with actions: action statistics are undefined")
        out[name] = {"state": compute_stats(d["state"]), "action": compute_stats(d["action"])}
    return out


def image_to_tensor(frame: np.ndarray, cfg: ModelConfig) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, size, size] in the model's normalisation (mean/std of the manifest)."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255.0
    size = cfg.vlm.image_size
    if x.shape[1] != size or x.shape[2] != size:
        x = F.interpolate(x.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False).squeeze(0)
    mean = torch.tensor(cfg.image_mean).view(3, 1, 1)
    std = torch.tensor(cfg.image_std).view(3, 1, 1)
    return (x - mean) / std


def future_step(ep: Episode, t: int, k: int) -> int:
    """The step of the future frame o_{t+k}: the frame after the chunk has executed (paper sec. 3,
    "World-modeling"); near the end of an episode the last frame stands in (the scene is at rest by then)."""
    return min(t + k, ep.length - 1)


class BatchBuilder:
    """Turns (episode, t) pairs into the tensors the two graphs take, plus training targets."""

    def __init__(self, cfg: ModelConfig, tokenizer: WordTokenizer, stats: Dict[str, Dict[str, MinMax]]) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.stats = stats

    def sample(self, ep: Episode, t: int, images: bool = True) -> Dict[str, torch.Tensor]:
        """One window's tensors; `images=False` leaves out pixel_values and future_pixels (a caller that holds the
        frozen vision tower's tokens of every frame, train.FrozenTokens, takes them from there instead)."""
        cfg, d = self.cfg, self.cfg.denoiser
        emb = cfg.embodiment(ep.embodiment)
        k = d.action_horizon
        last = ep.length - 1
        pixels = {}
        if images:
            pixels = {
                "pixel_values": torch.stack([image_to_tensor(ep.frame(cam, t), cfg) for cam in cfg.vlm.cameras]),
                "future_pixels": image_to_tensor(ep.frame(cfg.vlm.cameras[0], future_step(ep, t, k)), cfg),
            }
        ids, mask = self.tokenizer.encode_padded(cfg.prompt_template.format(instruction=ep.instruction), cfg.vlm.max_tokens)

        stats = self.stats[ep.embodiment]
        state = np.zeros(d.state_dim, dtype=np.float32)
        state[: emb.state_dim] = stats["state"].normalize(ep.state[t])
        actions = np.zeros((k, d.action_dim), dtype=np.float32)
        action_mask = np.zeros(d.action_dim, dtype=np.float32)
        has_actions = ep.actions is not None
        if has_actions:
            # A_t = (a_t, ..., a_{t+k-1}); past the end the last action repeats (GR00T's padding).
            idx = np.minimum(np.arange(t, t + k), last)
            actions[:, : emb.action_dim] = stats["action"].normalize(ep.actions[idx])
            action_mask[: emb.action_dim] = 1.0
        return {
            **pixels,
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "state": torch.from_numpy(state),
            "actions": torch.from_numpy(actions),
            "action_mask": torch.from_numpy(action_mask),
            "has_actions": torch.tensor(1.0 if has_actions else 0.0),
            "embodiment_id": torch.tensor(emb.id, dtype=torch.int64),
        }

    def batch(self, episodes: Sequence[Episode], items: Sequence[Tuple[int, int]], images: bool = True) -> Dict[str, torch.Tensor]:
        samples = [self.sample(episodes[e], t, images) for e, t in items]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def all_windows(episodes: Sequence[Episode]) -> List[Tuple[int, int]]:
    """Every (episode index, step) pair: each step of each episode is one training sample."""
    return [(i, t) for i, ep in enumerate(episodes) for t in range(ep.length)]
