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
    "Calibration",
    "Chunk",
    "ChunkBatch",
    "Device",
    "DeviceCalibration",
    "DeviceStats",
    "ErrorBody",
    "Heartbeat",
    "HeartbeatReply",
    "HeldAdapter",
    "Placement",
    "NodeInfo",
    "PollReply",
    "PollRequest",
    "RegisterReply",
    "RegisterRequest",
    "SiteProfile",
    "TaskAssignment",
    "TaskChunk",
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
    """The dtypes it runs natively, in the plugin's order; a plugin leaves out those it would
    only emulate (slower than fp32), and says why in ``dtype_notes``."""
    capabilities: list[str] = []
    dtype_notes: list[str] = []
    """Why a dtype is or is not offered ("bf16: avx512_bf16"), for people reading /v1/nodes."""

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
    allowed: Annotated[list[str], Meta(max_length=1024)] = []
    """The node's ``node.functions``: names or refs its operator limited it to (empty = any).
    A gateway that plans placement must not ask it for anything else."""


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
    catalog: int = 0
    """The catalog generation ``manifests`` belong to (heartbeats send it back)."""


class TaskResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: Annotated[str, Meta(min_length=1, max_length=64)]
    output: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    """The output JSON; ``null`` when ``error`` is set (msgspec cannot decode Raw in a union)."""
    error: ErrorBody | None = None
    run_ms: float = 0.0
    batch_size: int = 1
    energy_j: float | None = None
    """This task's share of the device energy its batch used (None: the plugin reports none)."""
    energy_estimated: bool = False
    """True when the energy is power × time or the plugin's own estimate, not a hardware counter."""
    dtype: str = ""
    """The dtype the model ran in (``X-Hive-Dtype``)."""


class PollRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    functions: Annotated[list[str], Meta(max_length=1024)] = []
    """Function names this node has loaded and will run."""
    max_items: Annotated[int, Meta(ge=0, le=4096)] = 1
    wait_ms: Annotated[int, Meta(ge=0, le=120_000)] = 20_000
    results: Annotated[list[TaskResult], Meta(max_length=4096)] = []
    room: Annotated[dict[str, Annotated[int, Meta(ge=0)]], Meta(max_length=1024)] = {}
    """Most tasks of each listed function this poll may bring (unlisted: no limit but
    ``max_items`` and the manifest's max_batch). A node whose continuous batch is full lists
    it with 0: it still serves the function, it just has no free row now."""


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


