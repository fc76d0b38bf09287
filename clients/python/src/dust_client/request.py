"""The typed PredictRequest a robot program writes -> the proto message on the wire (pure, but for the request
id it draws)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ._proto import policy_pb2, types_pb2
from .images import EncodedImage, _uint32, to_image_proto

MAX_SEED = (1 << 64) - 1


@dataclass
class Sampling:
    """DUST's step counts and noise (docs/sampling.md); 0 keeps the manifest's default."""

    #: N_A, the denoising steps of the action chunk.
    action_steps: int = 0
    #: N_o, a multiple of N_A, at most the model's max_vision_steps.
    vision_steps: int = 0
    #: Reproducible initial noise, an unsigned 64-bit integer; None lets the server draw one (and report it).
    seed: int | None = None
    #: The server picks N_o (<= vision_steps) to finish within this many milliseconds; 0 = no budget.
    latency_budget_ms: int = 0


@dataclass
class PredictRequest:
    """One observation of one robot (docs/api.md, PredictRequest)."""

    #: A stable identifier of the robot; traffic splits are sticky per robot.
    robot_id: str
    #: A key of the manifest's embodiments (ListModels shows them), e.g. "franka_fr3".
    embodiment: str
    #: One frame per manifest camera: an HWC uint8 RGB array (sent RAW_RGB8) or an EncodedImage.
    images: Mapping[str, "np.ndarray | EncodedImage"] = field(default_factory=dict)
    #: Exactly the embodiment's state_dim finite values.
    state: "np.ndarray | Sequence[float]" = ()
    instruction: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    #: Also return the world model's predicted future-observation embedding.
    return_future_embedding: bool = False
    #: "" (the default model; the traffic split applies), "name", or "name@version" (pinned).
    model: str = ""
    #: A/B credit and world-model surprise are tracked per episode.
    episode_id: str = ""
    #: Echoed in the result. A retried request carries the same id, so a fleet with a shared experiment store
    #: counts it once however many replicas it reached. "" = a random UUID drawn when the message is built.
    request_id: str = ""
    #: How many actions of this episode's previous chunk the robot executed; 0 = unknown.
    steps_executed: int = 0


def _state(values: "np.ndarray | Sequence[float]") -> list[float]:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"state must be one-dimensional, got shape {a.shape}")
    return a.tolist()


def _sampling(s: Sampling) -> types_pb2.SamplingOptions:
    out = types_pb2.SamplingOptions(
        action_steps=_uint32("sampling.action_steps", s.action_steps),
        vision_steps=_uint32("sampling.vision_steps", s.vision_steps),
        latency_budget_ms=_uint32("sampling.latency_budget_ms", s.latency_budget_ms),
    )
    # `seed` is proto3 `optional`: leaving it out (rather than sending 0) is what asks the server to draw one.
    if s.seed is not None:
        if isinstance(s.seed, bool) or not isinstance(s.seed, (int, np.integer)) or not 0 <= int(s.seed) <= MAX_SEED:
            raise ValueError(f"sampling.seed must be an integer in [0, {MAX_SEED}], got {s.seed!r}")
        out.seed = int(s.seed)
    return out


def to_predict_request(req: PredictRequest) -> policy_pb2.PredictRequest:
    """Raises TypeError or ValueError naming the field when the request cannot be encoded as it was meant."""
    return policy_pb2.PredictRequest(
        request_id=req.request_id or str(uuid.uuid4()),
        robot_id=req.robot_id,
        episode_id=req.episode_id,
        model=req.model,
        embodiment=req.embodiment,
        images=[to_image_proto(camera, image) for camera, image in req.images.items()],
        state=_state(req.state),
        instruction=req.instruction,
        sampling=_sampling(req.sampling),
        return_future_embedding=req.return_future_embedding,
        steps_executed=_uint32("steps_executed", req.steps_executed),
    )
