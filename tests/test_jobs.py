"""Training jobs on a real hive: submit, schedule, stream metrics, checkpoint, resume, land.

Every test talks HTTP to a real gateway process whose jobs are trained by real node
processes on data a package ships (scikit-learn's breast cancer table, chatterbot-corpus
question/answer pairs). Budgets are small so each job takes seconds.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hivectl import ROOT, HiveProcess

from colabhive.training import example_data

EXAMPLES = ROOT / "examples" / "jobs"
LIMITS = {"node_timeout_s": 4.0, "job_lease_s": 4.0}
DONE = ("succeeded", "failed", "cancelled")


def spec_of(name: str, **changes: Any) -> dict[str, Any]:
    spec = msgspec.toml.decode((EXAMPLES / name).read_bytes())
    for key, value in changes.items():
        *path, last = key.split("__")
        d = spec
        for p in path:
            d = d.setdefault(p, {})
        d[last] = value
    return spec


def upload(h: HiveProcess, rows: list[dict[str, Any]], tmp: Path, name: str) -> str:
    path = tmp / name
    example_data.write_dataset(rows, path)
    media = "text/csv" if name.endswith(".csv") else "application/jsonl"
    r = h.http.post("/v1/datasets", content=path.read_bytes(), headers={"content-type": media})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


def wait_job(h: HiveProcess, job_id: str, until: Any = lambda v: v["status"] in DONE, timeout: float = 180) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view = h.http.get(f"/v1/jobs/{job_id}").json()
        if until(view):
            return view
        assert view["status"] not in DONE, f"job {job_id} ended before it got there: {view}"
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not get there in {timeout} s: {view}")


def steps_of(h: HiveProcess, job_id: str) -> list[dict[str, Any]]:
    r = h.http.get(f"/v1/jobs/{job_id}/metrics")
    assert r.status_code == 200, r.text
    return r.json()["points"]


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HiveProcess, str]]:
    """A gateway and one node that hosts echo and whatever the tabular jobs here produce."""
    tmp = tmp_path_factory.mktemp("jobs-tab")
    h = HiveProcess(tmp, limits=LIMITS, node={"torch_threads": 1})
    try:
        h.start_gateway()
        h.start_node("node-a", "--functions", "echo,bc-lgbm", wait_for=["echo"])
        yield h, upload(h, example_data.sklearn_table("load_breast_cancer"), tmp, "bc.csv")
    finally:
        h.stop()


def test_tabular_job_trains_lands_evaluates_promotes_and_answers(tab: tuple[HiveProcess, str]) -> None:
    h, ds = tab
    spec = spec_of("tabular-lightgbm-breast-cancer.toml", output="bc-lgbm@1.0.0", dataset__id=ds,
                   budget__max_steps=60, checkpoint_every=20)
    r = h.http.post("/v1/jobs", json=spec)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    job = r.json()["id"]
    view = wait_job(h, job)
    assert view["status"] == "succeeded", view
    assert view["node"] == "node-a" and view["step"] == 60 and view["checkpoint_step"] == 60
    assert view["energy_j"] is not None and view["energy_j"] > 0, view  # the CPU plugin's joules
    points = steps_of(h, job)
    assert [p["step"] for p in points] == list(range(1, 61))
    assert points[-1]["loss"] < points[0]["loss"]
    assert view["result"]["version"] == "bc-lgbm@1.0.0" and view["result"]["passed"] is True

    # the SSE stream replays everything, in order, and ends on the final status; it resumes by id
    with h.http.stream("GET", f"/v1/jobs/{job}/events") as s:
        lines = [ln for ln in s.iter_lines() if ln]
    events = [(int(a[4:]), b[7:]) for a, b in zip(lines, lines[1:]) if a.startswith("id: ") and b.startswith("event: ")]
    assert [k for _, k in events].count("metrics") == 60 and events[-1][1] == "status"
    assert json.loads(lines[-1][6:])["status"] == "succeeded"
    middle = events[30][0]
    with h.http.stream("GET", f"/v1/jobs/{job}/events", headers={"last-event-id": str(middle)}) as s:
        ids = [int(ln[4:]) for ln in s.iter_lines() if ln.startswith("id: ")]
    assert ids == [i for i, _ in events if i > middle]

    # the version is in the catalog as a candidate, with its provenance, and a node serves it
    h.wait_for(lambda: bool((h.get_json("/v1/fn/bc-lgbm@1.0.0") or {}).get("evaluation")), 120,
               "bc-lgbm evaluated on the hive")
    fn = h.get_json("/v1/fn/bc-lgbm@1.0.0")
    assert fn["lifecycle"] == "candidate" and fn["manifest"]["source"]["artifact"] == view["result"]["artifact_sha256"]
    assert fn["evaluation"]["passed"] is True and fn["evaluation"]["score"] >= 0.93
    prov = json.loads((h.tmp / "var" / "trained" / "bc-lgbm-1.0.0" / "provenance.json").read_text())
    assert prov["dataset_sha256"] == ds and prov["node"] == "node-a" and prov["spec"]["seed"] == 0
    assert prov["libraries"]["lightgbm"] and prov["final_metrics"]["step"] == 60
    rows = example_data.sklearn_table("load_breast_cancer")
    record = {k: v for k, v in rows[0].items() if k != "target"}
    answer = h.http.post("/v1/fn/bc-lgbm@1.0.0", json={"records": [record]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] == rows[0]["target"], answer.text
    promoted = h.http.post("/v1/registry/bc-lgbm@1.0.0/promote", json={"to": "preferred"})
    assert promoted.status_code == 200, promoted.text
    assert h.get_json("/v1/fn/bc-lgbm")["preferred"] == "bc-lgbm@1.0.0"


def test_spec_errors_name_their_field(tab: tuple[HiveProcess, str]) -> None:
    h, ds = tab
    good = spec_of("tabular-lightgbm-breast-cancer.toml", output="bc-bad@1.0.0", dataset__id=ds)
    cases = [
        (good | {"epochs": 3}, "epochs"),
        (good | {"method": "dance"}, "method"),
        (spec_of("tabular-lightgbm-breast-cancer.toml", output="bc-bad@1.0.0", dataset__id="0" * 64), "dataset.id"),
        (good | {"hparams": {"num_leaves": "many"}}, "hparams.num_leaves"),
        (good | {"output": "no version"}, "output"),
        (good | {"base": "no-such-function"}, "base"),
    ]
    for body, field in cases:
        r = h.http.post("/v1/jobs", json=body)
        assert r.status_code == 422, (field, r.status_code, r.text)
        assert r.json()["error"]["field"] == field, (field, r.text)
    empty = h.http.post("/v1/jobs", content=b"")
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "$"


def test_a_job_no_node_could_host_is_refused_with_the_reason(tab: tuple[HiveProcess, str]) -> None:
    h, ds = tab
    base = spec_of("tabular-lightgbm-breast-cancer.toml", output="bc-big@1.0.0", dataset__id=ds)
    r = h.http.post("/v1/jobs", json=base | {"hardware": {"device_kinds": ["cuda"], "dtypes": ["bf16"]}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "hardware", r.text
    assert "cuda" in r.json()["error"]["message"] and "the hive has cpu" in r.json()["error"]["message"]
    r = h.http.post("/v1/jobs", json=base | {"hardware": {"device_kinds": ["cpu"], "min_memory_mb": 10**9}})
    assert r.status_code == 422, r.text
    assert "needs 9.77e+05 GiB" in r.json()["error"]["message"] and "largest" in r.json()["error"]["message"], r.text
    assert all(j["output"] != "bc-big@1.0.0" for j in h.http.get("/v1/jobs", params={"limit": 500}).json()["jobs"])


def test_cancel_stops_a_running_job_and_queued_jobs_show_their_position(tab: tuple[HiveProcess, str]) -> None:
    h, ds = tab
    long = spec_of("tabular-lightgbm-breast-cancer.toml", output="bc-long@1.0.0", dataset__id=ds,
                   budget__max_steps=1_000_000, checkpoint_every=1_000_000)
    first = h.http.post("/v1/jobs", json=long).json()["id"]
    wait_job(h, first, lambda v: v["status"] == "running" and v["step"] > 5)
    second = h.http.post("/v1/jobs", json=long | {"output": "bc-next@1.0.0", "budget": {"max_steps": 5}})
    assert second.status_code == 202 and second.json()["status"] == "queued" and second.json()["position"] == 1
    r = h.http.delete(f"/v1/jobs/{first}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    # the node stops within a second, then takes the queued job (its device is free again)
    t0 = time.monotonic()
    running = wait_job(h, second.json()["id"], lambda v: v["status"] != "queued", timeout=30)
    assert running["node"] == "node-a" and time.monotonic() - t0 < 5, running
    done = wait_job(h, second.json()["id"], timeout=60)
    assert done["status"] == "succeeded", done
    # nothing was recorded for the cancelled job after its final status
    with h.http.stream("GET", f"/v1/jobs/{first}/events") as s:
        kinds = [ln[7:] for ln in s.iter_lines() if ln.startswith("event: ")]
    assert kinds[-1] == "status" and "metrics" not in kinds[kinds.index("status", 2):], kinds[-5:]
    again = h.http.delete(f"/v1/jobs/{first}")
    assert again.status_code == 409, again.text


# ---- LoRA: a node killed mid-job, the job finishes on another from its checkpoint -------------
@pytest.fixture(scope="module")
def lora(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HiveProcess, str]]:
    tmp = tmp_path_factory.mktemp("jobs-lora")
    h = HiveProcess(tmp, limits=LIMITS, node={"torch_threads": 1})
    try:
        h.start_gateway()
        yield h, upload(h, example_data.chatterbot_qa(("science",))[:64], tmp, "qa.jsonl")
    finally:
        h.stop()


def lora_spec(ds: str, output: str) -> dict[str, Any]:
    return spec_of("lora-smollm2-qa.toml", output=output, dataset__id=ds, checkpoint_every=4,
                   budget={"max_steps": 10}, eval={"split": 0.1, "metric": "chrf", "threshold": 0.0, "max_rows": 3},
                   hparams={"lr": 2e-4, "batch_size": 2, "seq_len": 64, "r": 4, "alpha": 8,
                            "target_modules": ["q_proj", "v_proj"]})


def test_lora_job_survives_kill_9_of_its_node_and_resumes_exactly(lora: tuple[HiveProcess, str]) -> None:
    h, ds = lora
    h.start_node("node-a", "--functions", "echo", wait_for=["echo"])
    # the same spec uninterrupted first, on a node doing nothing else: the curve to match
    ref = h.http.post("/v1/jobs", json=lora_spec(ds, "qa-lora-straight@1.0.0")).json()["id"]
    straight_view = wait_job(h, ref, timeout=300)
    assert straight_view["status"] == "succeeded", straight_view
    straight = steps_of(h, ref)

    job = h.http.post("/v1/jobs", json=lora_spec(ds, "qa-lora@1.0.0"))
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    wait_job(h, job_id, lambda v: (v["checkpoint_step"] or 0) >= 4, timeout=240)
    h.kill("node-a", signal.SIGKILL)
    h.start_node("node-b", "--functions", "echo,qa-lora", wait_for=["echo"])
    view = wait_job(h, job_id, timeout=300)
    assert view["status"] == "succeeded", view
    nodes = [a["node"] for a in view["attempts"]]
    assert nodes == ["node-a", "node-b"], view["attempts"]
    resumed = view["attempts"][1]["from_step"]
    assert resumed >= 4 and resumed % 4 == 0
    points = steps_of(h, job_id)
    assert [p["step"] for p in points] == list(range(1, 11))  # continuous, none counted twice
    seen = [p["samples_seen"] for p in points]
    assert seen == [2 * s for s in range(1, 11)], seen  # the counters carry on without a gap
    for a, b in zip(points, straight, strict=True):  # the resume is exact
        assert abs(a["loss"] - b["loss"]) < 1e-6, (a, b)
    assert points[-1]["tokens_seen"] == straight[-1]["tokens_seen"]

    # base + adapter, served by name@version from the artifact the node fetched over HTTP
    h.wait_for(lambda: "qa-lora@1.0.0" in (h.get_json("/healthz") or {}).get("ready_versions", []), 180,
               "qa-lora served")
    r = h.http.post("/v1/fn/qa-lora@1.0.0", json={"messages": [{"role": "user", "content": "What is physics?"}],
                                                 "max_tokens": 8, "temperature": 0}, timeout=120)
    assert r.status_code == 200 and r.json()["text"], r.text
    assert r.headers["x-hive-version"] == "qa-lora@1.0.0"


def test_a_gateway_restart_loses_no_job(lora: tuple[HiveProcess, str]) -> None:
    h, ds = lora
    job_id = h.http.post("/v1/jobs", json=lora_spec(ds, "qa-lora-restart@1.0.0")).json()["id"]
    wait_job(h, job_id, lambda v: v["status"] == "running" and v["step"] >= 2, timeout=240)
    h.kill("gateway", signal.SIGKILL)
    h.start_gateway()
    view = wait_job(h, job_id, timeout=300)
    assert view["status"] == "succeeded", view
    assert [p["step"] for p in steps_of(h, job_id)] == list(range(1, 11))
    listed = h.http.get("/v1/jobs").json()["jobs"]
    assert job_id in [j["id"] for j in listed]
