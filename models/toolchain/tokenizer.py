"""A word-level tokenizer written as a Hugging Face `tokenizer.json` (the server loads it with `tokenizers`).

The file holds a WordLevel model, a Lowercase normalizer and a Whitespace pre-tokenizer, and nothing else: no
post-processor, padding or truncation, because the server pads to `text.max_tokens` with id 0 and builds the
attention mask itself (docs/model-package.md). `WordTokenizer.encode` reproduces what `tokenizers` does with that
file, so the ids seen in training are the ids the server will feed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import numpy as np

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1

# The `Whitespace` pre-tokenizer of HF tokenizers splits on this pattern (pre_tokenizers/whitespace.rs).
_WHITESPACE = re.compile(r"\w+|[^\w\s]+")


def pre_tokenize(text: str) -> List[str]:
    return _WHITESPACE.findall(text.lower())


class WordTokenizer:
    def __init__(self, vocab: Dict[str, int]) -> None:
        if vocab.get(PAD) != PAD_ID or vocab.get(UNK) != UNK_ID:
            raise ValueError("vocab must map [PAD] to 0 and [UNK] to 1")
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise ValueError("vocab ids must be 0..n-1")
        self.vocab = dict(vocab)

    @staticmethod
    def build(texts: Iterable[str]) -> "WordTokenizer":
        """Vocabulary of every word in `texts`, sorted, after the two special tokens (deterministic)."""
        words = sorted({w for t in texts for w in pre_tokenize(t)})
        vocab = {PAD: PAD_ID, UNK: UNK_ID}
        for w in words:
            vocab[w] = len(vocab)
        return WordTokenizer(vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> List[int]:
        return [self.vocab.get(w, UNK_ID) for w in pre_tokenize(text)]

    def encode_padded(self, text: str, max_tokens: int) -> Tuple[np.ndarray, np.ndarray]:
        """ids and attention mask padded (or cut) to max_tokens, as the server builds them."""
        ids = self.encode(text)[:max_tokens]
        out = np.zeros(max_tokens, dtype=np.int64)
        mask = np.zeros(max_tokens, dtype=np.int64)
        out[: len(ids)] = ids
        mask[: len(ids)] = 1
        return out, mask

    def to_json(self) -> Dict:
        special = lambda i, tok: {  # noqa: E731 - the HF schema of an added token
            "id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True,
        }
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [special(PAD_ID, PAD), special(UNK_ID, UNK)],
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": None,
            "decoder": None,
            "model": {"type": "WordLevel", "vocab": self.vocab, "unk_token": UNK},
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")

    @staticmethod
    def load(path: Path) -> "WordTokenizer":
        data = json.loads(Path(path).read_text())
        model = data["model"]
        if model.get("type") != "WordLevel":
            raise ValueError(f"{path}: expected a WordLevel tokenizer, found {model.get('type')}")
        return WordTokenizer(model["vocab"])
