"""Late, stray and failed results: exactly one result is recorded per task, whoever posts.

"Fake" nodes (plain HTTP clients speaking the node protocol) take a task and then answer
late, answer for a task they were never given, or answer with an error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakenode import FakeNode, wait_task
from hivectl import HiveProcess
from taskkit import ECHO_NODE, make, node_record, submit_ok, task


# ---- late, stray and failed results ---------------------------------------------------------
def test_late_result_from_a_gone_node_is_dropped(new_hive: Any) -> None:
    h = new_hive(node_timeout_s=2.0, lease_s=300.0)
    h.start_gateway()
    fake = FakeNode(h.url, "fake-slow")
    tid = submit_ok(h, "real-answer")
    got = fake.poll(max_items=1, wait_ms=2000)
    assert [t["id"] for t in got] == [tid]
    assert got[0]["input"] == {"text": "real-answer"}
    t = wait_task(h.http, tid, ("running",), timeout=10)
    assert t["attempts"] == [fake.id]

    # the fake goes silent; the gateway must declare it gone and requeue its task
    h.wait_for(lambda: fake.id not in [n["id"] for n in h.get_json("/v1/nodes")["nodes"]], 15, "fake to be gone")
    h.start_node("node-b", *ECHO_NODE, wait_for=["echo"])
    b = node_record(h, "node-b")
    assert b is not None
    done = wait_task(h.http, tid, timeout=30)
    assert done["result"] == {"text": "real-answer"}
    assert done["attempts"] == [fake.id, b["id"]] and done["node"] == b["id"]

    late = fake.post_results([{"id": tid, "output": {"text": "LATE"}}])
    assert late.status_code in (401, 404) or late.json() == {"accepted": 0}, (late.status_code, late.text)
    after = task(h, tid)
    assert after["status"] == "succeeded" and after["result"] == {"text": "real-answer"}, after
    assert after["node"] == b["id"] and after["finished_at"] == done["finished_at"]
    fake.close()


def test_late_result_from_a_live_node_after_its_lease_ran_out_is_dropped(new_hive: Any) -> None:
    # the fake stays registered (node_timeout long) but never heartbeats, so only its lease lapses
    h = new_hive(node_timeout_s=60.0, lease_s=1.5, max_attempts=5)
    h.start_gateway()
    fake = FakeNode(h.url, "fake-lapsed")
    tid = submit_ok(h, "lease-answer")
    assert [t["id"] for t in fake.poll(max_items=1, wait_ms=2000)] == [tid]
    # the lease lapses; the task goes back on the queue for the next taker
    h.wait_for(lambda: (h.get_json("/v1/fn/echo") or {}).get("queue_depth") == 1, 10, "requeue after lease")
    h.start_node("node-b", *ECHO_NODE, wait_for=["echo"])
    done = wait_task(h.http, tid, timeout=30)
    assert done["result"] == {"text": "lease-answer"}
    assert done["attempts"][0] == fake.id and done["attempts"][-1] == done["node"] != fake.id, done

    late = fake.post_results([{"id": tid, "output": {"text": "LATE"}}])
    assert late.status_code == 200, late.text
    assert late.json() == {"accepted": 0}
    assert task(h, tid)["result"] == {"text": "lease-answer"}
    fake.close()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """A gateway with no real node: only fake nodes take tasks here."""
    h = make(tmp_path_factory.mktemp("durable-bare"), node_timeout_s=60.0, lease_s=300.0)
    try:
        h.start_gateway()
        yield h
    finally:
        h.stop()


def test_result_for_a_task_never_given_is_not_accepted(bare: HiveProcess) -> None:
    stranger = FakeNode(bare.url, "stranger")
    holder = FakeNode(bare.url, "holder")
    r = stranger.post_results([{"id": uuid.uuid4().hex, "output": {"text": "nobody asked"}}])
    assert r.status_code == 200 and r.json() == {"accepted": 0}, r.text

    tid = submit_ok(bare, "held-by-holder")
    # queued, handed to nobody yet: a result for it is a stray
    r = stranger.post_results([{"id": tid, "output": {"text": "FORGED"}}])
    assert r.json() == {"accepted": 0}, r.text
    assert task(bare, tid)["status"] == "queued"

    assert [t["id"] for t in holder.poll(max_items=1, wait_ms=2000)] == [tid]
    # handed to the holder: still a stray from anyone else
    r = stranger.post_results([{"id": tid, "output": {"text": "FORGED"}}])
    assert r.json() == {"accepted": 0}, r.text
    assert task(bare, tid)["status"] == "running"

    r = holder.post_results([{"id": tid, "output": {"text": "held-by-holder"}}])
    assert r.json() == {"accepted": 1}, r.text
    done = wait_task(bare.http, tid, timeout=10)
    assert done["result"] == {"text": "held-by-holder"} and done["node"] == holder.id
    # and a second copy from the holder itself is not accepted either
    r = holder.post_results([{"id": tid, "output": {"text": "again"}}])
    assert r.json() == {"accepted": 0}, r.text
    assert task(bare, tid)["result"] == {"text": "held-by-holder"}
    stranger.close()
    holder.close()


def test_error_result_fails_the_task_without_retry(bare: HiveProcess) -> None:
    node = FakeNode(bare.url, "poisoned")
    tid = submit_ok(bare, "poison")
    got = node.poll(max_items=1, wait_ms=2000)
    assert [t["id"] for t in got] == [tid]
    r = node.post_results([{"id": tid, "error": {"code": "model_error", "message": "boom"}}])
    assert r.status_code == 200 and r.json() == {"accepted": 1}, r.text
    t = wait_task(bare.http, tid, ("failed", "succeeded"), timeout=10)
    assert t["status"] == "failed", t
    assert "boom" in t["error"]["message"], t
    assert t["error"]["code"] in ("task_failed", "model_error"), t
    assert "result" not in t
    assert t["attempts"] == [node.id]
    # not retried: nothing comes back to a node polling for echo, and the record stays put
    assert node.poll(max_items=4, wait_ms=1500) == []
    again = task(bare, tid)
    assert again["status"] == "failed" and again["attempts"] == [node.id]
    node.close()


def test_sync_caller_gets_the_model_error(bare: HiveProcess) -> None:
    import threading

    node = FakeNode(bare.url, "poisoned-sync")
    node.poll(max_items=1, wait_ms=0)  # tell the gateway it serves echo
    box: dict[str, httpx.Response] = {}

    def call() -> None:
        box["r"] = bare.http.post("/v1/fn/echo", json={"text": "x"}, headers={"X-Timeout-Ms": "10000"}, timeout=30)

    th = threading.Thread(target=call)
    th.start()
    got: list[dict[str, Any]] = []
    end = time.monotonic() + 10
    while not got and time.monotonic() < end:
        got = node.poll(max_items=1, wait_ms=1000)
    assert len(got) == 1, "the sync task never reached the node"
    node.post_results([{"id": got[0]["id"], "error": {"code": "model_error", "message": "kaboom"}}])
    th.join(20)
    r = box["r"]
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "task_failed" and "kaboom" in r.json()["error"]["message"]
    node.close()


def test_cancel_running_task_keeps_it_cancelled_when_its_result_arrives(bare: HiveProcess) -> None:
    node = FakeNode(bare.url, "runs-then-cancelled")
    tid = submit_ok(bare, "cancel-me-while-running")
    assert [t["id"] for t in node.poll(max_items=1, wait_ms=2000)] == [tid]
    assert wait_task(bare.http, tid, ("running",), timeout=10)["attempts"] == [node.id]
    r = bare.http.delete(f"/v1/tasks/{tid}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    node.post_results([{"id": tid, "output": {"text": "too late, cancelled"}}])
    t = task(bare, tid)
    assert t["status"] == "cancelled" and "result" not in t, t
    node.close()


def test_task_handed_out_max_attempts_times_fails(new_hive: Any) -> None:
    # each taker holds the task past its lease and never answers (a poison input that kills
    # its node every time looks the same to the gateway)
    h = new_hive(node_timeout_s=60.0, lease_s=1.0, max_attempts=2)
    h.start_gateway()
    takers = [FakeNode(h.url, f"victim-{i}") for i in range(2)]
    tid = submit_ok(h, "poison-pill")
    for i, node in enumerate(takers):
        got: list[dict[str, Any]] = []
        end = time.monotonic() + 10
        while not got and time.monotonic() < end:  # requeued once the previous lease ran out
            got = node.poll(max_items=1, wait_ms=1000)
        assert [t["id"] for t in got] == [tid], f"attempt {i + 1} never came"
    t = wait_task(h.http, tid, ("failed",), timeout=15)
    assert t["attempts"] == [n.id for n in takers], t
    assert "2 attempts" in t["error"]["message"], t
    # and nobody gets it a third time
    assert takers[0].poll(max_items=1, wait_ms=1500) == []
    for n in takers:
        n.close()
