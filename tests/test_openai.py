"""The official ``openai`` Python package against the hive's OpenAI-compatible routes.

Nothing here is hand-built HTTP: the client is pointed at the gateway with ``base_url``
and used exactly as against OpenAI, so a client-side parse failure fails the test too.
Embeddings are compared with the hive's own /v1/fn answer; chat with the generation
function's own answer, streamed and not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import openai
import pytest
from conftest import serving
from hivectl import HiveProcess

TEXTS = ["The cat sat on the mat.", "A feline rested on the rug.", "Quarterly revenue rose by four percent."]
CHAT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def oa_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    with serving(tmp_path_factory, "openai", ["minilm-embed", "smollm2-chat", "langid"]) as h:
        yield h


@pytest.fixture(scope="module")
def client(oa_hive: HiveProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{oa_hive.url}/v1", api_key="unused-on-an-open-hive", max_retries=0, timeout=120)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_models_lists_functions_and_versions(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"minilm-embed", "minilm-embed@1.0.0", "smollm2-chat"} <= ids


def test_embeddings_match_the_native_route(client: openai.OpenAI, oa_hive: HiveProcess) -> None:
    res = client.embeddings.create(model="minilm-embed", input=TEXTS)
    assert [d.index for d in res.data] == [0, 1, 2]
    assert res.model == "minilm-embed@1.0.0"
    for text, d in zip(TEXTS, res.data):
        native = oa_hive.call("minilm-embed", text=text).json()["embedding"]
        assert len(d.embedding) == 384 and _cos(d.embedding, native) > 0.9999
    # paraphrases closer than the unrelated sentence
    v = [d.embedding for d in res.data]
    assert _cos(v[0], v[1]) > _cos(v[0], v[2]) + 0.2
    assert res.usage.prompt_tokens > len(TEXTS)  # counted by the model's tokenizer on the node


def test_embeddings_base64_decodes_to_the_same_vector(client: openai.OpenAI) -> None:
    plain = client.embeddings.create(model="minilm-embed", input=TEXTS[0]).data[0].embedding
    # the client asks for base64 by default when numpy is present and decodes it itself
    b64 = client.embeddings.create(model="minilm-embed", input=TEXTS[0], encoding_format="base64").data[0].embedding
    if isinstance(b64, str):
        import base64
        import struct

        raw = base64.b64decode(b64)
        b64 = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert max(abs(a - b) for a, b in zip(plain, b64)) < 1e-6


def test_openai_errors_are_raised_as_openai_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.embeddings.create(model="no-such-model", input="x")
    assert nf.value.body["code"] == "unknown_function" and nf.value.body["param"] == "model"
    with pytest.raises(openai.UnprocessableEntityError) as wrong:
        client.embeddings.create(model="langid", input="x")
    assert "not embedding" in wrong.value.body["message"]
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="smollm2-chat", messages=CHAT, temperature=7)
    with pytest.raises(openai.UnprocessableEntityError):
        client.embeddings.create(model="minilm-embed", input=TEXTS[0], dimensions=12)


def test_chat_completion_answers_and_streams_the_same_text(client: openai.OpenAI, oa_hive: HiveProcess) -> None:
    done = client.chat.completions.create(model="smollm2-chat", messages=CHAT, max_tokens=24, temperature=0)
    text = done.choices[0].message.content
    assert "paris" in text.lower(), text
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage.completion_tokens > 0 and done.usage.prompt_tokens > 0
    native = oa_hive.call("smollm2-chat", messages=CHAT, max_tokens=24, temperature=0).json()
    assert native["text"] == text

    pieces, finish, usage = [], None, None
    stream = client.chat.completions.create(
        model="smollm2-chat", messages=CHAT, max_tokens=24, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            finish = c.finish_reason or finish
    assert len(pieces) > 3, pieces  # really streamed, not one blob
    assert "".join(pieces) == text
    assert finish == done.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == done.usage.completion_tokens
