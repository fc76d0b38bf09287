"""PredictStream: the blocking StreamPredict session (session.py decides; this file does the threads).

Each gRPC call gets a queue its request iterator drains, and a reader thread that settles the sends' futures
in order; a broken call is replaced after a backoff by a new one that is sent every unanswered request again.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, Callable, Iterator

import grpc

from ._proto import policy_pb2
from .errors import DustClientError, invalid_argument
from .request import PredictRequest, to_predict_request
from .response import PredictResult
from .retry import RetryPolicy
from .session import Pending, SessionState, cancelled_error

_END = object()


class _Call:
    def __init__(self, open_call: Callable[[Iterator[Any]], Any]) -> None:
        self.requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.responses = open_call(self._drain())

    def _drain(self) -> Iterator[Any]:
        while True:
            item = self.requests.get()
            if item is _END:
                return
            yield item

    def write(self, msg: policy_pb2.PredictRequest) -> None:
        self.requests.put(msg)

    def end(self) -> None:
        self.requests.put(_END)

    def drop(self) -> None:
        """Cancels the call and lets go of gRPC's thread that waits on the request queue."""
        self.responses.cancel()
        self.end()


class PredictStream:
    """A robot's control session: ``predict`` sends one observation and waits for its action chunk; ``send``
    returns a Future instead, for pipelining. Results come in the order of the sends. Use it as a context
    manager: leaving the block half-closes the stream and waits for the responses still due (an exception
    inside the block cancels it instead)."""

    def __init__(self, open_call: Callable[[Iterator[Any]], Any], resume: RetryPolicy | None) -> None:
        self._open = open_call
        self._lock = threading.RLock()
        self._state: SessionState[Future[PredictResult]] = SessionState(resume)
        self._done = threading.Event()
        self._timer: threading.Timer | None = None
        self._call: _Call | None = None
        self._start()

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._state.pending)

    @property
    def resumed(self) -> int:
        """How many times the session was re-opened on a new call after a retryable failure."""
        return self._state.resumed

    def send(self, request: PredictRequest) -> "Future[PredictResult]":
        """Sends one observation; the Future resolves with its result, or raises DustClientError: the stream's
        status when it fails for good (every unanswered send then raises it), INVALID_ARGUMENT for a request that
        cannot be encoded (the stream stays usable), FAILED_PRECONDITION after end() or once the stream closed."""
        future: Future[PredictResult] = Future()
        # A running Future cannot be cancelled by its holder: only the session settles it (cancel() the stream).
        future.set_running_or_notify_cancel()
        with self._lock:
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
            # While the session is being re-opened, the new call sends it with the others.
            if self._call is not None:
                self._call.write(self._state.wire(msg))
        return future

    def predict(self, request: PredictRequest, timeout: float | None = None) -> PredictResult:
        """Sends one observation and waits for its result. After ``timeout`` seconds without it, raises
        DEADLINE_EXCEEDED; the request stays in flight (the session keeps its order) and its late result is
        dropped."""
        future = self.send(request)
        try:
            return future.result(timeout)
        except FuturesTimeout:
            raise DustClientError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"no response within {timeout} s; the request stays in flight"
            ) from None

    def end(self) -> None:
        """Half-closes: no more sends; responses to requests already sent still arrive."""
        with self._lock:
            if self._state.half_closed:
                return
            self._state.half_closed = True
            if self._call is not None:
                self._call.end()
            if self._state.finished or not self._state.pending and self._call is None:
                self._done.set()

    def cancel(self) -> None:
        """Abandons the stream: unanswered sends raise CANCELLED."""
        with self._lock:
            if self._state.cancelled:
                return
            self._state.cancelled = True
            if self._timer is not None:
                self._timer.cancel()
            call, self._call = self._call, None
            self._fail(cancelled_error("the stream was cancelled"))
        if call is not None:
            call.drop()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the stream has ended (after end(): every response arrived) or failed."""
        return self._done.wait(timeout)

    def __enter__(self) -> "PredictStream":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.cancel()
            return
        self.end()
        self.wait()

    def _start(self) -> None:
        try:
            call = _Call(self._open)
        except DustClientError as err:
            self._fail(err)
            return
        except ValueError as err:  # grpc: a call on a closed channel
            self._fail(DustClientError(grpc.StatusCode.FAILED_PRECONDITION, f"cannot open the stream: {err}"))
            return
        self._call = call
        for p in self._state.pending:
            call.write(self._state.wire(p.msg))
        if self._state.half_closed:
            call.end()
        threading.Thread(target=self._read, args=(call,), name="dust-predict-stream", daemon=True).start()

    def _read(self, call: _Call) -> None:
        try:
            for msg in call.responses:
                with self._lock:
                    if call is not self._call:
                        return
                    answered = self._state.on_response(msg)
                    if answered is None:
                        self._call = None
                        self._fail(self._state.failure)  # type: ignore[arg-type]
                        call.drop()
                        return
                    entry, result = answered
                    if isinstance(result, DustClientError):
                        entry.future.set_exception(result)
                    else:
                        entry.future.set_result(result)
            with self._lock:
                if call is self._call:
                    self._call = None
                    for p in self._state.on_end():
                        p.future.set_exception(self._state.failure)  # type: ignore[arg-type]
                    self._done.set()
        except grpc.RpcError as rpc_error:
            err = DustClientError.from_rpc_error(rpc_error)
            with self._lock:
                if call is not self._call:
                    return
                self._call = None
                call.end()
                delay = self._state.on_error(err)
                if delay is None:
                    self._fail(err)
                    return
                self._timer = threading.Timer(delay, self._reopen)
                self._timer.daemon = True
                self._timer.start()

    def _reopen(self) -> None:
        with self._lock:
            self._timer = None
            if self._state.finished:
                return
            self._state.resumed += 1
            self._start()

    def _fail(self, err: DustClientError) -> None:
        for p in self._state.fail(err):
            p.future.set_exception(self._state.failure)  # type: ignore[arg-type]
        self._done.set()
