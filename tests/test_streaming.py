"""Streamed generation over the hive's own SSE: pieces arrive as they are made, join to the
non-streamed text, and a caller who leaves stops the work instead of wasting the node."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import serving
from hivectl import HiveProcess

MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def gen_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    with serving(tmp_path_factory, "stream", ["smollm2-chat"]) as h:
        yield h


def _events(r: httpx.Response) -> Iterator[tuple[str, Any, float]]:
    """(event, data, arrival time) for each SSE event of a streamed response."""
    event = None
    for line in r.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event or "message", json.loads(line[6:]), time.monotonic()


def test_stream_joins_to_the_plain_answer_and_arrives_piece_by_piece(gen_hive: HiveProcess) -> None:
    body = {"messages": MESSAGES, "max_tokens": 32, "temperature": 0}
    plain = gen_hive.call("smollm2-chat", **body).json()
    with gen_hive.http.stream("POST", "/v1/fn/smollm2-chat", json=body | {"stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-hive-version"] == "smollm2-chat@1.0.0"
        events = list(_events(r))
    kinds = [e for e, _, _ in events]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"chunk"}, kinds
    pieces = [d["text"] for e, d, _ in events if e == "chunk"]
    assert "".join(pieces) == plain["text"] == events[-1][1]["text"]
    assert len(pieces) >= 5, pieces
    # pieces arrived over time, not all at the end (generation runs at ~10-20 tokens/s)
    times = [t for e, _, t in events if e == "chunk"]
    assert times[-1] - times[0] > 0.2, times


def test_accept_header_asks_for_a_stream_too(gen_hive: HiveProcess) -> None:
    body = {"messages": MESSAGES, "max_tokens": 6, "temperature": 0}
    with gen_hive.http.stream("POST", "/v1/fn/smollm2-chat", json=body, headers={"accept": "text/event-stream"}) as r:
        events = list(_events(r))
    assert events[-1][0] == "result" and events[-1][1]["usage"]["completion_tokens"] == 6


def test_a_caller_that_leaves_stops_the_generation(gen_hive: HiveProcess) -> None:
    body = {"messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
            "max_tokens": 400, "temperature": 0, "stream": True}
    with gen_hive.http.stream("POST", "/v1/fn/smollm2-chat", json=body) as r:
        for n, _ in enumerate(_events(r)):
            if n == 3:
                break  # leave after a few pieces
    t0 = time.monotonic()
    # the node is free again long before 400 tokens (~20+ s here) could have been generated
    r = gen_hive.call("smollm2-chat", messages=MESSAGES, max_tokens=4, temperature=0, timeout=60)
    assert r.status_code == 200, r.text
    assert time.monotonic() - t0 < 10, "the abandoned generation kept the node busy"


def test_bad_stream_input_is_a_422_before_any_event(gen_hive: HiveProcess) -> None:
    r = gen_hive.post("/v1/fn/smollm2-chat", {"messages": MESSAGES, "stream": True, "temperature": 9})
    assert r.status_code == 422 and r.json()["error"]["field"] == "temperature"


def test_sdk_stream_yields_pieces_and_returns_the_output(gen_hive: HiveProcess) -> None:
    from colabhive import Client

    with Client(gen_hive.url) as c:
        gen = c.stream("smollm2-chat", messages=MESSAGES, max_tokens=12, temperature=0)
        pieces = []
        try:
            while True:
                pieces.append(next(gen))
        except StopIteration as stop:
            result = stop.value
        assert "".join(pieces) == result["text"] and len(pieces) > 1
        assert result == c.call("smollm2-chat", messages=MESSAGES, max_tokens=12, temperature=0)


def test_a_stream_says_its_dtype_in_its_headers_and_its_final_event(gen_hive: HiveProcess) -> None:
    """As a plain answer's X-Hive-Dtype does: the headers wait for the node's first piece,
    which says it; the final event (result, or OpenAI's finish and usage chunks) says it too."""
    body = {"messages": MESSAGES, "max_tokens": 4, "temperature": 0}
    dtype = gen_hive.call("smollm2-chat", **body).headers["x-hive-dtype"]
    assert dtype == "fp32"
    with gen_hive.http.stream("POST", "/v1/fn/smollm2-chat", json=body | {"stream": True}) as r:
        assert r.status_code == 200 and r.headers["x-hive-dtype"] == dtype
        events = list(_events(r))
    assert events[-1][0] == "result" and events[-1][1]["dtype"] == dtype, events[-1]
    assert events[-1][1]["usage"]["completion_tokens"] == 4

    chat = {"model": "smollm2-chat", **body, "stream": True, "stream_options": {"include_usage": True}}
    with gen_hive.http.stream("POST", "/v1/chat/completions", json=chat) as r:
        assert r.status_code == 200 and r.headers["x-hive-dtype"] == dtype
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    finish = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert finish["dtype"] == dtype and chunks[-1]["usage"]["completion_tokens"] == 4
    assert chunks[-1]["dtype"] == dtype
    assert all("dtype" not in c for c in chunks if c is not finish and c is not chunks[-1])
