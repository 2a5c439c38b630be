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
so routing follows what nodes really deliver. The choice and every input are returned so
the gateway can put them on the task's span.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import RoutingConfig
from .node_registry import NodeRecord

__all__ = ["Router", "SiteFigures"]

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


class Router:
    def __init__(self, cfg: RoutingConfig, site_of: Callable[[str], SiteFigures] = lambda s: SiteFigures()) -> None:
        self.cfg = cfg
        self.site_of = site_of
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

    def _service(self, node_id: str, ref: str) -> float:
        own = self.service_ms.get((node_id, ref))
        if own is not None:
            return own
        others = [v for (n, r), v in self.service_ms.items() if r == ref]
        return sum(others) / len(others) if others else DEFAULT_SERVICE_MS

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
        service = self._service(node.id, ref)
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
        services = [self._service(n.id, ref) for n in nodes]
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
