"""A robot's asynchronous chunk execution with real-time chunking on the server (docs/python-client.md,
"Real-time chunking in a control loop"; docs/api.md, "Real-time chunking").

The robot calls ``RealtimeChunker.action(observe)`` once per control tick and applies what it returns. Every
``execute`` actions of a chunk, the chunker asks for the next one: it calls ``observe()`` for the current
observation, adds the committed prefix (the rest of the executing chunk, from this tick's row on) and sends it on
the stream without waiting. The robot keeps executing the old chunk; when the answer is in and as many ticks have
passed as the delay d the server assumed (declared, or estimated from the stream's latency and the control
period), the new chunk takes over at row d, or at the row of the current tick if the answer came later. This is
the client side of Black, Galliker and Levine's real-time execution; the server makes the new chunk continue the
committed actions. With ``delay_window`` the chunker declares d itself as their algorithm does: the most ticks any
of the last ``delay_window`` answers took to arrive, which counts the network and the robot's own side of the call
that the server's estimate cannot see. No thread and no clock of its own: the robot's loop is the clock.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Callable, Protocol

import numpy as np

from .request import CHUNKING_METHODS, PredictRequest, Prefix
from .response import PredictResult


class _Answer(Protocol):
    """What the chunker reads of a sent request: a concurrent.futures.Future (PredictStream) or an asyncio.Future
    (AsyncPredictStream) both answer it."""

    def done(self) -> bool: ...

    def exception(self) -> BaseException | None: ...

    def result(self) -> PredictResult: ...


class _Session(Protocol):
    def send(self, request: PredictRequest) -> _Answer: ...


@dataclasses.dataclass
class _Pending:
    future: _Answer
    #: The tick of the request's observation.
    tick: int
    #: Ticks from the observation to the first tick that saw the answer.
    arrived: int | None = None


class RealtimeChunker:
    """Executes action chunks asynchronously over one StreamPredict session: ``client.stream()`` of either client,
    blocking or asyncio (an asyncio loop awaits between ticks, so that answers come in). Not thread-safe: call it
    from the control loop only."""

    def __init__(
        self,
        session: _Session,
        *,
        execute: int,
        control_period_ms: float | None = None,
        delay_steps: int | None = None,
        delay_window: int = 0,
        method: str | None = None,
    ) -> None:
        """``execute``: actions of a chunk run before the next is requested (the execution horizon, >= 1).
        ``delay_steps``: d, when the robot knows it; or ``delay_window`` > 0: d is the most ticks any of the last
        that many answers took to arrive; otherwise ``control_period_ms`` (the tick's length) lets the server
        estimate d from the stream's measured latency. ``method``: as ``Prefix.method``."""
        if not (isinstance(execute, int) and execute >= 1):
            raise ValueError(f"execute must be an integer >= 1, got {execute!r}")
        if not (isinstance(delay_window, int) and delay_window >= 0):
            raise ValueError(f"delay_window must be an integer >= 0, got {delay_window!r}")
        if delay_window > 0 and delay_steps is not None:
            raise ValueError("give delay_steps or delay_window, not both: a declared d needs no measurement")
        if delay_steps is None and delay_window == 0 and not (control_period_ms is not None and control_period_ms > 0):
            raise ValueError("give delay_steps, delay_window > 0, or control_period_ms > 0 for the server to estimate the delay")
        if delay_steps is not None and not (isinstance(delay_steps, int) and delay_steps >= 0):
            raise ValueError(f"delay_steps must be an integer >= 0, got {delay_steps!r}")
        if method not in CHUNKING_METHODS:
            raise ValueError(f"method must be one of {[m for m in CHUNKING_METHODS if m]} or None, got {method!r}")
        self._session = session
        self._execute = execute
        self._period = float(control_period_ms or 0.0)
        self._delay = delay_steps
        #: Ticks each of the latest answers took to arrive (delay_window of them).
        self._arrivals: deque[int] = deque(maxlen=max(delay_window, 1))
        self._measure = delay_window > 0
        self._method = method
        self._chunk: np.ndarray | None = None
        #: The executing chunk's row for the current tick.
        self._row = 0
        self._tick = 0
        self._pending: _Pending | None = None
        #: The latest answer taken over, for its chunking report and timing.
        self.last_result: PredictResult | None = None
        #: Switches that came later than the d the server assumed (the robot ran actions the new chunk did not continue).
        self.late_switches = 0
        #: Switches to a new chunk.
        self.switches = 0

    @property
    def waiting(self) -> bool:
        """A request is in flight."""
        return self._pending is not None

    def action(self, observe: Callable[[], PredictRequest]) -> np.ndarray | None:
        """The action for this tick (a row of the executing chunk), or None while there is none (before the first
        chunk, or when a chunk ran out before its successor could take over: hold still). ``observe`` is called
        only when a new chunk is due, and must return the request for the current observation, without a prefix.
        Raises the DustClientError of a request that failed (the next call asks again)."""
        self._take_over()
        if self._pending is None and (self._chunk is None or self._row >= self._execute):
            self._request(observe())
        out = None
        if self._chunk is not None and self._row < len(self._chunk):
            out = self._chunk[self._row]
        self._row += 1
        self._tick += 1
        return out

    def _take_over(self) -> None:
        p = self._pending
        if p is None or not p.future.done():
            return
        err = p.future.exception()
        if err is not None:
            self._pending = None
            raise err
        result = p.future.result()
        assumed = result.chunking.delay_steps if result.chunking is not None else 0
        elapsed = self._tick - p.tick
        if p.arrived is None:
            p.arrived = elapsed
            self._arrivals.append(elapsed)
        if elapsed < assumed:
            return
        self._pending = None
        if self._chunk is not None:
            self.switches += 1
            if result.chunking is not None and elapsed > assumed:
                self.late_switches += 1
        # Row i of the new chunk is for the tick i after its observation.
        self._chunk, self._row = result.actions, elapsed
        self.last_result = result

    def _request(self, request: PredictRequest) -> None:
        if request.prefix is not None:
            raise ValueError("observe() must return a request without a prefix: the chunker commits the executing chunk")
        if self._chunk is not None and self._row < len(self._chunk):
            # A chunk exists only after an answer, so a measuring chunker always has an arrival here.
            delay = max(self._arrivals) if self._measure else self._delay
            prefix = Prefix(
                actions=self._chunk[self._row :],
                delay_steps=None if delay is None else min(delay, len(self._chunk) - self._row),
                control_period_ms=self._period,
                method=self._method,
            )
            request = dataclasses.replace(request, prefix=prefix)
        self._pending = _Pending(self._session.send(request), self._tick)
