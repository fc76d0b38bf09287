"""The toolchain's commands as functions: train, export, golden, build-tiny, export-paper."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from .config import ModelConfig, TrainConfig, preset
from .data.episodes import BatchBuilder, normalization_stats
from .data.synthetic import generate_dataset, vocabulary_texts
from .evaluate import heldout_errors, input_sensitivity
from .golden import write_fixtures
from .model import DustPolicy, randomize_zero_init
from .package import load_package, validate_package, write_half_package, write_package, write_pixels_package
from .tokenizer import WordTokenizer
from .train import load_checkpoint, save_checkpoint, seed_everything, train

SYNTHETIC_DATASET = "synthetic-push (models/toolchain/data/synthetic.py)"
WM_TARGET = "obs_embedding of the future main-camera frame o_{t+k} by the same VLM module, stop-gradient"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available to this PyTorch")
    return torch.device(name)


def typed_value(current: Any, text: str) -> Any:
    """A command-line value in the type of the field it replaces; booleans by name (bool("false") would be True)."""
    if isinstance(current, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() == "true"
    return type(current)(text)


def apply_overrides(cfg: ModelConfig, overrides: Dict[str, Dict[str, Any]]) -> ModelConfig:
    """{"denoiser": {"hidden": 96}, "vlm": {...}} -> a config with those fields replaced (validated again)."""
    parts = {}
    for part, fields in overrides.items():
        if part not in ("denoiser", "vlm"):
            raise ValueError(f"unknown config part {part!r}")
        current = getattr(cfg, part)
        typed = {}
        for key, value in fields.items():
            if not hasattr(current, key):
                raise ValueError(f"{part} has no field {key!r}")
            typed[key] = typed_value(getattr(current, key), value)
        parts[part] = dataclasses.replace(current, **typed)
    # All parts at once: a change that must agree across them (e.g. the VLM width and the denoiser's cond_dim)
    # is only consistent when both are replaced.
    return dataclasses.replace(cfg, **parts) if parts else cfg


def parse_overrides(items) -> Dict[str, Dict[str, Any]]:
    """["denoiser.hidden=96", ...] -> {"denoiser": {"hidden": "96"}} (values are typed by apply_overrides)."""
    out: Dict[str, Dict[str, Any]] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        part, _, field = key.partition(".")
        if not value or not field:
            raise SystemExit(f"--set expects part.field=value, got {item!r}")
        out.setdefault(part, {})[field] = value
    return out


def run_train(
    *,
    preset_name: str,
    tcfg: TrainConfig,
    device: str,
    out: Path,
    episodes_per_embodiment: int,
    heldout_per_embodiment: int = 8,
    init_from: Optional[Path] = None,
    overrides: Optional[Dict[str, Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    """Train on the synthetic dataset and write a checkpoint; returns a summary (losses, evaluation)."""
    seed_everything(tcfg.seed)
    t0 = time.time()
    episodes = generate_dataset(episodes_per_embodiment, seed=tcfg.seed)
    heldout = generate_dataset(heldout_per_embodiment, seed=tcfg.seed + 1)
    log(f"dataset: {len(episodes)} episodes ({sum(e.length for e in episodes)} steps), {len(heldout)} held out; "
        f"{time.time() - t0:.1f}s")
    if init_from is not None:
        policy, tokenizer, stats, _ = load_checkpoint(init_from)
        if tcfg.mode == "joint":
            # Fine-tuning on action data (e.g. after video-only pretraining, paper sec. 5.2): that data defines
            # the normalisation the package will carry.
            stats = normalization_stats(episodes)
        log(f"initialised from {init_from}")
    else:
        tokenizer = WordTokenizer.build(vocabulary_texts())
        cfg = apply_overrides(preset(preset_name, vocab_size=len(tokenizer)), overrides or {})
        policy = DustPolicy(cfg)
        stats = normalization_stats(episodes)
    return fit(policy=policy, tokenizer=tokenizer, stats=stats, episodes=episodes, heldout=heldout, tcfg=tcfg,
               device=device, out=out, dataset=f"{SYNTHETIC_DATASET}, {len(episodes)} episodes, seed {tcfg.seed}")


def fit(
    *,
    policy: DustPolicy,
    tokenizer: WordTokenizer,
    stats,
    episodes,
    heldout,
    tcfg: TrainConfig,
    device: str,
    out: Path,
    dataset: str,
    snapshots: Optional[Dict[int, Path]] = None,
    resume: Optional[Dict] = None,
    stop_after_s: Optional[float] = None,
) -> Dict[str, Any]:
    """Trains `policy` on `episodes`, evaluates it on `heldout` and writes the checkpoint to `out` (and at each
    step of `snapshots` an intermediate checkpoint, evaluated the same way); returns the final summary. Every
    checkpoint it writes can be resumed (`resume`, from train.resume_state). With `stop_after_s` a run that reaches
    the time first writes `out` at the step it stopped and returns {"stopped_at": step}."""
    if not policy.cfg.denoiser.future_stream:
        if tcfg.mode != "joint":
            raise SystemExit(f"mode {tcfg.mode} trains a world model, which an action-only policy does not have")
        tcfg = dataclasses.replace(tcfg, lambda_wm=0.0)  # no world model: what the manifest records as trained
    n_params = sum(p.numel() for p in policy.parameters())
    log(f"model {policy.cfg.name}: {n_params / 1e6:.2f}M parameters "
        f"(denoiser {sum(p.numel() for p in policy.denoiser.parameters()) / 1e6:.2f}M); "
        f"training {tcfg.steps} steps, batch {tcfg.batch_size}, lambda_wm {tcfg.lambda_wm}, mode {tcfg.mode}, "
        f"tau {tcfg.tau_distribution_label()}, device {device}, {torch.get_num_threads()} threads")
    builder = BatchBuilder(policy.cfg, tokenizer, stats)
    t1 = time.time()

    def summarise(history, seconds: float) -> Dict[str, Any]:
        policy.to("cpu").eval()
        evaluation = {}
        if tcfg.mode == "joint":
            evaluation = {"heldout": heldout_errors(policy, builder, heldout, episodes),
                          "sensitivity": input_sensitivity(policy, builder, heldout)}
            log(f"evaluation: {json.dumps(evaluation)}")
        final = history[-1] if history else {}
        return {
            "train_seconds": round(seconds, 1),
            "final": {k: round(final[k], 5) for k in ("loss", "loss_action", "loss_wm") if k in final},
            "evaluation": evaluation,
            "episodes": len(episodes),
        }

    def save(path: Path, history, summary: Dict[str, Any], steps_done: int, state: Dict) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and then renamed over: a run stopped while saving leaves the previous checkpoint whole.
        partial = path.with_name(path.name + ".partial")
        save_checkpoint(partial, policy, tokenizer, stats, dataclasses.replace(tcfg, steps=steps_done), history,
                        dataset=dataset, extra={"summary": summary, "schedule_steps": tcfg.steps}, resume=state)
        partial.replace(path)
        log(f"checkpoint {path} (step {steps_done})")

    def after_step(step: int, history, state) -> None:
        if snapshots and step in snapshots:
            save(snapshots[step], list(history), summarise(history, time.time() - t1), step, state())
            policy.to(pick_device(device)).train()

    history, step, state = train(policy, episodes, builder, tcfg, pick_device(device), after_step=after_step,
                                 resume=resume, stop_after_s=stop_after_s)
    train_s = time.time() - t1
    if step < tcfg.steps:  # stopped by the time limit: a resumable checkpoint, no evaluation
        save(out, history, {"stopped_at": step}, step, state)
        log(f"stopped at step {step} of {tcfg.steps} after {train_s:.0f}s: continue with --resume {out}")
        return {"stopped_at": step}
    summary = summarise(history, train_s)
    save(out, history, summary, tcfg.steps, state)
    log(f"trained in {train_s:.0f}s")
    return summary


def training_record(ckpt: Dict[str, Any]) -> Dict[str, Any]:
    """The manifest's `training` section: the options that define the run and its (deterministic) results."""
    t = ckpt["train_config"]
    tcfg = TrainConfig.from_dict(t)
    summary = ckpt.get("extra", {}).get("summary", {})
    record = {
        "tau_distribution": tcfg.tau_distribution_label(),
        "lambda_wm": tcfg.lambda_wm,
        "steps": tcfg.steps,
        "dataset": ckpt["dataset"],
        "mode": tcfg.mode,
        "batch_size": tcfg.batch_size,
        "optimizer": {"type": "adamw", "lr": tcfg.lr, "betas": list(tcfg.betas), "eps": tcfg.eps,
                      "weight_decay": tcfg.weight_decay, "schedule": f"cosine, {tcfg.warmup_fraction:.0%} warmup",
                      "grad_clip": tcfg.grad_clip},
        "seed": tcfg.seed,
        "world_model_target": WM_TARGET,
        "final_loss": summary.get("final", {}),
        "evaluation": summary.get("evaluation", {}),
    }
    schedule_steps = ckpt.get("extra", {}).get("schedule_steps", tcfg.steps)
    if schedule_steps != tcfg.steps:
        # An intermediate checkpoint: the learning-rate schedule was laid out for the whole run.
        record["schedule_steps"] = schedule_steps
    return record


