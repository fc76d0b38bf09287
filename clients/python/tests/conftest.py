"""Fixtures: one real dust-serve per test session for each setup the tests need (plaintext, a tokens file, TLS),
each started on first use on a loopback port it chose itself, and stopped at the end of the session."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from dust_client import DustClient, PredictRequest, Sampling
from servers import Certs, FaultyProxy, ServeProcess, spawn_serve

ROBOT_TOKEN = "robot-secret-5be2c7d19a04"
ADMIN_TOKEN = "admin-secret-0d83f6a1c2e9"


@pytest.fixture(scope="session")
def server() -> Iterator[ServeProcess]:
    proc = spawn_serve()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(server: ServeProcess) -> Iterator[DustClient]:
    with DustClient(server.address, default_timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def auth_server() -> Iterator[ServeProcess]:
    with tempfile.TemporaryDirectory(prefix="dust-py-auth-") as tmp:
        tokens = Path(tmp) / "tokens.json"
        tokens.write_text(json.dumps([
            {"token": ROBOT_TOKEN, "role": "robot", "name": "arm-7"},
            {"token": ADMIN_TOKEN, "role": "admin", "name": "ops"},
        ]))
        proc = spawn_serve("--tokens-file", str(tokens))
        yield proc
        proc.stop()


@pytest.fixture(scope="session")
def certs() -> Iterator[Certs]:
    c = Certs()
    yield c
    c.remove()


@pytest.fixture(scope="session")
def tls_server(certs: Certs) -> Iterator[ServeProcess]:
    ca = certs.ca("test-ca")
    cert, key = certs.server("dust-server", ca)
    proc = spawn_serve("--tls-cert", str(cert), "--tls-key", str(key))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def mtls_server(certs: Certs) -> Iterator[ServeProcess]:
    """Mutual TLS: clients need a certificate from the client CA."""
    server_ca = certs.ca("mtls-server-ca")
    client_ca = certs.ca("mtls-client-ca")
    cert, key = certs.server("mtls-server", server_ca)
    proc = spawn_serve("--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(client_ca[0]))
    yield proc
    proc.stop()


@pytest.fixture()
def proxy(server: ServeProcess) -> Iterator[FaultyProxy]:
    p = FaultyProxy(server.address)
    yield p
    p.stop()


def frames(seed: int = 0, size: int = 64) -> dict[str, np.ndarray]:
    """Camera frames as a robot's driver hands them over: HWC uint8 RGB, one per camera of dust-tiny."""
    rng = np.random.default_rng(seed)
    return {camera: rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for camera in ("front", "wrist")}


# A franka_fr3 pose inside the embodiment's normalization range (models/dust-tiny/1/manifest.json).
FRANKA_STATE = np.array([0.0, 1.0, 0.0, -2.0, 0.0, 2.5, 0.7, 0.02], dtype=np.float32)


def franka_request(robot_id: str = "py-arm-1", seed: int | None = 7, **overrides: object) -> PredictRequest:
    fields: dict = dict(
        robot_id=robot_id,
        embodiment="franka_fr3",
        images=frames(),
        state=FRANKA_STATE,
        instruction="push the red block left",
        sampling=Sampling(seed=seed),
    )
    fields.update(overrides)
    return PredictRequest(**fields)
