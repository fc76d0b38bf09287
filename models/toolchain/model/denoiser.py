"""The DUST denoiser: dual-stream MMDiT followed by per-modality DiT (paper sec. 4.1, Fig. 2, A.2, A.6).

Inputs and outputs are exactly those of denoiser.onnx (docs/model-package.md). One call is one evaluation of
f(A, O, tau_A, tau_o, cond) -> (v_A, v_O) in docs/sampling.md; each batch row carries its own flow times and
embodiment, so rows of different requests, at different steps, may share a call.

Token layout. Action stream: 1 state token (embodiment-specific MLP, GR00T) followed by k action tokens
(embodiment-specific linear encoder fed with the noisy chunk and the tau_A features, GR00T
`MultiEmbodimentActionEncoder`, plus 1D sinusoidal positions). Vision stream: T_o future tokens (3-layer SiLU
MLP + 2D sinusoidal positions, A.2).

Blocks. Every block keeps one weight set per stream (AdaLN-Zero modulation, attention projections, MLP), and
each stream is modulated by its OWN timestep embedding: the action stream by tau_A, the vision stream by tau_o
(A.2, Fig. 6: "AdaLN layers for each modality stream take the conditioning timestep embeddings from independent
sources"). With attention_pattern "alternate" (default), following GR00T's DiT with
`interleave_self_attention`, blocks alternate between attending to the VLM features (cross-attention, even global
index) and self-attention (odd index); with "self_cross" every block does both. In the MMDiT stack the
self-attention is joint over the concatenated streams - the only place where the modalities exchange
information; in the per-modality DiT stacks it covers one stream.

Decoders. Action: one linear per embodiment (GR00T's category-specific decoder, A.2 "linear encoder-decoder
pair"), applied to the action tokens only (the state token's output is dropped), producing all d_A padded
columns; the columns beyond an embodiment's action_dim are untrained (masked out of the loss) and the server
discards them. Vision: 2-layer MLP with ReLU (A.2).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import DenoiserConfig
from .layers import (
    CategorySpecificLinear,
    CategorySpecificMLP,
    Mlp,
    PlainLayerNorm,
    TimestepEmbedder,
    attention,
    cat_tokens,
    init_linears,
    sincos_1d,
    equal_split,
    sincos_2d,
    split_factor,
    timestep_features,
)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class StreamWeights(nn.Module):
    """The parameters one stream owns inside one block."""

    def __init__(self, cfg: DenoiserConfig, mode: str) -> None:
        super().__init__()
        d = cfg.hidden
        self.norm1 = PlainLayerNorm(d)
        self.norm2 = PlainLayerNorm(d)
        # AdaLN-Zero: shift/scale/gate for attention and MLP from this stream's timestep embedding.
        self.modulation = nn.Linear(cfg.timestep_dim, 6 * d)
        if mode == "cross":
            self.q = nn.Linear(d, d)
            self.kv = nn.Linear(cfg.cond_dim, 2 * d)
        else:
            self.qkv = nn.Linear(d, 3 * d)
        if mode == "self_cross":
            # PixArt-alpha's cross-attention sublayer: pre-norm, no timestep modulation, residual.
            self.cross_norm = nn.LayerNorm(d, eps=1e-6)
            self.cross_q = nn.Linear(d, d)
            self.kv = nn.Linear(cfg.cond_dim, 2 * d)
            self.cross_proj = nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.mlp = Mlp(d, cfg.mlp_ratio)


class DustBlock(nn.Module):
    """A block over one or more streams: MMDiT (two streams) or a per-modality DiT block (one stream).

    The AdaLN modulations (functions of the timestep embeddings only) and the cross-attention keys/values
    (functions of vl_embs only) are computed by the denoiser for all blocks at once (`hoisted_linear`) and
    passed in; the block owns the parameters, the denoiser only batches the matmuls.
    """

    def __init__(self, cfg: DenoiserConfig, lengths: Sequence[int], mode: str) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.dim = cfg.hidden
        self.mode = mode  # "cross", "self" or "self_cross"
        self.cross = mode in ("cross", "self_cross")  # reads vl_embs (keys/values are hoisted)
        self.lengths = [int(n) for n in lengths]  # tokens per stream (fixed per model)
        self.cond_tokens = cfg.cond_tokens
        self.streams = nn.ModuleList([StreamWeights(cfg, mode) for _ in lengths])

    def forward(
        self,
        xs: Sequence[torch.Tensor],
        mods: Sequence[Sequence[torch.Tensor]],
        kvs: Sequence[Tuple[torch.Tensor, torch.Tensor]],
    ) -> List[torch.Tensor]:
        """xs[s]: [B, T_s, D]; mods[s]: 6 x [B, 1, D] (shift, scale, gate for attention, then MLP);
        kvs[s]: keys and values [B, S, D] of the conditioning for this stream (cross blocks only)."""
        hs = [modulate(w.norm1(x), m[0], m[1]) for w, x, m in zip(self.streams, xs, mods)]
        if self.mode == "cross":
            attn_out = [
                attention(w.q(h), kv[0], kv[1], self.heads, n, self.cond_tokens, self.dim)
                for w, h, n, kv in zip(self.streams, hs, self.lengths, kvs)
            ]
        else:
            qkv = [equal_split(w.qkv(h), 3, self.dim) for w, h in zip(self.streams, hs)]
            if len(qkv) == 1:
                n = self.lengths[0]
                attn_out = [attention(qkv[0][0], qkv[0][1], qkv[0][2], self.heads, n, n, self.dim)]
            else:
                # Joint attention: every stream's queries attend to the keys and values of both streams,
                # concatenated along the tokens. One attention per stream's queries rather than one over
                # concatenated queries split afterwards: the same products, and no split of unequal pieces
                # (which ONNX Runtime's CUDA kernels stage in host memory: cat_tokens).
                k = cat_tokens([p[1] for p in qkv], self.lengths)
                v = cat_tokens([p[2] for p in qkv], self.lengths)
                total = sum(self.lengths)
                attn_out = [attention(p[0], k, v, self.heads, n, total, self.dim) for p, n in zip(qkv, self.lengths)]
        out = []
        for w, x, a, m, n, kv in zip(self.streams, xs, attn_out, mods, self.lengths, kvs):
            x = x + m[2] * w.proj(a)
            if self.mode == "self_cross":
                c = attention(w.cross_q(w.cross_norm(x)), kv[0], kv[1], self.heads, n, self.cond_tokens, self.dim)
                x = x + w.cross_proj(c)
            x = x + m[5] * w.mlp(modulate(w.norm2(x), m[3], m[4]))
            out.append(x)
        return out


def hoisted_linear(x: torch.Tensor, linears: Sequence[nn.Linear], parts: Sequence[int]) -> List[torch.Tensor]:
    """Apply several nn.Linear layers to the same input with one matmul over their concatenated weights, and
    split each layer's output into `parts[i]` equal pieces. Returns the pieces in order, flattened.

    Identical to splitting [l(x) for l in linears]; in the exported graph the weight concatenation is a Concat
    of initializers that ONNX Runtime folds at load time, leaving one GEMM and a few Splits instead of many small
    kernels (at batch 1 the tiny model's cost is mostly per-kernel overhead).
    """
    widths = {lin.out_features // p for lin, p in zip(linears, parts)}
    if len(widths) != 1 or any(lin.out_features % p for lin, p in zip(linears, parts)):
        raise ValueError("hoisted_linear needs pieces of one width")
    width = widths.pop()
    n = sum(parts)
    # Every piece has one width, so the output splits as n equal pieces. When n has a prime factor above
    # MAX_SPLIT_OUTPUTS the weights get zero rows up to the next count that factors (those pieces go unused).
    padded = n
    while split_factor(padded) is None:
        padded += 1
    weights = [lin.weight for lin in linears]
    biases = [lin.bias for lin in linears]
    if padded > n:
        weights.append(weights[0].new_zeros((padded - n) * width, linears[0].in_features))
        biases.append(biases[0].new_zeros((padded - n) * width))
    y = F.linear(x, torch.cat(weights, dim=0), torch.cat(biases, dim=0))
    if y.dim() == 2:
        y = y.unsqueeze(1)  # timestep embeddings [B, n] -> [B, 1, n], broadcast over tokens
    return equal_split(y, padded, width)[:n]


class FinalLayer(nn.Module):
    """DiT's final AdaLN (shift, scale from the stream's timestep) before the decoder."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.norm = PlainLayerNorm(cfg.hidden)
        self.modulation = nn.Linear(cfg.timestep_dim, 2 * cfg.hidden)

    def forward(self, x: torch.Tensor, mod: Sequence[torch.Tensor]) -> torch.Tensor:
        return modulate(self.norm(x), mod[0], mod[1])


