"""langid (task language) and minilm-rerank (task rerank) through a real gateway and node.

Language answers are checked against sentences whose language is not in doubt; rerank
against a query with exactly one relevant passage, placed at neither end of the list, so
neither an unsorted nor an index-shuffled answer can pass. Bad inputs must be 422s that
name the offending field, from the schema the gateway builds from the runner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import TEST_LIMITS, serving
from hivectl import HiveProcess, ok
from test_bad_input import assert_error

SENTENCES = {
    "en": "The weather is lovely today, so we are going for a long walk in the park with our friends.",
    "pt": "O tempo está ótimo hoje, por isso vamos dar um longo passeio no parque com os nossos amigos.",
    "de": "Das Wetter ist heute herrlich, deshalb machen wir mit unseren Freunden einen langen Spaziergang im Park.",
}
QUERY = "How do I bake bread?"
PASSAGES = [
    "The football team won the championship after scoring twice in the second half.",
    "To bake bread, mix flour, water, salt and yeast, knead the dough, let it rise, then bake it in a hot oven.",
    "The stock market fell sharply on Tuesday as investors worried about interest rates.",
]


@pytest.fixture(scope="module")
def extra_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """Gateway + one node hosting only langid and minilm-rerank, both ready."""
    with serving(tmp_path_factory, "extra", ["langid", "minilm-rerank"]) as h:
        yield h



# ---- language -------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_language_identifies_sentence(extra_hive: HiveProcess, lang: str) -> None:
    out = ok(extra_hive.call("langid", text=SENTENCES[lang]))
    assert set(out) == {"language", "score", "top"}
    assert out["language"] == lang, out
    assert 0.5 < out["score"] <= 1.0, out
    top = out["top"]
    assert len(top) == 3 and all(set(t) == {"language", "score"} for t in top), top
    assert top[0] == {"language": out["language"], "score": out["score"]}
    scores = [t["score"] for t in top]
    assert all(0.0 <= s <= 1.0 for s in scores), scores
    assert scores == sorted(scores, reverse=True), scores
    assert len({t["language"] for t in top}) == 3, top


def test_language_rejects_bad_input(extra_hive: HiveProcess) -> None:
    assert_error(extra_hive.post("/v1/fn/langid", b'{"text": ""}'), 422, "invalid_input", "text")
    assert_error(extra_hive.post("/v1/fn/langid", b'{"text": "hi", "x": 1}'), 422, "invalid_input", "x")


# ---- rerank ---------------------------------------------------------------------------------
def test_rerank_puts_the_relevant_passage_first(extra_hive: HiveProcess) -> None:
    out = ok(extra_hive.call("minilm-rerank", query=QUERY, passages=PASSAGES))
    assert set(out) == {"results"}
    results = out["results"]
    assert all(set(r) == {"index", "score"} for r in results), results
    assert sorted(r["index"] for r in results) == list(range(len(PASSAGES)))
    scores = [r["score"] for r in results]
    assert all(-1.0 <= s <= 1.0 for s in scores), scores
    assert scores == sorted(scores, reverse=True), scores
    assert results[0]["index"] == 1, results
    assert scores[0] - scores[1] > 0.2, results  # clearly first, not by a hair


def test_rerank_identical_passage_scores_one(extra_hive: HiveProcess) -> None:
    """A passage equal to the query has cosine 1: scores are true cosines, not mere ranks."""
    out = ok(extra_hive.call("minilm-rerank", query=QUERY, passages=[PASSAGES[0], QUERY]))
    assert out["results"][0]["index"] == 1
    assert out["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_rerank_concurrent_calls_keep_their_own_answers(extra_hive: HiveProcess) -> None:
    """Calls batched together (different passage counts) each get their own ranking."""
    bodies = [{"query": QUERY, "passages": PASSAGES[: 1 + k % 3] + [PASSAGES[1]] * (k % 2)} for k in range(16)]

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=extra_hive.url, timeout=120) as c:
            return await asyncio.gather(*(c.post("/v1/fn/minilm-rerank", json=b) for b in bodies))

    responses = asyncio.run(go())
    for body, r in zip(bodies, responses, strict=True):
        results = ok(r)["results"]
        n = len(body["passages"])
        assert sorted(x["index"] for x in results) == list(range(n)), (body, results)
        best = body["passages"][results[0]["index"]]
        assert best == (PASSAGES[1] if PASSAGES[1] in body["passages"] else PASSAGES[0]), (body, results)
    assert max(int(r.headers["x-hive-batch"]) for r in responses) > 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": QUERY, "passages": []}, "passages"),
        ({"query": QUERY, "passages": ["ok", 5]}, "passages[1]"),
        ({"query": QUERY, "passages": ["ok", ""]}, "passages[1]"),
        ({"query": QUERY, "passages": ["ok"], "top_k": 2}, "top_k"),
        ({"query": QUERY, "passages": ["p"] * 65}, "passages"),
        ({"query": "", "passages": ["ok"]}, "query"),
        ({"passages": ["ok"]}, "query"),
        ({"query": QUERY, "passages": ["a" * (TEST_LIMITS["max_text_chars"] + 1)]}, "passages[0]"),
    ],
    ids=[
        "empty", "non-string", "empty-passage", "unknown-field", "65-passages", "empty-query", "no-query", "too-long"
    ],
)
def test_rerank_rejects_bad_input(extra_hive: HiveProcess, body: dict[str, Any], field: str) -> None:
    assert_error(extra_hive.post("/v1/fn/minilm-rerank", body), 422, "invalid_input", field)


def test_rerank_64_passages_is_the_limit(extra_hive: HiveProcess) -> None:
    out = ok(extra_hive.call("minilm-rerank", query=QUERY, passages=[f"passage {i}" for i in range(64)]))
    assert sorted(r["index"] for r in out["results"]) == list(range(64))
