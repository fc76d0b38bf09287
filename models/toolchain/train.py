"""Training per docs/sampling.md "Flow matching" and the paper's Algorithm 1 (A.6), with the A.2 optimiser.

World-model target (`world_model_target`). The paper trains with a frozen pretrained VLM, so its target (SigLIP-2
tokens of o_{t+k}, pooled) is a fixed function of the future frame. With a pretrained encoder (vision.py,
`freeze_vision`, no obs projection) this is the same here: the target is the frozen tower's pooled, normalised
tokens of o_{t+k}. Without one, the stand-in VLM starts from scratch and is trained jointly, and the target is
computed by the SAME module under stop-gradient; its obs projection then only ever produces targets and keeps its
random initialisation (README, "World-model target", says why that target barely moves within a chunk).
Either way the world-model loss never shapes its own target, and at export time `obs_embedding` of the current
frame is exactly the function that produced the targets.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .config import ModelConfig, TrainConfig
from .data.episodes import BatchBuilder, Episode, MinMax, all_windows, future_step, image_to_tensor
from .model import DustPolicy
from .tokenizer import WordTokenizer

CHECKPOINT_FORMAT = "dust-toolchain-checkpoint/1"


def sample_tau(n: int, tcfg: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Flow times for n samples (docs/sampling.md): tau = (s - u) / s with u ~ Beta(1.5, 1.0), s = 0.999 (GR00T),
    or tau ~ U(0, 1) as Algorithm 1 writes. The Beta form puts most mass on noisy times; tau can be as low as
    1 - 1/s = -0.001, exactly as GR00T samples it."""
    if tcfg.tau_distribution == "beta":
        u = rng.beta(tcfg.beta_alpha, tcfg.beta_beta, size=n)
        tau = (tcfg.beta_s - u) / tcfg.beta_s
    else:
        tau = rng.uniform(0.0, 1.0, size=n)
    return torch.from_numpy(tau.astype(np.float32))


