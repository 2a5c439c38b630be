"""classification: a label for a text, from a linear head on MiniLM sentence vectors.

The model directory (``source.path``) holds only the head: ``head.safetensors`` (``weight``
[labels, 384], ``bias`` [labels]) and ``labels.json``, as the recipes write them. The
encoder is the installed MiniLM package named by ``options.encoder_package``, run through
:class:`MeanPooledEncoder`, so a head sees the same vectors it was trained on and one set
of weights serves every classifier. Safetensors rather than a scikit-learn pickle: loading
a head must not be able to run code.

A batch is one encoder forward pass plus one matrix product, so batching pays off as it
does for embeddings. Scores are softmax probabilities over all labels; ``top`` holds the
best three (fewer if the head has fewer labels), best first.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from .base import Runner, source_path, text_input
from .embedding import MeanPooledEncoder

__all__ = ["ClassificationOutput", "ClassificationRunner", "LabelScore"]

TOP_K = 3
HEAD_FILE = "head.safetensors"
LABELS_FILE = "labels.json"


class LabelScore(msgspec.Struct):
    label: str
    score: float


class ClassificationOutput(msgspec.Struct):
    label: str
    score: float
    top: list[LabelScore]


class ClassificationRunner(Runner):
    Output = ClassificationOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return text_input("ClassificationInput", max_text_chars)

    def load(self) -> None:
        from safetensors.torch import load_file

        head_dir = source_path(self.manifest)
        labels = json.loads((head_dir / LABELS_FILE).read_text())
        tensors = load_file(str(head_dir / HEAD_FILE))
        weight, bias = tensors["weight"], tensors["bias"]
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            raise ValueError(f"{head_dir / LABELS_FILE}: expected a JSON list of label names")
        if weight.ndim != 2 or weight.shape[0] != len(labels) or tuple(bias.shape) != (len(labels),):
            raise ValueError(
                f"{head_dir / HEAD_FILE}: weight {tuple(weight.shape)} / bias {tuple(bias.shape)} "
                f"do not fit {len(labels)} labels"
            )
        self.encoder = MeanPooledEncoder(self.manifest, self.device, self.dtype)
        dim = self.encoder.model.config.hidden_size
        if weight.shape[1] != dim:
            raise ValueError(f"head expects {weight.shape[1]}-dim vectors, the encoder gives {dim}")
        device = self.encoder.torch_device
        self.weight = weight.float().to(device)
        self.bias = bias.float().to(device)
        self.labels: list[str] = labels

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        torch = self.encoder.torch
        vecs = self.encoder.encode([i.text for i in inputs])
        with torch.inference_mode():
            probs = torch.softmax(vecs @ self.weight.T + self.bias, dim=1)
            scores, idx = probs.topk(min(TOP_K, len(self.labels)), dim=1)
        out: list[msgspec.Struct] = []
        for row_scores, row_idx in zip(scores.cpu().tolist(), idx.cpu().tolist()):
            top = [LabelScore(label=self.labels[j], score=s) for j, s in zip(row_idx, row_scores)]
            out.append(ClassificationOutput(label=top[0].label, score=top[0].score, top=top))
        return out
