"""smollm2-chat (task generation) through a real gateway and node, and its streaming in process.

Answers are checked on a question the model gets right greedily; stop strings and max_tokens
are checked against that same greedy answer, so the tests hold whatever the exact wording.
Generation runs at ~10 tokens/s on 2 cores, so every call asks for a handful of tokens.
Bad inputs must be 422s naming the field, including the one only the node can judge (a
conversation that does not end with the user).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from conftest import TEST_LIMITS, serving
from hivectl import HiveProcess, MANIFESTS, ok
from test_bad_input import assert_error

from colabhive.runners.generation import GenerationRunner, TextStream

FN = "smollm2-chat"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"messages": QUESTION, "max_tokens": 12}


@pytest.fixture(scope="module")
def gen_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """Gateway + one node hosting only smollm2-chat, ready."""
    with serving(tmp_path_factory, "gen", [FN]) as h:
        yield h



@pytest.fixture(scope="module")
def greedy(gen_hive: HiveProcess) -> dict[str, Any]:
    """The greedy answer to QUESTION: the reference the other tests cut and compare."""
    return ok(gen_hive.call(FN, **GREEDY))


# ---- through the hive -----------------------------------------------------------------------
def test_greedy_answers_the_question(greedy: dict[str, Any]) -> None:
    assert set(greedy) == {"text", "finish_reason", "usage"}
    assert "paris" in greedy["text"].lower(), greedy
    assert greedy["finish_reason"] in ("stop", "length")
    usage = greedy["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens"}
    assert usage["prompt_tokens"] > 10  # the chat template's default system prompt counts too
    assert 1 <= usage["completion_tokens"] <= GREEDY["max_tokens"]


def test_greedy_is_deterministic(gen_hive: HiveProcess, greedy: dict[str, Any]) -> None:
    assert ok(gen_hive.call(FN, **GREEDY)) == greedy


def test_max_tokens_ends_with_length(gen_hive: HiveProcess, greedy: dict[str, Any]) -> None:
    out = ok(gen_hive.call(FN, messages=QUESTION, max_tokens=3))
    assert out["finish_reason"] == "length", out
    assert out["usage"]["completion_tokens"] == 3
    assert out["text"] and greedy["text"].startswith(out["text"]), (out, greedy)


def test_stop_string_cuts_the_text(gen_hive: HiveProcess, greedy: dict[str, Any]) -> None:
    stop = " is"
    assert stop in greedy["text"], greedy
    out = ok(gen_hive.call(FN, **GREEDY, stop=["zzz", stop]))
    assert out["text"] == greedy["text"][: greedy["text"].index(stop)], (out, greedy)
    assert out["finish_reason"] == "stop"
    assert out["usage"]["prompt_tokens"] == greedy["usage"]["prompt_tokens"]
    assert out["usage"]["completion_tokens"] < greedy["usage"]["completion_tokens"]


def test_seeded_sampling_reproduces(gen_hive: HiveProcess) -> None:
    body = {"messages": QUESTION, "max_tokens": 8, "temperature": 0.8, "top_p": 0.95, "seed": 1234}
    first = ok(gen_hive.call(FN, **body))
    assert ok(gen_hive.call(FN, **body)) == first
    assert first["text"] and first["usage"]["completion_tokens"] <= 8


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10000}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": ["x" * 33]}, "stop[0]"),
        ({"n": 2}, "n"),
        ({"messages": [*QUESTION, {"role": "assistant", "content": "Paris."}]}, "messages"),
    ],
    ids=[
        "temperature-3", "top_p-0", "max_tokens-0", "max_tokens-10000", "no-messages", "unknown-role",
        "empty-content", "5-stops", "long-stop", "unknown-field", "ends-with-assistant",
    ],
)
def test_bad_input_is_422_naming_the_field(gen_hive: HiveProcess, change: dict[str, Any], field: str) -> None:
    assert_error(gen_hive.post(f"/v1/fn/{FN}", {**GREEDY, **change}), 422, "invalid_input", field)


def test_conversation_past_the_context_is_422(gen_hive: HiveProcess) -> None:
    """Each message is within the text limit; together they are ~30k tokens, past the 8k context."""
    long = [{"role": "user", "content": "a " * (TEST_LIMITS["max_text_chars"] // 2)}] * 60
    err = assert_error(gen_hive.post(f"/v1/fn/{FN}", {"messages": long}), 422, "invalid_input", "messages")
    assert "context" in err["message"], err


# ---- streaming, in process ------------------------------------------------------------------
@pytest.fixture(scope="module")
def runner() -> Iterator[GenerationRunner]:
    """The runner loaded here on the CPU, one thread (the node beside it has the other core)."""
    import torch
    from colabhive_cpu import cpu_device

    from colabhive.manifests import read_manifest

    manifest, problems = read_manifest(MANIFESTS / f"{FN}.toml")
    assert manifest is not None and not problems, problems
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    r = GenerationRunner(manifest, cpu_device(), "fp32")
    r.load()
    try:
        yield r
    finally:
        torch.set_num_threads(threads)


def _input(**body: Any) -> Any:
    return msgspec.convert(body, GenerationRunner.input_type(TEST_LIMITS["max_text_chars"]))


@pytest.mark.parametrize("stop", [[], [" Paris"]], ids=["greedy", "stop-string"])
def test_stream_pieces_join_to_the_run_text(runner: GenerationRunner, stop: list[str]) -> None:
    inp = _input(**GREEDY, stop=stop)
    pieces: list[str] = []
    streamed = runner.stream(inp, pieces.append)
    assert streamed == runner.run([inp])[0]
    assert "".join(pieces) == streamed.text
    assert len(pieces) > 2 and all(pieces), pieces  # token by token, not all at the end
    if stop:
        assert streamed.finish_reason == "stop" and "Paris" not in streamed.text, streamed


def test_text_stream_holds_back_partial_characters_and_stop_prefixes() -> None:
    """Byte-level tokens: a character split over tokens, and a stop string's head, wait."""
    data = "né ok EN fin END after".encode()

    def decode(ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    pieces: list[str] = []
    text = TextStream(decode, ["END"], pieces.append)
    stopped = [text.add(b) for b in data]
    assert stopped.index(True) == data.index(b"END") + 2
    assert text.finish() == "".join(pieces) == "né ok EN fin "
    assert not any("\ufffd" in p for p in pieces), pieces
    assert all(not p.endswith(("E", "EN")) for p in pieces[:-1]), pieces


def test_text_stream_flushes_what_it_held_at_the_end() -> None:
    pieces: list[str] = []
    text = TextStream(lambda ids: bytes(ids).decode("utf-8", errors="replace"), ["STOP"], pieces.append)
    assert not any(text.add(b) for b in b"all ST")
    assert "".join(pieces) == "all "
    assert text.finish() == "all ST" == "".join(pieces)


def test_manifest_eval_lines_are_valid_inputs() -> None:
    """Every eval line is an input the gateway would accept, so a failed call means a bad model."""
    path = MANIFESTS.parent / "evals" / f"{FN}.jsonl"
    input_type = GenerationRunner.input_type(20_000)
    lines = [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
    assert 10 <= len(lines) <= 20
    for line in lines:
        assert set(line) == {"input", "expected"} and line["expected"], line
        inp = msgspec.convert(line["input"], input_type)
        assert inp.messages[-1].role == "user" and inp.max_tokens <= 16, line
