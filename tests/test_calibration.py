"""Measured nodes, end to end: a real gateway and a real node at the ``lima`` site.

The node calibrates its devices when it joins and again when an operator asks
(``POST /v1/nodes/{id}/calibrate``); ``GET /v1/nodes`` shows the figures per device with
when they were measured, and the gateway keeps them in SQLite. Tasks carry the energy
their node measured and the carbon it means at the node's site; the node's heartbeat
round trip is reported too.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fakenode import wait_task
from hivectl import ROOT, HiveProcess
from taskkit import ASYNC

LIMA_G_PER_KWH = 231.0
LIMA_PRICE = 0.90


def _node(h: HiveProcess) -> dict[str, Any]:
    nodes = (h.get_json("/v1/nodes") or {}).get("nodes", [])
    assert len(nodes) == 1, nodes
    return nodes[0]


@pytest.fixture(scope="module")
def lima(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    h = HiveProcess(tmp_path_factory.mktemp("lima"), site_dirs=[ROOT / "nodes"], limits={"node_timeout_s": 10.0})
    try:
        h.start_gateway()
        h.start_node("node-lima", "--site", "lima", "--functions", "minilm-embed",
                     wait_for=["minilm-embed"], calibrate=True)
        h.wait_for(lambda: bool(_node(h)["calibration"]), 60, "the join calibration")
        yield h
    finally:
        h.stop()


def test_join_calibration_is_shown_per_device(lima: HiveProcess) -> None:
    node = _node(lima)
    assert node["site_profile"] == {
        "name": "lima", "region": "Lima, PE (SEIN grid)", "carbon_g_per_kwh": LIMA_G_PER_KWH,
        "price_per_gpu_hour": LIMA_PRICE,
    }
    by_device = {c["device"]: c for c in node["calibration"]}
    assert set(by_device) == {d["kind"] + ":" + str(d["index"]) for d in node["devices"]}
    for dev in node["devices"]:
        cal = by_device[f"{dev['kind']}:{dev['index']}"]
        assert cal["measured_at"] > time.time() - 300
        assert cal["matmul_fp32_gflops"] > 0 and cal["memory_gbs"] > 0
        assert cal["ref_batch"] == 16 and cal["ref_ms_per_batch"] > 0 and cal["ref_tokens_per_s"] > 0
        assert "all-MiniLM-L6-v2" in cal["ref_model"] and cal["reference"]
        assert cal["score"] > 0
        assert cal["score_per_price"] == pytest.approx(cal["score"] / LIMA_PRICE, rel=1e-3)
        if cal["power_w"]:
            assert cal["score_per_watt"] == pytest.approx(cal["score"] / cal["power_w"], rel=1e-2)
        lowp = [t for t in dev["dtypes"] if t in ("bf16", "fp16")]
        if lowp:
            assert cal["lowp_dtype"] in lowp and cal["matmul_lowp_gflops"] > 0
        else:  # nothing measured, and said so
            assert cal["lowp_dtype"] is None and cal["matmul_lowp_gflops"] is None
            assert any("no low-precision dtype" in n for n in cal["notes"])
        assert cal["duration_s"] < 10  # ~2 s per CPU device on a quiet box


def test_rtt_is_reported(lima: HiveProcess) -> None:
    lima.wait_for(lambda: _node(lima)["rtt_ms"] is not None, 10, "an RTT")
    assert 0 < _node(lima)["rtt_ms"] < 1000


def test_a_durable_task_carries_energy_and_carbon_at_its_sites_intensity(lima: HiveProcess) -> None:
    # a long text: a run of tens of ms, long enough for the plugin's counters to resolve
    r = lima.http.post("/v1/fn/minilm-embed", json={"text": "energy per task " * 60}, headers=ASYNC)
    assert r.status_code == 202, r.text
    task = wait_task(lima.http, r.json()["id"])
    assert task["energy_j"] > 0 and task["carbon_g"] > 0
    assert task["carbon_g"] == pytest.approx(task["energy_j"] / 3.6e6 * LIMA_G_PER_KWH, rel=1e-6)
    assert isinstance(task["energy_estimated"], bool)

    def span() -> dict[str, Any] | None:
        return next((s for s in lima.spans() if s["name"].startswith("node.execute")
                     and "hive.energy_j" in s["attributes"]), None)

    lima.wait_for(lambda: span() is not None, 10, "a node.execute span with hive.energy_j")
    assert span()["attributes"]["hive.energy_j"] > 0  # type: ignore[index]


def test_an_operator_can_ask_for_a_fresh_calibration(lima: HiveProcess) -> None:
    node = _node(lima)
    before = {c["device"]: c["measured_at"] for c in node["calibration"]}
    r = lima.http.post(f"/v1/nodes/{node['id']}/calibrate")
    assert r.status_code == 202, r.text
    assert r.json()["calibrate_pending"] is True
    assert lima.http.post("/v1/nodes/no-such-node/calibrate").status_code == 404

    def newer() -> bool:
        now = {c["device"]: c["measured_at"] for c in _node(lima)["calibration"]}
        return all(now[d] > t for d, t in before.items())

    lima.wait_for(newer, 90, "a newer calibration")
    assert _node(lima)["calibrate_pending"] is False
    db = sqlite3.connect(lima.tmp / "var" / "hive.sqlite3")
    try:
        rows = db.execute("SELECT device, measured_at FROM calibrations WHERE node_id = ?", (node["id"],)).fetchall()
    finally:
        db.close()
    assert len(rows) == 2 * len(before)  # the join calibration and this one, both kept


def test_calibration_posts_are_checked(lima: HiveProcess) -> None:
    r = lima.http.post(f"/v1/nodes/{_node(lima)['id']}/calibration", json={"devices": []})
    assert r.status_code == 401  # a node's own route: its credential is required
