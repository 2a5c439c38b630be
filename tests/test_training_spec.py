"""Training job specs: decoding, errors naming the field, the example specs, the optimizer split.

Pure functions and tiny tensors only; the methods themselves are exercised in
``test_training_methods.py`` and resuming in ``test_training_resume.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from colabhive.manifests import Guard, Hardware
from colabhive.training import InvalidSpec, decode_spec
from colabhive.training.example_data import EXAMPLES, write_dataset
from colabhive.training.methods.lora import LoraHParams
from colabhive.training.tomlout import dumps

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "examples" / "jobs"
ID = "ab" * 32

BASE = {
    "method": "lora",
    "base": "smollm2-chat",
    "dataset": {"id": ID, "columns": {"prompt": "q", "response": "a"}},
    "eval": {"split": 0.1, "metric": "chrf", "threshold": 20.0},
    "budget": {"max_steps": 10},
    "output": "smollm2-qa@1.0.0",
    "hparams": {"r": 4},
}


def _with(**changes: object) -> bytes:
    spec = json.loads(json.dumps(BASE))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        cur = spec
        for p in path:
            cur = cur.setdefault(p, {})
        if value is None:
            cur.pop(last, None)
        else:
            cur[last] = value
    return json.dumps(spec).encode()


def test_a_good_spec_decodes_with_its_methods_hparams() -> None:
    spec, hp = decode_spec(_with())
    assert spec.method == "lora" and spec.output_name == "smollm2-qa" and spec.output_version == "1.0.0"
    assert isinstance(hp, LoraHParams) and hp.r == 4 and hp.target_modules == ["q_proj", "v_proj"]
    assert spec.checkpoint_every == 50 and spec.seed == 0 and spec.hardware.dtypes == ["fp32"]


def test_json_and_toml_give_the_same_spec() -> None:
    as_toml = dumps({k: v for k, v in BASE.items() if not isinstance(v, dict)} |
                    {"eval": BASE["eval"], "budget": BASE["budget"], "hparams": BASE["hparams"],
                     "dataset": {"id": ID}})
    toml_spec, _ = decode_spec(as_toml)
    json_spec, _ = decode_spec(_with(dataset__columns={}))
    assert toml_spec == json_spec


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hparams__r": 0}, "hparams.r"),
        ({"hparams__r": "eight"}, "hparams.r"),
        ({"hparams__rank": 8}, "hparams.rank"),
        ({"hparams__target_modules": []}, "hparams.target_modules"),
        ({"eval__split": 1.5}, "eval.split"),
        ({"eval__dataset": ID}, "eval.split"),  # both given
        ({"eval__metric": "bleu"}, "eval.metric"),
        ({"eval__metric": "accuracy"}, "eval.metric"),  # exists, but not for generation
        ({"budget__max_steps": None}, "budget.max_steps"),
        ({"dataset__id": "not-a-hash"}, "dataset.id"),
        ({"output": "no-version"}, "output"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"base": None}, "base"),
        ({"method": "rlhf"}, "method"),
        ({"colour": "blue"}, "colour"),
        ({"hardware__dtypes": ["fp8"]}, "hardware.dtypes.0"),
    ],
)
def test_errors_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        decode_spec(_with(**changes))
    assert err.value.field == field, (err.value.field, err.value.message)
    assert err.value.status == 422


def test_method_rules_name_the_field() -> None:
    head = _with(method="head", base="minilm-embed", eval={"split": 0.1, "metric": "accuracy", "threshold": 0.5},
                 hparams={}, dataset__columns={"label": "sentiment"})
    assert decode_spec(head)[0].method == "head"
    with pytest.raises(InvalidSpec) as err:
        decode_spec(head.replace(b'"method": "head"', b'"method": "head", "optimizer": "muon"'))
    assert err.value.field == "optimizer" and "adamw" in err.value.message
    tab = _with(method="tabular", base=None, eval={"split": 0.2, "metric": "r2", "threshold": 0.3}, hparams={},
                dataset__columns={})
    assert decode_spec(tab)[0].optimizer is None
    with pytest.raises(InvalidSpec) as err:
        decode_spec(tab.replace(b'"method": "tabular"', b'"method": "tabular", "optimizer": "adamw"'))
    assert err.value.field == "optimizer" and "no gradient optimizer" in err.value.message
    with pytest.raises(InvalidSpec) as err:
        decode_spec(tab.replace(b'"method": "tabular"', b'"method": "tabular", "base": "minilm-embed"'))
    assert err.value.field == "base"


def test_bad_syntax_is_an_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match="not valid TOML"):
        decode_spec(b"method = ")


@pytest.mark.parametrize("path", sorted(JOBS.glob("*.toml")), ids=lambda p: p.stem)
def test_example_specs_decode_and_name_their_data(path: Path, tmp_path: Path) -> None:
    """Each example's dataset id is what its ``# data:`` command writes, byte for byte."""
    spec, _ = decode_spec(path.read_bytes())
    line = next(ln for ln in path.read_text().splitlines() if ln.startswith("# data:"))
    name, out = line.split("example_data", 1)[1].split()[:2]
    assert name in EXAMPLES
    assert write_dataset(EXAMPLES[name](), tmp_path / out) == spec.dataset.id


