"""DustClient: the blocking client of PolicyService (plus health and AdminService), for robot programs that
run a control loop in a thread. One channel per client; methods return typed results with numpy arrays and
raise DustClientError. The asyncio twin is dust_client.aio.AsyncDustClient.

The channel balances over every address the target resolves to and retries what a draining, dying or
overloaded replica answers (retry.py); a StreamPredict session re-opens on another replica (stream.py). So one
client pointed at N replicas (``ipv4:10.0.0.1:50051,10.0.0.2:50051``, ``dns:///dust-serve.robots.svc:50051``) or
at a load balancer loses no request when one of them goes away.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from . import _proto
from ._proto import Method, admin_pb2, policy_pb2
from .channel import ChannelOwner, Deadline, Metadata, call_metadata
from .errors import DustClientError, broken_in_transit, invalid_argument
from .request import PredictRequest, to_predict_request
from .response import (
    ModelList,
    OutcomeResult,
    PredictResult,
    from_list_models_response,
    from_predict_response,
    from_report_outcome_response,
    to_report_outcome_request,
)
from .stream import PredictStream


def encode(build: Any, *args: Any) -> Any:
    """A request that cannot be encoded fails as the server would have failed it: INVALID_ARGUMENT."""
    try:
        return build(*args)
    except (TypeError, ValueError) as err:
        raise invalid_argument(err) from err


def decode(what: str, build: Any, msg: Any) -> Any:
    """A response that cannot be decoded is the server's fault: INTERNAL, as gRPC reports undecodable messages."""
    try:
        return build(msg)
    except ValueError as err:
        raise DustClientError(grpc.StatusCode.INTERNAL, f"malformed {what}: {err}") from err


