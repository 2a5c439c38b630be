"""The routing evaluation set for /v1/auto (tests/auto_routing.jsonl) is well formed.

Fast and process-free: it reads the file, the manifests and the tabular models' feature lists.
The set itself is scored against a running hive by bench/auto_eval.py.
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
EVAL_SET = ROOT / "tests" / "auto_routing.jsonl"
MIN_LINES = 220
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


def _lines() -> list[dict]:
    out = []
    for n, raw in enumerate(EVAL_SET.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"line {n} is not JSON: {e}")
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


LINES = _lines()
TASKS = _manifest_tasks()
SAME_RECORDS = same_records(load_manifests([ROOT / "manifests"]))


def test_enough_lines() -> None:
    assert len(LINES) >= MIN_LINES, f"{len(LINES)} lines, want at least {MIN_LINES}"


def test_each_line_has_the_three_fields() -> None:
    for n, row in enumerate(LINES, 1):
        assert set(row) == {"input", "expected", "task"}, f"line {n}: fields {sorted(row)}"
        assert isinstance(row["input"], str) and row["input"].strip(), f"line {n}: empty input"
        assert isinstance(row["expected"], str) and isinstance(row["task"], str), f"line {n}"


def test_expected_is_a_function_with_a_manifest_and_its_task() -> None:
    for n, row in enumerate(LINES, 1):
        assert row["expected"] in TASKS, f"line {n}: no manifest for {row['expected']!r}"
        assert row["expected"] not in NOT_ROUTED, f"line {n}: {row['expected']} is not a routing target"
        assert row["task"] == TASKS[row["expected"]], (
            f"line {n}: task {row['task']!r}, but {row['expected']}'s manifest says {TASKS[row['expected']]!r}"
        )


def test_every_function_is_covered() -> None:
    """Tabular functions on the same features (a model, its alternative, their ensemble) are one
    routing target: a record cannot tell them apart, so they share their lines."""
    counts = Counter(row["expected"] for row in LINES)
    groups = SAME_RECORDS
    assert groups["tabular-breast-cancer"] == {"tabular-breast-cancer", "tabular-breast-cancer-linear",
                                               "tabular-breast-cancer-ensemble"}
    covered = {fn: sum(counts[g] for g in groups.get(fn, {fn})) for fn in TASKS if fn not in NOT_ROUTED}
    thin = {fn: n for fn, n in covered.items() if n < MIN_PER_FUNCTION}
    assert not thin, f"fewer than {MIN_PER_FUNCTION} lines: {thin}"


def test_no_duplicate_inputs() -> None:
    seen = Counter(" ".join(row["input"].split()).lower() for row in LINES)
    dupes = [text for text, k in seen.items() if k > 1]
    assert not dupes, f"duplicate inputs: {dupes[:5]}"


@pytest.mark.parametrize("fn", sorted(TABULAR))
def test_tabular_lines_carry_a_record(fn: str) -> None:
    features = json.loads(TABULAR[fn].read_text())["features"]
    rows = [row for row in LINES if row["expected"] == fn]
    assert rows
    for row in rows:
        named = _features_named(row["input"], features)
        assert len(named) >= 5, f"{fn}: only {sorted(named)} named in {row['input'][:120]!r}"


def test_forecasting_lines_carry_a_series() -> None:
    rows = [row for row in LINES if TASKS[row["expected"]] == "forecasting"]
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
