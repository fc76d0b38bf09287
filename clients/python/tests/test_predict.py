"""Predict against the real server: numpy in, numpy out, seeds, and how errors arrive."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from conftest import FRANKA_STATE, frames, franka_request
from dust_client import ChunkingReport, DustClient, DustClientError, EncodedImage, PredictRequest, Prefix, Sampling, encode_png


def test_list_models_describes_the_shipped_model(client: DustClient) -> None:
    models = client.list_models()
    assert models.default_model == "dust-tiny"
    [tiny] = [m for m in models.models if m.name == "dust-tiny"]
    assert tiny.state == "READY"
    assert tiny.cameras == ("front", "wrist")
    assert (tiny.image_height, tiny.image_width) == (64, 64)
    assert tiny.embodiment("franka_fr3").state_dim == 8
    assert tiny.embodiment("so100_arm").action_dim == 6
    assert client.health() == "SERVING"
    assert client.health("dust-tiny@1") == "SERVING"


def test_predict_returns_a_float32_action_chunk_of_the_embodiment(client: DustClient) -> None:
    result = client.predict(franka_request(request_id="py-req-1"))
    assert result.request_id == "py-req-1"
    assert (result.model_name, result.model_version, result.variant) == ("dust-tiny", 1, "dust-tiny@1")
    assert result.actions.dtype == np.float32
    assert result.actions.shape == (16, 8)
    assert np.isfinite(result.actions).all()
    assert result.future_embedding is None
    assert result.sampling.seed == 7
    assert result.sampling.action_steps == 4
    assert result.timing.total_ms > 0

    so100 = client.predict(PredictRequest(robot_id="py-so100", embodiment="so100_arm", images=frames(1),
                                          state=[0.0, 0.8, 2.0, 1.4, 0.0, 0.3]))
    assert so100.actions.shape == (16, 6)


def test_a_request_id_is_drawn_when_none_is_given(client: DustClient) -> None:
    a = client.predict(franka_request())
    b = client.predict(franka_request())
    assert len(a.request_id) == 36 and a.request_id != b.request_id


def test_future_embedding_when_asked(client: DustClient) -> None:
    result = client.predict(franka_request(return_future_embedding=True))
    assert result.future_embedding is not None
    assert result.future_embedding.dtype == np.float32
    assert result.future_embedding.shape == (16, 32)
    assert np.isfinite(result.future_embedding).all()


def test_a_seed_reproduces_the_chunk_and_another_seed_does_not(client: DustClient) -> None:
    first = client.predict(franka_request(seed=123))
    again = client.predict(franka_request(seed=123))
    other = client.predict(franka_request(seed=124))
    np.testing.assert_array_equal(first.actions, again.actions)
    assert not np.array_equal(first.actions, other.actions)
    # Without a seed the server draws one and reports it; replaying it reproduces the chunk.
    drawn = client.predict(franka_request(seed=None))
    replay = client.predict(franka_request(seed=drawn.sampling.seed))
    np.testing.assert_array_equal(drawn.actions, replay.actions)


def test_seeds_use_all_64_bits(client: DustClient) -> None:
    big = (1 << 64) - 1
    assert client.predict(franka_request(seed=big)).sampling.seed == big


def test_png_frames_give_the_same_actions_as_raw_ones(client: DustClient) -> None:
    raw = client.predict(franka_request(seed=5))
    png = client.predict(franka_request(seed=5, images={c: encode_png(a) for c, a in frames().items()}))
    np.testing.assert_array_equal(raw.actions, png.actions)


def test_images_of_another_size_are_resized_by_the_server(client: DustClient) -> None:
    result = client.predict(franka_request(images=frames(size=96)))
    assert result.actions.shape == (16, 8)


def test_step_counts_are_sent(client: DustClient) -> None:
    result = client.predict(franka_request(sampling=Sampling(action_steps=2, vision_steps=8, seed=1)))
    assert (result.sampling.action_steps, result.sampling.vision_steps) == (2, 8)


def test_a_strict_budget_that_cannot_be_met_is_refused_rather_than_answered_late(client: DustClient) -> None:
    with pytest.raises(DustClientError) as info:
        client.predict(franka_request(sampling=Sampling(latency_budget_ms=1, strict_budget=True)))
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "strict latency budget" in info.value.details
    result = client.predict(franka_request(sampling=Sampling(latency_budget_ms=1)))
    assert (result.sampling.budget_feasible, result.sampling.budget_met) == (False, False)


def test_server_errors_carry_the_code_and_the_servers_details(client: DustClient) -> None:
    with pytest.raises(DustClientError) as info:
        client.predict(franka_request(request_id="py-bad-state", state=FRANKA_STATE[:5]))
    err = info.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.code_name == "INVALID_ARGUMENT"
    assert "state" in err.details and "8" in err.details
    assert str(err).startswith("INVALID_ARGUMENT: ")
    assert err.request_id == "py-bad-state"

    with pytest.raises(DustClientError) as info:
        client.predict(franka_request(embodiment="hexapod"))
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert "hexapod" in info.value.details

    with pytest.raises(DustClientError) as info:
        client.predict(franka_request(model="no-such-model"))
    assert info.value.code == grpc.StatusCode.NOT_FOUND

    with pytest.raises(DustClientError) as info:
        client.health("no-such-model")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_requests_that_cannot_be_encoded_fail_before_the_wire(client: DustClient) -> None:
    cases = [
        franka_request(images={"front": np.zeros((64, 64, 3), np.float32), "wrist": frames()["wrist"]}),
        franka_request(images={"front": np.zeros((64, 64), np.uint8), "wrist": frames()["wrist"]}),
        franka_request(sampling=Sampling(seed=-1)),
        franka_request(sampling=Sampling(action_steps=-2)),
        franka_request(state=np.zeros((2, 4))),
        franka_request(images={"front": EncodedImage("gif", b"GIF89a"), "wrist": frames()["wrist"]}),  # type: ignore[arg-type]
    ]
    for request in cases:
        with pytest.raises(DustClientError) as info:
            client.predict(request)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_report_outcome_credits_the_version_that_served_the_episode(client: DustClient) -> None:
    client.predict(franka_request(robot_id="py-arm-outcome", episode_id="ep-1"))
    outcome = client.report_outcome("py-arm-outcome", "ep-1", success=True, reward=1.0)
    assert (outcome.model_name, outcome.model_version) == ("dust-tiny", 1)
    with pytest.raises(DustClientError) as info:
        client.report_outcome("py-arm-outcome", "never-served", success=False)
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_a_closed_client_refuses_calls(server) -> None:  # type: ignore[no-untyped-def]
    c = DustClient(server.address)
    c.close()
    with pytest.raises(DustClientError) as info:
        c.predict(franka_request())
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_a_committed_prefix_is_continued_and_reported(client: DustClient) -> None:
    first = client.predict(franka_request(sampling=Sampling(action_steps=4, vision_steps=8, seed=5)))
    committed = first.actions[8:]
    res = client.predict(franka_request(sampling=Sampling(seed=6), prefix=Prefix(actions=committed, delay_steps=3)))
    assert res.chunking == ChunkingReport(method="inpaint", delay_steps=3, delay_estimated=False, prefix_length=8)
    np.testing.assert_allclose(res.actions[:3], committed[:3], atol=1e-5)
    ens = client.predict(franka_request(prefix=Prefix(actions=committed, control_period_ms=20, method="ensemble")))
    # A unary Predict has no measured latency: the whole prefix is frozen.
    assert ens.chunking == ChunkingReport(method="ensemble", delay_steps=8, delay_estimated=True, prefix_length=8)
    assert client.predict(franka_request()).chunking is None
    tiny = next(m for m in client.list_models().models if m.name == "dust-tiny")
    assert tiny.realtime_chunking == ("inpaint", "naive", "ensemble")


def test_a_malformed_prefix_is_refused_saying_what_to_fix(client: DustClient) -> None:
    with pytest.raises(DustClientError) as err:
        client.predict(franka_request(prefix=Prefix(actions=np.zeros((2, 7)), delay_steps=0)))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "shape [L, 8]" in err.value.details
    # Caught before the wire, with the same code.
    for prefix, message in [
        (Prefix(actions=np.zeros((2, 8))), "control_period_ms > 0"),
        (Prefix(actions=np.zeros((2, 8)), delay_steps=1, method="blend"), "prefix.method"),
    ]:
        with pytest.raises(DustClientError) as err:
            client.predict(franka_request(prefix=prefix))
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.details
