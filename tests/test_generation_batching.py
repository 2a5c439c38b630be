"""Continuous batching of smollm2-chat: requests decode together, yet each answer is its own.

The reference for every answer is the same request run alone (nothing else in the engine):
a greedy answer in a batch must equal it token for token, whoever joins or leaves around
it, and a seeded sampled one likewise. The engine's ``observer`` reports the rows of every
decode forward pass, so the tests can also see that requests really did share passes, that
a newcomer joined mid-way and that a cancelled row was gone from the very next pass.
The last two tests go through a real gateway and node. Generation runs at ~10 tokens/s per
row on one core here, so every request asks for a handful of tokens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from conftest import TEST_LIMITS, serving
from hivectl import HiveProcess, ok
from test_generation import runner  # noqa: F401  (its module-scoped smollm2 runner, one per module)

from colabhive.errors import StreamClosed
from colabhive.runners.base import Cancelled
from colabhive.runners.generation import GenerationOutput, GenerationRunner
from colabhive.runners.generation_rows import Row as _Row

FN = "smollm2-chat"
CAPITAL = "What is the capital of France?"
HAIKU = "Write a haiku about the sea."
RAINBOW = "Name three colours of the rainbow."
SUM = "What is 2+2?"
SPANISH = "Say hello in Spanish."


@pytest.fixture
def passes(runner: GenerationRunner) -> Iterator[list[int]]:
    """Rows of each decode forward pass the engine runs during the test."""
    seen: list[int] = []
    runner.engine.observer = seen.append
    try:
        yield seen
    finally:
        runner.engine.observer = None


_ALONE: dict[bytes, GenerationOutput] = {}


def alone(runner: GenerationRunner, inp: Any) -> GenerationOutput:
    """The request's answer with nothing else in the engine (computed once per input)."""
    key = msgspec.json.encode(inp)
    if key not in _ALONE:
        assert runner.engine.busy() == 0, "the reference must run alone"
        _ALONE[key] = runner.run([inp])[0]  # type: ignore[assignment]
    return _ALONE[key]


def _input(question: str, max_tokens: int = 10, **options: Any) -> Any:
    body = {"messages": [{"role": "user", "content": question}], "max_tokens": max_tokens, **options}
    return msgspec.convert(body, GenerationRunner.input_type(TEST_LIMITS["max_text_chars"]))


class Pieces:
    """An ``emit`` that records what it is given and can signal after the n-th piece."""

    def __init__(self, signal_after: int = 0) -> None:
        self.got: list[str] = []
        self.reached = threading.Event()
        self._after = signal_after

    def __call__(self, piece: str) -> None:
        self.got.append(piece)
        if self._after and len(self.got) >= self._after:
            self.reached.set()


# ---- the engine, in process -------------------------------------------------------------------
def test_greedy_answers_in_a_batch_equal_each_alone(runner: GenerationRunner, passes: list[int]) -> None:
    inputs = [_input(q) for q in (CAPITAL, HAIKU, RAINBOW, SUM, SPANISH)]
    refs = [alone(runner, i) for i in inputs]
    passes.clear()
    together = runner.run(inputs)
    assert max(passes) == len(inputs), passes  # all five shared forward passes
    assert together == refs
    assert {o.finish_reason for o in refs} == {"stop", "length"}, refs  # some ended early, some ran out


def test_a_request_joins_mid_batch_and_others_leave_early(runner: GenerationRunner, passes: list[int]) -> None:
    """A runs alone; B (max_tokens 3) and C (a stop string) join it after its 4th piece and
    leave long before it ends. None of the three answers changes."""
    a, b = _input(HAIKU, max_tokens=20), _input(RAINBOW, max_tokens=3)
    capital = alone(runner, _input(CAPITAL, max_tokens=12)).text
    assert " is" in capital, capital
    c = _input(CAPITAL, max_tokens=12, stop=[" is"])
    refs = [alone(runner, i) for i in (a, b, c)]
    assert refs[0].finish_reason == "length" and refs[0].usage.completion_tokens == 20, refs[0]
    assert refs[1].finish_reason == "length" and refs[2].finish_reason == "stop", refs
    assert refs[2].text == capital[: capital.index(" is")]

    passes.clear()
    a_pieces = Pieces(signal_after=4)
    ta = runner.submit(a, a_pieces)
    assert a_pieces.reached.wait(60), "A never produced 4 pieces"
    tb, tc = runner.submit(b, Pieces()), runner.submit(c, Pieces())
    assert [tb.wait(60), tc.wait(60)] == refs[1:]
    assert ta.finished is None, "A should still be running when B and C are done"
    assert ta.wait(60) == refs[0]
    assert passes[0] == 1 and max(passes) == 3 and passes[-1] == 1, passes  # alone, three, alone again
    assert "".join(a_pieces.got) == refs[0].text


