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
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hivectl import Hive  # noqa: E402

pytestmark = pytest.mark.slow

MAX_BODY = 65536
MAX_TEXT = 1000
DEFAULT_TIMEOUT_MS = 500  # a durable sync call waiting on an unserved function gives up fast
MAX_TIMEOUT_MS = 1000
SHORT_TIMEOUT_MS = 200  # an echo call under a deadline this short may 504 on a busy machine
FUNCTIONS = ("echo", "minilm-embed")  # the catalog; only echo has a node

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


# ---- strategies ---------------------------------------------------------------------------
_header_char = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
header_text = st.text(_header_char, max_size=60) | st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
).map(str.strip)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=8,
)
fn_names = st.sampled_from(
    ["echo"] * 6 + ["minilm-embed"] * 2 + ["ECHO", "echo ", "nope", "..", "%", "echo/x", "?"]
).flatmap(lambda n: st.text(max_size=40) if n == "?" else st.just(n))
# long texts around max_text_chars, built by repetition (drawing 1000 characters one by one is slow)
texts = st.text(max_size=30) | st.text(min_size=1, max_size=30) | st.tuples(
    st.sampled_from(["a", "\u00e9", "\U0001f600", "\x00"]), st.sampled_from([MAX_TEXT, MAX_TEXT + 1])
).map(lambda t: t[0] * t[1])
name_lists = st.lists(st.sampled_from(["echo", "nope", ""]) | st.text(max_size=20), max_size=4)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], good_in: int = 4) -> st.SearchStrategy[Any]:
    """``good`` ``good_in`` times out of ``good_in + 1``, else ``bad``."""
    return st.sampled_from([True] * good_in + [False]).flatmap(lambda ok: good if ok else bad)


