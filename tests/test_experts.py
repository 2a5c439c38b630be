"""Core + experts end to end on a real hive: partition (three strategies, dry run), one child job
per partition on two nodes, the group registered as one function, routed by centroid, and /auto.

One hive for the module: a gateway, node-a (MiniLM for the partition embeddings, SmolLM2 for
difficulty scoring and /auto's general model, and the group) and node-b (the group only), so the
three children of the column job are leased to both nodes. Data: chatterbot-corpus question/answer
pairs on three topics whose vocabularies differ (computers, money, sports). Budgets are a few LoRA
steps each: the tests are about the hive doing the right thing, bench/experts.py about quality.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from hivectl import HiveProcess
from test_jobs import LIMITS, upload, wait_job

from colabhive.training import example_data

TOPICS = ("computers", "money", "sports")
GROUP = "chat-experts"


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HiveProcess, str]]:
    tmp = tmp_path_factory.mktemp("experts")
    h = HiveProcess(tmp, limits=LIMITS, node={"torch_threads": 1})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", f"echo,minilm-embed,smollm2-chat,langid,intent,{GROUP}",
                     wait_for=["minilm-embed", "smollm2-chat"])
        h.start_node("node-b", "--functions", f"echo,{GROUP}", wait_for=["echo"])
        rows = [r for r in example_data.chatterbot_qa(TOPICS)]
        yield h, upload(h, rows, tmp, "qa-topics.jsonl")
    finally:
        h.stop()


def spec(ds: str, output: str, partition: dict[str, Any], steps: int = 12) -> dict[str, Any]:
    return {
        "method": "experts", "base": "smollm2-chat", "output": output,
        "dataset": {"id": ds, "columns": {"prompt": "question", "response": "answer"}},
        "eval": {"split": 0.2, "metric": "chrf", "threshold": 0.0, "max_rows": 3},
        "budget": {"max_steps": steps}, "checkpoint_every": 2,
        "hparams": {"partition": partition, "min_steps": 2,
                    "expert_hparams": {"lr": 1e-3, "batch_size": 2, "seq_len": 64, "r": 4, "alpha": 8,
                                       "eval_max_tokens": 8}},
    }


def dry(h: HiveProcess, body: dict[str, Any]) -> dict[str, Any]:
    r = h.http.post("/v1/jobs?dry_run=true", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_dry_run_column_shows_one_partition_per_topic_and_writes_nothing(hive: tuple[HiveProcess, str]) -> None:
    h, ds = hive
    plan = dry(h, spec(ds, f"{GROUP}@0.1.0", {"strategy": "column", "column": "topic"}))
    parts = {p["taxon"]: p for p in plan["partitions"]}
    assert sorted(parts) == sorted(TOPICS), plan
    assert sum(p["size"] for p in parts.values()) == plan["rows"]
    assert sum(p["steps"] for p in parts.values()) == 12  # the group's budget, shared by size
    assert parts["computers"]["steps"] >= parts["sports"]["steps"], parts
    for p in parts.values():
        assert len(p["centroid"]) == 384 and p["examples"] and p["terms"], p
        assert p["member"] == f"{GROUP}-{p['taxon']}@0.1.0"
    assert any(t in ("money", "bank", "stock", "dollar") or "money" in t for t in parts["money"]["terms"]), parts["money"]
    # nothing was written: the same spec is still free to submit, and no job exists
    assert h.http.get("/v1/jobs").json()["jobs"] == []


def test_dry_run_cluster_balanced_and_merges_tiny_partitions(hive: tuple[HiveProcess, str]) -> None:
    h, ds = hive
    plan = dry(h, spec(ds, f"{GROUP}@0.2.0", {"strategy": "cluster", "k": 3, "features": "tfidf"}))
    sizes = [p["size"] for p in plan["partitions"]]
    assert len(sizes) == 3 and max(sizes) <= -(-plan["rows"] // 3), sizes  # balanced: none above n/k
    # k by silhouette over a range, on MiniLM vectors
    chosen = dry(h, spec(ds, f"{GROUP}@0.3.0", {"strategy": "cluster", "k_min": 2, "k_max": 5}))
    assert set(chosen["silhouette"]) == {"2", "3", "4", "5"} and chosen["k_chosen"] in (2, 3, 4, 5), chosen
    # a minimum that no cluster of 8 can reach folds the small ones in, and the answer says so
    merged = dry(h, spec(ds, f"{GROUP}@0.4.0", {"strategy": "cluster", "k": 8, "min_size": 15}))
    assert merged["merged"] and "merged" in merged["note"] and len(merged["partitions"]) < 8, merged
    assert all(p["size"] >= 15 for p in merged["partitions"]), merged["partitions"]


def test_dry_run_difficulty_orders_partitions_by_the_bases_loss(hive: tuple[HiveProcess, str]) -> None:
    h, ds = hive
    plan = dry(h, spec(ds, f"{GROUP}@0.5.0", {"strategy": "difficulty", "k": 3}))
    parts = plan["partitions"]
    assert [p["taxon"] for p in parts] == ["difficulty-q0", "difficulty-q1", "difficulty-q2"], parts
    lows = [p["loss"][0] for p in parts]
    highs = [p["loss"][1] for p in parts]
    assert lows == sorted(lows) and highs == sorted(highs) and highs[0] <= lows[2], parts
    assert all(0 < p["loss"][0] <= p["loss"][1] < 20 for p in parts), parts


def test_bad_experts_specs_are_refused_with_the_field(hive: tuple[HiveProcess, str]) -> None:
    h, ds = hive
    cases = [
        ({"strategy": "column"}, "hparams.partition.column"),
        ({"strategy": "column", "column": "colour"}, "hparams.partition.column"),
        ({"strategy": "cluster", "k": 3, "features": "words"}, "hparams.partition.features"),
    ]
    for partition, field in cases:
        r = h.http.post("/v1/jobs?dry_run=true", json=spec(ds, f"{GROUP}@0.9.0", partition))
        assert r.status_code == 422, (partition, r.text)
        assert r.json()["error"]["field"] == field, (partition, r.json())
    bad = spec(ds, f"{GROUP}@0.9.0", {"strategy": "column", "column": "topic"})
    bad["hparams"]["expert_hparams"] = {"r": 0}
    r = h.http.post("/v1/jobs", json=bad)
    assert r.status_code == 422 and r.json()["error"]["field"] == "hparams.expert_hparams.r", r.text


@pytest.fixture(scope="module")
def group(hive: tuple[HiveProcess, str]) -> dict[str, Any]:
    """The column job trained to the end: three children on two nodes, the group landed."""
    h, ds = hive
    r = h.http.post("/v1/jobs", json=spec(ds, f"{GROUP}@1.0.0", {"strategy": "column", "column": "topic"}))
    assert r.status_code == 202, r.text
    parent = r.json()
    assert parent["method"] == "experts" and len(parent["children"]) == 3, parent
    view = wait_job(h, parent["id"], timeout=600)
    assert view["status"] == "succeeded", view
    return view


def test_the_group_trains_one_child_per_partition_on_both_nodes(hive: tuple[HiveProcess, str],
                                                                 group: dict[str, Any]) -> None:
    h, _ = hive
    children = group["children"]
    assert {c["taxon"] for c in children} == set(TOPICS)
    assert all(c["status"] == "succeeded" and c["step"] == c["total_steps"] for c in children), children
    assert group["step"] == group["total_steps"] == 12
    nodes = set()
    for c in children:
        job = h.http.get(f"/v1/jobs/{c['job']}").json()
        assert job["method"] == "lora" and job["output"] == c["member"], job
        nodes.update(a["node"] for a in job["attempts"])
    assert nodes == {"node-a", "node-b"}, nodes  # the children ran side by side on both nodes
    assert group["result"]["version"] == f"{GROUP}@1.0.0"
    assert sorted(group["result"]["members"]) == sorted(f"{GROUP}-{t}@1.0.0" for t in TOPICS)


def test_the_group_is_one_function_routed_by_centroid(hive: tuple[HiveProcess, str], group: dict[str, Any]) -> None:
    h, _ = hive
    ref = f"{GROUP}@1.0.0"
    fn = h.get_json(f"/v1/fn/{ref}")
    assert fn["lifecycle"] == "candidate" and fn["manifest"]["task"] == "experts", fn
    members = fn["manifest"]["experts"]["members"]
    assert {m["taxon"] for m in members} == set(TOPICS) and all(len(m["artifact"]) == 64 for m in members)
    h.wait_for(lambda: ref in (h.get_json("/healthz") or {}).get("ready_versions", []), 240, f"{ref} served",
               watch=["gateway", "node-a", "node-b"])
    questions = {"money": "How do I open a bank account and what interest rate will my savings get?",
                 "sports": "Which team won the football world cup and who scored the goals?",
                 "computers": "What is a computer program and how does the CPU run it?"}
    for topic, q in questions.items():
        r = h.http.post(f"/v1/fn/{ref}", json={"messages": [{"role": "user", "content": q}], "max_tokens": 8})
        assert r.status_code == 200, r.text
        used = r.json()["experts"]
        assert len(used) == 1 and used[0]["taxon"] == topic and used[0]["weight"] == pytest.approx(1.0), used
    # k=2 mixes two members, weights summing to one, the nearest first
    r = h.http.post(f"/v1/fn/{ref}", json={"messages": [{"role": "user", "content": questions["money"]}],
                                          "max_tokens": 8, "k": 2})
    used = r.json()["experts"]
    assert len(used) == 2 and used[0]["taxon"] == "money" and sum(u["weight"] for u in used) == pytest.approx(1.0)
    # a member pinned by name; an unknown one is a 400 that lists the members
    r = h.http.post(f"/v1/fn/{ref}", json={"messages": [{"role": "user", "content": questions["money"]}],
                                          "max_tokens": 4, "expert": f"{GROUP}-sports"})
    assert r.json()["experts"][0]["taxon"] == "sports", r.json()
    r = h.http.post(f"/v1/fn/{ref}", json={"messages": [{"role": "user", "content": "hi"}], "expert": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "expert" and f"{GROUP}-money" in r.text, r.text
    # the nodes say which adapters they hold
    held = {a["name"] for n in h.get_json("/v1/nodes")["nodes"] for a in (n.get("adapters") or {}).get(ref, [])}
    assert held and held <= {f"{GROUP}-{t}" for t in TOPICS}, h.get_json("/v1/nodes")


def test_auto_sends_a_topic_question_to_the_group_and_names_the_member(hive: tuple[HiveProcess, str],
                                                                        group: dict[str, Any]) -> None:
    h, _ = hive
    ref = f"{GROUP}@1.0.0"
    h.wait_for(lambda: bool((h.get_json(f"/v1/fn/{ref}") or {}).get("evaluation")), 240, f"{ref} evaluated",
               watch=["gateway", "node-a", "node-b"])
    r = h.post(f"/v1/registry/{ref}/promote", {"to": "preferred"})
    assert r.status_code == 200, r.text
    q = "How much money should I keep in my savings account at the bank?"
    r = h.http.post("/v1/auto", json={"input": q}, timeout=120)
    assert r.status_code == 200, r.text
    part = r.json()["plan"]["parts"][0]
    assert part["expert"] == ref, r.json()["plan"]
    assert part.get("member", {}).get("taxon") == "money", part


def test_a_gateway_killed_while_the_experts_train_still_lands_the_group(hive: tuple[HiveProcess, str],
                                                                        group: dict[str, Any]) -> None:
    """The parent's children are ordinary jobs and its own state is on disk: kill -9 the gateway
    while they train, start it again, and the group still lands (a cluster job, two experts)."""
    h, ds = hive
    body = spec(ds, f"{GROUP}-restart@1.0.0", {"strategy": "cluster", "k": 2}, steps=8)
    parent = h.http.post("/v1/jobs", json=body).json()["id"]
    wait_job(h, parent, lambda v: any(c["status"] == "running" and c["step"] >= 1 for c in v["children"]),
             timeout=240)
    h.kill("gateway", signal.SIGKILL)
    h.start_gateway()
    view = wait_job(h, parent, timeout=400)
    assert view["status"] == "succeeded", view
    assert [c["status"] for c in view["children"]] == ["succeeded", "succeeded"], view["children"]
    assert view["step"] == view["total_steps"] == 8
    fn = h.get_json(f"/v1/fn/{GROUP}-restart@1.0.0")
    assert len(fn["manifest"]["experts"]["members"]) == 2, fn
