"""AsyncDustClient and AsyncPredictStream: the asyncio twins of DustClient and PredictStream, on grpc.aio, with
the same retry policy, request ids, credentials and stream resumption (session.py decides; this file does the
tasks). Create and use them on one event loop."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import grpc
import grpc.aio

from . import _proto
from ._proto import Method, admin_pb2, policy_pb2
from .channel import ChannelOwner, Deadline, Metadata, call_metadata
from .client import decode, encode
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
from .retry import RetryPolicy
from .session import Pending, SessionState, cancelled_error


class AsyncDustClient(ChannelOwner):
    """The asyncio client; its arguments are DustClient's. ``async with AsyncDustClient(...) as client:``."""

    _secure_channel = staticmethod(grpc.aio.secure_channel)
    _insecure_channel = staticmethod(grpc.aio.insecure_channel)

    async def __aenter__(self) -> "AsyncDustClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        await self._channel.close()

    async def predict(self, request: PredictRequest, *, timeout: float | None = None, metadata: Metadata | None = None) -> PredictResult:
        msg = encode(to_predict_request, request)
        response = await self._policy_unary(_proto.PREDICT, msg, timeout, metadata)
        return decode("PredictResponse", from_predict_response, response)

    def stream(self, *, timeout: float | None = None, metadata: Metadata | None = None) -> "AsyncPredictStream":
        """Opens a StreamPredict session (``async with client.stream() as s``); see DustClient.stream."""
        self._assert_open()
        deadline = Deadline(timeout)
        method = self._channel.stream_stream(
            _proto.STREAM_PREDICT.path,
            request_serializer=_proto.STREAM_PREDICT.serialize,
            response_deserializer=_proto.STREAM_PREDICT.deserialize,
        )
        md = call_metadata(self._setup, metadata)

        def open_call() -> Any:
            self._assert_open()
            return method(timeout=deadline.remaining(), metadata=md)

        return AsyncPredictStream(open_call, self._setup.retry)

    async def list_models(self, *, timeout: float | None = None, metadata: Metadata | None = None) -> ModelList:
        response = await self._policy_unary(_proto.LIST_MODELS, policy_pb2.ListModelsRequest(), timeout, metadata)
        return from_list_models_response(response)

    async def report_outcome(
        self,
        robot_id: str,
        episode_id: str,
        success: bool,
        reward: float | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> OutcomeResult:
        msg = to_report_outcome_request(robot_id, episode_id, success, reward)
        return from_report_outcome_response(await self._policy_unary(_proto.REPORT_OUTCOME, msg, timeout, metadata))

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        return await self._unary(_proto.HEALTH_CHECK, service, self._timeout(timeout), None)

    async def load_model(self, name: str, version: int = 0, *, timeout: float | None = None) -> admin_pb2.ModelStatus:
        return await self._unary(_proto.LOAD_MODEL, admin_pb2.LoadModelRequest(name=name, version=version), self._timeout(timeout), None)

    async def unload_model(self, name: str, version: int, *, timeout: float | None = None) -> admin_pb2.ModelStatus:
        return await self._unary(_proto.UNLOAD_MODEL, admin_pb2.UnloadModelRequest(name=name, version=version), self._timeout(timeout), None)

    async def set_traffic_split(self, request: admin_pb2.SetTrafficSplitRequest, *, timeout: float | None = None) -> admin_pb2.TrafficSplit:
        return await self._unary(_proto.SET_TRAFFIC_SPLIT, request, self._timeout(timeout), None)

    async def get_experiment(self, model: str = "", *, timeout: float | None = None) -> admin_pb2.Experiment:
        return await self._unary(_proto.GET_EXPERIMENT, admin_pb2.GetExperimentRequest(name=model), self._timeout(timeout), None)

    def _timeout(self, timeout: float | None) -> float | None:
        return self._setup.default_timeout if timeout is None else timeout

    def _assert_open(self) -> None:
        if self._closed:
            raise DustClientError(grpc.StatusCode.FAILED_PRECONDITION, f"AsyncDustClient for {self.address} is closed")

    async def _policy_unary(self, method: Method, request: Any, timeout: float | None, metadata: Metadata | None) -> Any:
        """See DustClient._policy_unary."""
        deadline = Deadline(self._timeout(timeout))
        policy = self._setup.retry
        attempt = 1
        while True:
            try:
                return await self._unary(method, request, deadline.remaining(), metadata)
            except DustClientError as err:
                if policy is None or attempt >= policy.max_attempts or not broken_in_transit(err):
                    raise
                delay = policy.delay_s(attempt - 1)
                if not deadline.allows(delay):
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def _unary(self, method: Method, request: Any, timeout: float | None, metadata: Metadata | None) -> Any:
        self._assert_open()
        call = self._channel.unary_unary(method.path, request_serializer=method.serialize, response_deserializer=method.deserialize)
        try:
            return await call(request, timeout=timeout, metadata=call_metadata(self._setup, metadata))
        except grpc.RpcError as err:
            raise DustClientError.from_rpc_error(err)


class _AioCall:
    """One StreamPredict call: a writer task keeps the writes in order, a reader task hands responses on."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.writer = asyncio.ensure_future(self._write())
        #: Set by the session; held here because the event loop keeps only weak references to tasks.
        self.reader: asyncio.Future[None] | None = None

    async def _write(self) -> None:
        try:
            while True:
                msg = await self.outbox.get()
                if msg is None:
                    await self.call.done_writing()
                    return
                await self.call.write(msg)
        except (grpc.RpcError, asyncio.InvalidStateError, asyncio.CancelledError):
            # The call is over; its reader reports why.
            return

    def write(self, msg: policy_pb2.PredictRequest) -> None:
        self.outbox.put_nowait(msg)

    def end(self) -> None:
        self.outbox.put_nowait(None)

    def drop(self) -> None:
        self.call.cancel()
        self.writer.cancel()


class AsyncPredictStream:
    """The asyncio StreamPredict session: ``await stream.predict(req)``, or ``send(req)`` for an asyncio.Future
    (pipelining). Results come in the order of the sends; leaving ``async with`` half-closes and waits for the
    responses still due (an exception inside the block cancels the stream)."""

    def __init__(self, open_call: Callable[[], Any], resume: RetryPolicy | None) -> None:
        self._open = open_call
        self._state: SessionState[asyncio.Future[PredictResult]] = SessionState(resume)
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._call: _AioCall | None = None
        self._start()

    @property
    def in_flight(self) -> int:
        return len(self._state.pending)

    @property
    def resumed(self) -> int:
        return self._state.resumed

    def send(self, request: PredictRequest) -> "asyncio.Future[PredictResult]":
        """See PredictStream.send."""
        future: asyncio.Future[PredictResult] = self._loop.create_future()
        try:
            self._state.check_send()
            msg = to_predict_request(request)
        except DustClientError as err:
            future.set_exception(err)
            return future
        except (TypeError, ValueError) as err:
            future.set_exception(invalid_argument(err))
            return future
        self._state.pending.append(Pending(msg, future))
        if self._call is not None:
            self._call.write(self._state.wire(msg))
        return future

    async def predict(self, request: PredictRequest) -> PredictResult:
        return await self.send(request)

    def end(self) -> None:
        if self._state.half_closed:
            return
        self._state.half_closed = True
        if self._call is not None:
            self._call.end()
        if self._state.finished or not self._state.pending and self._call is None:
            self._done.set()

    def cancel(self) -> None:
        if self._state.cancelled:
            return
        self._state.cancelled = True
        if self._timer is not None:
            self._timer.cancel()
        call, self._call = self._call, None
        self._fail(cancelled_error("the stream was cancelled"))
        if call is not None:
            call.drop()

    async def wait(self) -> None:
        await self._done.wait()

    async def __aenter__(self) -> "AsyncPredictStream":
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.cancel()
            return
        self.end()
        await self.wait()

    def _start(self) -> None:
        try:
            call = _AioCall(self._open())
        except DustClientError as err:
            self._fail(err)
            return
        self._call = call
        for p in self._state.pending:
            call.write(self._state.wire(p.msg))
        if self._state.half_closed:
            call.end()
        call.reader = asyncio.ensure_future(self._read(call))

    async def _read(self, call: _AioCall) -> None:
        try:
            while True:
                msg = await call.call.read()
                if call is not self._call:
                    return
                if msg is grpc.aio.EOF:
                    break
                answered = self._state.on_response(msg)
                if answered is None:
                    self._call = None
                    self._fail(self._state.failure)  # type: ignore[arg-type]
                    call.drop()
                    return
                entry, result = answered
                if entry.future.done():
                    continue
                if isinstance(result, DustClientError):
                    entry.future.set_exception(result)
                else:
                    entry.future.set_result(result)
            self._call = None
            for p in self._state.on_end():
                _settle_error(p.future, self._state.failure)  # type: ignore[arg-type]
            self._done.set()
        except grpc.RpcError as rpc_error:
            if call is not self._call:
                return
            err = DustClientError.from_rpc_error(rpc_error)
            self._call = None
            call.drop()
            delay = self._state.on_error(err)
            if delay is None:
                self._fail(err)
                return
            self._timer = self._loop.call_later(delay, self._reopen)

    def _reopen(self) -> None:
        self._timer = None
        if self._state.finished:
            return
        self._state.resumed += 1
        self._start()

    def _fail(self, err: DustClientError) -> None:
        for p in self._state.fail(err):
            _settle_error(p.future, self._state.failure)  # type: ignore[arg-type]
        self._done.set()


def _settle_error(future: "asyncio.Future[Any]", err: DustClientError) -> None:
    if not future.done():
        future.set_exception(err)