def _loose(pool: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with some of the right keys, each value mostly right-shaped, sometimes an extra key."""
    return st.fixed_dictionaries({}, optional={k: mostly(v, json_values) for k, v in pool.items()}).flatmap(
        lambda d: mostly(st.just(d), st.builds(lambda v: {**d, "extra": v}, json_values), 6)
    )


task_results = _loose(
    {
        "id": st.text(max_size=70),
        "output": json_values,
        "error": st.none()
        | _loose({"code": st.text(max_size=10), "message": st.text(max_size=20), "field": st.text()}),
        "run_ms": st.floats(),
        "batch_size": st.integers(),
    }
)
NEAR_VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "fn": mostly(st.fixed_dictionaries({"text": texts}), _loose({"text": texts}), 2),
    "register": _loose(
        {
            "name": st.text(max_size=130),
            "site": st.text(max_size=70),
            "host": st.text(max_size=20),
            "pid": st.integers(),
            "version": st.text(max_size=40),
            "devices": st.lists(
                _loose(
                    {
                        "kind": st.sampled_from(["cpu", "cuda", ""]) | st.text(max_size=40),
                        "index": st.integers(),
                        "memory_mb": st.integers(),
                        "dtypes": name_lists,
                        "capabilities": name_lists,
                    }
                ),
                max_size=3,
            ),
        }
    ),
    "poll": _loose(
        {
            "functions": name_lists,
            "max_items": st.integers(-2, 5000),
            "wait_ms": st.integers(-2, 200_000),
            "results": st.lists(task_results, max_size=3),
        }
    ),
    "heartbeat": _loose(
        {
            "functions": name_lists,
            "loading": name_lists,
            "stats": st.lists(
                _loose({"device": st.text(max_size=10), "free_memory_mb": st.integers(), "utilisation": st.floats()}),
                max_size=2,
            ),
            "draining": st.booleans(),
        }
    ),
}


fn_subsets = st.lists(st.sampled_from(["echo", "minilm-embed", "nope"]), max_size=3, unique=True)
# "@task:N" in a body is replaced by the N-th task id the fuzz has seen (see _resolve)
task_id_refs = st.integers(0, 1000).map(lambda n: f"@task:{n}") | st.text("0123456789abcdef", min_size=1, max_size=32)
WELL_FORMED: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "register": st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=20)},
        optional={"devices": st.just([{"kind": "cpu", "memory_mb": 1024}]), "site": st.just("fuzz")},
    ),
    "heartbeat": st.fixed_dictionaries(
        {"functions": fn_subsets}, optional={"loading": fn_subsets, "draining": st.booleans()}
    ),
    "poll": st.fixed_dictionaries(
        {"functions": fn_subsets, "max_items": st.integers(0, 4), "wait_ms": st.integers(0, 20)},
        optional={
            "results": st.lists(
                st.fixed_dictionaries(
                    {"id": task_id_refs},
                    optional={
                        "output": json_values,
                        "error": st.just({"code": "model_error", "message": "fuzz"}),
                        "run_ms": st.floats(0, 1e6),
                        "batch_size": st.integers(1, 10),
                    },
                ),
                max_size=3,
            )
        },
    ),
}
WELL_FORMED["results"] = WELL_FORMED["poll"]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def bodies(draw: st.DrawFn, kind: str) -> bytes | None:
    """A body: near-valid JSON for the route most often, else random JSON, bytes, nothing or too much."""
    what = draw(
        st.sampled_from(["near"] * 10 + ["json", "json", "bytes", "bytes", "big bytes", "empty", "none", "limit"])
    )
    if what == "near":
        return _json_bytes(draw(NEAR_VALID.get(kind, json_values)))
    if what == "json":
        return _json_bytes(draw(json_values))
    if what == "bytes":
        return draw(st.binary(max_size=512))
    if what == "big bytes":  # from a seed: cheap to draw, the same bytes on every run
        seed, size = draw(st.integers(0, 2**32)), draw(st.integers(1000, 20000))
        return random.Random(seed).randbytes(size)
    if what == "limit":  # exactly at the body limit, one byte over, far over (node routes accept 64 MiB)
        n = draw(st.sampled_from([MAX_BODY - 12, MAX_BODY - 11, MAX_BODY * 2]))
        return b'{"text": "' + b"a" * n + b'"}'
    return b"" if what == "empty" else None


prefer = mostly(
    st.just("respond-async"),
    st.sampled_from(["respond-async, wait=5", "wait=1", "RESPOND-ASYNC", ""]) | header_text,
    2,
)
timeouts = mostly(
    st.integers(50, MAX_TIMEOUT_MS).map(str),
    st.integers(-5, MAX_TIMEOUT_MS + 5).map(str)
    | st.floats().map(repr)
    | st.sampled_from(["nan", "inf", "-inf", "1e400", "0.5", "1e-300", "0x10", " 100 ", "1_000", "١٠٠"])
    | header_text,
    2,
)
traceparents = (
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1), st.integers(0, 255)).map(
        lambda t: f"00-{t[0]:032x}-{t[1]:016x}-{t[2]:02x}"
    )
    | st.sampled_from(["00-zz-zz-01", f"00-{'0' * 32}-{'0' * 16}-01", "ff-" + "+" * 32 + "-1_" * 5 + "a-x"])
    | header_text
)
idem_keys = mostly(
    st.text(_header_char, min_size=1, max_size=24),
    st.sampled_from(["", "a" * 200, "a" * 201]) | header_text,
)
content_types = mostly(
    st.just("application/json"),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/msgpack",
            "*/*",
        ]
    )
    | header_text,
    1,
)
# which credential a request carries; "fake" is the live fake node's secret
auths = st.sampled_from(["fake", "fake", "Bearer ", "Bearer chn_wrong", "Basic Zm9vOmJhcg==", "bearer"]) | header_text


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    out: dict[str, str] = {}
    choices = {
        "X-Timeout-Ms": timeouts,
        "Prefer": prefer,
        "Idempotency-Key": idem_keys,
        "traceparent": traceparents,
        "Authorization": auths,
        "Content-Type": content_types,
    }
    for name, strat in choices.items():
        if draw(st.booleans()):
            out[name] = draw(strat)
    if draw(st.sampled_from([False] * 9 + [True])):  # a random extra header
        out[draw(st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=12))] = draw(
            header_text
        )
    return out


@st.composite
def methods(draw: st.DrawFn, usual: str = "POST") -> str:
    """The route's usual method most often, else another one or a made-up token."""
    m = draw(st.sampled_from([usual] * 16 + ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "?"]))
    if m == "?":
        return draw(st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=8))
    return m


def segment(s: str, raw: bool) -> str:
    """Percent-encode a path segment; ``raw`` keeps '/' so it splits into more segments."""
    return quote(s, safe="/" if raw else "")


# a reference to a task or node id, resolved against the fuzz state when the request is sent
_text_ref = st.text(max_size=70).map(lambda s: ("text", s))
task_refs = st.tuples(st.just("task"), st.integers(0, 1000)) | _text_ref
node_refs = st.sampled_from([("fake",)] * 5 + [("real",), ("?",)]).flatmap(
    lambda r: _text_ref if r == ("?",) else st.just(r)
)


@dataclass
class Req:
    method: str
    path: list[Any]  # str parts and id references
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    chunked: bool = False
    route: str = ""


queries = st.lists(
    st.tuples(
        st.sampled_from(["limit", "status", "cursor", "fn"]) | st.text(max_size=8),
        st.sampled_from(["0", "1", "500", "501", "-1", "queued", "succeeded", "nope", "1:x", "nan:x", "1e999:"])
        | st.text(max_size=20)
        | st.integers().map(str),
    ),
    max_size=4,
)


