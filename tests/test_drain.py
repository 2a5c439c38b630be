"""SIGTERM on the gateway: new calls are refused, in-flight sync calls still get their
answer, queued async tasks are kept for the next start."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx

from hivectl import HiveProcess


def test_sigterm_drains_in_flight_calls_and_keeps_async_tasks(tmp_path: Path) -> None:
    h = HiveProcess(
        tmp_path,
        node={"torch_threads": 0},
        gateway={"shutdown_grace_s": 20.0},
        limits={"node_timeout_s": 30.0},  # the frozen node must not be declared gone
    )
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
        # freeze the node so the next call is in flight when the gateway is told to stop
        h.kill("node-a", signal.SIGSTOP)
        answer: dict[str, httpx.Response] = {}

        def call() -> None:
            answer["r"] = httpx.post(f"{h.url}/v1/fn/echo", json={"text": "in flight"}, timeout=30)

        caller = threading.Thread(target=call)
        caller.start()
        def pending() -> bool:  # handed to the frozen node's parked poll, or queued for its next one
            held = any(n["in_flight"] >= 1 for n in (h.get_json("/v1/nodes") or {}).get("nodes", []))
            return held or (h.get_json("/v1/fn/echo") or {}).get("queue_depth", 0) >= 1

        h.wait_for(pending, 10, "the call to be pending")
        queued = h.post("/v1/fn/echo", {"text": "later"}, Prefer="respond-async")
        assert queued.status_code == 202
        task_id = queued.json()["id"]

        assert h.gateway is not None
        h.gateway.send_signal(signal.SIGTERM)  # the supervisor, not the whole group
        h.wait_for(lambda: (h.get_json("/healthz") or {}).get("status") == "draining", 10, "draining")
        refused = h.post("/v1/fn/echo", {"text": "new"})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "no_capacity"
        assert "shutting down" in refused.json()["error"]["message"]
        assert refused.headers.get("retry-after")

        h.kill("node-a", signal.SIGCONT)
        caller.join(30)
        assert answer["r"].status_code == 200, answer["r"].text
        assert answer["r"].json() == {"text": "in flight"}
        h.gateway.wait(30)
        assert h.gateway.returncode == 0

        # the async task submitted before the stop is still there after a restart
        h.start_gateway()
        h.wait_for(
            lambda: (h.get_json(f"/v1/tasks/{task_id}") or {}).get("status") == "succeeded",
            30,
            "the kept async task to run after the restart",
        )
        assert h.get_json(f"/v1/tasks/{task_id}")["result"] == {"text": "later"}
    finally:
        h.stop()
