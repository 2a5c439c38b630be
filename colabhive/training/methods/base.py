"""What every training method provides, and the machinery the gradient-trained ones share.

A :class:`Method` says what a method needs (roles of the dataset's columns, a base model or
not, which optimizers apply) and owns two classes: ``HParams`` (a Struct that decodes the
spec's ``hparams``) and ``Trainer``. A trainer is built from
``(base, rows, columns, hparams, seed=, device=, dtype=, optimizer=, total_steps=)`` and then
driven one :meth:`Trainer.step` at a time by whoever holds the lease, which checkpoints, stops
on budget and exports; no method runs its own loop, so stopping and resuming work the same way
for all of them.

Exact resume: a trainer's whole future depends only on what :meth:`save_checkpoint` writes
(trainable weights, optimizer state, every RNG, the data cursor and the counters), so a run
killed at step k and resumed in a fresh process continues the same loss curve.

This module holds the contracts (Method, Trainer, TorchTrainer) and the data cursor; what a
checkpoint or an export looks like on disk is in :mod:`.checkpoints`, whose names
(``read_state``, ``STATE_FILE``, ``write_export``, ...) are re-exported here.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import numpy as np

from ...manifests import Source
from ...runners.base import LOAD_LOCK
from ..errors import CheckpointError, InvalidSpec, TrainingError
# The on-disk formats live in .checkpoints; re-exported so these names stay importable from here.
from .checkpoints import OPTIMIZER_FILE, STATE_FILE, WEIGHTS_FILE, read_state, write_export  # noqa: F401
from .checkpoints import load_torch_checkpoint, save_torch_checkpoint

if TYPE_CHECKING:
    from ..spec import JobSpec

__all__ = ["BaseModel", "Cursor", "Method", "StepMetrics", "TorchTrainer", "Trainer", "write_export"]

StepMetrics = dict[str, Any]
"""``step, loss, lr, grad_norm, items, tokens, samples_seen, tokens_seen`` (None where it does not apply)."""


@dataclass(frozen=True)
class BaseModel:
    """The model a job starts from: the base function's manifest ref, weights directory and source."""

    ref: str
    dir: Path
    source: Source = field(default_factory=Source)
    options: dict[str, Any] = field(default_factory=dict)


class Cursor:
    """Where training is in the data: epoch ``e`` visits the rows in a permutation seeded by
    ``(seed, e)``, so the position is two integers and no list has to be saved."""

    def __init__(self, n: int, seed: int) -> None:
        if n < 1:
            raise TrainingError("no training rows")
        self.n, self.seed, self.epoch, self.pos = n, seed, 0, 0
        self._order = self._perm()

    def _perm(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n)

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if self.pos == self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._order = self._perm()
            j = min(self.n, self.pos + k - len(out))
            out.extend(int(i) for i in self._order[self.pos : j])
            self.pos = j
        return out

    def state(self) -> dict[str, int]:
        return {"n": self.n, "epoch": self.epoch, "pos": self.pos}

    def restore(self, state: dict[str, int]) -> None:
        if state["n"] != self.n:
            raise CheckpointError(f"checkpoint was taken over {state['n']} rows, this run has {self.n}")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._perm()


