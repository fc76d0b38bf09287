"""The MuJoCo push task's model (`build-push`): record expert episodes with node (bench/push/record.ts), train
three dust-tiny-sized policies on them, export them as versions of one model `dust-push`:

  1  DUST, lambda_WM = 1 (paper eq. 4), the full schedule
  2  the same without the world-model loss, lambda_WM = 0 (the vision stream still runs, untrained)
  3  a weaker checkpoint: the DUST run stopped at WEAK_FRACTION of its steps

The cameras, embodiments and their state/action widths come from the dataset's index.json, so the model is
whatever the task records. Everything is seeded: the same machine and thread count reproduce the packages.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from .build import fit, log, run_export, typed_value
from .config import DenoiserConfig, EmbodimentConfig, ModelConfig, TrainConfig, VLMConfig
from .data.episodes import normalization_stats
from .data.push import PushDataset
from .model import DustPolicy
from .tokenizer import WordTokenizer
from .train import checkpoint_meta, resume_state, seed_everything

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "dust-push"
DATASET_LABEL = "MuJoCo push task (bench/push), expert demonstrations"

# Recorded by build-push: training layouts from seed 0, held-out (evaluation of the checkpoints) from 500000.
# The fleet evaluates on seeds from 1000000 (bench/push/fleet.ts), never seen in training.
TRAIN_SEED_START = 0
HELDOUT_SEED_START = 500_000
HELDOUT_LAYOUTS = 6

PUSH_TRAIN = TrainConfig(steps=6000, batch_size=32, lr=1e-3, log_every=100, seed=0)
PUSH_LAYOUTS_PER_EMBODIMENT = 60
WEAK_FRACTION = 0.125
VARIANTS = {
    # name: (version, lambda_wm); build-push trains these two
    "dust": (1, 1.0),
    "no-wm": (2, 0.0),
}
# The action-only baseline (GR00T-N1's design, no future stream: config.DenoiserConfig.future_stream), trained by
# push-train on request beside the variants above and exported by `export` as a version of its own.
ACTION_ONLY = "action-only"


def push_config(dataset: PushDataset, vocab_size: int, vlm_fields: Optional[Dict[str, str]] = None,
                encoder_vlm: Optional[VLMConfig] = None, prefix_conditioning: bool = False,
                future_stream: bool = True) -> ModelConfig:
    """dust-tiny's sizes (hidden 128, 2 MMDiT + 1 DiT blocks per modality) over the task's cameras and
    embodiments; state and actions padded to 8 (the widest embodiment has 4 state and 3 action values).
    `encoder_vlm`: the VLM configuration of a pretrained frozen encoder (vision.py); its tower's shapes replace
    the stand-in's."""
    embodiments = tuple(
        EmbodimentConfig(name=name, id=i, state_dim=int(e["state_dim"]), action_dim=int(e["action_dim"]))
        for i, (name, e) in enumerate(dataset.embodiments.items())
    )
    vlm = VLMConfig(image_size=dataset.image_size, cameras=tuple(dataset.cameras), vocab_size=vocab_size)
    if encoder_vlm is not None:
        vlm = dataclasses.replace(encoder_vlm, vocab_size=vocab_size)
    if vlm_fields:  # e.g. a larger vision tower (--vlm vision_width=128); the denoiser follows the VLM's shapes
        unknown = [k for k in vlm_fields if not hasattr(vlm, k)]
        if unknown:
            raise SystemExit(f"--vlm: the VLM stand-in has no field {', '.join(unknown)}")
        vlm = dataclasses.replace(vlm, **{k: typed_value(getattr(vlm, k), v) for k, v in vlm_fields.items()})
    return ModelConfig(
        name=MODEL_NAME,
        vlm=vlm,
        denoiser=DenoiserConfig(
            hidden=128, heads=4, mmdit_layers=2, dit_layers=1, mlp_ratio=2.0, timestep_dim=64, timestep_freq_dim=64,
            action_dim=8, state_dim=8, num_embodiments=len(embodiments), future_tokens=vlm.future_tokens,
            future_dim=vlm.future_dim, cond_dim=vlm.width, cond_tokens=vlm.cond_tokens,
            prefix_conditioning=prefix_conditioning, future_stream=future_stream,
        ),
        embodiments=embodiments,
    )


