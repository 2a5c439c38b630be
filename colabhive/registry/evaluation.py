"""Evaluations: run a version's declared dataset through it on the hive and score it.

The scoring is plain Python over the JSON outputs, so a reader can check every metric
against its definition here. Inputs go through the same validation and queues as any
call (``run_one`` is the gateway's own task path); an input that fails counts as wrong
and is reported, never skipped, so a broken version cannot pass by failing quietly.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ..errors import DatasetError
from ..manifests import Evaluation

__all__ = ["EvalLine", "EvalReport", "chrf", "field_value", "load_dataset", "run_evaluation", "score"]

MAX_LINES = 5000


class EvalLine(msgspec.Struct, forbid_unknown_fields=True):
    input: msgspec.Raw
    expected: Any
    baseline: Any = None


class EvalReport(msgspec.Struct, kw_only=True):
    ref: str
    metric: str
    score: float | None
    threshold: float
    lower_is_better: bool
    passed: bool
    dataset: str
    dataset_sha256: str
    n: int
    failed_calls: int
    failures: list[str]
    """The first few calls that failed, with the reason (never more than 5)."""
    duration_s: float
    at: float


def load_dataset(path: Path) -> tuple[list[EvalLine], str]:
    """The dataset's lines and its sha256; a bad line raises DatasetError naming it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read evaluation dataset {path}: {exc.strerror}") from None
    lines: list[EvalLine] = []
    for no, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(msgspec.json.decode(line, type=EvalLine))
        except msgspec.MsgspecError as exc:
            raise DatasetError(f"{path}:{no}: {exc}") from None
    if not lines:
        raise DatasetError(f"evaluation dataset {path} has no lines")
    if len(lines) > MAX_LINES:
        raise DatasetError(f"evaluation dataset {path} has {len(lines)} lines; at most {MAX_LINES}")
    return lines, hashlib.sha256(raw).hexdigest()


def field_value(output: Any, path: str) -> Any:
    """``predictions.0.label`` → output["predictions"][0]["label"]; None when absent."""
    cur = output
    for part in path.split("."):
        if isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur


# ---- metrics ------------------------------------------------------------------------------
def _accuracy(got: list[Any], lines: list[EvalLine]) -> float:
    return sum(g == ln.expected for g, ln in zip(got, lines)) / len(lines)


def _contains(got: list[Any], lines: list[EvalLine]) -> float:
    hits = sum(isinstance(g, str) and str(ln.expected).lower() in g.lower() for g, ln in zip(got, lines))
    return hits / len(lines)


def _abs_errors(pred: Any, truth: Any) -> list[float] | None:
    if isinstance(truth, (int, float)):
        truth, pred = [truth], [pred]
    if not isinstance(pred, list) or not isinstance(truth, list) or len(pred) != len(truth):
        return None
    if not all(isinstance(x, (int, float)) for x in pred):
        return None
    return [abs(float(p) - float(t)) for p, t in zip(pred, truth)]


def _mae_ratio(got: list[Any], lines: list[EvalLine]) -> float:
    """Sum of the model's absolute errors over the baseline's (seasonal naive): < 1 beats it.

    A failed or malformed answer is charged the baseline's error doubled, so failing is
    never cheaper than answering.
    """
    model = base = 0.0
    for g, ln in zip(got, lines):
        b = _abs_errors(ln.baseline, ln.expected)
        if b is None:
            raise DatasetError("mae_ratio needs a `baseline` list as long as `expected` on every line")
        m = _abs_errors(g, ln.expected)
        base += sum(b)
        model += sum(m) if m is not None else 2 * sum(b)
    return model / base if base else math.inf


def _r2(got: list[Any], lines: list[EvalLine]) -> float:
    truth = [float(ln.expected) for ln in lines]
    mean = sum(truth) / len(truth)
    ss_tot = sum((t - mean) ** 2 for t in truth)
    ss_res = 0.0
    for g, t in zip(got, truth):
        ss_res += (float(g) - t) ** 2 if isinstance(g, (int, float)) else (t - mean) ** 2 * 4
    return 1 - ss_res / ss_tot if ss_tot else 0.0


