"""PyTorch modules of a DUST policy: the VLM stand-in (vlm.onnx) and the denoiser (denoiser.onnx)."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from .denoiser import DustDenoiser, randomize_zero_init
from .vlm import VLMStandIn


class DustPolicy(nn.Module):
    """Both graphs of a package, kept together so that one state dict / checkpoint holds the whole policy."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vlm = VLMStandIn(cfg.vlm)
        self.denoiser = DustDenoiser(cfg.denoiser)


__all__ = ["DustPolicy", "DustDenoiser", "VLMStandIn", "randomize_zero_init"]
