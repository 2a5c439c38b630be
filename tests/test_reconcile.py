"""A node follows the gateway's placement: loads what is missing, drops what is not listed,
keeps what matches, and honours the device and dtype it is told.

Unit tests of :mod:`colabhive.node.reconcile` and the model cache (echo models, which load
instantly), then a real :class:`Node` against an in-process fake gateway that answers
with ``hosting`` on registration, heartbeats and polls. No torch, no processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
from colabhive.config import HiveConfig, NodeConfig
from colabhive.manifests import Manifest
from colabhive.node import Node
from colabhive.node.cache import ModelCache
from colabhive.node.energy import EnergyMeter
from colabhive.node.reconcile import diff
from colabhive.wire import (
    Device,
    DeviceStats,
    Heartbeat,
    HeartbeatReply,
    Placement,
    PollReply,
    RegisterReply,
    RegisterRequest,
)

CPU0 = Device(kind="cpu", index=0, name="cpu zero", dtypes=["fp32", "bf16"])
CPU1 = Device(kind="cpu", index=1, name="cpu one", dtypes=["fp32"])


def echo(version: str, name: str = "echo") -> Manifest:
    return Manifest(name=name, version=version, task="echo")


MANIFESTS = {m.ref: m for m in (echo("1.0.0"), echo("2.0.0"), echo("1.0.0", "shout"))}


def place(ref: str, device: str = "cpu:0", dtype: str = "fp32") -> Placement:
    return Placement(ref=ref, device=device, dtype=dtype)


# ---- the pure diff ----------------------------------------------------------------------


def test_diff_loads_missing_unloads_extra_keeps_matching() -> None:
    held = {"echo@1.0.0": ("cpu:0", "fp32"), "shout@1.0.0": ("cpu:0", "fp32")}
    d = diff([place("echo@1.0.0"), place("echo@2.0.0", "cpu:1")], held, MANIFESTS, [CPU0, CPU1])
    assert [(m.ref, dev.id, dt) for m, dev, dt in d.load] == [("echo@2.0.0", "cpu:1", "fp32")]
    assert d.unload == ["shout@1.0.0"]
    assert d.problems == {}


def test_diff_moves_a_model_held_on_the_wrong_device_or_dtype() -> None:
    held = {"echo@1.0.0": ("cpu:0", "fp32"), "echo@2.0.0": ("cpu:0", "fp32")}
    d = diff([place("echo@1.0.0", "cpu:1"), place("echo@2.0.0", "cpu:0", "bf16")], held, MANIFESTS, [CPU0, CPU1])
    assert sorted(d.unload) == ["echo@1.0.0", "echo@2.0.0"]
    assert sorted((m.ref, dev.id, dt) for m, dev, dt in d.load) == [
        ("echo@1.0.0", "cpu:1", "fp32"), ("echo@2.0.0", "cpu:0", "bf16"),
    ]


@pytest.mark.parametrize(
    ("placement", "only", "why"),
    [
        (place("nope@1.0.0"), (), "not among the manifests"),
        (place("echo@1.0.0", "cuda:0"), (), "no device 'cuda:0'"),
        (place("echo@1.0.0", "cpu:1", "bf16"), (), "does not list dtype 'bf16'"),
        (place("shout@1.0.0"), ("echo",), "node.functions"),
    ],
)
def test_diff_reports_what_it_cannot_take(placement: Placement, only: tuple[str, ...], why: str) -> None:
    d = diff([placement], {}, MANIFESTS, [CPU0, CPU1], only)
    assert d.load == [] and why in d.problems[placement.ref]


def test_the_same_set_twice_is_a_no_op() -> None:
    held = {"echo@1.0.0": ("cpu:0", "fp32")}
    d = diff([place("echo@1.0.0")], held, MANIFESTS, [CPU0])
    assert d.load == [] and d.unload == [] and d.problems == {}


# ---- the cache following a desired set ----------------------------------------------------


def _cache(released: list[str] | None = None) -> ModelCache:
    cache = ModelCache([CPU0, CPU1], [], release=lambda d: released.append(d.id) if released is not None else None)
    cache.set_manifests(list(MANIFESTS.values()), hosting=[])
    return cache


def _settle(cache: ModelCache) -> None:
    assert cache.claim_loader()
    cache.run(lambda: None)


def test_cache_loads_on_the_named_device_in_the_named_dtype() -> None:
    cache = _cache()
    assert cache.set_desired([place("echo@1.0.0", "cpu:0", "bf16"), place("echo@2.0.0", "cpu:1")])
    assert cache.names() == ([], ["echo@1.0.0", "echo@2.0.0"])  # announced as loading at once
    _settle(cache)
    assert cache.names() == (["echo@1.0.0", "echo@2.0.0"], [])
    assert cache.loaded["echo@1.0.0"].placement == ("cpu:0", "bf16")
    assert cache.loaded["echo@2.0.0"].placement == ("cpu:1", "fp32")


def test_cache_unloads_what_is_no_longer_placed_and_keeps_the_rest() -> None:
    released: list[str] = []
    cache = _cache(released)
    cache.set_desired([place("echo@1.0.0"), place("shout@1.0.0", "cpu:1")])
    _settle(cache)
    kept = cache.loaded["echo@1.0.0"]
    assert cache.set_desired([place("echo@1.0.0"), place("echo@2.0.0")])
    assert cache.unload(cache.extras()) == ["shout@1.0.0"]
    assert released == ["cpu:1"]  # the device that held it is asked to give memory back
    _settle(cache)
    assert cache.names() == (["echo@1.0.0", "echo@2.0.0"], [])
    assert cache.loaded["echo@1.0.0"] is kept  # a matching placement is never reloaded
    assert not cache.set_desired([place("echo@2.0.0"), place("echo@1.0.0")])  # same set, any order


def test_a_failed_placement_is_not_retried_until_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from colabhive.runners.echo import EchoRunner

    def broken(self: EchoRunner) -> None:
        raise RuntimeError("no such weights")

    cache = _cache()
    monkeypatch.setattr(EchoRunner, "load", broken)
    cache.set_desired([place("echo@1.0.0")])
    _settle(cache)
    assert cache.names() == ([], []) and "no such weights" in cache.failed["echo@1.0.0"]
    assert cache.pending() == []
    monkeypatch.undo()
    cache.set_desired([place("echo@1.0.0", "cpu:1")])  # placed elsewhere: a fresh try
    _settle(cache)
    assert cache.loaded["echo@1.0.0"].placement == ("cpu:1", "fp32")


def test_without_hosting_the_node_chooses_as_before() -> None:
    cache = ModelCache([CPU0], ["echo"])
    cache.set_manifests(list(MANIFESTS.values()), hosting=None)
    _settle(cache)
    assert cache.names() == (["echo@1.0.0", "echo@2.0.0"], [])
    assert cache.extras() == []  # nothing is ever dropped when the node chooses


# ---- energy per run -------------------------------------------------------------------------


class _Stats:
    """A plugin whose energy counter reads 10 J more at each read (power 5 W)."""

    def __init__(self, counter: bool) -> None:
        self.counter, self.reads, self.energy = counter, 0, 100.0

    def hive_device_stats(self, device: Device) -> DeviceStats:
        self.reads += 1
        self.energy += 10.0
        return DeviceStats(device=device.id, power_w=5.0, energy_j=self.energy if self.counter else None)


class _PM:
    def __init__(self, plugin: _Stats) -> None:
        self.hook = plugin


def test_energy_is_the_counter_delta_else_power_times_time() -> None:
    meter = EnergyMeter(_PM(_Stats(counter=True)))  # type: ignore[arg-type]
    r = meter.begin(CPU0, "fn")
    time.sleep(0.012)
    assert meter.end(r) == (10.0, False)
    meter = EnergyMeter(_PM(_Stats(counter=False)))  # type: ignore[arg-type]
    r = meter.begin(CPU0, "fn")
    time.sleep(0.012)
    joules, estimated = meter.end(r)
    assert estimated and 5.0 * 0.012 <= joules < 5.0 * 0.5


def test_short_runs_cost_no_extra_plugin_reads() -> None:
    plugin = _Stats(counter=True)
    meter = EnergyMeter(_PM(plugin))  # type: ignore[arg-type]
    meter.end(meter.begin(CPU0, "echo"))  # first run: measured, and found to be short
    reads = plugin.reads
    joules, estimated = meter.end(meter.begin(CPU0, "echo"))
    assert plugin.reads == reads  # the heartbeat's latest reading is reused
    assert estimated and joules is not None and joules < 0.01


# ---- a real node against a fake gateway that plans placement ----------------------------------


class FakeGateway:
    """Speaks the node protocol from an in-process HTTP server; ``hosting`` is what it wants."""

    def __init__(self, hosting: list[Placement]) -> None:
        self.hosting = hosting
        self.poll_news: list[Placement] | None = None
        self.beats: list[Heartbeat] = []
        self.registered: list[RegisterRequest] = []
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._reply(gw.answer(self.path, body))

            def do_DELETE(self) -> None:  # noqa: N802
                self._reply(b'{"ok": true}')

            do_GET = do_DELETE  # noqa: N815 (/healthz)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: bytes) -> bytes:
        enc = msgspec.json.encode
        if path.endswith("/register"):
            self.registered.append(msgspec.json.decode(body, type=RegisterRequest))
            raws = [msgspec.Raw(enc(m)) for m in MANIFESTS.values()]
            return enc(RegisterReply(node_id="n1", node_secret="s", heartbeat_s=0.1, poll_wait_ms=50, lease_s=60,
                                     manifests=raws, hosting=self.hosting))
        if path.endswith("/heartbeat"):
            self.beats.append(msgspec.json.decode(body, type=Heartbeat))
            return enc(HeartbeatReply(hosting=self.hosting))
        time.sleep(0.05)  # a short long-poll
        news, self.poll_news = self.poll_news, None
        return enc(PollReply(hosting=news))

    def wait_functions(self, functions: list[str], timeout: float = 10) -> Heartbeat:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.beats and self.beats[-1].functions == functions and not self.beats[-1].loading:
                return self.beats[-1]
            time.sleep(0.02)
        raise AssertionError(f"the node never reported {functions}; last: {self.beats[-1:]}")


@pytest.fixture
def node_and_gateway() -> Iterator[tuple[Node, FakeGateway]]:
    gw = FakeGateway([place("echo@1.0.0")])
    cfg = HiveConfig(node=NodeConfig(heartbeat_s=0.1, poll_wait_ms=50, torch_threads=0, functions=[]))
    node = Node(cfg, gateway=gw.url, name="placed", calibrate=False)
    t = threading.Thread(target=node.run, daemon=True)
    t.start()
    try:
        yield node, gw
    finally:
        node.stopping.set()
        t.join(10)
        gw.server.shutdown()


def test_a_node_holds_exactly_what_the_gateway_places(node_and_gateway: tuple[Node, FakeGateway]) -> None:
    node, gw = node_and_gateway
    gw.wait_functions(["echo@1.0.0"])  # from the registration reply
    gw.hosting = [place("echo@2.0.0"), place("shout@1.0.0")]  # from a heartbeat reply
    beat = gw.wait_functions(["echo@2.0.0", "shout@1.0.0"])
    assert "echo@1.0.0" not in node.cache.loaded
    assert beat.rtt_ms is not None and beat.rtt_ms > 0  # heartbeats are timed
    gw.poll_news = gw.hosting = [place("shout@1.0.0")]  # from a poll reply
    gw.wait_functions(["shout@1.0.0"])
    gw.hosting = []
    gw.wait_functions([])
    assert gw.registered[0].allowed == []


def test_a_placement_the_node_cannot_take_is_never_reported(node_and_gateway: tuple[Node, FakeGateway]) -> None:
    _, gw = node_and_gateway
    gw.wait_functions(["echo@1.0.0"])
    gw.hosting = [place("echo@1.0.0"), place("echo@2.0.0", "cpu:0", "int4")]
    time.sleep(0.5)  # several heartbeats: reconciling the same set again changes nothing
    gw.wait_functions(["echo@1.0.0"])