def record(out: Path, layouts: int, seed_start: int) -> None:
    """Runs the node recorder (after building the TypeScript), unless `out` already holds a dataset. Each layout
    is recorded once per ball named (bench/push/record.ts says why)."""
    if (out / "index.json").is_file():
        log(f"dataset {out} exists; delete it to record again")
        return
    log(f"recording {layouts} layouts per embodiment, every ball named in turn, from seed {seed_start} into {out}")
    subprocess.run(["node", "scripts/ensure-build.mjs"], cwd=REPO_ROOT, check=True)
    subprocess.run(["node", "dist/bench/push/record.js", "--out", str(out), "--layouts", str(layouts),
                    "--seed-start", str(seed_start)], cwd=REPO_ROOT, check=True)


def policy_with_encoder(cfg: ModelConfig, encoder_path: Path) -> DustPolicy:
    """A policy whose vision tower is the pretrained encoder's, frozen (cfg from push_config(encoder_vlm=...))."""
    from .vision import load_encoder

    encoder, _, _ = load_encoder(encoder_path)
    policy = DustPolicy(cfg)
    policy.vlm.vision.load_state_dict(encoder.tower.state_dict())
    return policy


def train_variant(*, variant: str, data: Path, heldout: Path, runs: Path, tcfg: TrainConfig, device: str,
                  weak_step: Optional[int], vlm_fields: Optional[Dict[str, str]] = None,
                  encoder: Optional[Path] = None, prefix_conditioning: bool = False, resume: Optional[Path] = None,
                  stop_after_s: Optional[float] = None) -> Dict:
    """One training run; the DUST run also writes the weak checkpoint at `weak_step`. With `encoder` the VLM's
    vision tower is that pretrained encoder, frozen, and the world-model target is its embedding of o_{t+k}. With
    `prefix_conditioning` the action stream also learns to continue a committed prefix (train.commit_prefix).
    `stop_after_s` stops the run after that many seconds with a resumable checkpoint; `resume` continues one (the
    model, schedule and options come from the checkpoint, only the device and loader workers from the caller)."""
    if resume is not None:
        return resume_variant(variant=variant, data=data, heldout=heldout, runs=runs, checkpoint=resume,
                              device=device, loader_workers=tcfg.loader_workers, weak_step=weak_step,
                              stop_after_s=stop_after_s)
    future_stream = variant != ACTION_ONLY
    lambda_wm = VARIANTS[variant][1] if future_stream else 0.0
    tcfg = dataclasses.replace(tcfg, lambda_wm=lambda_wm)
    seed_everything(tcfg.seed)
    train_set, held = PushDataset(data), PushDataset(heldout)
    log(f"{variant}: {len(train_set.episodes)} episodes ({train_set.steps()} steps), {len(held.episodes)} held out")
    tokenizer = WordTokenizer.build(train_set.instructions)
    if encoder is not None:
        from .vision import load_encoder

        cfg = push_config(train_set, len(tokenizer), vlm_fields, encoder_vlm=load_encoder(encoder)[0].vlm,
                          prefix_conditioning=prefix_conditioning, future_stream=future_stream)
        policy = policy_with_encoder(cfg, encoder)
    else:
        policy = DustPolicy(push_config(train_set, len(tokenizer), vlm_fields, prefix_conditioning=prefix_conditioning,
                                        future_stream=future_stream))
    stats = normalization_stats(train_set.episodes)
    label = f"{DATASET_LABEL}, {len(train_set.episodes)} episodes from layout seed {TRAIN_SEED_START}"
    if encoder is not None:
        label += f"; frozen vision encoder {encoder}"
    return fit(policy=policy, tokenizer=tokenizer, stats=stats, episodes=train_set.episodes, heldout=held.episodes,
               tcfg=tcfg, device=device, out=runs / variant / "checkpoint.pt", dataset=label,
               snapshots=variant_snapshots(runs, variant, tcfg.steps, weak_step), stop_after_s=stop_after_s)


