"""A robot's control loop on dust-serve, with a simulated robot (random camera frames, a state that follows the
actions), so that it runs anywhere a server does:

    python3 examples/robot_loop.py --address localhost:50051 --steps 5

A real robot replaces SimulatedRobot with its camera and arm drivers; the loop stays the same.
"""

from __future__ import annotations

import argparse
import time
import uuid

import numpy as np

from dust_client import DustClient, PredictRequest, Sampling


class SimulatedRobot:
    """A franka_fr3 with two 64x64 RGB cameras: what a driver hands over, numpy HWC uint8 frames and float joints."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.joints = np.array([0.0, 1.0, 0.0, -2.0, 0.0, 2.5, 0.7, 0.02], dtype=np.float32)

    def observe(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        frames = {cam: self.rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for cam in ("front", "wrist")}
        return frames, self.joints.copy()

    def apply(self, action: np.ndarray) -> None:
        self.joints = action.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="localhost:50051")
    parser.add_argument("--token", default=None, help="bearer token, for a server with a tokens file")
    parser.add_argument("--ca-file", default=None, help="PEM CA of the server's certificate: TLS")
    parser.add_argument("--steps", type=int, default=5, help="chunks to request")
    parser.add_argument("--execute", type=int, default=8, help="actions of each chunk to execute before replanning")
    args = parser.parse_args()

    robot = SimulatedRobot()
    episode = str(uuid.uuid4())
    with DustClient(args.address, token=args.token, ca_file=args.ca_file) as client:
        with client.stream(timeout=600) as session:
            executed = 0
            for step in range(args.steps):
                frames, state = robot.observe()
                started = time.perf_counter()
                result = session.predict(
                    PredictRequest(
                        robot_id="sim-arm-1",
                        episode_id=episode,
                        embodiment="franka_fr3",
                        images=frames,
                        state=state,
                        instruction="push the red block left",
                        sampling=Sampling(seed=step),
                        steps_executed=executed,
                    ),
                    timeout=60,
                )
                ms = (time.perf_counter() - started) * 1000
                print(f"step {step}: {result.variant} actions {result.actions.shape} in {ms:.1f} ms, "
                      f"first action {np.array2string(result.actions[0], precision=3)}", flush=True)
                for action in result.actions[: args.execute]:
                    robot.apply(action)
                executed = min(args.execute, len(result.actions))
        outcome = client.report_outcome("sim-arm-1", episode, success=True)
        print(f"episode credited to {outcome.model_name}@{outcome.model_version}")


if __name__ == "__main__":
    main()