@st.composite
def client_requests(draw: st.DrawFn) -> Req:
    """/v1/fn, /v1/fn/{name}, /healthz: mostly POST invokes, near-valid bodies, every header;
    one in four a well-formed invoke (sync or async, with or without an Idempotency-Key)."""
    if draw(st.sampled_from([True, False, False, False])):
        fn = draw(st.sampled_from(["echo"] * 4 + ["minilm-embed"]))
        hdrs: dict[str, str] = {}
        if draw(st.booleans()):
            hdrs["Prefer"] = "respond-async"
        if draw(st.sampled_from([True, False, False])):
            hdrs["Idempotency-Key"] = draw(st.text(_header_char, min_size=1, max_size=24))
        if draw(st.sampled_from([True, False, False])):
            hdrs["X-Timeout-Ms"] = str(draw(st.integers(50, MAX_TIMEOUT_MS)))
        if draw(st.sampled_from([True, False, False])):
            hdrs["traceparent"] = draw(traceparents)
        if draw(st.booleans()):
            hdrs["Content-Type"] = "application/json"
        text = draw(st.text(min_size=1, max_size=40))
        return Req("POST", ["/v1/fn/", ("fn", fn)], [], hdrs, _json_bytes({"text": text}), False, "fn")
    method = draw(methods("POST"))
    name = draw(fn_names)
    path = draw(st.sampled_from([["/v1/fn/", ("fn", name)]] * 12 + [["/v1/fn"], ["/v1/fn/"], ["/healthz"]]))
    return Req(method, path, draw(queries) if draw(st.integers(0, 4)) == 0 else [], draw(headers()),
               draw(bodies("fn")), draw(st.integers(0, 9)) == 0, "fn")


@st.composite
def task_requests(draw: st.DrawFn) -> Req:
    """/v1/tasks and /v1/tasks/{id}: GET, DELETE and others, known and random ids, list queries."""
    method = draw(st.sampled_from(["GET", "DELETE"]).flatmap(methods))
    path = draw(st.sampled_from([["/v1/tasks"], ["/v1/tasks/", "id"], ["/v1/tasks/", "id", "/", "x"]]))
    path = [draw(task_refs) if p == "id" else p for p in path]
    return Req(method, path, draw(queries), draw(headers()), draw(bodies("none")), False, "tasks")


@st.composite
def node_requests(draw: st.DrawFn) -> Req:
    """Node-facing routes, with the fake node's real credential about half the time; one in
    three a well-formed call of the fake node (so the fuzz reaches past validation and auth)."""
    kind = draw(st.sampled_from(["register", "poll", "results", "heartbeat", "leave", "list"]))
    if kind not in ("list", "leave") and draw(st.sampled_from([True, False, False])):
        body = _json_bytes(draw(WELL_FORMED[kind]))
        path = ["/v1/nodes/register"] if kind == "register" else ["/v1/nodes/", ("fake",), f"/{kind}"]
        hdrs = {} if kind == "register" else {"Authorization": "fake"}  # an open hive refuses unknown tokens
        return Req("POST", path, [], hdrs, body, False, f"nodes/{kind}")
    node = draw(node_refs)
    path: list[Any] = {
        "register": ["/v1/nodes/register"],
        "poll": ["/v1/nodes/", node, "/poll"],
        "results": ["/v1/nodes/", node, "/results"],
        "heartbeat": ["/v1/nodes/", node, "/heartbeat"],
        "leave": ["/v1/nodes/", node],
        "list": ["/v1/nodes"],
    }[kind]
    default_method = {"leave": "DELETE", "list": "GET"}.get(kind, "POST")
    method = draw(methods(default_method))
    body_kind = {"results": "poll", "leave": "none", "list": "none"}.get(kind, kind)
    hdrs = draw(headers())
    if draw(st.booleans()):
        hdrs["Authorization"] = "fake"
    return Req(method, path, [], hdrs, draw(bodies(body_kind)), draw(st.integers(0, 14)) == 0, f"nodes/{kind}")


@st.composite
def random_requests(draw: st.DrawFn) -> Req:
    """Any method on random paths under the API's prefixes."""
    prefix = draw(st.sampled_from(["/v1/fn/", "/v1/tasks/", "/v1/nodes/", "/v1/", "/", "/docs/", "/healthz/"]))
    segs = draw(st.lists(st.text(max_size=20), max_size=4))
    raw = draw(st.booleans())
    path = [prefix + "/".join(segment(s, raw) for s in segs)]
    return Req(draw(methods("GET")), path, draw(queries), draw(headers()), draw(bodies("none")), False, "random")


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
