"""Reader of the MuJoCo push task's recorded episodes (written by bench/push/record.ts, format in
sim/push/src/dataset.ts): `index.json` plus one little-endian .bin per episode holding each camera's frames,
the state and the expert's actions at every control step, and (format 2) the simulator's ground truth at
every step: ball, zone and pusher positions (`labels`, columns named by the index's `label_names`).

Each episode implements the Episode protocol of episodes.py; the arrays are memory-mapped, so a dataset of
hundreds of episodes costs page cache, not process memory, until a batch touches them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

FORMAT = "dust-push-episodes/2"
# Format 1 is format 2 without the labels: still readable, with `labels` None (vision.py refuses such data).
FORMATS = ("dust-push-episodes/1", FORMAT)
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
        self._labels = np.asarray(array("labels"), dtype=np.float32) if "labels" in entry["arrays"] else None
        lengths = {len(self._state), len(self._actions)} | ({len(self._labels)} if self._labels is not None else set())
        if lengths != {int(entry["length"])}:
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

    @property
    def labels(self) -> Optional[np.ndarray]:
        """[T, len(label_names)] simulator ground truth of each frame, or None in a format-1 dataset."""
        return self._labels

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
        if index.get("format") not in FORMATS:
            raise ValueError(f"{index_path}: format {index.get('format')!r}, expected one of {FORMATS!r}")
        self.directory = directory
        self.image_size: int = int(index["image_size"])
        self.cameras: List[str] = list(index["cameras"])
        self.control_dt_s: float = float(index["control_dt_s"])
        self.embodiments: Dict[str, Dict] = index["embodiments"]
        self.instructions: List[str] = list(index.get("instructions", []))
        self.label_names: List[str] = list(index.get("label_names", []))
        self.episodes: List[PushEpisode] = [PushEpisode(directory, e, self.cameras) for e in index["episodes"]]

    def require_labels(self) -> List[str]:
        """The label columns, or a clear refusal for a dataset recorded before the recorder wrote them."""
        if not self.label_names or any(ep.labels is None for ep in self.episodes):
            raise ValueError(f"{self.directory}: no ground-truth labels (format {FORMATS[0]!r}); record it again "
                             "with npm run push:record")
        return self.label_names

    def steps(self) -> int:
        return sum(ep.length for ep in self.episodes)
