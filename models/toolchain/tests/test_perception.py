"""The perception yardstick (perception.py): its chunks are the DUST policy's chunks, and the gate compares per
embodiment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.toolchain.data.episodes import BatchBuilder, normalization_stats
from models.toolchain.data.push import PushDataset
from models.toolchain.perception import chunk_table, gate, named_ball, privileged_features
from models.toolchain.push import push_config
from models.toolchain.tokenizer import WordTokenizer

from .test_push import LABEL_NAMES, write_dataset


def test_chunk_table_holds_the_policys_normalised_chunks(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    ds = PushDataset(tmp_path)
    tok = WordTokenizer.build(ds.instructions)
    stats = normalization_stats(ds.episodes)
    builder = BatchBuilder(push_config(ds, len(tok)), tok, stats)
    names = tuple(ds.embodiments)
    table = chunk_table(ds, lambda ep: privileged_features(ep, names, ds.label_names), stats)
    assert len(table.features) == sum(ep.length for ep in ds.episodes)
    # Row 7 + 5 is step 5 of the second episode (paddle3, 3 action columns).
    batch = builder.batch(ds.episodes, [(0, 6), (1, 5)])
    for row, b in ((6, 0), (12, 1)):
        width = int(table.mask[row].sum())
        assert np.allclose(table.chunks[row, :, :width], batch["actions"][b, :, :width].numpy(), atol=1e-6)
    assert table.features.shape[1] == len(LABEL_NAMES) + 3 + 2
    assert table.embodiment.tolist() == [0] * 7 + [1] * 9


def test_named_ball_and_gate() -> None:
    assert named_ball("slide the blue ball into the zone") == 2
    with pytest.raises(ValueError):
        named_ball("push the ball")
    verdict = gate({"a": 0.12, "b": 0.2}, {"a": 0.1, "b": 0.1})
    assert verdict["embodiments"]["a"]["pass"] and not verdict["embodiments"]["b"]["pass"] and not verdict["pass"]
    assert gate({"a": 0.12}, {"a": 0.1})["pass"]
