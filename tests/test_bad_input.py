"""Bad requests get a precise JSON error, never a 5xx, and leave the hive serving.

Every error body is ``{"error": {"code", "message", "field"?}}``; clients (and the SDK)
branch on ``code`` and point at ``field``, so both are checked exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hivectl import HiveProcess

MAX_TEXT = 1000  # conftest.TEST_LIMITS
MAX_BODY = 65536
NO_FIELD = object()


def assert_error(r: httpx.Response, status: int, code: str, field: Any = NO_FIELD) -> dict[str, str]:
    """The response is a JSON error of exactly this status, code and (if given) field."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) <= {"code", "message", "field", "detail"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    if field is not NO_FIELD:
        assert err.get("field") == field, err
    return err


# ---- client routes ------------------------------------------------------------------------
def test_unknown_function_is_404(hive: HiveProcess) -> None:
    err = assert_error(hive.call("no-such-fn", text="x"), 404, "unknown_function")
    assert "no-such-fn" in err["message"]
    assert_error(hive.http.get("/v1/fn/no-such-fn"), 404, "unknown_function")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"text": "unterminated', "$"),  # malformed JSON
        (b'{"text": "a"} trailing', "$"),
        (b"", "$"),  # empty body
        (b"[1, 2]", "$"),  # a JSON array
        (b'["text"]', "$"),
        (b"null", "$"),
        (b'"text"', "$"),
        (b"42", "$"),
        (b'{"text": 5}', "text"),  # wrong type
        (b'{"text": null}', "text"),
        (b'{"text": ["a"]}', "text"),
        (b"{}", "text"),  # missing field
        (b'{"txt": "a"}', None),  # missing text and an unknown field: either may be named
        (b'{"text": ""}', "text"),  # empty text
        (b'{"text": "a", "extra": 1}', "extra"),  # unknown extra field
    ],
    ids=lambda v: v.decode()[:24] if isinstance(v, bytes) else str(v),
)
def test_invalid_body_is_422(hive: HiveProcess, body: bytes, field: str | None) -> None:
    err = assert_error(hive.post("/v1/fn/echo", body), 422, "invalid_input")
    if field is None:
        assert err["field"] in ("text", "txt")
    else:
        assert err["field"] == field


def test_text_over_max_text_chars_is_422_and_limit_itself_is_fine(hive: HiveProcess) -> None:
    """limits.max_text_chars is inclusive: 1000 chars pass, 1001 are refused naming `text`."""
    assert hive.call("echo", text="a" * MAX_TEXT).json() == {"text": "a" * MAX_TEXT}
    err = assert_error(hive.call("echo", text="a" * (MAX_TEXT + 1)), 422, "invalid_input", "text")
    assert str(MAX_TEXT) in err["message"]
    assert_error(hive.call("minilm-embed", text="é" * (MAX_TEXT + 1)), 422, "invalid_input", "text")


def test_invalid_utf8_is_422_not_500(hive: HiveProcess) -> None:
    """Bytes that are not UTF-8 are bad input, not a gateway crash."""
    assert_error(hive.post("/v1/fn/echo", b'{"text": "\xff\xfe"}'), 422, "invalid_input", "$")