def test_cancelled_row_leaves_at_once_and_the_others_continue(runner: GenerationRunner, passes: list[int]) -> None:
    # inputs the tests above already ran alone, so their references cost nothing here
    a, b, c = _input(HAIKU, max_tokens=20), _input(RAINBOW), _input(CAPITAL, max_tokens=12)
    refs = {"a": alone(runner, a), "c": alone(runner, c)}
    assert alone(runner, b).usage.completion_tokens == 10  # B would have gone on past its cancel
    passes.clear()
    b_pieces = Pieces(signal_after=3)
    ta, tb, tc = runner.submit(a, Pieces()), runner.submit(b, b_pieces), runner.submit(c, Pieces())
    assert b_pieces.reached.wait(60), "B never produced 3 pieces"
    tb.cancel()
    mark, held = len(passes), len(b_pieces.got)
    finished = tb.finished
    assert finished is not None and isinstance(finished.error, Cancelled)  # over when cancel returned
    assert finished.tokens < 10
    with pytest.raises(Cancelled):
        tb.wait(0)
    assert ta.wait(60) == refs["a"] and tc.wait(60) == refs["c"]
    assert len(b_pieces.got) == held, "B was emitted to after its cancel returned"
    # the pass running when cancel returned may still hold B; every later one has A and C only
    later = passes[mark + 1:]
    assert later and max(later) <= 2, (passes, mark)
    assert runner.engine.busy() == 0


def test_a_stream_whose_caller_left_ends_alone(runner: GenerationRunner, passes: list[int]) -> None:
    """The in-process form of a caller going away: its emit raises, that request ends with the
    exception, its batch-mate does not notice."""
    other = _input(SUM)
    ref = alone(runner, other)

    def leave_after_two(piece: str, seen: list[str] = []) -> None:  # noqa: B006 - one call's memory
        seen.append(piece)
        if len(seen) == 2:
            raise StreamClosed("gone")

    passes.clear()
    t_other = runner.submit(other, Pieces())
    with pytest.raises(StreamClosed):
        runner.stream(_input(HAIKU, max_tokens=20), leave_after_two)
    assert t_other.wait(60) == ref
    assert max(passes) == 2, passes


def test_seeded_sampling_reproduces_whatever_the_batch(runner: GenerationRunner) -> None:
    sampled = _input(HAIKU, max_tokens=10, temperature=1.2, top_p=0.95, seed=7)
    ref = alone(runner, sampled)
    other_seed = alone(runner, _input(HAIKU, max_tokens=10, temperature=1.2, top_p=0.95, seed=8))
    assert other_seed.text != ref.text  # the seed is what decides
    greedy = [_input(CAPITAL), _input(SUM)]
    mixed = runner.run([greedy[0], sampled, _input(RAINBOW, max_tokens=10, temperature=0.9, seed=3), greedy[1]])
    assert mixed[1] == ref
    assert [mixed[0], mixed[3]] == [alone(runner, g) for g in greedy]  # greedy rows beside sampled ones
    assert runner.run([sampled, _input(SPANISH, temperature=0.7, seed=11)])[0] == ref


