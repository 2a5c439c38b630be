"""What the dispatcher moves: a Task (one call, from queue to node to result) and its Outcome."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import HiveError

__all__ = ["Outcome", "Task"]


@dataclass(slots=True)
class Outcome:
    """How a task ended: output bytes or an error, plus what the node measured."""

    output: bytes | None
    error: HiveError | None
    node_id: str
    run_ms: float
    batch_size: int
    queued_ms: float
    energy_j: float | None = None
    """The node's share of its batch's device energy (None: its plugin reports none)."""
    energy_estimated: bool = False
    carbon_g: float | None = None
    """energy_j × the node's site's grid intensity (None: energy or site profile unknown)."""
    dtype: str = ""
    """The dtype the model ran in on the node ("" from a node too old to say)."""


@dataclass(slots=True, eq=False)
class Task:
    fn: str
    input: bytes
    traceparent: str = ""
    deadline: float = 0.0
    """time.monotonic() after which nobody waits for the result (0 = no deadline)."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    future: asyncio.Future[Outcome] | None = None
    enqueued_at: float = field(default_factory=time.monotonic)
    handed_at: float = 0.0
    attempts: list[str] = field(default_factory=list)
    node_id: str | None = None
    lease_until: float = 0.0
    durable: bool = False
    """Journaled in SQLite: survives restarts, waits for a node instead of failing fast."""
    cancelled: bool = False
    chunks: asyncio.Queue[str] | None = None
    """Set for a streamed call: pieces of output text the node posts as they are produced."""
    streamed: int = 0
    """Chunks already forwarded to the caller; a streamed task is never re-run after one."""
    dtype: str = ""
    """A streamed task's dtype as its node says, on its first chunk (or, from a node whose
    chunks do not say it, its heartbeat's ``dtypes``): the stream's headers wait for it."""
    prefer: str | None = None
    """The caller's X-Hive-Prefer (None: hive.toml's routing.default)."""
    target: str | None = None
    """The node the router chose; None until some node holds the function."""
    route: dict[str, Any] | None = None
    """Why that node: the cost terms of every candidate (recorded on the task's span)."""

    @property
    def abandoned(self) -> bool:
        return self.cancelled or (self.future is not None and self.future.done())