def decoupled_noising(
    actions: torch.Tensor,
    future: torch.Tensor,
    has_actions: torch.Tensor,
    tcfg: TrainConfig,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> Dict[str, torch.Tensor]:
    """Paper eq. 3 / Algorithm 1 step 3: independent noise AND independent flow times per modality.

    Rows without actions (video, or every row in video_only mode) get tau_A = 0 and pure-noise action tokens
    (docs/sampling.md, "Action-free (video-only) pretraining"). Noise is drawn on the CPU generator and moved, so a
    seed gives the same run on any device.
    """
    b = actions.shape[0]
    device = actions.device
    tau_a = sample_tau(b, tcfg, rng).to(device)
    tau_o = sample_tau(b, tcfg, rng).to(device)
    eps_a = torch.randn(actions.shape, generator=gen).to(device)
    eps_o = torch.randn(future.shape, generator=gen).to(device)
    if tcfg.mode == "video_only":
        has_actions = torch.zeros_like(has_actions)
    tau_a = tau_a * has_actions
    ta, to = tau_a.view(-1, 1, 1), tau_o.view(-1, 1, 1)
    return {
        "tau_a": tau_a,
        "tau_o": tau_o,
        "eps_a": eps_a,
        "eps_o": eps_o,
        "noisy_actions": ta * actions + (1 - ta) * eps_a,
        "noisy_future": to * future + (1 - to) * eps_o,
        "has_actions": has_actions,
    }


def prefix_lengths(n: int, tcfg: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Committed-prefix lengths d for n rows (prefix conditioning): 0 for a share 1 - prefix_fraction of the rows,
    else uniform over 1..prefix_max_delay, the delays a robot's request can carry (real-time chunking)."""
    d = rng.integers(1, tcfg.prefix_max_delay + 1, size=n)
    d = np.where(rng.uniform(size=n) < tcfg.prefix_fraction, d, 0)
    return torch.from_numpy(d.astype(np.int64))


def commit_prefix(noise: Dict[str, torch.Tensor], actions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Training-time prefix conditioning (in place on `noise`): the first d positions of each row become the clean
    actions at flow time 1 (`action_times`, the denoiser's per-position times), as the server gives a committed
    prefix; returns the [B, k] mask of those positions, which carry no action loss."""
    k = actions.shape[1]
    lengths = lengths.to(actions.device) * (noise["has_actions"] > 0).long()
    committed = torch.arange(k, device=actions.device).unsqueeze(0) < lengths.unsqueeze(1)
    noise["action_times"] = torch.where(committed, torch.ones_like(committed, dtype=actions.dtype),
                                        noise["tau_a"].unsqueeze(1).expand(-1, k))
    noise["noisy_actions"] = torch.where(committed.unsqueeze(-1), actions, noise["noisy_actions"])
    return committed


def world_model_target(policy: DustPolicy, future_pixels: torch.Tensor) -> torch.Tensor:
    """O = VLM_img(o_{t+k}) (Algorithm 1), stop-gradient: the obs_embedding function applied to the future frame."""
    with torch.no_grad():
        return policy.vlm.image_embedding(future_pixels)


def flow_matching_loss(
    policy: DustPolicy,
    batch: Dict[str, torch.Tensor],
    tcfg: TrainConfig,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """L = MSE(v_A, A - eps_A) + lambda_WM * MSE(v_O, O - eps_O) (paper eq. 4; video_only: the WM term only)."""
    cached = "vision_tokens" in batch  # a FrozenTokens batch: the frozen tower's tokens instead of pixels
    if cached:
        vl_embs, obs = policy.vlm.forward_from_tokens(batch["vision_tokens"], batch["input_ids"], batch["attention_mask"])
    else:
        vl_embs, obs = policy.vlm(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    future_stream = policy.cfg.denoiser.future_stream
    # An action-only policy has no world model to train; a zero target of the same shape keeps the noise draws (and so
    # a seed's flow times and action noise) those of a DUST run, without encoding the future frames.
    if not future_stream:
        target = torch.zeros_like(obs)
    elif cached:
        with torch.no_grad():
            target = policy.vlm.obs_embedding_from_tokens(batch["future_tokens"])
    else:
        target = world_model_target(policy, batch["future_pixels"])
    noise = decoupled_noising(batch["actions"], target, batch["has_actions"], tcfg, rng, gen)
    committed = None
    if policy.cfg.denoiser.prefix_conditioning:
        committed = commit_prefix(noise, batch["actions"], prefix_lengths(batch["actions"].shape[0], tcfg, rng))
    v_a, v_o = policy.denoiser(
        vl_embs, batch["state"], noise["noisy_actions"], noise["noisy_future"],
        noise["tau_a"], noise["tau_o"], batch["embodiment_id"], noise.get("action_times"),
    )
    # Only the embodiment's real action columns, and only rows that have actions, carry an action loss
    # (GR00T masks the zero padding the same way); committed prefix positions are inputs, not predictions.
    mask = batch["action_mask"].unsqueeze(1) * noise["has_actions"].view(-1, 1, 1)
    if committed is not None:
        mask = mask * (~committed).unsqueeze(-1).to(mask.dtype)
    mask = mask.expand_as(v_a)
    sq = (v_a - (batch["actions"] - noise["eps_a"])) ** 2
    loss_a = (sq * mask).sum() / mask.sum().clamp(min=1.0)
    loss_wm = ((v_o - (target - noise["eps_o"])) ** 2).mean() if future_stream else torch.zeros((), device=v_a.device)
    if tcfg.mode == "video_only":
        loss = tcfg.lambda_wm * loss_wm
    else:
        loss = loss_a + tcfg.lambda_wm * loss_wm
    return loss, {"loss": float(loss.detach()), "loss_action": float(loss_a.detach()), "loss_wm": float(loss_wm.detach())}


def param_groups(model: nn.Module, weight_decay: float) -> List[Dict]:
    """Weight decay on weights only: not on biases, LayerNorm parameters (paper A.2), nor the per-embodiment
    bias tables (biases too)."""
    decay, no_decay = [], []
    norm_params = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith("bias") or id(p) in norm_params or p.ndim < 2:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Linear warm-up over the first 5% of the steps, then cosine decay to zero (paper A.2)."""
    warmup = max(1, int(round(total_steps * warmup_fraction)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_optimizer(policy: nn.Module, tcfg: TrainConfig) -> Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    opt = torch.optim.AdamW(param_groups(policy, tcfg.weight_decay), lr=tcfg.lr, betas=tuple(tcfg.betas), eps=tcfg.eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(tcfg.steps, tcfg.warmup_fraction))
    return opt, sched


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    # Deterministic kernels where PyTorch has them; warn (not fail) where a CUDA op has none.
    torch.use_deterministic_algorithms(True, warn_only=True)


class Progress:
    """One line every `every` steps with the loss parts and throughput, and a bar on a terminal."""

    def __init__(self, total: int, every: int, stream=sys.stderr, start: int = 0) -> None:
        self.total, self.every, self.stream, self.start = total, max(1, every), stream, start
        self.t0 = time.time()
        self.acc: Dict[str, float] = {}
        self.n = 0

    def update(self, step: int, parts: Dict[str, float], lr: float, grad_norm: float) -> Optional[Dict[str, float]]:
        for k, v in parts.items():
            self.acc[k] = self.acc.get(k, 0.0) + v
        self.n += 1
        if step % self.every and step != self.total:
            return None
        elapsed = time.time() - self.t0
        rate = (step - self.start) / max(elapsed, 1e-9)
        means = {k: v / self.n for k, v in self.acc.items()}
        width = 24
        done = int(width * step / self.total)
        bar = "#" * done + "." * (width - done)
        eta = (self.total - step) / max(rate, 1e-9)
        print(
            f"[{bar}] step {step:>6}/{self.total}  loss {means['loss']:.4f}  action {means['loss_action']:.4f}  "
            f"wm {means['loss_wm']:.4f}  |g| {grad_norm:.3f}  lr {lr:.2e}  {rate:.2f} steps/s  eta {eta:5.0f}s",
            file=self.stream, flush=True,
        )
        record = {"step": step, **means, "lr": lr, "grad_norm": grad_norm, "steps_per_s": rate, "elapsed_s": elapsed}
        self.acc, self.n = {}, 0
        return record


class FrozenTokens:
    """Every training window's tensors, built once and held on the training device, with the frozen vision tower's
    tokens of every frame in place of the pixels: a batch is a gather there (`batch`), with no per-sample Python
    and no host-to-device copy per step.

    A frozen tower (VLMConfig.freeze_vision) is a fixed function of the frame, so running it on every batch's
    views and future frame repeats the same work every epoch: on the push task about a third of a CPU training step.
    `batch` returns what BatchBuilder.batch builds, with `vision_tokens` [B, V, g*g, C_v] and `future_tokens`
    [B, g*g, C_v] instead of pixel_values and future_pixels; flow_matching_loss takes either. The tokens equal the
    tower's output on the batch's pixels up to float rounding (the tower normalises each frame on its own: GroupNorm
    and LayerNorm, no batch statistics), so a run with them trains the same function, not the same bits.
    Memory: frames x cameras x g*g x C_v floats (1.07 GB for the push task's 65k steps, 2 cameras, 64 x 32)."""

    def __init__(self, policy: DustPolicy, builder: BatchBuilder, episodes: Sequence[Episode],
                 device: torch.device = torch.device("cpu"), chunk: int = 512, log_stream=sys.stderr) -> None:
        vcfg = policy.cfg.vlm
        if not vcfg.freeze_vision:
            raise ValueError("frozen_token_cache needs a frozen vision tower (a pretrained encoder: push-train --encoder)")
        self.cameras = list(vcfg.cameras)
        self.device = device
        # Window i of all_windows is frame i of the episodes laid end to end (episode by episode, step by step).
        windows = all_windows(episodes)
        offsets = np.cumsum([0] + [ep.length for ep in episodes])
        k = policy.cfg.denoiser.action_horizon
        self.future = torch.as_tensor([offsets[e] + future_step(episodes[e], t, k) for e, t in windows], device=device)
        parts = [builder.batch(episodes, windows[s: s + chunk], images=False) for s in range(0, len(windows), chunk)]
        self.fields = {key: torch.cat([p[key] for p in parts]).to(device) for key in parts[0]}
        tower = policy.vlm.vision
        was_training = tower.training
        tower.eval()
        t0 = time.time()
        self.tokens: Dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for cam in self.cameras:
                out = torch.empty(len(windows), vcfg.grid * vcfg.grid, vcfg.vision_width)
                for s in range(0, len(windows), chunk):
                    part = windows[s: s + chunk]
                    pixels = torch.stack([image_to_tensor(episodes[e].frame(cam, t), policy.cfg) for e, t in part])
                    out[s: s + len(part)] = tower(pixels.to(next(tower.parameters()).device)).cpu()
                self.tokens[cam] = out.to(device)
        tower.train(was_training)
        print(f"frozen tower tokens of {len(windows)} frames x {len(self.cameras)} cameras in {time.time() - t0:.0f}s "
              f"({sum(v.numel() for v in self.tokens.values()) * 4 / 1e9:.2f} GB on {device})", file=log_stream, flush=True)

    def batch(self, picks: Sequence[int]) -> Dict[str, torch.Tensor]:
        """The windows `picks` (indices into all_windows of the episodes) as one training batch, on the device."""
        idx = torch.as_tensor(np.asarray(picks), dtype=torch.int64, device=self.device)
        b = {key: v.index_select(0, idx) for key, v in self.fields.items()}
        b["vision_tokens"] = torch.stack([self.tokens[cam].index_select(0, idx) for cam in self.cameras], dim=1)
        b["future_tokens"] = self.tokens[self.cameras[0]].index_select(0, self.future.index_select(0, idx))
        return b


def batch_builder_fn(episodes: Sequence[Episode], builder: BatchBuilder,
                     tokens: Optional[FrozenTokens]) -> Callable[[Sequence[int]], Dict[str, torch.Tensor]]:
    """What turns picked window indices (into all_windows) into a training batch: from pixels, or from the tokens."""
    if tokens is not None:
        return tokens.batch
    windows = all_windows(episodes)
    return lambda picks: builder.batch(episodes, [windows[i] for i in picks])


_LOADER: Dict[str, Callable] = {}


def _build_batch(picks: Sequence[int]) -> Dict[str, torch.Tensor]:
    return _LOADER["build"](picks)


def _loader_init() -> None:
    torch.set_num_threads(1)


class BatchStream:
    """The training batches, in order, resumable at any step boundary (`state`).

    Without loader workers each batch's samples are drawn from the training `rng` when the step asks for it
    (interleaved with the flow times: the order every shipped package was trained in), so the rng's state is the
    stream's. With workers the samples come from a generator of their own and batches are built ahead in forked
    processes (created before any CUDA context, and never touching it); the stream's state is that generator's
    state before the first batch not yet handed out, so a resumed run builds the same batches again."""

    def __init__(self, episodes: Sequence[Episode], build: Callable[[Sequence[int]], Dict[str, torch.Tensor]],
                 tcfg: TrainConfig, rng: np.random.Generator, picks_state: Optional[Dict] = None) -> None:
        self.build, self.tcfg, self.rng = build, tcfg, rng
        self.windows = len(all_windows(episodes))
        self.pool: Optional[ProcessPoolExecutor] = None
        self.queue: Deque = deque()  # (future, the picks state before this batch was drawn)
        if tcfg.loader_workers:
            self.picks = np.random.default_rng([tcfg.seed, 1])
            if picks_state is not None:
                self.picks.bit_generator.state = picks_state
            _LOADER.update(build=build)
            self.pool = ProcessPoolExecutor(tcfg.loader_workers, mp_context=multiprocessing.get_context("fork"),
                                            initializer=_loader_init)

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> Dict[str, torch.Tensor]:
        if self.pool is None:
            return self.build(self.rng.integers(self.windows, size=self.tcfg.batch_size))
        while len(self.queue) < 4 * self.tcfg.loader_workers:
            before = self.picks.bit_generator.state
            pick = self.picks.integers(self.windows, size=self.tcfg.batch_size)
            self.queue.append((self.pool.submit(_build_batch, pick), before))
        return self.queue.popleft()[0].result()

    def state(self) -> Optional[Dict]:
        """The picks generator's state before the next batch (None without workers: the rng carries it)."""
        if self.pool is None:
            return None
        return self.queue[0][1] if self.queue else self.picks.bit_generator.state

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def train(
    policy: DustPolicy,
    episodes: Sequence[Episode],
    builder: BatchBuilder,
    tcfg: TrainConfig,
    device: torch.device,
    log_stream=sys.stderr,
    after_step: Optional[Callable[[int, List[Dict[str, float]], Callable[[], Dict]], None]] = None,
    resume: Optional[Dict] = None,
    stop_after_s: Optional[float] = None,
) -> Tuple[List[Dict[str, float]], int, Dict]:
    """Algorithm 1: minibatch -> conditioning -> decoupled noising -> denoiser -> losses -> AdamW step.

    `after_step(step, history, state)` runs after every optimiser step (e.g. to save an intermediate checkpoint);
    `state()` is what `resume` takes to continue from that step exactly (optimizer, schedule, random streams, the
    batch order): a run stopped and resumed trains the same weights as one that never stopped. after_step must
    leave the policy in training mode and the global random state untouched. `stop_after_s`: stop after the first
    step that ends past this many seconds (training in pieces on a host lent by the call). Returns the history,
    the last step done and the state at it."""
    rng = np.random.default_rng(tcfg.seed)
    gen = torch.Generator().manual_seed(tcfg.seed)
    start = 0
    history: List[Dict[str, float]] = []
    if resume is not None:
        start = int(resume["step"])
        rng.bit_generator.state = resume["rng"]
        gen.set_state(resume["generator"])
        history = list(resume.get("history", []))
    tokens = FrozenTokens(policy, builder, episodes, device, log_stream=log_stream) if tcfg.frozen_token_cache else None
    stream = BatchStream(episodes, batch_builder_fn(episodes, builder, tokens), tcfg, rng, resume.get("picks") if resume else None)
    batches: Iterator[Dict[str, torch.Tensor]] = stream
    if tcfg.loader_workers:
        # The workers fork at the first batch: take it now, before the policy's CUDA context exists.
        first = next(stream)
        batches = itertools.chain([first], stream)
    policy.to(device).train()
    opt, sched = make_optimizer(policy, tcfg)
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
    progress = Progress(tcfg.steps, tcfg.log_every, log_stream, start=start)

    def state(at: int) -> Dict:
        # With workers, the first batch was taken before the loop: until the stream hands out another, the picks
        # state of the batch after it is the queue's head.
        return {"step": at, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": rng.bit_generator.state, "generator": gen.get_state(), "picks": stream.state(),
                "history": list(history)}

    t0 = time.time()
    step = start
    for step in range(start + 1, tcfg.steps + 1):
        batch = next(batches)
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, parts = flow_matching_loss(policy, batch, tcfg, rng, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(policy.parameters(), tcfg.grad_clip))
        opt.step()
        sched.step()
        record = progress.update(step, parts, sched.get_last_lr()[0], grad_norm)
        if record is not None:
            history.append(record)
        if after_step is not None:
            after_step(step, history, lambda: state(step))
        if stop_after_s is not None and time.time() - t0 > stop_after_s:
            break
    final = state(step)
    stream.close()
    policy.eval()
    return history, step, final


def save_checkpoint(path, policy: DustPolicy, tokenizer: WordTokenizer, stats: Dict[str, Dict[str, MinMax]],
                    tcfg: TrainConfig, history: List[Dict[str, float]], dataset: str, extra: Optional[Dict] = None,
                    resume: Optional[Dict] = None) -> None:
    """A checkpoint is the state dict plus a JSON string of everything else: tensors and strings are all that
    torch's safe loader (`weights_only=True`) reads on torch 1.13 as on 2.x."""
    meta = {
        "model_config": policy.cfg.to_dict(),
        "train_config": asdict(tcfg),
        "normalization": {e: {k: mm.to_json() for k, mm in d.items()} for e, d in stats.items()},
        "vocab": tokenizer.vocab,
        "history": history,
        "dataset": dataset,
        "extra": extra or {},
    }
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "meta": json.dumps(meta),
            "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
            # train()'s state at this step, for `--resume`: tensors as they are, the random streams' states (big
            # integers) as JSON text, both of which the safe loader reads.
            # (torch 1.13's safe loader reads no Python floats, so the optimizer's hyperparameters go as JSON too.)
            **({"resume": {"optimizer": _to_cpu(resume["optimizer"]["state"]), "generator": resume["generator"],
                           "param_groups": json.dumps(resume["optimizer"]["param_groups"]),
                           "scheduler": json.dumps(resume["scheduler"]),
                           "streams": json.dumps({k: resume[k] for k in ("step", "rng", "picks", "history")})}}
               if resume is not None else {}),
        },
        str(path),
    )


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def resume_state(path) -> Tuple[DustPolicy, WordTokenizer, Dict[str, Dict[str, MinMax]], Dict, Dict]:
    """A resumable checkpoint's policy, tokenizer, statistics, metadata and train()'s `resume` argument."""
    raw, ckpt = _read_checkpoint(path)
    if "resume" not in raw:
        raise SystemExit(f"{path} holds no training state to resume (written before resumable checkpoints, or by export)")
    policy, tokenizer, stats, _ = load_checkpoint(path)
    r = raw["resume"]
    state = {**json.loads(r["streams"]), "generator": r["generator"],
             "optimizer": {"state": r["optimizer"], "param_groups": json.loads(r["param_groups"])},
             "scheduler": json.loads(r["scheduler"])}
    return policy, tokenizer, stats, ckpt, state


def _read_checkpoint(path) -> Tuple[Dict, Dict]:
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    if raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} file")
    return raw, json.loads(raw["meta"])


def checkpoint_meta(path) -> Dict:
    """The checkpoint's metadata (model and training configuration, normalisation, history), without a policy."""
    return _read_checkpoint(path)[1]


def load_checkpoint(path) -> Tuple[DustPolicy, WordTokenizer, Dict[str, Dict[str, MinMax]], Dict]:
    """Returns the policy, tokenizer, normalisation statistics and the checkpoint's metadata."""
    raw, ckpt = _read_checkpoint(path)
    cfg = ModelConfig.from_dict(ckpt["model_config"])
    policy = DustPolicy(cfg)
    policy.load_state_dict(raw["state_dict"])
    policy.eval()
    stats = {e: {k: MinMax.from_json(v) for k, v in d.items()} for e, d in ckpt["normalization"].items()}
    return policy, WordTokenizer(ckpt["vocab"]), stats, ckpt
