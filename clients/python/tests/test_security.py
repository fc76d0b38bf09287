"""Bearer tokens and TLS against real servers started with a tokens file and with a certificate."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from conftest import ADMIN_TOKEN, ROBOT_TOKEN, franka_request
from dust_client import AsyncDustClient, DustClient, DustClientError
from servers import Certs, ServeProcess


def code_of(address: str, token: str | None, **kwargs: object) -> str:
    with DustClient(address, token=token, default_timeout=30, **kwargs) as c:  # type: ignore[arg-type]
        try:
            c.predict(franka_request())
        except DustClientError as err:
            return err.code_name
    return "OK"


def test_a_known_bearer_token_is_accepted_and_others_refused(auth_server: ServeProcess) -> None:
    assert code_of(auth_server.address, None) == "UNAUTHENTICATED"
    assert code_of(auth_server.address, "not-a-known-token-000000") == "UNAUTHENTICATED"
    assert code_of(auth_server.address, ROBOT_TOKEN) == "OK"
    with DustClient(auth_server.address, token=ROBOT_TOKEN) as robot:
        # A stream carries the token too.
        with robot.stream(timeout=60) as session:
            assert session.predict(franka_request(request_id="py-auth-s")).request_id == "py-auth-s"
        # Robots may not administer.
        with pytest.raises(DustClientError) as info:
            robot.get_experiment()
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    with DustClient(auth_server.address, token=ADMIN_TOKEN) as admin:
        assert admin.get_experiment().name == "dust-tiny"
    # Health checks need no credential (load balancers and probes call them).
    with DustClient(auth_server.address) as anonymous:
        assert anonymous.health() == "SERVING"


def test_the_asyncio_client_sends_the_token(auth_server: ServeProcess) -> None:
    async def main() -> tuple[str, str]:
        async with AsyncDustClient(auth_server.address, token=ROBOT_TOKEN) as ok, AsyncDustClient(auth_server.address) as none:
            got = (await ok.predict(franka_request(request_id="py-aio-auth"))).request_id
            try:
                await none.predict(franka_request())
                refused = "OK"
            except DustClientError as err:
                refused = err.code_name
            return got, refused

    assert asyncio.run(main()) == ("py-aio-auth", "UNAUTHENTICATED")


def test_tls_with_the_servers_ca(tls_server: ServeProcess, certs: Certs) -> None:
    ca_file = certs.dir / "test-ca.pem"
    with DustClient(tls_server.address, ca_file=ca_file, default_timeout=30) as c:
        assert c.predict(franka_request(request_id="py-tls")).request_id == "py-tls"
        with c.stream(timeout=60) as session:
            assert session.predict(franka_request(request_id="py-tls-s")).request_id == "py-tls-s"

    async def main() -> str:
        async with AsyncDustClient(tls_server.address, ca_file=ca_file) as a:
            return (await a.predict(franka_request(request_id="py-tls-aio"))).request_id

    assert asyncio.run(main()) == "py-tls-aio"


def test_tls_refuses_plaintext_and_an_unknown_ca(tls_server: ServeProcess, certs: Certs) -> None:
    other_ca, _ = certs.ca("other-ca")
    fast = dict(retry=False)
    assert code_of(tls_server.address, None, **fast) == "UNAVAILABLE"
    assert code_of(tls_server.address, None, ca_file=other_ca, **fast) == "UNAVAILABLE"


def test_mutual_tls_needs_a_client_certificate_from_the_clients_ca(mtls_server: ServeProcess, certs: Certs) -> None:
    ca_file = certs.dir / "mtls-server-ca.pem"
    cert, key = certs.client("robot-arm-7", (certs.dir / "mtls-client-ca.pem", certs.dir / "mtls-client-ca.key"))
    with DustClient(mtls_server.address, ca_file=ca_file, cert_file=cert, key_file=key, default_timeout=30) as c:
        assert c.predict(franka_request(request_id="py-mtls")).request_id == "py-mtls"
    with pytest.raises(ValueError, match="go together"):
        DustClient(mtls_server.address, ca_file=ca_file, cert_file=cert)
    # Without a certificate, or with one from a CA the server does not trust, the handshake fails.
    assert code_of(mtls_server.address, None, ca_file=ca_file, retry=False) == "UNAVAILABLE"
    stranger_ca = certs.ca("stranger-ca")
    stranger = certs.client("stranger", stranger_ca)
    assert code_of(mtls_server.address, None, ca_file=ca_file, cert_file=stranger[0], key_file=stranger[1], retry=False) == "UNAVAILABLE"
