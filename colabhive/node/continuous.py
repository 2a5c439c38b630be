"""Tasks of continuous runners (generation): handed to the model's running batch as they
arrive, answered as each one ends.

The poll loop runs an ordinary batch to its end before it polls again, so a generation of
10 s would hold every call that arrives meanwhile, and two calls would never share a
forward pass. A continuous runner's task instead is decoded, checked and submitted
(:meth:`~colabhive.runners.base.Runner.submit`, which returns at once), and the poll loop
goes straight back for more while the runner's engine thread decodes everything in hand
together. Polls say how many rows each such function has free (``PollRequest.room``), so a
node never takes more than its batch holds while another node could start at once.

What the tasks produce leaves through one :class:`Outbox` thread on a connection of its own:
pieces of text batched into one post per round (``/v1/nodes/{id}/chunks``: 32 streams make 32
pieces per step), results into ``/results``, a task's pieces always before its result (the
gateway relies on that order). Neither the poll loop nor the model waits on the network. A
piece the gateway refuses (its caller went away) cancels that task in the batch at once, and
so does the task's deadline passing (the gateway has answered its caller 504 by then).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
from opentelemetry import trace

from ..errors import GatewayError, GatewayUnreachable, InvalidInput
from ..runners.base import Cancelled, Finished, Handle
from ..telemetry import context_from_traceparent
from ..wire import ChunkBatch, ErrorBody, PollRequest, TaskAssignment, TaskChunk, TaskResult
from .cache import ModelCache
from .client import GatewayClient
from .energy import EnergyMeter

__all__ = ["ContinuousTasks", "Outbox"]

log = logging.getLogger("colabhive.node")
_encode = msgspec.json.encode


class Outbox:
    """Posts streamed pieces and results from one thread, in order, batching whatever piled
    up while the previous post was out. Results it could not deliver (gateway away) are kept
    for the poll loop to carry (:meth:`undelivered`)."""

    def __init__(self, client: GatewayClient, node_id: Callable[[], str | None]) -> None:
        self.client = client
        self.node_id = node_id
        self._cv = threading.Condition()
        self._chunks: list[tuple[TaskChunk, Callable[[], None]]] = []
        self._results: list[TaskResult] = []
        self._kept: list[TaskResult] = []
        self._posting = False
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def chunk(self, task_id: str, seq: int, text: str, refused: Callable[[], None], dtype: str = "") -> None:
        """Queue a piece; ``refused`` runs (on the outbox thread) if its caller has gone."""
        with self._cv:
            self._chunks.append((TaskChunk(task=task_id, seq=seq, text=text, dtype=dtype), refused))
            self._cv.notify()

    def result(self, result: TaskResult) -> None:
        with self._cv:
            self._results.append(result)
            self._cv.notify()

    def undelivered(self) -> list[TaskResult]:
        """Results the gateway could not be reached for, taken out (the next poll carries them)."""
        with self._cv:
            kept, self._kept = self._kept, []
            return kept

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far has been posted (or kept); False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not (self._chunks or self._results or self._posting), timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._chunks or self._results))
                chunks, self._chunks = self._chunks, []
                results, self._results = self._results, []
                self._posting = True
            try:
                if chunks:  # before the results: a task's pieces must reach the gateway first
                    self._post_chunks(chunks)
                if results:
                    self._post_results(results)
            except Exception:  # never let the thread die: the node would go mute
                log.exception("the outbox failed to post %d pieces and %d results", len(chunks), len(results))
            finally:
                with self._cv:
                    self._posting = False
                    self._cv.notify_all()

    def _post_chunks(self, chunks: list[tuple[TaskChunk, Callable[[], None]]]) -> None:
        body = _encode(ChunkBatch(chunks=[c for c, _ in chunks]))
        try:
            data = self.client.request("POST", f"/v1/nodes/{self.node_id()}/chunks", body)
        except (GatewayUnreachable, GatewayError) as exc:
            # not fatal: the whole text still arrives with the result
            log.warning("could not post %d pieces of streamed output: %s", len(chunks), exc)
            return
        accepted = msgspec.json.decode(data).get("accepted", [])
        for (_, refused), ok in zip(chunks, accepted):
            if not ok:
                refused()

    def _post_results(self, results: list[TaskResult]) -> None:
        body = _encode(PollRequest(results=results, max_items=0, wait_ms=0))
        try:
            self.client.request("POST", f"/v1/nodes/{self.node_id()}/results", body)
        except (GatewayUnreachable, GatewayError) as exc:
            log.warning("could not post %d results (the next poll carries them): %s", len(results), exc)
            with self._cv:
                self._kept.extend(results)


class ContinuousTasks:
    """The node's tasks in continuous batches: started here, ended by their runner's engine."""

    def __init__(
        self, cache: ModelCache, outbox: Outbox, tracer: trace.Tracer, node_name: str,
        meter: EnergyMeter | None = None,
    ) -> None:
        self.cache = cache
        self.outbox = outbox
        self.tracer = tracer
        self.node_name = node_name
        self.meter = meter
        self._lock = threading.Lock()
        self._running: dict[str, Handle | None] = {}
        """Task id → its handle (None for the moment between claiming the id and submitting)."""
        self._timers: dict[str, threading.Timer] = {}
        self._expired: set[str] = set()
        """Tasks cancelled because their caller's deadline passed (nobody waits for them)."""
        self.freed = threading.Event()
        """Set whenever a task ends (a row is free): a node whose batches were all full polls again."""

    def takes(self, t: TaskAssignment) -> bool:
        loaded = self.cache.loaded.get(t.fn)
        return loaded is not None and loaded.runner.continuous

    def room(self, functions: list[str]) -> dict[str, int]:
        """Free rows of each loaded continuous function (what the next poll may bring)."""
        out: dict[str, int] = {}
        for fn in functions:
            loaded = self.cache.loaded.get(fn)
            if loaded is not None and loaded.runner.continuous:
                out[fn] = loaded.runner.room()
        return out

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def wait_idle(self, timeout: float, tick: Callable[[], None] = lambda: None) -> bool:
        """Wait until no task is running (True) or ``timeout`` passes; ``tick`` runs about
        once a second meanwhile (a leaving node keeps its heartbeat going)."""
        end = time.monotonic() + timeout
        while self.running():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.freed.wait(min(left, 1.0))
            self.freed.clear()
            tick()
        return True

    def cancel(self, task_id: str) -> None:
        with self._lock:
            handle = self._running.get(task_id)
        if handle is not None:
            handle.cancel()

    def start(self, t: TaskAssignment) -> TaskResult | None:
        """Submit one task; a result now only when its input is refused (the rest come
        through the outbox as each task ends)."""
        loaded = self.cache.loaded.get(t.fn)
        if loaded is None:
            return _error(t.id, "not_loaded", f"{t.fn} is not loaded on {self.node_name}")
        try:
            inp = msgspec.json.decode(t.input, type=loaded.input_type)
            loaded.runner.check(inp)
        except msgspec.MsgspecError as exc:
            return _error(t.id, "invalid_input", str(exc))
        except InvalidInput as exc:
            return TaskResult(id=t.id, error=ErrorBody(code=exc.code, message=exc.message, field=exc.field))
        span = self.tracer.start_span(f"node.execute {t.fn}", context=context_from_traceparent(t.traceparent))
        span.set_attribute("hive.fn", t.fn)
        span.set_attribute("hive.node", self.node_name)
        span.set_attribute("hive.stream", t.stream)
        span.set_attribute("hive.continuous", True)
        runner = loaded.runner
        reading = self.meter.begin(runner.device, t.fn) if self.meter is not None else None
        seq = 0

        def emit(text: str) -> None:
            nonlocal seq
            # the first piece says the dtype: the caller's headers wait for it (X-Hive-Dtype)
            self.outbox.chunk(t.id, seq, text, lambda: self.cancel(t.id), runner.dtype if seq == 0 else "")
            seq += 1

        def done(f: Finished) -> None:
            self._finish(t, span, reading, f, seq, runner.dtype)

        with self._lock:
            self._running[t.id] = None
        try:
            # outside the lock: the engine calls ``done`` holding its own lock, which then takes ours
            handle = runner.submit(inp, emit if t.stream else _discard, done)
        except Exception as exc:
            log.exception("%s refused task %s", t.fn, t.id)
            with self._lock:
                self._running.pop(t.id, None)
            span.set_status(trace.StatusCode.ERROR, str(exc))
            span.end()
            return _error(t.id, "model_error", f"{type(exc).__name__}: {exc}")
        with self._lock:
            if t.id in self._running:  # not already over
                self._running[t.id] = handle
                if t.deadline_ms > 0:
                    # the gateway answers the caller 504 then; a row still decoding would be wasted
                    timer = threading.Timer(t.deadline_ms / 1000, self._expire, (t.id,))
                    timer.daemon = True
                    self._timers[t.id] = timer
                    timer.start()
        return None

    def _expire(self, task_id: str) -> None:
        with self._lock:
            if task_id not in self._running:
                return
            self._expired.add(task_id)
        self.cancel(task_id)

    def _finish(self, t: TaskAssignment, span: Any, reading: Any, f: Finished, chunks: int, dtype: str) -> None:
        """A task's end, from the engine: its result into the outbox (after its pieces)."""
        with self._lock:
            self._running.pop(t.id, None)
            timer = self._timers.pop(t.id, None)
            expired = t.id in self._expired
            self._expired.discard(t.id)
        if timer is not None:
            timer.cancel()
        energy = self.meter.end(reading) if self.meter is not None and reading is not None else (None, False)
        span.set_attribute("hive.batch_size", f.batch_size)
        span.set_attribute("hive.chunks", chunks)
        span.set_attribute("hive.tokens", f.tokens)
        if f.error is not None:
            if isinstance(f.error, Cancelled):
                span.set_attribute("hive.cancelled", "deadline" if expired else "caller")
                result = (_error(t.id, "deadline_exceeded", "the call's deadline passed; generation stopped early")
                          if expired else
                          _error(t.id, "cancelled", "the caller stopped listening; generation stopped early"))
            else:
                log.error("%s failed on task %s: %s", t.fn, t.id, f.error)
                span.set_status(trace.StatusCode.ERROR, str(f.error))
                result = _error(t.id, "model_error", f"{type(f.error).__name__}: {f.error}")
        else:
            share = max(1, round(f.batch_size))
            result = TaskResult(id=t.id, output=msgspec.Raw(_encode(f.output)), run_ms=f.run_ms, batch_size=share,
                                dtype=dtype)
            joules, estimated = energy
            if joules is not None:
                # the device ran all the batch's rows meanwhile: this task's share of it
                result.energy_j = float(f"{joules / f.batch_size:.6g}")
                result.energy_estimated = estimated
                span.set_attribute("hive.energy_j", result.energy_j)
        span.end()
        self.outbox.result(result)
        self.freed.set()


def _error(task_id: str, code: str, message: str) -> TaskResult:
    return TaskResult(id=task_id, error=ErrorBody(code=code, message=message))


def _discard(_piece: str) -> None:
    """A task nobody streams to."""
