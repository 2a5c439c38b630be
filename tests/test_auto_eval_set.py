"""The routing data for /v1/auto (evals/auto_routing/{train,dev,test}.jsonl) is well formed and kept apart.

Fast and process-free: it reads the files, the manifests and the tabular models' feature lists.
The splits are scored against a running hive by bench/auto_eval.py; train and dev build the router.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from colabhive.auto.experts import same_records
from colabhive.manifests import load_manifests

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT / "evals" / "auto_routing"
SPLITS = ("train", "dev", "test")
MIN_LINES = 400
MIN_PER_FUNCTION = 12
NOT_ROUTED = {"echo"}  # measures the platform, never an answer to a request
TABULAR = {
    "tabular-breast-cancer": ROOT / "models" / "tabular-breast-cancer" / "features.json",
    "tabular-wine": ROOT / "models" / "tabular-wine" / "features.json",
    "tabular-diabetes": ROOT / "models" / "tabular-diabetes" / "features.json",
}
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _manifest_tasks() -> dict[str, str]:
    """name -> task, over every manifest in manifests/."""
    tasks: dict[str, str] = {}
    for path in sorted((ROOT / "manifests").glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        tasks[doc["name"]] = doc["task"]
    return tasks


def _lines(split: str) -> list[dict]:
    out = []
    for n, raw in enumerate((EVAL_DIR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{split} line {n} is not JSON: {e}")
        out.append(row | {"expected": [row["expected"]] if isinstance(row["expected"], str) else row["expected"],
                          "split": split})
    return out


def _norm(text: str) -> str:
    """Lower case, underscores as spaces: `malic_acid` and `malic acid` both name the feature."""
    return text.lower().replace("_", " ")


def _features_named(text: str, features: list[str]) -> set[str]:
    """The features named in ``text`` as whole names; a longer name is matched first and blanked,
    so `alcalinity_of_ash` does not also count as `ash`."""
    t, named = _norm(text), set()
    for f in sorted(features, key=len, reverse=True):
        pattern = re.compile(r"(?<![a-z0-9])" + re.escape(_norm(f)) + r"(?![a-z0-9])")
        if pattern.search(t):
            named.add(f)
            t = pattern.sub(" ", t)
    return named


BY_SPLIT = {split: _lines(split) for split in SPLITS}
LINES = [row for rows in BY_SPLIT.values() for row in rows]
SINGLE = [row for row in LINES if len(row["expected"]) == 1]
TASKS = _manifest_tasks()
SAME_RECORDS = same_records(load_manifests([ROOT / "manifests"]))


def test_enough_lines() -> None:
    assert len(LINES) >= MIN_LINES, f"{len(LINES)} lines, want at least {MIN_LINES}"


def test_each_line_has_an_input_and_expected_functions() -> None:
    for row in LINES:
        assert isinstance(row["input"], str) and row["input"].strip(), f"{row['split']}: empty input"
        assert row["expected"] and all(isinstance(e, str) for e in row["expected"]), row["input"][:80]
        if row["split"] != "train":  # written apart: each says its form and language
            assert {"form", "lang"} <= set(row), f"{row['split']}: {row['input'][:80]!r} lacks form/lang"


def test_expected_is_a_function_with_a_manifest() -> None:
    for row in LINES:
        for fn in row["expected"]:
            assert fn in TASKS, f"{row['split']}: no manifest for {fn!r}"
            assert fn not in NOT_ROUTED, f"{row['split']}: {fn} is not a routing target"
        if "task" in row:
            assert row["task"] == TASKS[row["expected"][0]], row["input"][:80]


def test_the_splits_share_no_request() -> None:
    """A request in two splits would score the router on what tuned it."""
    seen: dict[str, str] = {}
    for row in LINES:
        key = " ".join(row["input"].split()).lower()
        assert key not in seen, f"{row['input'][:80]!r} is in {seen[key]} and {row['split']}"
        seen[key] = row["split"]


def test_held_out_splits_have_compound_requests_in_every_form() -> None:
    for split in ("dev", "test"):
        forms = Counter(row["form"] for row in BY_SPLIT[split] if len(row["expected"]) > 1)
        for form in ("and-also", "then", "first-second", "numbered", "question-after-instruction",
                     "one-sentence", "lines"):
            assert forms[form] >= 5, f"{split}: {forms[form]} {form} requests"
        assert any(row["lang"] == "pt" for row in BY_SPLIT[split])


def test_every_function_is_covered() -> None:
    """Tabular functions on the same features (a model, its alternative, their ensemble) are one
    routing target: a record cannot tell them apart, so they share their lines."""
    counts = Counter(fn for row in BY_SPLIT["test"] for fn in row["expected"])
    groups = SAME_RECORDS
    assert groups["tabular-breast-cancer"] == {"tabular-breast-cancer", "tabular-breast-cancer-linear",
                                               "tabular-breast-cancer-ensemble"}
    covered = {fn: sum(counts[g] for g in groups.get(fn, {fn})) for fn in TASKS if fn not in NOT_ROUTED}
    thin = {fn: n for fn, n in covered.items() if n < MIN_PER_FUNCTION}
    assert not thin, f"test split: fewer than {MIN_PER_FUNCTION} parts: {thin}"


def test_no_duplicate_inputs() -> None:
    """Within a split too: the same request twice would count twice."""
    seen = Counter(" ".join(row["input"].split()).lower() for row in LINES)
    dupes = [text for text, k in seen.items() if k > 1]
    assert not dupes, f"duplicate inputs: {dupes[:5]}"


@pytest.mark.parametrize("fn", sorted(TABULAR))
def test_tabular_lines_carry_a_record(fn: str) -> None:
    features = json.loads(TABULAR[fn].read_text())["features"]
    rows = [row for row in SINGLE if row["expected"] == [fn]]
    assert rows
    for row in rows:
        named = _features_named(row["input"], features)
        assert len(named) >= 5, f"{fn}: only {sorted(named)} named in {row['input'][:120]!r}"


def test_forecasting_lines_carry_a_series() -> None:
    rows = [row for row in SINGLE if TASKS[row["expected"][0]] == "forecasting"]
    assert rows
    for row in rows:
        numbers = NUMBER.findall(row["input"])
        assert len(numbers) >= 8, f"{row['expected']}: {len(numbers)} numbers in {row['input'][:120]!r}"


def test_feature_matcher() -> None:
    """The matcher itself: whole names only, underscores and spaces alike."""
    wine = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "hue"]
    assert _features_named("alcohol 13.2, malic acid 1.7, alcalinity_of_ash 15", wine) == {
        "alcohol",
        "malic_acid",
        "alcalinity_of_ash",
    }
    assert _features_named("washed in ashes", ["ash"]) == set()
    assert _features_named("s1=0.1, s10=0.2", ["s1", "s2"]) == {"s1"}


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def test_train_has_no_near_copy_of_a_held_out_request() -> None:
    """Train rows were written by the router's author, the held-out ones apart; a train row whose
    words are mostly a dev or test row's (Jaccard ≥ 0.6) was dropped from train, and stays out."""
    held = [_tokens(r["input"]) for r in BY_SPLIT["dev"] + BY_SPLIT["test"]]
    for row in BY_SPLIT["train"]:
        t = _tokens(row["input"])
        close = max(len(t & h) / max(1, len(t | h)) for h in held)
        assert close < 0.6, f"train {row['input'][:80]!r} is a near copy of a held-out request ({close:.2f})"


def test_the_router_is_a_recipe_built_from_train_and_dev_only() -> None:
    """`make models` builds models/auto-router with provenance: the data it read (with sha256), never test."""
    from colabhive.recipes.provenance import file_sha256

    prov = json.loads((ROOT / "models" / "auto-router" / "provenance.json").read_text())
    assert prov["recipe"] == "auto-router"
    read = {d["source"]: d.get("sha256") for d in prov["data"]}
    assert read["evals/auto_routing/train.jsonl"] == file_sha256(EVAL_DIR / "train.jsonl")
    assert read["evals/auto_routing/dev.jsonl"] == file_sha256(EVAL_DIR / "dev.jsonl")
    assert not any("test.jsonl" in source for source in read)
    assert 0.0 <= prov["params"]["threshold"] < 1.0 and prov["metrics"]["dev_parts"] > 0
    config = json.loads((ROOT / "models" / "auto-router" / "router.json").read_text())
    assert config["classes"] == sorted(set(config["classes"])) and "echo" not in config["classes"]