class DustClient(ChannelOwner):
    """A blocking dust-serve client. ``address`` is a gRPC target: ``host:port``, ``ipv4:a:p,b:p``, ``dns:///...``.

    - ``token``: sent as ``authorization: Bearer <token>`` on every call.
    - ``tls``/``ca_file``: TLS, verifying the server with ``ca_file`` (PEM), else the system's roots;
      ``cert_file``/``key_file``: a client certificate for mutual TLS; ``credentials`` replaces all of them.
    - ``default_timeout``: seconds for unary calls that pass none; streams only get an explicit one.
    - ``retry``: the retry policy of PolicyService calls and of re-opening a broken stream; False turns both off.
    - ``options``: gRPC channel arguments, e.g. ``{"grpc.keepalive_time_ms": 10000}``; a ``grpc.service_config``
      there replaces the one built from ``retry`` and ``load_balancing`` (streams still re-open per ``retry``).
    """

    def __enter__(self) -> "DustClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled and later calls raise FAILED_PRECONDITION."""
        self._closed = True
        self._channel.close()

    def predict(self, request: PredictRequest, *, timeout: float | None = None, metadata: Metadata | None = None) -> PredictResult:
        """One observation in, one action chunk out."""
        msg = encode(to_predict_request, request)
        response = self._policy_unary(_proto.PREDICT, msg, timeout, metadata)
        return decode("PredictResponse", from_predict_response, response)

    def stream(self, *, timeout: float | None = None, metadata: Metadata | None = None) -> PredictStream:
        """Opens a StreamPredict session (use it as a context manager), re-opened on another replica after a
        retryable failure (see ``retry``). ``timeout`` is one deadline for the whole session."""
        self._assert_open()
        deadline = Deadline(timeout)
        method = self._channel.stream_stream(
            _proto.STREAM_PREDICT.path,
            request_serializer=_proto.STREAM_PREDICT.serialize,
            response_deserializer=_proto.STREAM_PREDICT.deserialize,
        )
        md = call_metadata(self._setup, metadata)

        def open_call(requests: Any) -> Any:
            self._assert_open()
            return method(requests, timeout=deadline.remaining(), metadata=md)

        return PredictStream(open_call, self._setup.retry)

    def list_models(self, *, timeout: float | None = None, metadata: Metadata | None = None) -> ModelList:
        """Loaded models and versions with their state, cameras, embodiments, shapes and traffic weights."""
        response = self._policy_unary(_proto.LIST_MODELS, policy_pb2.ListModelsRequest(), timeout, metadata)
        return from_list_models_response(response)

    def report_outcome(
        self,
        robot_id: str,
        episode_id: str,
        success: bool,
        reward: float | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> OutcomeResult:
        """Reports an episode's result; the server credits the version that served the episode."""
        msg = to_report_outcome_request(robot_id, episode_id, success, reward)
        return from_report_outcome_response(self._policy_unary(_proto.REPORT_OUTCOME, msg, timeout, metadata))

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING" or "UNKNOWN". ``service`` is "" (the server),
        "<model>" or "<model>@<version>"; a name the server does not track raises NOT_FOUND. Not retried."""
        return self._unary(_proto.HEALTH_CHECK, service, self._timeout(timeout), None)

    # AdminService: the generated messages (dust_client.admin_pb2), for operators' scripts.
    def load_model(self, name: str, version: int = 0, *, timeout: float | None = None) -> admin_pb2.ModelStatus:
        return self._unary(_proto.LOAD_MODEL, admin_pb2.LoadModelRequest(name=name, version=version), self._timeout(timeout), None)

    def unload_model(self, name: str, version: int, *, timeout: float | None = None) -> admin_pb2.ModelStatus:
        return self._unary(_proto.UNLOAD_MODEL, admin_pb2.UnloadModelRequest(name=name, version=version), self._timeout(timeout), None)

    def set_traffic_split(self, request: admin_pb2.SetTrafficSplitRequest, *, timeout: float | None = None) -> admin_pb2.TrafficSplit:
        return self._unary(_proto.SET_TRAFFIC_SPLIT, request, self._timeout(timeout), None)

    def get_experiment(self, model: str = "", *, timeout: float | None = None) -> admin_pb2.Experiment:
        return self._unary(_proto.GET_EXPERIMENT, admin_pb2.GetExperimentRequest(name=model), self._timeout(timeout), None)

    def _timeout(self, timeout: float | None) -> float | None:
        return self._setup.default_timeout if timeout is None else timeout

    def _assert_open(self) -> None:
        if self._closed:
            raise DustClientError(grpc.StatusCode.FAILED_PRECONDITION, f"DustClient for {self.address} is closed")

    def _policy_unary(self, method: Method, request: Any, timeout: float | None, metadata: Metadata | None) -> Any:
        """A PolicyService call, attempted again when it broke in transit (``broken_in_transit``: a proxy reset it
        when its replica died), within the retry policy's attempts and the call's one deadline. The statuses of the
        policy are retried by gRPC itself (retry.py)."""
        deadline = Deadline(self._timeout(timeout))
        policy = self._setup.retry
        attempt = 1
        while True:
            try:
                return self._unary(method, request, deadline.remaining(), metadata)
            except DustClientError as err:
                if policy is None or attempt >= policy.max_attempts or not broken_in_transit(err):
                    raise
                delay = policy.delay_s(attempt - 1)
                if not deadline.allows(delay):
                    raise
                time.sleep(delay)
                attempt += 1

    def _unary(self, method: Method, request: Any, timeout: float | None, metadata: Metadata | None) -> Any:
        self._assert_open()
        call = self._channel.unary_unary(method.path, request_serializer=method.serialize, response_deserializer=method.deserialize)
        try:
            return call(request, timeout=timeout, metadata=call_metadata(self._setup, metadata))
        except grpc.RpcError as err:
            raise DustClientError.from_rpc_error(err)
        except ValueError as err:
            # grpc raises ValueError for a call on a closed channel.
            if self._closed:
                raise DustClientError(grpc.StatusCode.FAILED_PRECONDITION, f"DustClient for {self.address} is closed") from err
            raise
