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
C_GRID = (4.0, 16.0, 64.0)
FEATURES = ("instruction", "full", "mixed")
EMBEDDINGS = ("minilm", "static")
SIF_A = 1e-3
ESCALATE = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.01)
"""Fast-head confidences under which the full head is asked (1.01: always; 0: never)."""
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.0, 0.61, 0.05))
WEIGHT_FILE = "router.safetensors"
CONFIG_FILE = "router.json"
NOT_ROUTED = frozenset({"echo"})


def inputs() -> list[Path]:
    """What the model is built from besides recipe code: a change to any rebuilds it."""
    return [*sorted(MANIFESTS.glob("*.toml")), *sorted(DATA.glob("*.jsonl")),
            *(REPO / "colabhive" / "auto" / f for f in ("split.py", "split_lines.py", "split_words.py", "parse.py",
                                                        "features.py", "static_embed.py"))]


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


def distil(embed: Embedder, out_dir: Path) -> None:
    """MiniLM's vocabulary through MiniLM, one token at a time (``[CLS] t [SEP]``, mean pooled):
    the static table the gateway embeds with (:mod:`colabhive.auto.static_embed`), with SIF weights
    from each token's rank (WordPiece vocabularies list whole words by frequency)."""
    import shutil

    import torch
    from safetensors.numpy import save_file

    from ..auto.static_embed import TABLE_FILE, TOKENIZER_FILE

    enc = embed.encoder
    tok = enc.tokenizer
    vocab = len(tok)
    special = set(tok.all_special_ids)
    table = np.zeros((vocab, 384), dtype=np.float32)
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    ids = torch.arange(vocab)
    with torch.inference_mode():
        for k in range(0, vocab, 2048):
            chunk = ids[k: k + 2048]
            batch = torch.stack([torch.full_like(chunk, cls_id), chunk, torch.full_like(chunk, sep_id)], dim=1)
            hidden = enc.model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            table[k: k + len(chunk)] = hidden.float().mean(1).numpy()
    table /= np.linalg.norm(table, axis=1, keepdims=True).clip(1e-9)
    first_word = tok.convert_tokens_to_ids("the")  # where frequency order starts ("the", "of", "and", ...)
    rank = np.maximum(np.arange(vocab) - first_word + 1, 1).astype(np.float64)
    p = 1.0 / (rank * np.log(vocab))
    weights = (SIF_A / (SIF_A + p)).astype(np.float32)
    weights[list(special)] = 0.0
    weights[[i for t, i in tok.get_vocab().items() if t.startswith("[unused")]] = 0.0
    save_file({"table": table.astype(np.float16), "weights": weights}, str(out_dir / TABLE_FILE))
    shutil.copyfile(Path(tok.name_or_path) / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)


