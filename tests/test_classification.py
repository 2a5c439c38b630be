"""sentiment and intent (task classification) through a real gateway and node.

Answers are checked on texts whose label is not in doubt, sent concurrently so they come
back from batches, and one of them again alone. The serving path is also compared with the
build: the runner, loaded in this process from the same manifest, must reproduce the
accuracy the recipe recorded on the eval file, and the hive must give the same labels as
that in-process runner, so a drift in pooling, truncation or label order cannot hide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from conftest import TEST_LIMITS, serving
from hivectl import HiveProcess, MANIFESTS, ROOT, ok, post_all
from test_bad_input import assert_error

FUNCTIONS = ["sentiment", "intent"]
MODELS = {"sentiment": "sentiment-minilm", "intent": "intent-minilm"}
INTENTS = {
    "set an alarm for 7 am": "alarm",
    "what's the weather going to be like tomorrow": "weather",
    "transfer 100 dollars from my checking to my savings account": "transfer",
    "tell me a joke": "tell_joke",
    "my card was declined at the store": "card_declined",
    "how many calories are in a slice of pizza": "calories",
    "I want to talk to a real person": "connect_to_human",
}
SENTIMENTS = {
    "I absolutely love this phone, it works perfectly!": "positive",
    "Great service, I will definitely come back.": "positive",
    "What a wonderful day, thank you so much for the help!": "positive",
    "This is the worst service I have ever had.": "negative",
    "I hate waiting on hold for hours, this is awful.": "negative",
    "My flight was cancelled and nobody helped me. Terrible.": "negative",
}


@pytest.fixture(scope="module")
def cls_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """Gateway + one node hosting only sentiment and intent, both ready."""
    missing = [m for m in MODELS.values() if not (ROOT / "models" / m / "provenance.json").exists()]
    if missing:
        pytest.fail(f"models not built: {missing}; run `make models`")
    with serving(tmp_path_factory, "cls", FUNCTIONS) as h:
        yield h




def _assert_shape(out: dict[str, Any]) -> None:
    assert set(out) == {"label", "score", "top"}, out
    top = out["top"]
    assert len(top) == 3 and all(set(t) == {"label", "score"} for t in top), top
    assert top[0] == {"label": out["label"], "score": out["score"]}, out
    scores = [t["score"] for t in top]
    assert all(0.0 <= s <= 1.0 for s in scores), scores
    assert scores == sorted(scores, reverse=True), scores
    assert sum(scores) <= 1.0 + 1e-5, scores  # softmax probabilities: three of them cannot exceed 1
    assert len({t["label"] for t in top}) == 3, top


@pytest.mark.parametrize(("fn", "cases"), [("intent", INTENTS), ("sentiment", SENTIMENTS)], ids=FUNCTIONS[::-1])
def test_clear_texts_get_their_label(cls_hive: HiveProcess, fn: str, cases: dict[str, str]) -> None:
    texts = list(cases)
    responses = post_all(cls_hive, fn, [{"text": t} for t in texts])
    outs = [ok(r) for r in responses]
    for text, out in zip(texts, outs, strict=True):
        _assert_shape(out)
        assert out["label"] == cases[text], (text, out)
    assert max(int(r.headers["x-hive-batch"]) for r in responses) > 1
    alone = ok(cls_hive.call(fn, text=texts[0]))  # outside a batch: the same answer
    assert alone["label"] == outs[0]["label"]
    assert alone["score"] == pytest.approx(outs[0]["score"], abs=1e-4)


def test_sentiment_is_confident_on_plain_praise(cls_hive: HiveProcess) -> None:
    out = ok(cls_hive.call("sentiment", text="I absolutely love this phone, it works perfectly!"))
    assert out["score"] > 0.9, out
    assert {t["label"] for t in out["top"]} == {"negative", "neutral", "positive"}


def _eval_rows(fn: str) -> tuple[Any, list[dict[str, Any]]]:
    from colabhive.manifests import read_manifest

    manifest, problems = read_manifest(MANIFESTS / f"{fn}.toml")
    assert manifest is not None and not problems, problems
    rows = [json.loads(line) for line in manifest.eval_path().read_text().splitlines() if line.strip()]
    return manifest, rows


@pytest.mark.parametrize(("fn", "metric"), [("sentiment", "eval_jsonl_accuracy"), ("intent", "accuracy")])
def test_served_head_reproduces_the_recipe(cls_hive: HiveProcess, fn: str, metric: str) -> None:
    """The runner in-process scores what the recipe recorded, and the hive agrees with it."""
    from colabhive.families import family
    from colabhive.runners import source_path
    from colabhive.wire import Device

    manifest, rows = _eval_rows(fn)
    runner = family(manifest.task).runner(manifest, Device(kind="cpu"), "fp32")
    runner.load()
    input_type = runner.input_type(TEST_LIMITS["max_text_chars"])
    labels = [o.label for o in runner.run([msgspec.convert(r["input"], input_type) for r in rows])]
    accuracy = sum(label == r["expected"] for label, r in zip(labels, rows)) / len(rows)
    recorded = json.loads((source_path(manifest) / "provenance.json").read_text())
    assert accuracy == pytest.approx(recorded["metrics"][metric], abs=1.01 / len(rows)), accuracy
    assert manifest.eval is not None and accuracy >= manifest.eval.threshold, accuracy
    sample = rows[:5]
    served = [ok(r)["label"] for r in post_all(cls_hive, fn, [{"text": t} for t in [r["input"]["text"] for r in sample]])]
    assert served == labels[:5]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({}, "text"),
        ({"text": 5}, "text"),
        ({"text": "hello", "lang": "en"}, "lang"),
        ({"text": "a" * (TEST_LIMITS["max_text_chars"] + 1)}, "text"),
    ],
    ids=["empty", "missing", "not-a-string", "unknown-field", "too-long"],
)
def test_bad_input_is_a_422_naming_the_field(
    cls_hive: HiveProcess, fn: str, body: dict[str, Any], field: str
) -> None:
    assert_error(cls_hive.post(f"/v1/fn/{fn}", body), 422, "invalid_input", field)