def run_export(*, checkpoint: Path, out: Path, version: int, weights_dtype: str, description: Optional[str] = None,
               precision: str = "float32", pixels: str = "float32") -> Dict[str, Any]:
    policy, tokenizer, stats, ckpt = load_checkpoint(checkpoint)
    desc = description or f"DUST reference policy {policy.cfg.name} trained by models/toolchain on {ckpt['dataset']}"
    manifest = write_package(policy, tokenizer, stats, out, version=version, description=desc,
                             training=training_record(ckpt), weights_dtype=weights_dtype, precision=precision,
                             pixels=pixels)
    check_written(out, manifest)
    return manifest


def check_written(out: Path, manifest: Dict[str, Any]) -> None:
    problems = validate_package(out)
    if problems:
        raise SystemExit("exported package is invalid:\n  " + "\n  ".join(problems))
    log(f"package written to {out}: " + ", ".join(f"{n} {(Path(out) / n).stat().st_size / 1e6:.2f} MB" for n in manifest["files"]))


def run_half(*, package: Path, out: Path, version: Optional[int] = None) -> Dict[str, Any]:
    """The float16 variant of a package (fp16.py): same weights rounded to float16, computation in float16."""
    t0 = time.time()
    manifest = write_half_package(package, out, version=version)
    check_written(out, manifest)
    log(f"float16 variant of {package} converted in {time.time() - t0:.0f}s")
    return manifest


