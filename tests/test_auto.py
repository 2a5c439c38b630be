"""/v1/auto on a real hive: dry runs, mixed requests, fallback, partial failure, streaming,
and one trace across every part. The router embeds with the hive's own MiniLM, so these
are the real choices, not a stand-in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import serving
from hivectl import HiveProcess, ok

from colabhive import Client

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ["minilm-embed", "sentiment", "langid", "translate-en-pt", "fracast", "tabular-wine", "smollm2-chat"]
SERIES = ", ".join(str(10 + (i % 12) * 2 + i // 12) for i in range(36))
WINE = ("alcohol=13.2, malic_acid=1.78, ash=2.14, alcalinity_of_ash=11.2, magnesium=100, total_phenols=2.65, "
        "flavanoids=2.76, nonflavanoid_phenols=0.26, proanthocyanins=1.28, color_intensity=4.38, hue=1.05, "
        "od280/od315_of_diluted_wines=3.4, proline=1050")


@pytest.fixture(scope="module")
def auto_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    with serving(tmp_path_factory, "auto", FUNCTIONS) as h:
        yield h


def _auto(h: HiveProcess, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    r = h.http.post("/v1/auto", json=body, params={"dry_run": "true"} if dry_run else None, timeout=120)
    return ok(r)


@pytest.mark.parametrize(("text", "expert"), [
    ("Is this review positive or negative: 'The battery died after two days and support never answered.'",
     "sentiment"),
    ("Which language is this: 'Ich habe heute leider keine Zeit für das Treffen'", "langid"),
    ("Translate into Portuguese: The museum opens at ten in the morning.", "translate-en-pt"),
    (f"Forecast the next 6 values of this series: {SERIES}", "fracast"),
    (f"Which cultivar is this wine? {WINE}", "tabular-wine"),
])
def test_dry_run_picks_the_expert_without_running_it(auto_hive: HiveProcess, text: str, expert: str) -> None:
    plan = _auto(auto_hive, {"input": text}, dry_run=True)["plan"]
    assert plan["dry_run"] is True and len(plan["parts"]) == 1
    (p,) = plan["parts"]
    assert p["expert"].split("@")[0] == expert, p
    assert p["status"] == "planned" and p["node"] is None and p["output"] is None
    assert p["why"] and p["fallback"] is False and p["confidence"] > 0


def test_mixed_request_is_split_run_concurrently_and_merged_in_order(auto_hive: HiveProcess) -> None:
    text = ("Is this review positive or negative: 'Absolutely wonderful stay, the staff were lovely.'\n\n"
            f"Also, forecast the next 4 values: {SERIES}\n\n"
            "Translate into Portuguese: Where is the train station?")
    doc = _auto(auto_hive, {"input": text})
    slots, parts = doc["output"], doc["plan"]["parts"]
    assert [s["expert"].split("@")[0] for s in slots] == ["sentiment", "fracast", "translate-en-pt"]
    assert [s["index"] for s in slots] == [0, 1, 2] and all(s["status"] == "ok" for s in slots)
    assert slots[0]["output"]["label"] == "positive"
    assert len(slots[1]["output"]["forecast"]) == 4
    assert "estação" in slots[2]["output"]["text"].lower()
    assert all(p["node"] and p["ms"] is not None for p in parts)
    # the same answer the experts give when called directly
    assert slots[2]["output"] == ok(auto_hive.call("translate-en-pt", text="Where is the train station?"))


def test_a_part_falls_back_exactly_when_the_router_is_unsure(auto_hive: HiveProcess) -> None:
    """The plan's confidence is the router's calibrated probability: below the threshold dev chose
    (models/auto-router/router.json) the part says it is unsure and goes to the general model; above
    it, it does not. (The fallback branch on fixed vectors: test_auto_choice_unit.py.)"""
    threshold = json.loads((ROOT / "models" / "auto-router" / "router.json").read_text())["threshold"]
    texts = ["zorbly quintex vam", "Hmm.", "Portuguese feelings", "What is the capital of Peru?"]
    for p in (_auto(auto_hive, {"input": t}, dry_run=True)["plan"]["parts"][0] for t in texts):
        assert p["fallback"] is (p["confidence"] < threshold), p
        if p["fallback"]:
            assert p["expert"].startswith("smollm2-chat@") and "unsure" in p["why"]


def test_a_general_question_goes_to_the_chat_model(auto_hive: HiveProcess) -> None:
    doc = _auto(auto_hive, {"input": "What is the capital of Peru?"})
    (p,) = doc["plan"]["parts"]
    assert p["expert"].startswith("smollm2-chat@") and p["fallback"] is False
    assert "lima" in doc["output"][0]["output"]["text"].lower()


def test_a_failed_part_fails_alone(auto_hive: HiveProcess) -> None:
    doc = _auto(auto_hive, {"parts": [
        "Which language is this: 'Bonjour à tous et bonne journée'",
        {"series": [1, 2, 3], "horizon": 2},  # too short for the forecaster: its slot says why
    ]})
    good, bad = doc["output"]
    assert good["status"] == "ok" and good["output"]["language"] == "fr"
    assert bad["status"] == "failed" and bad["error"]["code"] == "invalid_input"
    assert bad["error"]["field"] == "series" and "too short" in bad["error"]["message"]


def test_streaming_sends_the_plan_each_part_then_the_whole(auto_hive: HiveProcess) -> None:
    with Client(auto_hive.url) as c:
        events = list(c.auto_stream(parts=["Translate into Portuguese: good morning",
                                           "Which language is this: 'Buenos días a todos'"]))
    kinds = [e for e, _ in events]
    assert kinds[0] == "plan" and kinds[-1] == "done" and kinds.count("part") == 2
    done = events[-1][1]
    assert sorted(d["index"] for e, d in events if e == "part") == [0, 1]
    assert [s["output"] for s in done["output"]] == [d["output"] for d in
                                                     sorted((d for e, d in events if e == "part"),
                                                            key=lambda d: d["index"])]


def test_one_trace_spans_the_request_and_every_part(auto_hive: HiveProcess) -> None:
    doc = _auto(auto_hive, {"parts": ["Translate into Portuguese: thank you very much",
                                      "Which language is this: 'Obrigado pela ajuda'"]})
    trace = doc["plan"]["trace_id"]
    assert len(trace) == 32

    def invokes(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in spans if s["name"].startswith(("invoke translate", "invoke langid"))]

    def complete(spans: list[dict[str, Any]]) -> bool:  # the gateway's and the nodes' export separately
        return (any(s["name"] == "auto" for s in spans) and len(invokes(spans)) >= 2
                and sum(s["name"].startswith("node.execute") for s in spans) >= 2)

    spans = auto_hive.wait_for_spans(complete, 60, "the request's, its parts' and the nodes' spans", trace)
    names = [s["name"] for s in spans]
    root = next(s for s in spans if s["name"] == "auto")
    assert root["parent_id"] is None
    # both parts, and the planner's own calls (the language of what is translated), are children of the request
    called = {s["name"].split("@")[0] for s in invokes(spans)}
    assert called == {"invoke translate-en-pt", "invoke langid"}, names
    assert all(s["parent_id"] == root["span_id"] for s in invokes(spans)), names


def test_bad_auto_requests_are_422(auto_hive: HiveProcess) -> None:
    for body, field in [({}, "input"), ({"input": "x", "parts": ["y"]}, "input"), ({"input": ""}, "input"),
                        ({"input": "hi", "prefer": "slow"}, "prefer"), ({"parts": []}, "parts")]:
        r = auto_hive.http.post("/v1/auto", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (body, r.text)


def test_a_request_that_fans_out_too_far_is_422_before_any_expert_runs(auto_hive: HiveProcess) -> None:
    r = auto_hive.http.post("/v1/auto", json={"input": "translate to portuguese: hello. " * 600})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "too_many_parts" and err["field"] == "input" and err["detail"] == {"parts": 600, "limit": 16}
    assert "600 parts" in err["message"] and "16" in err["message"]


def test_the_router_is_warmed_at_start(auto_hive: HiveProcess) -> None:
    """Once the embedding function is served the gateway embeds the catalog by itself, so the first
    /v1/auto call does not pay for it; the log line says which router it warmed."""
    log = auto_hive.logs / "gateway.log"
    deadline = time.monotonic() + 120
    while "/auto router warm" not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    line = next(ln for ln in log.read_text(errors="replace").splitlines() if "/auto router warm" in ln)
    assert "learned router" in line


def test_a_clear_part_is_planned_in_the_gateway_without_a_model_call(auto_hive: HiveProcess) -> None:
    """The router's fast head (the distilled table and n-grams, in the gateway) is sure of a clear
    request, so the plan calls no node: the request's trace has its auto span and no invoke span."""
    doc = _auto(auto_hive, {"input": "Which language is this: 'Ich habe heute leider keine Zeit'"}, dry_run=True)
    (p,) = doc["plan"]["parts"]
    assert p["expert"].startswith("langid@") and "fast head" in p["why"], p
    spans = auto_hive.wait_for_spans(lambda ss: any(s["name"] == "auto" for s in ss), 60, "the auto span",
                                     doc["plan"]["trace_id"])
    assert not [s["name"] for s in spans if s["name"].startswith("invoke")], [s["name"] for s in spans]
