"""Training in pieces (`push-train --stop-after-s` / `--resume`): a run stopped at a step and resumed from its
checkpoint trains exactly the weights of the run that never stopped, with and without loader workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.toolchain.build import fit
from models.toolchain.config import TrainConfig
from models.toolchain.data.episodes import normalization_stats
from models.toolchain.data.push import PushDataset
from models.toolchain.model import DustPolicy
from models.toolchain.tokenizer import WordTokenizer
from models.toolchain.train import resume_state

from .test_push import micro_push_config, write_dataset


def fresh(tmp_path: Path):
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        write_dataset(data)
    ds = PushDataset(data)
    tok = WordTokenizer.build(ds.instructions)
    torch.manual_seed(0)
    return ds, tok, DustPolicy(micro_push_config(ds, len(tok)))


def run_fit(policy, ds, tok, tcfg, out: Path, **kw):
    return fit(policy=policy, tokenizer=tok, stats=normalization_stats(ds.episodes), episodes=ds.episodes,
               heldout=ds.episodes, tcfg=tcfg, device="cpu", out=out, dataset="test", **kw)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_stopped_run_resumes_to_the_same_weights(tmp_path: Path, workers: int) -> None:
    tcfg = TrainConfig(steps=6, batch_size=4, lr=1e-3, log_every=2, seed=0, loader_workers=workers)
    ds, tok, policy = fresh(tmp_path)
    whole = tmp_path / "whole.pt"
    run_fit(policy, ds, tok, tcfg, whole)

    ds, tok, policy = fresh(tmp_path)
    piece = tmp_path / "piece.pt"
    # Stops after the first step that ends past 0 s: step 1 of 6.
    assert run_fit(policy, ds, tok, tcfg, piece, stop_after_s=0.0) == {"stopped_at": 1}
    stopped = json.loads(torch.load(str(piece), weights_only=True)["meta"])
    assert stopped["train_config"]["steps"] == 1 and stopped["extra"]["schedule_steps"] == 6

    steps_seen = []
    while True:  # two more pieces of one step, then the rest
        policy, _, _, meta, state = resume_state(piece)
        steps_seen.append(state["step"])
        result = run_fit(policy, ds, tok, tcfg, piece, resume=state, stop_after_s=0.0 if len(steps_seen) < 3 else None)
        if "stopped_at" not in result:
            break
    assert steps_seen == [1, 2, 3]

    want = torch.load(str(whole), weights_only=True)
    got = torch.load(str(piece), weights_only=True)
    assert json.loads(got["meta"])["train_config"]["steps"] == 6
    for name, value in want["state_dict"].items():
        assert torch.equal(value, got["state_dict"][name]), name
    # The loss history is the whole run's, every logged step once.
    assert [h["step"] for h in json.loads(got["meta"])["history"]] == [2, 4, 6]


def test_a_checkpoint_without_training_state_is_refused(tmp_path: Path) -> None:
    from models.toolchain.train import save_checkpoint

    ds, tok, policy = fresh(tmp_path)
    save_checkpoint(tmp_path / "old.pt", policy, tok, normalization_stats(ds.episodes), TrainConfig(steps=1), [], "test")
    with pytest.raises(SystemExit, match="no training state"):
        resume_state(tmp_path / "old.pt")
