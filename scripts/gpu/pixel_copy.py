"""What uint8 pixel rows save on a GPU, measured without the server: the host-to-device copy of a VLM batch's
pixel_values rows as float32 (normalised on the host) and as uint8 (normalised on the device by the same
Cast, Mul and Add a uint8 package's VLM graph starts with: docs/model-package.md, "Images"), from pageable memory
as the server's rows are, and from pinned memory for comparison. The paper-size VLM's shapes (3 cameras at
224 x 224); the median of `--runs` timed copies per batch size, each after a synchronise.

    python3 scripts/gpu/pixel_copy.py --out /tmp/gpu8/pixel-copy.json [--batches 1,16,64] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

MEAN = torch.tensor([0.5, 0.5, 0.5]).view(1, 1, 3, 1, 1)
STD = torch.tensor([0.5, 0.5, 0.5]).view(1, 1, 3, 1, 1)


def timed(fn, runs: int) -> float:
    """Median milliseconds of `fn` over `runs` calls, the device synchronised around each."""
    samples = []
    for _ in range(runs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--views", type=int, default=3)
    ap.add_argument("--side", type=int, default=224)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    dev = torch.device("cuda")
    scale, shift = (1 / (255 * STD)).to(dev), (-MEAN / STD).to(dev)
    result = {"device": torch.cuda.get_device_name(0), "views": a.views, "side": a.side, "runs": a.runs, "batches": {}}
    for b in [int(x) for x in a.batches.split(",")]:
        shape = (b, a.views, 3, a.side, a.side)
        raw = torch.randint(0, 256, shape, dtype=torch.uint8)
        norm = (raw.float() / 255 - MEAN) / STD
        pinned_raw, pinned_norm = raw.pin_memory(), norm.pin_memory()
        dst_u8 = torch.empty(shape, dtype=torch.uint8, device=dev)
        dst_f32 = torch.empty(shape, dtype=torch.float32, device=dev)

        def normalise_on_device() -> torch.Tensor:
            return dst_u8.float() * scale + shift

        row = {
            "float32_bytes": norm.numel() * 4,
            "uint8_bytes": raw.numel(),
            "float32_pageable_ms": timed(lambda: dst_f32.copy_(norm), a.runs),
            "uint8_pageable_ms": timed(lambda: dst_u8.copy_(raw), a.runs),
            "float32_pinned_ms": timed(lambda: dst_f32.copy_(pinned_norm, non_blocking=True), a.runs),
            "uint8_pinned_ms": timed(lambda: dst_u8.copy_(pinned_raw, non_blocking=True), a.runs),
            "normalise_on_device_ms": timed(normalise_on_device, a.runs),
        }
        dst_u8.copy_(raw)
        row["max_abs_difference"] = float((normalise_on_device().cpu() - norm).abs().max())
        result["batches"][str(b)] = row
        print(json.dumps({b: row}), flush=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