class TaskChunk(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One piece of one streamed task's output, in a :class:`ChunkBatch`."""

    task: Annotated[str, Meta(min_length=1, max_length=64)]
    seq: Annotated[int, Meta(ge=0)]
    text: Annotated[str, Meta(max_length=1 << 20)]
    dtype: Annotated[str, Meta(max_length=16)] = ""
    """On a task's first piece: the dtype the node runs the model in (the gateway puts it on
    the stream's ``X-Hive-Dtype`` header, which waits for this piece)."""


class ChunkBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Pieces of several streamed tasks in one post (``/v1/nodes/{id}/chunks``): a node
    decoding 32 streams at once makes 32 pieces per step, and one round trip each would cost
    the gateway more than forwarding them."""

    chunks: Annotated[list[TaskChunk], Meta(max_length=4096)]


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
    catalog: int = 0
    """The gateway's catalog generation (bumped when a trained version joins it)."""
    manifests: list[msgspec.Raw] | None = None
    """Every live manifest again, sent when the node's ``catalog`` is behind the gateway's."""


class HeldAdapter(msgspec.Struct, kw_only=True, frozen=True):
    """One LoRA adapter an expert group's runner holds in memory on a node."""

    name: Annotated[str, Meta(max_length=128)]
    bytes: Annotated[int, Meta(ge=0)]
    last_used: float
    """Unix time (the node's clock) a request last used it."""


class Heartbeat(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    functions: Annotated[list[str], Meta(max_length=1024)] = []
    loading: Annotated[list[str], Meta(max_length=1024)] = []
    stats: Annotated[list[DeviceStats], Meta(max_length=256)] = []
    draining: bool = False
    rtt_ms: Annotated[float, Meta(ge=0)] | None = None
    """Moving average of this node's heartbeat round trips (None until one was timed)."""
    catalog: Annotated[int, Meta(ge=0)] = 0
    """The catalog generation whose manifests the node holds (from its last registration or beat)."""
    dtypes: Annotated[dict[str, str], Meta(max_length=1024)] = {}
    """ref → the dtype each loaded model runs in (after its guard: it may be fp32 where bf16 was placed)."""
    dtype_notes: Annotated[dict[str, str], Meta(max_length=1024)] = {}
    """ref → why it runs in that dtype, where that is not simply what was placed."""
    adapters: Annotated[dict[str, Annotated[list[HeldAdapter], Meta(max_length=1024)]], Meta(max_length=1024)] = {}
    """ref → the adapters an expert group holds now, least recently used first (only
    functions that hold adapters; an older node sends none)."""


class SiteProfile(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where a node runs (``nodes/<name>.toml``): what its energy costs in carbon and money."""

    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    region: Annotated[str, Meta(max_length=128)] = ""
    carbon_g_per_kwh: Annotated[float, Meta(ge=0, le=5000)]
    """Grid carbon intensity, grams of CO2(-equivalent) per kWh drawn."""
    price_per_gpu_hour: Annotated[float, Meta(ge=0)] = 0.0
    """What one device-hour costs at this site (0 = free or unknown: no per-price figures)."""


class DeviceCalibration(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One device's measured figures (``colabhive.node.device_bench``), normalised to a reference."""

    device: Annotated[str, Meta(min_length=1, max_length=64)]
    """Device id as the node reported it (``cpu:0``)."""
    name: Annotated[str, Meta(max_length=256)] = ""
    measured_at: float
    """Unix time (the node's clock) when the measurement finished."""
    duration_s: Annotated[float, Meta(ge=0)]
    threads: Annotated[int, Meta(ge=0)] = 0
    """torch intra-op threads the measurement ran with (what serving on this node gets)."""
    matmul_fp32_gflops: Annotated[float, Meta(ge=0)]
    matmul_lowp_gflops: Annotated[float, Meta(ge=0)] | None = None
    lowp_dtype: str | None = None
    """The best low-precision dtype the device lists (bf16/fp16); None when it lists none."""
    memory_gbs: Annotated[float, Meta(ge=0)]
    """Large-tensor copy bandwidth, bytes read + written per second, in GB/s."""
    ref_model: str = ""
    ref_batch: Annotated[int, Meta(ge=0)] = 0
    ref_ms_per_batch: Annotated[float, Meta(ge=0)] | None = None
    ref_tokens_per_s: Annotated[float, Meta(ge=0)] | None = None
    score: Annotated[float, Meta(ge=0)]
    """Geometric mean of the measured figures, each divided by the reference device's."""
    reference: str = ""
    power_w: Annotated[float, Meta(ge=0)] | None = None
    power_estimated: bool = False
    score_per_watt: Annotated[float, Meta(ge=0)] | None = None
    score_per_price: Annotated[float, Meta(ge=0)] | None = None
    """score ÷ the site's price per device-hour; set by the gateway, None when the price is 0."""
    notes: Annotated[list[str], Meta(max_length=32)] = []


class Calibration(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v1/nodes/{id}/calibration``."""

    devices: Annotated[list[DeviceCalibration], Meta(min_length=1, max_length=256)]


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
    site_profile: SiteProfile | None = None
    """The site's profile; None when the gateway has no site profiles configured."""
    rtt_ms: float | None = None
    calibration: list[DeviceCalibration] = []
    """The latest calibration of each device (empty until the node posted one)."""
    calibrate_pending: bool = False
    """An operator asked for a calibration the node has not been told about yet."""
    hosting: list[Placement] | None = None
    """What the gateway's placement wants this node to hold (None: the node chooses)."""
    dtypes: dict[str, str] = {}
    """ref → the dtype each loaded model runs in."""
    dtype_notes: dict[str, str] = {}
    """ref → why, where a guard kept it in fp32 or no guard checked a low-precision copy."""
    adapters: dict[str, list[HeldAdapter]] = {}
    """ref → the LoRA adapters an expert group holds on this node, least recently used first."""
