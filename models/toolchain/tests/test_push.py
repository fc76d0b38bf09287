"""The push task's data path (data/push.py, push.py): the model configuration follows the dataset, batches
carry each embodiment's real widths, and a training run writes its intermediate (weak) checkpoint, whose
manifest record says where the schedule stopped. (test/push-dataset.test.ts checks the reader against files
the TypeScript recorder wrote.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.toolchain.build import fit, training_record
from models.toolchain.config import TrainConfig
from models.toolchain.data.episodes import BatchBuilder, normalization_stats
from models.toolchain.data.push import FORMAT, FORMATS, PushDataset
from models.toolchain.model import DustPolicy
from models.toolchain.push import push_config
from models.toolchain.tokenizer import WordTokenizer

SIZE = 16
EMBODIMENTS = {"pusher2": (4, 2), "paddle3": (3, 3)}


LABEL_NAMES = ["ball_red_x", "ball_red_y", "zone_x", "zone_y", "pusher_x", "pusher_y", "pusher_yaw"]


def write_dataset(directory: Path, lengths=(7, 9), fmt: str = FORMAT) -> None:
    """Two episodes in the recorder's format (sim/push/src/dataset.ts), from a seeded generator; format 1 has no
    labels."""
    rng = np.random.default_rng(0)
    labelled = fmt != FORMATS[0]
    entries = []
    for (name, (sd, ad)), length in zip(EMBODIMENTS.items(), lengths):
        arrays, parts, offset = {}, [], 0
        for key, arr in (
            ("frames/top", rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8)),
            ("frames/gripper", rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8)),
            ("state", rng.normal(size=(length, sd)).astype("<f4")),
            ("actions", rng.normal(size=(length, ad)).astype("<f4")),
            *([("labels", rng.normal(size=(length, len(LABEL_NAMES))).astype("<f4"))] if labelled else []),
        ):
            arrays[key] = {"dtype": "uint8" if arr.dtype == np.uint8 else "float32", "offset": offset, "shape": list(arr.shape)}
            parts.append(arr.tobytes())
            offset += arr.nbytes
        (directory / f"{name}.bin").write_bytes(b"".join(parts))
        entries.append({"file": f"{name}.bin", "embodiment": name, "instruction": f"push the red ball {name}",
                        "seed": 1, "length": length, "perturbed": False, "arrays": arrays})
    index = {"format": fmt, "image_size": SIZE, "cameras": ["top", "gripper"], "control_dt_s": 0.1,
             "instructions": ["push the red ball into the zone", "push the blue ball into the zone"],
             "embodiments": {n: {"state_dim": s, "action_dim": a} for n, (s, a) in EMBODIMENTS.items()},
             "episodes": entries, **({"label_names": LABEL_NAMES} if labelled else {})}
    (directory / "index.json").write_text(json.dumps(index))


def micro_push_config(ds: PushDataset, vocab: int):
    cfg = push_config(ds, vocab)
    vlm = dataclasses.replace(cfg.vlm, patch_size=4, vision_width=16, vision_heads=2, width=32, layers=1, heads=2,
                              max_tokens=8, future_dim=8)
    den = dataclasses.replace(cfg.denoiser, hidden=32, heads=2, timestep_dim=16, timestep_freq_dim=16, action_horizon=4,
                              future_tokens=vlm.future_tokens, future_dim=8, cond_dim=32, cond_tokens=vlm.cond_tokens)
    return dataclasses.replace(cfg, vlm=vlm, denoiser=den)


def test_labels_are_read_and_old_datasets_stay_readable_without_them(tmp_path: Path) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    old.mkdir()
    write_dataset(new)
    write_dataset(old, fmt=FORMATS[0])
    ds = PushDataset(new)
    assert ds.require_labels() == LABEL_NAMES
    assert [ep.labels.shape for ep in ds.episodes] == [(7, len(LABEL_NAMES)), (9, len(LABEL_NAMES))]
    legacy = PushDataset(old)
    assert legacy.episodes[0].labels is None and legacy.episodes[0].actions.shape == (7, 2)
    with pytest.raises(ValueError, match="no ground-truth labels"):
        legacy.require_labels()
    index = json.loads((new / "index.json").read_text())
    (new / "index.json").write_text(json.dumps({**index, "format": "dust-push-episodes/3"}))
    with pytest.raises(ValueError, match="format"):
        PushDataset(new)


def test_config_and_batches_follow_the_dataset(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    ds = PushDataset(tmp_path)
    tok = WordTokenizer.build(ds.instructions)
    cfg = push_config(ds, len(tok))
    assert cfg.vlm.cameras == ("top", "gripper") and cfg.vlm.image_size == SIZE
    assert [(e.name, e.id, e.state_dim, e.action_dim) for e in cfg.embodiments] == [("pusher2", 0, 4, 2), ("paddle3", 1, 3, 3)]
    builder = BatchBuilder(cfg, tok, normalization_stats(ds.episodes))
    batch = builder.batch(ds.episodes, [(0, 6), (1, 0)])
    assert batch["pixel_values"].shape == (2, 2, 3, SIZE, SIZE)
    assert batch["embodiment_id"].tolist() == [0, 1]
    assert batch["action_mask"][:, :4].tolist() == [[1, 1, 0, 0], [1, 1, 1, 0]]
    # The last step's chunk repeats the last action; the state is normalised into [-1, 1].
    stats = builder.stats["pusher2"]["action"]
    last = stats.normalize(ds.episodes[0].actions[-1])
    assert np.allclose(batch["actions"][0, :, :2].numpy(), np.tile(last, (cfg.denoiser.action_horizon, 1)), atol=1e-6)
    assert float(batch["state"].abs().max()) <= 1.0 + 1e-6


def test_fit_writes_the_weak_snapshot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_dataset(data, lengths=(25, 25))
    ds = PushDataset(data)
    tok = WordTokenizer.build(ds.instructions)
    torch.manual_seed(0)
    policy = DustPolicy(micro_push_config(ds, len(tok)))
    tcfg = TrainConfig(steps=4, batch_size=4, lr=1e-3, log_every=2, seed=0)
    fit(policy=policy, tokenizer=tok, stats=normalization_stats(ds.episodes), episodes=ds.episodes,
        heldout=ds.episodes, tcfg=tcfg, device="cpu", out=tmp_path / "final.pt", dataset="test",
        snapshots={2: tmp_path / "weak.pt"})
    weak = torch.load(str(tmp_path / "weak.pt"), weights_only=True)
    final = torch.load(str(tmp_path / "final.pt"), weights_only=True)
    weak_meta, final_meta = json.loads(weak["meta"]), json.loads(final["meta"])
    assert weak_meta["train_config"]["steps"] == 2 and final_meta["train_config"]["steps"] == 4
    assert training_record(weak_meta)["schedule_steps"] == 4
    assert "schedule_steps" not in training_record(final_meta)
    assert "heldout" in training_record(weak_meta)["evaluation"]
    changed = any(not torch.equal(weak["state_dict"][k], final["state_dict"][k]) for k in final["state_dict"])
    assert changed, "training continued after the snapshot"


def test_loader_workers_build_the_batches_their_generator_picks(tmp_path: Path) -> None:
    """With loader workers the batches come from forked processes, in order, built from the picks of their own
    generator; without workers they are drawn from the training generator step by step (the shipped order)."""
    from models.toolchain.data.episodes import all_windows
    from models.toolchain.train import BatchStream, batch_builder_fn

    write_dataset(tmp_path, lengths=(25, 25))
    ds = PushDataset(tmp_path)
    tok = WordTokenizer.build(ds.instructions)
    builder = BatchBuilder(micro_push_config(ds, len(tok)), tok, normalization_stats(ds.episodes))
    windows = all_windows(ds.episodes)
    tcfg = TrainConfig(steps=3, batch_size=5, seed=3, loader_workers=2)
    build = batch_builder_fn(ds.episodes, builder, None)
    stream = BatchStream(ds.episodes, build, tcfg, np.random.default_rng(0))
    got = [next(stream) for _ in range(3)]
    stream.close()
    picks = np.random.default_rng([3, 1])
    for batch in got:
        expected = builder.batch(ds.episodes, [windows[i] for i in picks.integers(len(windows), size=5)])
        assert batch.keys() == expected.keys()
        for key in batch:
            assert torch.equal(batch[key], expected[key]), key
    inline = BatchStream(ds.episodes, build, dataclasses.replace(tcfg, loader_workers=0), np.random.default_rng(9))
    rng = np.random.default_rng(9)
    expected = builder.batch(ds.episodes, [windows[i] for i in rng.integers(len(windows), size=5)])
    assert torch.equal(next(inline)["state"], expected["state"])


def test_vlm_fields_resize_the_vision_tower_and_the_denoiser_follows(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    ds = PushDataset(tmp_path)
    base = push_config(ds, 8)
    wide = push_config(ds, 8, {"vision_width": "32", "patch_size": "2"})
    assert (wide.vlm.vision_width, wide.vlm.patch_size) == (32, 2)
    assert wide.vlm.cond_tokens > base.vlm.cond_tokens
    assert (wide.denoiser.cond_tokens, wide.denoiser.future_tokens) == (wide.vlm.cond_tokens, wide.vlm.future_tokens)
    try:
        push_config(ds, 8, {"vision_depth": "2"})
    except SystemExit as e:
        assert "vision_depth" in str(e)
    else:
        raise AssertionError("an unknown field was accepted")