def run_pixels(*, package: Path, out: Path, version: Optional[int] = None) -> Dict[str, Any]:
    """The variant of a package whose VLM takes uint8 pixels and normalises them (package.write_pixels_package)."""
    manifest = write_pixels_package(package, out, version=version)
    check_written(out, manifest)
    return manifest


def run_golden(*, package: Path, out: Path) -> Dict[str, Path]:
    """Fixtures from a package alone: the PyTorch modules are rebuilt from its ONNX initializers."""
    loaded = load_package(package)
    builder = BatchBuilder(loaded["config"], loaded["tokenizer"], loaded["stats"])
    paths = write_fixtures(loaded["policy"], loaded["tokenizer"], builder, out, loaded["manifest"]["version"])
    log(f"fixtures written: {', '.join(str(p) for p in paths.values())}")
    return paths


# The shipped tiny model is trained for minutes on two CPU cores. The paper's lr of 1e-4 is for 60k+ steps; at
# ~1200 steps the tiny model needs 1e-3. With this budget the data set size decides whether the model learns to
# read the instruction and the images at all: on 128 episodes per embodiment it learned the state -> action
# map but stayed blind to the instruction (sampled actions moved by < 0.01 when the instruction changed); on 24
# per embodiment (48 episodes, ~19 epochs) it reads both. The manifest records the held-out evaluation.
TINY_TRAIN = TrainConfig(steps=1200, batch_size=32, lr=1e-3, log_every=50, seed=0)
TINY_EPISODES_PER_EMBODIMENT = 24


