"""auto-router: the classifier `/v1/auto` routes with, over the catalog's own MiniLM vectors.

Trained from what a deployer writes and what the routing set labels: every routable
manifest's ``examples``, description and domains (labelled with the manifest's name) and
``evals/auto_routing/train.jsonl``. ``dev.jsonl`` chooses the settings (the text embedded,
``C``, the confidence threshold); ``test.jsonl`` is never read here: it is scored only by
``bench/auto_eval.py``, against the running hive.

Choices, each recorded in provenance:

* A multinomial logistic regression: a few hundred labelled requests over 384 dimensions is
  what a linear model fits without memorising, and its logits cost one matrix product in
  the gateway (no torch there).
* Confidence is calibrated by one temperature, fitted on cross-validated logits of the
  training rows (5 folds) by likelihood: the threshold below which the plan says it is
  unsure then means roughly the same across classes.
* The manifests' own texts weigh like train rows, so a function whose manifest is new gets
  routed at the next build without any new labelled request; until then the gateway's
  nearest-example fallback covers it.
* Dev rows are split into parts with the gateway's own splitter (``colabhive.auto.split``);
  a dev request whose part count differs from its label is a splitting miss, not a routing
  one, and is left out of the router's dev score (``bench/auto_eval.py`` counts it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .heads import Embedder
from .provenance import REPO, file_sha256, write_provenance

__all__ = ["NAME", "build", "inputs"]

NAME = "auto-router"
DATA = REPO / "evals" / "auto_routing"
MANIFESTS = REPO / "manifests"
MAX_TOKENS = 256  # minilm-embed's own options.max_tokens: the vectors the gateway will get
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
FEATURES = ("instruction", "full")
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.0, 0.61, 0.05))
WEIGHT_FILE = "router.safetensors"
CONFIG_FILE = "router.json"
NOT_ROUTED = frozenset({"echo"})


def inputs() -> list[Path]:
    """What the model is built from besides recipe code: a change to any rebuilds it."""
    return [*sorted(MANIFESTS.glob("*.toml")), *sorted(DATA.glob("*.jsonl")),
            REPO / "colabhive" / "auto" / "split.py", REPO / "colabhive" / "auto" / "parse.py"]


def _routable() -> list[Any]:
    from .. import families
    from ..manifests import load_manifests

    out = []
    for m in load_manifests([MANIFESTS]):
        f = families.find(m.task)
        if f is not None and f.auto_shape is not None and m.name not in NOT_ROUTED:
            out.append(m)
    return out


def manifest_rows(manifests: list[Any]) -> list[tuple[str, str]]:
    rows = []
    for m in manifests:
        texts = [*m.examples, m.description, *(f"{d} {m.task}" for d in m.domains)]
        rows += [(t, m.name) for t in texts if t.strip()]
    return rows


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_of(row: dict[str, Any]) -> list[str]:
    e = row["expected"]
    return [e] if isinstance(e, str) else list(e)


def dev_parts(rows: list[dict[str, Any]], names: set[str]) -> tuple[list[tuple[str, str]], int]:
    """(part text, function) for every dev request the splitter cuts as labelled; and how many it did not."""
    from ..auto.split import split_request

    out, missed = [], 0
    for row in rows:
        parts, want = split_request(row["input"]), expected_of(row)
        if len(parts) != len(want):
            missed += 1
            continue
        out += [(p.text, fn) for p, fn in zip(parts, want) if fn in names]
    return out, missed


def featurise(texts: list[str], how: str) -> list[str]:
    from ..auto.parse import instruction_of

    return [instruction_of(t) if how == "instruction" else t for t in texts]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x, y)


def _temperature(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> float:
    """The temperature that makes cross-validated probabilities most likely."""
    from sklearn.model_selection import StratifiedKFold

    logits = np.zeros((len(y), int(y.max()) + 1))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for tr, va in folds.split(x, y):
        head = _fit(x[tr], y[tr], c)
        full = np.full((len(va), logits.shape[1]), -1e9)
        full[:, head.classes_] = head.decision_function(x[va])
        logits[va] = full
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.2), np.log(5.0), 60)):
        p = _softmax(logits / t)[np.arange(len(y)), y]
        nll = float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def _dev_score(probs: np.ndarray, y: np.ndarray, general: int | None, threshold: float) -> float:
    """Accuracy on dev parts when an unsure part (top probability below threshold) goes to the general model."""
    pick = probs.argmax(axis=1)
    if general is not None:
        pick = np.where(probs.max(axis=1) < threshold, general, pick)
    return float(np.mean(pick == y)) if len(y) else float("nan")


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top probability."""
    top, right = probs.max(axis=1), probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (top > lo) & (top <= hi)
        if sel.any():
            total += sel.mean() * abs(top[sel].mean() - right[sel].mean())
    return float(total)


