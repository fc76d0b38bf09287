"""The reference sampler against docs/sampling.md's pseudocode (normative)."""

from __future__ import annotations

import pytest
import torch

from models.toolchain.sampling import joint_sample


class Recorder:
    """A velocity field that records every call: constant velocities, so updates are countable."""

    def __init__(self):
        self.calls = []

    def __call__(self, a, o, tau_a, tau_o):
        self.calls.append((a.clone(), o.clone(), tau_a, tau_o))
        return torch.ones_like(a), torch.ones_like(o)


@pytest.mark.parametrize("n_a,n_o", [(4, 4), (4, 16), (2, 8), (1, 3), (3, 12)])
def test_evaluation_count_schedule_and_action_updates(n_a, n_o):
    q = n_o // n_a
    f = Recorder()
    a0, o0 = torch.zeros(1, 2, 3), torch.zeros(1, 4, 2)
    a, o = joint_sample(f, a0, o0, n_a, n_o)
    assert len(f.calls) == n_o  # exactly N_o evaluations
    for i, (a_in, o_in, tau_a, tau_o) in enumerate(f.calls):
        assert tau_o == i / n_o
        assert tau_a == (i // q) / n_a  # the action's true noise level
        # Vision moved once per evaluation, actions once per completed block of q evaluations.
        torch.testing.assert_close(o_in, torch.full_like(o0, i / n_o))
        torch.testing.assert_close(a_in, torch.full_like(a0, (i // q) / n_a))
    distinct_actions = {float(c[0].flatten()[0]) for c in f.calls}
    assert len(distinct_actions) == n_a  # updated N_A times: N_A - 1 inside the loop plus the final one
    torch.testing.assert_close(a, torch.ones_like(a0))
    torch.testing.assert_close(o, torch.ones_like(o0))


def test_action_step_uses_the_last_velocity_of_its_block():
    """Each block's action update uses v_A from its LAST evaluation, when vision is (q-1)/N_o ahead."""
    seen = []

    def f(a, o, tau_a, tau_o):
        seen.append(tau_o)
        return torch.full_like(a, tau_o), torch.zeros_like(o)

    a, _ = joint_sample(f, torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), 2, 8)
    # Blocks end at i = 3 and i = 7: tau_o = 3/8 and 7/8, each step scaled by 1/N_A.
    assert float(a) == pytest.approx((3 / 8 + 7 / 8) / 2)


def test_q1_is_synchronous_euler():
    def f(a, o, tau_a, tau_o):
        assert tau_a == tau_o
        return -a, -o

    a, o = joint_sample(f, torch.ones(1, 1, 1), torch.ones(1, 1, 1), 4, 4)
    assert float(a) == pytest.approx(0.75**4) and float(o) == pytest.approx(0.75**4)


@pytest.mark.parametrize("n_a,n_o", [(0, 4), (4, 6), (4, 2)])
def test_invalid_step_counts(n_a, n_o):
    with pytest.raises(ValueError):
        joint_sample(Recorder(), torch.zeros(1), torch.zeros(1), n_a, n_o)
