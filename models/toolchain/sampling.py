"""Asynchronous joint sampling, the Python reference of docs/sampling.md (normative; paper eq. 5, Algorithm 2).

`joint_sample` is a pure function of the velocity field f and the initial noise: it draws nothing itself,
so the same A_0, O_0 give the same result in every implementation (the TypeScript server is tested against
golden vectors this function produced).
"""

from __future__ import annotations

from typing import Callable, Tuple, TypeVar

import torch

T = TypeVar("T")

# f(A, O, tau_A, tau_o) -> (v_A, v_O). Conditioning (vl_embs, state, embodiment) is closed over by the caller.
VelocityField = Callable[[torch.Tensor, torch.Tensor, float, float], Tuple[torch.Tensor, torch.Tensor]]


def check_steps(action_steps: int, vision_steps: int) -> int:
    """N_A >= 1 and N_o = q * N_A with q >= 1; returns q."""
    if action_steps < 1 or vision_steps < action_steps or vision_steps % action_steps:
        raise ValueError(f"need N_A >= 1 and N_o a multiple of N_A, got N_A={action_steps}, N_o={vision_steps}")
    return vision_steps // action_steps


def joint_sample(
    f: VelocityField, actions0: torch.Tensor, future0: torch.Tensor, action_steps: int, vision_steps: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """docs/sampling.md, line by line:

        A <- A_0 ; O <- O_0
        for i in 0 .. N_o - 1:
            tau_o = i / N_o
            tau_A = floor(i / q) / N_A
            (v_A, v_O) = f(A, O, tau_A, tau_o, cond)
            O <- O + v_O / N_o
            if (i + 1) mod q == 0:
                A <- A + v_A / N_A
        return A, O
    """
    q = check_steps(action_steps, vision_steps)
    a, o = actions0, future0
    for i in range(vision_steps):
        tau_o = i / vision_steps
        tau_a = (i // q) / action_steps
        v_a, v_o = f(a, o, tau_a, tau_o)
        if v_o is not None:  # None: an action-only policy, whose O stays the initial noise (and is never served)
            o = o + v_o / vision_steps
        if (i + 1) % q == 0:
            a = a + v_a / action_steps
    return a, o


def denoiser_field(denoiser: torch.nn.Module, vl_embs: torch.Tensor, state: torch.Tensor, embodiment_id: torch.Tensor) -> VelocityField:
    """f for a DUST denoiser with fixed conditioning; flow times are broadcast to every batch row as float32,
    the dtype of the graph's tau inputs."""

    def f(a: torch.Tensor, o: torch.Tensor, tau_a: float, tau_o: float) -> Tuple[torch.Tensor, torch.Tensor]:
        b = a.shape[0]
        ta = torch.full((b,), tau_a, dtype=torch.float32, device=a.device)
        to = torch.full((b,), tau_o, dtype=torch.float32, device=a.device)
        with torch.no_grad():
            return denoiser(vl_embs, state, a, o, ta, to, embodiment_id)

    return f
