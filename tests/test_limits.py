"""Back-pressure and deadlines: a full queue answers 429 with Retry-After (and the gateway
keeps serving), and a sync call past its X-Timeout-Ms answers 504 on time, with its task
withdrawn so no node runs it afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakenode import FakeNode, wait_task
from hivectl import HiveProcess

ASYNC = {"Prefer": "respond-async"}
QUEUE = 5


@pytest.fixture
def small_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    h = HiveProcess(
        tmp_path_factory.mktemp("limits-queue"),
        limits={"queue_size": QUEUE, "node_timeout_s": 10.0},
        node={"torch_threads": 0},
    )
    try:
        h.start_gateway()
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """No real node; fake nodes stay live for a minute without heartbeats."""
    h = HiveProcess(
        tmp_path_factory.mktemp("limits-deadline"),
        limits={"node_timeout_s": 60.0, "lease_s": 300.0},
        node={"torch_threads": 0},
    )
    try:
        h.start_gateway()
        yield h
    finally:
        h.stop()


def submit(h: HiveProcess, text: str, **headers: str) -> httpx.Response:
    return h.http.post("/v1/fn/echo", json={"text": text}, headers={**ASYNC, **headers}, timeout=30)


def assert_429(r: httpx.Response) -> None:
    assert r.status_code == 429, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "too_many_requests", r.text
    retry = r.headers.get("retry-after")
    assert retry is not None and retry.isdigit() and int(retry) >= 1, r.headers


# ---- 429 -------------------------------------------------------------------------------------
def test_full_queue_is_429_with_retry_after_and_gateway_keeps_serving(small_queue: HiveProcess) -> None:
    h = small_queue
    ids = []
    for i in range(QUEUE):
        r = submit(h, f"fill-{i}")
        assert r.status_code == 202, (i, r.text)
        ids.append(r.json()["id"])
    assert_429(submit(h, "one-too-many"))
    assert_429(submit(h, "still-too-many"))
    # a refused submission leaves no task behind
    listed = h.http.get("/v1/tasks", params={"fn": "echo", "limit": 100}).json()["tasks"]
    assert sorted(t["id"] for t in listed) == sorted(ids)

    health = h.http.get("/healthz", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert h.get_json("/v1/fn/echo")["queue_depth"] == QUEUE
    # other functions' queues are separate
    r = h.http.post("/v1/fn/minilm-embed", json={"text": "x"}, headers=ASYNC, timeout=30)
    assert r.status_code == 202, r.text

    # once a node drains the queue, submissions are welcome again
    h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
    for tid in ids:
        wait_task(h.http, tid, timeout=30)
    r = submit(h, "room-again")
    assert r.status_code == 202, r.text
    assert wait_task(h.http, r.json()["id"], timeout=30)["result"] == {"text": "room-again"}


def test_idempotent_retry_is_answered_even_when_the_queue_is_full(small_queue: HiveProcess) -> None:
    """A retried Idempotency-Key names a task that already holds its place in the queue; it
    adds nothing, so it must be answered with that task, not refused with 429."""
    h = small_queue
    first = submit(h, "keyed", **{"Idempotency-Key": "k-1"})
    assert first.status_code == 202, first.text
    for i in range(QUEUE - 1):
        assert submit(h, f"fill-{i}").status_code == 202
    assert_429(submit(h, "new-work"))
    retry = submit(h, "keyed", **{"Idempotency-Key": "k-1"})
    assert retry.status_code == 202, (retry.status_code, retry.text)
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers.get("idempotent-replayed") == "true"


# ---- 504 -------------------------------------------------------------------------------------
def test_deadline_on_a_queued_task_is_504_and_the_task_is_withdrawn(patient: HiveProcess) -> None:
    h = patient
    fake = FakeNode(h.url, "never-answers")
    assert fake.poll(max_items=1, wait_ms=0) == []  # now the gateway counts it as serving echo
    assert "echo" in h.get_json("/healthz")["ready"]

    t0 = time.monotonic()
    r = h.http.post("/v1/fn/echo", json={"text": "too-late"}, headers={"X-Timeout-Ms": "300"}, timeout=30)
    elapsed = time.monotonic() - t0
    assert r.status_code == 504, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "deadline_exceeded", r.text
    assert 0.25 <= elapsed < 3.0, f"504 after {elapsed:.2f}s for a 300 ms deadline"

    # the task was withdrawn: the node's next poll gets nothing, and the queue is empty
    assert fake.poll(max_items=8, wait_ms=700) == []
    assert h.get_json("/v1/fn/echo")["queue_depth"] == 0
    fake.close()


def test_deadline_on_a_task_a_node_holds_is_504_on_time(patient: HiveProcess) -> None:
    h = patient
    fake = FakeNode(h.url, "holds-forever")
    fake.poll(max_items=1, wait_ms=0)
    box: dict[str, Any] = {}

    def call() -> None:
        t0 = time.monotonic()
        box["r"] = h.http.post(
            "/v1/fn/echo", json={"text": "held"}, headers={"X-Timeout-Ms": "1500"}, timeout=30
        )
        box["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=call)
    th.start()
    got = fake.poll(max_items=1, wait_ms=3000)  # takes the task, and never answers it
    th.join(20)
    assert not th.is_alive()
    assert [t["input"] for t in got] == [{"text": "held"}]
    assert 0 < got[0]["deadline_ms"] <= 1500
    r = box["r"]
    assert r.status_code == 504, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "deadline_exceeded"
    assert 1.4 <= box["elapsed"] < 4.5, box["elapsed"]
    assert h.http.get("/healthz").status_code == 200
    fake.close()


def test_bad_timeout_header_is_422(patient: HiveProcess) -> None:
    FakeNode(patient.url, "serves").poll(max_items=1, wait_ms=0)
    for value in ("soon", "0", "-5", "999999999"):
        r = patient.http.post("/v1/fn/echo", json={"text": "x"}, headers={"X-Timeout-Ms": value})
        assert r.status_code == 422, (value, r.status_code, r.text)
        assert r.json()["error"]["field"] == "X-Timeout-Ms"
