"""Fuzz every route of a real gateway with malformed requests (hypothesis, derandomized).

One gateway and one echo-only node are started for the module. Thousands of requests go
to client-facing routes (/v1/fn, /v1/tasks, /healthz) and node-facing routes
(/v1/nodes/...), with random methods, paths, query strings, headers (X-Timeout-Ms, Prefer,
Idempotency-Key, traceparent, Authorization, Content-Type), bodies of random bytes, random
JSON and near-valid JSON (the right keys with wrong values), some over the body limit and
some sent chunked. Part of the node-route traffic carries the real credential of a fake
node registered by the test, so the fuzz gets past authentication too.

Invariants, for every response:
  * no 5xx, except the few a well-formed call may legitimately get (see ``fuzz_send.allowed_5xx``:
    503 ``no_capacity`` for a function no node serves, 504 ``deadline_exceeded`` under a
    tiny X-Timeout-Ms or while waiting for an unserved function, 502 ``task_failed`` for an
    Idempotency-Key whose earlier task failed); those must be JSON errors too;
  * every 4xx (and allowed 5xx) has a JSON body ``{"error": {"code": str, "message": str}}``.
Afterwards the gateway and the node are alive, /healthz is 200, echo answers, and the
gateway log has no unhandled exception.

A second test drives schemathesis (if installed) over the gateway's own OpenAPI document
(/docs/openapi.json), positive and negative modes, with the same two invariants.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_requests import (  # noqa: E402
    DEFAULT_TIMEOUT_MS,
    MAX_BODY,
    MAX_TEXT,
    MAX_TIMEOUT_MS,
    Req,
    client_requests,
    node_requests,
    random_requests,
    task_requests,
)
from fuzz_send import FuzzState, allowed_5xx, assert_error_body, send  # noqa: E402
from hivectl import HiveProcess  # noqa: E402

pytestmark = pytest.mark.slow


FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# ---- the hive under fuzz ------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzState]:
    h = HiveProcess(
        tmp_path_factory.mktemp("fuzz-hive"),
        node={"torch_threads": 0},
        limits={
            "max_text_chars": MAX_TEXT,
            "max_body_bytes": MAX_BODY,
            "node_timeout_s": 2.0,
            "default_timeout_ms": DEFAULT_TIMEOUT_MS,
            "max_timeout_ms": MAX_TIMEOUT_MS,
        },
    )
    try:
        h.start_gateway()
        h.start_node("node-echo", "--functions", "echo", wait_for=["echo"])
        # the first call may wait for the node's first poll with echo loaded (up to ~1 s)
        r = h.post("/v1/fn/echo", {"text": "warm-up"}, **{"X-Timeout-Ms": str(MAX_TIMEOUT_MS)})
        assert r.json() == {"text": "warm-up"}, r.text
        real = [n["id"] for n in h.get_json("/v1/nodes")["nodes"] if n["name"] == "node-echo"]
        with httpx.Client(base_url=h.url, timeout=httpx.Timeout(20.0)) as client:
            state = FuzzState(hive=h, client=client, real_node_id=real[0])
            yield state
            print(
                f"\nfuzz: {state.sent} requests; statuses {dict(sorted(state.statuses.items()))}; "
                f"routes {dict(state.routes.most_common())}"
            )
            print("by route and status:", ", ".join(f"{r} {c}: {n}" for (r, c), n in sorted(state.by_route.items())))
            print("slowest:")
            for t, what in state.slowest:
                print(f"  {t * 1000:.0f} ms  {what}")
    except BaseException:
        print(h.all_logs(), file=sys.stderr)
        raise
    finally:
        h.stop()


# ---- the tests ----------------------------------------------------------------------------
@settings(FUZZ, max_examples=800)
@given(req=client_requests())
def test_fuzz_client_routes(fuzz: FuzzState, req: Req) -> None:
    send(fuzz, req)


@settings(FUZZ, max_examples=400)
@given(req=task_requests())
def test_fuzz_task_routes(fuzz: FuzzState, req: Req) -> None:
    send(fuzz, req)


@settings(FUZZ, max_examples=700)
@given(req=node_requests())
def test_fuzz_node_routes(fuzz: FuzzState, req: Req) -> None:
    send(fuzz, req)


@settings(FUZZ, max_examples=400)
@given(req=random_requests())
def test_fuzz_random_paths(fuzz: FuzzState, req: Req) -> None:
    send(fuzz, req)


def test_schemathesis_openapi(fuzz: FuzzState) -> None:
    """Schemathesis over /docs/openapi.json: positive and negative cases for every operation."""
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    h = fuzz.hive
    schema = schemathesis.openapi.from_url(f"{h.url}/docs/openapi.json")
    import requests

    session = requests.Session()
    seen: Counter[int] = Counter()

    def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
        if 400 <= response.status_code < 600 and case.method.upper() != "HEAD":
            body = response.json()
            err = body["error"]
            assert isinstance(err["code"], str) and isinstance(err["message"], str), body
        return None

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategy = schema.as_strategy(generation_mode=mode)

        @settings(FUZZ, max_examples=120)
        @given(case=strategy)
        def check(case: Any) -> None:
            r = case.call(base_url=h.url, session=session, timeout=20)
            seen[r.status_code] += 1
            if r.status_code >= 500:
                # same allowances as the hand-written fuzz (an unserved function, a tiny deadline)
                hdrs = dict(case.headers or {})
                code = r.json().get("error", {}).get("code", "")
                path = r.request.path_url.split("?")[0]
                assert allowed_5xx(case.method.upper(), path, hdrs, r.status_code, code, True), (
                    f"{case.method} {path}: {r.status_code} {r.text[:300]}"
                )
                checks = [error_shape]
            else:
                checks = [not_a_server_error, error_shape]
            case.validate_response(r, checks=checks)

        check()
    print(f"\nschemathesis: {sum(seen.values())} requests; statuses {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= 200


def test_docs_unknown_page_404_is_json(fuzz: FuzzState) -> None:
    r = fuzz.client.get("/docs/no-such-page")
    assert r.status_code == 404
    assert_error_body(r, "GET /docs/no-such-page")


def test_sub_millisecond_timeout_is_422(fuzz: FuzzState) -> None:
    r = fuzz.client.post("/v1/fn/echo", json={"text": "a"}, headers={"X-Timeout-Ms": "0.001"})
    assert r.status_code == 422, r.text


def test_idempotency_key_reused_for_another_call_is_4xx(fuzz: FuzzState) -> None:
    first = fuzz.client.post(
        "/v1/fn/echo", json={"text": "first"}, headers={"Prefer": "respond-async", "Idempotency-Key": "fuzz-reuse"}
    )
    assert first.status_code == 202, first.text
    other = fuzz.client.post(
        "/v1/fn/echo", json={"text": "second"}, headers={"Prefer": "respond-async", "Idempotency-Key": "fuzz-reuse"}
    )
    assert 400 <= other.status_code < 500, (other.status_code, other.text)
    assert_error_body(other, "key reused with another input")


def test_hive_survives_the_fuzz(fuzz: FuzzState) -> None:
    """Runs last in this module: everything still up and serving."""
    h = fuzz.hive
    assert h.gateway is not None and h.gateway.poll() is None, h.log("gateway")
    assert h.nodes["node-echo"].poll() is None, h.log("node-echo")
    r = h.http.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    h.wait_ready(["echo"], timeout=10, node="node-echo")
    r = h.call("echo", text="after the fuzz")
    assert r.status_code == 200 and r.json() == {"text": "after the fuzz"}, r.text
    r = h.post("/v1/fn/echo", {"text": "async after the fuzz"}, Prefer="respond-async")
    assert r.status_code == 202, r.text
    tid = r.json()["id"]
    end = time.monotonic() + 10
    while time.monotonic() < end:
        task = h.get_json(f"/v1/tasks/{tid}")
        if task and task["status"] == "succeeded":
            break
        time.sleep(0.05)
    assert task and task["status"] == "succeeded" and task["result"] == {"text": "async after the fuzz"}, task
    # every async echo task the fuzz created finished with its own input as the result
    pending = dict(fuzz.echo_tasks)
    end = time.monotonic() + 15
    outcomes: Counter[str] = Counter()
    while pending and time.monotonic() < end:
        for tid, sent_input in list(pending.items()):
            task = h.get_json(f"/v1/tasks/{tid}")
            assert task is not None, f"task {tid} vanished"
            if tid in fuzz.tainted:
                if task["status"] in ("queued", "running"):
                    continue
            elif task["status"] == "succeeded":
                assert task["result"] == sent_input, task
            elif task["status"] == "failed":
                # only a task the fuzz's fake node took (and never answered) may fail
                assert set(task["attempts"]) - {fuzz.real_node_id}, task
            elif task["status"] == "cancelled":
                pass  # the fuzz may DELETE a task it knows
            else:
                continue
            outcomes[task["status"]] += 1
            del pending[tid]
        time.sleep(0.1)
    assert not pending, f"{len(pending)} async echo tasks never finished: {list(pending)[:5]}"
    print(f"\nasync echo tasks from the fuzz: {dict(outcomes)}; {len(fuzz.tainted)} handed to the fake node")
    log = (h.logs / "gateway.log").read_text(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log, log[-4000:]
    if {"fn", "tasks", "random", "nodes/poll"} <= set(fuzz.routes):  # every fuzz test ran (no -k)
        assert fuzz.sent >= 2200, fuzz.sent
