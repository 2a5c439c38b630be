"""The streamed strategy: the node posts output text as it is produced; the caller reads SSE.

A streamed task is queued like any other; it differs in carrying a chunk queue that the
node fills through ``/v1/nodes/{id}/tasks/{task}/chunks`` while it runs. Chunks arrive
before the final result (the node posts them synchronously, the result rides its next
poll), so a caller sees every piece and then the whole output. A caller that goes away
withdraws the task; the node is told on its next chunk and stops generating.

The task is queued when the stream is made, before the response starts: a full queue is
a 429 status line, not a 200 that drops. The response's headers wait for the first event
(:meth:`TaskStream.start`): the node's first piece says the dtype it runs the model in,
so a stream has ``X-Hive-Dtype`` as a plain answer does (and ``dtype`` on its result). The span ends and the log row is written in
:meth:`TaskStream.aclose`, which the transport calls however the stream ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec

from ..dispatch import Outcome
from ..errors import DeadlineExceeded, HiveError
from .call import Call, close_task, open_task, result_headers
from .hive import Hive
from .transport import Reply

__all__ = ["Event", "Framer", "TaskStream", "run_stream", "sse_frames"]

Event = tuple[str, bytes | str | HiveError]
"""("chunk", text) | ("result", output JSON) | ("error", HiveError)."""

Framer = Callable[[str, "bytes | str | HiveError"], list[bytes]]
"""Turns one event into the bytes a caller reads (ColabHive's SSE, or OpenAI's)."""


def _frame(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def sse_frames(kind: str, value: bytes | str | HiveError) -> list[bytes]:
    """ColabHive's own SSE: ``chunk`` events ``{"text"}``, then ``result`` (the output) or ``error``."""
    if kind == "chunk":
        return [_frame("chunk", msgspec.json.encode({"text": value}))]
    if kind == "result":
        assert isinstance(value, bytes)
        return [_frame("result", value)]
    assert isinstance(value, HiveError)
    return [_frame("error", msgspec.json.encode(value.to_body()))]


class TaskStream:
    """One streamed task as a :class:`~.transport.ReplyStream`: framed events, then the end."""

    def __init__(self, hive: Hive, call: Call, framer: Framer = sse_frames,
                 prologue: list[bytes] | None = None, epilogue: list[bytes] | None = None) -> None:
        self.hive = hive
        self.call = call
        self.framer = framer
        self.task, self.span = open_task(hive, call, **{"hive.stream": True})
        self.task.chunks = asyncio.Queue()
        self.task.future = asyncio.get_running_loop().create_future()
        self._t0 = time.perf_counter()
        self._outcome: Outcome | None = None
        self._error: HiveError | None = None
        self._out: list[bytes] = list(prologue or [])
        self._epilogue = list(epilogue or [])
        self._ended = False
        self._started = False
        self._closed = False
        self._getter: asyncio.Future[str] | None = None
        try:
            hive.dispatcher.submit(self.task)  # 429 here, before any response exists
        except HiveError as exc:
            self._closed = True
            close_task(hive, self.task, self.span, None, exc, self._t0)
            raise

    def __aiter__(self) -> TaskStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._out:
            if self._ended:
                raise StopAsyncIteration
            await self._pull()
        return self._out.pop(0)

    async def start(self) -> dict[str, str]:
        """Wait for the first event (the node's first piece, or the end), then the headers
        only the node could tell: ``x-hive-dtype``, the dtype it runs the model in. The
        transport sends the response's headers after this, so they say it (the prologue, if
        any, waits too: it goes out with the first piece)."""
        if not self._started:
            self._started = True
            await self._pull()
        return {"x-hive-dtype": self._dtype()} if self._dtype() else {}

    async def _pull(self) -> None:
        kind, value = await self._next_event()
        self._out.extend(self.framer(kind, value))
        if self._ended:  # the last event is out: the framing's own end follows it
            self._out.extend(self._epilogue)

    def _dtype(self) -> str:
        """The node's result says it; before that, the node's report taken at the first chunk."""
        return (self._outcome.dtype if self._outcome is not None else "") or self.task.dtype

    async def _next_event(self) -> Event:
        task, future = self.task, self.task.future
        assert task.chunks is not None and future is not None
        if future.done() and self._getter is None:
            return self._ending()
        self._getter = self._getter or asyncio.ensure_future(task.chunks.get())
        left = task.deadline - time.monotonic()
        done, _ = await asyncio.wait({self._getter, future}, timeout=max(left, 0),
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._getter in done:
            text = self._getter.result()
            self._getter = None
            return "chunk", text
        if future in done:
            self._getter.cancel()
            self._getter = None
            return self._ending()
        self.hive.dispatcher.withdraw(task)
        self._error = DeadlineExceeded(f"{task.fn} did not finish within its deadline")
        self._ended = True
        return "error", self._error

    def _ending(self) -> Event:
        """The last event, once the task's future holds its end."""
        future = self.task.future
        assert future is not None and self.task.chunks is not None
        if not self.task.chunks.empty():  # chunks posted just before the result
            return "chunk", self.task.chunks.get_nowait()
        self._ended = True
        exc = future.exception()
        if exc is not None:
            self._error = exc if isinstance(exc, HiveError) else HiveError(str(exc))
            return "error", self._error
        outcome: Outcome = future.result()
        self._outcome = outcome
        if outcome.error is not None:
            self._error = outcome.error
            return "error", outcome.error
        return "result", _with_dtype(outcome.output or b"null", self._dtype())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._getter is not None:
            self._getter.cancel()
        future = self.task.future
        assert future is not None
        status = None
        if not future.done():  # the caller went away: the task is abandoned, the node is told
            future.cancel()
            self.hive.dispatcher.withdraw(self.task)
            status = "failed"
        outcome = self._outcome if self._error is None else None
        close_task(self.hive, self.task, self.span, outcome, self._error, self._t0, status=status)


def _with_dtype(output: bytes, dtype: str) -> bytes:
    """The output of the final event with ``dtype`` beside its fields (where it is an object)."""
    if not dtype or not output.startswith(b"{"):
        return output
    out = msgspec.json.decode(output)
    if not isinstance(out, dict) or "dtype" in out:  # never over a field of the output's own
        return output
    return msgspec.json.encode(out | {"dtype": dtype})


async def run_stream(hive: Hive, call: Call) -> Reply:
    return Reply(200, b"", result_headers(call.ref, None), stream=TaskStream(hive, call))