def variant_snapshots(runs: Path, variant: str, steps: int, weak_step: Optional[int]) -> Dict[int, Path]:
    """Quarter-way checkpoints, which show how a run is going (bench one with `npm run fleet` after an export), and
    the weak checkpoint of the DUST run."""
    snapshots = {q * steps // 4: runs / variant / f"step-{q * steps // 4}.pt" for q in (1, 2, 3)}
    if weak_step:
        snapshots[weak_step] = runs / "weak" / "checkpoint.pt"
    return snapshots


def resume_variant(*, variant: str, data: Path, heldout: Path, runs: Path, checkpoint: Path, device: str,
                   loader_workers: int, weak_step: Optional[int], stop_after_s: Optional[float]) -> Dict:
    """Continues a run that `stop_after_s` stopped, from its checkpoint, to the end of its schedule."""
    policy, tokenizer, stats, ckpt, state = resume_state(checkpoint)
    t = ckpt["train_config"]
    steps = int(ckpt["extra"].get("schedule_steps", t["steps"]))
    tcfg = TrainConfig.from_dict({**t, "steps": steps, "loader_workers": loader_workers})
    if (state.get("picks") is None) != (loader_workers == 0):
        raise SystemExit(f"{checkpoint} was trained with{'out' if state.get('picks') is None else ''} loader workers: "
                         "resume it the same way (--loader-workers), or the batch order changes")
    seed_everything(tcfg.seed)
    train_set, held = PushDataset(data), PushDataset(heldout)
    if WordTokenizer.build(train_set.instructions).vocab != tokenizer.vocab:
        raise SystemExit(f"{data} is not the dataset {checkpoint} was trained on (its instructions differ)")
    log(f"{variant}: resuming {checkpoint} at step {state['step']} of {steps}")
    return fit(policy=policy, tokenizer=tokenizer, stats=stats, episodes=train_set.episodes, heldout=held.episodes,
               tcfg=tcfg, device=device, out=runs / variant / "checkpoint.pt", dataset=ckpt["dataset"],
               snapshots=variant_snapshots(runs, variant, steps, weak_step), resume=state, stop_after_s=stop_after_s)


def build_push(*, repository: Path, runs: Path, layouts: int, tcfg: TrainConfig, device: str, jobs: int,
               threads: int) -> None:
    t0 = time.time()
    data, heldout = runs / "data", runs / "heldout"
    record(data, layouts, TRAIN_SEED_START)
    record(heldout, HELDOUT_LAYOUTS, HELDOUT_SEED_START)
    weak_step = max(1, int(tcfg.steps * WEAK_FRACTION))
    common = ["--data", str(data), "--heldout", str(heldout), "--runs", str(runs), "--steps", str(tcfg.steps),
              "--batch-size", str(tcfg.batch_size), "--lr", str(tcfg.lr), "--seed", str(tcfg.seed), "--loader-workers", str(tcfg.loader_workers),
              "--device", device, "--threads", str(threads), "--weak-step", str(weak_step)]
    # Each variant trains in its own process (one per core with --jobs 2); output lines carry the variant.
    pending = list(VARIANTS)
    running: List[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < jobs:
            variant = pending.pop(0)
            cmd = [sys.executable, "-m", "models.toolchain", "push-train", "--variant", variant, *common]
            log(f"starting {variant}: {' '.join(cmd)}")
            running.append(subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        done = [p for p in running if p.poll() is not None]
        for p in done:
            running.remove(p)
            if p.returncode != 0:
                for other in running:
                    other.terminate()
                raise SystemExit(f"training failed ({' '.join(p.args)}): exit {p.returncode}")
        time.sleep(1.0)
    export_push(repository=repository, runs=runs)
    log(f"build-push done in {time.time() - t0:.0f}s: {repository / MODEL_NAME} versions 1, 2, 3")


def export_push(*, repository: Path, runs: Path, step: int = 0, weak_step: int = 0,
                weak: Optional[Path] = None, weak_label: str = "") -> None:
    """The three checkpoints of `runs` (trained here or on a GPU host by scripts/gpu-train-push.sh) as versions
    1-3 of dust-push in `repository`: the final checkpoints, or with `step` both runs' snapshots at that step
    and with `weak_step` the DUST run's snapshot at that step as the weak version."""
    def snapshot(variant: str, at: int) -> Path:
        return runs / variant / (f"step-{at}.pt" if at else "checkpoint.pt")

    exports = {1: snapshot("dust", step), 2: snapshot("no-wm", step),
               3: weak or (snapshot("dust", weak_step) if weak_step else runs / "weak" / "checkpoint.pt")}
    for ckpt in exports.values():
        if not ckpt.is_file():
            raise SystemExit(f"{ckpt} not found: train first (build-push, or scripts/gpu-train-push.sh)")
    total, weak_steps = (int(checkpoint_meta(exports[v])["train_config"]["steps"]) for v in (1, 3))
    descriptions = {
        1: "DUST (lambda_WM = 1) on the MuJoCo push task",
        2: "DUST without the world-model loss (lambda_WM = 0) on the MuJoCo push task",
        3: (f"weaker DUST checkpoint: {weak_label}, at step {weak_steps}" if weak else
            f"weaker DUST checkpoint: the version-1 run at step {weak_steps} (version 1: step {total})"),
    }
    for version, ckpt in exports.items():
        run_export(checkpoint=ckpt, out=repository / MODEL_NAME / str(version), version=version,
                   weights_dtype="float16", description=descriptions[version])

