"""Durable (async) invocations: Prefer: respond-async, /v1/tasks, Idempotency-Key, crash
recovery of the gateway, requeue when a node dies. (Late, stray and failed results: test_results.py.)

Real gateway and node processes on loopback; "fake" nodes are plain HTTP clients speaking
the node protocol, used where a task must be taken and then held.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fakenode import wait_task
from hivectl import HiveProcess
from taskkit import ECHO_NODE, make, node_record, submit, submit_ok, task


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """Gateway + one echo node, shared by the tests that do not disturb it."""
    h = make(tmp_path_factory.mktemp("durable-served"))
    try:
        h.start_gateway()
        h.start_node("node-a", *ECHO_NODE, wait_for=["echo"])
        yield h
    finally:
        h.stop()


def all_pages(h: HiveProcess, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(1000):  # bounded: a cursor loop must end
        q = {**params, "limit": limit}
        if cursor:
            q["cursor"] = cursor
        r = h.http.get("/v1/tasks", params=q, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        body = r.json()
        pages.append(body["tasks"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination never ended")



# ---- the async lifecycle -------------------------------------------------------------------
def test_respond_async_returns_202_then_succeeds(served: HiveProcess) -> None:
    text = f"async-{uuid.uuid4().hex[:8]}"
    r = submit(served, text)
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"id", "status"}, body
    assert body["status"] == "queued"
    tid = body["id"]
    assert r.headers["location"] == f"/v1/tasks/{tid}"

    done = wait_task(served.http, tid)
    assert done["id"] == tid and done["fn"] == "echo@1.0.0"  # the version that ran
    assert done["result"] == {"text": text}
    node = node_record(served, "node-a")
    assert node is not None
    assert done["attempts"] == [node["id"]] and done["node"] == node["id"]
    assert done["finished_at"] >= done["created_at"]

    # the Location header is usable as is
    assert served.http.get(r.headers["location"]).json()["status"] == "succeeded"

    listed = served.http.get("/v1/tasks", params={"fn": "echo", "status": "succeeded"}).json()["tasks"]
    assert tid in [t["id"] for t in listed]
    assert all(t["status"] == "succeeded" and t["fn"] == "echo@1.0.0" for t in listed)
    queued = served.http.get("/v1/tasks", params={"fn": "echo", "status": "queued"}).json()["tasks"]
    assert tid not in [t["id"] for t in queued]
    other_fn = served.http.get("/v1/tasks", params={"fn": "minilm-embed"}).json()["tasks"]
    assert tid not in [t["id"] for t in other_fn]


def test_delete_finished_task_is_409_and_unknown_is_404(served: HiveProcess) -> None:
    tid = submit_ok(served, "finish-me")
    wait_task(served.http, tid)
    r = served.http.delete(f"/v1/tasks/{tid}")
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conflict"
    assert task(served, tid)["status"] == "succeeded"  # a refused cancel changes nothing
    r = served.http.delete(f"/v1/tasks/{uuid.uuid4().hex}")
    assert r.status_code == 404, r.text
    assert served.http.get(f"/v1/tasks/{uuid.uuid4().hex}").status_code == 404


def test_pagination_pages_are_disjoint_and_cover_everything(served: HiveProcess) -> None:
    mine = [submit_ok(served, f"page-{i}") for i in range(11)]
    for tid in mine:
        wait_task(served.http, tid)
    everything = served.http.get("/v1/tasks", params={"fn": "echo", "limit": 500}).json()
    assert everything["next_cursor"] is None
    all_ids = [t["id"] for t in everything["tasks"]]
    assert set(mine) <= set(all_ids)

    pages = all_pages(served, limit=4, fn="echo")
    assert all(len(p) <= 4 for p in pages)
    assert all(len(p) == 4 for p in pages[:-1]), [len(p) for p in pages]
    flat = [t["id"] for p in pages for t in p]
    assert len(flat) == len(set(flat)), "a task appeared on two pages"
    assert flat == all_ids, "pages differ from the single listing (order or content)"
    created = [t["created_at"] for p in pages for t in p]
    assert created == sorted(created, reverse=True), "not newest first"
    # newest first: the last one submitted heads the list
    assert flat[0] == mine[-1]

    # the status filter paginates too
    flat_ok = [t["id"] for p in all_pages(served, limit=3, fn="echo", status="succeeded") for t in p]
    assert len(flat_ok) == len(set(flat_ok)) and set(mine) <= set(flat_ok)


def test_bad_cursor_and_status_are_rejected(served: HiveProcess) -> None:
    r = served.http.get("/v1/tasks", params={"cursor": "not-a-cursor"})
    assert r.status_code in (400, 422), r.text
    r = served.http.get("/v1/tasks", params={"status": "exploded"})
    assert r.status_code in (400, 422), r.text


# ---- idempotency -------------------------------------------------------------------------
def test_async_idempotency_key_returns_the_same_task_once(served: HiveProcess) -> None:
    key = f"idem-{uuid.uuid4().hex}"
    r1 = submit(served, "once", **{"Idempotency-Key": key})
    r2 = submit(served, "once", **{"Idempotency-Key": key})
    assert r1.status_code == 202 and r2.status_code == 202, (r1.text, r2.text)
    assert r1.json()["id"] == r2.json()["id"]
    assert "idempotent-replayed" not in r1.headers
    assert r2.headers.get("idempotent-replayed") == "true"
    tid = r1.json()["id"]
    done = wait_task(served.http, tid)
    assert done["result"] == {"text": "once"}
    assert len(done["attempts"]) == 1, done

    # a retry after completion still names the same task, now finished
    r3 = submit(served, "once", **{"Idempotency-Key": key})
    assert r3.status_code == 202 and r3.json() == {"id": tid, "status": "succeeded"}
    assert r3.headers.get("idempotent-replayed") == "true"
    assert len(task(served, tid)["attempts"]) == 1
    # exactly one task carries that text
    listed = served.http.get("/v1/tasks", params={"fn": "echo", "limit": 500}).json()["tasks"]
    assert [t["id"] for t in listed].count(tid) == 1

    # another key is another task
    other = submit_ok(served, "once", **{"Idempotency-Key": key + "-b"})
    assert other != tid


def test_sync_idempotency_key_replays_the_body(served: HiveProcess) -> None:
    key = f"sync-{uuid.uuid4().hex}"
    h = {"Idempotency-Key": key}
    r1 = served.http.post("/v1/fn/echo", json={"text": "sync-once"}, headers=h, timeout=30)
    assert r1.status_code == 200, r1.text
    assert r1.json() == {"text": "sync-once"}
    assert "idempotent-replayed" not in r1.headers
    r2 = served.http.post("/v1/fn/echo", json={"text": "sync-once"}, headers=h, timeout=30)
    assert r2.status_code == 200, r2.text
    assert r2.content == r1.content
    assert r2.headers.get("idempotent-replayed") == "true"
    tid = r1.headers.get("x-hive-task")
    assert tid, r1.headers
    assert len(task(served, tid)["attempts"]) == 1


def test_idempotency_key_too_long_is_422(served: HiveProcess) -> None:
    r = submit(served, "x", **{"Idempotency-Key": "k" * 201})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "Idempotency-Key"


# ---- cancellation ------------------------------------------------------------------------
def test_cancel_queued_task_never_runs(new_hive: Any) -> None:
    h = new_hive()
    h.start_gateway()
    doomed = submit_ok(h, "doomed")  # no node: it stays queued
    assert task(h, doomed)["status"] == "queued"
    r = h.http.delete(f"/v1/tasks/{doomed}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["id"] == doomed
    assert task(h, doomed)["status"] == "cancelled"
    assert h.http.delete(f"/v1/tasks/{doomed}").status_code == 409  # already cancelled

    marker = submit_ok(h, "after-the-cancel")  # queued behind the cancelled one
    h.start_node("node-a", *ECHO_NODE, wait_for=["echo"])
    assert wait_task(h.http, marker)["result"] == {"text": "after-the-cancel"}
    t = task(h, doomed)
    assert t["status"] == "cancelled", t
    assert t["attempts"] == [] and t["node"] is None and "result" not in t, t
    cancelled = h.http.get("/v1/tasks", params={"status": "cancelled"}).json()["tasks"]
    assert [x["id"] for x in cancelled] == [doomed]


# ---- crash recovery ----------------------------------------------------------------------
def test_gateway_kill9_with_500_queued_tasks_loses_none(new_hive: Any) -> None:
    h = new_hive()
    h.start_gateway()
    n = 500
    texts = {submit_ok(h, f"crash-{i:03d}"): f"crash-{i:03d}" for i in range(n)}
    assert len(texts) == n

    h.kill("gateway", signal.SIGKILL)
    h.start_gateway()  # same port, same config, same state dir
    queued = h.http.get("/v1/tasks", params={"status": "queued", "limit": 500}, timeout=30).json()
    assert len(queued["tasks"]) == n, "the journal lost tasks across the crash"
    assert (h.get_json("/v1/fn/echo") or {}).get("queue_depth") == n

    h.start_node("node-a", *ECHO_NODE, wait_for=["echo"])

    def all_done() -> bool:
        r = h.http.get("/v1/tasks", params={"status": "succeeded", "limit": 500}, timeout=10)
        return r.status_code == 200 and len(r.json()["tasks"]) == n

    h.wait_for(all_done, 120, f"{n} replayed tasks to succeed", watch=["gateway", "node-a"])
    for tid, text in texts.items():
        t = task(h, tid)
        assert t["status"] == "succeeded"
        assert t["result"] == {"text": text}, t
        assert len(t["attempts"]) == 1, t


# ---- a node dies holding tasks -------------------------------------------------------------
def test_node_killed_holding_tasks_they_finish_elsewhere(new_hive: Any) -> None:
    h = new_hive(node_timeout_s=3.0, lease_s=300.0)
    h.start_gateway()
    h.start_node("node-a", *ECHO_NODE, wait_for=["echo"])
    a = node_record(h, "node-a")
    assert a is not None
    # A posts a result by way of its next long-poll, so once a sync call has returned A is
    # parked in a poll for echo (for up to poll_wait_ms). Freeze it there: the poll's answer
    # (the tasks) goes out, but A never runs them; then kill it for good.
    assert h.call("echo", text="warm").status_code == 200
    h.kill("node-a", signal.SIGSTOP)
    first = submit_ok(h, "held-0")
    # the journal records the hand-out to A (and keeps it after A is gone)
    held = wait_task(h.http, first, ("running",), timeout=10)
    assert held["attempts"] == [a["id"]], held
    ids = {first: "held-0", **{submit_ok(h, f"held-{i}"): f"held-{i}" for i in range(1, 20)}}
    h.kill("node-a", signal.SIGKILL)

    h.start_node("node-b", *ECHO_NODE, wait_for=["echo"])
    b = node_record(h, "node-b")
    assert b is not None
    done = {tid: wait_task(h.http, tid, timeout=60) for tid in ids}
    for tid, t in done.items():
        assert t["result"] == {"text": ids[tid]}, t
        assert t["node"] == b["id"] == t["attempts"][-1], t
    assert done[first]["attempts"] == [a["id"], b["id"]], done[first]
    for t in done.values():
        if len(t["attempts"]) > 1:
            assert t["attempts"] == [a["id"], b["id"]], t