class ActionEncoder(nn.Module):
    """GR00T `MultiEmbodimentActionEncoder`: W3(swish(W2([W1(a), phi(tau_A)]))), all embodiment-specific."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        e, d = cfg.num_embodiments, cfg.hidden
        self.w1 = CategorySpecificLinear(e, cfg.action_dim, d)
        self.w2 = CategorySpecificLinear(e, 2 * d, d)
        self.w3 = CategorySpecificLinear(e, d, d)
        half = d // 2
        freqs = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half).astype(np.float32)
        self.register_buffer("freqs", torch.from_numpy(freqs), persistent=False)
        self.scale = cfg.timestep_scale
        self.horizon = cfg.action_horizon

    def forward(self, actions: torch.Tensor, tau: torch.Tensor, embodiment: torch.Tensor) -> torch.Tensor:
        """tau: [B] (one flow time for the chunk) or [B, k] (one per position, prefix conditioning)."""
        a = self.w1(actions, embodiment)
        if tau.dim() == 2:
            # Sizes as Python ints (the batch as -1): a traced tau.shape[0] exports as Shape -> Gather.
            t = timestep_features(tau.reshape(-1), self.freqs, self.scale).reshape(-1, self.horizon, 2 * self.freqs.numel())
        else:
            t = timestep_features(tau, self.freqs, self.scale).unsqueeze(1).expand(-1, self.horizon, -1)
        return self.w3(F.silu(self.w2(torch.cat([a, t], dim=-1), embodiment)), embodiment)


class VisionEncoder(nn.Module):
    """3-layer MLP with SiLU (A.2); 2D sinusoidal positions are added by the denoiser."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.fc1 = nn.Linear(cfg.future_dim, d)
        self.fc2 = nn.Linear(d, d)
        self.fc3 = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.silu(self.fc2(F.silu(self.fc1(x)))))


