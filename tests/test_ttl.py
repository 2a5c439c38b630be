"""Finished async tasks are kept for limits.result_ttl_s, then purged; unfinished ones never are."""

from __future__ import annotations

import time
from pathlib import Path

from hivectl import HiveProcess


def test_finished_tasks_expire_after_their_ttl(tmp_path: Path) -> None:
    h = HiveProcess(tmp_path, node={"torch_threads": 0}, limits={"node_timeout_s": 2.0, "result_ttl_s": 1.0})
    try:
        h.start_gateway()
        waiting = h.post("/v1/fn/echo", {"text": "no node yet"}, Prefer="respond-async").json()["id"]
        h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
        h.wait_for(lambda: (h.get_json(f"/v1/tasks/{waiting}") or {}).get("status") == "succeeded", 20, "run")
        done = h.post("/v1/fn/echo", {"text": "done"}, Prefer="respond-async").json()["id"]
        h.wait_for(lambda: (h.get_json(f"/v1/tasks/{done}") or {}).get("status") == "succeeded", 20, "run")
        # both finished: after the TTL they are purged and answer 404 with the reason
        h.wait_for(lambda: h.http.get(f"/v1/tasks/{done}").status_code == 404, 15, "the purge")
        gone = h.http.get(f"/v1/tasks/{waiting}")
        assert gone.status_code == 404
        assert "kept for" in gone.json()["error"]["message"]

        # an unfinished task is never purged, however old
        h.kill("node-a")
        h.wait_for(lambda: not h.node_names(), 15, "the node to be gone")
        queued = h.post("/v1/fn/echo", {"text": "stays"}, Prefer="respond-async").json()["id"]
        time.sleep(2.5)  # several purge passes at ttl 1 s
        assert h.get_json(f"/v1/tasks/{queued}")["status"] == "queued"
    finally:
        h.stop()
