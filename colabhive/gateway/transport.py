"""HTTP transport, written once: reading a bounded body, sending a Reply (JSON or SSE), and
the error shape every route answers with.

The front door (``front.py``) and the Litestar routes both end here: a Litestar handler
that streams returns :class:`ReplyApp`, so SSE is written by the same code whichever way
the request came in, and an error is the same bytes whoever raised it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from litestar import Response

from ..errors import HiveError, PayloadTooLarge

__all__ = [
    "INTERNAL", "INTERNAL_MESSAGE", "TOO_LARGE_MESSAGE", "SSE_HEADERS", "PieceStream", "Reply", "ReplyApp",
    "ReplyResponse", "ReplyStream", "error_body", "error_reply", "not_allowed_message", "read_body", "send_reply",
]

TOO_LARGE_MESSAGE = "the request body is larger than this gateway accepts"
INTERNAL_MESSAGE = "the gateway hit an unexpected error; it is logged"
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}
_JSON = (b"content-type", b"application/json")


class ReplyStream(Protocol):
    """The body of a streamed reply: pieces to send, and a close that always cleans up.

    A plain async generator will not do: closing one that never started skips its
    ``finally``, so a caller who left before the first piece would leak its task and span.
    A stream may also have ``async start() -> dict[str, str]``: the response's headers wait
    for it and take what it returns (what is known only once the first event is in).
    """

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Reply:
    """A response computed without Litestar's Request/Response (what every invoke strategy returns)."""

    status: int
    body: bytes
    headers: dict[str, str] | None = None
    stream: ReplyStream | None = None
    """When set, the body is sent as these pieces (Server-Sent Events) instead of ``body``."""


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    err: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    return msgspec.json.encode({"error": err})


def error_reply(exc: HiveError) -> Reply:
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
    return Reply(exc.status, msgspec.json.encode(exc.to_body()), headers)


INTERNAL = Reply(500, error_body("internal", INTERNAL_MESSAGE))


def not_allowed_message(method: str, path: str) -> str:
    return f"{method} is not allowed on {path!r}"


async def read_body(receive: Any, headers: dict[str, str], limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it (or its declared length) passes ``limit``."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(TOO_LARGE_MESSAGE)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away mid-body
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(TOO_LARGE_MESSAGE)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _encoded(headers: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in (headers or {}).items()]


async def send_reply(send: Any, receive: Any, reply: Reply) -> None:
    if reply.stream is not None:
        return await _send_stream(send, receive, reply)
    out = [_JSON, (b"content-length", str(len(reply.body)).encode()), *_encoded(reply.headers)]
    await send({"type": "http.response.start", "status": reply.status, "headers": out})
    await send({"type": "http.response.body", "body": reply.body})


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_stream(send: Any, receive: Any, reply: Reply) -> None:
    """Server-Sent Events, one ASGI body message per event.

    The caller leaving is noticed on the receive channel (Granian does not fail the send),
    and stops the stream at once: closing it runs its clean-up, which abandons the task,
    so the node is told on its next chunk and stops generating.
    """
    stream = reply.stream
    assert stream is not None
    try:
        gone = asyncio.ensure_future(_disconnected(receive))
        pending: asyncio.Future[bytes] | None = None
        try:
            late: dict[str, str] = {}
            start = getattr(stream, "start", None)
            if start is not None:  # headers that wait for the first event (X-Hive-Dtype)
                first = asyncio.ensure_future(start())
                await asyncio.wait({first, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not first.done():  # the caller left before the first piece
                    first.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await first
                    return
                late = first.result()
            headers = _encoded(SSE_HEADERS | (reply.headers or {}) | late)
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            while True:
                pending = asyncio.ensure_future(stream.__anext__())
                await asyncio.wait({pending, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not pending.done():  # the caller left while we waited for the next piece
                    return
                try:
                    piece = pending.result()
                except StopAsyncIteration:
                    break
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                if gone.done():
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
    finally:
        await stream.aclose()


class ReplyApp:
    """A Reply as an ASGI app."""

    __slots__ = ("reply",)

    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send_reply(send, receive, self.reply)


class ReplyResponse(Response):  # type: ignore[type-arg]
    """What a Litestar handler returns to answer with a Reply (a stream above all): Litestar
    hands the connection to :func:`send_reply`, so SSE is written here and nowhere else."""

    __slots__ = ("reply",)

    def __init__(self, reply: Reply) -> None:
        super().__init__(content=b"", status_code=reply.status)
        self.reply = reply

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        return ReplyApp(self.reply)


class PieceStream:
    """A :class:`ReplyStream` over an async generator of pieces, with a clean-up that runs
    whether or not the generator ever started."""

    __slots__ = ("_gen", "_cleanup", "_closed")

    def __init__(self, gen: AsyncIterator[bytes], cleanup: Any = None) -> None:
        self._gen = gen
        self._cleanup = cleanup
        self._closed = False

    def __aiter__(self) -> PieceStream:
        return self

    async def __anext__(self) -> bytes:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._gen.aclose()  # type: ignore[attr-defined]
        finally:
            if self._cleanup is not None:
                result = self._cleanup()
                if asyncio.iscoroutine(result):
                    await result
