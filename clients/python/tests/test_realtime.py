"""RealtimeChunker: tick by tick against a session whose answers the test releases, then closed loop against the
built server (dust-tiny, which inpaints the committed prefix)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future

import grpc
import numpy as np
import pytest

from conftest import franka_request
from dust_client import AsyncDustClient, ChunkingReport, DustClient, DustClientError, PredictRequest, RealtimeChunker
from dust_client.response import PredictResult, SamplingReport, Timing
from servers import ServeProcess

H, D = 8, 2


def chunk(tag: int) -> np.ndarray:
    """A chunk whose row i is [tag, i]: which chunk and which row an action came from."""
    return np.array([[tag, i] for i in range(H)], dtype=np.float32)


def result(tag: int, delay: int | None) -> PredictResult:
    return PredictResult(
        request_id=f"r{tag}",
        model_name="m",
        model_version=1,
        variant="m@1",
        actions=chunk(tag),
        sampling=SamplingReport(4, 4, 0, 0.0, True, True, 0.0),
        timing=Timing(0, 0, 0, 0, 1, 1.0),
        chunking=None if delay is None else ChunkingReport("inpaint", delay, True, H),
    )


class FakeSession:
    """send() records the request and returns a Future the test settles."""

    def __init__(self) -> None:
        self.sent: list[PredictRequest] = []
        self.futures: list[Future] = []

    def send(self, request: PredictRequest) -> Future:
        self.sent.append(request)
        self.futures.append(Future())
        return self.futures[-1]


def observe() -> PredictRequest:
    return PredictRequest(robot_id="r", embodiment="e", images={}, state=[0.0])


def test_requests_every_execute_rows_commits_the_rest_and_switches_at_the_assumed_delay() -> None:
    s = FakeSession()
    rtc = RealtimeChunker(s, execute=3, control_period_ms=20.0)
    # Tick 0: the first request goes out, with no chunk to commit; nothing to execute yet.
    assert rtc.action(observe) is None and len(s.sent) == 1 and s.sent[0].prefix is None
    assert rtc.action(observe) is None
    s.futures[0].set_result(result(0, None))
    # Tick 2: the first chunk takes over at the row for this tick (its observation was at tick 0).
    assert rtc.action(observe).tolist() == [0, 2]
    # Tick 3: row 3 >= execute: the next request commits rows 3.. of chunk 0 and asks the server for d.
    assert rtc.action(observe).tolist() == [0, 3]
    assert len(s.sent) == 2
    p = s.sent[1].prefix
    assert p.delay_steps is None and p.control_period_ms == 20.0
    np.testing.assert_array_equal(p.actions, chunk(0)[3:])
    # The answer is in at once, but the server assumed d = 2: the old chunk runs 2 ticks, then row 2 of the new.
    s.futures[1].set_result(result(1, 2))
    assert rtc.action(observe).tolist() == [0, 4]
    assert rtc.action(observe).tolist() == [1, 2]
    assert (rtc.switches, rtc.late_switches) == (1, 0)
    assert rtc.last_result.request_id == "r1"
    # Row 3 of chunk 1 is the execute-th: the next request commits chunk 1's rows 3..
    assert rtc.action(observe).tolist() == [1, 3]
    np.testing.assert_array_equal(s.sent[2].prefix.actions, chunk(1)[3:])
    # An answer later than the d it assumed (1): the switch comes when it does, at the row for that tick.
    assert rtc.action(observe).tolist() == [1, 4]
    assert rtc.action(observe).tolist() == [1, 5]
    s.futures[2].set_result(result(2, 1))
    assert rtc.action(observe).tolist() == [2, 3]
    assert (rtc.switches, rtc.late_switches) == (2, 1)


def test_a_declared_delay_is_sent_capped_at_the_rows_left_and_a_chunk_that_runs_out_holds() -> None:
    s = FakeSession()
    rtc = RealtimeChunker(s, execute=7, delay_steps=3, method="inpaint")
    rtc.action(observe)
    s.futures[0].set_result(result(0, None))
    actions = [rtc.action(observe) for _ in range(7)]
    assert [a.tolist() for a in actions[:6]] == [[0, i] for i in range(1, 7)]
    # Row 7 >= execute: one row left to commit, so d is 1, not 3.
    assert s.sent[1].prefix.delay_steps == 1 and s.sent[1].prefix.method == "inpaint"
    # The chunk has run out and no answer is in: hold (None), tick after tick.
    assert rtc.action(observe) is None and rtc.action(observe) is None and rtc.waiting


def test_with_a_delay_window_it_declares_the_most_ticks_recent_answers_took_to_arrive() -> None:
    s = FakeSession()
    rtc = RealtimeChunker(s, execute=2, delay_window=2)
    rtc.action(observe)
    rtc.action(observe)
    rtc.action(observe)
    s.futures[0].set_result(result(0, None))
    # Seen at tick 3: 3 ticks from its observation. Rows 3 >= execute: the next request declares d = 3.
    assert rtc.action(observe).tolist() == [0, 3]
    assert s.sent[1].prefix.delay_steps == 3 and s.sent[1].prefix.control_period_ms == 0.0
    s.futures[1].set_result(result(1, 3))
    # It arrives at once, but the switch waits for the d it declared; the arrival (1 tick) is what is measured.
    assert rtc.action(observe).tolist() == [0, 4]
    assert rtc.action(observe).tolist() == [0, 5]
    assert rtc.action(observe).tolist() == [1, 3]
    assert s.sent[2].prefix.delay_steps == 3  # max(3, 1)
    s.futures[2].set_result(result(2, 3))
    rtc.action(observe)
    rtc.action(observe)
    rtc.action(observe)
    # The window holds the last two arrivals, 1 and 1: the 3 has left it.
    assert s.sent[3].prefix.delay_steps == 1


def test_a_failed_request_raises_once_and_the_next_tick_asks_again() -> None:
    s = FakeSession()
    rtc = RealtimeChunker(s, execute=2, delay_steps=0)
    rtc.action(observe)
    s.futures[0].set_exception(DustClientError(grpc.StatusCode.UNAVAILABLE, "gone"))
    with pytest.raises(DustClientError, match="gone"):
        rtc.action(observe)
    assert not rtc.waiting
    rtc.action(observe)
    assert len(s.sent) == 2


def test_refuses_what_it_cannot_honour() -> None:
    s = FakeSession()
    with pytest.raises(ValueError, match="execute must be an integer >= 1"):
        RealtimeChunker(s, execute=0, delay_steps=1)
    with pytest.raises(ValueError, match="give delay_steps, delay_window > 0, or control_period_ms > 0"):
        RealtimeChunker(s, execute=2)
    with pytest.raises(ValueError, match="not both"):
        RealtimeChunker(s, execute=2, delay_steps=1, delay_window=4)
    with pytest.raises(ValueError, match="delay_window must be an integer >= 0"):
        RealtimeChunker(s, execute=2, delay_window=-1)
    with pytest.raises(ValueError, match="delay_steps must be an integer >= 0"):
        RealtimeChunker(s, execute=2, delay_steps=-1)
    with pytest.raises(ValueError, match="method must be one of"):
        RealtimeChunker(s, execute=2, delay_steps=1, method="rtc")
    rtc = RealtimeChunker(s, execute=2, delay_steps=1)
    with pytest.raises(ValueError, match="without a prefix"):
        rtc.action(lambda: PredictRequest(robot_id="r", embodiment="e", images={}, state=[0.0], prefix=object()))


def test_closed_loop_on_the_server_continues_the_committed_actions(client: DustClient) -> None:
    """10 ms ticks against the real server: it estimates d from the stream's latency and a 1000 s period as one
    tick, and dust-tiny inpaints the committed prefix, so row 0 of every new chunk is the action the robot
    executed at its observation's tick. (An answer later than the old chunk's last row finds nothing to commit,
    and the next request goes without a prefix: those are skipped.)"""
    tick = 0
    observed: list[int] = []

    def observe() -> PredictRequest:
        observed.append(tick)
        return franka_request(robot_id="py-rtc", seed=None)

    executed: dict[int, np.ndarray] = {}
    results: list[PredictResult] = []
    with client.stream(timeout=60) as session:
        rtc = RealtimeChunker(session, execute=4, control_period_ms=1e6)
        while sum(r.chunking is not None for r in results) < 4 and tick < 3000:
            before = rtc.last_result
            action = rtc.action(observe)
            if rtc.last_result is not before:
                results.append(rtc.last_result)
            if action is not None:
                executed[tick] = action.copy()
            tick += 1
            time.sleep(0.01)
    continued = [(r, at) for r, at in zip(results, observed) if r.chunking is not None]
    assert len(continued) == 4
    for r, at in continued:
        assert (r.chunking.method, r.chunking.delay_steps, r.chunking.delay_estimated) == ("inpaint", 1, True)
        np.testing.assert_allclose(r.actions[0], executed[at], atol=1e-4)
    assert rtc.switches == len(results) - 1


def test_the_same_chunker_drives_an_asyncio_session(server: ServeProcess) -> None:
    """AsyncPredictStream.send returns an asyncio.Future, which answers done(), exception() and result() as the
    blocking session's Future does: the chunker runs in an asyncio control loop unchanged."""

    async def main() -> list[PredictResult]:
        results: list[PredictResult] = []
        async with AsyncDustClient(server.address, default_timeout=60) as aclient:
            async with aclient.stream() as session:
                rtc = RealtimeChunker(session, execute=4, delay_steps=1)
                for _ in range(3000):
                    before = rtc.last_result
                    rtc.action(lambda: franka_request(robot_id="py-rtc-aio", seed=None))
                    if rtc.last_result is not before:
                        results.append(rtc.last_result)
                    if sum(r.chunking is not None for r in results) >= 3:
                        break
                    await asyncio.sleep(0.01)
        return results

    results = asyncio.run(main())
    continued = [r for r in results if r.chunking is not None]
    assert len(continued) == 3
    assert all((r.chunking.method, r.chunking.delay_steps, r.chunking.delay_estimated) == ("inpaint", 1, False) for r in continued)
