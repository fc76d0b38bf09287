"""Messages on the wire -> the typed results a program reads, tensors as numpy arrays. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ._proto import policy_pb2, types_pb2


@dataclass(frozen=True)
class SamplingReport:
    action_steps: int
    #: N_o actually used (the server may lower it to meet a latency budget).
    vision_steps: int
    #: The seed used: the request's, or the one the server drew. Replaying it reproduces the chunk.
    seed: int
    budget_ms: int
    budget_met: bool
    #: With a budget: whether the server's planner predicted that even N_A steps fit it.
    budget_feasible: bool
    #: With a budget: the time the planner predicted from receipt to response, in ms (0 without).
    planned_total_ms: float


@dataclass(frozen=True)
class Timing:
    queue_ms: float
    vlm_ms: float
    denoise_ms: float
    total_ms: float
    vlm_batch_size: int
    mean_denoise_batch: float
    preprocess_ms: float = 0.0
    """Receipt until the images were decoded and the prompt tokenized (part of queue_ms)."""


@dataclass(frozen=True)
class ChunkingReport:
    """How the server used the request's committed prefix (real-time chunking)."""

    #: "condition", "inpaint", "naive" or "ensemble".
    method: str
    #: The delay d the server assumed.
    delay_steps: int
    #: Whether d was estimated from the control period and the stream's latency.
    delay_estimated: bool
    #: L, the prefix's length.
    prefix_length: int


@dataclass(frozen=True)
class PredictResult:
    request_id: str
    model_name: str
    model_version: int
    #: "name@version" of the version that served the request.
    variant: str
    #: The action chunk, float32 of shape (horizon, action_dim), denormalized: row i is the i-th action to execute.
    actions: np.ndarray
    sampling: SamplingReport
    timing: Timing
    #: float32 of shape (future_tokens, future_dim); only when the request set return_future_embedding.
    future_embedding: np.ndarray | None = None
    #: 1 - cosine(the episode's previous prediction of its future embedding, this observation's embedding).
    world_model_surprise: float | None = None
    #: Set when the request carried a prefix.
    chunking: ChunkingReport | None = None


def decode_tensor(tensor: types_pb2.Tensor) -> np.ndarray:
    """float32 little-endian, row-major (docs/api.md); a native-order, writable copy. ValueError when the byte
    count does not match the shape."""
    shape = tuple(tensor.shape)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(tensor.data) != count * 4:
        raise ValueError(f"tensor of shape {list(shape)} needs {count * 4} bytes, got {len(tensor.data)}")
    return np.frombuffer(tensor.data, dtype="<f4").astype(np.float32).reshape(shape)


def from_predict_response(msg: policy_pb2.PredictResponse) -> PredictResult:
    """ValueError when the response's tensors are malformed."""
    if not msg.HasField("actions"):
        raise ValueError("response has no actions tensor")
    s, t = msg.sampling, msg.timing
    future = decode_tensor(msg.future_embedding) if msg.HasField("future_embedding") and msg.future_embedding.shape else None
    return PredictResult(
        request_id=msg.request_id,
        model_name=msg.model_name,
        model_version=msg.model_version,
        variant=msg.variant,
        actions=decode_tensor(msg.actions),
        sampling=SamplingReport(
            action_steps=s.action_steps,
            vision_steps=s.vision_steps,
            seed=s.seed,
            budget_ms=s.budget_ms,
            budget_met=s.budget_met,
            budget_feasible=s.budget_feasible,
            planned_total_ms=s.planned_total_ms,
        ),
        timing=Timing(
            queue_ms=t.queue_ms,
            vlm_ms=t.vlm_ms,
            denoise_ms=t.denoise_ms,
            total_ms=t.total_ms,
            vlm_batch_size=t.vlm_batch_size,
            mean_denoise_batch=t.mean_denoise_batch,
            preprocess_ms=t.preprocess_ms,
        ),
        future_embedding=future,
        # proto3 `optional`: presence is tracked, so a surprise of exactly 0 is kept.
        world_model_surprise=msg.world_model_surprise if msg.HasField("world_model_surprise") else None,
        chunking=_chunking(msg.chunking) if msg.HasField("chunking") else None,
    )