def _knn_accuracy(got: list[Any], lines: list[EvalLine]) -> float:
    """Leave-one-out nearest neighbour by cosine: does each vector's neighbour share its label?"""
    hits = 0
    for i, (v, ln) in enumerate(zip(got, lines)):
        if not isinstance(v, list):
            continue
        best, best_j = -math.inf, -1
        for j, w in enumerate(got):
            if j != i and isinstance(w, list) and len(w) == len(v):
                sim = sum(a * b for a, b in zip(v, w))
                if sim > best:
                    best, best_j = sim, j
        hits += best_j >= 0 and lines[best_j].expected == ln.expected
    return hits / len(lines)


def _char_ngrams(text: str, n: int) -> Counter[str]:
    s = "".join(text.split())  # chrF ignores whitespace
    return Counter(s[i : i + n] for i in range(len(s) - n + 1))


def chrf(hypotheses: Sequence[str], references: Sequence[str], max_n: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF (Popović 2015, sacrebleu's definition): character n-gram F-beta, 0..100."""
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        match = hyp_total = ref_total = 0
        for h, r in zip(hypotheses, references):
            hc, rc = _char_ngrams(h, n), _char_ngrams(r, n)
            match += sum((hc & rc).values())
            hyp_total += sum(hc.values())
            ref_total += sum(rc.values())
        if hyp_total and ref_total:
            precisions.append(match / hyp_total)
            recalls.append(match / ref_total)
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p + r == 0:
        return 0.0
    return 100 * (1 + beta**2) * p * r / (beta**2 * p + r)


def _chrf(got: list[Any], lines: list[EvalLine]) -> float:
    return chrf([g if isinstance(g, str) else "" for g in got], [str(ln.expected) for ln in lines])


def _top1(got: list[Any], lines: list[EvalLine]) -> float:
    return _accuracy(got, lines)


METRICS: dict[str, Callable[[list[Any], list[EvalLine]], float]] = {
    "accuracy": _accuracy,
    "contains": _contains,
    "chrf": _chrf,
    "mae_ratio": _mae_ratio,
    "r2": _r2,
    "knn_accuracy": _knn_accuracy,
    "top1": _top1,
}


def score(metric: str, outputs: list[Any], lines: list[EvalLine], field: str) -> float:
    """``outputs`` are decoded outputs (None for a failed call), one per line."""
    got = [field_value(o, field) if o is not None else None for o in outputs]
    return float(METRICS[metric](got, lines))


async def run_evaluation(
    ref: str,
    spec: Evaluation,
    path: Path,
    run_one: Callable[[bytes], Awaitable[bytes]],
    concurrency: int = 32,
) -> EvalReport:
    """Run every line through ``run_one`` (bounded concurrency, so batches form) and score."""
    t0 = time.perf_counter()
    lines, digest = load_dataset(path)
    sem = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(line: EvalLine) -> Any:
        async with sem:
            try:
                return msgspec.json.decode(await run_one(bytes(line.input)))
            except Exception as exc:  # counted against the version, and reported
                failures.append(f"{getattr(exc, 'code', type(exc).__name__)}: {getattr(exc, 'message', exc)}")
                return None

    outputs = await asyncio.gather(*(one(ln) for ln in lines))
    value = score(spec.metric, outputs, lines, spec.field)
    lower = spec.lower_is_better
    passed = value <= spec.threshold if lower else value >= spec.threshold
    return EvalReport(
        ref=ref, metric=spec.metric, score=round(value, 6), threshold=spec.threshold, lower_is_better=lower,
        passed=passed and math.isfinite(value), dataset=str(path), dataset_sha256=digest, n=len(lines),
        failed_calls=len(failures), failures=failures[:5], duration_s=round(time.perf_counter() - t0, 3),
        at=time.time(),
    )