def build_tiny(*, out: Path, fixtures: Path, device: str, steps: int, batch_size: int, lr: float, seed: int,
               episodes_per_embodiment: int, checkpoint: Path, weights_dtype: str = "float16") -> None:
    tcfg = dataclasses.replace(TINY_TRAIN, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    run_train(preset_name="tiny", tcfg=tcfg, device=device, out=checkpoint,
              episodes_per_embodiment=episodes_per_embodiment)
    run_export(checkpoint=checkpoint, out=out, version=int(Path(out).name) if Path(out).name.isdigit() else 1,
               weights_dtype=weights_dtype)
    run_golden(package=out, out=fixtures)


def paper_policy(seed: int, overrides: Optional[Dict[str, Dict[str, Any]]] = None):
    """Paper-size DUST with random weights (benchmarks only): the AdaLN-Zero and zero-initialised heads are
    replaced by small noise so that every weight is exercised and outputs are non-trivial. Returns the policy
    (float32, CPU, eval mode) and its tokenizer; the same seed gives the same weights."""
    seed_everything(seed)
    tokenizer = WordTokenizer.build(vocabulary_texts())
    cfg: ModelConfig = apply_overrides(preset("paper", vocab_size=len(tokenizer)), overrides or {})
    t0 = time.time()
    policy = DustPolicy(cfg).eval()
    randomize_zero_init(policy, std=0.02, generator=torch.Generator().manual_seed(seed))
    log(f"paper model: {sum(p.numel() for p in policy.parameters()) / 1e9:.3f}B parameters "
        f"(denoiser {sum(p.numel() for p in policy.denoiser.parameters()) / 1e9:.3f}B), built in {time.time() - t0:.0f}s")
    return policy, tokenizer


def export_paper(*, out: Path, seed: int, weights_dtype: str = "float32", precision: str = "float32",
                 overrides: Optional[Dict[str, Dict[str, Any]]] = None, policy=None, tokenizer=None,
                 pixels: str = "float32") -> Dict[str, Any]:
    """Write the paper-size package (`paper_policy`, or the given policy and tokenizer)."""
    t0 = time.time()
    if policy is None:
        policy, tokenizer = paper_policy(seed, overrides)
    # Statistics of the synthetic data stand in: the package must carry normalisation for each embodiment.
    stats = normalization_stats(generate_dataset(4, seed=seed, image_size=32))
    training = {"tau_distribution": "none (random weights)", "lambda_wm": 1.0, "steps": 0,
                "dataset": "none: random weights for benchmarks", "seed": seed}
    manifest = write_package(policy, tokenizer, stats, out, version=int(Path(out).name) if Path(out).name.isdigit() else 1,
                             description="DUST at the paper's sizes with RANDOM weights, for benchmarks only",
                             training=training, weights_dtype=weights_dtype, precision=precision, pixels=pixels)
    problems = validate_package(out)
    if problems:
        raise SystemExit("exported package is invalid:\n  " + "\n  ".join(problems))
    log(f"paper package written to {out} in {time.time() - t0:.0f}s: " +
        ", ".join(f"{n} {(Path(out) / n).stat().st_size / 1e9:.3f} GB" for n in manifest["files"]))
    return manifest
