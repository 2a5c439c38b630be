"""Process faults: a node or the gateway dies or is stopped, and the hive recovers by itself.

Each test builds its own hive (these tests kill processes), with limits.node_timeout_s = 2
so that a dead node is noticed quickly.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
from conftest import HiveFactory
from hivectl import HiveProcess, port_open

FAST: dict[str, object] = {"node_timeout_s": 2.0}
T = TypeVar("T")


def _echo_hive(make_hive: HiveFactory, **sections: dict[str, object]) -> HiveProcess:
    h = make_hive(**sections)
    h.start_gateway()
    h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
    assert h.call("echo", text="before").json() == {"text": "before"}
    return h


def _poll_until(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call ``fn`` every 0.1 s until it returns something other than None (bounded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_sigkilled_node_gives_503_then_restarted_node_serves(make_hive: HiveFactory) -> None:
    """A node that vanishes without a word is noticed by silence; callers get 503, not a hang."""
    h = _echo_hive(make_hive, limits=FAST)
    h.kill("node-a", signal.SIGKILL)
    killed_at = time.monotonic()

    def got_503() -> httpx.Response | None:
        r = h.post("/v1/fn/echo", {"text": "anyone?"}, **{"X-Timeout-Ms": "8000"})
        assert r.status_code in (200, 503), (r.status_code, r.text)  # never a 504 or 500
        return r if r.status_code == 503 else None

    r = _poll_until(got_503, 10, "a 503 after the node was killed")
    assert r.json()["error"]["code"] == "no_capacity"
    assert "echo" in r.json()["error"]["message"]
    assert time.monotonic() - killed_at < 6, "the dead node was noticed too late"
    assert "node-a" not in h.node_names()
    t0 = time.monotonic()  # the next call fails at once now that the node is known to be gone
    assert h.call("echo", text="x").status_code == 503
    assert time.monotonic() - t0 < 0.5

    h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
    assert h.call("echo", text="back").json() == {"text": "back"}
    assert h.node_names() == ["node-a"]


def test_gateway_restart_node_reregisters_by_itself(make_hive: HiveFactory) -> None:
    """SIGKILL the gateway (its whole group) and start it again on the same port: the node,
    never restarted, registers again and calls succeed."""
    h = _echo_hive(make_hive, limits=FAST)
    node = h.nodes["node-a"]
    old_id = h.get_json("/v1/nodes")["nodes"][0]["id"]
    h.kill("gateway", signal.SIGKILL)
    assert not port_open(h.port)
    try:
        h.call("echo", text="gateway down", timeout=2)
        raise AssertionError("a call succeeded with the gateway dead")
    except httpx.TransportError:
        pass
    time.sleep(1.0)  # the node notices and starts backing off
    assert node.poll() is None, "the node died with its gateway:\n" + h.log("node-a")

    h.start_gateway()
    h.wait_ready(["echo"], timeout=30, node="node-a")
    assert h.call("echo", text="after restart").json() == {"text": "after restart"}
    nodes = h.get_json("/v1/nodes")["nodes"]
    assert [n["name"] for n in nodes] == ["node-a"]
    assert nodes[0]["id"] != old_id  # a fresh registration, not a remembered one
    assert node.poll() is None  # the same process all along


def test_sigterm_idle_node_exits_promptly_and_leaves(make_hive: HiveFactory) -> None:
    """With the shipped timings (2 s heartbeats, 20 s long-polls, 6 s node timeout), an idle
    node told to stop must leave at once: exit 0 within a few seconds, and the gateway stops
    listing it because it said goodbye, not because its silence timed out."""
    h = make_hive(node={"heartbeat_s": 2.0, "poll_wait_ms": 20000}, limits={"node_timeout_s": 6.0})
    h.start_gateway()
    h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
    assert h.call("echo", text="hi").status_code == 200
    time.sleep(1.0)  # idle: parked in a long-poll
    node = h.nodes["node-a"]
    t0 = time.monotonic()
    h.send("node-a", signal.SIGTERM)
    rc = node.wait(20)
    elapsed = time.monotonic() - t0
    assert rc == 0, h.log("node-a")
    assert "node-a" not in h.node_names()
    assert elapsed < 3.0, f"an idle node took {elapsed:.1f} s to stop after SIGTERM"


def test_sigterm_node_while_other_node_serves(make_hive: HiveFactory) -> None:
    """Stopping one of two nodes never interrupts service: the other keeps answering."""
    h = _echo_hive(make_hive, limits=FAST)
    h.start_node("node-b", "--functions", "echo", wait_for=["echo"])
    assert sorted(h.node_names()) == ["node-a", "node-b"]
    h.send("node-a", signal.SIGTERM)
    end = time.monotonic() + 15
    while h.nodes["node-a"].poll() is None and time.monotonic() < end:
        r = h.post("/v1/fn/echo", {"text": "keep going"}, **{"X-Timeout-Ms": "10000"})
        assert r.status_code == 200, r.text
        time.sleep(0.05)
    assert h.nodes["node-a"].poll() == 0
    _poll_until(lambda: True if h.node_names() == ["node-b"] else None, 5, "node-a to leave the list")
    assert h.call("echo", text="still here").json() == {"text": "still here"}
