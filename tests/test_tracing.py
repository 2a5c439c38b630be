"""One trace follows a call across processes: client → gateway → queue → node → model.

hivectl configures the jsonl exporter, so each process appends its spans to
traces.<service>.jsonl in the hive's directory; the test reads them back.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from hivectl import HiveProcess

WANTED = {
    ("colabhive-gateway", "invoke echo@1.0.0"),
    ("colabhive-gateway", "queue.wait"),
    ("colabhive-node", "node.execute echo@1.0.0"),
    ("colabhive-node", "model.forward echo@1.0.0"),
}


def _spans_of(hive: HiveProcess, trace_id: str, timeout: float = 10) -> dict[tuple[str, str], dict[str, Any]]:
    """Wait (bounded) until all WANTED spans of ``trace_id`` are flushed; return them by (service, name)."""
    end = time.monotonic() + timeout
    found: dict[tuple[str, str], dict[str, Any]] = {}
    while time.monotonic() < end:
        found = {(s["service"], s["name"]): s for s in hive.spans() if s["trace_id"] == trace_id}
        if WANTED <= set(found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"spans of {trace_id} after {timeout}s: {sorted(found)}; wanted {sorted(WANTED)}")


def test_client_traceparent_is_continued_end_to_end(echo_hive: HiveProcess) -> None:
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    r = echo_hive.post("/v1/fn/echo", {"text": "trace me"}, traceparent=f"00-{trace_id}-{client_span}-01")
    assert r.status_code == 200 and r.json() == {"text": "trace me"}

    spans = _spans_of(echo_hive, trace_id)
    invoke = spans[("colabhive-gateway", "invoke echo@1.0.0")]
    queue = spans[("colabhive-gateway", "queue.wait")]
    execute = spans[("colabhive-node", "node.execute echo@1.0.0")]
    forward = spans[("colabhive-node", "model.forward echo@1.0.0")]

    assert invoke["parent_id"] == client_span  # continues the caller's span
    assert queue["parent_id"] == invoke["span_id"]
    assert execute["parent_id"] == invoke["span_id"]  # crossed the process boundary on the task
    assert forward["parent_id"] == execute["span_id"]
    assert len({s["span_id"] for s in spans.values()}) == len(spans)  # all distinct

    assert invoke["attributes"]["hive.node"] == r.headers["x-hive-node"]
    assert execute["attributes"]["hive.fn"] == "echo@1.0.0"
    assert execute["attributes"]["hive.node"] == "node-echo"
    assert all(s["status"] != "ERROR" for s in spans.values())
    # the node's work happens inside the gateway's request span
    assert invoke["start_ns"] <= queue["start_ns"] <= queue["end_ns"] <= invoke["end_ns"]
    assert execute["start_ns"] <= forward["start_ns"] <= forward["end_ns"] <= execute["end_ns"]


def _new_root_invoke(hive: HiveProcess, before: set[str], timeout: float = 10) -> dict[str, Any] | None:
    """The first root "invoke echo@1.0.0" span of a trace not in ``before`` (bounded wait)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for s in hive.spans():
            if s["name"] == "invoke echo@1.0.0" and s["trace_id"] not in before and s["parent_id"] is None:
                return s
        time.sleep(0.1)
    return None


def test_call_without_traceparent_starts_its_own_trace(echo_hive: HiveProcess) -> None:
    """No header (or a malformed one): a fresh trace, still spanning both processes."""
    for headers in ({}, {"traceparent": "00-not-a-valid-header-01"}):
        before = {s["trace_id"] for s in echo_hive.spans()}
        r = echo_hive.post("/v1/fn/echo", {"text": "untraced"}, **headers)
        assert r.status_code == 200
        invoke = _new_root_invoke(echo_hive, before)
        assert invoke is not None, f"no root invoke span for a call with headers {headers}"
        spans = _spans_of(echo_hive, invoke["trace_id"])
        assert spans[("colabhive-node", "node.execute echo@1.0.0")]["parent_id"] == invoke["span_id"]
