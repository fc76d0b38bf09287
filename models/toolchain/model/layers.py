"""Building blocks shared by the denoiser and the VLM stand-in.

Everything here must trace to ONNX opset 17 with a dynamic batch axis on torch 1.13 and 2.x alike, so the code
avoids `scaled_dot_product_attention` (2.x only) and data-dependent Python control flow.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def sincos_1d(length: int, dim: int) -> np.ndarray:
    """Transformer sinusoidal positions [length, dim] (sin on the first half, cos on the second)."""
    half = dim // 2
    omega = 1.0 / (10000.0 ** (np.arange(half, dtype=np.float64) / half))
    angles = np.arange(length, dtype=np.float64)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


def sincos_2d(side: int, dim: int) -> np.ndarray:
    """2D sinusoidal positions for a side x side grid, row-major [side*side, dim] (MAE/DiT convention:
    half the channels encode the row, half the column)."""
    rows = np.repeat(np.arange(side), side)
    cols = np.tile(np.arange(side), side)
    half = dim // 2
    table = sincos_1d(side, half)
    return np.concatenate([table[rows], table[cols]], axis=1).astype(np.float32)


class PlainLayerNorm(nn.Module):
    """LayerNorm without learned affine, as AdaLN needs (the affine comes from the timestep).

    torch 1.13 exports `LayerNorm(elementwise_affine=False)` at opset 17 as a LayerNormalization node with an
    empty scale input, which the ONNX checker rejects; passing constant ones/zeros sidesteps that bug and the
    constants fold into the graph (they are not parameters, so they never appear in a state dict).
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("one", torch.ones(dim), persistent=False)
        self.register_buffer("zero", torch.zeros(dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.one.shape, self.one, self.zero, self.eps)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of the flow time followed by a 2-layer MLP (GR00T TimestepEncoder / DiT).

    GR00T multiplies the flow time by 1000 (and floors it to an integer bucket) before the sinusoid. We keep the
    scaled time continuous: flooring makes ONNX Runtime and PyTorch disagree wherever tau * 1000 rounds to just
    below an integer in one of them (tau = i / N_o lands exactly on such points), which would break the
    1e-5 golden-sampling contract (docs/sampling.md "Noise and seeds").
    """

    def __init__(self, freq_dim: int, dim: int, scale: float) -> None:
        super().__init__()
        half = freq_dim // 2
        freqs = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half).astype(np.float32)
        self.register_buffer("freqs", torch.from_numpy(freqs), persistent=False)
        self.scale = scale
        self.fc1 = nn.Linear(freq_dim, dim)
        self.fc2 = nn.Linear(dim, dim)

    def features(self, tau: torch.Tensor) -> torch.Tensor:
        return timestep_features(tau, self.freqs, self.scale)

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(self.features(tau))))


def timestep_features(tau: torch.Tensor, freqs: torch.Tensor, scale: float) -> torch.Tensor:
    """[B] flow times -> [B, 2 * len(freqs)] as [cos | sin] (diffusers' flip_sin_to_cos=True, GR00T)."""
    args = (tau * scale).unsqueeze(-1) * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class CategorySpecificLinear(nn.Module):
    """A linear layer with one weight matrix per embodiment (GR00T `CategorySpecificLinear`).

    The weights are stacked [E, in, out] and selected by a gather on the embodiment id, then applied with a
    batched matmul: every batch row can belong to a different robot, which is what lets the server batch
    requests of several embodiments into one denoiser call, and it exports as Gather + MatMul with a
    dynamic batch axis.
    """

    def __init__(self, num_categories: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        # Xavier-normal scale per embodiment. GR00T draws these with std 0.02, which at its width (1536 inputs)
        # is about the same scale; at the tiny model's 32-128 inputs it would shrink the encoded state and noisy
        # actions to ~1% of the positional codes they are added to, and brief training never recovers.
        std = (2.0 / (in_dim + out_dim)) ** 0.5
        self.weight = nn.Parameter(torch.randn(num_categories, in_dim, out_dim) * std)
        self.bias = nn.Parameter(torch.zeros(num_categories, out_dim))

    def forward(self, x: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        # x [B, T, in], category [B] int64
        w = self.weight[category]  # [B, in, out]
        b = self.bias[category].unsqueeze(1)  # [B, 1, out]
        return torch.matmul(x, w) + b


class CategorySpecificMLP(nn.Module):
    """Two category-specific linears with ReLU (GR00T's state encoder)."""

    def __init__(self, num_categories: int, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.layer1 = CategorySpecificLinear(num_categories, in_dim, hidden)
        self.layer2 = CategorySpecificLinear(num_categories, hidden, out_dim)

    def forward(self, x: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        return self.layer2(F.relu(self.layer1(x, category)), category)


class Mlp(nn.Module):
    """Transformer feed-forward with GELU.

    DiT and GR00T use the tanh approximation; the exact (erf) form is used here because ONNX Runtime fuses the
    exported erf pattern into a single Gelu kernel and leaves the tanh pattern as ~9 element-wise nodes, which
    at batch 1 costs more than the matrix products of the tiny model. The two differ by < 1e-3.
    """

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        inner = int(dim * ratio)
        self.fc1 = nn.Linear(dim, inner)
        self.fc2 = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


# At most this many outputs per Split: ONNX Runtime's WebGPU provider binds one storage buffer per Split output and a
# shader stage has at most 16, so one 20-way Split fails there ("Too many storage buffers in shader").
MAX_SPLIT_OUTPUTS = 8


def split_factor(n: int) -> Optional[int]:
    """How many groups to split n equal pieces into first: n itself when it fits one Split, else its largest divisor
    in 2..MAX_SPLIT_OUTPUTS (None: n has a prime factor above that)."""
    if n <= MAX_SPLIT_OUTPUTS:
        return n
    for g in range(MAX_SPLIT_OUTPUTS, 1, -1):
        if n % g == 0 and split_factor(n // g) is not None:
            return g
    return None


def equal_split(y: torch.Tensor, n: int, width: int) -> List[torch.Tensor]:
    """The last axis of y (n * width) as n pieces of `width`, through a tree of Splits of equal pieces with at most
    MAX_SPLIT_OUTPUTS outputs each (one Split when n fits; chunk() would export one Slice per piece). Equal pieces
    only: ONNX Runtime's CUDA Split stages unequal pieces' sizes in host memory that a captured CUDA graph would
    re-read stale (cat_tokens), and Slices that cover an axis are fused back into such a Split when the session
    loads. Sizes are Python ints, never read from a traced tensor's shape: a traced size exports as Shape -> Gather
    -> Div chains (about 550 of the paper denoiser's 1675 nodes after ONNX Runtime's optimizations), where constant
    sizes export as Splits."""
    g = split_factor(n)
    if g is None:
        raise ValueError(f"{n} pieces do not split into groups of at most {MAX_SPLIT_OUTPUTS}")
    groups = list(torch.split(y, [width * (n // g)] * g, dim=-1))
    if g == n:
        return groups
    return [piece for group in groups for piece in equal_split(group, n // g, width)]


def cat_tokens(xs: Sequence[torch.Tensor], lengths: Sequence[int]) -> torch.Tensor:
    """torch.cat(xs, dim=1) of [B, T_i, D] tensors, T_i = lengths[i] given as Python ints.

    Unequal lengths are zero-padded to the total and summed instead: exact (only zeros are added), and the
    exported graph then holds no Concat of unequal inputs. ONNX Runtime's CUDA Concat passes equal inputs' pointers
    by value, but stages unequal inputs' pointers and sizes in pinned host memory that it hands back to a pool
    when the run ends; a captured CUDA graph re-reads that host address on every replay, so after any other run
    has reused the block a replay copies foreign bytes into the kernel's pointer table (wrong outputs or an
    illegal memory access: README.md, "Graphs a CUDA graph can replay").
    """
    lengths = [int(n) for n in lengths]
    if len(set(lengths)) == 1:
        return torch.cat(list(xs), dim=1)
    total = sum(lengths)
    out = None
    start = 0
    for x, n in zip(xs, lengths):
        padded = F.pad(x, (0, 0, start, total - start - n))
        out = padded if out is None else out + padded
        start += n
    return out


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    tq: int,
    tk: int,
    dim: int,
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Multi-head softmax attention on [B, T, D] tensors; `bias` is added to the logits (masking).

    Token counts are passed as Python ints: every axis but the batch is fixed per model (docs/model-package.md), and
    static reshape targets (-1 for the batch) keep the exported graph free of Shape/Gather/Concat chains, which
    dominate the cost of a batch-1 call in ONNX Runtime.
    """
    hd = dim // heads
    qh = q.reshape(-1, tq, heads, hd).transpose(1, 2)  # [B, H, Tq, hd]
    kt = k.reshape(-1, tk, heads, hd).permute(0, 2, 3, 1)  # [B, H, hd, Tk]
    vh = v.reshape(-1, tk, heads, hd).transpose(1, 2)  # [B, H, Tk, hd]
    logits = torch.matmul(qh, kt) * (1.0 / math.sqrt(hd))
    if bias is not None:
        logits = logits + bias
    out = torch.matmul(torch.softmax(logits, dim=-1), vh)  # [B, H, Tq, hd]
    return out.transpose(1, 2).reshape(-1, tq, heads * hd)


class EncoderLayer(nn.Module):
    """Pre-LN transformer encoder layer over a fixed number of tokens (VLM stand-in)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, tokens: int) -> None:
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.tokens = tokens
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        q, k, v = equal_split(self.qkv(self.norm1(x)), 3, self.dim)
        x = x + self.proj(attention(q, k, v, self.heads, self.tokens, self.tokens, self.dim, bias))
        return x + self.mlp(self.norm2(x))


def init_linears(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every nn.Linear (DiT's initialisation)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
