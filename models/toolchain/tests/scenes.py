"""Synthetic push-like scenes drawn in numpy: a table, three coloured discs at layout-random places and a grey pusher
that moves at a constant velocity; the action at every step is that velocity. Just enough of the push task for the
world-model target and the oracle-gap checks to have something real to see, in milliseconds."""

from __future__ import annotations

from typing import List

import numpy as np

from models.toolchain.data.episodes import ArrayEpisode

TABLE = (140, 110, 90)
BALLS = ((215, 40, 30), (40, 180, 60), (40, 75, 230))
PUSHER = (200, 200, 200)


def draw(size: int, discs) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = TABLE
    for (x, y), r, colour in discs:
        img[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = colour
    return img


def pusher_episodes(n: int, size: int = 64, length: int = 24, seed: int = 0, embodiment: str = "pusher2",
                    state_dim: int = 2, action_dim: int = 2) -> List[ArrayEpisode]:
    """n layouts; the pusher crosses a good part of the frame within 16 steps, balls stay put."""
    rng = np.random.default_rng(seed)
    out = []
    r_ball, r_pusher = size / 16, size / 12
    for _ in range(n):
        balls = rng.uniform(0.15 * size, 0.85 * size, size=(3, 2))
        start = rng.uniform(0.3 * size, 0.7 * size, size=2)
        velocity = rng.uniform(-1, 1, size=2) * size / 80
        pos = start + np.arange(length)[:, None] * velocity
        frames = np.stack([draw(size, [(b, r_ball, c) for b, c in zip(balls, BALLS)] + [(p, r_pusher, PUSHER)])
                           for p in pos])
        state = np.zeros((length, state_dim), dtype=np.float32)
        state[:, :2] = pos[0] / size  # only where it started: the motion is in the images
        actions = np.zeros((length, action_dim), dtype=np.float32)
        actions[:, :2] = velocity
        out.append(ArrayEpisode(embodiment=embodiment, instruction="push the red ball into the white circle",
                                frames={"top": frames, "gripper": frames}, state=state, actions=actions))
    return out
