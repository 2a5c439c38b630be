"""Partitioning an experts job's dataset (colabhive.training.partition): unit tests on synthetic
prompts and embeddings, no models and no processes."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from colabhive.training.clustering import silhouette as _silhouette
from colabhive.training.partition import PartitionSpec, Partitioning, partition

VOCAB = {
    "cooking": ["recipe", "oven", "garlic", "simmer", "flour", "butter", "onion", "bake"],
    "astronomy": ["galaxy", "telescope", "planet", "orbit", "nebula", "comet", "stars", "lunar"],
    "finance": ["mortgage", "dividend", "stock", "interest", "bond", "portfolio", "loan", "equity"],
}
TOPICS = list(VOCAB)


def blobs(
    sizes: list[int], d: int = 32, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in len(sizes) gaussian blobs around random centres; returns (embeddings, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[labels] + rng.normal(size=(labels.size, d)) * spread / math.sqrt(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def sentences(labels: np.ndarray, seed: int = 0) -> list[str]:
    """A short English sentence per row, from its topic's vocabulary."""
    rng = np.random.default_rng(seed)
    out = []
    for lab in labels:
        words = VOCAB[TOPICS[lab]]
        a, b = rng.choice(len(words), 2, replace=False)
        out.append(f"I asked about the {words[a]} and the {words[b]} yesterday.")
    return out


def data(sizes: tuple[int, ...] = (40, 40, 40), seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    emb, labels = blobs(list(sizes), seed=seed)
    return sentences(labels, seed), emb, labels


def unit_mean(x: np.ndarray) -> np.ndarray:
    m = x.astype(np.float64).mean(axis=0)
    return m / np.linalg.norm(m)


def check_invariants(result: Partitioning, n: int) -> None:
    assert len(result.assignments) == n
    assert sorted(set(result.assignments)) == list(range(len(result.parts)))
    assert [p.index for p in result.parts] == list(range(len(result.parts)))
    assert sum(p.size for p in result.parts) == n
    for p in result.parts:
        assert p.size == result.assignments.count(p.index)
        assert abs(np.linalg.norm(p.centroid) - 1) < 1e-5
        assert 1 <= len(p.examples) <= 3 and all(result.assignments[r] == p.index for r in p.examples)
        assert len(p.terms) <= 8
    msgspec.json.decode(msgspec.json.encode(result), type=Partitioning)  # it travels as JSON


# ------------------------------------------------------------------------------------------ column


def test_column_gives_one_part_per_value_in_sorted_order() -> None:
    texts, emb, labels = data([30, 20, 10])
    values = [TOPICS[i] for i in labels]
    result = partition(PartitionSpec(strategy="column", column="topic"), texts, emb, column_values=values)
    check_invariants(result, len(texts))
    assert [p.taxon for p in result.parts] == sorted(TOPICS)
    assert {p.taxon: p.size for p in result.parts} == {"cooking": 30, "astronomy": 20, "finance": 10}
    assert result.k_chosen == 3 and result.merged == []
    for p in result.parts:
        rows = [i for i, v in enumerate(values) if v == p.taxon]
        assert np.allclose(p.centroid, unit_mean(emb[rows]), atol=1e-6)
        assert all(values[r] == p.taxon for r in p.examples)
        # the nearest rows come first
        sims = [float(emb[r] @ np.array(p.centroid)) for r in p.examples]
        assert sims == sorted(sims, reverse=True)


def test_distinctive_terms_come_from_the_parts_own_vocabulary() -> None:
    texts, emb, labels = data()
    values = [TOPICS[i] for i in labels]
    result = partition(PartitionSpec(strategy="column", column="topic"), texts, emb, column_values=values)
    for p in result.parts:
        assert p.terms, p
        assert set(p.terms) & set(VOCAB[p.taxon])
        assert all(any(w in term for w in VOCAB[p.taxon]) for term in p.terms), p.terms
        assert "asked" not in p.terms and "the" not in p.terms  # shared words and stop words are not distinctive


# ----------------------------------------------------------------------------------------- cluster


def test_balanced_kmeans_recovers_three_blobs() -> None:
    texts, emb, labels = data([50, 50, 50])
    result = partition(PartitionSpec(strategy="cluster", k=3), texts, emb)
    check_invariants(result, len(texts))
    assert adjusted_rand_score(labels, result.assignments) >= 0.9
    assert [p.taxon for p in result.parts] == ["cluster-0", "cluster-1", "cluster-2"]
    assert result.assignments[0] == 0  # numbered by first row
    assert result.k_chosen == 3 and result.silhouette == {}


def test_clusters_are_capped_at_ceil_n_over_k_even_when_the_blobs_are_not() -> None:
    texts, emb, labels = data([60, 30, 10])
    result = partition(PartitionSpec(strategy="cluster", k=3, min_size=1), texts, emb)
    check_invariants(result, 100)
    assert len(result.parts) == 3
    assert all(p.size <= math.ceil(100 / 3) for p in result.parts), [p.size for p in result.parts]
    assert min(p.size for p in result.parts) >= 100 - 2 * math.ceil(100 / 3)  # no starved expert
    # the big blob fills a cluster of its own: balancing spills its surplus, it does not scatter it
    assert max(result.assignments[:60].count(c) for c in range(3)) == math.ceil(100 / 3)


def test_silhouette_picks_three_on_three_blobs() -> None:
    texts, emb, labels = data([45, 45, 45])
    result = partition(PartitionSpec(strategy="cluster", k_min=2, k_max=6), texts, emb)
    assert result.k_chosen == 3
    assert set(result.silhouette) == {"2", "3", "4", "5", "6"}
    assert max(result.silhouette, key=result.silhouette.__getitem__) == "3"
    assert "k=3" in result.note and "silhouette" in result.note
    assert adjusted_rand_score(labels, result.assignments) >= 0.9


def test_silhouette_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, 4, 200)
    dist = np.clip(1 - x @ x.T, 0, 2)
    np.fill_diagonal(dist, 0)
    assert _silhouette(dist, labels) == pytest.approx(silhouette_score(x, labels, metric="cosine"), abs=1e-9)