def build(out_dir: Path, seed: int) -> dict[str, float]:
    manifests = _routable()
    names = sorted(m.name for m in manifests)
    general = next((m.name for m in manifests if m.options.get("general") is True and m.task == "generation"), None)
    train_file, dev_file = DATA / "train.jsonl", DATA / "dev.jsonl"
    train = [(r["input"], fn) for r in _jsonl(train_file) for fn in expected_of(r)[:1] if fn in names]
    own = manifest_rows(manifests)
    dev_rows = _jsonl(dev_file) if dev_file.exists() else []
    dev, dev_split_misses = dev_parts(dev_rows, set(names))

    t0 = time.perf_counter()
    embed = Embedder(max_tokens=MAX_TOKENS)
    texts = [t for t, _ in own + train]
    y = np.array([names.index(fn) for _, fn in own + train])
    y_dev = np.array([names.index(fn) for _, fn in dev])
    vecs = {how: embed(featurise(texts, how)) for how in FEATURES}
    dev_vecs = {how: embed(featurise([t for t, _ in dev], how)) for how in FEATURES} if dev else {}
    embed_s = time.perf_counter() - t0

    g = names.index(general) if general else None
    trials = []
    for how in FEATURES:
        for c in C_GRID:
            head = _fit(vecs[how], y, c)
            if not dev:
                trials.append((0.0, how, c, 0.0, head))
                continue
            logits = np.full((len(dev), len(names)), -1e9)
            logits[:, head.classes_] = head.decision_function(dev_vecs[how])
            probs = _softmax(logits)
            score, thr = max((_dev_score(probs, y_dev, g, t), t) for t in THRESHOLDS)
            trials.append((score, how, c, thr, head))
    score, how, c, _, _ = max(trials, key=lambda t: (t[0], t[1] == "instruction", -t[2]))
    head = _fit(vecs[how], y, c)
    temperature = _temperature(vecs[how], y, c, seed)
    w = np.zeros((len(names), vecs[how].shape[1]), dtype=np.float32)
    b = np.full(len(names), -1e4, dtype=np.float32)
    w[head.classes_] = head.coef_ / temperature
    b[head.classes_] = head.intercept_ / temperature
    dev_metrics: dict[str, float] = {}
    threshold = 0.0
    if dev:
        probs = _softmax(dev_vecs[how] @ w.T + b)
        # ties go to the highest threshold: as accurate, and it says "unsure" where it is
        threshold = max(THRESHOLDS, key=lambda t: (_dev_score(probs, y_dev, g, t), t))
        dev_metrics = {"dev_part_accuracy": _dev_score(probs, y_dev, g, threshold),
                       "dev_part_accuracy_no_threshold": _dev_score(probs, y_dev, None, 0.0),
                       "dev_ece": ece(probs, y_dev)}
    train_acc = float(np.mean((vecs[how] @ w.T + b).argmax(axis=1) == y))

    from safetensors.numpy import save_file

    save_file({"weight": w, "bias": b}, str(out_dir / WEIGHT_FILE))
    config = {"classes": names, "feature": how, "threshold": threshold, "general": general,
              "embedder": "minilm-embed", "max_tokens": MAX_TOKENS, "temperature": temperature, "C": c}
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    data = [{"source": str(p.relative_to(REPO)), "sha256": file_sha256(p),
             "rows": len(_jsonl(p))} for p in (train_file, dev_file) if p.exists()]
    data.append({"source": "manifests/*.toml (examples, description, domains)", "rows": len(own),
                 "sha256": {p.name: file_sha256(p) for p in sorted(MANIFESTS.glob("*.toml"))}})
    write_provenance(
        out_dir,
        recipe=NAME,
        data=data,
        seed=seed,
        metrics={"train_accuracy": train_acc, **dev_metrics, "dev_parts": len(dev),
                 "dev_requests_split_otherwise": dev_split_misses, "embed_seconds": round(embed_s, 1)},
        params={"classes": len(names), "train_rows": len(train), "manifest_rows": len(own),
                "feature": how, "C": c, "temperature": round(temperature, 4), "threshold": threshold,
                "selection": "dev part accuracy over feature x C x threshold; test.jsonl unread",
                "head": "sklearn LogisticRegression (multinomial, lbfgs, balanced class weights)",
                "embedding": f"all-MiniLM-L6-v2, mean pooled, L2-normalised, {MAX_TOKENS} tokens"},
        libraries=["transformers", "scikit-learn"],
    )
    return {"dev_part_accuracy": dev_metrics.get("dev_part_accuracy", float("nan")), "train_accuracy": train_acc}
