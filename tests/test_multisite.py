"""Several sites on one machine: nodes in their own network namespaces, one of them far away.

Each node runs inside a network namespace joined to the host by a veth pair, and reaches
the gateway over that link (never loopback). The far site's link goes through a proxy
that adds 60 ms each way (this kernel has no netem). Site profiles give the near site a
dirty, dear grid and the far one a clean, cheap one. Fast calls (echo, where the
network is everything) must stay at the near site, unstalled by the far one; green calls
(MiniLM, real work) must go far, and the span must say why.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_LIMITS, _running
from delayproxy import DelayProxy
from hivectl import MANIFESTS, HiveProcess, post_all

import netns

FAR_DELAY_MS = 60.0
SITES = {
    "near": 'name = "near"\nregion = "same rack"\ncarbon_g_per_kwh = 700\nprice_per_gpu_hour = 0.9\n',
    "far": 'name = "far"\nregion = "another city"\ncarbon_g_per_kwh = 40\nprice_per_gpu_hour = 0.3\n',
}

ok_netns, why = netns.available()
pytestmark = pytest.mark.skipif(not ok_netns, reason=f"network namespaces unavailable here: {why}")

SitesHive = tuple[HiveProcess, dict[str, str]]
"""The running hive and its node ids by node name."""


@pytest.fixture(scope="module")
def sites_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SitesHive]:
    root = tmp_path_factory.mktemp("multisite")
    (mdir := root / "manifests").mkdir()
    for fn in ("echo", "minilm-embed"):
        text = (MANIFESTS / f"{fn}.toml").read_text()  # its eval dataset stays where it is
        (mdir / f"{fn}.toml").write_text(text.replace('"../evals/', f'"{MANIFESTS.parent}/evals/'))
    (sdir := root / "sites").mkdir()
    for name, text in SITES.items():
        (sdir / f"{name}.toml").write_text(text)
    hive = HiveProcess(root / "hive", [mdir], site_dirs=[sdir], gateway={"host": "0.0.0.0"}, limits=dict(TEST_LIMITS))
    with netns.sites(["near", "far"]) as net, _running(hive) as h:
        h.start_gateway()
        with DelayProxy(net["far"].host_ip, "127.0.0.1", h.port, FAR_DELAY_MS) as far_link:
            h.start_node("node-near", "--site", "near",
                         "--gateway", f"http://{net['near'].host_ip}:{h.port}", netns=net["near"].ns)
            h.start_node("node-far", "--site", "far",
                         "--gateway", f"http://{net['far'].host_ip}:{far_link.port}", netns=net["far"].ns)
            h.wait_ready(["echo", "minilm-embed"], node="node-near")
            h.wait_ready(["echo", "minilm-embed"], node="node-far")
            ids = {n["name"]: n["id"] for n in h.get_json("/v1/nodes")["nodes"]}
            # heartbeats measure each link; the far one must show the added delay
            h.wait_for(lambda: _node(h, "node-far").get("rtt_ms", 0) > 1.5 * FAR_DELAY_MS, 20, "far RTT measured")
            yield h, ids


def _node(h: HiveProcess, name: str) -> dict[str, Any]:
    return next(n for n in h.get_json("/v1/nodes")["nodes"] if n["name"] == name)


def _timed_call(h: HiveProcess, prefer: str, text: str, fn: str = "echo") -> tuple[str, float]:
    t0 = time.perf_counter()
    r = h.http.post(f"/v1/fn/{fn}", json={"text": text}, headers={"x-hive-prefer": prefer})
    assert r.status_code == 200, r.text
    assert fn != "echo" or r.json() == {"text": text}
    return r.headers["x-hive-node"], (time.perf_counter() - t0) * 1000


def test_nodes_reach_the_gateway_from_their_own_namespaces(sites_hive: SitesHive) -> None:
    h, ids = sites_hive
    near, far = _node(h, "node-near"), _node(h, "node-far")
    assert near["site"] == "near" and far["site"] == "far"
    assert near["site_profile"]["carbon_g_per_kwh"] == 700 and far["site_profile"]["carbon_g_per_kwh"] == 40
    assert near["rtt_ms"] < FAR_DELAY_MS < far["rtt_ms"], (near["rtt_ms"], far["rtt_ms"])
    assert "127.0.0.1" not in (Path(h.logs / "node-near.log").read_text())  # it dialled the veth address


def test_fast_calls_stay_near_and_the_far_site_does_not_stall_them(sites_hive: SitesHive) -> None:
    h, ids = sites_hive
    for i in range(5):  # let the router measure both nodes at least once
        _timed_call(h, "green", f"warm-{i}")
        _timed_call(h, "fast", f"warm-{i}")
    served = [_timed_call(h, "fast", f"fast-{i}") for i in range(30)]
    near_share = sum(node == ids["node-near"] for node, _ in served) / len(served)
    assert near_share >= 0.9, served
    assert statistics.median(ms for _, ms in served) < FAR_DELAY_MS, served
    # a burst: every call answered, most of them near
    rs = post_all(h, "echo", [{"text": f"burst-{i}"} for i in range(24)])
    assert all(r.status_code == 200 for r in rs)
    assert sum(r.headers["x-hive-node"] == ids["node-near"] for r in rs) >= 18


def test_green_calls_go_to_the_clean_grid_for_a_recorded_reason(sites_hive: SitesHive) -> None:
    h, ids = sites_hive
    # a real model, so each task's energy is work both nodes measure alike (same hardware)
    for i in range(3):
        _timed_call(h, "fast", f"warm {i}", "minilm-embed")
        _timed_call(h, "green", f"warm {i}", "minilm-embed")
    served = [_timed_call(h, "green", f"green sentence {i}", "minilm-embed") for i in range(10)]
    assert all(node == ids["node-far"] for node, _ in served), served
    assert min(ms for _, ms in served) > FAR_DELAY_MS  # the price of green here: the far link
    h.wait_for(lambda: any(s["attributes"].get("hive.route.prefer") == "green" for s in h.spans()), 10, "route span")
    span = next(s for s in h.spans() if s["attributes"].get("hive.route.prefer") == "green")
    attrs = span["attributes"]
    assert attrs["hive.route.node"] == ids["node-far"] and attrs["hive.route.candidates"] == 2
    terms = json.loads(attrs["hive.route.terms"])
    assert terms[ids["node-far"]]["carbon_g"] < terms[ids["node-near"]]["carbon_g"]
    assert terms[ids["node-far"]]["rtt_ms"] > terms[ids["node-near"]]["rtt_ms"]


def test_bad_preference_is_a_422(sites_hive: SitesHive) -> None:
    h, _ = sites_hive
    r = h.http.post("/v1/fn/echo", json={"text": "x"}, headers={"x-hive-prefer": "slow"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "X-Hive-Prefer"
