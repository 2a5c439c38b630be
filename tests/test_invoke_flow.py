"""The seams of the one invoke flow, against a real gateway process.

Every check runs before a response starts, so a streamed call is refused with a status
line and a JSON body like any other call (it used to get a 200 and an empty or dropped
body). The front door serves invoke with and without a trailing slash, and other methods
on its paths get the same 405 as every route. A sync call with an Idempotency-Key answers
with the same headers as a plain one.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fakenode import FakeNode
from hivectl import HiveProcess

QUEUE = 2
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
GEN = "smollm2-chat@1.0.0"


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """A real echo node, and a fake node that holds smollm2-chat but never answers, so a
    generation queue can be filled without a model."""
    h = HiveProcess(tmp_path_factory.mktemp("invoke-flow"), limits={"queue_size": QUEUE, "node_timeout_s": 60.0,
                                                            "lease_s": 300.0}, node={"torch_threads": 0})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
        fake = FakeNode(h.url, "holds-generation")
        assert fake.poll(functions=[GEN], max_items=0, wait_ms=0) == []
        yield h
    finally:
        h.stop()


def _refused_before_any_body(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["error"]["code"] == code, body
    return body


def test_streamed_call_with_a_bad_preference_is_a_422_not_a_200(hive: HiveProcess) -> None:
    for extra in ({"json": CHAT | {"stream": True}}, {"json": CHAT, "headers": {"accept": "text/event-stream"}}):
        headers = {"x-hive-prefer": "sometimes"} | extra.get("headers", {})
        with hive.http.stream("POST", "/v1/fn/smollm2-chat", json=extra["json"], headers=headers) as r:
            r.read()
        body = _refused_before_any_body(r, 422, "invalid_input")
        assert body["error"]["field"] == "X-Hive-Prefer", body


def test_streamed_call_to_a_full_queue_is_a_429_with_retry_after(hive: HiveProcess) -> None:
    for i in range(QUEUE):  # journaled calls wait in the queue: the fake node never takes them
        r = hive.http.post("/v1/fn/smollm2-chat", json=CHAT, headers={"prefer": "respond-async"})
        assert r.status_code == 202, (i, r.text)
    with hive.http.stream("POST", "/v1/fn/smollm2-chat", json=CHAT | {"stream": True}) as r:
        r.read()
    _refused_before_any_body(r, 429, "too_many_requests")
    assert int(r.headers["retry-after"]) >= 1
    # the OpenAI route streams through the same flow: refused the same way, in OpenAI's shape
    chat = {"model": "smollm2-chat", "messages": CHAT["messages"], "stream": True}
    with hive.http.stream("POST", "/v1/chat/completions", json=chat) as r:
        r.read()
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_requests", r.text
    # nothing was queued by the refused calls
    assert hive.get_json("/v1/fn/smollm2-chat")["queue_depth"] == QUEUE


def test_invoke_with_a_trailing_slash_is_the_same_call(hive: HiveProcess) -> None:
    plain = hive.http.post("/v1/fn/echo", json={"text": "slash"})
    slashed = hive.http.post("/v1/fn/echo/", json={"text": "slash"})
    assert plain.status_code == slashed.status_code == 200, (plain.text, slashed.text)
    assert slashed.json() == plain.json() == {"text": "slash"}
    assert slashed.headers["x-hive-version"] == "echo@1.0.0"
    # and its errors are the front door's, not a second implementation's
    bad = hive.http.post("/v1/fn/echo/", json={"txt": "slash"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "txt", bad.text


@pytest.mark.parametrize("method,path", [
    ("PUT", "/v1/fn/echo"), ("PUT", "/v1/fn/echo/"), ("DELETE", "/v1/fn/echo"),
    ("GET", "/v1/nodes/x/poll"), ("GET", "/v1/nodes/x/poll/"), ("PATCH", "/v1/nodes/x/poll"),
])
def test_other_methods_on_the_front_door_paths_are_405_json(hive: HiveProcess, method: str, path: str) -> None:
    r = hive.http.request(method, path)
    assert r.status_code == 405, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == "method_not_allowed" and method in err["message"], err


def test_idempotent_sync_call_answers_with_the_plain_calls_headers(hive: HiveProcess) -> None:
    plain = hive.http.post("/v1/fn/echo", json={"text": "headers"})
    want = {h for h in plain.headers if h.startswith("x-hive-") and h != "x-hive-batch"}
    assert {"x-hive-version", "x-hive-node", "x-hive-energy-j", "x-hive-dtype"} <= want, plain.headers
    first = hive.http.post("/v1/fn/echo", json={"text": "headers"}, headers={"idempotency-key": "hdr-1"})
    replayed = hive.http.post("/v1/fn/echo", json={"text": "headers"}, headers={"idempotency-key": "hdr-1"})
    for r in (first, replayed):
        assert r.status_code == 200 and r.json() == {"text": "headers"}, r.text
        assert want <= set(r.headers), (want - set(r.headers), r.headers)
        assert r.headers["x-hive-version"] == "echo@1.0.0"
        assert r.headers["x-hive-node"] == plain.headers["x-hive-node"]
    assert first.headers["x-hive-task"] == replayed.headers["x-hive-task"]
    assert replayed.headers.get("idempotent-replayed") == "true"


def test_openapi_documents_the_front_door_routes(hive: HiveProcess) -> None:
    paths = hive.get_json("/docs/openapi.json")["paths"]
    invoke = paths["/v1/fn/{name}"]["post"]
    assert {p["name"] for p in invoke["parameters"]} >= {"name", "x-timeout-ms", "x-hive-prefer"}
    assert {"200", "202", "422", "429", "503"} <= set(invoke["responses"])
    assert "post" in paths["/v1/nodes/{node_id}/poll"]
    assert "get" in paths["/v1/fn/{name}"]  # Litestar's describe route is still there beside it
