"""Which node runs a task: an explicit cost over expected latency, carbon and price.

For each node that holds the task's function version, the router estimates

- latency_ms = (tasks queued for that node + tasks it is running + 1) × its measured
  service time per task + its network round trip;
- energy_j = its measured energy per task (or power × service time), and from it
  carbon_g = energy × the site's grid intensity (gCO₂/kWh);
- price = service time × the site's price per GPU-hour;

divides each term by its mean over the candidates (so terms in ms, grams and money can be
weighed together) and picks the lowest weighted sum, with weights per
preference from hive.toml (``X-Hive-Prefer: fast | green | cheap | balanced``). Service
time and energy are measured from the results nodes send back (exponentially weighted),
so routing follows what nodes really deliver. A node that has not run a function yet is
estimated from those that have, scaled by the ratio of their calibrated matmul GFLOP/s in
the dtype each runs it in (so a bf16 copy on an AMX CPU is expected at its bf16 speed). The choice and every input are returned so
the gateway can put them on the task's span.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import RoutingConfig
from .node_registry import NodeRecord

__all__ = ["Router", "SiteFigures", "calibrated_gflops"]

ALPHA = 0.2  # weight of the newest measurement in the moving averages
DEFAULT_SERVICE_MS = 10.0  # before any node has run the function


@dataclass(slots=True, frozen=True)
class SiteFigures:
    carbon_g_per_kwh: float = 0.0
    price_per_hour: float = 0.0


def _ewma(old: float | None, new: float) -> float:
    return new if old is None else (1 - ALPHA) * old + ALPHA * new


def _relative(values: list[float]) -> list[float]:
    """Each value over the candidates' mean: unitless, and bounded (the shares sum to the
    number of candidates), so a term whose absolute values are tiny cannot swamp the others
    through a ratio of two tiny numbers. All-zero terms weigh nothing."""
    mean = sum(values) / len(values) if values else 0.0
    if mean <= 0:
        return [0.0] * len(values)
    return [v / mean for v in values]


def calibrated_gflops(node: NodeRecord, ref: str) -> float | None:
    """GFLOP/s the node's calibration measured for the dtype it runs ``ref`` in, on the device
    it is placed on: the low-precision figure where the model runs in bf16/fp16 (an AMX CPU
    in bf16 is several times its fp32 self), fp32's otherwise; None before any calibration."""
    placed = next((p for p in node.hosting or [] if p.ref == ref), None)
    device = placed.device.split(",")[0] if placed else (node.devices[0].id if node.devices else "")
    cal = node.calibration.get(device)
    if cal is None:
        return None
    dtype = node.dtypes.get(ref) or (placed.dtype if placed else "fp32")
    if dtype != "fp32" and cal.lowp_dtype == dtype and cal.matmul_lowp_gflops:
        return cal.matmul_lowp_gflops
    return cal.matmul_fp32_gflops or None


