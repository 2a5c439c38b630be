"""What a task family is: everything the hive knows about one kind of task, in one object.

A family is the one place that says, for its task name: which runner serves it (and so
its input and output Structs), how an ensemble combines its members' answers, how
``/auto`` recognises a request for it and builds the call, which evaluation metrics
apply, and which OpenAI-compatible route it backs. The rest of the hive asks the family
instead of comparing task names, so adding a task is adding one family (a module here,
or a third party's through the ``hive_task_families`` hook).

Every optional part defaults to "not supported", so a third party declares only what its
task does. The built-in families name what they leave out in ``unsupported``;
tests/test_families.py checks that each part is either implemented or listed there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Literal, Protocol

from ..auto.parse import Part
from ..ensemble import Rule
from ..errors import EnsembleError
from ..manifests import Manifest, Metric
from ..runners.base import Runner

__all__ = ["OpenAIRoute", "PARTS", "RouterRole", "Router", "Shape", "TaskFamily"]

Shape = Literal["text", "series", "record", "ranking"]
"""What a request's payload looks like to /auto before any model reads it."""
RouterRole = Literal["embedder", "language_id"]
"""What /auto's router itself calls the catalog for: request vectors, a text's language."""
OpenAIRoute = Literal["embeddings", "chat"]
"""``/v1/embeddings`` or ``/v1/chat/completions``."""

PARTS = ("ensemble", "auto", "metrics", "openai")
"""The optional parts of a family; the runner is the one part every family must have."""


class Router(Protocol):
    """What a family may ask of /auto's router when it refines a choice."""

    served: Callable[[str], bool]
    """Whether a node holds that version now."""
    language: Callable[[str], Awaitable[str | None]] | None
    """The catalog's language identifier, when it has one."""


class TaskFamily:
    """One task family. Subclass it, set ``name`` and ``runner``, override what the task supports."""

    name: ClassVar[str]
    """The manifest's ``task``."""
    runner: ClassVar[type[Runner]]
    """Serves it on a node; its ``input_type``/``Output`` are the function's JSON Schema.
    Its module must not import torch at import time: the gateway imports it for schemas."""
    unsupported: ClassVar[frozenset[str]] = frozenset()
    """Parts of :data:`PARTS` this family declares it does not support (built-ins must say)."""

    # ---- ensembles ----------------------------------------------------------------------
    combine_rules: ClassVar[frozenset[Rule]] = frozenset()
    """Rules an ensemble of this task may declare; empty: its outputs cannot be combined."""

    def combine(self, rule: Rule, outputs: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
        """One output in the members' own shape. ``weights`` are already normalised (equal
        unless ``score_weighted``); ``outputs`` holds at least one answer."""
        raise EnsembleError(f"outputs of task {self.name!r} cannot be combined")

    # ---- /auto --------------------------------------------------------------------------
    auto_shape: ClassVar[Shape | None] = None
    """The payload shape /auto routes here; None: /auto never chooses this task's experts."""
    auto_general: ClassVar[bool] = False
    """True for the family whose general model answers when no expert is confident."""
    router_role: ClassVar[RouterRole | None] = None
    """What the router calls a function of this family for, if anything."""

    def recognise(self, text: str) -> dict[str, Any] | None:
        """The payload of this family's shape inside free text, or None. Only families of a
        non-text shape recognise; the first family (in hook order) that does takes the part."""
        return None

    def from_object(self, obj: dict[str, Any]) -> Part | None:
        """A caller-given part object as a part of this family's shape, or None."""
        return None

    def auto_body(self, part: Part, options: dict[str, Any]) -> dict[str, Any]:
        """The expert's input for one part (its own schema validates it later). By default
        a text task's: the part's extracted text, else the part itself."""
        return {"text": part.payload.get("text") or part.text}

    def record_features(self, m: Manifest, by_name: dict[str, Manifest]) -> list[str]:
        """The field names an expert of a record-shaped family takes (an ensemble: its members')."""
        return []

    def asked_for(self, text: str) -> str | None:
        """Why the request asks for this task in so many words (no similarity needed), or None."""
        return None

    async def refine(self, chosen: Manifest, experts: Sequence[Manifest], text: str, payload: dict[str, Any],
                     router: Router) -> tuple[Manifest, str] | None:
        """A better expert of this family for the request than ``chosen`` and why, or None."""
        return None

    def text_body(self, text: str) -> dict[str, Any]:
        """The input that asks a function of this family about one text, for the router (a
        router_role) and the embeddings route, which only have a text to give."""
        raise NotImplementedError(f"task {self.name!r} has no router role or embeddings route")

    def vector_of(self, output: dict[str, Any]) -> list[float]:
        """router_role "embedder" and openai_route "embeddings": the vector in an output."""
        raise NotImplementedError(f"task {self.name!r} has no router role or embeddings route")

    def language_of(self, output: dict[str, Any]) -> str | None:
        """router_role "language_id": the language code in an output."""
        raise NotImplementedError(f"task {self.name!r} has no router role")

    # ---- evaluation ---------------------------------------------------------------------
    metrics: ClassVar[frozenset[Metric]] = frozenset()
    """The evaluation metrics that score this task's outputs; empty: it has no gate."""

    # ---- OpenAI-compatible routes -------------------------------------------------------
    openai_route: ClassVar[OpenAIRoute | None] = None
    """The OpenAI-compatible route its functions answer, if any."""

    def __repr__(self) -> str:
        return f"<task family {self.name!r} ({type(self).__module__})>"

