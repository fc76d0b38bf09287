"""A small VLM stand-in that honours the vlm.onnx contract (docs/model-package.md).

Structure (each part maps onto Eagle-2 / SigLIP-2, see README "Real backbones"):
- vision tower (SigLIP stand-in), shared by all views: patch embedding + 2D sinusoidal positions + encoder
  layers + post-LayerNorm -> [grid*grid, vision_width] tokens per view;
- pixel shuffle 2x2 + MLP projector into the language width (Eagle-2's `mlp1`), plus a learned per-camera
  embedding so the language layers know which view a token came from;
- text token embeddings + 1D sinusoidal positions; padded positions are masked out of attention and zeroed in
  the output;
- a few pre-LN transformer layers over [image tokens of every view ; text tokens] -> vl_embs [B, S, D_c]
  (paper: Eagle-2 layer-12 features).

obs_embedding is computed from the vision tower only (not the language layers), like the paper's world-model
target (SigLIP-2 tokens of the image, 2x2 average pooled, sec. 5): the main (first) camera's patch tokens are
2x2 average pooled, projected to d_o and layer-normalised (no affine). The same function applied to the future
frame o_{t+k} is the training target O (Algorithm 1 line "o_{t+k} <- VLM_img(o_{t+k})"), so the current
frame's obs_embedding lives in exactly the space the denoiser's vision stream generates. The normalisation
keeps the target at unit scale per token, matched to the N(0, I) noise of the flow.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..config import VLMConfig
from .conv_tower import ConvTower
from .layers import EncoderLayer, PlainLayerNorm, init_linears, sincos_1d, sincos_2d


class VisionTower(nn.Module):
    def __init__(self, cfg: VLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch = nn.Conv2d(3, cfg.vision_width, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.register_buffer("pos", torch.from_numpy(sincos_2d(cfg.grid, cfg.vision_width)), persistent=False)
        self.layers = nn.ModuleList(
            [EncoderLayer(cfg.vision_width, cfg.vision_heads, cfg.mlp_ratio, cfg.grid * cfg.grid)
             for _ in range(cfg.vision_layers)]
        )
        self.norm = nn.LayerNorm(cfg.vision_width, eps=1e-6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] -> [N, grid*grid, vision_width], row-major over the patch grid."""
        x = self.patch(images).flatten(2).transpose(1, 2) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def group_2x2(tokens: torch.Tensor, grid: int, pool: int, channels: int) -> torch.Tensor:
    """[N, grid*grid, C] -> [N, (grid/pool)^2, pool*pool, C]: each output cell's pool x pool neighbours."""
    g = grid // pool
    x = tokens.reshape(-1, g, pool, g, pool, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, g * g, pool * pool, channels)


class VLMStandIn(nn.Module):
    def __init__(self, cfg: VLMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w, cv = cfg.width, cfg.vision_width
        self.vision = ConvTower(cfg) if cfg.vision_tower == "conv" else VisionTower(cfg)
        merged = cv * cfg.pool * cfg.pool
        # Eagle-2 mlp1: LayerNorm -> Linear -> GELU -> Linear after the pixel shuffle.
        self.projector = nn.Sequential(
            nn.LayerNorm(merged, eps=1e-6), nn.Linear(merged, w), nn.GELU(approximate="tanh"), nn.Linear(w, w)
        )
        self.view_embed = nn.Parameter(torch.randn(len(cfg.cameras), w) * 0.02)
        # The ViT tower adds 2D positions to its patches; conv features carry none (translation-equivariant), and
        # the language layers are blind to token order, so the conv tower's merged tokens get theirs here.
        if cfg.vision_tower == "conv":
            pos = sincos_2d(cfg.grid // cfg.pool, w)
            self.register_buffer("image_pos", torch.from_numpy(pos), persistent=False)
        else:
            self.image_pos = None
        # Unit-variance word embeddings (nn.Embedding's default): the fixed sinusoidal positions added to them
        # have unit amplitude, and with a GPT-style 0.02 init the word identity would be a 2% perturbation of
        # the position code, which a briefly trained model never learns to read.
        self.text_embed = nn.Embedding(cfg.vocab_size, w)
        self.register_buffer("text_pos", torch.from_numpy(sincos_1d(cfg.max_tokens, w)), persistent=False)
        self.layers = nn.ModuleList(
            [EncoderLayer(w, cfg.heads, cfg.mlp_ratio, cfg.cond_tokens) for _ in range(cfg.layers)]
        )
        self.norm = nn.LayerNorm(w, eps=1e-6)
        self.obs_proj = nn.Linear(cv, cfg.future_dim) if cfg.obs_projection else nn.Identity()
        self.obs_norm = PlainLayerNorm(cfg.future_dim)
        init_linears(self)
        if cfg.freeze_vision:
            self.vision.requires_grad_(False)

    def obs_embedding_from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Vision-tower tokens of one view [N, grid^2, C_v] -> future-embedding space [N, T_o, d_o]."""
        pooled = group_2x2(tokens, self.cfg.grid, self.cfg.pool, self.cfg.vision_width).mean(dim=2)
        return self.obs_norm(self.obs_proj(pooled))

    def image_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """obs_embedding of single frames [N, 3, H, W]: the world-model target for a future frame."""
        return self.obs_embedding_from_tokens(self.vision(images))

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        # Static reshape targets (-1 for the batch) keep shape arithmetic out of the exported graph.
        tokens = self.vision(pixel_values.reshape(-1, 3, cfg.image_size, cfg.image_size))  # [B*V, g*g, C_v]
        return self.forward_from_tokens(tokens, input_ids, attention_mask)

    def forward_from_tokens(
        self, tokens: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The rest of `forward` after the vision tower: tokens [B*V, g*g, C_v] (or [B, V, g*g, C_v]), views in
        `cameras` order. Training on a frozen tower takes them from a cache of every frame (train.FrozenTokens)."""
        cfg = self.cfg
        v, n_img, cv = len(cfg.cameras), cfg.image_tokens_per_view, cfg.vision_width
        obs = self.obs_embedding_from_tokens(tokens.reshape(-1, v, cfg.grid * cfg.grid, cv)[:, 0])

        shuffled = group_2x2(tokens, cfg.grid, cfg.pool, cv).reshape(-1, n_img, cfg.pool * cfg.pool * cv)
        img = self.projector(shuffled).reshape(-1, v, n_img, cfg.width)
        if self.image_pos is not None:
            img = img + self.image_pos
        img = (img + self.view_embed.unsqueeze(1)).reshape(-1, v * n_img, cfg.width)
        txt = self.text_embed(input_ids) + self.text_pos
        x = torch.cat([img, txt], dim=1)

        # Padded text tokens are neither attended to nor returned: vl_embs has no mask of its own in the contract,
        # so zeroing them makes the output independent of what sits under the padding.
        text_mask = attention_mask.to(x.dtype)
        keep = torch.cat([torch.ones_like(img[:, :, 0]), text_mask], dim=1)  # [B, S]
        bias = ((1.0 - keep) * -1e9).unsqueeze(1).unsqueeze(1)  # [B, 1, 1, S]
        for layer in self.layers:
            x = layer(x, bias)
        vl_embs = self.norm(x) * keep.unsqueeze(-1)
        return vl_embs, obs
