"""Optimizers: AdamW, or Muon on the hidden weight matrices with AdamW on everything else.

Muon (``torch.optim.Muon``) orthogonalises each update of a 2-D weight matrix (Newton-Schulz);
it raises on any other shape and is not meant for embeddings, output heads, biases or norms
(their rows are not a linear map between hidden spaces). So a method splits its own
parameters with :func:`hidden_matrix` (or a predicate of its own) and the user only ever
chooses ``adamw`` or ``muon``. Muon runs with ``adjust_lr_fn="match_rms_adamw"``: its update
is rescaled to AdamW's RMS, so one learning rate serves both halves and both optimizers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Optimizers", "build_optimizer", "hidden_matrix"]

_NOT_HIDDEN = re.compile(r"embed|(^|\.)(wte|wpe|lm_head|head|classifier|patcher)(\.|$)")


def hidden_matrix(name: str, param: Any) -> bool:
    """A 2-D weight between hidden spaces: not an embedding, an output head, a bias or a norm."""
    return param.ndim == 2 and not _NOT_HIDDEN.search(name)


class Optimizers:
    """One or two torch optimizers stepped together, with one list of param groups.

    The learning rate is set per step by the trainer on every group (its schedule is a
    function of the step counter, so resuming needs no scheduler state).
    """

    def __init__(self, parts: list[Any], kinds: list[str]) -> None:
        self.parts = parts
        self.kinds = kinds

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for p in self.parts for g in p.param_groups]

    def set_lr(self, lr: float) -> None:
        for g in self.param_groups:
            g["lr"] = lr

    def zero_grad(self) -> None:
        for p in self.parts:
            p.zero_grad(set_to_none=True)

    def step(self) -> None:
        for p in self.parts:
            p.step()

    def state_dict(self) -> dict[str, Any]:
        return {"kinds": list(self.kinds), "parts": [p.state_dict() for p in self.parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["kinds"]) != self.kinds:
            raise ValueError(f"checkpoint optimizer is {state['kinds']}, this run's is {self.kinds}")
        for p, s in zip(self.parts, state["parts"]):
            p.load_state_dict(s)


def build_optimizer(
    named: Iterable[tuple[str, Any]],
    kind: str,
    *,
    lr: float,
    weight_decay: float = 0.0,
    is_hidden: Callable[[str, Any], bool] = hidden_matrix,
) -> Optimizers:
    """AdamW over every trainable parameter, or Muon over the hidden matrices plus AdamW over the rest.

    Biases and norm weights never get weight decay (decaying a scale towards 0 is not a
    regulariser); with muon and no hidden matrix at all it is an error, not a silent AdamW.
    """
    import torch

    params = [(n, p) for n, p in named if p.requires_grad]
    muon = [p for n, p in params if kind == "muon" and is_hidden(n, p)]
    rest = [(n, p) for n, p in params if not (kind == "muon" and is_hidden(n, p))]
    decay = [p for n, p in rest if p.ndim >= 2]
    no_decay = [p for n, p in rest if p.ndim < 2]
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0})
              if g["params"]]
    parts: list[Any] = []
    kinds: list[str] = []
    if kind == "muon":
        if not muon:
            raise ValueError("muon: this model has no hidden weight matrices to apply it to")
        parts.append(torch.optim.Muon(muon, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"))
        kinds.append("muon")
    elif kind != "adamw":
        raise ValueError(f"unknown optimizer {kind!r}: adamw or muon")
    if groups:
        parts.append(torch.optim.AdamW(groups, lr=lr))
        kinds.append("adamw")
    return Optimizers(parts, kinds)
