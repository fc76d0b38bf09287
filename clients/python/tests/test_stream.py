"""StreamPredict sessions: one result per request, in order; a session that loses its replica re-opens and sends
the unanswered requests again, pinned to the version that served it; a refused request ends the session."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from conftest import FRANKA_STATE, franka_request
from dust_client import DustClient, DustClientError, RetryPolicy
from servers import FaultyProxy


def test_a_session_answers_in_order(client: DustClient) -> None:
    with client.stream() as session:
        futures = [session.send(franka_request(request_id=f"py-s-{i}", seed=i)) for i in range(6)]
        results = [f.result(timeout=60) for f in futures]
        assert session.in_flight == 0
        last = session.predict(franka_request(request_id="py-s-last", seed=0))
    assert [r.request_id for r in results] == [f"py-s-{i}" for i in range(6)]
    # A seeded request gives the same chunk on a stream as on Predict.
    np.testing.assert_array_equal(results[3].actions, client.predict(franka_request(seed=3)).actions)
    np.testing.assert_array_equal(last.actions, results[0].actions)
    assert session.resumed == 0


def test_a_dropped_session_resumes_pinned_to_its_version(proxy: FaultyProxy, client: DustClient) -> None:
    proxy.drop_streams, proxy.drop_after = 1, 2
    ids = [f"py-resume-{i}" for i in range(6)]
    with DustClient(proxy.address) as via_proxy:
        with via_proxy.stream(timeout=60) as session:
            futures = [session.send(franka_request(request_id=rid, seed=i)) for i, rid in enumerate(ids)]
            results = [f.result(timeout=60) for f in futures]
        assert session.resumed == 1
    assert [r.request_id for r in results] == ids
    assert len(proxy.streams) == 2
    assert [r.request_id for r in proxy.streams[0]] == ids
    # The second call got the unanswered ones, pinned to the version that served the first responses.
    assert [r.request_id for r in proxy.streams[1]] == ids[2:]
    assert {r.model for r in proxy.streams[1]} == {"dust-tiny@1"}
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r.actions, client.predict(franka_request(seed=i)).actions)


def test_sends_after_the_drop_are_pinned_too(proxy: FaultyProxy) -> None:
    proxy.drop_streams, proxy.drop_after = 1, 1
    with DustClient(proxy.address) as via_proxy, via_proxy.stream(timeout=60) as session:
        got = [session.predict(franka_request(request_id=f"py-seq-{i}"), timeout=60).request_id for i in range(4)]
    assert got == [f"py-seq-{i}" for i in range(4)]
    assert [r.request_id for r in proxy.streams[1]] == ["py-seq-1", "py-seq-2", "py-seq-3"]
    assert {r.model for r in proxy.streams[1]} == {"dust-tiny@1"}


def test_without_retries_a_dropped_session_fails_its_unanswered_requests(proxy: FaultyProxy) -> None:
    proxy.drop_streams, proxy.drop_after = 1, 1
    with DustClient(proxy.address, retry=False) as via_proxy:
        session = via_proxy.stream(timeout=60)
        futures = [session.send(franka_request(request_id=f"py-noretry-{i}")) for i in range(3)]
        assert futures[0].result(timeout=60).request_id == "py-noretry-0"
        for f in futures[1:]:
            with pytest.raises(DustClientError) as info:
                f.result(timeout=60)
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(DustClientError):
            session.predict(franka_request())


def test_a_session_that_keeps_breaking_gives_up_after_the_policys_attempts(proxy: FaultyProxy) -> None:
    proxy.drop_streams, proxy.drop_after = 100, 0
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with DustClient(proxy.address, retry=policy) as via_proxy:
        session = via_proxy.stream(timeout=60)
        with pytest.raises(DustClientError) as info:
            session.predict(franka_request(), timeout=60)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    # A call refused before any response is retried by gRPC itself (3 attempts: nothing was committed), and the
    # session opens a call 3 times: 9 in all, and no more.
    assert len(proxy.streams) == 9


def test_a_refused_request_ends_the_session_with_its_status(client: DustClient) -> None:
    session = client.stream(timeout=60)
    ok = session.send(franka_request(request_id="py-before"))
    bad = session.send(franka_request(request_id="py-bad", state=FRANKA_STATE[:3]))
    assert ok.result(timeout=60).request_id == "py-before"
    with pytest.raises(DustClientError) as info:
        bad.result(timeout=60)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "state" in info.value.details
    assert session.resumed == 0
    with pytest.raises(DustClientError) as later:
        session.predict(franka_request())
    assert later.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_request_that_cannot_be_encoded_leaves_the_session_usable(client: DustClient) -> None:
    with client.stream(timeout=60) as session:
        with pytest.raises(DustClientError) as info:
            session.predict(franka_request(images={"front": np.zeros((8, 8), np.uint8)}))
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert session.predict(franka_request(request_id="py-after")).request_id == "py-after"


def test_end_and_cancel(client: DustClient) -> None:
    session = client.stream(timeout=60)
    session.end()
    with pytest.raises(DustClientError) as info:
        session.predict(franka_request())
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert session.wait(30)

    session = client.stream(timeout=60)
    pending = session.send(franka_request())
    session.cancel()
    with pytest.raises(DustClientError) as cancelled:
        pending.result(timeout=30)
    assert cancelled.value.code == grpc.StatusCode.CANCELLED


def test_a_sessions_timeout_is_one_deadline_for_the_whole_session(client: DustClient) -> None:
    session = client.stream(timeout=2.0)
    assert session.predict(franka_request(request_id="py-in-time"), timeout=60).request_id == "py-in-time"
    # The server ends the call at the deadline; a deadline is not retried, so the session ends with it.
    assert session.wait(30)
    with pytest.raises(DustClientError) as info:
        session.predict(franka_request())
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_wait_that_times_out_leaves_the_session_in_order(client: DustClient) -> None:
    with client.stream(timeout=60) as session:
        with pytest.raises(DustClientError) as info:
            session.predict(franka_request(request_id="py-slow"), timeout=0)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        # The late result is dropped; the next request gets its own.
        assert session.predict(franka_request(request_id="py-next"), timeout=60).request_id == "py-next"
