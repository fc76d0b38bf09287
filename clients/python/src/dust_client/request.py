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
    #: The budget is also the request's deadline: DEADLINE_EXCEEDED rather than a chunk after it (the robot keeps
    #: executing its current chunk). Needs latency_budget_ms.
    strict_budget: bool = False


#: Real-time chunking's methods (docs/api.md, "Real-time chunking"); None lets the server choose.
CHUNKING_METHODS = {
    None: "CHUNKING_METHOD_UNSPECIFIED",
    "condition": "CHUNKING_METHOD_CONDITION",
    "inpaint": "CHUNKING_METHOD_INPAINT",
    "naive": "CHUNKING_METHOD_NAIVE",
    "ensemble": "CHUNKING_METHOD_ENSEMBLE",
}


@dataclass
class Prefix:
    """The actions the robot has committed to while the new chunk is computed (real-time chunking): the remaining
    actions of the chunk it is executing, from the control step of this request's observation on."""

    #: (L, action_dim) in the robot's action units, 1 <= L <= the action horizon.
    actions: "np.ndarray | Sequence[Sequence[float]]"
    #: d, how many of them run before the new chunk takes over (0 <= d <= L); None = estimated by the server
    #: from control_period_ms and the stream's measured latency.
    delay_steps: int | None = None
    #: The control period in ms; required when delay_steps is None.
    control_period_ms: float = 0.0
    #: "condition", "inpaint", "naive" or "ensemble"; None = the server's choice (condition where the model was
    #: trained for it, else inpaint).
    method: str | None = None


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
    #: Real-time chunking: the committed prefix; None = none.
    prefix: Prefix | None = None


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
        strict_budget=bool(s.strict_budget),
    )
    # `seed` is proto3 `optional`: leaving it out (rather than sending 0) is what asks the server to draw one.
    if s.seed is not None:
        if isinstance(s.seed, bool) or not isinstance(s.seed, (int, np.integer)) or not 0 <= int(s.seed) <= MAX_SEED:
            raise ValueError(f"sampling.seed must be an integer in [0, {MAX_SEED}], got {s.seed!r}")
        out.seed = int(s.seed)
    return out


def _prefix(p: Prefix) -> types_pb2.CommittedPrefix:
    a = np.asarray(p.actions, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"prefix.actions must be two-dimensional (L, action_dim), got shape {a.shape}")
    if p.method not in CHUNKING_METHODS:
        raise ValueError(f"prefix.method must be one of {[m for m in CHUNKING_METHODS if m]} or None, got {p.method!r}")
    out = types_pb2.CommittedPrefix(
        actions=types_pb2.Tensor(shape=list(a.shape), data=a.astype("<f4").tobytes()),
        control_period_ms=float(p.control_period_ms),
        method=CHUNKING_METHODS[p.method],
    )
    # `delay_steps` is proto3 `optional`: leaving it out asks the server to estimate d.
    if p.delay_steps is not None:
        out.delay_steps = _uint32("prefix.delay_steps", p.delay_steps)
    elif not p.control_period_ms > 0:
        raise ValueError("prefix needs delay_steps, or control_period_ms > 0 for the server to estimate the delay")
    return out


def to_predict_request(req: PredictRequest) -> policy_pb2.PredictRequest:
    """Raises TypeError or ValueError naming the field when the request cannot be encoded as it was meant."""
    msg = _message(req)
    if req.prefix is not None:
        msg.prefix.CopyFrom(_prefix(req.prefix))
    return msg


def _message(req: PredictRequest) -> policy_pb2.PredictRequest:
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
