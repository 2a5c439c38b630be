"""One trace follows a call across processes: client → gateway → queue → node → model.

hivectl configures the jsonl exporter, so each process appends its spans to
traces.<service>.jsonl in the hive's directory; the test reads them back.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from hivectl import HiveProcess

WANTED = {
    ("colabhive-gateway", "invoke echo@1.0.0"),
    ("colabhive-gateway", "queue.wait"),
    ("colabhive-node", "node.execute echo@1.0.0"),
    ("colabhive-node", "model.forward echo@1.0.0"),
}


def _spans_of(hive: HiveProcess, trace_id: str, timeout: float = 30) -> dict[tuple[str, str], dict[str, Any]]:
    """Wait until all WANTED spans of ``trace_id`` are flushed; return them by (service, name)."""

    def by_key(spans: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(s["service"], s["name"]): s for s in spans}

    return by_key(hive.wait_for_spans(lambda spans: WANTED <= set(by_key(spans)), timeout,
                                      f"spans {sorted(WANTED)}", trace_id))


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


def _new_root_invoke(hive: HiveProcess, before: set[str], timeout: float = 30) -> dict[str, Any]:
    """The first root "invoke echo@1.0.0" span of a trace not in ``before`` (bounded wait)."""

    def fresh(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in spans if s["name"] == "invoke echo@1.0.0" and s["trace_id"] not in before
                and s["parent_id"] is None]

    return fresh(hive.wait_for_spans(lambda spans: bool(fresh(spans)), timeout, "a new root invoke span"))[0]


def test_call_without_traceparent_starts_its_own_trace(echo_hive: HiveProcess) -> None:
    """No header (or a malformed one): a fresh trace, still spanning both processes."""
    for headers in ({}, {"traceparent": "00-not-a-valid-header-01"}):
        before = {s["trace_id"] for s in echo_hive.spans()}
        r = echo_hive.post("/v1/fn/echo", {"text": "untraced"}, **headers)
        assert r.status_code == 200
        invoke = _new_root_invoke(echo_hive, before)
        spans = _spans_of(echo_hive, invoke["trace_id"])
        assert spans[("colabhive-node", "node.execute echo@1.0.0")]["parent_id"] == invoke["span_id"]


class _StagedSink(HiveProcess):
    """A hive whose span sink fills in stages, the nodes' export before the gateway's, as it can
    on a loaded machine; no process is started."""

    def __init__(self, tmp: Any, stages: list[list[dict[str, Any]]]) -> None:
        super().__init__(tmp)
        self.stages, self.reads = stages, 0

    def spans(self) -> list[dict[str, Any]]:
        self.reads += 1
        return self.stages[min(self.reads, len(self.stages)) - 1]


def _span(service: str, name: str, trace: str = "t1") -> dict[str, Any]:
    return {"service": service, "name": name, "trace_id": trace, "span_id": name, "parent_id": None}


def test_wait_for_spans_waits_for_every_span_the_predicate_names(tmp_path: Any) -> None:
    node = [_span("colabhive-node", "node.execute echo@1.0.0"), _span("colabhive-node", "x", trace="other")]
    gateway = [_span("colabhive-gateway", "invoke echo@1.0.0")]
    sink = _StagedSink(tmp_path, [[], node, node, node + gateway])
    got = sink.wait_for_spans(lambda spans: {s["name"] for s in spans} >= {"invoke echo@1.0.0",
                                                                         "node.execute echo@1.0.0"},
                              5, trace_id="t1")
    assert sink.reads == 4  # not back at the first read that had the node's spans only
    assert sorted(s["name"] for s in got) == ["invoke echo@1.0.0", "node.execute echo@1.0.0"]  # only trace t1


def test_wait_for_spans_times_out_naming_the_spans_it_saw(tmp_path: Any) -> None:
    sink = _StagedSink(tmp_path, [[_span("colabhive-node", "node.execute echo@1.0.0")]])
    with pytest.raises(TimeoutError, match=r"spans of t1: \[\('colabhive-node', 'node.execute echo@1.0.0'\)\]"):
        sink.wait_for_spans(lambda spans: len(spans) > 1, 0.3, trace_id="t1")
