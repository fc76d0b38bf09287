"""The diagnostics of evaluate.py that say whether a policy uses its images and its world model: the image swap
shows another scene, and the oracle gap conditions the actions on the true future vs on noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.toolchain.evaluate import oracle_gap, oracle_gate, other_layout


@dataclass
class Ep:
    embodiment: str
    seed: int


def test_the_image_swap_takes_another_layout_of_the_same_embodiment() -> None:
    # One layout is recorded once per ball named: three episodes in a row show the same scene.
    eps = [Ep("pusher2", 1), Ep("pusher2", 1), Ep("pusher2", 1), Ep("paddle3", 2), Ep("pusher2", 3)]
    assert other_layout(eps, 0) == 4
    assert other_layout(eps, 4) == 0
    assert other_layout(eps, 3) is None  # the only paddle3 layout


class FutureReader(torch.nn.Module):
    """A denoiser whose action velocity points at actions read from the future tokens (their mean over tokens, in
    the first action columns) and whose vision velocity is the flow towards a fixed `target`: an ideal world-model
    reader, so the oracle gap's answer is known."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target

    def forward(self, vl, state, actions, future, tau_a, tau_o, embodiment_id):
        read = torch.zeros_like(actions)
        read[..., :2] = future.mean(dim=1, keepdim=True)[..., :2]
        t = tau_a.view(-1, 1, 1)
        v_a = (read - actions) / (1 - t).clamp(min=1e-3)
        # The straight-line flow to the target from wherever O is: exact at any number of Euler steps.
        v_o = (self.target - future) / (1 - tau_o.view(-1, 1, 1)).clamp(min=1e-3)
        return v_a, v_o


class Stub(torch.nn.Module):
    def __init__(self, cfg, target):
        super().__init__()
        self.cfg = cfg
        self.denoiser = FutureReader(target)
        self.vlm = self

    def forward(self, pixels, ids, mask):
        return torch.zeros(pixels.shape[0], 1, 4), None

    def image_embedding(self, future_pixels):
        return self.denoiser.target


def test_oracle_gap_conditions_on_the_true_future_and_scores_world_model_steps(micro_cfg) -> None:
    d = micro_cfg.denoiser
    n = 6
    g = torch.Generator().manual_seed(0)
    target = torch.randn((n, d.future_tokens, d.future_dim), generator=g)
    actions = torch.zeros((n, d.action_horizon, d.action_dim))
    actions[..., :2] = target.mean(dim=1, keepdim=True)[..., :2]
    mask = torch.zeros((n, d.action_dim))
    mask[:, :2] = 1
    batch = {"pixel_values": torch.zeros(n, 2, 3, 4, 4), "input_ids": torch.zeros(n, 3, dtype=torch.int64),
             "attention_mask": torch.ones(n, 3, dtype=torch.int64), "state": torch.zeros(n, d.state_dim),
             "embodiment_id": torch.zeros(n, dtype=torch.int64), "future_pixels": torch.zeros(n, 3, 4, 4),
             "actions": actions, "action_mask": mask}
    gap = oracle_gap(Stub(micro_cfg, target), batch)
    assert gap["action_mse_true_future"] < 1e-8 < gap["action_mse_noise_future"]
    assert all(v < 1e-8 for v in gap["world_model_mse_by_vision_steps"].values())
    assert not oracle_gate(gap)["pass"]  # an exact world model at every N_o: the error cannot fall
    falling = dict(gap, world_model_mse_by_vision_steps={1: 0.5, 4: 0.2, 16: 0.1})
    assert oracle_gate(falling)["pass"]
    assert not oracle_gate(dict(falling, action_mse_true_future=1.0, action_mse_noise_future=0.5))["pass"]