def _method_name(value: int) -> str:
    name = types_pb2.ChunkingMethod.Name(value) if value in types_pb2.ChunkingMethod.values() else "CHUNKING_METHOD_UNSPECIFIED"
    return name.removeprefix("CHUNKING_METHOD_").lower()


def _chunking(c: types_pb2.ChunkingReport) -> ChunkingReport:
    return ChunkingReport(
        method=_method_name(c.method),
        delay_steps=c.delay_steps,
        delay_estimated=c.delay_estimated,
        prefix_length=c.prefix_length,
    )


ModelState = Literal["UNSPECIFIED", "LOADING", "READY", "FAILED", "UNLOADING"]


@dataclass(frozen=True)
class EmbodimentInfo:
    name: str
    id: int
    state_dim: int
    action_dim: int


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: int
    state: ModelState
    #: Why the version FAILED, or is LOADING again; empty otherwise.
    reason: str
    #: Why the last reload failed while the copy loaded before kept serving; empty otherwise.
    last_load_error: str
    embodiments: tuple[EmbodimentInfo, ...]
    cameras: tuple[str, ...]
    image_height: int
    image_width: int
    action_horizon: int
    future_tokens: int
    future_dim: int
    default_action_steps: int
    default_vision_steps: int
    max_vision_steps: int
    #: Share of the model's unpinned traffic.
    traffic_weight: float
    #: The execution provider serving it.
    device: str
    #: The real-time chunking methods it answers a committed prefix with ("condition" where trained for it, "inpaint", "naive", "ensemble"); empty:
    #: it refuses one.
    realtime_chunking: tuple[str, ...] = ()

    def embodiment(self, name: str) -> EmbodimentInfo:
        for e in self.embodiments:
            if e.name == name:
                return e
        raise KeyError(f"{self.name}@{self.version} has no embodiment {name!r}")


@dataclass(frozen=True)
class ModelList:
    models: tuple[ModelVersionInfo, ...]
    #: The model a request with an empty ``model`` goes to.
    default_model: str = field(default="")


def _state_name(value: int) -> ModelState:
    name = policy_pb2.ModelState.Name(value) if value in policy_pb2.ModelState.values() else "MODEL_STATE_UNSPECIFIED"
    return name.removeprefix("MODEL_STATE_")  # type: ignore[return-value]


def from_list_models_response(msg: policy_pb2.ListModelsResponse) -> ModelList:
    return ModelList(
        models=tuple(
            ModelVersionInfo(
                name=m.name,
                version=m.version,
                state=_state_name(m.state),
                reason=m.reason,
                last_load_error=m.last_load_error,
                embodiments=tuple(EmbodimentInfo(e.name, e.id, e.state_dim, e.action_dim) for e in m.embodiments),
                cameras=tuple(m.cameras),
                image_height=m.image_height,
                image_width=m.image_width,
                action_horizon=m.action_horizon,
                future_tokens=m.future_tokens,
                future_dim=m.future_dim,
                default_action_steps=m.default_action_steps,
                default_vision_steps=m.default_vision_steps,
                max_vision_steps=m.max_vision_steps,
                traffic_weight=m.traffic_weight,
                device=m.device,
                realtime_chunking=tuple(_method_name(c) for c in m.realtime_chunking),
            )
            for m in msg.models
        ),
        default_model=msg.default_model,
    )


@dataclass(frozen=True)
class OutcomeResult:
    #: The model and version the episode was credited to.
    model_name: str
    model_version: int
    #: Whether the outcome entered the model's current experiment (not for pinned episodes, earlier
    #: experiments or repeated reports).
    counted: bool


def to_report_outcome_request(robot_id: str, episode_id: str, success: bool, reward: float | None) -> policy_pb2.ReportOutcomeRequest:
    msg = policy_pb2.ReportOutcomeRequest(robot_id=robot_id, episode_id=episode_id, success=success)
    if reward is not None:
        msg.reward = reward
    return msg


def from_report_outcome_response(msg: policy_pb2.ReportOutcomeResponse) -> OutcomeResult:
    return OutcomeResult(msg.model_name, msg.model_version, msg.counted)
