"""Test support: the real dust-serve (the built CLI, spawned as an operator runs it, on a loopback port it picks
itself), throw-away certificates made by openssl, and a gRPC proxy that fails or drops calls on purpose in front
of a real server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from dust_client import policy_pb2

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / "dist" / "src" / "cli" / "main.js"
STARTUP_TIMEOUT_S = 120


@dataclass
class ServeProcess:
    proc: subprocess.Popen
    port: int
    lines: list[dict] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn_serve(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
    """`dust-serve serve` on a free loopback port (--port 0: the server binds one and logs it), one inference
    thread, no warm-up, no metrics port, experiments in memory, the repository's shipped models/."""
    node = shutil.which("node")
    if node is None or not CLI.is_file():
        raise RuntimeError(f"the server is not built: {CLI} (npm run build) or node is missing")
    proc = subprocess.Popen(
        [node, str(CLI), "serve", "--port", "0", "--metrics-port", "0", "--host", "127.0.0.1", "--threads", "1",
         "--warmup", "false", "--log-level", "info", *args],
        cwd=ROOT,
        env={**os.environ, "DUST_MODEL_REPOSITORY": str(ROOT / "models"), "DUST_EXPERIMENT_DB": ":memory:", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict] = []
    ready: "futures.Future[int]" = futures.Future()

    def read_stdout() -> None:
        # Keeps draining after start-up so that a full pipe never blocks the server.
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            lines.append(entry)
            if entry.get("msg") == "dust-serve listening" and not ready.done():
                ready.set_result(int(entry["port"]))
        if not ready.done():
            stderr = proc.stderr.read() if proc.stderr else ""
            ready.set_exception(RuntimeError(f"dust-serve exited with {proc.wait()} before listening:\n{stderr}"))

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        port = ready.result(timeout=STARTUP_TIMEOUT_S)
    except BaseException:
        proc.kill()
        raise
    return ServeProcess(proc, port, lines)


class Certs:
    """A CA and certificates it signs, for 127.0.0.1 and localhost; EC P-256 keys keep generation fast."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dust-py-certs-"))

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.dir, check=True, capture_output=True)

    def ca(self, name: str) -> tuple[Path, Path]:
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                      "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return cert, key

    def server(self, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
        cert, key, csr, ext = (self.dir / f"{name}{s}" for s in (".pem", ".key", ".csr", ".ext"))
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                      "-out", str(csr), "-subj", f"/CN={name}")
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        self._openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
                      "-out", str(cert), "-days", "2", "-extfile", str(ext))
        return cert, key

    def client(self, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
        cert, key, csr, ext = (self.dir / f"{name}{s}" for s in (".pem", ".key", ".csr", ".ext"))
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                      "-out", str(csr), "-subj", f"/CN={name}")
        ext.write_text("extendedKeyUsage=clientAuth\n")
        self._openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
                      "-out", str(cert), "-days", "2", "-extfile", str(ext))
        return cert, key

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


POLICY = "/dust.serving.v1.PolicyService/"


class FaultyProxy:
    """A gRPC server in front of a real dust-serve that forwards every call as bytes, after failing the next
    ``fail_predicts`` Predict calls with ``fail_code``; and that ends the first ``drop_streams`` StreamPredict
    calls with UNAVAILABLE after ``drop_after`` responses, as a replica that goes away mid-session. It records
    every request it received, per call."""

    def __init__(self, upstream: str) -> None:
        self.upstream = grpc.insecure_channel(upstream)
        self.fail_predicts = 0
        self.fail_code = grpc.StatusCode.UNAVAILABLE
        self.drop_streams = 0
        self.drop_after = 0
        self.predicts: list[policy_pb2.PredictRequest] = []
        self.streams: list[list[policy_pb2.PredictRequest]] = []
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers([_Handler(self)])
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace=None)
        self.upstream.close()

    @staticmethod
    def _forwarded(context: grpc.ServicerContext) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in context.invocation_metadata() if k == "authorization"]

    def unary(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        if method.endswith("/Predict"):
            with self._lock:
                self.predicts.append(policy_pb2.PredictRequest.FromString(request))
                fail = self.fail_predicts > 0
                self.fail_predicts -= 1 if fail else 0
            if fail:
                context.abort(self.fail_code, "injected by the test proxy")
        try:
            return self.upstream.unary_unary(method)(request, timeout=30, metadata=self._forwarded(context))
        except grpc.RpcError as err:
            context.abort(err.code(), err.details())
            raise  # unreachable: abort raises

    def stream(self, requests: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            index = len(self.streams)
            seen: list[policy_pb2.PredictRequest] = []
            self.streams.append(seen)
            drop = index < self.drop_streams

        def tee() -> Any:
            for raw in requests:
                seen.append(policy_pb2.PredictRequest.FromString(raw))
                yield raw

        upstream = self.upstream.stream_stream(POLICY + "StreamPredict")(tee(), metadata=self._forwarded(context))
        sent = 0
        try:
            for response in upstream:
                if drop and sent == self.drop_after:
                    upstream.cancel()
                    context.abort(grpc.StatusCode.UNAVAILABLE, "injected by the test proxy: the replica went away")
                yield response
                sent += 1
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED or not context.is_active():
                context.abort(err.code(), err.details())


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, proxy: FaultyProxy) -> None:
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        method = details.method
        if method == POLICY + "StreamPredict":
            return grpc.stream_stream_rpc_method_handler(self.proxy.stream)
        return grpc.unary_unary_rpc_method_handler(lambda request, context: self.proxy.unary(method, request, context))
