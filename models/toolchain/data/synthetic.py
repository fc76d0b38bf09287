"""A procedurally generated pushing dataset, small enough to train the tiny model on two CPU cores.

World: a 1 x 1 table seen from above, three coloured blocks, a robot arm whose base sits below the table's near
edge. Task: "push the red block left" and paraphrases. A scripted expert moves the end effector (raised) behind
the named block, lowers it, closes the gripper, pushes the block 0.25 along the direction, then lifts and
rests. Two cameras: `front` (the whole table, top-down) and `wrist` (a window that follows the end effector,
narrower when it is low). Two embodiments see the same world through different kinematics: their state is joint
angles obtained by planar inverse kinematics of the end-effector pose with their own link lengths, plus a
gripper opening; their action is the next step's joint targets plus a gripper command. So actions depend on the
instruction (which block, which way), on the images (where the blocks and the arm are), on the state (where the
arm is now) and on the embodiment (its joint space).

Everything is a deterministic function of the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .episodes import ArrayEpisode

COLORS: Dict[str, Tuple[int, int, int]] = {
    "red": (215, 45, 40),
    "green": (45, 170, 70),
    "blue": (45, 85, 215),
    "yellow": (230, 200, 50),
}
DIRECTIONS: Dict[str, Tuple[float, float]] = {  # image axes: x to the right, y downwards
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}
TEMPLATES = (
    "push the {color} block {direction}",
    "move the {color} block {direction}",
    "slide the {color} cube {direction}",
)

TABLE_RGB = np.array([150, 122, 92], dtype=np.float32)
BLOCK_HALF = 0.06
EE_RADIUS = 0.035
PUSH_DISTANCE = 0.25
EPISODE_STEPS = 40
BASE = (0.5, 1.15)  # robot base, below the near (bottom) edge of the table


@dataclass(frozen=True)
class Kinematics:
    """A planar two-link arm on a yawing base; `joints` maps end-effector pose to the embodiment's joints."""

    name: str
    link1: float
    link2: float
    arm_rgb: Tuple[int, int, int]
    ee_rgb: Tuple[int, int, int]

    def ik(self, x: float, y: float, z: float) -> Tuple[float, float, float, float]:
        dx, dy = x - BASE[0], BASE[1] - y
        r = math.hypot(dx, dy)
        yaw = math.atan2(dx, dy)
        h = 0.05 + 0.15 * z - 0.1  # tool height relative to the shoulder
        d = min(max(math.hypot(r, h), abs(self.link1 - self.link2) + 1e-3), self.link1 + self.link2 - 1e-3)
        cos_e = (d * d - self.link1**2 - self.link2**2) / (2 * self.link1 * self.link2)
        elbow = math.acos(max(-1.0, min(1.0, cos_e)))
        shoulder = math.atan2(h, r) + math.atan2(self.link2 * math.sin(elbow), self.link1 + self.link2 * math.cos(elbow))
        pitch = -(shoulder - elbow)
        return yaw, shoulder, elbow, pitch


FRANKA = Kinematics("franka_fr3", 0.75, 0.70, arm_rgb=(205, 205, 210), ee_rgb=(245, 245, 245))
SO100 = Kinematics("so100_arm", 0.80, 0.62, arm_rgb=(60, 60, 60), ee_rgb=(240, 140, 40))
KINEMATICS = {k.name: k for k in (FRANKA, SO100)}


def joint_state(kin: Kinematics, x: float, y: float, z: float, grip_open: float) -> np.ndarray:
    """Proprioceptive state of the embodiment (grip_open in [0, 1], 1 = fully open)."""
    yaw, shoulder, elbow, pitch = kin.ik(x, y, z)
    if kin.name == "franka_fr3":
        # 7 joints (the redundant ones follow the yaw) + finger width in metres.
        return np.array([yaw, shoulder, 0.3 * math.sin(yaw), -elbow, 0.2 * yaw, pitch + math.pi / 2,
                         yaw + math.pi / 4, 0.04 * grip_open], dtype=np.float32)
    # SO-100: 5 joints + jaw angle.
    return np.array([yaw, shoulder, elbow, pitch, 0.5 * yaw, 0.6 * grip_open], dtype=np.float32)


