"""What both clients (sync and asyncio) dial with: credentials, channel arguments, call metadata, deadlines."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import grpc

from .errors import DustClientError
from .retry import DEFAULT_RETRY_POLICY, LoadBalancing, RetryPolicy, channel_options

Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class ChannelSetup:
    address: str
    #: None: plaintext.
    credentials: grpc.ChannelCredentials | None
    options: list
    retry: RetryPolicy | None
    token: str | None
    default_timeout: float | None


def _read(path: "str | Path | None") -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def channel_setup(
    address: str,
    *,
    token: str | None,
    tls: bool,
    ca_file: "str | Path | None",
    cert_file: "str | Path | None",
    key_file: "str | Path | None",
    credentials: grpc.ChannelCredentials | None,
    default_timeout: float | None,
    retry: "RetryPolicy | bool",
    load_balancing: LoadBalancing,
    options: dict | None,
) -> ChannelSetup:
    if default_timeout is not None and not (0 < default_timeout < float("inf")):
        raise ValueError(f"default_timeout must be a positive number of seconds, got {default_timeout!r}")
    if (cert_file is None) != (key_file is None):
        raise ValueError("cert_file and key_file go together (a client certificate for mutual TLS)")
    policy = DEFAULT_RETRY_POLICY if retry is True else (retry or None)
    if credentials is None and (tls or ca_file is not None or cert_file is not None):
        # Without ca_file the system's roots verify the server.
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(ca_file), private_key=_read(key_file), certificate_chain=_read(cert_file)
        )
    return ChannelSetup(
        address=address,
        credentials=credentials,
        options=channel_options(load_balancing, policy, options or {}),
        retry=policy,
        token=token,
        default_timeout=default_timeout,
    )


def call_metadata(setup: ChannelSetup, given: Metadata | None) -> list[tuple[str, str]]:
    """The caller's metadata plus the bearer token, for servers started with a tokens file."""
    md = [(k, v) for k, v in (given or ()) if k != "authorization" or setup.token is None]
    if setup.token is not None:
        md.append(("authorization", f"Bearer {setup.token}"))
    return md


class Deadline:
    """One deadline for a call and all its attempts (or a stream session and all its calls)."""

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and not (timeout < float("inf")):
            raise DustClientError(grpc.StatusCode.INVALID_ARGUMENT, f"timeout must be a finite number of seconds, got {timeout!r}")
        self.at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        return None if self.at is None else max(0.001, self.at - time.monotonic())

    def allows(self, delay: float) -> bool:
        return self.at is None or time.monotonic() + delay < self.at


class ChannelOwner:
    """The constructor both clients share: validates the arguments once (channel_setup) and dials with the
    module's channel factories (grpc's for DustClient, grpc.aio's for AsyncDustClient)."""

    _secure_channel = staticmethod(grpc.secure_channel)
    _insecure_channel = staticmethod(grpc.insecure_channel)

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls: bool = False,
        ca_file: "str | Path | None" = None,
        cert_file: "str | Path | None" = None,
        key_file: "str | Path | None" = None,
        credentials: grpc.ChannelCredentials | None = None,
        default_timeout: float | None = None,
        retry: "RetryPolicy | bool" = True,
        load_balancing: LoadBalancing = "round_robin",
        options: dict | None = None,
    ) -> None:
        self.address = address
        self._setup: ChannelSetup = channel_setup(
            address,
            token=token,
            tls=tls,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            credentials=credentials,
            default_timeout=default_timeout,
            retry=retry,
            load_balancing=load_balancing,
            options=options,
        )
        s = self._setup
        self._channel = (
            self._secure_channel(address, s.credentials, options=s.options)
            if s.credentials is not None
            else self._insecure_channel(address, options=s.options)
        )
        self._closed = False
