"""Routing by an explicit cost, in one event loop with the real Dispatcher, NodeRegistry and Router.

Two nodes hold the same function: one near and fast on a dirty grid, one far on a clean
grid. The measured service times, round trips and site figures are set as nodes would
report them; the router must pick by the preference's weights and say why.
"""

from __future__ import annotations

import asyncio

from colabhive.config import RoutingConfig
from colabhive.dispatch import Dispatcher, NodeRegistry, Task
from colabhive.dispatch.routing import Router, SiteFigures
from colabhive.wire import Device, DeviceCalibration, DeviceStats

SITES = {"near": SiteFigures(carbon_g_per_kwh=700.0, price_per_hour=0.9),
         "far": SiteFigures(carbon_g_per_kwh=50.0, price_per_hour=0.3)}


def _hive() -> tuple[Dispatcher, NodeRegistry, Router]:
    reg = NodeRegistry(node_timeout_s=30.0)
    router = Router(RoutingConfig(), lambda site: SITES.get(site, SiteFigures()))
    d = Dispatcher(reg, queue_size=100, lease_s=30.0, max_attempts=2, router=router)
    return d, reg, router


def _node(reg: NodeRegistry, name: str, site: str, rtt_ms: float, power_w: float):  # -> NodeRecord
    rec = reg.add(name, site, "h", [Device(kind="cpu")])
    rec.functions = frozenset({"fn@1"})
    rec.stats = [DeviceStats(device="cpu:0", power_w=power_w)]
    rec.rtt_ms = rtt_ms  # what the node's heartbeats measured
    return rec


def _two_sites(router: Router, reg: NodeRegistry):  # -> (near, far)
    near = _node(reg, "near-node", "near", rtt_ms=1.0, power_w=200.0)
    far = _node(reg, "far-node", "far", rtt_ms=80.0, power_w=200.0)
    for _ in range(5):  # both measured at 20 ms per task
        router.observe(near.id, "fn@1", 20.0, 1, None)
        router.observe(far.id, "fn@1", 20.0, 1, None)
    return near, far


def test_fast_picks_the_near_node_green_the_clean_grid_cheap_the_cheaper_site() -> None:
    d, reg, router = _hive()
    near, far = _two_sites(router, reg)
    picks = {}
    for pref in ("fast", "green", "cheap"):
        t = Task(fn="fn@1", input=b"{}", prefer=pref)
        d.submit(t)
        picks[pref] = t.target
        assert t.route is not None and t.route["prefer"] == pref and t.route["candidates"] == 2
        terms = t.route["terms"]
        assert set(terms) == {near.id, far.id}
        assert terms[far.id]["rtt_ms"] == 80.0 and terms[near.id]["carbon_g"] > 10 * terms[far.id]["carbon_g"]
    assert picks == {"fast": near.id, "green": far.id, "cheap": far.id}


def test_queue_depth_moves_fast_calls_to_the_other_node() -> None:
    d, reg, router = _hive()
    near, far = _two_sites(router, reg)
    targets = []
    for _ in range(10):  # nobody polls: tasks pile up in the near node's share
        t = Task(fn="fn@1", input=b"{}", prefer="fast")
        d.submit(t)
        targets.append(t.target)
    # 20 ms per task: once ~4 wait at the near node, the far one (80 ms away) is sooner
    assert targets[0] == near.id and far.id in targets
    assert targets.count(near.id) >= 4


def test_green_tasks_wait_for_their_node_fast_ones_move_to_an_idle_one() -> None:
    async def go() -> None:
        d, reg, router = _hive()
        near, far = _two_sites(router, reg)
        green = Task(fn="fn@1", input=b"{}", prefer="green")
        d.submit(green)
        assert green.target == far.id
        far.in_flight = 1  # the far node is busy with a batch
        got = await d.poll(near, near.functions, max_items=4, wait_s=0)
        assert got == []  # the near node does not take the far site's green task
        fast = Task(fn="fn@1", input=b"{}", prefer="fast")
        d.submit(fast)
        fast.target = far.id  # as if routed there before the far node got busy
        got = await d.poll(near, near.functions, max_items=4, wait_s=0)
        assert got == [fast]  # an idle node takes a latency-driven task from a busy one
        got = await d.poll(far, far.functions, max_items=4, wait_s=0)
        assert got == [green]

    asyncio.run(go())


def test_a_gone_node_s_queued_tasks_are_routed_again() -> None:
    async def go() -> None:
        d, reg, router = _hive()
        near, far = _two_sites(router, reg)
        t = Task(fn="fn@1", input=b"{}", prefer="green")
        d.submit(t)
        assert t.target == far.id
        far.gone = True
        d.reap(0.0)
        assert t.target == near.id
        got = await d.poll(near, near.functions, max_items=1, wait_s=0)
        assert got == [t]

    asyncio.run(go())


def test_measured_service_time_decides_between_equal_sites() -> None:
    d, reg, router = _hive()
    a = _node(reg, "slow", "near", rtt_ms=1.0, power_w=100.0)
    b = _node(reg, "quick", "near", rtt_ms=1.0, power_w=100.0)
    for _ in range(5):
        router.observe(a.id, "fn@1", 50.0, 1, None)
        router.observe(b.id, "fn@1", 64.0, 8, None)  # a batch of 8 in 64 ms: 8 ms per task
    t = Task(fn="fn@1", input=b"{}")
    d.submit(t)
    assert t.target == b.id and t.route["prefer"] == "fast"


def _calibrated(fp32: float, lowp: float | None) -> DeviceCalibration:
    return DeviceCalibration(device="cpu:0", measured_at=0.0, duration_s=1.0, matmul_fp32_gflops=fp32,
                             matmul_lowp_gflops=lowp, lowp_dtype="bf16" if lowp else None, memory_gbs=10.0,
                             score=1.0)


def test_an_unmeasured_node_is_expected_at_its_calibrated_speed_in_its_dtype() -> None:
    """A node that has not run fn yet: the measured node's time × (its GFLOP/s ÷ the new one's),
    counting the new one's bf16 figure only where it runs fn in bf16."""
    reg = NodeRegistry(node_timeout_s=30.0)
    router = Router(RoutingConfig(), node_of=reg.get)
    old = _node(reg, "old", "near", rtt_ms=0.0, power_w=100.0)
    amx = _node(reg, "amx", "near", rtt_ms=0.0, power_w=100.0)
    old.calibration["cpu:0"] = _calibrated(100.0, None)
    amx.calibration["cpu:0"] = _calibrated(200.0, 800.0)
    router.observe(old.id, "fn@1", 20.0, 1, None)
    amx.dtypes = {"fn@1": "fp32"}
    assert router.estimate(amx, "fn@1", 0)["service_ms"] == 10.0
    amx.dtypes = {"fn@1": "bf16"}
    assert router.estimate(amx, "fn@1", 0)["service_ms"] == 2.5
    amx.calibration.clear()  # no figures: the plain mean of what was measured
    assert router.estimate(amx, "fn@1", 0)["service_ms"] == 20.0
