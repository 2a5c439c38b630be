"""Which nodes are alive and what each has loaded.

A node is alive while it keeps talking to the gateway (poll, result or heartbeat) within
``limits.node_timeout_s``. The gateway never dials a node, so silence is the only sign
of death it gets; the reaper in :mod:`.queues` acts on it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from ..wire import Device, DeviceStats, NodeInfo

__all__ = ["NodeRecord", "Registry"]


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
        )


class Registry:
    def __init__(self, node_timeout_s: float) -> None:
        self.node_timeout_s = node_timeout_s
        self.nodes: dict[str, NodeRecord] = {}

    def add(self, name: str, site: str, host: str, devices: list[Device]) -> NodeRecord:
        rec = NodeRecord(id=uuid.uuid4().hex[:16], name=name, site=site, host=host, devices=devices)
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
