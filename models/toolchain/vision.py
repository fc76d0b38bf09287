"""A vision encoder for the push task that is taught to see, then frozen (paper sec. 5: the VLM is pretrained and
frozen; its vision tokens of the future frame are the world-model target).

Pretraining: the VLM stand-in's vision tower (model/vlm.py: the ViT, or model/conv_tower.py) plus a keypoint head
regress the simulator's ground truth of the main (top) camera's frame: every ball's centre, the zone's centre and
the pusher's pose (data/push.py labels, recorded for free). The keypoint head is a spatial soft-argmax
(Levine et al. 2016): K attention maps over the token grid, each read out as an expected (x, y), so positions
finer than one token come out of a translation-equivariant map.

Frozen, the encoder gives (a) the DUST VLM's vision tower with its world-model target (`obs_embedding` of a frame:
its tokens, pooled and normalised, no projection) and (b) per-frame features for a chunk head (perception.py), whose
held-out action error against the privileged head's is the perception gate.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .config import ModelConfig, VLMConfig
from .data.episodes import image_to_tensor, normalization_stats
from .data.push import PushDataset, PushEpisode
from .model.conv_tower import ConvTower
from .model.vlm import VisionTower
from .perception import (POSITION_SCALE, ChunkTable, HeadConfig, chunk_table, first_actions_mse, fit_head, gate,
                         predict, scaled_labels, task_features)

ENCODER_FORMAT = "dust-push-encoder/1"
KEYPOINTS = 16

# The two towers the measurement compares: the conv stem at the shipped token grid (8 x 8 cells of 8 px, 16 pooled
# world-model tokens) and a ViT of 4 px patches (16 x 16 tokens), both trained the same way.
ARCHITECTURES: Dict[str, Dict] = {
    "conv": {"vision_tower": "conv", "patch_size": 8, "vision_width": 32},
    "vit4": {"vision_tower": "vit", "patch_size": 4, "vision_width": 64, "vision_layers": 1},
}


def encoder_vlm_config(base: VLMConfig, arch: str) -> VLMConfig:
    """The VLM configuration whose tower is `arch`, frozen, with the tower's tokens as the world-model target."""
    fields = ARCHITECTURES[arch]
    return dataclasses.replace(base, **fields, future_dim=fields["vision_width"], obs_projection=False,
                               freeze_vision=True)


def make_tower(cfg: VLMConfig) -> nn.Module:
    return ConvTower(cfg) if cfg.vision_tower == "conv" else VisionTower(cfg)


