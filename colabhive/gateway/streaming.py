"""Streamed calls: the node posts output text as it is produced; the caller reads SSE.

A streamed task is queued like any other; it differs in carrying a chunk queue that the
node fills through ``/v1/nodes/{id}/tasks/{task}/chunks`` while it runs. Chunks arrive
before the final result (the node posts them synchronously, the result rides its next
poll), so a caller sees every piece and then the whole output. A caller that goes away
withdraws the task; the node is told on its next chunk and stops generating.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping

import msgspec

from ..dispatch import Outcome, Task
from ..errors import DeadlineExceeded, HiveError
from ..telemetry import context_from_traceparent, traceparent_of
from .hive import FunctionEntry, Hive

__all__ = ["Event", "sse", "stream_events", "wants_stream"]

Event = tuple[str, bytes | str | HiveError]
"""("chunk", text) | ("result", output JSON) | ("error", HiveError)."""


def wants_stream(entry: FunctionEntry, inp: object, headers: Mapping[str, str]) -> bool:
    if not entry.runner.streams:
        return False
    return bool(getattr(inp, "stream", False)) or "text/event-stream" in headers.get("accept", "")


async def stream_events(hive: Hive, entry: FunctionEntry, body: bytes, headers: Mapping[str, str],
                        timeout_s: float) -> AsyncIterator[Event]:
    """Queue the task and yield its chunks, then its result or error; always ends."""
    loop = asyncio.get_running_loop()
    span = hive.tracer.start_span(f"invoke {entry.ref}", context=context_from_traceparent(headers.get("traceparent")))
    span.set_attribute("hive.stream", True)
    from .functions import _prefer

    task = Task(fn=entry.ref, input=body, traceparent=traceparent_of(span), future=loop.create_future(),
                prefer=_prefer(headers))
    task.chunks = asyncio.Queue()
    task.deadline = task.enqueued_at + timeout_s
    t0 = time.perf_counter()
    status, code = "failed", "internal"
    hive.dispatcher.submit(task)
    future = task.future
    assert future is not None
    getter: asyncio.Future[str] | None = None
    try:
        while True:
            getter = getter or asyncio.ensure_future(task.chunks.get())
            left = task.deadline - time.monotonic()
            done, _ = await asyncio.wait({getter, future}, timeout=max(left, 0), return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield "chunk", getter.result()
                getter = None
                continue
            if future in done:
                while not task.chunks.empty():  # chunks posted just before the result
                    yield "chunk", task.chunks.get_nowait()
                exc = future.exception()
                if exc is not None:
                    code = getattr(exc, "code", "internal")
                    yield "error", exc if isinstance(exc, HiveError) else HiveError(str(exc))
                    return
                outcome: Outcome = future.result()
                if outcome.error is not None:
                    code = outcome.error.code
                    yield "error", outcome.error
                    return
                status, code = "succeeded", ""
                yield "result", outcome.output or b"null"
                return
            hive.dispatcher.withdraw(task)
            status, code = "timeout", DeadlineExceeded.code
            yield "error", DeadlineExceeded(f"{entry.ref} did not finish within its deadline")
            return
    finally:
        if getter is not None:
            getter.cancel()
        if not future.done():  # the caller went away: the task is abandoned, the node is told
            future.cancel()
            hive.dispatcher.withdraw(task)
        hive.store.log_invocation(
            id=task.id, fn=task.fn, node_id=task.node_id, status=status, error_code=code or None, queued_ms=None,
            run_ms=None, total_ms=(time.perf_counter() - t0) * 1000, batch_size=1, trace_id=task.traceparent[3:35] or None,
        )
        span.set_attribute("hive.chunks", task.streamed)
        span.end()


def _frame(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


async def sse(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """ColabHive's own SSE: ``chunk`` events ``{"text"}``, then ``result`` (the output) or ``error``."""
    async for kind, value in events:
        if kind == "chunk":
            yield _frame("chunk", msgspec.json.encode({"text": value}))
        elif kind == "result":
            assert isinstance(value, bytes)
            yield _frame("result", value)
        else:
            assert isinstance(value, HiveError)
            yield _frame("error", msgspec.json.encode(value.to_body()))
