"""Sending one fuzz request to the hive under test and checking the invariants on its answer.

Kept apart from the tests (tests/test_fuzz.py) the way the generators are
(tests/fuzz_requests.py): what a request is, how it is sent, what every answer must be.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from fuzz_requests import FUNCTIONS, SHORT_TIMEOUT_MS, Req, segment
from hivectl import HiveProcess

__all__ = ["FuzzState", "allowed_5xx", "assert_error_body", "send"]

@dataclass
class FuzzState:
    """What the fuzz has learnt and sent so far (shared by every test of the module)."""

    hive: HiveProcess
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


def allowed_5xx(method: str, path: str, hdrs: dict[str, str], status: int, code: str, key_reused: bool) -> bool:
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


def assert_error_body(r: httpx.Response, what: str) -> None:
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
        assert allowed_5xx(req.method, path, hdrs, r.status_code, code, key_reused), f"5xx: {what}"
        assert_error_body(r, what)
    elif r.status_code >= 400 and req.method != "HEAD":
        if _docs_html_404(path, r):
            return r  # known, see test_docs_unknown_page_404_is_json
        assert_error_body(r, what)
    return r
