"""Wire types shared by the gateway, the node runtime and the SDK.

Task inputs and outputs travel as ``msgspec.Raw``: the gateway validates a client's body
once against the task's input Struct and then forwards the bytes untouched to the node,
and hands the node's output bytes straight back to the client, so the hot path never
decodes and re-encodes a 384-float vector.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "Chunk",
    "Device",
    "DeviceStats",
    "ErrorBody",
    "Heartbeat",
    "HeartbeatReply",
    "Placement",
    "NodeInfo",
    "PollReply",
    "PollRequest",
    "RegisterReply",
    "RegisterRequest",
    "TaskAssignment",
    "TaskResult",
]

NodeId = Annotated[str, Meta(min_length=1, max_length=64)]


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """One compute device as a hardware plugin reports it."""

    kind: Annotated[str, Meta(min_length=1, max_length=32)]
    index: int = 0
    name: Annotated[str, Meta(max_length=256)] = ""
    memory_mb: Annotated[int, Meta(ge=0)] = 0
    dtypes: list[str] = msgspec.field(default_factory=lambda: ["fp32"])
    capabilities: list[str] = []

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.index}"


class DeviceStats(msgspec.Struct, kw_only=True):
    """Live figures; None where the hardware cannot tell."""

    device: str
    free_memory_mb: int | None = None
    utilisation: float | None = None
    power_w: float | None = None
    energy_j: float | None = None
    power_estimated: bool = False


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    message: str
    field: str | None = None


class RegisterRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    site: Annotated[str, Meta(max_length=64)] = "local"
    host: Annotated[str, Meta(max_length=256)] = ""
    pid: int = 0
    version: Annotated[str, Meta(max_length=32)] = ""
    devices: Annotated[list[Device], Meta(max_length=256)] = []


class Placement(msgspec.Struct, kw_only=True, frozen=True):
    """One model the gateway wants a node to hold: which version, on which device, in which dtype."""

    ref: str
    """name@version"""
    device: str
    """Device id as the node reported it (``cuda:0``)."""
    dtype: str


class RegisterReply(msgspec.Struct, kw_only=True):
    node_id: str
    node_secret: str
    """Bearer credential for this node's later calls; replaces the join token."""
    heartbeat_s: float
    poll_wait_ms: int
    lease_s: float
    manifests: list[msgspec.Raw]
    """Every live manifest in the catalog (the node needs them to load what it is told to)."""
    hosting: list[Placement] | None = None
    """What the gateway's placement wants this node to hold; None: the node chooses (older gateways)."""


class TaskResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: Annotated[str, Meta(min_length=1, max_length=64)]
    output: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    """The output JSON; ``null`` when ``error`` is set (msgspec cannot decode Raw in a union)."""
    error: ErrorBody | None = None
    run_ms: float = 0.0
    batch_size: int = 1


class PollRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    functions: Annotated[list[str], Meta(max_length=1024)] = []
    """Function names this node has loaded and will run."""
    max_items: Annotated[int, Meta(ge=0, le=4096)] = 1
    wait_ms: Annotated[int, Meta(ge=0, le=120_000)] = 20_000
    results: Annotated[list[TaskResult], Meta(max_length=4096)] = []


class TaskAssignment(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    fn: str
    input: msgspec.Raw
    traceparent: str = ""
    deadline_ms: float = 0.0
    """Milliseconds left before the caller gives up (0 = none)."""
    stream: bool = False
    """Post output text as it is produced (``/v1/nodes/{id}/tasks/{task}/chunks``)."""


class Chunk(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A piece of a streamed task's output text, posted by the node that runs it."""

    seq: Annotated[int, Meta(ge=0)]
    text: Annotated[str, Meta(max_length=1 << 20)]


class PollReply(msgspec.Struct, kw_only=True):
    tasks: list[TaskAssignment] = []
    hosting: list[Placement] | None = None
    """Set when the placement for this node changed: the whole desired set (load what is
    missing, unload what is not listed)."""


class HeartbeatReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool = True
    in_flight: int = 0
    hosting: list[Placement] | None = None
    """The desired set, as in PollReply (sent on every heartbeat: reconciling is idempotent)."""
    calibrate: bool = False
    """An operator asked for a fresh calibration of this node's devices."""


class Heartbeat(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    functions: Annotated[list[str], Meta(max_length=1024)] = []
    loading: Annotated[list[str], Meta(max_length=1024)] = []
    stats: Annotated[list[DeviceStats], Meta(max_length=256)] = []
    draining: bool = False


class NodeInfo(msgspec.Struct, kw_only=True):
    """What ``GET /v1/nodes`` shows of one node."""

    id: str
    name: str
    site: str
    host: str
    devices: list[Device]
    functions: list[str]
    loading: list[str]
    in_flight: int
    last_seen_s: float
    status: Literal["ready", "loading", "draining", "gone"]
    stats: list[DeviceStats] = []