def build(out_dir: Path, seed: int) -> dict[str, float]:
    from scipy import sparse

    from ..auto.features import Featuriser
    from ..auto.static_embed import StaticEmbedder

    manifests = _routable()
    names = sorted(m.name for m in manifests)
    general = next((m.name for m in manifests if m.options.get("general") is True and m.task == "generation"), None)
    train_file, dev_file = DATA / "train.jsonl", DATA / "dev.jsonl"
    train = [(r["input"], fn) for r in _jsonl(train_file) for fn in expected_of(r)[:1] if fn in names]
    own = manifest_rows(manifests)
    dev_rows = _jsonl(dev_file) if dev_file.exists() else []
    dev, dev_split_misses = dev_parts(dev_rows, set(names))
    texts, dev_texts = [t for t, _ in own + train], [t for t, _ in dev]
    y = np.array([names.index(fn) for _, fn in own + train])
    y_dev = np.array([names.index(fn) for _, fn in dev])

    t0 = time.perf_counter()
    embed = Embedder(max_tokens=MAX_TOKENS)
    distil(embed, out_dir)
    static = StaticEmbedder.load(out_dir)
    distil_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectors: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for kind, how in ((k, h) for k in EMBEDDINGS for h in FEATURES):
        f = Featuriser(kind, how, False)
        run = embed if kind == "minilm" else static
        vectors[(kind, how)] = (run([f.text_of(t) for t in texts]),
                                run([f.text_of(t) for t in dev_texts]) if dev else np.zeros((0, 384)))
    embed_s = time.perf_counter() - t0

    g = names.index(general) if general else None
    trials = []
    for (kind, how), (vx, vdev) in vectors.items():
        for ngrams in (False, True):
            f = Featuriser(kind, how, ngrams)
            x = f.matrix(texts, vx)
            x_dev = f.matrix(dev_texts, vdev) if dev else None
            for c in C_GRID:
                head = _fit(x, y, c)
                if not dev:
                    trials.append((0.0, kind == "static", c, f, 0.0))
                    continue
                logits = np.full((len(dev), len(names)), -1e9)
                logits[:, head.classes_] = head.decision_function(x_dev)
                probs = _softmax(logits)
                score = _dev_score(probs, y_dev, None, 0.0)
                trials.append((score, kind == "static", -c, f, _dev_score(probs, y_dev, g, 0.3)))
    heads: dict[str, dict[str, Any]] = {}
    for name, kind in (("fast", "static"), ("full", "minilm")):
        # per head, the most accurate settings on dev; a tie goes to the simpler model
        best = max((t for t in trials if (t[3].embedding == kind)), key=lambda t: (t[0], t[2]))
        f, c = best[3], -best[2] if dev else best[2]
        vx, vdev = vectors[(f.embedding, f.text)]
        x = f.matrix(texts, vx)
        head = _fit(x, y, c)
        temperature = _temperature(x, y, c, seed)
        w = np.zeros((len(names), x.shape[1]), dtype=np.float32)
        b = np.full(len(names), -1e4, dtype=np.float32)
        w[head.classes_] = head.coef_ / temperature
        b[head.classes_] = head.intercept_ / temperature
        dev_p = (_softmax(np.asarray(f.matrix(dev_texts, vdev) @ w.T) + b)
                 if dev else np.zeros((0, len(names))))
        heads[name] = {"f": f, "C": c, "temperature": temperature, "w": w, "b": b, "dev_probs": dev_p,
                       "train_accuracy": float(np.mean((np.asarray(x @ w.T) + b).argmax(axis=1) == y))}

    def cascade(tau: float) -> np.ndarray:
        fast, full = heads["fast"]["dev_probs"], heads["full"]["dev_probs"]
        return np.where((fast.max(axis=1) < tau)[:, None], full, fast)

    dev_metrics: dict[str, Any] = {}
    threshold, escalate = 0.0, 0.0
    if dev:
        # the fewest node calls at the best dev accuracy
        escalate = min(ESCALATE, key=lambda t: (-_dev_score(cascade(t), y_dev, None, 0.0), t))
        probs = cascade(escalate)
        # ties go to the highest threshold: as accurate, and it says "unsure" where it is
        threshold = max(THRESHOLDS, key=lambda t: (_dev_score(probs, y_dev, g, t), t))
        dev_metrics = {"dev_part_accuracy": _dev_score(probs, y_dev, g, threshold),
                       "dev_part_accuracy_fast_head": _dev_score(heads["fast"]["dev_probs"], y_dev, None, 0.0),
                       "dev_part_accuracy_full_head": _dev_score(heads["full"]["dev_probs"], y_dev, None, 0.0),
                       "dev_escalated_share": float(np.mean(heads["fast"]["dev_probs"].max(axis=1) < escalate)),
                       "dev_cascade": {str(t): [round(_dev_score(cascade(t), y_dev, None, 0.0), 4),
                                                round(float(np.mean(heads["fast"]["dev_probs"].max(axis=1) < t)), 3)]
                                       for t in ESCALATE},
                       "dev_ece": ece(probs, y_dev)}
    grid = {f"{t[3].name} C={-t[2] if dev else t[2]}": round(t[0], 4) for t in trials}
    train_acc = heads["full"]["train_accuracy"]

    from safetensors.numpy import save_file

    save_file({f"{n}.{part}": h[key] for n, h in heads.items() for part, key in (("weight", "w"), ("bias", "b"))},
              str(out_dir / WEIGHT_FILE))
    config = {"classes": names, "threshold": threshold, "escalate_below": escalate, "general": general,
              "embedder": "minilm-embed", "max_tokens": MAX_TOKENS,
              "heads": {n: {"embedding": h["f"].embedding, "text": h["f"].text, "ngrams": h["f"].ngrams,
                            "C": h["C"], "temperature": h["temperature"]} for n, h in heads.items()}}
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
                 "dev_requests_split_otherwise": dev_split_misses, "embed_seconds": round(embed_s, 1),
                 "distil_seconds": round(distil_s, 1), "dev_grid": grid},
        params={"classes": len(names), "train_rows": len(train), "manifest_rows": len(own),
                "heads": {n: f"{h['f'].name} C={h['C']} T={h['temperature']:.3f}" for n, h in heads.items()},
                "escalate_below": escalate, "threshold": threshold,
                "selection": "dev part accuracy over embedding x text x n-grams x C, then threshold; "
                             "test.jsonl unread",
                "head": "sklearn LogisticRegression (multinomial, lbfgs, balanced class weights)",
                "embedding": f"all-MiniLM-L6-v2, mean pooled, L2-normalised, {MAX_TOKENS} tokens; static: its "
                             f"vocabulary distilled (Model2Vec-style, SIF a={SIF_A})"},
        libraries=["transformers", "scikit-learn", "tokenizers"],
    )
    return {"dev_part_accuracy": dev_metrics.get("dev_part_accuracy", float("nan")), "train_accuracy": train_acc}
