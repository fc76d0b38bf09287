"""Model and training configuration, and the two presets (`tiny`, `paper`).

Every size of both graphs lives here, so a preset is data, not code. The manifest records these configs under
`architecture` so that a package can be turned back into PyTorch modules (golden vectors, round-trip tests).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Tuple


@dataclass(frozen=True)
class EmbodimentConfig:
    """One robot: its denoiser row id and its real (unpadded) widths."""

    name: str
    id: int
    state_dim: int
    action_dim: int


@dataclass(frozen=True)
class DenoiserConfig:
    """The DUST diffusion module (paper sec. 4.1, Fig. 2, A.2)."""

    hidden: int = 128
    heads: int = 4
    # Paper: 12 MMDiT blocks, then 4 DiT blocks per modality.
    mmdit_layers: int = 2
    dit_layers: int = 1
    mlp_ratio: float = 4.0
    # Width of each modality's timestep embedding (the AdaLN conditioning vector). DiT uses `hidden`; the
    # tiny preset uses less because the AdaLN-Zero projections (6 x hidden outputs per stream and block)
    # otherwise dominate its parameter count.
    timestep_dim: int = 128
    # Sinusoidal feature channels of tau * timestep_scale (GR00T's TimestepEncoder uses 256 channels).
    timestep_freq_dim: int = 256
    # GR00T feeds the flow time scaled to [0, 1000] into its sinusoidal features.
    timestep_scale: float = 1000.0
    # How blocks reach the VLM features (vl_embs):
    # - "alternate": GR00T's DiT interleave (paper sec. 5, "alternating self-attention and cross-attention
    #   layers"): blocks at even global index cross-attend to vl_embs, odd ones self-attend (joint attention
    #   over both streams inside the MMDiT stack);
    # - "self_cross": every block self-attends (jointly in the MMDiT stack) and then cross-attends (PixArt-alpha
    #   style). With only 3 blocks per stream, "alternate" leaves each stream a single self-attention layer.
    attention_pattern: str = "alternate"
    action_horizon: int = 16  # k
    action_dim: int = 32  # d_A, padded (GR00T max_action_dim)
    state_dim: int = 64  # d_s, padded (GR00T max_state_dim)
    state_tokens: int = 1  # paper: 1 state token joins the action stream
    future_tokens: int = 16  # T_o
    future_dim: int = 32  # d_o
    cond_dim: int = 128  # D_c of vl_embs
    num_embodiments: int = 2
    # Unused by the math; recorded so that the manifest states every shape the graph uses.
    cond_tokens: int = 48
    # Training-time prefix conditioning for real-time chunking (docs/sampling.md, "Real-time chunking"): the
    # action encoder reads a flow time per action position (denoiser input `action_times`, [B, k]) instead of
    # tau_A broadcast, so that committed actions can be given clean (time 1) beside noisy free positions. The
    # AdaLN modulations keep tau_A, the free positions' time.
    prefix_conditioning: bool = False
    # False: an action-only flow policy, GR00T-N1's design that the DUST paper compares against: every block carries
    # the action stream alone (the MMDiT stack becomes plain DiT blocks), there is no future-observation stream, no
    # world-model loss, and the package's graphs have no future inputs or outputs (docs/model-package.md,
    # "Action-only packages"). future_tokens/future_dim still describe the VLM's image embedding.
    future_stream: bool = True

    def __post_init__(self) -> None:
        if self.attention_pattern not in ("alternate", "self_cross"):
            raise ValueError("attention_pattern must be 'alternate' or 'self_cross'")
        if self.state_tokens != 1:
            raise ValueError("the state encoder produces exactly one state token (paper sec. 5)")
        if self.hidden % self.heads != 0:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        side = int(round(self.future_tokens ** 0.5))
        if side * side != self.future_tokens:
            raise ValueError("future_tokens must be a square: the vision tokens carry 2D sinusoidal positions")
        if self.timestep_freq_dim % 2 or self.hidden % 4:
            raise ValueError("sinusoidal widths must be even (hidden a multiple of 4 for 2D positions)")


@dataclass(frozen=True)
class VLMConfig:
    """The small VLM stand-in honouring the vlm.onnx contract (docs/model-package.md).

    Layout mirrors Eagle-2: a SigLIP-like vision tower per view, 2x2 pixel-shuffle + MLP projector into the
    language width, text embeddings, a few transformer layers over [image tokens; text tokens].
    """

    image_size: int = 64
    patch_size: int = 8
    cameras: Tuple[str, ...] = ("front", "wrist")
    vision_width: int = 64
    vision_layers: int = 1
    vision_heads: int = 4
    # 2x2 average pooling of the main camera's patch tokens gives the future-embedding tokens (paper sec. 5:
    # 256 SigLIP-2 tokens -> 64 by 2x2 average pooling); the same factor is used by the pixel shuffle.
    pool: int = 2
    width: int = 128  # D_c
    layers: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    max_tokens: int = 16  # L
    vocab_size: int = 64
    future_dim: int = 32  # d_o
    # "vit": patch embedding + encoder layers (SigLIP stand-in); "conv": model/conv_tower.py, same token shapes.
    vision_tower: str = "vit"
    # A trainable linear map of the pooled vision tokens to d_o before the target's normalisation. Off for a
    # frozen pretrained tower (the paper takes SigLIP-2's tokens as they are): d_o is then vision_width, and no
    # parameter sits in the target path that no loss reaches.
    obs_projection: bool = True
    # The vision tower takes no gradient (train.py): a pretrained encoder (vision.py), frozen as the paper
    # freezes its VLM, so the world-model target is a fixed function of the future frame.
    freeze_vision: bool = False

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def image_tokens_per_view(self) -> int:
        return (self.grid // self.pool) ** 2

    @property
    def future_tokens(self) -> int:
        return (self.grid // self.pool) ** 2

    @property
    def cond_tokens(self) -> int:
        return len(self.cameras) * self.image_tokens_per_view + self.max_tokens

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size or self.grid % self.pool:
            raise ValueError("image_size must be a multiple of patch_size * pool")
        if self.vision_tower not in ("vit", "conv"):
            raise ValueError("vision_tower must be 'vit' or 'conv'")
        if not self.obs_projection and self.future_dim != self.vision_width:
            raise ValueError("without obs_projection the world-model tokens are the vision tokens: future_dim must "
                             "equal vision_width")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    vlm: VLMConfig
    denoiser: DenoiserConfig
    embodiments: Tuple[EmbodimentConfig, ...]
    image_mean: Tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: Tuple[float, float, float] = (0.5, 0.5, 0.5)
    prompt_template: str = "{instruction}"
    # Default step counts written to the manifest (paper sec. 4.3: N_A = N_o = 4).
    action_steps: int = 4
    vision_steps: int = 4
    max_vision_steps: int = 64

    def __post_init__(self) -> None:
        v, d = self.vlm, self.denoiser
        if v.width != d.cond_dim or v.cond_tokens != d.cond_tokens:
            raise ValueError("VLM output (vl_embs) and denoiser conditioning disagree")
        if v.future_tokens != d.future_tokens or v.future_dim != d.future_dim:
            raise ValueError("obs_embedding and the denoiser's future tokens disagree")
        if len(self.embodiments) != d.num_embodiments:
            raise ValueError("num_embodiments does not match the embodiment list")
        if sorted(e.id for e in self.embodiments) != list(range(len(self.embodiments))):
            raise ValueError("embodiment ids must be 0..E-1")
        for e in self.embodiments:
            if e.state_dim > d.state_dim or e.action_dim > d.action_dim:
                raise ValueError(f"embodiment {e.name} does not fit the padded state/action widths")

    def embodiment(self, name: str) -> EmbodimentConfig:
        for e in self.embodiments:
            if e.name == name:
                return e
        raise KeyError(name)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "ModelConfig":
        vlm = dict(d["vlm"])
        vlm["cameras"] = tuple(vlm["cameras"])
        return ModelConfig(
            name=d["name"],
            vlm=VLMConfig(**vlm),
            denoiser=DenoiserConfig(**d["denoiser"]),
            embodiments=tuple(EmbodimentConfig(**e) for e in d["embodiments"]),
            image_mean=tuple(d["image_mean"]),
            image_std=tuple(d["image_std"]),
            prompt_template=d["prompt_template"],
            action_steps=d["action_steps"],
            vision_steps=d["vision_steps"],
            max_vision_steps=d["max_vision_steps"],
        )

    def with_vocab(self, vocab_size: int) -> "ModelConfig":
        return dataclasses.replace(self, vlm=dataclasses.replace(self.vlm, vocab_size=vocab_size))


@dataclass(frozen=True)
class TrainConfig:
    """Training options (docs/sampling.md "Flow matching"; paper A.2)."""

    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-4
    betas: Tuple[float, float] = (0.95, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    lambda_wm: float = 1.0
    tau_distribution: str = "beta"  # "beta" (GR00T: Beta(1.5,1), s=0.999) or "uniform" (Algorithm 1)
    beta_alpha: float = 1.5
    beta_beta: float = 1.0
    beta_s: float = 0.999
    mode: str = "joint"  # "joint" or "video_only" (action-free pretraining, docs/sampling.md)
    seed: int = 0
    log_every: int = 50
    # Batches built ahead in this many forked processes (0: in the training loop). Per-sample Python keeps a GPU
    # waiting otherwise (models/toolchain/README.md has the push task's steps/s with and without workers). Workers draw the batches' samples
    # from their own generator, so a run with workers is reproducible but differs from one without.
    loader_workers: int = 0
    # Prefix conditioning (a denoiser with prefix_conditioning): the share of rows trained with a committed prefix,
    # and its largest length d (uniform over 1..prefix_max_delay); the other rows see no prefix, as a request
    # without one. Committed positions are given clean at flow time 1 and carry no loss.
    prefix_fraction: float = 0.5
    prefix_max_delay: int = 8
    # Run a frozen vision tower once over every training frame before training and hold its tokens and every
    # window's other tensors on the training device (train.FrozenTokens), so a batch is a gather there instead of
    # per-sample Python and the tower on 3 x batch frames: the same function, 1.46x the steps/s on the push task
    # here (README). Off keeps the order of float operations every shipped package was trained with.
    frozen_token_cache: bool = False

    def __post_init__(self) -> None:
        if self.loader_workers < 0:
            raise ValueError("loader_workers must be >= 0")
        if self.frozen_token_cache and self.loader_workers:
            raise ValueError("frozen_token_cache builds every batch as a gather on the training device: no loader workers")
        if not 0.0 <= self.prefix_fraction <= 1.0 or self.prefix_max_delay < 1:
            raise ValueError("prefix_fraction must be in [0, 1] and prefix_max_delay >= 1")
        if self.tau_distribution not in ("beta", "uniform"):
            raise ValueError("tau_distribution must be 'beta' or 'uniform'")
        if self.mode not in ("joint", "video_only"):
            raise ValueError("mode must be 'joint' or 'video_only'")

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "TrainConfig":
        """The options a checkpoint records (dataclasses.asdict: betas as a list)."""
        return TrainConfig(**{**d, "betas": tuple(d["betas"])})

    def tau_distribution_label(self) -> str:
        if self.tau_distribution == "beta":
            return f"beta({self.beta_alpha},{self.beta_beta}),s={self.beta_s}"
        return "uniform(0,1)"


TINY_EMBODIMENTS = (
    # Franka: 7 joints + gripper width in the state; 7 joint targets + gripper command in the action.
    EmbodimentConfig(name="franka_fr3", id=0, state_dim=8, action_dim=8),
    # SO-100: 5 joints + jaw; 6 targets.
    EmbodimentConfig(name="so100_arm", id=1, state_dim=6, action_dim=6),
)


def tiny_config(vocab_size: int = 64) -> ModelConfig:
    """The shipped reference model: small enough to run a denoiser call in about a millisecond on one core."""
    return ModelConfig(
        name="dust-tiny",
        vlm=VLMConfig(vocab_size=vocab_size),
        denoiser=DenoiserConfig(
            hidden=128,
            heads=4,
            mmdit_layers=2,
            dit_layers=1,
            mlp_ratio=2.0,
            timestep_dim=64,
            timestep_freq_dim=64,
        ),
        embodiments=TINY_EMBODIMENTS,
    )


def paper_config(vocab_size: int = 64) -> ModelConfig:
    """Paper widths (sec. 5 "Implementation", GR00T-N1 action head): for benchmarks with random weights.

    Three RoboCasa views (A.3) of 64 pixel-shuffled tokens each plus 108 text tokens give S = 300
    conditioning tokens; 256 SigLIP-2 tokens (224 px, patch 14) pooled 2x2 give 64 future tokens of width 1152.
    """
    return ModelConfig(
        name="dust-paper",
        vlm=VLMConfig(
            image_size=224,
            patch_size=14,
            cameras=("left", "right", "wrist"),
            vision_width=1152,
            vision_layers=2,
            vision_heads=16,
            pool=2,
            width=1536,
            layers=2,
            heads=32,
            mlp_ratio=4.0,
            max_tokens=108,
            vocab_size=vocab_size,
            future_dim=1152,
        ),
        denoiser=DenoiserConfig(
            hidden=1536,
            heads=32,
            mmdit_layers=12,
            dit_layers=4,
            mlp_ratio=4.0,
            timestep_dim=1536,
            timestep_freq_dim=256,
            future_tokens=64,
            future_dim=1152,
            cond_dim=1536,
            cond_tokens=300,
        ),
        embodiments=TINY_EMBODIMENTS,
    )


PRESETS = {"tiny": tiny_config, "paper": paper_config}


def preset(name: str, vocab_size: int = 64) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name](vocab_size)


__all__ = [
    "EmbodimentConfig",
    "DenoiserConfig",
    "VLMConfig",
    "ModelConfig",
    "TrainConfig",
    "TINY_EMBODIMENTS",
    "tiny_config",
    "paper_config",
    "preset",
    "PRESETS",
]
