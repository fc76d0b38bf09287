"""A convolutional vision tower with the ViT tower's output contract ([N, grid*grid, vision_width] tokens, row-major
over a grid of image_size / patch_size cells), so the rest of the VLM stand-in and the exported graph keep their
shapes.

Why a conv stem: on the push task the scene is a few coloured discs on a plain table, and what the policy needs is
where they are. Convolutions are translation-equivariant, so a feature map keeps every object at its own cell and
a spatial soft-argmax over it reads positions finer than the cell (vision.py's keypoint head); a one-layer ViT of
8 x 8 patches trained from scratch through the action loss alone never learned that (README, "Push task
perception").
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import VLMConfig

# Channels of the stages before the last (which has vision_width): small, the images are 64 px cartoons.
STEM_WIDTH = 32
GROUPS = 8


class ConvTower(nn.Module):
    def __init__(self, cfg: VLMConfig) -> None:
        super().__init__()
        stages = int(round(math.log2(cfg.patch_size)))
        if 2 ** stages != cfg.patch_size:
            raise ValueError("the conv tower downsamples by stride-2 stages: patch_size must be a power of two")
        self.cfg = cfg
        layers, width = [], 3
        for i in range(stages):
            out = cfg.vision_width if i == stages - 1 else STEM_WIDTH
            # GroupNorm keeps every stage at unit scale from the first step, whatever the image statistics.
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.GroupNorm(GROUPS, out), nn.ReLU(),
                       nn.Conv2d(out, out, 3, padding=1), nn.GroupNorm(GROUPS, out), nn.ReLU()]
            width = out
        self.convs = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(cfg.vision_width, eps=1e-6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] -> [N, grid*grid, vision_width]."""
        return self.norm(self.convs(images).flatten(2).transpose(1, 2))
