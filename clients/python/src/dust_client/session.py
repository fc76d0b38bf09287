"""A robot's control session over StreamPredict, without I/O: what the sync (stream.py) and asyncio
(aio.py) sessions both decide. The server answers every request with one response, in order, and keeps the
model version fixed for the stream's life (docs/api.md), so responses are matched to requests by position.

The session survives the replica behind it, as the TypeScript client's PredictStream does: when the call fails
with a retryable status (UNAVAILABLE: the replica drains or its connection dropped; RESOURCE_EXHAUSTED: it shed
a request), a new call is opened after a backoff, which the channel's load balancer places on a live replica,
and every request that got no response is sent again. Those requests carry the version that served the session
as a pin (``model = "name@version"``), so the new replica serves the episode from the same checkpoint.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

from ._proto import policy_pb2
from .errors import DustClientError, broken_in_transit
from .response import PredictResult, from_predict_response
from .retry import RetryPolicy

F = TypeVar("F")


@dataclass
class Pending(Generic[F]):
    msg: policy_pb2.PredictRequest
    #: The sync or asyncio future its response settles.
    future: F


def resume_code(err: DustClientError) -> grpc.StatusCode:
    """The status a failure counts as for re-opening. A CANCELLED this session did not ask for is a reset from the
    other side (HTTP/2 proxies reset the streams of a replica that died with RST_STREAM(CANCEL); dust-serve itself
    answers CANCELLED only to a client that cancelled): a lost replica, as UNAVAILABLE is."""
    if err.code == grpc.StatusCode.CANCELLED or broken_in_transit(err):
        return grpc.StatusCode.UNAVAILABLE
    return err.code


class SessionState(Generic[F]):
    """The bookkeeping of one session; the I/O wrappers call it under their own lock (or on their event loop)."""

    def __init__(self, resume: RetryPolicy | None) -> None:
        self.resume = resume
        self.pending: deque[Pending[F]] = deque()
        self.failure: DustClientError | None = None
        self.half_closed = False
        self.cancelled = False
        #: "name@version" of the first response: the version this session is served by.
        self.served_by: str | None = None
        #: Re-opens since the last response.
        self.attempts = 0
        #: How many times the session was re-opened after a retryable failure.
        self.resumed = 0

    def check_send(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.half_closed:
            raise DustClientError(grpc.StatusCode.FAILED_PRECONDITION, "send() after end() on a PredictStream")

    def wire(self, msg: policy_pb2.PredictRequest) -> policy_pb2.PredictRequest:
        """The request as the current call sends it: pinned to the serving version once the session was re-opened."""
        if self.resumed == 0 or not self.served_by or "@" in msg.model:
            return msg
        pinned = policy_pb2.PredictRequest()
        pinned.CopyFrom(msg)
        pinned.model = self.served_by
        return pinned

    def on_response(self, msg: policy_pb2.PredictResponse) -> tuple[Pending[F], PredictResult | DustClientError] | None:
        """The pending request this response answers and its result (an error for a malformed one); None when
        it answers no request, which fails the session (the caller then cancels the call)."""
        if not self.pending:
            self.fail(DustClientError(grpc.StatusCode.INTERNAL, "the server sent a response to no request"))
            return None
        entry = self.pending.popleft()
        self.attempts = 0
        try:
            result = from_predict_response(msg)
        except ValueError as err:
            return entry, DustClientError(grpc.StatusCode.INTERNAL, f"malformed PredictResponse: {err}")
        if self.served_by is None:
            self.served_by = f"{result.model_name}@{result.model_version}"
        return entry, result

    def on_end(self) -> list[Pending[F]]:
        """The call ended with OK. With requests unanswered that breaks the one-response-per-request contract:
        returns the pending requests to fail with ``self.failure``."""
        if self.pending:
            return self.fail(
                DustClientError(grpc.StatusCode.INTERNAL, f"the server closed the stream with {len(self.pending)} request(s) unanswered")
            )
        if self.failure is None:
            self.failure = DustClientError(grpc.StatusCode.FAILED_PRECONDITION, "the stream is closed")
        return []

    def on_error(self, err: DustClientError) -> float | None:
        """The call failed: the seconds to wait before re-opening it, or None when the session fails (then call
        ``fail(err)``)."""
        policy = self.resume
        if policy is None or self.cancelled or not policy.retries(resume_code(err)):
            return None
        if not self.pending and self.half_closed:
            return None
        if self.attempts + 1 >= policy.max_attempts:
            return None
        delay = policy.delay_s(self.attempts)
        self.attempts += 1
        return delay

    def fail(self, err: DustClientError) -> list[Pending[F]]:
        """Marks the session failed; returns the pending requests, which the caller fails with ``self.failure``."""
        if self.failure is None:
            self.failure = err
        failed = list(self.pending)
        self.pending.clear()
        return failed

    @property
    def finished(self) -> bool:
        return self.failure is not None


def cancelled_error(what: str) -> DustClientError:
    return DustClientError(grpc.StatusCode.CANCELLED, what)