class Router:
    def __init__(
        self,
        cfg: RoutingConfig,
        site_of: Callable[[str], SiteFigures] = lambda s: SiteFigures(),
        node_of: Callable[[str], NodeRecord | None] = lambda n: None,
    ) -> None:
        self.cfg = cfg
        self.site_of = site_of
        self.node_of = node_of
        """Live node records by id: a node that has not run a function yet is estimated from
        the nodes that have, scaled by the two calibrations (see :meth:`_service`)."""
        self.service_ms: dict[tuple[str, str], float] = {}
        """(node id, ref) → measured run time per task (batch time ÷ batch size)."""
        self.energy_j: dict[tuple[str, str], float] = {}
        """(node id, ref) → measured energy per task."""

    def preference(self, requested: str | None) -> str:
        return requested or self.cfg.default

    def observe(self, node_id: str, ref: str, run_ms: float, batch_size: int, energy_j: float | None) -> None:
        key = (node_id, ref)
        self.service_ms[key] = _ewma(self.service_ms.get(key), run_ms / max(1, batch_size))
        if energy_j is not None:
            self.energy_j[key] = _ewma(self.energy_j.get(key), energy_j)

    def _service(self, node: NodeRecord, ref: str) -> float:
        own = self.service_ms.get((node.id, ref))
        if own is not None:
            return own
        others = [(n, v) for (n, r), v in self.service_ms.items() if r == ref]
        if not others:
            return DEFAULT_SERVICE_MS
        mine = calibrated_gflops(node, ref)
        scaled = []
        for other_id, v in others:
            rec = self.node_of(other_id)
            theirs = calibrated_gflops(rec, ref) if rec is not None else None
            if mine is None or theirs is None:
                break
            scaled.append(v * theirs / mine)  # twice the measured speed: half the time
        else:
            return sum(scaled) / len(scaled)
        return sum(v for _, v in others) / len(others)

    @staticmethod
    def _power_w(node: NodeRecord) -> float | None:
        powers = [s.power_w for s in node.stats if s.power_w is not None]
        return max(powers) if powers else None

    def _energy(self, node: NodeRecord, ref: str, service: float) -> float:
        """Joules per task: measured, else power × service time; 0 when neither is known."""
        measured = self.energy_j.get((node.id, ref))
        if measured:
            return measured
        power = self._power_w(node)
        return power * service / 1000 if power else 0.0

    def estimate(self, node: NodeRecord, ref: str, queued: int, energy: float | None = None) -> dict[str, float]:
        service = self._service(node, ref)
        rtt = float(getattr(node, "rtt_ms", 0.0) or 0.0)
        latency = (queued + node.in_flight + 1) * service + rtt
        if energy is None:
            energy = self._energy(node, ref, service)
        site = self.site_of(node.site)
        return {
            "latency_ms": round(latency, 3),
            "service_ms": round(service, 3),
            "rtt_ms": round(rtt, 3),
            "energy_j": round(energy, 6),
            "carbon_g": energy / 3.6e6 * site.carbon_g_per_kwh,
            "price": service / 3.6e6 * site.price_per_hour,
        }

    def _energies(self, nodes: list[NodeRecord], ref: str) -> tuple[list[float], bool]:
        """Each candidate's joules per task; where any is unknown (a node whose power reads
        0 when idle, a function too quick to measure), service time stands in for all of
        them, i.e. equal power is assumed, so the grid's intensity still decides green."""
        services = [self._service(n, ref) for n in nodes]
        energies = [self._energy(n, ref, s) for n, s in zip(nodes, services)]
        if all(e > 0 for e in energies):
            return energies, False
        return [s / 1000 for s in services], True  # "one watt" each: a proxy, and said so

    def choose(
        self, ref: str, prefer: str | None, nodes: list[NodeRecord], queued: Callable[[str], int]
    ) -> tuple[NodeRecord, dict[str, Any]]:
        """The cheapest node for one task of ``ref``, and why."""
        pref = self.preference(prefer)
        if len(nodes) == 1:  # nothing to weigh: skip the arithmetic on the hot path
            return nodes[0], {"prefer": pref, "node": nodes[0].id, "candidates": 1}
        w = getattr(self.cfg, pref)
        energies, proxy = self._energies(nodes, ref)
        est = [self.estimate(n, ref, queued(n.id), e) for n, e in zip(nodes, energies)]
        lat = _relative([e["latency_ms"] for e in est])
        co2 = _relative([e["carbon_g"] for e in est])
        price = _relative([e["price"] for e in est])
        costs = [w.latency * a + w.carbon * b + w.price * c for a, b, c in zip(lat, co2, price)]
        best = min(range(len(nodes)), key=lambda i: (costs[i], est[i]["latency_ms"]))
        info: dict[str, Any] = {
            "prefer": pref,
            "node": nodes[best].id,
            "site": nodes[best].site,
            "candidates": len(nodes),
            "cost": round(costs[best], 4),
            "energy_proxy": proxy,
            "terms": {n.id: e | {"cost": round(c, 4), "site": n.site} for n, e, c in zip(nodes, est, costs)},
        }
        return nodes[best], info
