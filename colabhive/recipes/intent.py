"""intent-minilm: rag-intent-classifier's logistic regression, converted to a safetensors head.

The package ships scikit-learn pickles and an ``infer_intent`` that fetches its encoder from
the hub, so neither is served: the coefficients are lifted out (a pickle is code, a
safetensors file is only numbers) and put on our own MiniLM vectors. Its classes are
strings: CLINC150 ids (``"0"``…``"150"``, plus ``"200"``) that ``label_map`` turns into
names, and five meta-intents stored by name (the map holds those as name → id, 201–205).

The package trained on SentenceTransformer vectors, which end with a Normalize module, so
the head expects unit-length vectors: exactly what :class:`MeanPooledEncoder` gives. The
build checks that by running the original sklearn estimator on our vectors and requiring
our head to agree with it in label and probability, and scores the result on the
handwritten ``evals/intent.jsonl`` (no held-out split ships with the package).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .heads import Embedder, predict, write_head
from .provenance import REPO, file_sha256, package_file, write_provenance

__all__ = ["NAME", "build"]

NAME = "intent-minilm"
PACKAGE = "rag_intent_classifier"
DIST = "rag-intent-classifier==1.0.7"
MODEL_FILE = "models/LogisticRegression.joblib"
LABEL_MAP_FILE = "models/label_map.joblib"
EVAL_SET = REPO / "evals" / "intent.jsonl"


def _label_names(classes: list[str], label_map: dict[str, Any]) -> list[str]:
    """Each class's name: numeric ids through the map, the meta-intents as they stand."""
    names: list[str] = []
    for c in classes:
        if c.isdigit() and not str(label_map.get(c, "")).isdigit():
            names.append(str(label_map[c]))
        elif not c.isdigit() and str(label_map.get(c, "")).isdigit():
            names.append(c)  # stored name -> id
        else:
            raise ValueError(f"class {c!r} has no name in label_map")
    if len(set(names)) != len(names):
        raise ValueError("two classes map to the same label name")
    return names


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def build(out_dir: Path, seed: int) -> dict[str, float]:
    import joblib

    model_path, map_path = package_file(PACKAGE, MODEL_FILE), package_file(PACKAGE, LABEL_MAP_FILE)
    with warnings.catch_warnings():  # pickled by another scikit-learn version; the numbers are what we keep
        warnings.simplefilter("ignore")
        clf = joblib.load(model_path)
        label_map: dict[str, Any] = joblib.load(map_path)
    classes = [str(c) for c in clf.classes_]
    labels = _label_names(classes, label_map)
    coef, intercept = np.asarray(clf.coef_, dtype=np.float64), np.asarray(clf.intercept_, dtype=np.float64)

    rows = [json.loads(line) for line in EVAL_SET.read_text().splitlines() if line.strip()]
    texts = [r["input"]["text"] for r in rows]
    vectors = Embedder()(texts)

    # Same vectors through the original estimator and through our head: labels must match and
    # probabilities must be the same softmax, or the conversion (or our pooling) is wrong.
    sk_labels = [labels[classes.index(str(c))] for c in clf.predict(vectors)]
    ours = predict(vectors, coef, intercept)
    if sk_labels != [labels[i] for i in ours]:
        raise AssertionError("converted head disagrees with the sklearn estimator")
    prob_gap = float(np.abs(clf.predict_proba(vectors) - _softmax(vectors @ coef.T + intercept)).max())
    if prob_gap > 1e-5:
        raise AssertionError(f"probabilities differ from sklearn's by {prob_gap:.2e}: not a multinomial head?")

    unknown = sorted({r["expected"] for r in rows} - set(labels))
    if unknown:
        raise ValueError(f"{EVAL_SET.name} expects labels the head does not know: {unknown}")
    accuracy = float(np.mean([labels[i] == r["expected"] for i, r in zip(ours, rows)]))

    write_head(out_dir, coef, intercept, labels)
    write_provenance(
        out_dir,
        recipe=NAME,
        data=[
            {"source": f"{DIST}:{MODEL_FILE}", "sha256": file_sha256(model_path), "rows": len(classes)},
            {"source": f"{DIST}:{LABEL_MAP_FILE}", "sha256": file_sha256(map_path), "rows": len(label_map)},
            {"source": "evals/intent.jsonl", "sha256": file_sha256(EVAL_SET), "rows": len(rows)},
        ],
        seed=seed,
        metrics={"accuracy": accuracy, "eval_lines": float(len(rows)), "max_prob_gap_vs_sklearn": prob_gap},
        params={
            "estimator": type(clf).__name__,
            "C": clf.get_params().get("C"),
            "labels": len(labels),
            "embedding": "all-MiniLM-L6-v2, attention-masked mean pooling, L2-normalised",
            "converted_from": "sklearn coef_/intercept_ (no retraining)",
        },
        libraries=["transformers", "scikit-learn", "joblib"],
    )
    return {"accuracy": accuracy}
