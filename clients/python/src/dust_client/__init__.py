"""dust_client: the Python client of dust-serve (docs/python-client.md). Robot programs send camera frames as
numpy HWC uint8 arrays, state as floats, and get the action chunk and the predicted future embedding back as
float32 numpy arrays; blocking (DustClient) or asyncio (AsyncDustClient)."""

from ._proto import admin_pb2, policy_pb2, types_pb2
from .aio import AsyncDustClient, AsyncPredictStream
from .client import DustClient
from .errors import DustClientError
from .images import EncodedImage, encode_png, raw_rgb8
from .realtime import RealtimeChunker
from .request import PredictRequest, Prefix, Sampling
from .response import (
    ChunkingReport,
    EmbodimentInfo,
    ModelList,
    ModelVersionInfo,
    OutcomeResult,
    PredictResult,
    SamplingReport,
    Timing,
)
from .retry import DEFAULT_RETRY_POLICY, RetryPolicy, service_config
from .stream import PredictStream

__all__ = [
    "AsyncDustClient",
    "AsyncPredictStream",
    "ChunkingReport",
    "DEFAULT_RETRY_POLICY",
    "DustClient",
    "DustClientError",
    "EmbodimentInfo",
    "EncodedImage",
    "ModelList",
    "ModelVersionInfo",
    "OutcomeResult",
    "PredictRequest",
    "PredictResult",
    "PredictStream",
    "Prefix",
    "RealtimeChunker",
    "RetryPolicy",
    "Sampling",
    "SamplingReport",
    "Timing",
    "admin_pb2",
    "encode_png",
    "policy_pb2",
    "raw_rgb8",
    "service_config",
    "types_pb2",
]