def joint_action(kin: Kinematics, x: float, y: float, z: float, close_cmd: float) -> np.ndarray:
    """Joint targets for the next step, plus the gripper command in the embodiment's convention."""
    s = joint_state(kin, x, y, z, 1.0 - close_cmd)
    if kin.name == "franka_fr3":
        s[7] = close_cmd  # Franka gripper command: 1 = grasp/close, 0 = open
    return s


@dataclass
class SceneState:
    blocks: List[Tuple[str, np.ndarray]]  # colour name, centre (x, y)
    ee: np.ndarray  # (x, y, z), z in [0, 1] (1 = raised)
    grip_open: float


def _render(scene: SceneState, kin: Kinematics, size: int, center: Tuple[float, float], half: float,
            brightness: float, fingers: bool) -> np.ndarray:
    """Rasterise the scene in the window [center - half, center + half]^2 (world units) at size x size."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size * (2 * half) - half
    xs = center[0] + coords[None, :]
    ys = center[1] + coords[:, None]
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = TABLE_RGB
    off_table = (xs < 0) | (xs > 1) | (ys < 0) | (ys > 1)
    img[np.broadcast_to(off_table, (size, size))] = (70, 60, 55)
    for color, c in scene.blocks:
        m = (np.abs(xs - c[0]) < BLOCK_HALF) & (np.abs(ys - c[1]) < BLOCK_HALF)
        img[m] = COLORS[color]
    ex, ey, ez = scene.ee
    # The arm: a thick segment from the base to the end effector (drawn above the blocks, as seen from above).
    px, py = xs - BASE[0], ys - BASE[1]
    sx, sy = ex - BASE[0], ey - BASE[1]
    u = np.clip((px * sx + py * sy) / (sx * sx + sy * sy + 1e-9), 0.0, 1.0)
    dist = np.hypot(px - u * sx, py - u * sy)
    img[dist < 0.022] = kin.arm_rgb
    # The end effector looks larger when raised (closer to the overhead camera).
    r = EE_RADIUS * (1.0 + 0.5 * ez)
    img[np.hypot(xs - ex, ys - ey) < r] = kin.ee_rgb
    if fingers:
        # Wrist view: two fingers at the bottom of the image whose gap shows the gripper opening.
        gap = 0.08 + 0.25 * scene.grip_open
        fx = coords[None, :] / half
        fy = coords[:, None] / half
        for side in (-1.0, 1.0):
            m = (np.abs(fx - side * gap) < 0.06) & (fy > 0.55)
            img[np.broadcast_to(m, (size, size))] = kin.ee_rgb
    return np.clip(img * brightness, 0, 255).astype(np.uint8)


def render_front(scene: SceneState, kin: Kinematics, size: int, brightness: float) -> np.ndarray:
    return _render(scene, kin, size, (0.5, 0.5), 0.5, brightness, fingers=False)


def render_wrist(scene: SceneState, kin: Kinematics, size: int, brightness: float) -> np.ndarray:
    half = 0.15 + 0.1 * float(scene.ee[2])
    return _render(scene, kin, size, (float(scene.ee[0]), float(scene.ee[1])), half, brightness, fingers=True)


def _place_blocks(rng: np.random.Generator, colors: Sequence[str]) -> List[Tuple[str, np.ndarray]]:
    while True:
        pos = rng.uniform(0.22, 0.78, size=(len(colors), 2))
        d = np.hypot(pos[:, None, 0] - pos[None, :, 0], pos[:, None, 1] - pos[None, :, 1])
        if (d + np.eye(len(colors)) * 10).min() > 0.2:
            return [(c, p.astype(np.float32)) for c, p in zip(colors, pos)]


def generate_episode(seed: int, embodiment: str, image_size: int = 64) -> ArrayEpisode:
    rng = np.random.default_rng(seed)
    kin = KINEMATICS[embodiment]
    colors = list(rng.choice(sorted(COLORS), size=3, replace=False))
    blocks = _place_blocks(rng, colors)
    target = int(rng.integers(3))
    # A direction that keeps the pushed block on the table.
    dirs = [n for n in sorted(DIRECTIONS)
            if 0.12 < blocks[target][1][0] + DIRECTIONS[n][0] * PUSH_DISTANCE < 0.88
            and 0.12 < blocks[target][1][1] + DIRECTIONS[n][1] * PUSH_DISTANCE < 0.88]
    direction = dirs[int(rng.integers(len(dirs)))]
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    instruction = template.format(color=colors[target], direction=direction)
    dvec = np.array(DIRECTIONS[direction], dtype=np.float32)
    brightness = float(rng.uniform(0.85, 1.15))
    speed = float(rng.uniform(0.04, 0.06))

    scene = SceneState(blocks=blocks, ee=np.array([rng.uniform(0.15, 0.85), rng.uniform(0.8, 0.95), 1.0], dtype=np.float32),
                       grip_open=1.0)
    contact = BLOCK_HALF + EE_RADIUS + 0.01
    phase, pushed, close_cmd = "approach", 0.0, 0.0
    ee_traj, grip_traj, cmd_traj, frames_f, frames_w = [], [], [], [], []
    for _ in range(EPISODE_STEPS):
        ee_traj.append(scene.ee.copy())
        grip_traj.append(scene.grip_open)
        frames_f.append(render_front(scene, kin, image_size, brightness))
        frames_w.append(render_wrist(scene, kin, image_size, brightness))
        # Scripted expert: one step of motion.
        block = scene.blocks[target][1]
        if phase == "approach":
            goal = block - dvec * contact
            delta = goal - scene.ee[:2]
            dist = float(np.hypot(*delta))
            step = min(speed, dist)
            scene.ee[:2] += delta / (dist + 1e-9) * step
            if dist <= speed:
                phase = "descend"
        elif phase == "descend":
            scene.ee[2] = max(0.0, scene.ee[2] - 0.34)
            close_cmd = 1.0
            if scene.ee[2] == 0.0:
                phase = "push"
        elif phase == "push":
            step = min(0.025, PUSH_DISTANCE - pushed)
            scene.ee[:2] += dvec * step
            block += dvec * step
            pushed += step
            if pushed >= PUSH_DISTANCE - 1e-6:
                phase = "lift"
        elif phase == "lift":
            close_cmd = 0.0
            scene.ee[2] = min(1.0, scene.ee[2] + 0.34)
            if scene.ee[2] == 1.0:
                phase = "rest"
        # The gripper follows its command with a lag (it takes a few steps to open or close).
        scene.grip_open += 0.5 * ((1.0 - close_cmd) - scene.grip_open)
        cmd_traj.append(close_cmd)

    state = np.stack([joint_state(kin, *ee, g) for ee, g in zip(ee_traj, grip_traj)])
    # a_t = the targets reached at t+1, with the gripper command issued at t.
    nxt = ee_traj[1:] + [ee_traj[-1]]
    actions = np.stack([joint_action(kin, *ee, c) for ee, c in zip(nxt, cmd_traj)])
    return ArrayEpisode(
        embodiment=embodiment,
        instruction=instruction,
        frames={"front": np.stack(frames_f), "wrist": np.stack(frames_w)},
        state=state,
        actions=actions,
    )


def generate_dataset(episodes_per_embodiment: int, seed: int, image_size: int = 64,
                     embodiments: Sequence[str] = ("franka_fr3", "so100_arm")) -> List[ArrayEpisode]:
    """Interleaved embodiments; episode i of embodiment j uses seed (seed, j, i) so datasets nest."""
    out = []
    for i in range(episodes_per_embodiment):
        for j, name in enumerate(embodiments):
            out.append(generate_episode(int(np.random.SeedSequence([seed, j, i]).generate_state(1)[0]), name, image_size))
    return out


def vocabulary_texts() -> List[str]:
    """Every instruction the generator can produce (the tokenizer's vocabulary source)."""
    return [t.format(color=c, direction=d) for t in TEMPLATES for c in COLORS for d in DIRECTIONS]
