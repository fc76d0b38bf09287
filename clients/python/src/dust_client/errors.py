"""The one exception the client raises: a gRPC status code and the server's actionable details (docs/api.md,
Errors), so callers can branch on ``code`` without catching grpc's own exception types."""

from __future__ import annotations

import re
from typing import Sequence

import grpc

Metadata = Sequence[tuple[str, "str | bytes"]]


class DustClientError(Exception):
    """A call that failed, or a request the client could not encode (INVALID_ARGUMENT, as the server would say)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        *,
        trailing_metadata: Metadata | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.trailing_metadata: Metadata = tuple(trailing_metadata or ())

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. ``INVALID_ARGUMENT``."""
        return self.code.name

    @property
    def request_id(self) -> str | None:
        """The request's id from the ``x-request-id`` trailer, which the server sets on errors of requests."""
        for key, value in self.trailing_metadata:
            if key == "x-request-id":
                return value.decode() if isinstance(value, bytes) else value
        return None

    @classmethod
    def from_rpc_error(cls, err: BaseException) -> "DustClientError":
        """Wraps a grpc.RpcError (sync or aio) once, keeping it as ``__cause__``; DustClientErrors pass through."""
        if isinstance(err, DustClientError):
            return err
        code_of = getattr(err, "code", None)
        if callable(code_of) and isinstance(code_of(), grpc.StatusCode):
            trailers = err.trailing_metadata() if callable(getattr(err, "trailing_metadata", None)) else None
            wrapped = cls(code_of(), err.details() or "", trailing_metadata=trailers)  # type: ignore[attr-defined]
        else:
            wrapped = cls(grpc.StatusCode.UNKNOWN, str(err))
        wrapped.__cause__ = err
        return wrapped


# grpc-js says "Received RST_STREAM with code 0", gRPC core "Received RST_STREAM with error code 0".
_RESET = re.compile(r"^Received RST_STREAM with (error )?code \d+|Call ended without gRPC status")


def broken_in_transit(err: DustClientError) -> bool:
    """A call whose HTTP/2 stream was reset on the way, with no status from any server: a load balancer whose
    backend died resets it with NO_ERROR, which gRPC reports as INTERNAL. No dust-serve answered it, so it is a
    lost replica as UNAVAILABLE is, and gRPC's retry policy (by status code only) would otherwise pass it on."""
    return err.code == grpc.StatusCode.INTERNAL and _RESET.search(err.details) is not None


def invalid_argument(err: Exception) -> DustClientError:
    """A request that cannot be encoded fails as the server would have failed it."""
    wrapped = DustClientError(grpc.StatusCode.INVALID_ARGUMENT, str(err))
    wrapped.__cause__ = err
    return wrapped
