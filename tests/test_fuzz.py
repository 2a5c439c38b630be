"""Fuzz every route of a real gateway with malformed requests (hypothesis, derandomized).

One gateway and one echo-only node are started for the module. Thousands of requests go
to client-facing routes (/v1/fn, /v1/tasks, /healthz) and node-facing routes
(/v1/nodes/...), with random methods, paths, query strings, headers (X-Timeout-Ms, Prefer,
Idempotency-Key, traceparent, Authorization, Content-Type), bodies of random bytes, random
JSON and near-valid JSON (the right keys with wrong values), some over the body limit and
some sent chunked. Part of the node-route traffic carries the real credential of a fake
node registered by the test, so the fuzz gets past authentication too.

Invariants, for every response:
  * no 5xx, except the few a well-formed call may legitimately get (see ``_allowed_5xx``:
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

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_requests import (  # noqa: E402
    DEFAULT_TIMEOUT_MS,
    FUNCTIONS,
    MAX_BODY,
    MAX_TEXT,
    MAX_TIMEOUT_MS,
    SHORT_TIMEOUT_MS,
    Req,
    client_requests,
    node_requests,
    random_requests,
    segment,
    task_requests,
)
from hivectl import Hive  # noqa: E402

pytestmark = pytest.mark.slow


FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# ---- the hive under fuzz ------------------------------------------------------------------
@dataclass
class FuzzState:
    """What the fuzz has learnt and sent so far (shared by every test of the module)."""

    hive: Hive
    client: httpx.Client
    real_node_id: str
    fake_id: str = ""
    fake_secret: str = ""
    fake_seen: float = 0.0
    task_ids: list[str] = field(default_factory=list)
    tainted: set[str] = field(default_factory=set)  # tasks handed to the fake node (it may answer anything)
    echo_tasks: dict[str, Any] = field(default_factory=dict)  # async echo task id -> its input
    keys: set[str] = field(default_factory=set)  # Idempotency-Keys sent so far
    statuses: Counter[int] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    by_route: Counter[tuple[str, int]] = field(default_factory=Counter)
    slowest: list[tuple[float, str]] = field(default_factory=list)

    def fake(self) -> tuple[str, str]:
        """The fake node's id and secret; registered again when the gateway may have dropped it."""
        if not self.fake_id or time.monotonic() - self.fake_seen > 1.0:
            r = self.client.post("/v1/nodes/register", json={"name": "fuzz-fake-node"})
            assert r.status_code == 200, r.text
            self.fake_id, self.fake_secret = r.json()["node_id"], r.json()["node_secret"]
        self.fake_seen = time.monotonic()
        return self.fake_id, self.fake_secret


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzState]:
    h = Hive(
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


# ---- sending and checking -------------------------------------------------------------------
def _resolve(state: FuzzState, req: Req) -> tuple[str, dict[str, str], bytes | None]:
    parts = []
    hdrs = dict(req.headers)
    fake_used = False
    for p in req.path:
        if isinstance(p, str):
            parts.append(p)
        elif p[0] in ("fn", "text"):
            parts.append(segment(p[1], False))
        elif p[0] == "task":
            ids = state.task_ids
            parts.append(ids[p[1] % len(ids)] if ids else "0" * 32)
        elif p[0] == "real":
            parts.append(state.real_node_id)
        else:  # fake
            parts.append(state.fake()[0])
            fake_used = True
    body = req.body
    if body and b"@task:" in body:
        ids = state.task_ids or ["0" * 32]
        body = re.sub(rb"@task:(\d+)", lambda m: ids[int(m[1]) % len(ids)].encode(), body)
    if hdrs.get("Authorization") == "fake":
        hdrs["Authorization"] = f"Bearer {state.fake()[1]}"
        if fake_used and body and req.route == "nodes/poll":
            # an authenticated poll really long-polls: keep a valid wait short so the fuzz stays fast
            try:
                obj = json.loads(body)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                wait = obj.get("wait_ms", 20_000)  # the default when absent
                if type(wait) is int and wait > 30:
                    obj["wait_ms"] = wait % 30
                    body = json.dumps(obj).encode()
    path = "".join(parts) or "/"
    return path, hdrs, body


def _timeout_ms(hdrs: dict[str, str]) -> float | None:
    raw = hdrs.get("X-Timeout-Ms")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _allowed_5xx(method: str, path: str, hdrs: dict[str, str], status: int, code: str, key_reused: bool) -> bool:
    """The 5xx a well-formed invoke may legitimately get (nothing else may be 5xx)."""
    m = re.fullmatch(r"/v1/fn/([^/]*)", path)
    if method != "POST" or m is None or unquote(m[1]) not in FUNCTIONS:
        return False
    fn = unquote(m[1])
    durable = "respond-async" in hdrs.get("Prefer", "") or "Idempotency-Key" in hdrs
    if status == 503 and code == "no_capacity":
        return fn != "echo" and not durable
    if status == 504 and code == "deadline_exceeded":
        t = _timeout_ms(hdrs)
        return (t is not None and t < SHORT_TIMEOUT_MS) or fn != "echo" or key_reused
    if status == 502 and code == "task_failed":
        return key_reused  # the key names an earlier task that failed
    return False


def _assert_error_body(r: httpx.Response, what: str) -> None:
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"{what}: error body is not JSON: {r.content[:300]!r}") from None
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"{what}: {body!r:.300}"
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], f"{what}: {err!r:.300}"
    assert isinstance(err.get("message"), str) and err["message"], f"{what}: {err!r:.300}"


