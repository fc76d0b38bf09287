"""The generated message modules (built from proto/ by gen_protos.py) and the method paths the client calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

try:
    from ._generated.dust.serving.v1 import admin_pb2, policy_pb2, types_pb2
except ImportError as err:  # pragma: no cover - only a source checkout that was never built
    raise ImportError(
        "dust_client's generated protobuf modules are missing: install the package (pip install ./clients/python), "
        "which generates them from proto/ at build time"
    ) from err

__all__ = ["admin_pb2", "policy_pb2", "types_pb2", "Method", "PREDICT", "STREAM_PREDICT", "LIST_MODELS",
           "REPORT_OUTCOME", "HEALTH_CHECK", "LOAD_MODEL", "UNLOAD_MODEL", "SET_TRAFFIC_SPLIT", "GET_EXPERIMENT"]


@dataclass(frozen=True)
class Method:
    path: str
    serialize: Callable[[Any], bytes]
    deserialize: Callable[[bytes], Any]


def _method(service: str, name: str, response: Any) -> Method:
    return Method(f"/{service}/{name}", lambda msg: msg.SerializeToString(), response.FromString)


_POLICY = "dust.serving.v1.PolicyService"
_ADMIN = "dust.serving.v1.AdminService"
PREDICT = _method(_POLICY, "Predict", policy_pb2.PredictResponse)
STREAM_PREDICT = _method(_POLICY, "StreamPredict", policy_pb2.PredictResponse)
LIST_MODELS = _method(_POLICY, "ListModels", policy_pb2.ListModelsResponse)
REPORT_OUTCOME = _method(_POLICY, "ReportOutcome", policy_pb2.ReportOutcomeResponse)
LOAD_MODEL = _method(_ADMIN, "LoadModel", admin_pb2.ModelStatus)
UNLOAD_MODEL = _method(_ADMIN, "UnloadModel", admin_pb2.ModelStatus)
SET_TRAFFIC_SPLIT = _method(_ADMIN, "SetTrafficSplit", admin_pb2.TrafficSplit)
GET_EXPERIMENT = _method(_ADMIN, "GetExperiment", admin_pb2.Experiment)


# grpc.health.v1 is not among this repository's protos, and its two messages are one field each:
# HealthCheckRequest { string service = 1; }, HealthCheckResponse { ServingStatus status = 1; }.
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _health_request(service: str) -> bytes:
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("malformed HealthCheckResponse")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _health_response(buf: bytes) -> str:
    status, pos = 0, 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            if key >> 3 == 1:
                status = value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError("malformed HealthCheckResponse")
    return SERVING_STATUS.get(status, "UNKNOWN")


HEALTH_CHECK = Method("/grpc.health.v1.Health/Check", _health_request, _health_response)