def test_alone_equals_transformers_generate(runner: GenerationRunner) -> None:
    """The reference itself is right: the engine's path (prefill from the shared system-prompt
    cache, a batch of one) answers as transformers' own greedy ``generate`` does."""
    import torch

    inp = _input(SPANISH, max_tokens=12)
    hits = runner.engine.prefix_hits
    ours = alone(runner, inp)
    assert runner.engine.prefix_hits == hits + 1  # it did start from the shared prefix
    prompt = torch.tensor([runner._prompt_ids(inp)])
    with torch.inference_mode():
        out = runner.model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                                    do_sample=False, temperature=None, top_p=None, top_k=None)
    new = out[0, prompt.shape[1]:].tolist()
    assert ours.usage.completion_tokens == len(new)
    assert ours.text == runner._decode(new)


@pytest.mark.parametrize("limit", ["max_rows", "batch_tokens"])
def test_a_full_batch_makes_newcomers_wait(runner: GenerationRunner, passes: list[int], limit: str) -> None:
    """Two rows fit (by row count, or by the cache's token cap); the third joins when one leaves."""
    inputs = [_input(CAPITAL), _input(HAIKU), _input(SUM)]
    refs = [alone(runner, i) for i in inputs]
    engine = runner.engine
    saved = engine.max_rows, engine.batch_tokens
    widest = max(len(runner._prompt_ids(i)) + i.max_tokens for i in inputs)
    if limit == "max_rows":
        engine.max_rows = 2
    else:
        engine.batch_tokens = 2 * widest + 1  # two rows at their longest, not three
    try:
        passes.clear()
        tickets = [runner.submit(i, Pieces()) for i in inputs]
        if limit == "max_rows":
            assert engine.room() == 0
        assert [t.wait(60) for t in tickets] == refs
    finally:
        engine.max_rows, engine.batch_tokens = saved
    assert max(passes) == 2, passes
    assert tickets[0].finished is not None and tickets[0].finished.batch_size > 1


def test_newcomers_arriving_together_share_one_prefill(runner: GenerationRunner, passes: list[int]) -> None:
    """Six requests queued before the engine admits any: their prompts (of different lengths,
    so some are padded) are read in one forward pass, and every answer is still its own."""
    inputs = [_input(q) for q in (CAPITAL, HAIKU, RAINBOW, SUM, SPANISH)]
    inputs.append(_input("Write a long story about a lighthouse keeper.", max_tokens=6))
    refs = [alone(runner, i) for i in inputs]
    assert len({len(runner._prompt_ids(i)) for i in inputs}) > 2  # padding is exercised
    engine = runner.engine
    before = engine.stats.prefill_passes, engine.stats.prefilled_rows
    passes.clear()
    with engine._lock:  # the engine thread admits nothing until all six are queued
        tickets = [runner.submit(i, Pieces()) for i in inputs]
    assert [t.wait(60) for t in tickets] == refs
    prefills = engine.stats.prefill_passes - before[0]
    assert engine.stats.prefilled_rows - before[1] == len(inputs)
    assert prefills < len(inputs) and prefills == 1, prefills
    assert passes[0] == len(inputs), passes  # and all six decoded from the first step


def test_the_token_cap_splits_a_prefill(runner: GenerationRunner) -> None:
    """The plan alone (no model): prompts sharing the prefix go shortest first into passes of
    at most ``batch_tokens`` padded tokens; one that does not start with it goes on its own."""
    engine = runner.engine
    head = list(engine.prefix)
    rows = [_Row(prompt=head + [7] * n, inp=None, text=None, generator=None, done=print)
            for n in (30, 10, 20, 40)]
    other = _Row(prompt=[1, 2, 3], inp=None, text=None, generator=None, done=print)
    saved = engine.batch_tokens
    try:
        engine.batch_tokens = 10_000
        assert [(s, [len(r.prompt) for r in g]) for s, g in engine._plan([*rows, other])] == [
            (0, [3]), (len(head), [len(head) + n for n in (10, 20, 30, 40)])]
        engine.batch_tokens = 2 * (len(head) + 30)  # two of the three shortest, then the rest
        assert [[len(r.prompt) - len(head) for r in g] for _, g in engine._plan(rows)] == [[10, 20], [30], [40]]
    finally:
        engine.batch_tokens = saved


# ---- through a real gateway and node ----------------------------------------------------------
@pytest.fixture(scope="module")
def gen_hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    with serving(tmp_path_factory, "cbatch", [FN]) as h:
        yield h