def _docs_html_404(path: str, r: httpx.Response) -> bool:
    return (
        path.startswith("/docs/")
        and r.status_code == 404
        and r.headers.get("content-type", "").startswith("text/html")
    )


def _wire(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def send(state: FuzzState, req: Req) -> httpx.Response:
    path, hdrs, body = _resolve(state, req)
    key = hdrs.get("Idempotency-Key")
    key_reused = key is not None and key in state.keys
    content: Any = body
    if req.chunked and body is not None:
        content = iter([body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""])
    try:
        wire = {k: _wire(v) for k, v in hdrs.items()}
        r = state.client.request(req.method, path, params=req.query or None, headers=wire, content=content)
    except httpx.LocalProtocolError:
        return None  # type: ignore[return-value]  # h11 refused to send it: nothing reached the gateway
    except httpx.TransportError as exc:
        alive = state.hive.gateway is not None and state.hive.gateway.poll() is None
        raise AssertionError(
            f"{req.method} {path} {hdrs} body={body!r:.200}: transport error {exc!r} (gateway alive: {alive})"
        ) from exc
    state.sent += 1
    took = (r.elapsed.total_seconds(), f"{req.method} {path} {hdrs} -> {r.status_code} {r.text[:120]}")
    state.slowest = sorted([*state.slowest, took], reverse=True)[:8]
    state.statuses[r.status_code] += 1
    state.routes[req.route] += 1
    state.by_route[(req.route, r.status_code)] += 1
    what = (
        f"{req.method} {path} query={req.query} headers={hdrs} body={body!r:.200} -> {r.status_code} {r.text[:300]}"
    )
    if key is not None and r.status_code in (200, 202, 502, 504):  # the key now names a task
        state.keys.add(key)
    if req.route == "nodes/poll" and r.status_code == 200:
        # the fake node got work: remember the ids, so later fuzzed results may name them
        for t in r.json()["tasks"]:
            state.tainted.add(t["id"])
            state.task_ids.append(t["id"])
    if req.route == "nodes/leave" and r.status_code == 200:
        state.fake_id = ""  # the fuzz made its fake node leave: register a new one next time
    if r.status_code == 202 and req.route == "fn":
        state.task_ids.append(r.json()["id"])
    if req.method == "POST" and path == "/v1/fn/echo" and r.status_code in (200, 202) and not key_reused:
        sent_input = json.loads(body or b"null")  # it passed the gateway's validation, so it is JSON
        if r.status_code == 200:
            assert r.json() == sent_input, f"echo answered something else: {what}"
        else:
            state.echo_tasks[r.json()["id"]] = sent_input
    if r.status_code >= 500:
        code = ""
        try:
            code = r.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            pass
        assert _allowed_5xx(req.method, path, hdrs, r.status_code, code, key_reused), f"5xx: {what}"
        _assert_error_body(r, what)
    elif r.status_code >= 400 and req.method != "HEAD":
        if _docs_html_404(path, r):
            return r  # known, see test_docs_unknown_page_404_is_json
        _assert_error_body(r, what)
    return r


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
                assert _allowed_5xx(case.method.upper(), path, hdrs, r.status_code, code, True), (
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
    _assert_error_body(r, "GET /docs/no-such-page")


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
    _assert_error_body(other, "key reused with another input")


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
