"""The retry policy and the gRPC service config a dust-serve client dials with (gRFC A6 retries, A2 service
config), the same as the TypeScript client's (deploy/client/service-config.json is its default as JSON):

- ``round_robin`` over every address the target resolves to, so a retry is a new pick on the next replica;
- PolicyService calls are retried by gRPC itself on UNAVAILABLE (a draining replica, a version not READY, a
  dropped connection) and RESOURCE_EXHAUSTED (a full queue sheds at once), with exponential backoff and
  +-20% jitter; a ``grpc-retry-pushback-ms`` trailer overrides the backoff;
- health checks are not retried: they report what one replica says now.

gRPC commits a call, and stops retrying it, once response headers arrive or its messages exceed
``grpc.per_rpc_retry_buffer_size``: a StreamPredict that has had a response is resumed by the stream session
instead (session.py), and requests with large raw images need that channel option raised.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Callable, Literal

import grpc

LoadBalancing = Literal["round_robin", "pick_first"]

# gRPC ignores maxAttempts above 5.
MAX_ATTEMPTS_LIMIT = 5
POLICY_SERVICE = "dust.serving.v1.PolicyService"
JITTER = 0.2


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per call (the first included), backoff in seconds, and the codes that are retried."""

    max_attempts: int = 5
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    backoff_multiplier: float = 2.0
    retryable_status_codes: tuple[str, ...] = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or not 2 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"max_attempts must be an integer in [2, {MAX_ATTEMPTS_LIMIT}], got {self.max_attempts!r}")
        for name in ("initial_backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError(
                f"max_backoff_s ({self.max_backoff_s}) must be at least initial_backoff_s ({self.initial_backoff_s})"
            )
        if not 1 <= self.backoff_multiplier < float("inf"):
            raise ValueError(f"backoff_multiplier must be a finite number >= 1, got {self.backoff_multiplier!r}")
        if not self.retryable_status_codes:
            raise ValueError("retryable_status_codes must name at least one status code")
        names = {c.name for c in grpc.StatusCode if c != grpc.StatusCode.OK}
        for name in self.retryable_status_codes:
            if name not in names:
                raise ValueError(f"retryable_status_codes: {name!r} is not a gRPC error status name (e.g. UNAVAILABLE)")

    def delay_s(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before retry number ``retry`` (0 = the first), with gRPC's jitter."""
        backoff = min(self.initial_backoff_s * self.backoff_multiplier**retry, self.max_backoff_s)
        return backoff * (1 - JITTER + 2 * JITTER * rand())

    def retries(self, code: grpc.StatusCode) -> bool:
        return code.name in self.retryable_status_codes


DEFAULT_RETRY_POLICY = RetryPolicy()


def _duration(seconds: float) -> str:
    return f"{round(seconds, 9):g}s"


def service_config(load_balancing: LoadBalancing = "round_robin", retry: "RetryPolicy | None" = DEFAULT_RETRY_POLICY) -> dict:
    """The service config as gRPC's JSON form (None: no retries)."""
    method_config = []
    if retry is not None:
        method_config.append(
            {
                "name": [{"service": POLICY_SERVICE}],
                "retryPolicy": {
                    "maxAttempts": retry.max_attempts,
                    "initialBackoff": _duration(retry.initial_backoff_s),
                    "maxBackoff": _duration(retry.max_backoff_s),
                    "backoffMultiplier": retry.backoff_multiplier,
                    "retryableStatusCodes": list(retry.retryable_status_codes),
                },
            }
        )
    return {"loadBalancingConfig": [{load_balancing: {}}], "methodConfig": method_config}


def channel_options(load_balancing: LoadBalancing, retry: "RetryPolicy | None", extra: dict) -> list:
    """gRPC channel arguments: the service config (unless ``extra`` brings its own) and retries switched on."""
    options = {
        "grpc.service_config": json.dumps(service_config(load_balancing, retry)),
        "grpc.enable_retries": 1,
    }
    options.update(extra)
    return list(options.items())
