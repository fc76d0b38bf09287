"""Parity and golden-sampling fixtures for the TypeScript side (test/fixtures/<model>/).

parity.json: for both graphs at batch 1 and 7, inputs (ONNX names) and the PyTorch outputs; ONNX Runtime must
agree within 1e-4. golden-sampling.json: fixed conditioning (vl_embs of the VLM on a fixed input), state,
embodiment and explicit initial noise A_0, O_0, and the outputs of the reference sampler (sampling.py, PyTorch
float32) for (N_A, N_o) in (4,4), (4,16), (2,8), (1,3), for every embodiment.

Tensor encoding: {"dtype": "float32"|"int64", "shape": [...], "data_b64": base64 of little-endian raw bytes}.
All inputs are built from fixed seeds, so rebuilding from the same package gives identical files.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

from .data.episodes import BatchBuilder
from .data.synthetic import generate_episode
from .model import DustPolicy
from .sampling import denoiser_field, joint_sample
from .tokenizer import WordTokenizer

GOLDEN_STEPS: Tuple[Tuple[int, int], ...] = ((4, 4), (4, 16), (2, 8), (1, 3))
FIXTURE_SEED = 20_251_128  # distinct from every training seed

# Batch-7 prompts: known words, unknown words ("please", "purple" map to [UNK]), a one-word prompt, and one
# longer than max_tokens (cut), so the attention mask varies across rows.
PARITY_PROMPTS = [
    "push the red block left",
    "slide the blue cube up",
    "move the green block down",
    "push the yellow block right please",
    "push the purple block left",
    "left",
    "push the red block left and then slide the blue cube up and move the green block down",
]


def encode_tensor(x: Any) -> Dict[str, Any]:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        raw, dtype = arr.astype("<f4"), "float32"
    elif arr.dtype == np.int64 or arr.dtype == np.int32:
        raw, dtype = arr.astype("<i8"), "int64"
    else:
        raise TypeError(f"unsupported dtype {arr.dtype}")
    return {"dtype": dtype, "shape": list(arr.shape), "data_b64": base64.b64encode(np.ascontiguousarray(raw).tobytes()).decode("ascii")}


def decode_tensor(t: Dict[str, Any]) -> np.ndarray:
    dtype = {"float32": "<f4", "int64": "<i8"}[t["dtype"]]
    return np.frombuffer(base64.b64decode(t["data_b64"]), dtype=dtype).reshape(t["shape"]).copy()


def _fixture_inputs(policy: DustPolicy, tokenizer: WordTokenizer, builder: BatchBuilder, prompts: Sequence[str],
                    seed: int) -> Dict[str, torch.Tensor]:
    """VLM inputs for len(prompts) rows: rendered scenes of alternating embodiments at varied steps."""
    cfg = policy.cfg
    rows = []
    for i, prompt in enumerate(prompts):
        emb = cfg.embodiments[i % len(cfg.embodiments)]
        ep = generate_episode(seed + i, emb.name, cfg.vlm.image_size)
        ep.instruction = prompt
        rows.append(builder.sample(ep, (7 * i) % ep.length))
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def parity_cases(policy: DustPolicy, tokenizer: WordTokenizer, builder: BatchBuilder) -> List[Dict[str, Any]]:
    cfg = policy.cfg
    cases = []
    for batch_size in (1, 7):
        prompts = PARITY_PROMPTS[:batch_size]
        inp = _fixture_inputs(policy, tokenizer, builder, prompts, FIXTURE_SEED + 100 * batch_size)
        with torch.no_grad():
            vl, obs = policy.vlm(inp["pixel_values"], inp["input_ids"], inp["attention_mask"])
        cases.append({
            "graph": "vlm",
            "batch": batch_size,
            # The text behind input_ids, so the TypeScript side can check its tokenizer produces the same ids.
            "prompts": list(prompts),
            "inputs": {k: encode_tensor(inp[k]) for k in ("pixel_values", "input_ids", "attention_mask")},
            "outputs": {"vl_embs": encode_tensor(vl), "obs_embedding": encode_tensor(obs)},
        })
        g = torch.Generator().manual_seed(FIXTURE_SEED + batch_size)
        d = cfg.denoiser
        actions = torch.randn((batch_size, d.action_horizon, d.action_dim), generator=g)
        future = torch.randn((batch_size, d.future_tokens, d.future_dim), generator=g)
        # Per-row flow times, including the exact grid points the sampler visits and off-grid values:
        # rows of one call may sit at different steps (docs/sampling.md).
        tau_a = torch.tensor([0.25, 0.0, 0.5, 0.75, 0.125, 0.9, 1.0 / 3.0][:batch_size], dtype=torch.float32)
        tau_o = torch.tensor([0.5, 0.0625, 0.0, 0.9375, 0.6, 0.3, 2.0 / 3.0][:batch_size], dtype=torch.float32)
        emb = inp["embodiment_id"] if batch_size > 1 else torch.tensor([1], dtype=torch.int64)
        state = inp["state"]
        with torch.no_grad():
            va, vo = policy.denoiser(vl, state, actions, future, tau_a, tau_o, emb)
        cases.append({
            "graph": "denoiser",
            "batch": batch_size,
            "inputs": {
                "vl_embs": encode_tensor(vl), "state": encode_tensor(state), "actions": encode_tensor(actions),
                "future": encode_tensor(future), "tau_a": encode_tensor(tau_a), "tau_o": encode_tensor(tau_o),
                "embodiment_id": encode_tensor(emb),
            },
            "outputs": {"v_actions": encode_tensor(va), "v_future": encode_tensor(vo)},
        })
    return cases


def golden_cases(policy: DustPolicy, tokenizer: WordTokenizer, builder: BatchBuilder) -> List[Dict[str, Any]]:
    cfg, d = policy.cfg, policy.cfg.denoiser
    cases = []
    for emb in sorted(cfg.embodiments, key=lambda e: e.id):
        ep = generate_episode(FIXTURE_SEED + 1000 + emb.id, emb.name, cfg.vlm.image_size)
        s = builder.sample(ep, 3)
        inp = {k: v.unsqueeze(0) for k, v in s.items()}
        with torch.no_grad():
            vl, _ = policy.vlm(inp["pixel_values"], inp["input_ids"], inp["attention_mask"])
        g = torch.Generator().manual_seed(FIXTURE_SEED + 2000 + emb.id)
        a0 = torch.randn((1, d.action_horizon, d.action_dim), generator=g)
        o0 = torch.randn((1, d.future_tokens, d.future_dim), generator=g)
        eid = torch.tensor([emb.id], dtype=torch.int64)
        f = denoiser_field(policy.denoiser, vl, inp["state"], eid)
        for n_a, n_o in GOLDEN_STEPS:
            a, o = joint_sample(f, a0, o0, n_a, n_o)
            cases.append({
                "embodiment_id": emb.id,
                "embodiment": emb.name,
                "prompt": ep.instruction,
                "action_steps": n_a,
                "vision_steps": n_o,
                "inputs": {"vl_embs": encode_tensor(vl), "state": encode_tensor(inp["state"]),
                           "actions0": encode_tensor(a0), "future0": encode_tensor(o0)},
                "outputs": {"actions": encode_tensor(a), "future": encode_tensor(o)},
            })
    return cases


def write_fixtures(policy: DustPolicy, tokenizer: WordTokenizer, builder: BatchBuilder, out_dir: Path,
                   version: int) -> Dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = policy.to("cpu").eval()
    parity = {"model": policy.cfg.name, "version": version, "cases": parity_cases(policy, tokenizer, builder)}
    golden = {"model": policy.cfg.name, "version": version, "cases": golden_cases(policy, tokenizer, builder)}
    paths = {"parity": out_dir / "parity.json", "golden": out_dir / "golden-sampling.json"}
    paths["parity"].write_text(json.dumps(parity) + "\n")
    paths["golden"].write_text(json.dumps(golden, indent=1) + "\n")
    return paths