def _body(question: str, max_tokens: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}], "max_tokens": max_tokens}


def test_concurrent_calls_decode_together_on_the_node(gen_hive: HiveProcess, runner: GenerationRunner) -> None:
    questions = [CAPITAL, HAIKU, RAINBOW, SUM, SPANISH]
    bodies = [_body(q, 10) for q in questions]
    refs = [msgspec.to_builtins(alone(runner, _input(q))) for q in questions]

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gen_hive.url, timeout=120) as c:
            return await asyncio.gather(*(c.post(f"/v1/fn/{FN}", json=b) for b in bodies))

    replies = asyncio.run(go())
    assert [ok(r) for r in replies] == refs
    batch = [int(r.headers["x-hive-batch"]) for r in replies]
    assert max(batch) >= 3, batch  # they shared forward passes on the node


def test_a_stream_closed_mid_way_leaves_the_batch_and_the_others_continue(
    gen_hive: HiveProcess, runner: GenerationRunner
) -> None:
    questions = [CAPITAL, SUM, RAINBOW]
    refs = [msgspec.to_builtins(alone(runner, _input(q))) for q in questions]
    story = _body("Write a long story about a lighthouse keeper.", 200) | {"stream": True}

    async def go() -> tuple[list[httpx.Response], int, int]:
        async with httpx.AsyncClient(base_url=gen_hive.url, timeout=120) as c:
            async with c.stream("POST", f"/v1/fn/{FN}", json=story) as r:
                assert r.status_code == 200
                lines = r.aiter_lines()
                chunks = 0

                async def read_chunks(n: int) -> None:
                    nonlocal chunks
                    goal = chunks + n
                    async for line in lines:
                        assert not line.startswith("event: result"), "the story ended before the test closed it"
                        if line.startswith("event: chunk"):
                            chunks += 1
                            if chunks >= goal:
                                return

                await read_chunks(2)
                others = [asyncio.ensure_future(c.post(f"/v1/fn/{FN}", json=_body(q, 10))) for q in questions]
                await read_chunks(3)  # the others are being answered meanwhile
            closed_ns = time.time_ns()  # leaving the block closed the stream's connection mid-way
            return list(await asyncio.gather(*others)), chunks, closed_ns

    replies, read, closed_ns = asyncio.run(go())
    assert [ok(r) for r in replies] == refs
    assert max(int(r.headers["x-hive-batch"]) for r in replies) >= 2  # they decoded beside the story

    def cancelled() -> dict[str, Any] | None:
        for s in gen_hive.spans():
            a = s["attributes"]
            if s["name"] == f"node.execute {FN}@1.0.0" and a.get("hive.cancelled") == "caller":
                return s
        return None

    gen_hive.wait_for(lambda: cancelled() is not None, 30, "the node's span of the cancelled stream")
    span = cancelled()
    assert span is not None and span["attributes"]["hive.stream"] is True
    assert read <= span["attributes"]["hive.tokens"] < 200, span  # it stopped far short of max_tokens
    # the node let it go on its next piece: a step or two, not the ~15 s 200 tokens would take
    assert (span["end_ns"] - closed_ns) / 1e9 < 5, (span, closed_ns)


def test_a_call_past_its_deadline_leaves_the_batch(gen_hive: HiveProcess) -> None:
    """The caller has its 504; the node stops decoding it then too, instead of at max_tokens."""
    body = _body("Write a long story about a lost dog.", 200)
    t0 = time.time_ns()
    r = gen_hive.post(f"/v1/fn/{FN}", body, **{"x-timeout-ms": "1500"})
    assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded", r.text

    def expired() -> dict[str, Any] | None:
        return next((s for s in gen_hive.spans() if s["name"] == f"node.execute {FN}@1.0.0"
                     and s["attributes"].get("hive.cancelled") == "deadline"), None)

    gen_hive.wait_for(lambda: expired() is not None, 30, "the node's span of the expired call")
    span = expired()
    assert span is not None and span["attributes"]["hive.tokens"] < 200, span
    assert (span["end_ns"] - t0) / 1e9 < 6, span  # at its deadline (1.5 s), not 200 tokens (~15 s) later
