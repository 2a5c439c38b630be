"""Task families: every registered one implements each part of the interface or says it
does not, and the logic moved into them (ensemble combining, /auto payloads and bodies,
a translation's direction, metric and task checks) still does what it did.

Unit tier: no processes. The plugin-manager tests register a real family object through
the real hook; the third-party end-to-end case is tests/test_thirdparty_plugin.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import typing
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from colabhive import hookimpl
from colabhive.auto.orchestrate import _explicit
from colabhive.auto.parse import Part, classify_shape, series_of
from colabhive.auto.split import split_request
from colabhive.ensemble import combine
from colabhive.errors import ConfigError, EnsembleError
from colabhive.families import (
    PARTS, TaskFamily, all_families, family, find, general, names, of_shape, serving, with_role,
)
from colabhive.families.base import Shape
from colabhive.manifests import Ensemble, Evaluation, Manifest, Metric, Source, check_manifest
from colabhive.plugins import get_plugin_manager, make_plugin_manager, set_plugin_manager
from colabhive.runners import Runner

BUILTIN = {"classification", "classifier-experts", "echo", "embedding", "experts", "forecasting", "generation",
           "language", "rerank", "tabular", "translation"}
METRICS = set(typing.get_args(Metric))


def _overrides(f: TaskFamily, method: str) -> bool:
    return getattr(type(f), method) is not getattr(TaskFamily, method)


SUPPORTS: dict[str, Callable[[TaskFamily], bool]] = {
    "ensemble": lambda f: bool(f.combine_rules),
    "auto": lambda f: f.auto_shape is not None,
    "metrics": lambda f: bool(f.metrics),
    "openai": lambda f: f.openai_route is not None,
}
"""What "supports the part" means for each of PARTS; the meta-test checks the list is whole."""


# ---- the meta-test -------------------------------------------------------------------------
def test_the_builtin_families_are_registered() -> None:
    assert set(names()) == BUILTIN
    assert set(SUPPORTS) == set(PARTS)


@pytest.mark.parametrize("fam", all_families(), ids=lambda f: f.name)
def test_every_part_is_implemented_or_declared_unsupported(fam: TaskFamily) -> None:
    assert fam.unsupported <= set(PARTS), fam.unsupported - set(PARTS)
    for part, supported in SUPPORTS.items():
        if part in fam.unsupported:
            assert not supported(fam), f"{fam.name} declares {part} unsupported but implements it"
        else:
            assert supported(fam), f"{fam.name} neither implements {part} nor lists it in `unsupported`"


@pytest.mark.parametrize("fam", all_families(), ids=lambda f: f.name)
def test_a_supported_part_is_implemented_whole(fam: TaskFamily) -> None:
    """A declared part comes with the methods it needs, not just the flag."""
    assert issubclass(fam.runner, Runner)
    schemas = fam.runner.schemas(1000)
    assert schemas["input"]["$defs"] and schemas["output"]["$defs"]  # Structs both sides
    if fam.combine_rules:
        assert _overrides(fam, "combine") and fam.combine_rules <= {"vote", "mean", "score_weighted"}
    if fam.auto_shape is not None:
        assert fam.auto_shape in typing.get_args(Shape)
        if fam.auto_shape != "text":  # a structured payload: found in text and in objects, and built
            assert all(_overrides(fam, m) for m in ("recognise", "from_object", "auto_body")), fam.name
        if fam.auto_shape == "record":
            assert _overrides(fam, "record_features")
    if fam.router_role == "embedder" or fam.openai_route == "embeddings":
        assert _overrides(fam, "text_body") and _overrides(fam, "vector_of")
    if fam.router_role == "language_id":
        assert _overrides(fam, "text_body") and _overrides(fam, "language_of")
    assert fam.metrics <= METRICS, fam.metrics - METRICS


@pytest.mark.parametrize("fam", [f for f in all_families() if "ensemble" in f.unsupported], ids=lambda f: f.name)
def test_unsupported_means_refused(fam: TaskFamily) -> None:
    with pytest.raises(EnsembleError, match=f"outputs of task '{fam.name}' cannot be combined"):
        combine(fam.name, "mean", [{"x": 1}], [1.0])
    if fam.router_role is None and fam.openai_route != "embeddings":
        with pytest.raises(NotImplementedError):
            fam.text_body("x")


def test_the_router_and_the_openai_routes_each_find_their_family() -> None:
    assert general() is family("generation")
    assert [f.name for f in with_role("embedder")] == ["embedding"]
    assert [f.name for f in with_role("language_id")] == ["language"]
    assert [f.name for f in serving("embeddings")] == ["embedding"]
    assert [f.name for f in serving("chat")] == ["generation"]
    assert {f.name for f in of_shape("text")} == {"classification", "language", "translation", "generation",
                                                  "experts", "classifier-experts", "embedding"}
    assert [f.name for f in of_shape("ranking")] == ["rerank"]


def test_runner_modules_do_not_import_torch() -> None:
    """The gateway imports every family (and so every runner) for schemas alone."""
    code = ("import sys, colabhive.families as f; fams = f.all_families(); "
            "[x.runner.schemas(100) for x in fams]; print(len(fams), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == [str(len(BUILTIN)), "False"], out.stdout + out.stderr


# ---- the accessor and the hook -------------------------------------------------------------
def test_an_unknown_task_is_a_clear_error() -> None:
    assert find("nope") is None
    with pytest.raises(ConfigError, match=r"unknown task 'nope'; known: \['classification', .*'translation'\]"):
        family("nope")


class _Upper(Runner):
    Output = msgspec.defstruct("UpperOutput", [("text", str)])
    needs_source = False

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return msgspec.defstruct("UpperInput", [("text", str)])


class _UpperFamily(TaskFamily):
    name = "upper"
    runner = _Upper


class _Plugin:
    def __init__(self, *families: TaskFamily) -> None:
        self.families = list(families)

    @hookimpl
    def hive_task_families(self) -> list[TaskFamily]:
        return self.families


@pytest.fixture
def plugged() -> Iterator[Callable[..., None]]:
    """Swap in a plugin manager with extra plugins; the process's own comes back afterwards."""
    before = get_plugin_manager()

    def plug(*plugins: object) -> None:
        set_plugin_manager(make_plugin_manager(*plugins, entry_points=False))

    yield plug
    set_plugin_manager(before)


