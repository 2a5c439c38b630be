"""The catalog's MiniLM, distilled into a table of token vectors the gateway reads in microseconds.

Planning must not cost a model call: one MiniLM forward for a short request is about 20 ms on one
CPU thread here, and the issue's budget for the whole plan is 5 ms. Following Model2Vec (Tulkens
& van Dongen, 2024), ``make models`` passes every token of MiniLM's vocabulary through MiniLM
alone and keeps its mean-pooled output; a request's vector is then the weighted mean of its
tokens' rows. Frequent tokens weigh less (SIF weights, with frequencies from the vocabulary's
own rank order, which WordPiece vocabularies keep), so "the" and "please" do not drown the verb.

It is coarser than MiniLM itself (no context), which is why the router's settings are chosen on
dev between this, MiniLM through the hive, and either with word and character n-grams.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["StaticEmbedder", "TABLE_FILE", "TOKENIZER_FILE"]

TABLE_FILE = "static.safetensors"
TOKENIZER_FILE = "tokenizer.json"


class StaticEmbedder:
    def __init__(self, table: np.ndarray, weights: np.ndarray, tokenizer_file: Path, max_tokens: int = 256) -> None:
        from tokenizers import Tokenizer

        self.table = table.astype(np.float32)
        self.weights = weights.astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)

    @classmethod
    def load(cls, directory: Path) -> StaticEmbedder:
        from safetensors.numpy import load_file

        t = load_file(str(directory / TABLE_FILE))
        return cls(t["table"], t["weights"], directory / TOKENIZER_FILE)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = np.asarray(enc.ids, dtype=np.int64)
            if ids.size == 0:
                continue
            w = self.weights[ids]
            v = (self.table[ids] * w[:, None]).sum(0) / max(float(w.sum()), 1e-9)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-9)
        return out