def test_body_over_max_body_bytes_is_413(hive: HiveProcess) -> None:
    """Both a declared Content-Length and a chunked body that grows past the limit."""
    big = b'{"text": "' + b"a" * MAX_BODY + b'"}'
    assert_error(hive.post("/v1/fn/echo", big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"a" * 4096
        yield b'"}'

    assert_error(hive.http.post("/v1/fn/echo", content=chunks()), 413, "payload_too_large")


@pytest.mark.parametrize("value", ["abc", "", "-5", "0", "nan", "inf", "1e400", "300001", "10 s"])
def test_bad_timeout_header_is_422(hive: HiveProcess, value: str) -> None:
    r = hive.post("/v1/fn/echo", {"text": "a"}, **{"X-Timeout-Ms": value})
    assert_error(r, 422, "invalid_input", "X-Timeout-Ms")


def test_good_timeout_header_is_accepted(hive: HiveProcess) -> None:
    r = hive.post("/v1/fn/echo", {"text": "a"}, **{"X-Timeout-Ms": "30000"})
    assert r.status_code == 200 and r.json() == {"text": "a"}


def test_unknown_route_is_404_json(hive: HiveProcess) -> None:
    err = assert_error(hive.http.get("/v2/nothing/here"), 404, "not_found")
    assert "/v2/nothing/here" in err["message"]
    assert_error(hive.post("/v1/fn", {"text": "a"}), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/v1/fn/echo"), ("PUT", "/healthz"), ("PATCH", "/v1/nodes"), ("GET", "/v1/nodes/x/poll")],
)
def test_wrong_method_is_405_json(hive: HiveProcess, method: str, path: str) -> None:
    err = assert_error(hive.http.request(method, path), 405, "method_not_allowed")
    assert method in err["message"]


@pytest.mark.parametrize(
    ("method", "path", "field", "words", "constraints"),
    [
        ("GET", "/v1/tasks?limit=100000", "limit", "an integer from 1 to 500; got '100000'",
         {"type": "int", "ge": 1, "le": 500}),
        ("GET", "/v1/tasks?limit=ten", "limit", "an integer from 1 to 500; got 'ten'", {"ge": 1, "le": 500}),
        ("GET", "/v1/jobs?limit=0", "limit", "an integer from 1 to 500; got '0'", {"ge": 1, "le": 500}),
        ("GET", "/v1/datasets?limit=-3", "limit", "an integer from 1 to 500; got '-3'", {"ge": 1, "le": 500}),
        ("GET", "/v1/tasks?status=exploded", "status",
         "one of queued, running, succeeded, failed, cancelled; got 'exploded'", {"type": "str"}),
        # the wire name (format), not the handler's (fmt)
        ("POST", "/v1/datasets?format=xml", "format", "one of jsonl, csv, parquet; got 'xml'", {}),
        ("PUT", "/v1/nodes/n/jobs/j/checkpoint?step=-1", "step", "an integer >= 0; got '-1'", {"ge": 0}),
    ],
)
def test_bad_query_parameter_names_it_and_its_range(
    hive: HiveProcess, method: str, path: str, field: str, words: str, constraints: dict[str, Any]
) -> None:
    err = assert_error(hive.http.request(method, path, content=b""), 400, "invalid_parameter", field)
    assert f"query parameter `{field}` must be {words}" in err["message"], err
    (param,) = err["detail"]["parameters"]
    assert param["name"] == field and param["in"] == "query"
    assert constraints.items() <= param["constraints"].items(), param
    assert "Validation failed" not in err["message"]


def test_every_bad_parameter_is_named(hive: HiveProcess) -> None:
    err = assert_error(hive.http.get("/v1/tasks?limit=9999&status=nope"), 400, "invalid_parameter")
    assert {p["name"] for p in err["detail"]["parameters"]} == {"limit", "status"}
    assert "`limit`" in err["message"] and "`status`" in err["message"], err


def test_healthz_says_why_a_function_is_not_served(echo_hive: HiveProcess) -> None:
    r = echo_hive.http.get("/healthz")
    assert r.status_code == 200, r.text
    unserved = {u["function"]: u for u in r.json()["not_served"]}
    assert "echo" not in unserved and "echo" in r.json()["ready"]
    embed = unserved["minilm-embed"]
    assert embed["version"] == "minilm-embed@1.0.0" and embed["state"] == "unplaced", embed
    assert "node.functions" in embed["reason"], embed  # the node was started with --functions echo


def test_function_without_node_is_503_at_once(echo_hive: HiveProcess) -> None:
    """minilm-embed is in the catalog but no node hosts it: a fast 503, never a hang."""
    t0 = time.monotonic()
    r = echo_hive.call("minilm-embed", text="nobody serves me")
    elapsed = time.monotonic() - t0
    err = assert_error(r, 503, "no_capacity")
    assert elapsed < 0.5, f"503 took {elapsed:.2f} s"
    assert "minilm-embed" in err["message"] and " " in err["message"].strip()
    assert r.headers.get("retry-after", "").isdigit(), r.headers
    assert echo_hive.call("echo", text="still fine").json() == {"text": "still fine"}


# ---- node routes ------------------------------------------------------------------------
NODE_GARBAGE: list[tuple[str, str, bytes]] = [
    ("POST", "/v1/nodes/register", b"{"),
    ("POST", "/v1/nodes/register", b""),
    ("POST", "/v1/nodes/register", b"[]"),
    ("POST", "/v1/nodes/register", b"{}"),
    ("POST", "/v1/nodes/register", b'{"name": 5}'),
    ("POST", "/v1/nodes/register", b'{"name": ""}'),
    ("POST", "/v1/nodes/register", b'{"name": "x", "devices": "cpu"}'),
    ("POST", "/v1/nodes/register", b'{"name": "x", "devices": [{"kind": ""}]}'),
    ("POST", "/v1/nodes/register", b'{"name": "x", "devices": [{"kind": "cpu", "memory_mb": -1}]}'),
    ("POST", "/v1/nodes/register", b'{"name": "x", "bogus": true}'),
    ("POST", "/v1/nodes/register", b'{"name": "\xff"}'),
    ("POST", "/v1/nodes/nope/poll", b"{}"),  # unknown node id
    ("POST", "/v1/nodes/nope/poll", b"{"),
    ("POST", "/v1/nodes/nope/poll", b"17"),
    ("POST", "/v1/nodes/nope/poll", b'{"functions": "echo"}'),
    ("POST", "/v1/nodes/nope/poll", b'{"max_items": -1}'),
    ("POST", "/v1/nodes/nope/poll", b'{"wait_ms": 1000000000}'),
    ("POST", "/v1/nodes/nope/poll", b'{"results": [{"id": 5}]}'),
    ("POST", "/v1/nodes/nope/poll", b'{"results": [{"id": "t", "batch_size": "x"}]}'),
    ("POST", "/v1/nodes/nope/poll", b'{"results": [{"id": "t", "output": }]}'),
    ("POST", "/v1/nodes/nope/poll", b'{"functions": ["\xff"]}'),
    ("POST", "/v1/nodes/nope/heartbeat", b"{}"),
    ("POST", "/v1/nodes/nope/heartbeat", b"{"),
    ("POST", "/v1/nodes/nope/heartbeat", b'{"stats": [{"device": 5}]}'),
    ("POST", "/v1/nodes/nope/heartbeat", b'{"draining": "yes"}'),
    ("POST", "/v1/nodes/nope/results", b"{}"),
    ("POST", "/v1/nodes/nope/results", b"not json"),
    ("POST", "/v1/nodes/nope/results", b'{"results": {"id": "t"}}'),
    ("POST", "/v1/nodes/nope/results", b'{"results": [{"id": "t", "error": {"code": 1}}]}'),
    ("DELETE", "/v1/nodes/nope", b""),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), NODE_GARBAGE, ids=[f"{m} {p} {b[:30]!r}" for m, p, b in NODE_GARBAGE]
)
def test_node_routes_reject_garbage_with_4xx_json(hive: HiveProcess, method: str, path: str, body: bytes) -> None:
    r = hive.http.request(method, path, content=body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] in ("invalid_input", "unknown_node", "unauthorized"), err
    assert err["message"]


def test_poll_for_unknown_node_says_register_again(hive: HiveProcess) -> None:
    assert_error(hive.post("/v1/nodes/0123456789abcdef/poll", b"{}"), 404, "unknown_node")


def test_registered_node_gets_field_precise_errors(hive: HiveProcess) -> None:
    """Garbage from a node the gateway knows is still a 422 naming the field."""
    reg = hive.post("/v1/nodes/register", {"name": "fake-node"})
    assert reg.status_code == 200, reg.text
    nid = reg.json()["node_id"]
    secret = reg.json().get("node_secret")  # hives with per-session node credentials issue one
    auth = {"Authorization": f"Bearer {secret}"} if secret else {}
    try:
        bad_stats = b'{"stats": [{"device": "cpu:0", "utilisation": "high"}]}'
        r = hive.post(f"/v1/nodes/{nid}/heartbeat", bad_stats, **auth)
        assert_error(r, 422, "invalid_input", "stats[0].utilisation")
        r = hive.post(f"/v1/nodes/{nid}/poll", b'{"max_items": 5000}', **auth)
        assert_error(r, 422, "invalid_input", "max_items")
        r = hive.post(f"/v1/nodes/{nid}/results", b'{"results": [{"id": "no-such-task", "output": 1}]}', **auth)
        assert r.status_code == 200 and r.json() == {"accepted": 0}, r.text  # a stray result is dropped
        if secret:  # someone else's garbage under this id is refused
            r = hive.post(f"/v1/nodes/{nid}/heartbeat", b"{}", Authorization="Bearer wrong")
            assert_error(r, 401, "unauthorized")
    finally:
        assert hive.http.delete(f"/v1/nodes/{nid}", headers=auth).status_code == 200
    assert "fake-node" not in hive.node_names()


def test_hive_still_healthy_after_all_of_the_above(hive: HiveProcess) -> None:
    """Runs last in this module: nothing above broke the gateway or the node."""
    health = hive.get_json("/healthz")
    assert health is not None and health["status"] == "ok"
    assert set(health["ready"]) == {"echo", "minilm-embed"}
    assert hive.call("echo", text="after the storm").json() == {"text": "after the storm"}
    assert len(hive.call("minilm-embed", text="after the storm").json()["embedding"]) == 384
    assert hive.gateway is not None and hive.gateway.poll() is None
    assert all(p.poll() is None for p in hive.nodes.values())
