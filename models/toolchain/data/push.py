"""Reader of the MuJoCo push task's recorded episodes (written by bench/push/record.ts, format in
sim/push/src/dataset.ts): `index.json` plus one little-endian .bin per episode holding each camera's frames,
the state and the expert's actions at every control step.

Each episode implements the Episode protocol of episodes.py; the arrays are memory-mapped, so a dataset of
hundreds of episodes costs page cache, not process memory, until a batch touches them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

FORMAT = "dust-push-episodes/1"
_DTYPES = {"uint8": np.dtype("<u1"), "float32": np.dtype("<f4")}


class PushEpisode:
    """One recorded demonstration; `seed` is the layout seed it was recorded from."""

    def __init__(self, directory: Path, entry: Dict, cameras: Sequence[str]) -> None:
        self.embodiment: str = entry["embodiment"]
        self.instruction: str = entry["instruction"]
        self.seed: int = int(entry["seed"])
        self.perturbed: bool = bool(entry["perturbed"])
        path = directory / entry["file"]

        def array(name: str) -> np.ndarray:
            ref = entry["arrays"][name]
            dtype = _DTYPES[ref["dtype"]]
            count = int(np.prod(ref["shape"]))
            return np.memmap(path, dtype=dtype, mode="r", offset=int(ref["offset"]), shape=(count,)).reshape(ref["shape"])

        self._frames = {cam: array(f"frames/{cam}") for cam in cameras}
        self._state = np.asarray(array("state"), dtype=np.float32)
        self._actions = np.asarray(array("actions"), dtype=np.float32)
        if not (len(self._state) == len(self._actions) == int(entry["length"])):
            raise ValueError(f"{path}: arrays disagree with the episode length {entry['length']}")

    @property
    def length(self) -> int:
        return int(self._state.shape[0])

    @property
    def state(self) -> np.ndarray:
        return self._state

    @property
    def actions(self) -> np.ndarray:
        return self._actions

    def frame(self, camera: str, t: int) -> np.ndarray:
        return np.array(self._frames[camera][t])  # a writable copy, as torch.from_numpy wants


class PushDataset:
    """index.json and its episodes."""

    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        index_path = directory / "index.json"
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path} not found: record the episodes first (npm run push:record)")
        index = json.loads(index_path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(f"{index_path}: format {index.get('format')!r}, expected {FORMAT!r}")
        self.directory = directory
        self.image_size: int = int(index["image_size"])
        self.cameras: List[str] = list(index["cameras"])
        self.control_dt_s: float = float(index["control_dt_s"])
        self.embodiments: Dict[str, Dict] = index["embodiments"]
        self.instructions: List[str] = list(index.get("instructions", []))
        self.episodes: List[PushEpisode] = [PushEpisode(directory, e, self.cameras) for e in index["episodes"]]

    def steps(self) -> int:
        return sum(ep.length for ep in self.episodes)
