"""Generation's scoring mode (``score``): a reply's mean NLL under smollm2-chat, in process.

The reference is transformers by hand: the same ids, labels -100 over the prompt, and
``model(..., labels=...).loss``. One runner per module, fp32 on the CPU.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hivectl import MANIFESTS

from colabhive.errors import InvalidInput
from colabhive.runners.base import Finished
from colabhive.runners.generation import GenerationOutput, GenerationRunner, Usage

FN = "smollm2-chat"
LIMIT = 100_000
QUESTION = "What is the capital of France?"
REPLY = "The capital of France is Paris, a city famous for the Eiffel Tower."


@pytest.fixture(scope="module")
def runner() -> Iterator[GenerationRunner]:
    from colabhive_cpu import cpu_device

    from colabhive.manifests import read_manifest

    manifest, problems = read_manifest(MANIFESTS / f"{FN}.toml")
    assert manifest is not None and not problems, problems
    r = GenerationRunner(manifest, cpu_device(), "fp32")
    r.load()
    yield r


def _input(reply: str | None = REPLY, question: str = QUESTION, **body: Any) -> Any:
    return msgspec.convert({"messages": [{"role": "user", "content": question}], "score": reply, **body},
                           GenerationRunner.input_type(LIMIT))


def _by_hand(runner: GenerationRunner, question: str, reply: str) -> float:
    import torch

    tok = runner.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                     add_generation_prompt=True)
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    a = tok(reply + tok.eos_token, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + a])
    labels = torch.tensor([[-100] * len(p) + a])
    with torch.inference_mode():
        return float(runner.model(input_ids=ids, labels=labels).loss)


def test_loss_equals_transformers_by_hand(runner: GenerationRunner) -> None:
    inp = _input()
    runner.check(inp)
    [out] = runner.run([inp])
    assert isinstance(out, GenerationOutput)
    assert out.text == REPLY and out.finish_reason == "stop"
    assert out.loss == pytest.approx(_by_hand(runner, QUESTION, REPLY), abs=1e-4)
    reply_ids = runner._reply_ids(REPLY)
    assert out.usage == Usage(prompt_tokens=len(runner._prompt_ids(inp)), completion_tokens=len(reply_ids))
    assert reply_ids[-1] == runner.tokenizer.eos_token_id


def test_sampling_settings_are_ignored(runner: GenerationRunner) -> None:
    [plain] = runner.run([_input()])
    [hot] = runner.run([_input(temperature=1.5, seed=7, top_p=0.5, max_tokens=1)])
    assert hot == plain


def test_fluent_reply_scores_lower_than_shuffled(runner: GenerationRunner) -> None:
    words = REPLY.split()
    shuffled = words[:]
    random.Random(0).shuffle(shuffled)
    assert shuffled != words
    fluent, mixed = runner.run([_input(REPLY), _input(" ".join(shuffled))])
    assert fluent.loss < mixed.loss, (fluent.loss, mixed.loss)


def test_batch_equals_one_at_a_time(runner: GenerationRunner) -> None:
    cases = [(QUESTION, REPLY), ("Say hi.", "Hi!"), ("Name a colour.", "Blue."),
             ("What is 2 + 2? Answer in a full sentence, please.", "2 + 2 is 4."), (QUESTION, "")]
    together = runner.run([_input(r, q) for q, r in cases])
    alone = [runner.run([_input(r, q)])[0] for q, r in cases]
    for t, a, (q, r) in zip(together, alone, cases, strict=True):
        assert t.text == a.text and t.usage == a.usage
        assert t.loss == pytest.approx(a.loss, abs=1e-4)
        assert t.loss == pytest.approx(_by_hand(runner, q, r), abs=1e-4)


def test_scores_and_generations_mix_in_one_run(runner: GenerationRunner) -> None:
    gen = msgspec.convert({"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 4},
                          GenerationRunner.input_type(LIMIT))
    scored, generated = runner.run([_input(), gen])
    assert scored.loss is not None and generated.loss is None
    assert generated == runner.run([gen])[0]
    # a generation's output is encoded as before: no "loss" key
    assert set(msgspec.json.decode(msgspec.json.encode(generated))) == {"text", "finish_reason", "usage"}
    assert "loss" in msgspec.json.decode(msgspec.json.encode(scored))


def test_stream_and_score_is_invalid(runner: GenerationRunner) -> None:
    with pytest.raises(InvalidInput) as e:
        runner.check(_input(stream=True))
    assert e.value.field == "stream"


def test_reply_past_the_context_is_invalid(runner: GenerationRunner) -> None:
    with pytest.raises(InvalidInput) as e:
        runner.check(_input("word " * (runner.context + 10)))
    assert e.value.field == "score"
    assert "context" in e.value.message


def test_submit_returns_what_run_does(runner: GenerationRunner) -> None:
    inp = _input()
    ended: list[Finished] = []
    pieces: list[str] = []
    handle = runner.submit(inp, pieces.append, ended.append)
    assert len(ended) == 1 and ended[0].error is None  # done has run before submit returns
    assert handle.finished is ended[0]
    out = handle.wait()
    handle.cancel()  # harmless: it is over
    assert out == runner.run([inp])[0] == ended[0].output
    assert ended[0].tokens == out.usage.completion_tokens
    assert pieces == []


def test_wrapped_model_scores_with_the_base(runner: GenerationRunner) -> None:
    """A PeftModel (as a multi-LoRA runner holds) scores with ``__base__``: the plain model's loss."""
    from colabhive.runners.adapters import wrap_base
    from colabhive.runners.generation_score import ScoreRow, score_rows

    import copy

    wrapped = wrap_base(copy.deepcopy(runner.model))
    rows = [ScoreRow(runner._prompt_ids(_input()), runner._reply_ids(REPLY))]
    [loss], _ = score_rows(wrapped, runner.torch_device, rows, runner.engine.model_lock, wrapped=True,
                           pad_id=runner.pad_id)
    assert loss == pytest.approx(_by_hand(runner, QUESTION, REPLY), abs=1e-4)
