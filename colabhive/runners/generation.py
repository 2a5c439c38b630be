"""generation: chat completion with a small causal LM (SmolLM2-135M-Instruct), streamed or not.

``source.adapter`` (a PEFT adapter directory, as the ``lora`` training method exports) is
merged into the base weights at load time, so a fine-tuned version costs what its base does.

Every input goes through the model's :class:`~.generation_batch.GenerationEngine`, a
continuous batch: requests decode together, join between decode steps and leave when done,
each with its own sampling settings, seed, stop strings and stream. ``run`` and ``stream``
block on it; :meth:`GenerationRunner.submit` is the node's way in, which returns at once.
The text bookkeeping lives in :class:`TextStream`, so a streamed call and a plain one cannot
disagree: ``run`` is ``stream`` with the pieces thrown away. Rows are left-padded with a
per-row attention mask and positions, so a greedy answer does not depend on what else was in
the batch (the engine's docstring says how, and why it is not transformers' own).

An input with ``score`` (a reply to score, not one to write) skips the batch: one direct
forward pass of the model over prompt + reply gives the reply's mean negative log-likelihood,
as ``loss`` (:mod:`.generation_score`; the loss the ``lora`` method trains on, taken for one row).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..errors import InvalidInput
from ..plugins import get_plugin_manager, place_model
from .base import Finished, Runner, source_path

if TYPE_CHECKING:
    from .generation_batch import GenerationEngine, Ticket

__all__ = ["GenerationOutput", "GenerationRunner", "TextStream", "Usage", "input_fields"]

MAX_MESSAGES = 64
MAX_NEW_TOKENS = 512
MAX_STOPS = 4
MAX_STOP_CHARS = 32
SEED_MAX = 2**63 - 1


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    """Tokens the model produced, the end-of-turn token included: the work done, not the text."""


class GenerationOutput(msgspec.Struct, omit_defaults=True):
    text: str
    """The answer; for a ``score`` input, the reply scored."""
    finish_reason: Literal["stop", "length"]
    """``stop``: the model ended its turn or a stop string was met; ``length``: max_tokens ran out.
    Always ``stop`` for a ``score`` input."""
    usage: Usage
    """For a ``score`` input ``completion_tokens`` counts the tokens scored (end of turn included)."""
    loss: float | None = None
    """``score`` inputs only (absent otherwise): the mean negative log-likelihood (natural log) of the
    reply's tokens and the end-of-turn token after them, given the conversation; lower is likelier."""


class TextStream:
    """Token ids in, text pieces out: what has been emitted is never taken back.

    Each step decodes all the new ids again (a token may complete a character begun by the one
    before) and emits only what is certain: a trailing U+FFFD may still become a character, and
    a tail that could begin a stop string may yet turn out to be one. Every piece goes through
    ``emit`` and :meth:`finish` returns their concatenation, so the joined stream is the text.
    """

    def __init__(self, decode: Callable[[list[int]], str], stops: list[str], emit: Callable[[str], None]) -> None:
        self._decode = decode
        self._stops = stops
        self._emit = emit
        self._ids: list[int] = []
        self._text = ""
        self.emitted = ""

    def add(self, token: int) -> bool:
        """Take one token; True when a stop string has been met (the text is cut before it)."""
        self._ids.append(token)
        text = self._decode(self._ids)
        cut = _first_stop(text, self._stops)
        if cut is not None:
            self._text = text[: max(cut, len(self.emitted))]
            return True
        self._text = text
        sure = text.rstrip("\ufffd")
        self._send(sure[: len(sure) - _stop_prefix(sure, self._stops)])
        return False

    def finish(self) -> str:
        """Emit whatever was held back and return the whole text."""
        self._send(self._text)
        return self.emitted

    def _send(self, upto: str) -> None:
        piece = upto[len(self.emitted) :]
        if piece:
            self._emit(piece)
            self.emitted += piece


