"""Which nodes are alive and what each has loaded.

A node is alive while it keeps talking to the gateway (poll, result or heartbeat) within
``limits.node_timeout_s``. The gateway never dials a node, so silence is the only sign
of death it gets; the reaper in :mod:`.queues` acts on it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from ..wire import Device, DeviceCalibration, DeviceStats, HeldAdapter, NodeInfo, Placement, SiteProfile

__all__ = ["NodeRecord", "NodeRegistry"]

JOULES_PER_KWH = 3.6e6


@dataclass(slots=True)
class NodeRecord:
    id: str
    name: str
    site: str
    host: str
    devices: list[Device]
    functions: frozenset[str] = frozenset()
    loading: frozenset[str] = frozenset()
    stats: list[DeviceStats] = field(default_factory=list)
    last_seen: float = field(default_factory=time.monotonic)
    draining: bool = False
    gone: bool = False
    in_flight: int = 0
    batches: int = 0
    max_batch_seen: int = 0
    secret_hash: str = ""
    site_profile: SiteProfile | None = None
    """None when the gateway has no site profiles (carbon and price are then unknown)."""
    allowed: list[str] = field(default_factory=list)
    """The node's own ``node.functions`` limit (empty = any); placement must respect it."""
    rtt_ms: float | None = None
    """The node's moving average of its heartbeat round trips."""
    calibration: dict[str, DeviceCalibration] = field(default_factory=dict)
    """device id → its latest calibration."""
    calibrate_pending: bool = False
    """An operator asked for a calibration; cleared when a heartbeat reply tells the node."""
    hosting: list[Placement] | None = None
    """What placement wants this node to hold (None: the node chooses). Set it with
    :meth:`set_hosting`, which also marks it for the node's next poll reply."""
    hosting_version: int = 0
    hosting_sent: int = 0
    dtypes: dict[str, str] = field(default_factory=dict)
    """ref → the dtype the node runs it in (from heartbeats)."""
    dtype_notes: dict[str, str] = field(default_factory=dict)
    adapters: dict[str, list[HeldAdapter]] = field(default_factory=dict)
    """ref → the LoRA adapters an expert group holds on the node (from heartbeats)."""

    def set_hosting(self, hosting: list[Placement] | None) -> None:
        """Record a new desired set; heartbeat replies carry it always, the next poll reply once."""
        self.hosting = hosting
        self.hosting_version += 1

    def hosting_news(self) -> list[Placement] | None:
        """The desired set if this node has not been sent it in a poll reply yet, else None."""
        if self.hosting_sent == self.hosting_version:
            return None
        self.hosting_sent = self.hosting_version
        return self.hosting

    def carbon_g(self, energy_j: float | None) -> float | None:
        """Grams of CO2 for ``energy_j`` drawn at this node's site (None when either is unknown)."""
        if energy_j is None or self.site_profile is None:
            return None
        return energy_j / JOULES_PER_KWH * self.site_profile.carbon_g_per_kwh

    def info(self, now: float) -> NodeInfo:
        status = "gone" if self.gone else "draining" if self.draining else "loading" if self.loading else "ready"
        return NodeInfo(
            id=self.id,
            name=self.name,
            site=self.site,
            host=self.host,
            devices=self.devices,
            functions=sorted(self.functions),
            loading=sorted(self.loading),
            in_flight=self.in_flight,
            last_seen_s=round(now - self.last_seen, 3),
            status=status,
            stats=self.stats,
            site_profile=self.site_profile,
            rtt_ms=None if self.rtt_ms is None else round(self.rtt_ms, 3),
            calibration=[self.calibration[k] for k in sorted(self.calibration)],
            calibrate_pending=self.calibrate_pending,
            hosting=self.hosting,
            dtypes=self.dtypes,
            dtype_notes=self.dtype_notes,
            adapters=self.adapters,
        )


class NodeRegistry:
    def __init__(self, node_timeout_s: float) -> None:
        self.node_timeout_s = node_timeout_s
        self.nodes: dict[str, NodeRecord] = {}

    def add(
        self, name: str, site: str, host: str, devices: list[Device], site_profile: SiteProfile | None = None
    ) -> NodeRecord:
        rec = NodeRecord(
            id=uuid.uuid4().hex[:16], name=name, site=site, host=host, devices=devices, site_profile=site_profile
        )
        self.nodes[rec.id] = rec
        return rec

    def get(self, node_id: str) -> NodeRecord | None:
        rec = self.nodes.get(node_id)
        return None if rec is None or rec.gone else rec

    def live(self) -> list[NodeRecord]:
        return [n for n in self.nodes.values() if not n.gone]

    def serving(self, fn: str) -> bool:
        return any(fn in n.functions and not n.gone and not n.draining for n in self.nodes.values())

    def loading(self, fn: str) -> bool:
        return any(fn in n.loading and not n.gone for n in self.nodes.values())

    def expire(self, now: float) -> list[NodeRecord]:
        """Mark nodes silent for too long as gone; return them."""
        dead = [n for n in self.nodes.values() if not n.gone and now - n.last_seen > self.node_timeout_s]
        for n in dead:
            n.gone = True
        # forget long-gone records so a flapping hive does not grow without bound
        for n in [n for n in self.nodes.values() if n.gone and now - n.last_seen > 600]:
            del self.nodes[n.id]
        return dead
