"""The peer: the same paper-size DUST weights served the way today's robot-policy servers serve them.

openpi's and GR00T's policy servers run one request at a time per GPU in PyTorch. This gives that design its best
case, so that dust-serve is compared with the strongest version of it rather than a strawman:
- bf16 weights, and the whole request (pixel normalisation from uint8, the VLM, every denoiser evaluation and the
  Euler updates of docs/sampling.md) captured as ONE CUDA graph per sampling plan, replayed per request;
- no transport: robots are threads in the same process that hand their tensors to the serving thread through a
  queue (openpi's server also pays for WebSocket framing and msgpack; this peer does not);
- closed loop: each robot sends its next request as soon as it has the previous answer, as `npm run bench`'s
  robots do.

Writes <out> (JSON): for each robot count, requests/s, latency p50/p99 (submit to answer), the GPU time of one
request alone. Run from a folder that holds `models/toolchain`:

    PYTHONPATH=. python3 scripts/gpu/torch_peer.py --out /tmp/gpu8/peer.json [--robots 1,16,64] [--duration-s 8]
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

from models.toolchain import build
from models.toolchain.onnx_export import example_inputs
from scripts.gpu.torch_bench import graph_capture


def log(msg: str) -> None:
    print(f"[peer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def plan(n_a: int, n_o: int) -> list[tuple[float, float, float, float]]:
    """(tau_A, tau_o, dt_A, dt_O) of each denoiser evaluation: docs/sampling.md with q = N_o / N_A."""
    q = n_o // n_a
    out = []
    for i in range(n_o):
        last_of_block = (i + 1) % q == 0
        out.append(((i // q) / n_a, i / n_o, (1.0 / n_a) if last_of_block else 0.0, 1.0 / n_o))
    return out


class Peer:
    """One request at a time: static input buffers, one captured graph for the whole request."""

    def __init__(self, policy, cfg, device: torch.device, dtype: torch.dtype, n_a: int, n_o: int, use_graph: bool):
        self.vlm, self.den = policy.vlm.to(device, dtype), policy.denoiser.to(device, dtype)
        self.device, self.dtype = device, dtype
        v, d = cfg.vlm, cfg.denoiser
        views, size = len(v.cameras), v.image_size
        self.pix = torch.zeros(1, views, size, size, 3, dtype=torch.uint8, device=device)
        self.ids = torch.zeros(1, v.max_tokens, dtype=torch.int64, device=device)
        self.mask = torch.ones(1, v.max_tokens, dtype=torch.int64, device=device)
        self.state = torch.zeros(1, d.state_dim, dtype=dtype, device=device)
        self.emb = torch.zeros(1, dtype=torch.int64, device=device)
        self.a0 = torch.zeros(1, d.action_horizon, d.action_dim, dtype=dtype, device=device)
        self.o0 = torch.zeros(1, d.future_tokens, d.future_dim, dtype=dtype, device=device)
        self.steps = [tuple(torch.full((1,), x, dtype=dtype, device=device) for x in row) for row in plan(n_a, n_o)]
        # The package's normalisation constants do not change the cost; the server's are in its manifest.
        self.mean = torch.full((1, 1, 3, 1, 1), 0.5, dtype=dtype, device=device)
        self.std = torch.full((1, 1, 3, 1, 1), 0.5, dtype=dtype, device=device)
        self.out_a = None
        self.replay = graph_capture(self._forward, device) if use_graph else self._forward

    def _forward(self) -> None:
        pix = (self.pix.permute(0, 1, 4, 2, 3).to(self.dtype) / 255.0 - self.mean) / self.std
        cond, _ = self.vlm(pix, self.ids, self.mask)
        a, o = self.a0.clone(), self.o0.clone()
        for tau_a, tau_o, dt_a, dt_o in self.steps:
            v_a, v_o = self.den(cond, self.state, a, o, tau_a, tau_o, self.emb)
            a = a + dt_a.view(-1, 1, 1) * v_a
            o = o + dt_o.view(-1, 1, 1) * v_o
        self.out_a = a

    def serve_one(self, req: dict) -> torch.Tensor:
        self.pix.copy_(req["pix"], non_blocking=True)
        self.ids.copy_(req["ids"], non_blocking=True)
        self.state.copy_(req["state"], non_blocking=True)
        self.a0.copy_(req["a0"], non_blocking=True)
        self.o0.copy_(req["o0"], non_blocking=True)
        self.replay()
        return self.out_a.float().cpu()  # synchronises, as a server answering the robot must


def request(cfg, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    v, d = cfg.vlm, cfg.denoiser
    pix = torch.randint(0, 256, (1, len(v.cameras), v.image_size, v.image_size, 3), generator=g, dtype=torch.uint8)
    return {
        "pix": pix.pin_memory() if torch.cuda.is_available() else pix,
        "ids": torch.randint(0, v.vocab_size, (1, v.max_tokens), generator=g),
        "state": torch.randn(1, d.state_dim, generator=g),
        "a0": torch.randn(1, d.action_horizon, d.action_dim, generator=g),
        "o0": torch.randn(1, d.future_tokens, d.future_dim, generator=g),
    }


def fleet(peer: Peer, cfg, robots: int, duration_s: float, warmup_s: float) -> dict:
    """Closed-loop robots against one serving thread; latency from submit to answer."""
    inbox: "queue.Queue[tuple[dict, threading.Event, list]]" = queue.Queue()
    stop = threading.Event()
    lat: list[tuple[float, float]] = []  # (answered at, latency ms)

    def serve() -> None:
        while not stop.is_set():
            try:
                req, done, box = inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            box.append(peer.serve_one(req))
            done.set()

    def robot(i: int) -> None:
        req = request(cfg, 1000 + i)
        while not stop.is_set():
            done, box = threading.Event(), []
            t0 = time.perf_counter()
            inbox.put((req, done, box))
            while not done.wait(0.05):
                if stop.is_set():
                    return
            t1 = time.perf_counter()
            lat.append((t1, (t1 - t0) * 1e3))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    threads = [threading.Thread(target=robot, args=(i,), daemon=True) for i in range(robots)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(warmup_s + duration_s)
    stop.set()
    for t in threads:
        t.join()
    server.join()
    window = [ms for at, ms in lat if at >= start + warmup_s]
    window.sort()
    q = lambda f: window[min(len(window) - 1, int(f * len(window)))] if window else None
    return {"robots": robots, "requests": len(window), "req_per_s": round(len(window) / duration_s, 2),
            "p50_ms": round(statistics.median(window), 2) if window else None, "p99_ms": round(q(0.99), 2) if window else None}


def step_timings(policy, cfg, device, dtype, batches: list[int], use_graph: bool) -> dict:
    """One denoiser evaluation (and one VLM call) at each batch size, bf16, replayed from a CUDA graph: the
    reference the native executor's step is held to. Median of 30 synchronised replays after 3 warm ones."""
    out: dict = {}
    for graph_name, module in (("denoiser", policy.denoiser), ("vlm", policy.vlm)):
        for b in batches:
            torch.manual_seed(1)
            x = [t.to(device) for t in example_inputs(cfg, graph_name, b)]
            x = [t.to(dtype) if t.is_floating_point() else t for t in x]
            fn = graph_capture(lambda: module(*x), device) if use_graph else (lambda: module(*x))
            times = []
            for i in range(33):
                t0 = time.perf_counter()
                fn()
                if use_graph:
                    torch.cuda.synchronize()
                if i >= 3:
                    times.append((time.perf_counter() - t0) * 1e3)
            out.setdefault(graph_name, {})[b] = round(statistics.median(times), 3)
            log(f"{graph_name} batch {b}: {out[graph_name][b]} ms")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--robots", default="1,16,64")
    ap.add_argument("--mix", default="4:4", help="N_A:N_o")
    ap.add_argument("--duration-s", type=float, default=8.0)
    ap.add_argument("--warmup-s", type=float, default=2.0)
    ap.add_argument("--step-batches", default="1,64", help="batch sizes of the per-call reference timings")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    n_a, n_o = (int(x) for x in args.mix.split(":"))
    policy, _ = build.paper_policy(0, build.parse_overrides(args.set))
    cfg = policy.cfg
    result: dict = {"peer": "PyTorch, one request at a time, whole request as one CUDA graph" if cuda else "PyTorch eager (CPU dry run)",
                    "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if cuda else "cpu",
                    "dtype": str(dtype).replace("torch.", ""), "mix": args.mix, "overrides": args.set,
                    "duration_s": args.duration_s, "warmup_s": args.warmup_s, "runs": []}
    with torch.no_grad():
        t0 = time.perf_counter()
        policy = policy.to(device, dtype)
        result["call_ms_cuda_graph" if cuda else "call_ms_eager"] = step_timings(
            policy, cfg, device, dtype, [int(b) for b in args.step_batches.split(",")], use_graph=cuda)
        if cuda:
            torch.cuda.empty_cache()
        peer = Peer(policy, cfg, device, dtype, n_a, n_o, use_graph=cuda)
        result["capture_s"] = round(time.perf_counter() - t0, 2)
        alone = []
        req = request(cfg, 1)
        for _ in range(20):
            t = time.perf_counter()
            peer.serve_one(req)
            alone.append((time.perf_counter() - t) * 1e3)
        result["one_request_alone_p50_ms"] = round(statistics.median(alone), 2)
        log(f"one request alone: {result['one_request_alone_p50_ms']} ms")
        for n in [int(r) for r in args.robots.split(",")]:
            run = fleet(peer, cfg, n, args.duration_s, args.warmup_s)
            log(f"{n} robots: {run}")
            result["runs"].append(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