def test_tfidf_features_cluster_the_three_vocabularies() -> None:
    _, labels = blobs([40, 40, 40])
    texts = sentences(labels)
    noise = np.random.default_rng(9).normal(size=(120, 32)).astype(np.float32)  # embeddings carry no topic
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    result = partition(PartitionSpec(strategy="cluster", k=3, features="tfidf"), texts, noise)
    check_invariants(result, 120)
    assert adjusted_rand_score(labels, result.assignments) >= 0.9
    for p in result.parts:
        topic = TOPICS[labels[p.examples[0]]]
        assert set(p.terms) & set(VOCAB[topic])


def test_same_seed_same_partitioning_other_seed_still_valid() -> None:
    texts, emb, _ = data([40, 35, 25])
    spec = PartitionSpec(strategy="cluster", seed=7)
    a, b = partition(spec, texts, emb), partition(spec, texts, emb)
    assert msgspec.json.encode(a) == msgspec.json.encode(b)
    check_invariants(partition(PartitionSpec(strategy="cluster", seed=8), texts, emb), 100)


# -------------------------------------------------------------------------------------- difficulty


def test_difficulty_quantiles_are_ordered_by_loss_and_equal_sized() -> None:
    texts, emb, _ = data([40, 40, 40])
    losses = list(np.random.default_rng(1).gamma(2.0, 1.0, size=120))
    result = partition(PartitionSpec(strategy="difficulty"), texts, emb, losses=losses)
    check_invariants(result, 120)
    assert [p.taxon for p in result.parts] == ["difficulty-q0", "difficulty-q1", "difficulty-q2"]
    assert [p.size for p in result.parts] == [40, 40, 40]
    ranges = [p.loss for p in result.parts]
    assert all(r is not None and r[0] <= r[1] for r in ranges)
    assert ranges[0][1] <= ranges[1][0] and ranges[1][1] <= ranges[2][0]  # type: ignore[index]
    assert ranges[0][0] == min(losses) and ranges[2][1] == max(losses)  # type: ignore[index]
    for i, loss in enumerate(losses):
        lo, hi = ranges[result.assignments[i]]  # type: ignore[misc]
        assert lo <= loss <= hi


def test_difficulty_k_defaults_to_three_and_takes_k() -> None:
    assert PartitionSpec(strategy="difficulty").k == 3
    texts, emb, _ = data([30, 30, 30])
    losses = [float(i % 17) for i in range(90)]  # many ties: the split is by rank, so sizes stay equal
    result = partition(PartitionSpec(strategy="difficulty", k=4), texts, emb, losses=losses)
    assert sorted(p.size for p in result.parts) == [22, 22, 23, 23]


# ----------------------------------------------------------------------------------------- merging


