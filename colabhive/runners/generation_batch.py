"""Continuous batching for causal-LM generation: the requests on one model decode together.

A decode step of a small model on a CPU costs about the same for 1 row as for 8 (it is bound
by reading the weights, not by arithmetic), so answering requests one after another leaves
most of the hardware idle. :class:`GenerationEngine` keeps one batch per loaded model in a
thread of its own: a request joins between two decode steps, leaves the moment it is done
(end of turn, a stop string, ``max_tokens``, its caller gone), and keeps its own sampling
settings, seed, stop strings and stream all along.

How the batch is laid out (:mod:`.generation_rows`): rows are **left-padded** to one width,
so one forward pass appends one column for all of them, each row with its own position ids
and a 2-D attention mask with zeros over its padding, so its keys are rotated and attended
exactly as if it ran alone. Newcomers admitted together are **prefilled together**, in one
forward pass (right-padded: causal attention never shows a real token the padding) as far
as the cache's token cap allows, so a burst of 8 calls costs one prefill, not 8 while the
decoding rows wait; their key/value caches are then padded and concatenated into the batch.
A row that leaves is dropped by an index select, and columns that have become padding in
every row are trimmed off the left. With fp32 weights a greedy answer in a batch is token
for token the answer the request gets alone (tests/test_generation_batching.py checks it).

Why not transformers' own continuous batching (``ContinuousBatchingManager``, reached
through ``init_continuous_batching`` / ``generate_batch`` in 5.23): it fits a server that
serves one sampling setting, not this hive's calls.

- ``do_sample`` is one setting for the whole manager: greedy and sampled requests cannot
  share a batch, and per-request temperature / top-p exist only as processors the manager's
  generation config switched on when it was built.
- Sampling draws from the process-wide torch RNG, which the manager seeds once with
  ``torch.manual_seed``: a request's own ``seed`` could not reproduce its answer whatever
  else is in the batch (the hive promises that, per call), and seeding would disturb every
  other torch user in the node process (a training job's shuffles, dropout).
- It returns token ids by its own request ids; stop strings, the held-back text of
  :class:`~.generation.TextStream` and the caller's stream still have to sit on top, and a
  stop string must end the row at once, not at ``max_new_tokens``.

Here sampling goes through :func:`~.generation._pick` with each row's own CPU generator,
exactly as a lone call does, so a seeded answer does not depend on its batch-mates.

**Multi-LoRA** (an engine given an :class:`~.adapters.AdapterCache`): the model is the base
wrapped once as a PeftModel, and every forward pass names each row's adapter (peft's
mixed-batch ``adapter_names``, ``"__base__"`` for none), so requests on different adapters
still share one pass per step. A request that mixes k adapters is k physical rows fed the same
tokens: each step its next token comes from Σ wᵢ·softmax(logitsᵢ) (:func:`.generation_rows.mix_logits`)
and goes to all k. Adapters are loaded on the engine thread before the prefill that needs them,
so loading and eviction never happen during a forward pass. The shared prefix is read once per
adapter (its keys and values depend on it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import torch

from .base import Cancelled, Finished
from .generation_rows import Batch as _Batch
from .generation_rows import Row as _Row
from .generation_rows import mix_logits, prefill_ids, repeat_cache, stack_caches

if TYPE_CHECKING:
    from .adapters import AdapterCache

__all__ = ["EngineStats", "GenerationEngine", "PREFILL_TOKENS", "Ticket"]

log = logging.getLogger("colabhive.node")

PREFILL_TOKENS = 512
"""Most prompt tokens prefilled between two decode steps while rows are decoding: a burst of
newcomers must not stall the answers already streaming for seconds (a lone newcomer always
gets in, however long its prompt)."""
BATCH_TOKENS = 16384
"""Default cap on rows × width of the batch's cache, counting each row at its longest
(prompt + max_tokens): left padding makes every row as wide as the widest, so one 8k-token
conversation beside 31 short ones would otherwise hold 32 × 8k cached tokens (12 GB for
SmolLM2-135M). A request that would break it waits for rows to leave; alone, any fits. It
bounds a prefill pass too: newcomers prefilled together × their widest prompt."""


@dataclass(slots=True)
class EngineStats:
    """Forward passes an engine has run (tests, telemetry)."""

    prefill_passes: int = 0
    """Prefill forward passes: several newcomers admitted together share one."""
    prefilled_rows: int = 0
    """Prompts those passes read."""
    decode_passes: int = 0


class Ticket:
    """A request handed to the engine: cancel it, or wait for its output."""

    __slots__ = ("_engine", "_row", "_event", "_finished")

    def __init__(self, engine: GenerationEngine, row: _Row) -> None:
        self._engine = engine
        self._row = row
        self._event = threading.Event()
        self._finished: Finished | None = None

    def cancel(self) -> None:
        """Take the request out now: its ``done`` runs before this returns (if it had not
        already), nothing more is emitted, and the next forward pass runs without its row."""
        self._engine._cancel(self._row)

    def wait(self, timeout: float | None = None) -> msgspec.Struct:
        """The output; raises what ended the request early (or TimeoutError)."""
        if not self._event.wait(timeout):
            raise TimeoutError("the generation did not finish in time")
        f = self._finished
        assert f is not None
        if f.error is not None:
            raise f.error
        assert f.output is not None
        return f.output

    @property
    def finished(self) -> Finished | None:
        return self._finished


class GenerationEngine:
    """One loaded model's continuous batch: :meth:`submit` from any thread, the model runs in
    the engine's own thread, which starts with the first request and ends when none is left
    (so an unloaded model is freed: nothing holds it once its last answer is out).

    ``pick(logits_row, inp, generator) -> token`` chooses each row's next token;
    ``end_ids`` end a row's turn. Callbacks (``emit`` inside the row's TextStream, ``done``)
    run under the engine's lock between forward passes, on the engine thread (``done`` of a
    cancelled request: on the cancelling thread); they must be quick (the node's only queue a
    post) and may cancel requests themselves.
    """

    def __init__(
        self,
        model: Any,
        device: Any,
        end_ids: frozenset[int],
        pick: Callable[[Any, Any, Any | None], int],
        max_rows: int,
        batch_tokens: int = BATCH_TOKENS,
        prefill_tokens: int = PREFILL_TOKENS,
        prefix: list[int] | None = None,
        adapters: AdapterCache | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.end_ids = end_ids
        self.pick = pick
        self.max_rows = max(1, max_rows)
        self.batch_tokens = batch_tokens
        self.prefill_tokens = prefill_tokens
        self.prefix = list(prefix or [])
        """Tokens most prompts begin with (the chat template's system prompt and user header):
        read once, their keys and values are copied into every such prompt's prefill."""
        self._prefix_cache: dict[str, Any] = {}
        """adapter name ("" on a plain model) → the prefix's keys and values read under it."""
        self.adapters = adapters
        """Set: a multi-LoRA engine (``self.model`` is a PeftModel; rows name their adapters)."""
        if adapters is not None:
            adapters.on_evict.append(lambda name: self._prefix_cache.pop(name, None))
        self.prefix_hits = 0
        """Prompts prefilled from the shared prefix (tests and telemetry)."""
        self.stats = EngineStats()
        self.observer: Callable[[int], None] | None = None
        """Called with the row count of every decode forward pass (tests, telemetry)."""
        self._lock = threading.RLock()
        self.model_lock = threading.Lock()
        """Held over every use of the model: the engine's forward passes and adapter loads, and a
        score's pass (:mod:`.generation_score`), which runs on its caller's thread: peft's per-call
        adapter hooks sit on the model's layers for the length of a pass."""
        self._waiting: deque[_Row] = deque()
        self._rows: list[_Row] = []
        """The rows in the batch, in batch order (some may be over, waiting to be dropped)."""
        self._thread: threading.Thread | None = None
        self._batch = _Batch(device)

    # ---- any thread ----------------------------------------------------------------------
    def submit(self, prompt: list[int], inp: Any, text: Any, generator: Any | None,
               done: Callable[[Finished], None] | None = None,
               mixture: Sequence[tuple[str, float]] = (),
               dress: Callable[[Any], Any] | None = None) -> Ticket:
        """Queue one request; it joins the batch before the next decode step that has room.

        ``text`` is its TextStream (its emit is the caller's stream), ``generator`` its own
        sampling generator (None: greedy). ``done`` runs once when it ends, however it ends.
        ``mixture`` (multi-LoRA engine only): ``[(adapter, weight), ...]``, empty = the base;
        weights are normalised here. ``dress`` turns its output into the runner's own.
        """
        if mixture and self.adapters is None:
            raise ValueError("this engine serves one model: it has no adapters to mix")
        total = sum(w for _, w in mixture)
        if mixture and not total > 0:
            raise ValueError("a mixture's weights must sum to more than 0")
        row = _Row(prompt=prompt, inp=inp, text=text, generator=generator, done=done or _nothing,
                   reach=len(prompt) + inp.max_tokens, adapters=tuple(a for a, _ in mixture),
                   weights=tuple(w / total for _, w in mixture), dress=dress)
        ticket = Ticket(self, row)
        row.ticket = ticket
        with self._lock:
            self._waiting.append(row)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="generation-batch", daemon=True)
                self._thread.start()
        return ticket

    def room(self) -> int:
        """Requests (of one row each) it can take now without any waiting for a row."""
        with self._lock:
            return max(0, self.max_rows - self._live_rows())

    def busy(self) -> int:
        """Requests running or waiting to join."""
        with self._lock:
            return self._live()

    def _live(self) -> int:
        return len(self._waiting) + sum(1 for r in self._rows if not r.over)

    def _live_rows(self) -> int:
        """Physical rows taken or asked for (a k-adapter mixture takes k)."""
        return sum(r.width for r in self._waiting) + sum(r.width for r in self._rows if not r.over)

    def _cancel(self, row: _Row) -> None:
        with self._lock:
            if row.over:
                return
            if row in self._waiting:
                self._waiting.remove(row)
            self._end(row, None, Cancelled("cancelled"))

    # ---- the engine thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                self._drop_ended()
                joining = self._admit()
                if not self._rows and not joining:
                    self._thread = None
                    return
            try:
                if joining and self.adapters is not None:
                    joining = self._load_adapters(joining)
                if joining:
                    self._prefill(joining)
                if self._rows:
                    self._decode()
            except Exception as exc:  # a model failure ends every request in hand, never the thread
                log.exception("generation failed with %d rows in the batch", len(self._rows) + len(joining))
                with self._lock:
                    for row in [*self._rows, *joining]:
                        self._end(row, None, exc)
                    self._rows = []
                    self._batch = _Batch(self.device)

    def _drop_ended(self) -> None:
        """Take rows that are over out of the batch before the next forward pass."""
        if all(not r.over for r in self._rows):
            return
        keep: list[int] = []
        at = 0
        for r in self._rows:
            if not r.over:
                keep.extend(range(at, at + r.width))
            at += r.width
        with torch.inference_mode():
            self._batch.keep(keep)
        self._rows = [r for r in self._rows if not r.over]

    def _admit(self) -> list[_Row]:
        """Waiting requests that join before the next step, first come first served: as many
        as there are rows for, within the cache's token cap and (while others are decoding)
        the prefill budget. A request alone always joins."""
        joining: list[_Row] = []
        live = [r for r in self._rows if not r.over]
        reach = max((r.reach for r in live), default=0)
        tokens = 0
        rows = sum(r.width for r in live)  # physical rows, the joining ones included
        while self._waiting:
            head = self._waiting[0]
            if live or joining:
                if rows + head.width > self.max_rows:
                    break
                if (rows + head.width) * max(reach, head.reach) > self.batch_tokens:
                    break
                if live and joining and tokens + len(head.prompt) > self.prefill_tokens:
                    break
            self._waiting.popleft()
            reach = max(reach, head.reach)
            tokens += len(head.prompt)
            rows += head.width
            joining.append(head)
        return joining

    def _names(self, row: _Row) -> tuple[str, ...]:
        """The adapter of each of the row's physical rows, as peft's ``adapter_names`` wants."""
        return row.adapters or ("__base__",)

    def _kw(self, rows: list[_Row]) -> dict[str, Any]:
        """What a forward pass over these rows needs beyond the plain model's arguments."""
        if self.adapters is None:
            return {}
        return {"adapter_names": [n for r in rows for n in self._names(r)]}

    def _load_adapters(self, joining: list[_Row]) -> list[_Row]:
        """Make every newcomer's adapters resident (engine thread, between forward passes);
        a newcomer whose adapter cannot be loaded ends with that error, the others go on."""
        assert self.adapters is not None
        in_use = {a for r in (*self._rows, *joining) if not r.over for a in r.adapters}
        ok: list[_Row] = []
        for row in joining:
            try:
                with self.model_lock:
                    self.adapters.ensure(row.adapters, in_use)
            except Exception as exc:
                log.exception("loading adapters %s failed", row.adapters)
                with self._lock:
                    self._end(row, None, exc)
            else:
                ok.append(row)
        return ok

    def _prefill(self, rows: list[_Row]) -> None:
        """The newcomers' prompts, in as few forward passes as :meth:`_plan` allows."""
        for start, group in self._plan(rows):
            self._prefill_group(group, start)

    def _plan(self, rows: list[_Row]) -> list[tuple[int, list[_Row]]]:
        """Newcomers grouped into prefill passes: by where their prefill starts (after the
        shared prefix, or at 0) and, shortest prompt first, while ``len(group) × widest
        prompt`` (the padded pass and the cache it leaves) fits ``batch_tokens``; one always
        fits. Admission already keeps the whole batch within that cap, so in practice the
        newcomers of one admission share a pass per start."""
        plan: list[tuple[int, list[_Row]]] = []
        for row in sorted(rows, key=lambda r: (self._start(r.prompt), len(r.prompt))):
            s = self._start(row.prompt)
            if plan and plan[-1][0] == s and (len(plan[-1][1]) + 1) * len(row.prompt) <= self.batch_tokens:
                plan[-1][1].append(row)
            else:
                plan.append((s, [row]))
        return plan

    def _prefill_group(self, group: list[_Row], start: int) -> None:
        """One forward pass over these prompts (from ``start``, right-padded), each row's first
        token, then the survivors into the batch. A row's real tokens see what they would
        alone, so a greedy answer does not depend on who was prefilled beside it."""
        kw = self._kw(group)
        with self.model_lock, torch.inference_mode():
            past = self._prefix_copy(kw.get("adapter_names", [""] * len(group))) if start else None
            ids, keep = prefill_ids([r.prompt[start:] for r in group for _ in range(r.width)], self.device)
            out = self.model(input_ids=ids, past_key_values=past, use_cache=True, logits_to_keep=keep, **kw)
            logits = out.logits[:, -1]
        self.stats.prefill_passes += 1
        self.stats.prefilled_rows += len(group)
        n = len(ids)
        index: list[int] = []
        lengths: list[int] = []
        tokens: list[int] = []
        kept: list[_Row] = []
        with self._lock:
            at = 0
            for row in group:
                first, at = at, at + row.width
                if row.over:  # cancelled while its prompt was read
                    continue
                row.steps += 1
                row.row_steps += n
                token = self._choose(logits[first:at], row)
                self._take(row, token)
                if not row.over:
                    index.extend(range(first, at))
                    lengths.extend([len(row.prompt)] * row.width)
                    tokens.extend([token] * row.width)
                    kept.append(row)
            with torch.inference_mode():
                self._batch.add(out.past_key_values, index, lengths, tokens)
            self._rows.extend(kept)

    def _choose(self, logits: torch.Tensor, row: _Row) -> int:
        """A request's next token from its physical rows' logits ``[width, vocab]``."""
        if row.width == 1:
            return self.pick(logits[0], row.inp, row.generator)
        with torch.inference_mode():
            return self.pick(mix_logits(logits, row.weights), row.inp, row.generator)

    def _start(self, prompt: list[int]) -> int:
        """Where the prompt's prefill starts: after the shared prefix when it begins with it
        (and goes on past it), else 0."""
        n = len(self.prefix)
        return n if n and len(prompt) > n and prompt[:n] == self.prefix else 0

    def _prefix_copy(self, names: list[str]) -> Any:
        """``rows`` copies of the shared prefix's cache (read on first use). A short prompt's
        prefill is mostly the chat template's system prompt (24 of ~37 tokens for SmolLM2),
        and prefill is compute-bound while every decoding row waits for it; a greedy answer
        still does not depend on the batch, since every request that starts with the prefix
        is prefilled this same way. ``names``: each row's adapter ("" on a plain model): the
        prefix is read once per adapter."""
        for name in dict.fromkeys(names):
            if name not in self._prefix_cache:
                ids = torch.tensor([self.prefix], device=self.device)
                kw = {"adapter_names": [name]} if self.adapters is not None else {}
                self._prefix_cache[name] = self.model(input_ids=ids, use_cache=True, **kw).past_key_values
        self.prefix_hits += len(names)
        if len(set(names)) == 1:
            return repeat_cache(self._prefix_cache[names[0]], len(names))
        return stack_caches([self._prefix_cache[n] for n in names])

    def _decode(self) -> None:
        """One forward pass for every row in the batch, and each row's next token."""
        with self.model_lock, torch.inference_mode():
            logits = self._batch.step(self.model, **self._kw(self._rows))
            self.stats.decode_passes += 1
            chosen: list[int] = logits.argmax(-1).tolist()  # greedy rows; sampled ones are redrawn below
        n = len(chosen)
        if self.observer is not None:
            self.observer(n)
        with self._lock:
            last: list[int] = []
            at = 0
            for row in self._rows:
                first, at = at, at + row.width
                token = chosen[first]
                if not row.over:
                    row.steps += 1
                    row.row_steps += n
                    if row.generator is not None or row.width > 1:
                        token = self._choose(logits[first:at], row)
                    self._take(row, token)
                last.extend([token] * row.width)
            with torch.inference_mode():
                self._batch.last = torch.tensor(last, device=self.device)

    def _take(self, row: _Row, token: int) -> None:
        """One new token for a row: end of turn, stop string, max_tokens, or on it goes."""
        row.count += 1
        try:
            if token in self.end_ids:
                self._end(row, "stop")
            elif row.text.add(token):
                self._end(row, "stop")
            elif row.count >= row.inp.max_tokens:
                self._end(row, "length")
        except Exception as exc:  # its emit raised: the caller left (StreamClosed) or broke
            self._end(row, None, exc)

    def _end(self, row: _Row, finish: Literal["stop", "length"] | None, error: BaseException | None = None) -> None:
        """Finish a row once: build its output (flushing held-back text), call ``done``."""
        from .generation import GenerationOutput, Usage

        if row.over:
            return
        output = None
        if error is None:
            assert finish is not None
            try:
                text = row.text.finish()
            except Exception as exc:  # the flush's emit raised
                error = exc
            else:
                output = GenerationOutput(
                    text=text, finish_reason=finish,
                    usage=Usage(prompt_tokens=len(row.prompt), completion_tokens=row.count),
                )
                if row.dress is not None:
                    output = row.dress(output)
        row.over = True
        done = Finished(
            output=output, error=error, run_ms=(time.perf_counter() - row.t0) * 1000,
            batch_size=row.row_steps / row.steps if row.steps else 1.0, tokens=row.count,
        )
        ticket = row.ticket
        assert ticket is not None
        ticket._finished = done
        ticket._event.set()
        try:
            row.done(done)
        except Exception:
            log.exception("a generation's done callback failed")


def _nothing(_f: Finished) -> None:
    """A request nobody needs telling about (the caller waits on its ticket)."""