def test_a_plugin_adds_a_family_through_the_hook(plugged: Callable[..., None]) -> None:
    upper = _UpperFamily()
    plugged(_Plugin(upper))
    assert all_families()[0] is upper and "upper" in names() and "tabular" in names()  # built-ins trylast
    # a family that says nothing supports nothing
    assert not upper.combine_rules and upper.auto_shape is None and not upper.metrics and upper.openai_route is None
    m = Manifest(name="up", task="upper", file="up.toml")
    assert check_manifest(m) == []
    with pytest.raises(EnsembleError, match="cannot be combined"):
        combine("upper", "vote", [{"text": "A"}], [1.0])


def test_two_families_of_one_name_fail_at_start(plugged: Callable[..., None]) -> None:
    plugged(_Plugin(_UpperFamily(), _UpperFamily()))
    with pytest.raises(ConfigError, match="task 'upper' is declared twice"):
        all_families()


def test_a_hook_must_return_families(plugged: Callable[..., None]) -> None:
    plugged(_Plugin("upper"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a colabhive.families.TaskFamily"):
        all_families()


# ---- manifests -----------------------------------------------------------------------------
def test_manifest_check_names_the_file_and_key(tmp_path: Path) -> None:
    data = tmp_path / "eval.jsonl"
    data.write_text('{"input": {"text": "x"}, "expected": "y"}\n')
    unknown = Manifest(name="w", task="wordcount", file=str(tmp_path / "w.toml"))
    (p,) = check_manifest(unknown)
    assert (p.file, p.key) == (unknown.file, "task") and "unknown task 'wordcount'" in p.reason
    wrong_metric = Manifest(name="e", task="echo", file=str(tmp_path / "e.toml"),
                            eval=Evaluation(dataset="eval.jsonl", metric="accuracy", threshold=0.5, field="text"))
    (p,) = check_manifest(wrong_metric)
    assert p.key == "eval.metric" and "'accuracy' does not score echo outputs" in p.reason
    ok_metric = msgspec.structs.replace(wrong_metric, task="language", source=Source(package="py3langid"))
    assert check_manifest(ok_metric) == []
    forecast_vote = Manifest(name="f", task="forecasting", file=str(tmp_path / "f.toml"),
                             ensemble=Ensemble(members=["a", "b"], combine="vote"))
    (p,) = check_manifest(forecast_vote)
    assert p.key == "ensemble.combine" and "use mean or score_weighted" in p.reason


# ---- combining, per family -----------------------------------------------------------------
def test_language_answers_combine_like_labels() -> None:
    a = {"language": "pt", "score": 0.6, "top": [{"language": "pt", "score": 0.6}, {"language": "es", "score": 0.4}]}
    b = {"language": "es", "score": 0.9, "top": [{"language": "es", "score": 0.9}]}
    c = {"language": "pt", "score": 0.55, "top": [{"language": "pt", "score": 0.55}]}
    voted = family("language").combine("vote", [a, b, c], [1 / 3] * 3)
    assert voted["language"] == "pt"  # two votes to one, though es has more summed probability
    mean = family("language").combine("mean", [a, b, c], [1 / 3] * 3)
    assert mean["language"] == "es" and mean["top"][0] == {"language": "es", "score": pytest.approx(1.3 / 3)}


def test_forecasts_average_only_the_quantile_levels_all_members_give() -> None:
    f1 = {"forecast": [1.0, 2.0], "quantiles": {"0.1": [0.0, 1.0], "0.9": [2.0, 3.0]}, "model": "a"}
    f2 = {"forecast": [3.0, 4.0], "quantiles": {"0.9": [4.0, 5.0]}, "model": "b"}
    out = family("forecasting").combine("score_weighted", [f1, f2], [0.75, 0.25])
    assert out == {"forecast": [1.5, 2.5], "quantiles": {"0.9": [2.5, 3.5]}, "model": "ensemble(a, b)"}
    with pytest.raises(EnsembleError, match="different lengths"):
        family("forecasting").combine("mean", [f1, {**f2, "forecast": [1.0]}], [0.5, 0.5])


# ---- /auto payloads and bodies -------------------------------------------------------------
def test_shapes_are_recognised_by_their_families() -> None:
    series = classify_shape("Forecast the next 3 values: 1, 2, 3, 4, 5, 6, 7, 8, 9")
    assert (series.kind, series.payload) == ("series", {"series": [float(i) for i in range(1, 10)], "horizon": 3})
    # a record's numbers would also read as a run: the record wins (tabular comes first)
    both = "1 2 3 4 5 6 7 8 9; a=1, b=2, c=3"
    assert series_of(both) is not None
    rec = classify_shape(both)
    assert rec.kind == "record" and rec.payload == {"record": {"a": 1.0, "b": 2.0, "c": 3.0}}
    ranked = classify_shape('Which answers "how do I reset it": [1] hold the button [2] buy a new one')
    assert ranked.kind == "ranking" and ranked.payload == {"query": "how do I reset it",
                                                          "passages": ["hold the button", "buy a new one"]}
    text = classify_shape('Classify the sentiment: "I loved it"')
    assert (text.kind, text.payload) == ("text", {"text": "I loved it"})
    assert [p.kind for p in split_request("Translate into Portuguese: good night\n\n1, 2, 3, 4, 5, 6, 7, 8")] == [
        "text", "series"]


def test_caller_objects_become_parts_of_their_family() -> None:
    assert _explicit({"series": [1, 2], "horizon": 2}).payload == {"series": [1, 2], "horizon": 2}
    assert _explicit({"series": [1, 2]}).payload["horizon"] == 6
    ranked = _explicit({"query": "q", "passages": ["a", "b"]})
    assert (ranked.kind, ranked.text) == ("ranking", "q")  # the router embeds the query
    assert _explicit({"record": {"x": 1.0}}).kind == "record"
    assert _explicit({"text": 'Classify "fine"'}).payload == {"text": "fine"}


def test_each_family_builds_its_experts_input() -> None:
    series = Part("s", "series", {"series": [1.0] * 8, "horizon": 100})
    assert family("forecasting").auto_body(series, {"max_horizon": 12}) == {"series": [1.0] * 8, "horizon": 12}
    assert family("forecasting").auto_body(series, {})["horizon"] == 48
    assert family("tabular").auto_body(Part("r", "record", {"record": {"a": 1.0}}), {}) == {"record": {"a": 1.0}}
    ask = Part("What is a hive?", "text", {"text": "a hive"})
    assert family("generation").auto_body(ask, {}) == {
        "messages": [{"role": "user", "content": "What is a hive?"}], "max_tokens": 96}
    assert family("classification").auto_body(ask, {}) == {"text": "a hive"}
    assert family("classification").auto_body(Part("whole", "text", {}), {}) == {"text": "whole"}


def test_tabular_experts_take_their_models_features(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "features.json").write_text(json.dumps({"features": ["radius", "area"]}))
    model = Manifest(name="trees", task="tabular", source=Source(path="m"), file=str(tmp_path / "trees.toml"))
    both = Manifest(name="both", task="tabular", ensemble=Ensemble(members=["trees@1.0.0", "x"], combine="mean"))
    by_name = {"trees": model}
    tab = family("tabular")
    assert tab.record_features(model, by_name) == ["radius", "area"]
    assert tab.record_features(both, by_name) == ["radius", "area"]  # an ensemble: its first member's
    assert tab.record_features(msgspec.structs.replace(model, source=Source(path="gone")), by_name) == []


@dataclass
class _Router:
    """What the router offers a family: which refs are served, and a language identifier."""

    held: set[str]
    spoken: str | None = None

    def served(self, ref: str) -> bool:
        return ref in self.held

    @property
    def language(self) -> Callable[[str], Awaitable[str | None]] | None:
        if self.spoken is None:
            return None
        spoken = self.spoken

        async def identify(text: str) -> str | None:
            return spoken

        return identify


def _translator(direction: str) -> Manifest:
    return Manifest(name=f"translate-{direction}", task="translation", options={"direction": direction})


def test_a_translation_goes_to_the_direction_asked_for() -> None:
    tr = family("translation")
    en_pt, pt_en = _translator("en-pt"), _translator("pt-en")
    both = _Router({en_pt.ref, pt_en.ref})

    def refine(text: str, payload: dict[str, Any], router: Any) -> Any:
        return asyncio.run(tr.refine(en_pt, [en_pt, pt_en], text, payload, router))

    assert refine("Translate into English: bom dia", {"text": "bom dia"}, both) == (pt_en, "into 'en', so translate-pt-en")
    assert refine("Translate: good morning", {"text": "good morning"}, both)[0] is en_pt  # not Portuguese: into it
    # the catalog's language identifier says the payload is Portuguese: so into English
    assert refine("Translate: ola", {"text": "ola"}, _Router(both.held, "pt"))[0] is pt_en
    assert refine("Translate into English: bom dia", {"text": "bom dia"}, _Router({en_pt.ref})) is None  # unserved
    assert tr.asked_for("Please translate this") == "the request asks for a translation"
    assert tr.asked_for("Is this review positive?") is None
