"""The asyncio client (grpc.aio): the same results, errors, retries and stream resumption as the blocking one."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from conftest import FRANKA_STATE, franka_request
from dust_client import AsyncDustClient, DustClient, DustClientError
from servers import FaultyProxy, ServeProcess


def test_predict_matches_the_blocking_client(server: ServeProcess, client: DustClient) -> None:
    async def main() -> None:
        async with AsyncDustClient(server.address, default_timeout=60) as aclient:
            models = await aclient.list_models()
            assert models.default_model == "dust-tiny"
            assert await aclient.health() == "SERVING"
            results = await asyncio.gather(*(aclient.predict(franka_request(seed=s, return_future_embedding=True)) for s in range(4)))
            for s, r in enumerate(results):
                assert r.actions.dtype == np.float32 and r.actions.shape == (16, 8)
                assert r.future_embedding is not None and r.future_embedding.shape == (16, 32)
                np.testing.assert_array_equal(r.actions, client.predict(franka_request(seed=s)).actions)
            with pytest.raises(DustClientError) as info:
                await aclient.predict(franka_request(embodiment="hexapod"))
            assert info.value.code == grpc.StatusCode.NOT_FOUND and "hexapod" in info.value.details
            with pytest.raises(DustClientError) as bad:
                await aclient.predict(franka_request(images={"front": np.zeros((4, 4), np.uint8)}))
            assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(main())


def test_predict_is_retried(proxy: FaultyProxy) -> None:
    proxy.fail_predicts = 2

    async def main() -> None:
        async with AsyncDustClient(proxy.address, default_timeout=30) as aclient:
            assert (await aclient.predict(franka_request(request_id="py-aio-retry"))).request_id == "py-aio-retry"
        async with AsyncDustClient(proxy.address, default_timeout=30, retry=False) as no_retry:
            proxy.fail_predicts = 1
            with pytest.raises(DustClientError) as info:
                await no_retry.predict(franka_request())
            assert info.value.code == grpc.StatusCode.UNAVAILABLE

    asyncio.run(main())
    assert [r.request_id for r in proxy.predicts[:3]] == ["py-aio-retry"] * 3


def test_a_session_in_order_and_resumed_after_a_drop(proxy: FaultyProxy) -> None:
    proxy.drop_streams, proxy.drop_after = 1, 2
    ids = [f"py-aio-s-{i}" for i in range(5)]

    async def main() -> list[str]:
        async with AsyncDustClient(proxy.address) as aclient:
            async with aclient.stream(timeout=60) as session:
                # A robot loop: one observation, wait for its chunk, the next.
                got = [(await session.predict(franka_request(request_id=rid))).request_id for rid in ids[:3]]
                pipelined = [session.send(franka_request(request_id=rid)) for rid in ids[3:]]
                got += [(await f).request_id for f in pipelined]
            assert session.resumed == 1
            return got

    assert asyncio.run(main()) == ids
    assert [r.request_id for r in proxy.streams[1]] == ids[2:]
    assert {r.model for r in proxy.streams[1]} == {"dust-tiny@1"}


def test_a_refused_request_ends_the_session(server: ServeProcess) -> None:
    async def main() -> None:
        async with AsyncDustClient(server.address) as aclient:
            session = aclient.stream(timeout=60)
            ok = session.send(franka_request(request_id="py-aio-ok"))
            bad = session.send(franka_request(request_id="py-aio-bad", state=FRANKA_STATE[:2]))
            assert (await ok).request_id == "py-aio-ok"
            with pytest.raises(DustClientError) as info:
                await bad
            assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.request_id == "py-aio-bad"
            with pytest.raises(DustClientError):
                await session.predict(franka_request())

    asyncio.run(main())
