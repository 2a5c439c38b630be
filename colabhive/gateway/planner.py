"""Placement: which node holds which model version, planned by the gateway.

Every node gets a replica of every live version it is willing to host (its
``node.functions``, or anything) and can fit: a device of a kind the manifest accepts,
offering one of its dtypes, with the memory it needs still free after what was placed
there before it (no overcommit). Versions are placed most important first (preferred,
then ready, then candidates; bigger models first within a state), so when memory runs
out it is the candidates that wait. Planning a node depends only on that node and the
catalog, so a node joining or leaving never reshuffles the others.

A version placed nowhere keeps the reason, in words a deployer can act on ("needs
24576 MB on cuda or xpu; the largest free such device has 16384 MB"), for the 503 a
caller gets and for ``GET /v1/fn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dispatch.node_registry import NodeRecord
from ..manifests import Manifest
from ..registry.lifecycle import RANK
from ..wire import Device, Placement

__all__ = ["Plan", "plan_hive"]


@dataclass(slots=True)
class Plan:
    hosting: dict[str, list[Placement]] = field(default_factory=dict)
    """node id → what it should hold."""
    reasons: dict[str, str] = field(default_factory=dict)
    """ref → why no node holds it."""
    used: dict[tuple[str, str], int] = field(default_factory=dict)
    """(node id, device id) → memory the placed models need there, in MB."""


def _wanted(m: Manifest, wants: frozenset[str]) -> bool:
    return not wants or m.name in wants or m.ref in wants


def _fits(m: Manifest, d: Device, free: dict[str, int]) -> str | None:
    """The dtype ``m`` would run in on ``d``; None when it cannot go there."""
    if d.kind not in m.hardware.device_kinds:
        return None
    dtype = next((t for t in m.hardware.dtypes if t in d.dtypes), None)
    if dtype is None:
        return None
    need = m.hardware.min_memory_mb // max(1, m.hardware.devices)
    if d.memory_mb and need > free[d.id]:
        return None
    return dtype


def _place_on(m: Manifest, devices: list[Device], free: dict[str, int]) -> Placement | None:
    """Kinds in the manifest's order of preference; within a kind, the device with most room."""
    for kind in m.hardware.device_kinds:
        options = [(d, t) for d in devices if d.kind == kind and (t := _fits(m, d, free)) is not None]
        if len(options) < m.hardware.devices:
            continue
        options.sort(key=lambda o: -(free[o[0].id] if o[0].memory_mb else 1 << 40))
        chosen = options[: m.hardware.devices]
        need = m.hardware.min_memory_mb // max(1, m.hardware.devices)
        for d, _ in chosen:
            if d.memory_mb:
                free[d.id] -= need
        return Placement(ref=m.ref, device=",".join(d.id for d, _ in chosen), dtype=chosen[0][1])
    return None


def _order(versions: list[tuple[Manifest, str]]) -> list[tuple[Manifest, str]]:
    return sorted(versions, key=lambda v: (-RANK[v[1]], -v[0].hardware.min_memory_mb, v[0].ref))


def plan_node(
    node: NodeRecord, versions: list[tuple[Manifest, str]], wants: frozenset[str], used: dict[tuple[str, str], int]
) -> list[Placement]:
    free = {d.id: d.memory_mb for d in node.devices}
    out = []
    for m, state in _order(versions):
        if state == "retired" or not _wanted(m, wants):
            continue
        p = _place_on(m, node.devices, free)
        if p is not None:
            out.append(p)
    for d in node.devices:
        if d.memory_mb:
            used[(node.id, d.id)] = d.memory_mb - free[d.id]
    return out


def _reason(m: Manifest, nodes: list[NodeRecord], wants: dict[str, frozenset[str]], plan: Plan) -> str:
    if not nodes:
        return "no node is connected to the hive"
    willing = [n for n in nodes if _wanted(m, wants.get(n.id, frozenset()))]
    if not willing:
        return f"none of the {len(nodes)} connected node(s) is configured to host it (node.functions)"
    hw = m.hardware
    kinds = " or ".join(hw.device_kinds)
    of_kind = [(n, d) for n in willing for d in n.devices if d.kind in hw.device_kinds]
    if not of_kind:
        have = sorted({d.kind for n in willing for d in n.devices})
        return f"it needs a {kinds} device; the connected nodes have {', '.join(have) or 'no devices'}"
    with_dtype = [(n, d) for n, d in of_kind if any(t in d.dtypes for t in hw.dtypes)]
    if not with_dtype:
        offered = sorted({t for _, d in of_kind for t in d.dtypes})
        return f"it needs {' or '.join(hw.dtypes)} on {kinds}; those devices offer {', '.join(offered)}"
    if hw.devices > 1 and not any(
        sum(1 for d in n.devices if d.kind in hw.device_kinds) >= hw.devices for n in willing
    ):
        return f"it needs {hw.devices} {kinds} devices on one node; no connected node has that many"
    best, where = -1, ""
    for n, d in with_dtype:
        free = d.memory_mb - plan.used.get((n.id, d.id), 0)
        if free > best:
            best, where = free, f"{n.name} {d.id}"
    return f"it needs {_mem(hw.min_memory_mb)} on {kinds}; the largest free such device has {_mem(best)} ({where})"


def _mem(mb: int) -> str:
    return f"{mb / 1024:.3g} GiB" if mb >= 1024 else f"{mb} MB"


def plan_hive(
    nodes: list[NodeRecord], versions: list[tuple[Manifest, str]], wants: dict[str, frozenset[str]]
) -> Plan:
    """The whole plan: each live node's hosting, and a reason for every version placed nowhere."""
    plan = Plan()
    for n in nodes:
        plan.hosting[n.id] = plan_node(n, versions, wants.get(n.id, frozenset()), plan.used)
    placed = {p.ref for ps in plan.hosting.values() for p in ps}
    for m, state in versions:
        if state != "retired" and m.ref not in placed:
            plan.reasons[m.ref] = _reason(m, nodes, wants, plan)
    return plan