class KeypointHead(nn.Module):
    """Tokens [N, grid^2, C] -> (labels [N, L], keypoints [N, K, 2] in [-1, 1])."""

    def __init__(self, width: int, grid: int, labels: int, keypoints: int = KEYPOINTS, hidden: int = 256) -> None:
        super().__init__()
        self.attend = nn.Linear(width, keypoints)
        axis = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid * 2 - 1
        yy, xx = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("coords", torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1))  # row-major, as tokens
        self.readout = nn.Sequential(nn.Linear(2 * keypoints + width, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                     nn.GELU(), nn.Linear(hidden, labels))

    def keypoints(self, tokens: torch.Tensor) -> torch.Tensor:
        attention = torch.softmax(self.attend(tokens), dim=1)  # over the grid, per keypoint
        return torch.einsum("npk,pd->nkd", attention, self.coords)

    def forward(self, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        kp = self.keypoints(tokens)
        return self.readout(torch.cat([kp.flatten(1), tokens.mean(1)], dim=1)), kp


class PushEncoder(nn.Module):
    def __init__(self, vlm: VLMConfig, labels: int) -> None:
        super().__init__()
        self.vlm = vlm
        self.tower = make_tower(vlm)
        self.head = KeypointHead(vlm.vision_width, vlm.grid, labels)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens = self.tower(images)
        labels, kp = self.head(tokens)
        return labels, kp, tokens


@dataclasses.dataclass(frozen=True)
class EncoderTrainConfig:
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    log_every: int = 100


class FrameSource:
    """Main-camera frames of every step, as model inputs, with their labels (the frames stay memory-mapped)."""

    def __init__(self, ds: PushDataset, model_cfg: ModelConfig) -> None:
        ds.require_labels()
        self.ds, self.cfg = ds, model_cfg
        self.items = [(i, t) for i, ep in enumerate(ds.episodes) for t in range(ep.length)]
        self.labels = {i: scaled_labels(ep, ds.label_names) for i, ep in enumerate(ds.episodes)}

    def batch(self, items: Sequence[Tuple[int, int]], camera: Optional[str] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        cam = camera or self.cfg.vlm.cameras[0]
        x = torch.stack([image_to_tensor(self.ds.episodes[e].frame(cam, t), self.cfg) for e, t in items])
        y = torch.from_numpy(np.stack([self.labels[e][t] for e, t in items]))
        return x, y


def label_errors(encoder: PushEncoder, source: FrameSource, names: Sequence[str], batch: int = 256) -> Dict[str, float]:
    """Held-out RMSE in centimetres per group of labels (balls, zone, pusher position) and in degrees (yaw)."""
    encoder.eval()
    preds, targets = [], []
    with torch.no_grad():
        for i in range(0, len(source.items), batch):
            x, y = source.batch(source.items[i: i + batch])
            preds.append(encoder(x)[0])
            targets.append(y)
    p, y = torch.cat(preds), torch.cat(targets)
    sq = ((p - y) ** 2).mean(0)
    groups = {"balls_cm": [n for n in names if n.startswith("ball_")], "zone_cm": ["zone_x", "zone_y"],
              "pusher_cm": ["pusher_x", "pusher_y"]}
    out = {g: round(100.0 / POSITION_SCALE * math.sqrt(float(sq[[names.index(n) for n in cols]].mean())), 3)
           for g, cols in groups.items()}
    out["pusher_yaw_deg"] = round(math.degrees(math.sqrt(float(sq[names.index("pusher_yaw")]))), 3)
    return out


def train_encoder(encoder: PushEncoder, train: FrameSource, tcfg: EncoderTrainConfig, log=sys.stderr,
                  label: str = "encoder") -> List[Dict[str, float]]:
    torch.manual_seed(tcfg.seed)
    rng = np.random.default_rng(tcfg.seed)
    opt = torch.optim.AdamW(encoder.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    warmup = max(1, tcfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, tcfg.steps - warmup))))
    encoder.train()
    history, acc, t0 = [], 0.0, time.time()
    for step in range(1, tcfg.steps + 1):
        x, y = train.batch([train.items[i] for i in rng.integers(len(train.items), size=tcfg.batch_size)])
        loss = ((encoder(x)[0] - y) ** 2).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{label}: the label loss is {float(loss)} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        opt.step()
        sched.step()
        acc += float(loss)
        if step % tcfg.log_every == 0 or step == tcfg.steps:
            n = (step - 1) % tcfg.log_every + 1
            rate = step / (time.time() - t0)
            print(f"{label}: step {step}/{tcfg.steps}  label mse {acc / n:.5f}  {rate:.2f} steps/s  "
                  f"eta {(tcfg.steps - step) / rate:.0f}s", file=log, flush=True)
            history.append({"step": step, "label_mse": acc / n})
            acc = 0.0
    encoder.eval()
    return history


def save_encoder(path: Path, encoder: PushEncoder, names: Sequence[str], meta: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": ENCODER_FORMAT, "vlm": json.dumps(dataclasses.asdict(encoder.vlm)),
                "label_names": json.dumps(list(names)), "meta": json.dumps(meta),
                "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}, str(path))


def load_encoder(path: Path) -> Tuple[PushEncoder, List[str], Dict]:
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    if raw.get("format") != ENCODER_FORMAT:
        raise ValueError(f"{path}: not a {ENCODER_FORMAT} file")
    fields = json.loads(raw["vlm"])
    fields["cameras"] = tuple(fields["cameras"])
    names = json.loads(raw["label_names"])
    encoder = PushEncoder(VLMConfig(**fields), len(names))
    encoder.load_state_dict(raw["state_dict"])
    encoder.eval()
    encoder.requires_grad_(False)
    return encoder, names, json.loads(raw["meta"])


def encoder_features(encoder: PushEncoder, ds: PushDataset, model_cfg: ModelConfig, log=sys.stderr,
                     batch: int = 256) -> Dict[int, np.ndarray]:
    """Per episode [T, F]: the frozen encoder's label estimate and keypoints of the main camera, the keypoints of the
    other cameras. Computed once (the encoder is frozen), so heads train on them at table speed."""
    out: Dict[int, np.ndarray] = {}
    t0, done, total = time.time(), 0, sum(ep.length for ep in ds.episodes)
    with torch.no_grad():
        for i, ep in enumerate(ds.episodes):
            per_camera = []
            for c, cam in enumerate(model_cfg.vlm.cameras):
                rows = []
                for s in range(0, ep.length, batch):
                    x = torch.stack([image_to_tensor(ep.frame(cam, t), model_cfg) for t in range(s, min(ep.length, s + batch))])
                    labels, kp, _ = encoder(x)
                    rows.append(torch.cat([labels, kp.flatten(1)], 1) if c == 0 else kp.flatten(1))
                per_camera.append(torch.cat(rows))
            out[i] = torch.cat(per_camera, 1).numpy()
            done += ep.length
            if (i + 1) % 200 == 0 or i + 1 == len(ds.episodes):
                print(f"features: {done}/{total} steps, {done / (time.time() - t0):.0f} steps/s", file=log, flush=True)
    return out


def perception_gate(encoder: PushEncoder, data: PushDataset, heldout: PushDataset, model_cfg: ModelConfig,
                    reference: Dict[str, float], hcfg: HeadConfig, log=sys.stderr) -> Dict:
    """A chunk head on the frozen encoder's features (plus the state and the task a policy is given), trained and
    scored exactly like the privileged head, and the gate verdict against `reference` (its held-out MSE)."""
    names = tuple(data.embodiments)
    stats = normalization_stats(data.episodes)
    width = max(int(e["state_dim"]) for e in data.embodiments.values())

    def table(ds: PushDataset) -> ChunkTable:
        feats = encoder_features(encoder, ds, model_cfg, log)
        index = {id(ep): i for i, ep in enumerate(ds.episodes)}

        def features(ep: PushEpisode) -> np.ndarray:
            s = np.zeros((ep.length, width), dtype=np.float32)
            s[:, : ep.state.shape[1]] = stats[ep.embodiment]["state"].normalize(ep.state)
            return np.concatenate([feats[index[id(ep)]], s, np.tile(task_features(ep, names), (ep.length, 1))], 1)

        return chunk_table(ds, features, stats)

    train, held = table(data), table(heldout)
    head = fit_head(train, hcfg, log, label="encoder head")
    mse = first_actions_mse(predict(head, held.features), held)
    return {"mse": mse, "gate": gate(mse, reference)}