def test_example_specs_cover_every_method() -> None:
    assert {decode_spec(p.read_bytes())[0].method for p in JOBS.glob("*.toml")} == {"lora", "head", "forecast",
                                                                                    "tabular", "experts"}


def test_toml_writer_round_trips() -> None:
    doc = {"name": "x", "n": 3, "f": 0.5, "ok": True, "tags": ["a", "b\"c"], "source": {"path": "."},
           "empty": {}, "options": {"max_tokens": 64, "flag": False}}
    back = msgspec.toml.decode(dumps(doc).encode())
    assert back == {k: v for k, v in doc.items() if v != {}}


def test_toml_writer_writes_sub_tables_and_leaves_out_none() -> None:
    """An exported manifest's ``hardware`` is ``to_builtins`` of the job's Hardware: its ``guard``
    is ``None`` unless set (TOML has no null) and a set one is the ``[hardware.guard]`` table."""
    unset = msgspec.to_builtins(Hardware())
    assert unset["guard"] is None
    doc = {"name": "x", "hardware": unset, "eval": {"metric": "chrf", "field": None}}
    assert msgspec.toml.decode(dumps(doc).encode()) == {
        "name": "x", "hardware": {k: v for k, v in unset.items() if k != "guard"}, "eval": {"metric": "chrf"}}
    guarded = msgspec.to_builtins(Hardware(dtypes=["bf16", "fp32"], guard=Guard(min=0.99, field="embedding")))
    text = dumps({"hardware": guarded})
    assert "[hardware.guard]" in text, text
    back = msgspec.toml.decode(text.encode(), type=dict[str, Hardware])["hardware"]
    assert back.guard == Guard(min=0.99, field="embedding") and back.dtypes == ["bf16", "fp32"]
    with pytest.raises(TypeError, match="tags"):
        dumps({"tags": ["a", None]})


def test_muon_takes_only_hidden_matrices() -> None:
    import torch

    from colabhive.training.optim import build_optimizer, hidden_matrix

    model = torch.nn.ModuleDict({"embed_tokens": torch.nn.Embedding(10, 4), "layer": torch.nn.Linear(4, 4),
                                 "norm": torch.nn.LayerNorm(4), "lm_head": torch.nn.Linear(4, 10)})
    named = list(model.named_parameters())
    assert [n for n, p in named if hidden_matrix(n, p)] == ["layer.weight"]
    opt = build_optimizer(named, "muon", lr=1e-3, weight_decay=0.1)
    assert opt.kinds == ["muon", "adamw"]
    muon_params = [p for g in opt.parts[0].param_groups for p in g["params"]]
    assert len(muon_params) == 1 and muon_params[0] is model["layer"].weight
    adam = {id(p): g["weight_decay"] for g in opt.parts[1].param_groups for p in g["params"]}
    assert adam[id(model["lm_head"].weight)] == 0.1 and adam[id(model["norm"].weight)] == 0.0
    x = torch.randint(0, 10, (3,))
    model["lm_head"](model["norm"](model["layer"](model["embed_tokens"](x)))).sum().backward()
    opt.step()  # Muon would raise on a non-2-D parameter
    assert build_optimizer(named, "adamw", lr=1e-3).kinds == ["adamw"]
    with pytest.raises(ValueError, match="no hidden weight matrices"):
        build_optimizer([("head.weight", model["lm_head"].weight)], "muon", lr=1e-3)


def test_an_unknown_column_role_is_named() -> None:
    with pytest.raises(InvalidSpec) as err:
        decode_spec(_with(dataset__columns={"promt": "q"}))
    assert err.value.field == "dataset.columns.promt" and "prompt" in err.value.message


def test_the_base_must_be_a_function_of_the_right_task() -> None:
    from colabhive.training.loop import resolve_base
    from colabhive.training.methods import get_method

    manifests = [REPO / "manifests"]
    base = resolve_base("smollm2-chat", manifests, get_method("lora").base_tasks)
    assert base.ref == "smollm2-chat@1.0.0" and (base.dir / "config.json").is_file()
    with pytest.raises(InvalidSpec) as err:
        resolve_base("minilm-embed", manifests, get_method("lora").base_tasks)
    assert err.value.field == "base" and "embedding" in err.value.message
    with pytest.raises(InvalidSpec) as err:
        resolve_base("no-such-function@9", manifests)
    assert err.value.field == "base"
