"""One client over two real replicas: a robot loses no request when one drains (SIGTERM) or dies (SIGKILL)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest

from conftest import franka_request
from dust_client import DustClient
from servers import ServeProcess, spawn_serve


@pytest.fixture()
def replicas() -> Iterator[tuple[ServeProcess, ServeProcess]]:
    a = spawn_serve()
    try:
        b = spawn_serve()
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


def test_predict_goes_on_when_a_replica_drains(replicas: tuple[ServeProcess, ServeProcess]) -> None:
    a, b = replicas
    with DustClient(f"ipv4:{a.address},{b.address}", default_timeout=60) as client:
        before = [client.predict(franka_request(request_id=f"py-fo-{i}")).request_id for i in range(4)]
        a.stop()  # SIGTERM: drains (answering UNAVAILABLE to new calls), then exits
        after = [client.predict(franka_request(request_id=f"py-fo-{i}")).request_id for i in range(4, 10)]
    assert before + after == [f"py-fo-{i}" for i in range(10)]


def test_a_session_moves_to_the_other_replica_when_its_own_dies(replicas: tuple[ServeProcess, ServeProcess]) -> None:
    a, b = replicas
    # pick_first: the session starts on the first address, a, and its channel moves to b once a is gone.
    with DustClient(f"ipv4:{a.address},{b.address}", load_balancing="pick_first") as client:
        with client.stream(timeout=120) as session:
            first = [session.predict(franka_request(request_id=f"py-kill-{i}", seed=i), timeout=60) for i in range(2)]
            a.proc.kill()
            a.proc.wait()
            rest = [session.predict(franka_request(request_id=f"py-kill-{i}", seed=i), timeout=60) for i in range(2, 5)]
        assert session.resumed == 1
        results = first + rest
        assert [r.request_id for r in results] == [f"py-kill-{i}" for i in range(5)]
        assert {r.variant for r in results} == {"dust-tiny@1"}
        # Both replicas serve the same checkpoint: a seeded request's chunk does not depend on which one answered.
        for i, r in enumerate(results):
            np.testing.assert_array_equal(r.actions, client.predict(franka_request(seed=i)).actions)