class Trainer(ABC):
    """One training run of one method, advanced by :meth:`step`."""

    def __init__(
        self,
        base: BaseModel | None,
        rows: list[dict[str, Any]],
        columns: dict[str, str],
        hparams: Any,
        *,
        seed: int = 0,
        device: str = "cpu",
        dtype: str = "fp32",
        optimizer: str | None = None,
        total_steps: int | None = None,
    ) -> None:
        self.method: Method = METHOD_OF[type(self)]
        self.base, self.hparams, self.seed = base, hparams, seed
        self.device, self.dtype, self.total_steps = device, dtype, total_steps
        self.optimizer_kind = optimizer or self.method.default_optimizer
        self.columns = {role: columns.get(role, role) for role in self.method.roles}
        self.rows = [self.row(r, i) for i, r in enumerate(rows)]
        self.step_count = 0
        self.samples_seen = 0
        self.tokens_seen = 0

    def row(self, raw: dict[str, Any], i: int) -> dict[str, Any]:
        """A dataset row by role (``{"prompt": ..., "response": ...}``); a missing column names it."""
        out = {}
        for role, col in self.columns.items():
            if col not in raw:
                raise TrainingError(f"row {i} has no column {col!r} (role {role!r})", field=f"dataset.columns.{role}")
            out[role] = raw[col]
        return out

    @abstractmethod
    def step(self) -> StepMetrics: ...

    @abstractmethod
    def save_checkpoint(self, path: Path) -> None: ...

    @abstractmethod
    def load_checkpoint(self, path: Path) -> None: ...

    @abstractmethod
    def eval_lines(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Held-out rows as the hive's eval file lines: ``{"input": <runner input>, "expected": ...}``."""

    @abstractmethod
    def predict(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the served version would answer to each runner input, from the model in memory."""

    @abstractmethod
    def export(self, out: Path) -> dict[str, Any]:
        """Write the servable artifact into ``out``; returns the manifest's ``source`` and ``options``."""

    def evaluate(self, rows: list[dict[str, Any]], metric: str) -> float:
        """The metric on held-out rows, scored by the same code as the hive's evaluation gate."""
        from ...registry.evaluation import EvalLine, score

        raw = [self.row(r, i) for i, r in enumerate(rows)]
        lines = self.eval_lines(raw)
        outputs = self.predict([ln["input"] for ln in lines])
        typed = [EvalLine(input=msgspec.Raw(msgspec.json.encode(ln["input"])), expected=ln["expected"],
                          baseline=ln.get("baseline")) for ln in lines]
        return score(metric, outputs, typed, self.method.eval_field(metric, self))

    def counters(self) -> dict[str, int]:
        return {"step": self.step_count, "samples_seen": self.samples_seen, "tokens_seen": self.tokens_seen}


class TorchTrainer(Trainer):
    """A trainer whose model is updated by a torch optimizer on a minibatch loss.

    Subclasses build the model in :meth:`build` (returning the named trainable parameters) and
    compute :meth:`loss` for a list of rows; this class owns the data cursor, the optimizer,
    the learning-rate schedule, gradient clipping and the checkpoint.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import torch

        self.torch = torch
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)  # the trainer's own draws (augmentation)
        self.cursor = Cursor(len(self.rows), self.seed)
        with LOAD_LOCK:  # a node may be loading a model for serving in another thread
            self.named = self.build()
        self.optim = self._optimizer()

    # ---- subclass hooks ----------------------------------------------------------------------
    @abstractmethod
    def build(self) -> list[tuple[str, Any]]:
        """Load or create the model on ``self.device``; the named parameters to train."""

    @abstractmethod
    def loss(self, batch: list[dict[str, Any]]) -> tuple[Any, int]:
        """(mean loss tensor, tokens in the batch — 0 where tokens mean nothing)."""

    def is_hidden(self, name: str, param: Any) -> bool:
        from ..optim import hidden_matrix

        return hidden_matrix(name, param)

    def train_mode(self) -> None:
        """Put the modules that train into training mode (dropout on)."""

    # ---- the loop body -----------------------------------------------------------------------
    def _optimizer(self) -> Any:
        from ..optim import build_optimizer

        hp = self.hparams
        return build_optimizer(self.named, self.optimizer_kind, lr=hp.lr, weight_decay=hp.weight_decay,
                               is_hidden=self.is_hidden)

    def lr_at(self, step: int) -> float:
        """Linear warm-up over ``warmup_steps``, then constant, or cosine to 10 % when the total is known."""
        import math

        hp = self.hparams
        if step < hp.warmup_steps:
            return hp.lr * (step + 1) / hp.warmup_steps
        if self.total_steps and hp.schedule == "cosine":
            t = min(1.0, (step - hp.warmup_steps) / max(1, self.total_steps - hp.warmup_steps))
            return hp.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * t)))
        return hp.lr

    def step(self) -> StepMetrics:
        torch = self.torch
        idx = self.cursor.take(self.hparams.batch_size)
        batch = [self.rows[i] for i in idx]
        lr = self.lr_at(self.step_count)
        self.optim.set_lr(lr)
        self.train_mode()
        loss, tokens = self.loss(batch)
        self.optim.zero_grad()
        loss.backward()
        params = [p for _, p in self.named if p.grad is not None]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.hparams.max_grad_norm)
        self.optim.step()
        self.step_count += 1
        self.samples_seen += len(batch)
        self.tokens_seen += tokens
        return {
            "step": self.step_count,
            "loss": float(loss.detach()),
            "lr": lr,
            "grad_norm": float(grad_norm),
            "items": len(batch),
            "tokens": tokens,
            "samples_seen": self.samples_seen,
            "tokens_seen": self.tokens_seen,
        }

    # ---- checkpoints -------------------------------------------------------------------------
    def buffers(self) -> list[tuple[str, Any]]:
        """Non-parameter tensors that training changes (batch-norm running statistics)."""
        return []

    def trainable_state(self) -> dict[str, Any]:
        state = {n: p.detach().contiguous().cpu() for n, p in self.named}
        state.update({f"buffer:{n}": b.detach().contiguous().cpu() for n, b in self.buffers()})
        return state

    def save_checkpoint(self, path: Path) -> None:
        """Weights (safetensors), optimizer and torch RNG (``optimizer.pt``), then ``state.json``
        last: a directory without it is an interrupted save and is never resumed from."""
        save_torch_checkpoint(self, path)

    def load_checkpoint(self, path: Path) -> None:
        load_torch_checkpoint(self, path)


class Method:
    """A training method: what it needs from a spec and which classes do the work."""

    name: ClassVar[str]
    task: ClassVar[str]
    """The runner that serves what it exports."""
    HParams: ClassVar[type[msgspec.Struct]]
    Trainer: ClassVar[type[Trainer]]
    roles: ClassVar[tuple[str, ...]]
    """Column roles every row must have."""
    needs_base: ClassVar[bool]
    base_tasks: ClassVar[frozenset[str]] = frozenset()
    """Tasks a base function may have (its runner decides which weights it is)."""
    optimizers: ClassVar[frozenset[str]] = frozenset({"adamw", "muon"})
    default_optimizer: ClassVar[str | None] = "adamw"
    metrics: ClassVar[frozenset[str]]
    """The eval metrics that make sense for what it exports."""

    @classmethod
    def eval_field(cls, metric: str, trainer: Trainer | None = None) -> str:
        """The output field the gate scores (``label``, ``forecast``, ``predictions.0.value``)."""
        raise NotImplementedError

    @classmethod
    def check_spec(cls, spec: JobSpec, hparams: Any) -> None:
        """Cross-field checks only the method can make; :class:`InvalidSpec` naming the field."""
        if cls.needs_base and spec.base is None:
            raise InvalidSpec(f"method {cls.name} starts from a base model: name it in `base`", field="base")
        if not cls.needs_base and spec.base is not None:
            raise InvalidSpec(f"method {cls.name} trains from scratch: drop `base`", field="base")
        if spec.optimizer is not None and spec.optimizer not in cls.optimizers:
            why = f"use {' or '.join(sorted(cls.optimizers))}" if cls.optimizers else "it has no gradient optimizer"
            raise InvalidSpec(f"method {cls.name} cannot use optimizer {spec.optimizer!r}: {why}", field="optimizer")
        for role in spec.dataset.columns:
            if role not in cls.roles:
                raise InvalidSpec(f"method {cls.name} has no column role {role!r}; its roles are "
                                  f"{', '.join(cls.roles)}", field=f"dataset.columns.{role}")
        if spec.eval.metric not in cls.metrics:
            raise InvalidSpec(f"metric {spec.eval.metric!r} does not apply to a {cls.task} model; "
                              f"use {', '.join(sorted(cls.metrics))}", field="eval.metric")

    @classmethod
    def split(cls, rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
        """(train, held out): a seeded shuffle, the last ``fraction`` held out."""
        order = np.random.default_rng([seed, 7919]).permutation(len(rows))
        k = max(1, int(round(len(rows) * fraction)))
        if k >= len(rows):
            raise TrainingError(f"eval.split {fraction} leaves no training rows out of {len(rows)}", field="eval.split")
        return [rows[i] for i in order[:-k]], [rows[i] for i in order[-k:]]


METHOD_OF: dict[type, type[Method]] = {}
"""Trainer class → its Method (filled by :func:`register`)."""


def register(method: type[Method]) -> type[Method]:
    METHOD_OF[method.Trainer] = method
    return method