def test_a_tiny_partition_is_merged_into_the_nearest() -> None:
    # four topics; the fourth's embeddings sit right next to the first's
    emb, labels = blobs([30, 30, 30], seed=2)
    rng = np.random.default_rng(5)
    near = emb[:5] + rng.normal(size=(5, emb.shape[1])).astype(np.float32) * 0.02
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    emb = np.vstack([emb, near])
    values = [["a", "b", "c"][i] for i in labels] + ["d"] * 5
    texts = [f"row {i}" for i in range(95)]
    result = partition(PartitionSpec(strategy="column", column="topic", min_size=8), texts, emb, column_values=values)
    check_invariants(result, 95)
    assert [p.taxon for p in result.parts] == ["a", "b", "c"]
    assert [(m.taxon, m.size, m.into) for m in result.merged] == [("d", 5, "a")]
    assert result.parts[0].size == 35 and all(result.assignments[i] == 0 for i in range(90, 95))
    assert "d (5 rows) merged into a: below partition.min_size 8" in result.note
    assert result.k_chosen == 4


def test_merging_repeats_smallest_first_and_renumbers() -> None:
    emb, labels = blobs([30, 30, 3, 2], seed=4)
    values = ["w", "x", "y", "z"]
    texts = [f"row {i}" for i in range(65)]
    spec = PartitionSpec(strategy="column", column="c", min_size=6)
    result = partition(spec, texts, emb, column_values=[values[i] for i in labels])
    check_invariants(result, 65)
    assert [m.taxon for m in result.merged] == ["z", "y"]
    assert [p.taxon for p in result.parts] == ["w", "x"]


# ------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"strategy": "column"}, "`partition.column`"),
        ({"strategy": "cluster", "column": "topic"}, "`partition.column`"),
        ({"strategy": "column", "column": "topic", "k": 3}, "`partition.k`"),
        ({"strategy": "cluster", "k_min": 6, "k_max": 3}, "`partition.k_min`"),
    ],
)
def test_bad_specs_name_the_field(fields: dict, named: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=named.replace(".", r"\.")):
        msgspec.convert(fields, PartitionSpec)


def test_spec_ranges_and_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError, match="k"):
        msgspec.convert({"strategy": "cluster", "k": 1}, PartitionSpec)
    with pytest.raises(msgspec.ValidationError, match="unknown field `kk`"):
        msgspec.convert({"strategy": "cluster", "kk": 3}, PartitionSpec)


def _raises(named: str, spec: PartitionSpec, texts: list[str], emb: np.ndarray, **kw: object) -> str:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")) as info:
        partition(spec, texts, emb, **kw)  # type: ignore[arg-type]
    return str(info.value)


def test_bad_data_raises_naming_the_field() -> None:
    texts, emb, labels = data([20, 20, 20])
    values = [TOPICS[i] for i in labels]
    column = PartitionSpec(strategy="column", column="topic")
    _raises("`partition.column`", column, texts, emb)
    missing = list(values)
    missing[17] = ""
    assert "row 17" in _raises("`partition.column`", column, texts, emb, column_values=missing)
    missing[17] = None  # type: ignore[call-overload]
    assert "row 17" in _raises("`partition.column`", column, texts, emb, column_values=missing)
    _raises("`column_values`", column, texts, emb, column_values=values[:-1])
    difficulty = PartitionSpec(strategy="difficulty")
    _raises("`partition.strategy`", difficulty, texts, emb)
    _raises("`losses`", difficulty, texts, emb, losses=[1.0] * 59)
    assert "row 3" in _raises("`losses`", difficulty, texts, emb, losses=[1.0] * 3 + [math.nan] + [1.0] * 56)
    _raises("`losses`", difficulty, texts, emb, losses=[1.0] * 59 + [math.inf])
    cluster = PartitionSpec(strategy="cluster", k=3)
    _raises("`embeddings`", cluster, texts, emb[:-1])
    _raises("`embeddings`", cluster, texts, emb[0])
    _raises("`partition.min_size`", PartitionSpec(strategy="cluster", k=3, min_size=31), texts, emb)
    _raises("`partition.k`", PartitionSpec(strategy="cluster", k=20, min_size=1), texts[:10], emb[:10])
    few = PartitionSpec(strategy="difficulty", k=20, min_size=1)
    _raises("`partition.k`", few, texts[:10], emb[:10], losses=[1.0] * 10)
    _raises(
        "`partition.features`",
        PartitionSpec(strategy="cluster", k=3, features="tfidf"),
        ["the and of"] * 60,
        emb,
    )
