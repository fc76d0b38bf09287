#!/usr/bin/env python3
"""Checks a dust-serve openpi port with the wire protocol of openpi's clients (docs/openpi.md).

It speaks what openpi_client.WebsocketClientPolicy speaks: msgpack frames in which numpy arrays are maps with
the bytes keys b"__ndarray__", b"data", b"dtype", b"shape", an `Authorization: Api-Key <key>` header, and the
episode_start / episode_end control frames. It needs only Debian's python3-msgpack, python3-websockets (10.x or
later) and python3-numpy, not openpi itself, and prints one JSON object on stdout.

  openpi_check.py session ws://127.0.0.1:8000 --steps 50 [--api-key KEY]
  openpi_check.py hostile ws://127.0.0.1:8000 --max-frame-bytes 16777216
  openpi_check.py refused ws://127.0.0.1:8000 [--api-key KEY]
  openpi_check.py rtc ws://127.0.0.1:8000 --steps 6      (real-time chunking: the committed prefix in each observation)
"""

import argparse
import asyncio
import inspect
import json
import sys
import time

import msgpack
import numpy as np
import websockets


# --- msgpack-numpy, as openpi_client's packer writes it -------------------------------------------------------


def _pack_default(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in ("O", "V", "c"):
            raise ValueError(f"openpi's packer refuses dtype {obj.dtype}")
        arr = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": arr.dtype.str, b"shape": arr.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def _unpack_hook(obj):
    if b"__ndarray__" in obj:
        return np.frombuffer(obj[b"data"], dtype=np.dtype(obj[b"dtype"])).reshape(obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def pack(obj) -> bytes:
    return msgpack.packb(obj, default=_pack_default, use_bin_type=True)


def unpack(data: bytes):
    return msgpack.unpackb(data, object_hook=_unpack_hook, raw=False)


# --- connections ----------------------------------------------------------------------------------------------


def _connect(url: str, api_key):
    headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
    kwargs = {"max_size": None, "compression": None}
    # websockets 10-13 call the handshake's extra headers extra_headers, 14 and later additional_headers.
    params = inspect.signature(websockets.connect).parameters
    if headers:
        kwargs["additional_headers" if "additional_headers" in params else "extra_headers"] = headers
    return websockets.connect(url, **kwargs)


def _image(rng, height: int, width: int, chw: bool) -> np.ndarray:
    img = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return np.ascontiguousarray(img.transpose(2, 0, 1)) if chw else img


def _observation(rng, meta, chw: bool, step: int) -> dict:
    mapping = meta["key_mapping"]
    obs = {}
    for i, (camera, key) in enumerate(mapping["images"].items()):
        # Sizes other than the model's: the server resizes, as it does gRPC images.
        _put(obs, key, _image(rng, 96 + 8 * i, 128, chw))
    state_dim = meta["state_dim"]
    state_keys = mapping["state"]
    # The state split over its keys as DROID splits joints and gripper: all but the last value, then the last.
    parts = [state_dim] if len(state_keys) == 1 else [state_dim - 1] + [1] * (len(state_keys) - 1)
    for key, n in zip(state_keys, parts):
        _put(obs, key, (rng.random(n) * 0.1).astype(np.float64 if step % 2 else np.float32))
    _put(obs, mapping["prompt"], "push the red block left")
    return obs


def _put(obs: dict, key, value):
    if isinstance(key, str):
        obs[key] = value
        return
    for k in key[:-1]:
        obs = obs.setdefault(k, {})
    obs[key[-1]] = value


async def _infer(ws, obs: dict):
    """One observation's answer: the action dict, or the text of a refusal."""
    await ws.send(pack(obs))
    reply = await ws.recv()
    return reply if isinstance(reply, str) else unpack(reply)


async def session(args) -> dict:
    rng = np.random.default_rng(0)
    async with _connect(args.url, args.api_key) as ws:
        meta = unpack(await ws.recv())
        await ws.send(pack({"__ctrl__": "episode_start", "__experiment__": args.experiment, "__task__": "push", "__episode_id__": args.episode_id}))
        ack_start = unpack(await ws.recv())
        shapes, layouts, timings, futures, errors = set(), [], [], set(), []
        started = time.monotonic()
        for step in range(args.steps):
            chw = step % 2 == 1
            out = await _infer(ws, _observation(rng, meta, chw, step))
            if isinstance(out, str):
                errors.append(out)
                continue
            actions = out["actions"]
            if actions.dtype != np.float32 or not np.all(np.isfinite(actions)):
                errors.append(f"step {step}: actions are {actions.dtype}, finite={bool(np.all(np.isfinite(actions)))}")
            shapes.add(tuple(actions.shape))
            futures.add(tuple(out["future_embedding"].shape))
            layouts.append("CHW" if chw else "HWC")
            timings.append(out["server_timing"])
            last = out
        elapsed = time.monotonic() - started
        await ws.send(pack({"__ctrl__": "episode_end", "__success__": True}))
        ack_end = unpack(await ws.recv())
        await ws.send(pack({"__ctrl__": "something_else"}))
        ack_other = unpack(await ws.recv())
    return {
        "metadata": meta,
        "ack_start": ack_start,
        "ack_end": ack_end,
        "ack_other": ack_other,
        "inferences": len(timings),
        "layouts": sorted(set(layouts)),
        "action_shapes": [list(s) for s in shapes],
        "future_shapes": [list(s) for s in futures],
        "server_timing_keys": sorted(timings[-1].keys()) if timings else [],
        "prev_total_ms_reported": sum(1 for t in timings if "prev_total_ms" in t),
        "last": {k: last[k] for k in ("model_name", "model_version", "variant", "episode_id", "request_id")} if timings else None,
        "sampling": {k: int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v for k, v in last["sampling"].items()} if timings else None,
        "errors": errors,
        "seconds": elapsed,
    }


async def hostile(args) -> dict:
    """Each case on the same connection: every one must be answered with a text frame, and the connection live."""
    rng = np.random.default_rng(1)
    results = {}
    async with _connect(args.url, args.api_key) as ws:
        meta = unpack(await ws.recv())
        mapping = meta["key_mapping"]
        first_camera, first_key = next(iter(mapping["images"].items()))

        def valid():
            return _observation(rng, meta, False, 0)

        def with_key(key, value):
            obs = valid()
            _put(obs, key, value)
            return obs

        def without(key):
            obs = valid()
            del obs[key if isinstance(key, str) else key[0]]
            return obs

        cases = {
            "garbage": b"\xc1\xff\x00not msgpack at all",
            "truncated": pack(valid())[:-10],
            "not_a_map": pack([1, 2, 3]),
            "float_image": pack(with_key(first_key, rng.random((64, 64, 3)).astype(np.float32))),
            "object_dtype": pack({**valid(), first_key: {b"__ndarray__": True, b"data": b"\x00" * 8, b"dtype": "|O", b"shape": [1]}}),
            "wrong_data_length": pack({**valid(), first_key: {b"__ndarray__": True, b"data": b"\x00" * 10, b"dtype": "|u1", b"shape": [64, 64, 3]}}),
            "gray_image": pack(with_key(first_key, rng.integers(0, 256, size=(64, 64), dtype=np.uint8))),
            "missing_image": pack(without(first_key)),
            "missing_state": pack(without(mapping["state"][0])),
            "short_state": pack(with_key(mapping["state"][0], np.zeros(2, dtype=np.float32))),
            "nan_state": pack(with_key(mapping["state"][0], np.full(meta["state_dim"], np.nan, dtype=np.float32))),
            "string_state": pack(with_key(mapping["state"][0], np.array(["a", "b"]))),
            "unknown_camera": pack({**valid(), "observation/third_camera": _image(rng, 32, 32, False)}),
            "prompt_not_string": pack(with_key(mapping["prompt"], 42)),
            "deep_nesting": b"\x91" * 200 + b"\xc0",
            "many_items": b"\xdd" + (70000).to_bytes(4, "big") + b"\xc0" * 70000,
            "oversized": pack({**valid(), "padding": b"\x00" * (args.max_frame_bytes + 1)}),
            "prefix_not_a_dict": pack({**valid(), "prefix": [1, 2]}),
            "prefix_nan_action": pack({**valid(), "prefix": {"actions": np.full((2, 8), np.nan), "delay_steps": 1}}),
            "prefix_wide": pack({**valid(), "prefix": {"actions": np.zeros((2, 9)), "delay_steps": 1}}),
            "prefix_long": pack({**valid(), "prefix": {"actions": np.zeros((4096, 8), dtype=np.float32), "delay_steps": 1}}),
            "prefix_delay_over_length": pack({**valid(), "prefix": {"actions": np.zeros((2, 8)), "delay_steps": 3}}),
            "prefix_no_delay_or_period": pack({**valid(), "prefix": {"actions": np.zeros((2, 8))}}),
            "bad_ctrl_success": pack({"__ctrl__": "episode_end", "__success__": "yes"}),
            "end_without_requests": pack({"__ctrl__": "episode_end", "__success__": True}),
        }
        for name, frame in cases.items():
            await ws.send(frame)
            reply = await ws.recv()
            results[name] = reply if isinstance(reply, str) else {"binary": repr(unpack(reply))[:200]}
        await ws.send("a text frame")
        results["text_frame"] = await ws.recv()
        # Still usable: a valid observation is served after all of that.
        await ws.send(pack(valid()))
        reply = await ws.recv()
        results["after"] = "served" if not isinstance(reply, str) else reply
    return {"metadata": meta, "results": results}


async def rtc(args) -> dict:
    """Real-time chunking as an openpi client would add it: each observation carries the rest of the executing chunk
    under "prefix" (float64 rows, a numpy int delay), every other one with a control period instead of a delay."""
    rng = np.random.default_rng(1)
    execute = 4
    async with _connect(args.url, args.api_key) as ws:
        meta = unpack(await ws.recv())
        chunk = (await _infer(ws, _observation(rng, meta, False, 0)))["actions"]
        t = 0
        reports, errors, worst = [], [], 0.0
        for step in range(args.steps):
            t += execute
            committed = chunk[t:].astype(np.float64)
            prefix = {"actions": committed}
            if step % 2 == 0:
                prefix["delay_steps"] = np.int64(2)
            else:
                prefix["control_period_ms"] = 1e6
            out = await _infer(ws, {**_observation(rng, meta, step % 2 == 1, step), "prefix": prefix})
            if isinstance(out, str):
                errors.append(out)
                break
            report = out["chunking"]
            reports.append(report)
            d = int(report["delay_steps"])
            # The rows that ran meanwhile are the committed ones (inpaint, ensemble and condition pin them).
            if report["method"] != "naive" and d > 0:
                worst = max(worst, float(np.max(np.abs(out["actions"][:d] - committed[:d]))))
            chunk, t = out["actions"], d
    return {"metadata": meta, "chunking": reports, "max_committed_row_error": worst, "errors": errors}


async def refused(args) -> dict:
    try:
        async with _connect(args.url, args.api_key) as ws:
            meta = unpack(await ws.recv())
            return {"connected": True, "metadata": meta}
    except Exception as exc:  # the status travels on the exception, whose class differs between versions
        status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
        return {"connected": False, "status": status, "error": type(exc).__name__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["session", "hostile", "refused", "rtc"])
    parser.add_argument("url")
    parser.add_argument("--api-key")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--experiment", default="openpi-check")
    parser.add_argument("--episode-id", type=int, default=-1)
    parser.add_argument("--max-frame-bytes", type=int, default=16 * 1024 * 1024)
    args = parser.parse_args()
    result = asyncio.run({"session": session, "hostile": hostile, "refused": refused, "rtc": rtc}[args.mode](args))
    json.dump(result, sys.stdout, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else repr(o))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
