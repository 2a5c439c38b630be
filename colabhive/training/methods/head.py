"""head: a linear classification head trained over a frozen sentence encoder (MiniLM).

The vectors come from the serving code itself (:class:`MeanPooledEncoder`, as the
``sentiment`` recipe uses), so the head learns on exactly what the classification runner
will feed it. Each step encodes its minibatch afresh (the encoder is frozen and in eval mode,
so the same batch always gives the same vectors) rather than caching: a resumed run then sees
bit-identical inputs without having to save a cache. The head is one linear layer trained
with softmax cross-entropy; it is an output layer, so muon does not apply (AdamW only).

Export is the classification runner's head directory (``head.safetensors`` + ``labels.json``)
with ``options.encoder_package`` naming the base's encoder package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..errors import TrainingError
from .base import Method, TorchTrainer, register

__all__ = ["HeadHParams", "HeadMethod", "HeadTrainer", "METHOD"]


class HeadHParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lr: Annotated[float, Meta(gt=0, le=10)] = 1e-2
    batch_size: Annotated[int, Meta(ge=1, le=4096)] = 32
    max_tokens: Annotated[int, Meta(ge=8, le=512, description="Encoder input cut; served with the same.")] = 64
    weight_decay: Annotated[float, Meta(ge=0)] = 1e-4
    warmup_steps: Annotated[int, Meta(ge=0)] = 0
    schedule: Literal["constant", "cosine"] = "constant"
    max_grad_norm: Annotated[float, Meta(gt=0)] = 10.0
    labels: Annotated[list[str], Meta(min_length=2)] | None = None
    """Label names in output order; default: the labels found in the training rows, sorted."""

    def __post_init__(self) -> None:
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("`hparams.labels` repeats a label")


class HeadTrainer(TorchTrainer):
    def build(self) -> list[tuple[str, Any]]:
        from ...manifests import Manifest
        from ...runners.embedding import MeanPooledEncoder
        from ...wire import Device

        torch, hp = self.torch, self.hparams
        assert self.base is not None
        if not self.base.source.package:
            raise TrainingError(f"base {self.base.ref} must be a packaged encoder (the classification runner "
                                "loads it by options.encoder_package)", field="base")
        found = sorted({str(r["label"]) for r in self.rows})
        self.labels = list(hp.labels) if hp.labels is not None else found
        if unknown := [x for x in found if x not in self.labels]:
            raise TrainingError(f"training rows have labels not in hparams.labels: {unknown[:5]}", field="hparams.labels")
        if len(self.labels) < 2:
            raise TrainingError(f"a classifier needs two labels; the rows have {found}", field="dataset.columns.label")
        self.index = {x: i for i, x in enumerate(self.labels)}
        kind, _, idx = self.device.partition(":")
        enc = Manifest(name="train-encoder", task="embedding", source=self.base.source,
                       options={"max_tokens": hp.max_tokens})
        self.encoder = MeanPooledEncoder(enc, Device(kind=kind, index=int(idx or 0)), self.dtype)
        dim = self.encoder.model.config.hidden_size
        self.head = torch.nn.Linear(dim, len(self.labels)).to(self.device)
        return list(self.head.named_parameters())

    def _vectors(self, texts: list[str]) -> tuple[Any, int]:
        vecs = self.encoder.encode(texts).clone()  # out of inference mode: autograd may save it
        return vecs, int(sum(self.encoder.last_token_counts))

    def loss(self, batch: list[dict[str, Any]]) -> tuple[Any, int]:
        torch = self.torch
        vecs, tokens = self._vectors([str(r["text"]) for r in batch])
        y = torch.tensor([self.index[str(r["label"])] for r in batch], device=vecs.device)
        return torch.nn.functional.cross_entropy(self.head(vecs), y), tokens

    def eval_lines(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"input": {"text": str(r["text"])}, "expected": str(r["label"])} for r in rows]

    def predict(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        torch = self.torch
        out = []
        for k in range(0, len(inputs), 64):
            vecs, _ = self._vectors([i["text"] for i in inputs[k : k + 64]])
            with torch.inference_mode():
                best = self.head(vecs).argmax(1).tolist()
            out += [{"label": self.labels[j]} for j in best]
        return out

    def export(self, out: Path) -> dict[str, Any]:
        from ...recipes.heads import write_head

        assert self.base is not None
        w = self.head.weight.detach().cpu().numpy()
        b = self.head.bias.detach().cpu().numpy()
        write_head(out, w, b, self.labels)
        return {"source": {"path": "."},
                "options": {"encoder_package": self.base.source.package, "max_tokens": self.hparams.max_tokens}}


@register
class HeadMethod(Method):
    name = "head"
    task = "classification"
    HParams = HeadHParams
    Trainer = HeadTrainer
    roles = ("text", "label")
    needs_base = True
    base_tasks = frozenset({"embedding"})
    optimizers = frozenset({"adamw"})
    metrics = frozenset({"accuracy"})

    @classmethod
    def eval_field(cls, metric: str, trainer: Any = None) -> str:
        return "label"


METHOD = HeadMethod
