"""Ensembles on a real hive: every member answers on a node, the gateway combines.

The shipped ``forecast-ensemble`` (Fracast-0 + PatchTST, score-weighted) and test-only
ensembles over the breast-cancer models (a vote of three, a partial one whose second member
no node hosts) are called directly, asynchronously and through /auto. Each combined answer is
checked against the members' own answers to the same input, called directly; a journaled call
that waits for a member survives a gateway kill -9 and runs when the member's node joins.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import _running
from hivectl import MANIFESTS, ROOT, HiveProcess, ok

FORECAST = json.loads((ROOT / "models" / "patchtst-co2" / "eval.jsonl").read_text().splitlines()[0])["input"]
BC_ROWS = [json.loads(line)["input"]["record"]
           for line in (ROOT / "models" / "tabular-breast-cancer" / "eval.jsonl").read_text().splitlines()]
HOSTED = ["minilm-embed", "fracast", "patchtst-co2", "tabular-breast-cancer", "tabular-breast-cancer-linear",
          "bc-twin"]


def _extra_manifests(d: Path) -> Path:
    """A second LightGBM function on the same weights (a third voter), one no node hosts, and
    three ensembles over them."""
    bc = ROOT / "models" / "tabular-breast-cancer"
    for name in ("bc-twin", "bc-unhosted"):
        (d / f"{name}.toml").write_text(
            f'name = "{name}"\ntask = "tabular"\nlifecycle = "preferred"\n[source]\npath = "{bc}"\n'
            '[hardware]\ndevice_kinds = ["cpu"]\n[batching]\nmax_batch = 64\n')
    ensembles = {
        "bc-vote": '["tabular-breast-cancer", "bc-twin", "tabular-breast-cancer-linear"]\ncombine = "vote"',
        "bc-partial": '["tabular-breast-cancer-linear", "bc-unhosted"]\ncombine = "mean"',
        "bc-strict": '["tabular-breast-cancer-linear", "bc-unhosted"]\ncombine = "mean"\nquorum = 2',
    }
    for name, spec in ensembles.items():
        (d / f"{name}.toml").write_text(
            f'name = "{name}"\ntask = "tabular"\nlifecycle = "preferred"\n[ensemble]\nmembers = {spec}\n')
    return d


@pytest.fixture(scope="module")
def ens_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    tmp = tmp_path_factory.mktemp("ensemble-hive")
    extra = _extra_manifests(tmp_path_factory.mktemp("ensemble-manifests"))
    with _running(HiveProcess(tmp, [MANIFESTS, extra])) as h:
        h.start_gateway()
        h.start_node("node-ens", "--functions", ",".join(HOSTED), wait_for=HOSTED)
        yield h


def _node_id(h: HiveProcess) -> str:
    (node,) = ok(h.http.get("/v1/nodes"))["nodes"]
    return node["id"]


def _forecast(h: HiveProcess, fn: str, body: dict[str, Any] = FORECAST) -> dict[str, Any]:
    return ok(h.http.post(f"/v1/fn/{fn}", json=body, timeout=120))


def test_auto_plans_the_ensemble_and_reports_every_member(ens_hive: HiveProcess) -> None:
    series = ", ".join(str(v) for v in FORECAST["series"])
    text = f"combine several forecasters for the next 12 months of this seasonal series: {series}"
    plan = ok(ens_hive.http.post("/v1/auto", json={"input": text}, params={"dry_run": "true"}))["plan"]
    (part,) = plan["parts"]
    assert part["expert"] == "forecast-ensemble@1.0.0" and part["members"] == ["fracast", "patchtst-co2"]
    done = ok(ens_hive.http.post("/v1/auto", json={"input": text}, timeout=120))
    (part,) = done["plan"]["parts"]
    node = _node_id(ens_hive)
    assert part["status"] == "ok" and part["node"] == node
    assert [m["expert"] for m in part["members"]] == ["fracast@1.0.0", "patchtst-co2@1.0.0"]
    assert all(m["node"] == node and m["weight"] == 0.5 for m in part["members"])
    assert len(done["output"][0]["output"]["forecast"]) == 12


def test_without_evaluations_the_forecasts_are_averaged_with_equal_weights(ens_hive: HiveProcess) -> None:
    a, b = _forecast(ens_hive, "fracast"), _forecast(ens_hive, "patchtst-co2")
    r = ens_hive.http.post("/v1/fn/forecast-ensemble", json=FORECAST, timeout=120)
    out = ok(r)
    assert r.headers["x-hive-version"] == "forecast-ensemble@1.0.0" and r.headers["x-hive-node"] == _node_id(ens_hive)
    assert out["ensemble"]["weights_from"].startswith("equal")
    assert out["forecast"] == pytest.approx([(x + y) / 2 for x, y in zip(a["forecast"], b["forecast"])], abs=1e-5)
    for level in ("0.1", "0.9"):
        want = [(x + y) / 2 for x, y in zip(a["quantiles"][level], b["quantiles"][level])]
        assert out["quantiles"][level] == pytest.approx(want, abs=1e-5)
    members = out["ensemble"]["members"]
    assert [m["output"]["forecast"] for m in members] == [a["forecast"], b["forecast"]]


def test_score_weighted_follows_the_members_evaluations(ens_hive: HiveProcess) -> None:
    scores = {fn: ok(ens_hive.http.post(f"/v1/registry/{fn}@1.0.0/eval", timeout=300))["score"]
              for fn in ("fracast", "patchtst-co2")}
    out = _forecast(ens_hive, "forecast-ensemble")
    assert "evaluation" in out["ensemble"]["weights_from"]
    inv = {fn: 1 / s for fn, s in scores.items()}  # mae_ratio: lower is better
    w = {m["member"]: m["weight"] for m in out["ensemble"]["members"]}
    assert w["patchtst-co2"] == pytest.approx(inv["patchtst-co2"] / sum(inv.values()), abs=1e-3)
    a, b = (m["output"]["forecast"] for m in out["ensemble"]["members"])
    wa, wb = w["fracast"], w["patchtst-co2"]
    assert out["forecast"] == pytest.approx([wa * x + wb * y for x, y in zip(a, b)], abs=1e-3)


def test_the_ensemble_is_evaluated_and_gated_like_any_version(ens_hive: HiveProcess) -> None:
    report = ok(ens_hive.http.post("/v1/registry/forecast-ensemble@1.0.0/eval", timeout=300))
    assert report["metric"] == "mae_ratio" and 0 < report["score"] < 2
    assert report["passed"] == (report["score"] <= report["threshold"])
    fn = ok(ens_hive.http.get("/v1/fn/forecast-ensemble"))
    assert fn["evaluation"]["score"] == report["score"]
    assert fn["ready"] is True and fn["nodes"] == [_node_id(ens_hive)]
    assert fn["ensemble"]["members"] == ["fracast", "patchtst-co2"]
    assert fn["versions"][0]["ensemble"]["running"] == ["fracast@1.0.0", "patchtst-co2@1.0.0"]
    assert fn["versions"][0]["artifact"]["recorded_by"] == "manifest"


def test_a_vote_takes_the_majority_row_by_row(ens_hive: HiveProcess) -> None:
    body = {"records": BC_ROWS}
    members = {fn: [p["label"] for p in ok(ens_hive.http.post(f"/v1/fn/{fn}", json=body))["predictions"]]
               for fn in ("tabular-breast-cancer", "bc-twin", "tabular-breast-cancer-linear")}
    out = ok(ens_hive.http.post("/v1/fn/bc-vote", json=body))
    voted = [p["label"] for p in out["predictions"]]
    assert len(voted) == len(BC_ROWS)
    for i, label in enumerate(voted):
        (majority, _), = Counter(m[i] for m in members.values()).most_common(1)
        assert label == majority, f"row {i}: {label} but the members said {[m[i] for m in members.values()]}"
    split = [i for i in range(len(BC_ROWS)) if members["tabular-breast-cancer-linear"][i] != members["bc-twin"][i]]
    assert split, "the linear and tree models never disagree on the hold-out: the vote test proves nothing"
    assert all(voted[i] == members["bc-twin"][i] for i in split)  # two tree votes beat one linear vote
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in out["predictions"])


def test_a_member_no_node_holds_fails_alone_unless_the_quorum_needs_it(ens_hive: HiveProcess) -> None:
    row = {"record": BC_ROWS[0]}
    out = ok(ens_hive.http.post("/v1/fn/bc-partial", json=row))
    linear = ok(ens_hive.http.post("/v1/fn/tabular-breast-cancer-linear", json=row))
    assert out["predictions"] == linear["predictions"]  # the one member that answered
    assert out["ensemble"]["answered"] == 1
    failed = out["ensemble"]["members"][1]
    assert failed["member"] == "bc-unhosted" and failed["status"] == "failed"
    assert failed["error"]["code"] == "no_capacity"
    r = ens_hive.http.post("/v1/fn/bc-strict", json=row)
    assert r.status_code == 503 and r.headers.get("retry-after")
    assert "needs 2 of its members served" in r.json()["error"]["message"]


def test_input_one_member_refuses_is_the_callers_422(ens_hive: HiveProcess) -> None:
    r = ens_hive.http.post("/v1/fn/forecast-ensemble", json=FORECAST | {"horizon": 30}, timeout=60)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "horizon" and "patchtst-co2" in err["message"] and "at most 24" in err["message"]


def _settled(h: HiveProcess, tid: str, timeout: float = 60) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        t = ok(h.http.get(f"/v1/tasks/{tid}"))
        if t["status"] not in ("queued", "running") or time.monotonic() > end:
            return t
        time.sleep(0.1)


def test_an_async_ensemble_call_is_journaled_and_answers_like_a_sync_one(ens_hive: HiveProcess) -> None:
    sync = _forecast(ens_hive, "forecast-ensemble")
    r = ens_hive.http.post("/v1/fn/forecast-ensemble", json=FORECAST, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    task = _settled(ens_hive, r.json()["id"])
    assert task["status"] == "succeeded", task
    assert task["result"]["forecast"] == sync["forecast"]
    assert [m["expert"] for m in task["result"]["ensemble"]["members"]] == ["fracast@1.0.0", "patchtst-co2@1.0.0"]
    key = {"Idempotency-Key": "ensemble-once"}
    first = ens_hive.http.post("/v1/fn/tabular-breast-cancer-ensemble", json={"record": BC_ROWS[1]}, headers=key)
    again = ens_hive.http.post("/v1/fn/tabular-breast-cancer-ensemble", json={"record": BC_ROWS[1]}, headers=key)
    assert ok(first)["predictions"] == ok(again)["predictions"]
    assert again.headers.get("idempotent-replayed") == "true"


def test_an_async_call_waits_for_its_members_and_can_be_cancelled(ens_hive: HiveProcess) -> None:
    r = ens_hive.http.post("/v1/fn/bc-strict", json={"record": BC_ROWS[0]}, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text  # not a 503: an async call waits for capacity like a queued task
    tid = r.json()["id"]
    time.sleep(1.5)
    assert ok(ens_hive.http.get(f"/v1/tasks/{tid}"))["status"] == "queued"
    assert ok(ens_hive.http.delete(f"/v1/tasks/{tid}"))["status"] == "cancelled"
    time.sleep(1.2)  # past its next look: a cancelled call stays cancelled
    assert ok(ens_hive.http.get(f"/v1/tasks/{tid}"))["status"] == "cancelled"


def test_one_trace_covers_the_ensemble_and_each_member_on_its_node(ens_hive: HiveProcess) -> None:
    trace_id, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = ens_hive.http.post("/v1/fn/forecast-ensemble", json=FORECAST,
                           headers={"traceparent": f"00-{trace_id}-{client_span}-01"}, timeout=120)
    ok(r)
    members = {"invoke fracast@1.0.0", "invoke patchtst-co2@1.0.0"}

    def complete(spans: list[dict[str, Any]]) -> bool:  # the gateway's and the nodes' export separately
        names = [s["name"] for s in spans]
        return ("ensemble forecast-ensemble@1.0.0" in names and members <= set(names)
                and sum(n.startswith("node.execute") for n in names) >= 2)

    spans = ens_hive.wait_for_spans(complete, 60, "the ensemble's, its invokes' and the nodes' spans", trace_id)
    executes = [s for s in spans if s["name"].startswith("node.execute")]
    (ens,) = [s for s in spans if s["name"] == "ensemble forecast-ensemble@1.0.0"]
    assert ens["parent_id"] == client_span
    invokes = {s["name"]: s for s in spans if s["name"].startswith("invoke ")}
    assert set(invokes) == members
    assert all(s["parent_id"] == ens["span_id"] for s in invokes.values())
    assert {s["parent_id"] for s in executes} == {s["span_id"] for s in invokes.values()}


def test_a_waiting_ensemble_call_survives_a_gateway_kill_and_runs_when_its_member_joins(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    extra = _extra_manifests(tmp_path_factory.mktemp("restart-manifests"))
    with _running(HiveProcess(tmp_path_factory.mktemp("restart-hive"), [MANIFESTS, extra])) as h:
        h.start_gateway()
        linear = "tabular-breast-cancer-linear"
        h.start_node("node-a", "--functions", linear, wait_for=[linear])
        r = h.http.post("/v1/fn/bc-strict", json={"record": BC_ROWS[0]}, headers={"Prefer": "respond-async"})
        assert r.status_code == 202, r.text
        tid = r.json()["id"]
        h.kill("gateway", signal.SIGKILL)
        h.start_gateway()  # same state dir: the journal replays the waiting call
        assert ok(h.http.get(f"/v1/tasks/{tid}"))["status"] in ("queued", "running")
        h.start_node("node-b", "--functions", "bc-unhosted", wait_for=["bc-unhosted"])
        task = _settled(h, tid, timeout=90)
        assert task["status"] == "succeeded", task
        members = task["result"]["ensemble"]["members"]
        assert [m["status"] for m in members] == ["ok", "ok"] and task["result"]["ensemble"]["answered"] == 2
