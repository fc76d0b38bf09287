"""Retries: a replica that answers UNAVAILABLE (draining, dying) or RESOURCE_EXHAUSTED (shedding) costs the robot
nothing, the retried request keeps its id, and the policy's attempts bound it. The proxy fails calls on purpose
in front of the real server, so each test would fail without retries (the retry=False cases show it)."""

from __future__ import annotations

import json
import socket

import grpc
import pytest

from conftest import franka_request
from dust_client import DustClient, DustClientError, RetryPolicy, service_config
from dust_client.errors import broken_in_transit
from servers import ROOT, FaultyProxy


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_predict_is_retried_with_the_same_request_id(proxy: FaultyProxy, code: grpc.StatusCode) -> None:
    proxy.fail_predicts, proxy.fail_code = 2, code
    with DustClient(proxy.address, default_timeout=30) as client:
        result = client.predict(franka_request(request_id="py-retried-1"))
    assert result.actions.shape == (16, 8)
    assert [r.request_id for r in proxy.predicts] == ["py-retried-1"] * 3


def test_without_retries_the_first_failure_reaches_the_caller(proxy: FaultyProxy) -> None:
    proxy.fail_predicts = 1
    with DustClient(proxy.address, retry=False, default_timeout=30) as client:
        with pytest.raises(DustClientError) as info:
            client.predict(franka_request())
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.details == "injected by the test proxy"
    assert len(proxy.predicts) == 1


def test_the_request_id_is_drawn_once_for_all_attempts(proxy: FaultyProxy) -> None:
    proxy.fail_predicts = 1
    with DustClient(proxy.address, default_timeout=30) as client:
        result = client.predict(franka_request())
    assert len(proxy.predicts) == 2
    assert proxy.predicts[0].request_id == proxy.predicts[1].request_id == result.request_id


def test_attempts_are_bounded_by_the_policy(proxy: FaultyProxy) -> None:
    proxy.fail_predicts = 100
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with DustClient(proxy.address, retry=policy, default_timeout=30) as client:
        with pytest.raises(DustClientError) as info:
            client.predict(franka_request())
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(proxy.predicts) == 3


def test_invalid_argument_is_not_retried(proxy: FaultyProxy) -> None:
    proxy.fail_predicts, proxy.fail_code = 3, grpc.StatusCode.INVALID_ARGUMENT
    with DustClient(proxy.address, default_timeout=30) as client:
        with pytest.raises(DustClientError) as info:
            client.predict(franka_request())
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(proxy.predicts) == 1


def test_a_stopped_server_is_unavailable_after_the_retries() -> None:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with DustClient(f"127.0.0.1:{port}", default_timeout=10) as client:
        with pytest.raises(DustClientError) as info:
            client.predict(franka_request())
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_the_policy_is_checked() -> None:
    for bad in (dict(max_attempts=1), dict(max_attempts=6), dict(initial_backoff_s=0), dict(max_backoff_s=0.01),
                dict(backoff_multiplier=0.5), dict(retryable_status_codes=()), dict(retryable_status_codes=("NOPE",))):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]
    policy = RetryPolicy()
    assert policy.delay_s(0, rand=lambda: 0.5) == pytest.approx(0.05)
    assert policy.delay_s(10, rand=lambda: 1.0) == pytest.approx(1.2)


def test_resets_in_transit_count_as_a_lost_replica() -> None:
    reset = DustClientError(grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 0")
    assert broken_in_transit(reset)
    assert broken_in_transit(DustClientError(grpc.StatusCode.INTERNAL, "Received RST_STREAM with code 2"))
    assert not broken_in_transit(DustClientError(grpc.StatusCode.INTERNAL, "request_id abc"))
    assert not broken_in_transit(DustClientError(grpc.StatusCode.UNAVAILABLE, "Received RST_STREAM with code 0"))


def test_the_default_service_config_is_the_typescript_clients() -> None:
    # deploy/client/service-config.json is the TypeScript client's default, published for clients in other languages.
    published = json.loads((ROOT / "deploy" / "client" / "service-config.json").read_text())
    assert service_config() == published
