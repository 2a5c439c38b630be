"""What the router sees of a part: one function used by the recipe that trains it and the gateway
that serves it, so the two cannot drift apart.

A part becomes one sparse row: its sentence vector (MiniLM through the hive, or the distilled
static table in the gateway) over the text asked for (the whole part, or its instruction without
the payload), optionally followed by hashed word and character n-grams of the same text, which
carry the literal cues an embedding blurs ("vector", "em português", a question mark).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .parse import instruction_of

__all__ = ["CHAR_FEATURES", "WORD_FEATURES", "Featuriser", "hashed_grams"]

WORD_FEATURES = 1 << 13
CHAR_FEATURES = 1 << 14


@dataclass(slots=True)
class Featuriser:
    embedding: str
    """"minilm" (the catalog's embedding function, a node call) or "static" (distilled, in the gateway)."""
    text: str
    """"full", "instruction", or "mixed" (the embedding reads the whole part, the n-grams only its
    instruction: what the payload is about must not pull the part to another task)."""
    ngrams: bool

    @property
    def name(self) -> str:
        return f"{self.embedding}:{self.text}{'+ngrams' if self.ngrams else ''}"

    def text_of(self, part: str) -> str:
        """What the sentence embedding reads."""
        return instruction_of(part) if self.text == "instruction" else part

    def ngram_text_of(self, part: str) -> str:
        return instruction_of(part) if self.text in ("instruction", "mixed") else part

    def grams(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """The part's hashed n-grams as (column, value), columns past the sentence vector's: word
        1–2-grams in the first ``WORD_FEATURES`` columns, character 3–5-grams within word bounds
        in the next ``CHAR_FEATURES``; each block L2-normalised."""
        return hashed_grams(self.ngram_text_of(part))

    def matrix(self, texts: list[str], vectors: np.ndarray) -> Any:
        """Rows for ``texts`` (the parts as written) given their sentence vectors (of :meth:`text_of`):
        what the recipe trains on; the gateway computes the same row block by block."""
        from scipy import sparse

        dense = np.asarray(vectors, dtype=np.float64)
        if not self.ngrams:
            return sparse.csr_matrix(dense)
        cols, vals, ptr = [], [], [0]
        for t in texts:
            c, v = self.grams(t)
            cols.append(c)
            vals.append(v)
            ptr.append(ptr[-1] + len(c))
        grams = sparse.csr_matrix((np.concatenate(vals) if vals else np.zeros(0),
                                   np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64), ptr),
                                  shape=(len(texts), WORD_FEATURES + CHAR_FEATURES))
        return sparse.hstack([sparse.csr_matrix(dense), grams], format="csr")


_WORD = re.compile(r"(?u)\b\w\w+\b")


def _bucket(gram: str, size: int) -> int:
    return zlib.crc32(gram.encode("utf-8")) % size


_LINKERS = frozenset(
    "then and also after that next finally plus first firstly second secondly third lastly please "
    "can could would you me e depois também tambem além disso primeiro segundo terceiro por favor "
    "pode podes y luego también despues después et puis aussi ensuite enfin peux tu".split())
"""Words that join an ask to the one before or soften it ("then", "also", "could you", "depois"):
what follows them is the ask's own verb."""


def leading_word(words: list[str]) -> str | None:
    """The first word of an ask past its linkers and numbering: an imperative's verb ("list",
    "book", "escreve") or a question's word, the strongest single cue to what kind of ask it is."""
    return next((w for w in words if w not in _LINKERS and not w.isdigit()), None)


def hashed_grams(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Stateless (hashing, crc32), so the recipe and the gateway share nothing but this function.
    Besides the word 1–2-grams, the ask's leading word is one more gram of its own (``^list``)."""
    low = text.lower()
    words = _WORD.findall(low)
    counts: dict[int, float] = {}
    lead = leading_word(words)
    for gram in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:])), *((f"^{lead}",) if lead else ())]:
        k = _bucket(gram, WORD_FEATURES)
        counts[k] = counts.get(k, 0.0) + 1.0
    chars: dict[int, float] = {}
    for w in low.split():
        w = f" {w} "
        for n in (3, 4, 5):
            for i in range(max(1, len(w) - n + 1)):
                k = WORD_FEATURES + _bucket(w[i:i + n], CHAR_FEATURES)
                chars[k] = chars.get(k, 0.0) + 1.0
    cols, vals = [], []
    for block in (counts, chars):
        if not block:
            continue
        norm = float(np.sqrt(sum(v * v for v in block.values())))
        cols += list(block)
        vals += [v / norm for v in block.values()]
    return np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=np.float64)
