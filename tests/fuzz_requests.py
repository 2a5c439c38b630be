"""Request generators for the fuzz test: hypothesis strategies for every route's traffic.

Kept apart from tests/test_fuzz.py (which owns the hive, sending and the invariants) so
each file holds one concept: what malformed traffic looks like, and what must hold for it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

MAX_BODY = 65536
MAX_TEXT = 1000
DEFAULT_TIMEOUT_MS = 500  # a durable sync call waiting on an unserved function gives up fast
MAX_TIMEOUT_MS = 1000
SHORT_TIMEOUT_MS = 200  # an echo call under a deadline this short may 504 on a busy machine
FUNCTIONS = ("echo", "minilm-embed")  # the catalog; only echo has a node


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
    joined = prefix + "/".join(segment(s, raw) for s in segs)
    # a path starting with "//" would be a network-path reference (another host), not a path
    path = ["/" + joined.lstrip("/")]
    return Req(draw(methods("GET")), path, draw(queries), draw(headers()), draw(bodies("none")), False, "random")