def _first_stop(text: str, stops: list[str]) -> int | None:
    """Where the earliest stop string starts in ``text``, if any does."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _stop_prefix(text: str, stops: list[str]) -> int:
    """Length of the longest tail of ``text`` that a stop string begins with (0 if none)."""
    for k in range(min(len(text), max((len(s) for s in stops), default=1) - 1), 0, -1):
        tail = text[-k:]
        if any(s.startswith(tail) for s in stops):
            return k
    return 0


@lru_cache(maxsize=8)
def _input_type(max_text_chars: int) -> type[msgspec.Struct]:
    """Built per text limit (hive.toml's at the gateway, none on a node); cached so both
    sides and every call share one class, and one set of compiled validators."""
    score = Annotated[str, Meta(max_length=max_text_chars, description=(
        "Score this assistant reply under the model instead of generating one: the output's loss "
        "is its mean negative log-likelihood. max_tokens, temperature, top_p, seed and stop are "
        "ignored; stream must be false."))]
    return msgspec.defstruct("GenerationInput", [*input_fields(max_text_chars), ("score", score | None, None)],
                             forbid_unknown_fields=True, kw_only=True)


@lru_cache(maxsize=8)
def input_fields(max_text_chars: int) -> tuple[tuple[Any, ...], ...]:
    """The fields of a generation input, for ``defstruct``: runners that take a chat input
    and a little more (an expert group's ``expert``/``k``) extend this list."""
    message = msgspec.defstruct(
        "ChatMessage",
        [
            ("role", Literal["system", "user", "assistant"]),
            ("content", Annotated[str, Meta(min_length=1, max_length=max_text_chars)]),
        ],
        forbid_unknown_fields=True,
    )
    stop = Annotated[str, Meta(min_length=1, max_length=MAX_STOP_CHARS)]
    return (
        ("messages", Annotated[list[message], Meta(min_length=1, max_length=MAX_MESSAGES)]),  # type: ignore
        ("max_tokens", Annotated[int, Meta(ge=1, le=MAX_NEW_TOKENS)], 128),
        ("temperature", Annotated[float, Meta(ge=0, le=2, description="0 = greedy.")], 0.0),
        ("top_p", Annotated[float, Meta(gt=0, le=1)], 1.0),
        ("seed", Annotated[int, Meta(ge=0, le=SEED_MAX)] | None, None),
        ("stop", Annotated[list[stop], Meta(max_length=MAX_STOPS)], msgspec.field(default_factory=list)),
        ("stream", Annotated[bool, Meta(description="Answer as server-sent events.")], False),
    )


class GenerationRunner(Runner):
    Output = GenerationOutput
    streams = True
    continuous = True
    engine: GenerationEngine

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return _input_type(max_text_chars)

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .generation_batch import BATCH_TOKENS, GenerationEngine

        path = source_path(self.manifest)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        base_config, eos = model.config, model.generation_config.eos_token_id
        model = self._prepare(model)
        self.model = place_model(model, self.device, self.dtype)
        self.torch_device = get_plugin_manager().hook.hive_torch_device(device=self.device)
        self.context = int(self.manifest.options.get("context_tokens", base_config.max_position_embeddings))
        self.end_ids = _end_ids(eos, self.tokenizer.eos_token_id)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.engine = GenerationEngine(
            self.model, self.torch_device, self.end_ids,
            lambda logits, inp, generator: _pick(torch, logits, inp, generator),
            max_rows=self.manifest.batching.max_batch,
            batch_tokens=int(self.manifest.options.get("batch_tokens", BATCH_TOKENS)),
            prefix=self._template_head(),
            adapters=self._adapter_cache(),
        )

    def _prepare(self, model: Any) -> Any:
        """The loaded base as it will be served: here with ``source.adapter`` merged in (a
        multi-LoRA runner wraps it for adapters instead)."""
        if self.manifest.source.adapter:
            return _with_adapter(model, self.manifest.resolve(self.manifest.source.adapter))
        return model

    def _adapter_cache(self) -> Any:
        """The engine's :class:`~.adapters.AdapterCache` (None: one model, no adapters)."""
        return None

    def check(self, inp: Any) -> None:
        """What the schema cannot say: whose turn it is, and whether the answer fits the context."""
        if inp.messages[-1].role != "user":
            raise InvalidInput("the last message must be from the user: the model answers it", field="messages")
        n = len(self._prompt_ids(inp))
        score = getattr(inp, "score", None)
        if score is not None:
            if inp.stream:
                raise InvalidInput("a score is one number: it cannot be streamed", field="stream")
            m = len(self._reply_ids(score))
            if n + m > self.context:
                raise InvalidInput(
                    f"the conversation is {n} tokens and the reply to score {m}: together they exceed "
                    f"the model's context of {self.context}",
                    field="score",
                )
            return
        if n + inp.max_tokens > self.context:
            raise InvalidInput(
                f"the conversation is {n} tokens; with max_tokens {inp.max_tokens} it exceeds the "
                f"model's context of {self.context}",
                field="messages",
            )

    def submit(self, inp: Any, emit: Callable[[str], None],
               done: Callable[[Finished], None] | None = None) -> Ticket:
        """Hand one (checked) input to the continuous batch and return at once; ``emit`` gets
        its text piece by piece, ``done`` its end. An ``emit`` that raises ends that request
        alone (the caller left), as does :meth:`~.generation_batch.Ticket.cancel`.

        A ``score`` input is scored here and now, on the caller's thread: ``done`` has run
        when this returns, and the handle's ``wait`` gives the output at once."""
        if getattr(inp, "score", None) is not None:
            return self._score([inp], done)[0]
        generator = _generator(self.torch, inp) if inp.temperature > 0 else None
        text = TextStream(self._decode, inp.stop, emit)
        return self.engine.submit(self._prompt_ids(inp), inp, text, generator, done)

    def room(self) -> int:
        return self.engine.room()

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        """All inputs join the batch at once (with whatever else is running) and decode together;
        the ``score`` inputs among them share forward passes of their own meanwhile."""
        scoring = [getattr(i, "score", None) is not None for i in inputs]
        tickets = [self.submit(i, _discard) for i, s in zip(inputs, scoring, strict=True) if not s]
        try:
            scored = iter(self._score([i for i, s in zip(inputs, scoring, strict=True) if s]))
            generated = iter(tickets)
            return [(next(scored) if s else next(generated)).wait() for s in scoring]
        finally:
            for t in tickets:  # one failed: the batch fails, so the rest stop too
                t.cancel()

    def stream(self, inp: Any, emit: Callable[[str], None]) -> msgspec.Struct:
        """One input in the batch, blocking; what ``emit`` raises ends it and is raised here."""
        ticket = self.submit(inp, emit)
        try:
            return ticket.wait()
        finally:
            ticket.cancel()

    # ---- internals ---------------------------------------------------------------------------
    def _score(self, inputs: list[Any], done: Callable[[Finished], None] | None = None) -> list[Any]:
        """Score these (checked) inputs' replies together, one handle each, already finished; a
        model failure finishes each with that error."""
        import time

        from .generation_score import ScoreRow, finish, score_rows

        t0 = time.perf_counter()
        rows = [ScoreRow(self._prompt_ids(i), self._reply_ids(i.score)) for i in inputs]
        try:
            losses, sizes = score_rows(self.model, self.torch_device, rows, self.engine.model_lock,
                                       wrapped=self.engine.adapters is not None, pad_id=self.pad_id)
        except Exception as exc:
            return [finish(None, exc, t0, 1, 0, done) for _ in inputs]
        return [
            finish(GenerationOutput(
                text=i.score, finish_reason="stop",
                usage=Usage(prompt_tokens=len(r.prompt), completion_tokens=len(r.reply)), loss=loss,
            ), None, t0, size, len(r.reply), done)
            for i, r, loss, size in zip(inputs, rows, losses, sizes, strict=True)
        ]

    def _reply_ids(self, reply: str) -> list[int]:
        """A reply's tokens as the ``lora`` method trains on them: its text and the end-of-turn token."""
        return list(self.tokenizer(reply + self.tokenizer.eos_token, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, inp: Any) -> list[int]:
        messages = [{"role": m.role, "content": m.content} for m in inp.messages]
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _template_head(self) -> list[int]:
        """The tokens every one-message conversation begins with (the default system prompt
        and the user's header): where two conversations that differ only in their text part."""
        a, b = (self._prompt_ids(_One(messages=[_Message("user", t)])) for t in ("a", "b"))
        n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return a[:n]

    def _decode(self, ids: list[int]) -> str:
        # no clean-up of spaces: it rewrites earlier text, and streamed pieces could not be undone
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


class _Message(msgspec.Struct):
    role: str
    content: str


class _One(msgspec.Struct):
    """Just what :meth:`GenerationRunner._prompt_ids` reads of an input."""

    messages: list[_Message]


def _with_adapter(model: Any, adapter: Any) -> Any:
    """The base with a PEFT (LoRA) adapter merged into its weights: served at the base's speed,
    and placed on a device like any plain model."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().eval()


def _discard(_piece: str) -> None:
    """``run`` has nobody to stream to."""


def _end_ids(*candidates: int | list[int] | None) -> frozenset[int]:
    """Every id that ends the assistant's turn (generation config and tokenizer may list different ones)."""
    ids: set[int] = set()
    for c in candidates:
        if isinstance(c, int):
            ids.add(c)
        elif c:
            ids.update(c)
    return frozenset(ids)


def _generator(torch: Any, inp: Any) -> Any:
    """A CPU generator of its own per call: a seed reproduces one call whatever else runs,
    and sampling on the CPU makes it reproduce across devices too."""
    g = torch.Generator(device="cpu")
    if inp.seed is None:
        g.seed()
    else:
        g.manual_seed(inp.seed)
    return g


def _pick(torch: Any, logits: Any, inp: Any, generator: Any | None) -> int:
    """Greedy (temperature 0) or nucleus sampling from one row of logits."""
    if generator is None:
        return int(logits.argmax().item())
    probs = torch.softmax(logits.float().cpu() / inp.temperature, dim=-1)
    if inp.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        before = sorted_probs.cumsum(0) - sorted_probs  # mass of the more likely tokens
        sorted_probs[before >= inp.top_p] = 0.0  # the most likely token always survives
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator).item())
