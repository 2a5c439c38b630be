"""Balanced spherical k-means and the silhouette it is judged by, for :mod:`.partition`.

c-BTM clusters with every cluster capped at ceil(n/k) rows so no expert starves; plain k-means
(scikit-learn's) has no such cap, hence this small implementation. It works on dense unit rows
(MiniLM) and on sparse tf-idf rows alike: a dot product is a cosine on both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Floats", "Ints", "balanced_kmeans", "dense", "silhouette"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_MAX_ITER = 50
_N_INIT = 3
_TOL = 1e-4  # relative fall in total cosine distance below which an iteration counts as converged


def silhouette(dist: Floats, labels: Ints) -> float:
    """Mean silhouette from a precomputed distance matrix: sklearn's ``silhouette_score`` with
    ``metric="precomputed"`` (a single-row cluster scores 0), done as one matrix product per k."""
    _, labels = np.unique(labels, return_inverse=True)
    k = int(labels.max()) + 1
    if k < 2:
        return -1.0
    m = labels.size
    onehot = np.zeros((m, k))
    onehot[np.arange(m), labels] = 1.0
    sums = dist @ onehot
    counts = onehot.sum(axis=0)
    own = counts[labels]
    a = sums[np.arange(m), labels] / np.maximum(own - 1, 1)
    other = sums / counts
    other[np.arange(m), labels] = np.inf
    b = other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(s.mean())


def balanced_kmeans(x: Any, k: int, seed: int) -> Ints:
    """Spherical k-means with every cluster capped at ceil(n/k) rows; the best of a few inits."""
    n = x.shape[0]
    cap = math.ceil(n / k)
    rng = np.random.default_rng([seed, k])
    best: tuple[float, Ints] | None = None
    for _ in range(_N_INIT):
        centers = _kmeans_pp(x, k, rng)
        run: tuple[float, Ints] | None = None
        for _ in range(_MAX_ITER):
            dist = 1.0 - dense(x @ centers.T)
            labels = _capacity_assign(dist, cap)
            cost = float(dist[np.arange(n), labels].sum())
            # capacity makes the cost not quite monotone: stop once it stops falling, keep the best seen
            if run is not None and cost >= run[0] * (1 - _TOL):
                break
            run = (cost, labels)
            centers = _centers(x, labels, k, centers)
        assert run is not None
        if best is None or run[0] < best[0] - 1e-9 * n:
            best = run
    assert best is not None
    return best[1]


def _kmeans_pp(x: Any, k: int, rng: np.random.Generator) -> Floats:
    n = x.shape[0]
    chosen = [int(rng.integers(n))]
    nearest = np.maximum(1.0 - dense(x @ _row(x, chosen[0]).T).ravel(), 0.0)
    for _ in range(1, k):
        total = float((nearest**2).sum())
        if total <= 0:  # every row sits on a chosen centre: any other row will do
            pick = int(rng.choice(np.setdiff1d(np.arange(n), chosen)))
        else:
            pick = int(rng.choice(n, p=nearest**2 / total))
        chosen.append(pick)
        nearest = np.minimum(nearest, np.maximum(1.0 - dense(x @ _row(x, pick).T).ravel(), 0.0))
    return np.vstack([_row(x, i) for i in chosen])


def _row(x: Any, i: int) -> Floats:
    r = x[i]
    return np.asarray(r.toarray() if hasattr(r, "toarray") else r, dtype=np.float64).reshape(1, -1)


def dense(a: Any) -> Floats:
    """A sparse or dense product as a dense float64 array."""
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float64)


def _centers(x: Any, labels: Ints, k: int, old: Floats) -> Floats:
    from scipy import sparse

    n = labels.size
    member = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
    sums = dense(member @ x)
    norms = np.linalg.norm(sums, axis=1)
    keep = norms > 0  # an empty cluster keeps its old centre
    out = old.copy()
    out[keep] = sums[keep] / norms[keep, None]
    return out


def _capacity_assign(dist: Floats, cap: int) -> Ints:
    """Each row to its nearest cluster that still has room; a full cluster keeps its nearest claimants.

    Every round assigns all remaining rows or fills at least one cluster, so it ends within k rounds.
    """
    n, k = dist.shape
    labels = np.full(n, -1, dtype=np.int64)
    room = np.full(k, cap, dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        d = dist[todo].copy()
        d[:, room == 0] = np.inf
        best = np.argmin(d, axis=1)
        for c in np.unique(best):
            rows = todo[best == c]
            if rows.size > room[c]:
                rows = rows[np.argsort(dist[rows, c], kind="stable")[: room[c]]]
            labels[rows] = c
            room[c] -= rows.size
        todo = np.flatnonzero(labels == -1)
    return labels
