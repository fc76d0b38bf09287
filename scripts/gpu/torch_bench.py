"""Paper-size DUST on the GPU host, PyTorch side (scripts/gpu/reproduce.sh, stage `torch`).

Builds the random-weight paper model once (models.toolchain `paper_policy`, seed 0), writes its float32 package
and the float16 variant (`half`), both with uint8 pixel_values unless --pixels float32, the reference outputs the ONNX Runtime benchmark compares against, and times
PyTorch on the same weights: VLM and one denoiser step at each batch size, float32 eager, bf16 and fp16 eager,
bf16 CUDA graph; for the step also the conditioning copied from host memory every step (what the server's ONNX
Runtime path does) and the cross-attention K/V computed once per request (what a runtime that keeps tensors on
the device could do). Writes <out>/torch.json. Run from a folder that holds `models/toolchain`:

    PYTHONPATH=. python3 scripts/gpu/torch_bench.py --out /tmp/gpu8 [--set vlm.width=64 ...] [--batches 1,8,32,64,128]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.toolchain import build
from models.toolchain.onnx_export import example_inputs


def log(msg: str) -> None:
    print(f"[torch {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, budget_s: float, max_iters: int = 40, min_iters: int = 3, warmup: int = 2) -> dict:
    """Wall-clock per call, synchronized after each (as onnxruntime-node's run() returns only when done)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    q = lambda f: times[min(len(times) - 1, int(f * len(times)))]
    return {"p50_ms": round(statistics.median(times), 3), "p10_ms": round(q(0.1), 3), "p90_ms": round(q(0.9), 3),
            "min_ms": round(times[0], 3), "iters": len(times)}


def encode(t: torch.Tensor) -> dict:
    a = t.detach().cpu().contiguous().numpy()
    dtype = {np.dtype("float32"): "float32", np.dtype("int64"): "int64", np.dtype("uint8"): "uint8"}[a.dtype]
    return {"dtype": dtype, "shape": list(a.shape), "data_b64": base64.b64encode(a.tobytes()).decode()}


def inputs(cfg, graph: str, batch: int, device, seed: int = 1):
    """Deterministic inputs of one graph (example_inputs draws them with a fixed generator)."""
    torch.manual_seed(seed)
    return [t.to(device) for t in example_inputs(cfg, graph, batch)]


def graph_capture(fn, device):
    """A CUDA graph of fn() over its (static) inputs; returns the replay function."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def step_flops(den, cfg, device) -> dict:
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return {}
    x = inputs(cfg, "denoiser", 1, device)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        den(*x)
    total = fc.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as fk:
        den.conditioning_kv(x[0])
    return {"step_gflop_per_row": round(total / 1e9, 2), "conditioning_kv_gflop_per_row": round(fk.get_total_flops() / 1e9, 2)}


def write_copy_probe(path: Path) -> None:
    """A graph that only reads its float32 input (ReduceSum to a scalar): run on CUDA, its time is the input's
    host-to-device copy plus one small kernel."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", "d"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    node = helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)
    model = helper.make_model(helper.make_graph([node], "copy_probe", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--batches", default="1,8,32,64,128")
    ap.add_argument("--budget-s", type=float, default=0.8, help="timed seconds per measurement (at least 3 calls)")
    ap.add_argument("--ref-batch", type=int, default=8)
    ap.add_argument("--export-only", action="store_true", help="write the packages and the reference, no timings")
    ap.add_argument("--pixels", choices=["uint8", "float32"], default="uint8",
                    help="the packages' pixel_values: uint8 (the VLM normalises; a quarter of the bytes to the device) or float32")
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batches.split(",")]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                    "batches": batches, "overrides": args.set, "timing": "wall clock per call, synchronized; median"}

    t0 = time.time()
    policy, tokenizer = build.paper_policy(0, build.parse_overrides(args.set))
    cfg = policy.cfg
    result["parameters"] = {"total": sum(p.numel() for p in policy.parameters()),
                            "denoiser": sum(p.numel() for p in policy.denoiser.parameters())}
    fp32 = out / "repo32" / "dust-paper" / "1"
    fp16 = out / "repo16" / "dust-paper" / "1"
    build.export_paper(out=fp32, seed=0, policy=policy, tokenizer=tokenizer)
    result["export_fp32_s"] = round(time.time() - t0, 1)
    t1 = time.time()
    half = build.run_half(package=fp32, out=fp16)
    result["export_fp16_s"] = round(time.time() - t1, 1)
    # Pixels last, on both packages in place: `half` converts a float32-pixel package (models/toolchain/README.md).
    result["pixels"] = args.pixels
    if args.pixels == "uint8":
        for pkg in (fp32, fp16):
            build.run_pixels(package=pkg, out=pkg)
    # Nodes a captured CUDA graph would replay with stale host metadata, as the package records them
    # (models/toolchain/README.md): none expected.
    result["cuda_graph_hazards"] = half["architecture"]["cuda_graph_hazards"]
    log(f"CUDA graph hazards in the float16 denoiser: {result['cuda_graph_hazards'] or 'none'}")
    write_copy_probe(out / "copy_probe.onnx")
    (out / "export.done").write_text("ok\n")
    log(f"packages written: fp32 {result['export_fp32_s']} s, fp16 {result['export_fp16_s']} s")

    policy = policy.to(device).eval()
    vlm, den = policy.vlm, policy.denoiser
    torch.backends.cuda.matmul.allow_tf32 = False  # the reference in true float32
    with torch.no_grad():
        # Reference outputs for the ONNX Runtime side (parity of its fp32 and fp16 graphs on the GPU).
        rb = args.ref_batch
        vx = inputs(cfg, "vlm", 2, device)
        # The packages' own pixel input: camera bytes for a uint8 package (normalised here as its graph does), the
        # normalised floats for a float32 one.
        g = torch.Generator().manual_seed(2)
        pixels8 = torch.randint(0, 256, tuple(vx[0].shape), generator=g, dtype=torch.uint8)
        mean = torch.tensor(cfg.image_mean, dtype=torch.float64).view(1, 1, 3, 1, 1)
        std = torch.tensor(cfg.image_std, dtype=torch.float64).view(1, 1, 3, 1, 1)
        vx[0] = ((pixels8.double() / 255 - mean) / std).float().to(device)
        dx = inputs(cfg, "denoiser", rb, device)
        vout = vlm(*vx)
        dout = den(*dx)
        vlm_in = [pixels8 if args.pixels == "uint8" else vx[0]] + vx[1:]
        ref = {"vlm": {"inputs": dict(zip(["pixel_values", "input_ids", "attention_mask"], map(encode, vlm_in))),
                       "outputs": dict(zip(["vl_embs", "obs_embedding"], map(encode, vout)))},
               "denoiser": {"inputs": dict(zip(["vl_embs", "state", "actions", "future", "tau_a", "tau_o", "embodiment_id"], map(encode, dx))),
                            "outputs": dict(zip(["v_actions", "v_future"], map(encode, dout)))}}
        (out / "reference.json").write_text(json.dumps(ref))
        result["flops"] = step_flops(den, cfg, device)
    log(f"reference outputs written; flops {result['flops']}")
    if args.export_only:
        (out / "torch.done").write_text("ok\n")
        return 0

    timings: dict = {"vlm": {}, "denoiser": {}}
    variants = [("fp32_eager", torch.float32), ("bf16_eager", torch.bfloat16), ("fp16_eager", torch.float16)]
    if device.type == "cpu":  # dry runs: PyTorch 1.13 has no float16 matmul on the CPU
        variants = variants[:2]
    with torch.no_grad():
        for name, dtype in variants:
            v = vlm.to(dtype)
            d = den.to(dtype)
            for b in batches:
                vx = inputs(cfg, "vlm", b, device)
                vx[0] = vx[0].to(dtype)
                timings["vlm"].setdefault(name, {})[b] = timed(lambda: v(*vx), device, args.budget_s)
                dx = inputs(cfg, "denoiser", b, device)
                dx = [t.to(dtype) if t.is_floating_point() else t for t in dx]
                timings["denoiser"].setdefault(name, {})[b] = timed(lambda: d(*dx), device, args.budget_s)
                if dtype == torch.bfloat16:
                    # The conditioning from pageable host memory every step, as float32 (the contract's type).
                    host = dx[0].float().cpu()
                    rest = dx[1:]
                    timings["denoiser"].setdefault("bf16_eager_conditioning_from_host", {})[b] = timed(
                        lambda: d(host.to(device).to(dtype), *rest), device, args.budget_s)
                    # Cross-attention K/V once per request: only the rest of the step runs per step.
                    kv = d.conditioning_kv(dx[0])
                    timings["denoiser"].setdefault("bf16_eager_kv_cached", {})[b] = timed(
                        lambda: d.forward_with_kv(kv, *rest), device, args.budget_s)
                    timings["denoiser"].setdefault("bf16_conditioning_kv_only", {})[b] = timed(
                        lambda: d.conditioning_kv(dx[0]), device, args.budget_s)
                    if device.type == "cuda":
                        replay = graph_capture(lambda: d(*dx), device)
                        timings["denoiser"].setdefault("bf16_cuda_graph", {})[b] = timed(replay, device, args.budget_s)
                        replay = graph_capture(lambda: d.forward_with_kv(kv, *rest), device)
                        timings["denoiser"].setdefault("bf16_cuda_graph_kv_cached", {})[b] = timed(replay, device, args.budget_s)
                        replay = graph_capture(lambda: v(*vx), device)
                        timings["vlm"].setdefault("bf16_cuda_graph", {})[b] = timed(replay, device, args.budget_s)
                log(f"{name} batch {b}: vlm {timings['vlm'][name][b]['p50_ms']} ms, step {timings['denoiser'][name][b]['p50_ms']} ms")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    result["timings"] = timings
    if device.type == "cuda":
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    (out / "torch.json").write_text(json.dumps(result, indent=1))
    (out / "torch.done").write_text("ok\n")
    log("torch.json written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