class VisionDecoder(nn.Module):
    """2-layer MLP with ReLU (A.2)."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, cfg.future_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class DustDenoiser(nn.Module):
    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden
        # GR00T normalises the VLM features once before its DiT ("vlln").
        self.cond_norm = nn.LayerNorm(cfg.cond_dim, eps=1e-6)
        self.time_action = TimestepEmbedder(cfg.timestep_freq_dim, cfg.timestep_dim, cfg.timestep_scale)
        self.state_encoder = CategorySpecificMLP(cfg.num_embodiments, cfg.state_dim, d, d)
        self.action_encoder = ActionEncoder(cfg)
        self.register_buffer("action_pos", torch.from_numpy(sincos_1d(cfg.action_horizon, d)), persistent=False)
        n_a, n_o = cfg.state_tokens + cfg.action_horizon, cfg.future_tokens
        # An action-only policy (future_stream False) has no vision-stream modules at all: its MMDiT stack is a
        # stack of single-stream blocks over the action tokens, which with the action DiT blocks is GR00T-N1's DiT.
        streams = [n_a, n_o] if cfg.future_stream else [n_a]
        if cfg.future_stream:
            self.time_vision = TimestepEmbedder(cfg.timestep_freq_dim, cfg.timestep_dim, cfg.timestep_scale)
            self.vision_encoder = VisionEncoder(cfg)
            side = int(round(cfg.future_tokens ** 0.5))
            self.register_buffer("vision_pos", torch.from_numpy(sincos_2d(side, d)), persistent=False)

        def mode(index: int) -> str:
            if cfg.attention_pattern == "self_cross":
                return "self_cross"
            return "cross" if index % 2 == 0 else "self"

        self.mmdit = nn.ModuleList([DustBlock(cfg, streams, mode(i)) for i in range(cfg.mmdit_layers)])
        # The interleave continues through the DiT stacks (global block index).
        self.dit_action = nn.ModuleList([DustBlock(cfg, [n_a], mode(cfg.mmdit_layers + i)) for i in range(cfg.dit_layers)])
        self.dit_vision = nn.ModuleList(
            [DustBlock(cfg, [n_o], mode(cfg.mmdit_layers + i)) for i in range(cfg.dit_layers)] if cfg.future_stream else []
        )
        self.final_action = FinalLayer(cfg)
        self.action_decoder = CategorySpecificLinear(cfg.num_embodiments, d, cfg.action_dim)
        if cfg.future_stream:
            self.final_vision = FinalLayer(cfg)
            self.vision_decoder = VisionDecoder(cfg)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_linears(self)
        # AdaLN-Zero (DiT): every block starts as the identity, and the velocity heads start at zero.
        for blk in list(self.mmdit) + list(self.dit_action) + list(self.dit_vision):
            for w in blk.streams:
                nn.init.zeros_(w.modulation.weight)
                nn.init.zeros_(w.modulation.bias)
                if blk.mode == "self_cross":  # PixArt-alpha zero-initialises the cross-attention output
                    nn.init.zeros_(w.cross_proj.weight)
                    nn.init.zeros_(w.cross_proj.bias)
        for fl in [self.final_action] + ([self.final_vision] if self.cfg.future_stream else []):
            nn.init.zeros_(fl.modulation.weight)
            nn.init.zeros_(fl.modulation.bias)
        nn.init.zeros_(self.action_decoder.weight)
        if self.cfg.future_stream:
            nn.init.zeros_(self.vision_decoder.fc2.weight)
        # The timestep MLPs keep the Xavier init: DiT's normal(0.02) is sized for widths >= 1152 and would make
        # the tiny model's timestep embeddings (and so every modulation's dependence on tau) nearly vanish.

    def _blocks(self) -> List[DustBlock]:
        return list(self.mmdit) + list(self.dit_action) + list(self.dit_vision)

    @staticmethod
    def _modulations(temb: torch.Tensor, streams: Sequence[StreamWeights], final: FinalLayer) -> List[List[torch.Tensor]]:
        """Per block, the 6 AdaLN-Zero vectors [B, 1, D] of one modality; last entry: the final layer's 2."""
        flat = hoisted_linear(temb, [w.modulation for w in streams] + [final.modulation], [6] * len(streams) + [2])
        return [flat[6 * i : 6 * i + 6] for i in range(len(streams))] + [flat[-2:]]

    def _cross_streams(self) -> List[StreamWeights]:
        return [w for blk in self._blocks() if blk.cross for w in blk.streams]

    def conditioning_kv(self, vl_embs: torch.Tensor) -> List[torch.Tensor]:
        """Keys and values of every cross-attention stream, [B, S, D] each, in `_cross_streams` order (k, v).

        They depend on vl_embs alone, so they are the same in every denoiser step of a request: a runtime that
        can keep tensors on the device between calls can compute them once per request (`forward_with_kv`).
        """
        cross = self._cross_streams()
        return hoisted_linear(self.cond_norm(vl_embs), [w.kv for w in cross], [2] * len(cross)) if cross else []

    def forward(
        self,
        vl_embs: torch.Tensor,
        state: torch.Tensor,
        actions: torch.Tensor,
        future: torch.Tensor,
        tau_a: torch.Tensor,
        tau_o: torch.Tensor,
        embodiment_id: torch.Tensor,
        action_times: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(v_actions, v_future); an action-only policy reads neither `future` nor `tau_o` and returns v_future None."""
        return self.forward_with_kv(self.conditioning_kv(vl_embs), state, actions, future, tau_a, tau_o, embodiment_id, action_times)

    def forward_with_kv(
        self,
        kv_flat: Sequence[torch.Tensor],
        state: torch.Tensor,
        actions: torch.Tensor,
        future: torch.Tensor,
        tau_a: torch.Tensor,
        tau_o: torch.Tensor,
        embodiment_id: torch.Tensor,
        action_times: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """action_times: [B, k], the flow time of each action position (prefix conditioning; committed positions at
        1); None = tau_a at every position, which is all a model without prefix conditioning ever reads."""
        temb_a = F.silu(self.time_action(tau_a))
        state_tok = self.state_encoder(state.unsqueeze(1), embodiment_id)
        position_times = tau_a if action_times is None or not self.cfg.prefix_conditioning else action_times
        action_tok = self.action_encoder(actions, position_times, embodiment_id) + self.action_pos
        xa = cat_tokens([state_tok, action_tok], [self.cfg.state_tokens, self.cfg.action_horizon])
        if not self.cfg.future_stream:
            return self._actions_only(kv_flat, xa, temb_a, embodiment_id), None
        temb_o = F.silu(self.time_vision(tau_o))
        xo = self.vision_encoder(future) + self.vision_pos

        # Each modality's stream weights, in block order: the action stream of every MMDiT block then the
        # action DiT blocks, and likewise for vision. Their AdaLN modulations (and the final layer's) all read
        # the same timestep embedding, so they are computed together; so are all cross-attention keys/values.
        a_streams = [blk.streams[0] for blk in self.mmdit] + [blk.streams[0] for blk in self.dit_action]
        o_streams = [blk.streams[1] for blk in self.mmdit] + [blk.streams[0] for blk in self.dit_vision]
        mod_a = self._modulations(temb_a, a_streams, self.final_action)
        mod_o = self._modulations(temb_o, o_streams, self.final_vision)
        kv = self._kv_by_stream(kv_flat)

        d = len(self.mmdit)
        for i, blk in enumerate(self.mmdit):
            xa, xo = blk([xa, xo], [mod_a[i], mod_o[i]], [kv.get(id(w)) for w in blk.streams])
        for i, blk in enumerate(self.dit_action):
            xa = blk([xa], [mod_a[d + i]], [kv.get(id(blk.streams[0]))])[0]
        for i, blk in enumerate(self.dit_vision):
            xo = blk([xo], [mod_o[d + i]], [kv.get(id(blk.streams[0]))])[0]

        v_actions = self._decode_actions(xa, mod_a[-1], embodiment_id)
        v_future = self.vision_decoder(self.final_vision(xo, mod_o[-1]))
        return v_actions, v_future

    def _actions_only(self, kv_flat: Sequence[torch.Tensor], xa: torch.Tensor, temb_a: torch.Tensor,
                      embodiment_id: torch.Tensor) -> torch.Tensor:
        """The action stream through every block (MMDiT blocks hold it alone), for a policy with no future stream."""
        blocks = list(self.mmdit) + list(self.dit_action)
        mod_a = self._modulations(temb_a, [blk.streams[0] for blk in blocks], self.final_action)
        kv = self._kv_by_stream(kv_flat)
        for i, blk in enumerate(blocks):
            xa = blk([xa], [mod_a[i]], [kv.get(id(blk.streams[0]))])[0]
        return self._decode_actions(xa, mod_a[-1], embodiment_id)

    def _kv_by_stream(self, kv_flat: Sequence[torch.Tensor]) -> dict:
        """conditioning_kv's flat list as {id(stream weights): (keys, values)}, for the cross-attention streams."""
        return {id(w): (kv_flat[2 * i], kv_flat[2 * i + 1]) for i, w in enumerate(self._cross_streams())}

    def _decode_actions(self, xa: torch.Tensor, final_mod: Sequence[torch.Tensor], embodiment_id: torch.Tensor) -> torch.Tensor:
        """The action stream's final AdaLN and per-embodiment decoder, on the action tokens (the state token dropped)."""
        return self.action_decoder(self.final_action(xa[:, self.cfg.state_tokens :], final_mod), embodiment_id)


def randomize_zero_init(module: nn.Module, std: float, generator: torch.Generator) -> None:
    """Replace the AdaLN-Zero / zero-head initialisation with small noise.

    A freshly initialised DUST is the identity through every block and outputs exactly zero velocities; a
    random-weight export for benchmarks (export-paper) should instead exercise every weight and produce finite,
    input-dependent outputs.
    """
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim >= 2 and torch.count_nonzero(p) == 0:
                p.copy_(torch.randn(p.shape, generator=generator) * std)
