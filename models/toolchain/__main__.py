"""CLI: /usr/bin/python3 -m models.toolchain <command> (run from the repository root). See README.md."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import torch

from .config import TrainConfig


def _threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)


def _emit(report, out) -> None:
    import json

    text = json.dumps(report, indent=1)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m models.toolchain", description="DUST model toolchain")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, device=True):
        if device:
            sp.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="training device (default cpu)")
        sp.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (default: PyTorch's choice)")

    def chunk_head_args(sp):
        """What the chunk-head commands (push-privileged, perception-gate) share: the data and the head's training."""
        sp.add_argument("--data", type=Path, default=Path("models/runs/push/data"))
        sp.add_argument("--heldout", type=Path, default=Path("models/runs/push/heldout"))
        sp.add_argument("--steps", type=int, default=4000)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--out", type=Path, default=None, help="also write the JSON here")

    t = sub.add_parser("train", help="train a preset on the synthetic dataset and write a checkpoint")
    t.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    t.add_argument("--out", type=Path, default=Path("models/runs/tiny/checkpoint.pt"))
    t.add_argument("--steps", type=int, default=TrainConfig.steps)
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    t.add_argument("--lr", type=float, default=TrainConfig.lr)
    t.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    t.add_argument("--grad-clip", type=float, default=TrainConfig.grad_clip)
    t.add_argument("--lambda-wm", type=float, default=TrainConfig.lambda_wm)
    t.add_argument("--tau-dist", choices=["beta", "uniform"], default=TrainConfig.tau_distribution)
    t.add_argument("--mode", choices=["joint", "video_only"], default=TrainConfig.mode,
                   help="video_only: world-model loss only, action tokens pure noise at tau_A = 0")
    t.add_argument("--episodes", type=int, default=128, help="synthetic episodes per embodiment")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=int, default=TrainConfig.log_every)
    t.add_argument("--init-from", type=Path, default=None, help="continue from a checkpoint (e.g. after video_only)")
    t.add_argument("--set", action="append", default=[], metavar="PART.FIELD=VALUE",
                   help="override a preset field, e.g. --set denoiser.attention_pattern=self_cross (repeatable)")
    common(t)

    e = sub.add_parser("export", help="checkpoint -> model package (vlm.onnx, denoiser.onnx, manifest.json, tokenizer.json)")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True, help="<repository>/<model-name>/<version>/")
    e.add_argument("--version", type=int, default=None, help="default: the last path component if numeric, else 1")
    e.add_argument("--weights-dtype", choices=["float32", "float16"], default="float32",
                   help="storage of the weights in the ONNX files (computation stays float32)")
    e.add_argument("--precision", choices=["float32", "float16"], default="float32",
                   help="computation of the graphs; float16 also stores the weights as float16 (I/O stays float32)")
    e.add_argument("--pixels", choices=["float32", "uint8"], default="float32",
                   help="element type of the VLM's pixel_values: uint8 takes the resized pixels and normalises them in the graph "
                        "(a quarter of the bytes to the device), float32 takes them normalised by the server")
    e.add_argument("--description", default=None)
    common(e, device=False)

    g = sub.add_parser("golden", help="write parity.json and golden-sampling.json from an existing package")
    g.add_argument("--package", type=Path, default=Path("models/dust-tiny/1"))
    g.add_argument("--out", type=Path, default=Path("test/fixtures/dust-tiny"))
    common(g, device=False)

    b = sub.add_parser("build-tiny", help="train + export + golden for the shipped tiny model")
    b.add_argument("--out", type=Path, default=Path("models/dust-tiny/1"))
    b.add_argument("--fixtures", type=Path, default=Path("test/fixtures/dust-tiny"))
    b.add_argument("--checkpoint", type=Path, default=Path("models/runs/dust-tiny/checkpoint.pt"))
    from .build import TINY_EPISODES_PER_EMBODIMENT, TINY_TRAIN

    b.add_argument("--steps", type=int, default=TINY_TRAIN.steps)
    b.add_argument("--batch-size", type=int, default=TINY_TRAIN.batch_size)
    b.add_argument("--lr", type=float, default=TINY_TRAIN.lr)
    b.add_argument("--episodes", type=int, default=TINY_EPISODES_PER_EMBODIMENT)
    b.add_argument("--seed", type=int, default=TINY_TRAIN.seed)
    b.add_argument("--weights-dtype", choices=["float32", "float16"], default="float16")
    common(b)

    x = sub.add_parser("export-paper", help="random-weight package at the paper's sizes (benchmarks only)")
    x.add_argument("--out", type=Path, default=Path("models/paper/1"))
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--precision", choices=["float32", "float16"], default="float32")
    x.add_argument("--pixels", choices=["float32", "uint8"], default="float32",
                   help="element type of the VLM's pixel_values: uint8 takes the resized pixels and normalises them in the graph "
                        "(a quarter of the bytes to the device), float32 takes them normalised by the server")
    x.add_argument("--set", action="append", default=[], metavar="PART.FIELD=VALUE",
                   help="override a paper-preset field (e.g. smaller widths with the paper's input/output shapes for a dry run)")
    common(x, device=False)

    h = sub.add_parser("half", help="float16 variant of an existing package (weights and computation; I/O float32)")
    h.add_argument("--package", type=Path, required=True)
    h.add_argument("--out", type=Path, required=True, help="<repository>/<model-name>/<version>/")
    h.add_argument("--version", type=int, default=None, help="default: the source package's version")

    px = sub.add_parser("pixels", help="variant of an existing package whose VLM takes uint8 pixels and normalises them")
    px.add_argument("--package", type=Path, required=True)
    px.add_argument("--out", type=Path, required=True, help="<repository>/<model-name>/<version>/")
    px.add_argument("--version", type=int, default=None, help="default: the source package's version")

    from .push import PUSH_LAYOUTS_PER_EMBODIMENT, PUSH_TRAIN

    def push_schedule(sp):
        sp.add_argument("--steps", type=int, default=PUSH_TRAIN.steps)
        sp.add_argument("--batch-size", type=int, default=PUSH_TRAIN.batch_size)
        sp.add_argument("--lr", type=float, default=PUSH_TRAIN.lr)
        sp.add_argument("--loader-workers", type=int, default=0,
                        help="processes building batches ahead (a GPU run wants several; changes the sample order)")
        sp.add_argument("--seed", type=int, default=PUSH_TRAIN.seed)

    bp = sub.add_parser("build-push", help="record the MuJoCo push task with node, train DUST / no-WM / weak, "
                                           "export models/push-repo/dust-push/{1,2,3}")
    bp.add_argument("--repository", type=Path, default=Path("models/push-repo"))
    bp.add_argument("--runs", type=Path, default=Path("models/runs/push"),
                    help="dataset and checkpoints (git-ignored); an existing dataset is reused")
    bp.add_argument("--layouts", type=int, default=PUSH_LAYOUTS_PER_EMBODIMENT,
                    help="layouts per embodiment (each recorded once per ball named)")
    push_schedule(bp)
    bp.add_argument("--jobs", type=int, default=1, help="training runs at once (one process each)")
    common(bp)

    pe = sub.add_parser("push-export", help="export the push runs' checkpoints (dust, no-wm, weak) as dust-push 1-3")
    pe.add_argument("--repository", type=Path, default=Path("models/push-repo"))
    pe.add_argument("--runs", type=Path, default=Path("models/runs/push"))
    pe.add_argument("--step", type=int, default=0, help="export both runs' step-N snapshots instead of their final checkpoints")
    pe.add_argument("--weak-step", type=int, default=0, help="version 3 is the DUST run's step-N snapshot")
    pe.add_argument("--weak", type=Path, default=None, help="version 3 is this checkpoint instead")
    pe.add_argument("--weak-label", default="", help="with --weak: which run it comes from, for the manifest")

    pt = sub.add_parser("push-train", help="one build-push training run (build-push starts these)")
    pt.add_argument("--variant", choices=["dust", "no-wm", "action-only"], required=True,
                    help="dust: lambda_WM = 1; no-wm: lambda_WM = 0; action-only: no future stream at all (GR00T-N1 style)")
    pt.add_argument("--data", type=Path, required=True)
    pt.add_argument("--heldout", type=Path, required=True)
    pt.add_argument("--runs", type=Path, required=True)
    push_schedule(pt)
    pt.add_argument("--weak-step", type=int, default=0, help="dust only: also save a checkpoint at this step")
    pt.add_argument("--encoder", type=Path, default=None,
                    help="a push-encoder checkpoint: the VLM's vision tower, frozen, and the world-model target")
    pt.add_argument("--vlm", action="append", default=[], metavar="FIELD=VALUE",
                    help="replace a VLM stand-in field (vision_width, vision_layers, patch_size, ...); repeatable")
    pt.add_argument("--prefix-conditioning", action="store_true",
                    help="train the action stream with committed prefixes given clean (per-position flow times), "
                         "so the package answers real-time chunking's `condition` method")
    pt.add_argument("--prefix-fraction", type=float, default=PUSH_TRAIN.prefix_fraction,
                    help="with --prefix-conditioning: the share of rows trained with a prefix")
    pt.add_argument("--prefix-max-delay", type=int, default=PUSH_TRAIN.prefix_max_delay,
                    help="with --prefix-conditioning: the longest prefix trained (uniform over 1..N)")
    pt.add_argument("--frozen-token-cache", action="store_true",
                    help="with --encoder: run the frozen tower once over every frame before training and train on its "
                         "tokens (TrainConfig.frozen_token_cache; faster, same function, not the same bits)")
    pt.add_argument("--stop-after-s", type=float, default=None,
                    help="stop after this many seconds with a resumable checkpoint (exit 75); for hosts lent by the call")
    pt.add_argument("--resume", type=Path, default=None,
                    help="continue the run of this checkpoint to the end of its schedule (its options win over "
                         "--steps and the others; the result is the weights of a run that never stopped)")
    common(pt)

    pp = sub.add_parser("push-privileged", help="held-out first-4 action MSE of a chunk head on the simulator's ground "
                                                "truth (the perception gate's reference), an image-free head and the mean chunk")
    chunk_head_args(pp)
    common(pp, device=False)

    pv = sub.add_parser("push-encoder", help="pretrain a vision tower on the push task's ground truth (ball, zone, "
                                             "pusher positions) and write it as a frozen encoder for push-train --encoder")
    pv.add_argument("--arch", choices=["conv", "vit4"], default="conv")
    pv.add_argument("--data", type=Path, default=Path("models/runs/push/data"))
    pv.add_argument("--heldout", type=Path, default=Path("models/runs/push/heldout"))
    pv.add_argument("--steps", type=int, default=3000)
    pv.add_argument("--batch-size", type=int, default=64)
    pv.add_argument("--lr", type=float, default=2e-3)
    pv.add_argument("--seed", type=int, default=0)
    pv.add_argument("--out", type=Path, default=Path("models/runs/push/encoder.pt"))
    common(pv, device=False)

    pg = sub.add_parser("perception-gate", help="a chunk head on a frozen encoder's features vs the privileged "
                                                "head (push-privileged --out): pass when within 25%% per embodiment")
    pg.add_argument("--encoder", type=Path, required=True)
    pg.add_argument("--reference", type=Path, required=True, help="push-privileged's JSON")
    chunk_head_args(pg)
    common(pg, device=False)

    pd = sub.add_parser("push-diagnose", help="a push policy (checkpoint or package) on held-out episodes: world-model "
                                              "target check, oracle gap, first-4 action MSE, input sensitivity")
    src = pd.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path)
    src.add_argument("--package", type=Path)
    pd.add_argument("--heldout", type=Path, default=Path("models/runs/push/heldout"))
    pd.add_argument("--reference", type=Path, default=None, help="push-privileged's JSON: adds the perception gate")
    pd.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    common(pd, device=False)

    v = sub.add_parser("validate", help="check a package the way the server's loader does")
    v.add_argument("package", type=Path)

    args = p.parse_args(argv)
    # The TorchScript exporter warns about every constant it folds from a traced size; the exported graphs are
    # checked against the contract instead.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message=".*shape inference of prim::Constant.*")
    if hasattr(args, "threads"):
        _threads(args.threads)

    from . import build

    if args.cmd == "train":
        tcfg = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
            grad_clip=args.grad_clip, lambda_wm=args.lambda_wm, tau_distribution=args.tau_dist, mode=args.mode,
            seed=args.seed, log_every=args.log_every,
        )
        build.run_train(preset_name=args.preset, tcfg=tcfg, device=args.device, out=args.out,
                        episodes_per_embodiment=args.episodes, init_from=args.init_from,
                        overrides=build.parse_overrides(args.set))
    elif args.cmd == "export":
        version = args.version if args.version is not None else (int(args.out.name) if args.out.name.isdigit() else 1)
        build.run_export(checkpoint=args.checkpoint, out=args.out, version=version, weights_dtype=args.weights_dtype,
                         description=args.description, precision=args.precision, pixels=args.pixels)
    elif args.cmd == "golden":
        build.run_golden(package=args.package, out=args.out)
    elif args.cmd == "build-tiny":
        build.build_tiny(out=args.out, fixtures=args.fixtures, device=args.device, steps=args.steps,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         episodes_per_embodiment=args.episodes, checkpoint=args.checkpoint,
                         weights_dtype=args.weights_dtype)
    elif args.cmd == "export-paper":
        build.export_paper(out=args.out, seed=args.seed, precision=args.precision, pixels=args.pixels,
                           overrides=build.parse_overrides(args.set))
    elif args.cmd == "half":
        build.run_half(package=args.package, out=args.out, version=args.version)
    elif args.cmd == "pixels":
        build.run_pixels(package=args.package, out=args.out, version=args.version)
    elif args.cmd == "push-export":
        from . import push

        push.export_push(repository=args.repository, runs=args.runs, step=args.step, weak_step=args.weak_step,
                         weak=args.weak, weak_label=args.weak_label)
    elif args.cmd in ("build-push", "push-train"):
        from . import push

        tcfg = dataclasses.replace(push.PUSH_TRAIN, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                   seed=args.seed, loader_workers=args.loader_workers)
        if args.cmd == "build-push":
            push.build_push(repository=args.repository, runs=args.runs, layouts=args.layouts, tcfg=tcfg,
                            device=args.device, jobs=args.jobs, threads=args.threads or 1)
        else:
            tcfg = dataclasses.replace(tcfg, prefix_fraction=args.prefix_fraction, prefix_max_delay=args.prefix_max_delay,
                                       frozen_token_cache=args.frozen_token_cache)
            result = push.train_variant(
                variant=args.variant, data=args.data, heldout=args.heldout, runs=args.runs, tcfg=tcfg,
                device=args.device, weak_step=args.weak_step if args.variant == "dust" else None,
                vlm_fields=dict(item.split("=", 1) for item in args.vlm), encoder=args.encoder,
                prefix_conditioning=args.prefix_conditioning, resume=args.resume, stop_after_s=args.stop_after_s)
            if "stopped_at" in result:
                return 75  # EX_TEMPFAIL: not finished, resume it
    elif args.cmd == "push-privileged":
        from .data.push import PushDataset
        from .perception import HeadConfig, image_free_mse, mean_chunk_mse, privileged_baseline

        data, heldout = PushDataset(args.data), PushDataset(args.heldout)
        hcfg = HeadConfig(steps=args.steps, seed=args.seed)
        _, privileged = privileged_baseline(data, heldout, hcfg)
        report = {"metric": "held-out MSE of the first 4 normalised actions of each chunk", "heldout": str(args.heldout),
                  "privileged": privileged, "image_free": image_free_mse(data, heldout, hcfg),
                  "mean_chunk": mean_chunk_mse(data, heldout), "head_steps": args.steps, "seed": args.seed}
        _emit(report, args.out)
    elif args.cmd == "push-encoder":
        import time

        from .data.push import PushDataset
        from .push import push_config
        from .vision import (EncoderTrainConfig, FrameSource, PushEncoder, encoder_vlm_config, label_errors,
                             save_encoder, train_encoder)

        data, heldout = PushDataset(args.data), PushDataset(args.heldout)
        names = data.require_labels()
        cfg = push_config(data, len(data.instructions) + 8)
        torch.manual_seed(args.seed)
        encoder = PushEncoder(encoder_vlm_config(cfg.vlm, args.arch), len(names))
        t0 = time.time()
        history = train_encoder(encoder, FrameSource(data, cfg), EncoderTrainConfig(
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed), label=args.arch)
        report = {"arch": args.arch, "steps": args.steps, "batch_size": args.batch_size, "train_seconds": round(time.time() - t0),
                  "tower_parameters": sum(p.numel() for p in encoder.tower.parameters()),
                  "heldout_label_rmse": label_errors(encoder, FrameSource(heldout, cfg), names),
                  "final_train_label_mse": history[-1]["label_mse"]}
        save_encoder(args.out, encoder, names, {**report, "data": str(args.data)})
        _emit({**report, "out": str(args.out)}, None)
    elif args.cmd == "perception-gate":
        import json

        from .data.push import PushDataset
        from .perception import HeadConfig
        from .push import push_config
        from .vision import load_encoder, perception_gate

        data, heldout = PushDataset(args.data), PushDataset(args.heldout)
        encoder, _, meta = load_encoder(args.encoder)
        reference = json.loads(args.reference.read_text())["privileged"]
        result = perception_gate(encoder, data, heldout, push_config(data, 8), reference,
                                 HeadConfig(steps=args.steps, seed=args.seed))
        _emit({"encoder": str(args.encoder), "arch": meta.get("arch"), **result}, args.out)
        return 0 if result["gate"]["pass"] else 1
    elif args.cmd == "push-diagnose":
        import json

        import numpy as np

        from .data.episodes import BatchBuilder
        from .data.push import PushDataset
        from .evaluate import (first_actions_mse_sampled, input_sensitivity, oracle_gap, oracle_gate,
                               world_model_target_check)
        from .perception import gate

        if args.checkpoint:
            from .train import load_checkpoint

            policy, tokenizer, stats, _ = load_checkpoint(args.checkpoint)
        else:
            from .package import load_package

            pkg = load_package(args.package)
            policy, tokenizer, stats = pkg["policy"], pkg["tokenizer"], pkg["stats"]
        heldout = PushDataset(args.heldout).episodes
        builder = BatchBuilder(policy.cfg, tokenizer, stats)
        # Oracle gap on 8 evenly spaced steps of every held-out episode (the heldout_errors sample).
        items = [(i, int(t)) for i, ep in enumerate(heldout) for t in np.linspace(0, ep.length - 1, 8).astype(int)]
        # An action-only policy has no future stream to condition on or to score.
        gap = oracle_gap(policy, builder.batch(heldout, items)) if policy.cfg.denoiser.future_stream else None
        report = {"source": str(args.checkpoint or args.package), "heldout": str(args.heldout),
                  "world_model_target": world_model_target_check(policy, builder, heldout),
                  "oracle_gap": {**gap, "gate": oracle_gate(gap)} if gap else "none: the policy has no future stream",
                  "first4_action_mse": first_actions_mse_sampled(policy, builder, heldout),
                  "sensitivity": input_sensitivity(policy, builder, heldout)}
        if args.reference:
            report["perception_gate"] = gate(report["first4_action_mse"], json.loads(args.reference.read_text())["privileged"])
        _emit(report, args.out)
    elif args.cmd == "validate":
        from .package import validate_package

        problems = validate_package(args.package)
        for line in problems:
            print(line)
        print("valid" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
