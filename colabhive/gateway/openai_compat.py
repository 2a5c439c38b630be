"""OpenAI-compatible routes, so existing OpenAI clients work against the hive unchanged.

``/v1/models``, ``/v1/embeddings`` and ``/v1/chat/completions`` (with streaming) translate
the OpenAI wire format to the hive's own functions and back; ``model`` names a function
(its preferred version) or pins one as name@version. Everything below the translation is
the ordinary call path: the same validation, queues, batching, nodes and traces.
Errors keep OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``), which
OpenAI clients turn into their own exception types.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from msgspec import Meta

from ..errors import HiveError, InvalidInput
from ..families import OpenAIRoute, family, serving
from .errors import decode_input
from .call import entry_for, prepare
from .hive import FunctionEntry, Hive
from .invoke import call_function
from .streaming import TaskStream
from .tenants import client_tenant
from .transport import Reply, ReplyResponse

__all__ = ["chat_completions", "embeddings", "models"]

JSON = "application/json"
MAX_INPUTS = 2048


class EmbeddingsRequest(msgspec.Struct, kw_only=True):
    model: Annotated[str, Meta(min_length=1)]
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


class ContentPart(msgspec.Struct, kw_only=True):
    type: Literal["text"]
    text: str


class ChatMessage(msgspec.Struct, kw_only=True):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    name: str | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ChatRequest(msgspec.Struct, kw_only=True):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Meta(ge=1, le=1)] = 1
    user: str | None = None


def _openai_error(exc: HiveError) -> Response:
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    body = {"error": {"message": exc.message, "type": kind, "param": exc.field, "code": exc.code}}
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
    return Response(content=msgspec.json.encode(body), status_code=exc.status, media_type=JSON, headers=headers)


async def _function(hive: Hive, request: Request, model: str, route: OpenAIRoute) -> tuple[FunctionEntry, str]:
    """The function ``model`` names, if its task family answers this route."""
    tenant = await client_tenant(hive, request)
    try:
        entry = entry_for(hive, model, tenant)
    except HiveError as exc:
        exc.field = "model"
        raise
    tasks = [f.name for f in serving(route)]
    if entry.manifest.task not in tasks:
        wanted = " or ".join(tasks) or f"any task (no task family serves /v1/{route})"
        raise InvalidInput(f"{model!r} is a {entry.manifest.task} function, not {wanted}", field="model")
    return entry, tenant


@get("/v1/models", tags=["openai"], summary="OpenAI-compatible: the functions, by name and by name@version")
async def models(request: Request) -> dict[str, Any]:
    hive: Hive = request.app.state.hive
    await client_tenant(hive, request)
    data = []
    for name, refs in hive.lifecycle.names.items():
        for mid in [name, *refs]:
            if "@" in mid and hive.lifecycle.state(mid) == "retired":
                continue
            task = hive.catalog[refs[-1] if mid == name else mid].manifest.task
            data.append({"id": mid, "object": "model", "created": int(hive.started_at), "owned_by": f"colabhive:{task}"})
    return {"object": "list", "data": data}


def _b64(vec: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


@post("/v1/embeddings", tags=["openai"], status_code=200, summary="OpenAI-compatible embeddings")
async def embeddings(request: Request) -> Response:
    hive: Hive = request.app.state.hive
    try:
        req = decode_input(await request.body(), EmbeddingsRequest, "embeddings")
        entry, tenant = await _function(hive, request, req.model, "embeddings")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or len(texts) > MAX_INPUTS:
            raise InvalidInput(f"input must hold 1 to {MAX_INPUTS} strings", field="input")
        fam = family(entry.manifest.task)
        bodies = [msgspec.json.encode(fam.text_body(t)) for t in texts]
        for i, b in enumerate(bodies):  # all or nothing: validate before queueing any
            decode_input(b, entry.input_type, f"input[{i}]")
        replies = await asyncio.gather(*(call_function(hive, entry.ref, b, request.headers, tenant) for b in bodies))
    except HiveError as exc:
        return _openai_error(exc)
    data, tokens = [], 0
    for i, r in enumerate(replies):
        out = msgspec.json.decode(r.body)
        vec = fam.vector_of(out)
        if req.dimensions is not None and req.dimensions != len(vec):
            return _openai_error(InvalidInput(f"{entry.ref} makes {len(vec)}-dimensional vectors", field="dimensions"))
        tokens += int(out.get("tokens", 0))
        data.append({"object": "embedding", "index": i, "embedding": _b64(vec) if req.encoding_format == "base64" else vec})
    body = {"object": "list", "data": data, "model": entry.ref, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return Response(content=msgspec.json.encode(body), media_type=JSON)


def _text(content: str | list[ContentPart]) -> str:
    return content if isinstance(content, str) else "".join(p.text for p in content)


def _generation_input(req: ChatRequest) -> dict[str, Any]:
    """The hive's generation input; its own schema then checks ranges and names the field."""
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)} for m in req.messages]
    inp: dict[str, Any] = {"messages": messages}
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    for key, value in (("max_tokens", max_tokens), ("temperature", req.temperature), ("top_p", req.top_p),
                       ("seed", req.seed)):
        if value is not None:
            inp[key] = value
    if req.stop is not None:
        inp["stop"] = [req.stop] if isinstance(req.stop, str) else req.stop
    return inp


def _completion(cid: str, created: int, model: str, out: dict[str, Any]) -> dict[str, Any]:
    usage = out.get("usage", {})
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": out["text"]},
                     "finish_reason": out.get("finish_reason", "stop"), "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


@post("/v1/chat/completions", tags=["openai"], status_code=200, summary="OpenAI-compatible chat (stream: SSE)")
async def chat_completions(request: Request) -> Response:
    hive: Hive = request.app.state.hive
    try:
        req = decode_input(await request.body(), ChatRequest, "chat.completions")
        entry, tenant = await _function(hive, request, req.model, "chat")
        body = msgspec.json.encode(_generation_input(req))
        decode_input(body, entry.input_type, "chat.completions")
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if req.stream:  # every check runs before the stream starts: a 429 or 503 is a status line
            call = await prepare(hive, entry.ref, body, request.headers, tenant, stream=True)
            usage = req.stream_options is not None and req.stream_options.include_usage
            frames = _ChatFrames(cid, created, entry.ref, usage)
            stream = TaskStream(hive, call, frames, prologue=[frames.frame({"role": "assistant", "content": ""})],
                                epilogue=[b"data: [DONE]\n\n"])
            return ReplyResponse(Reply(200, b"", stream=stream))
        reply = await call_function(hive, entry.ref, body, request.headers, tenant)
    except HiveError as exc:
        return _openai_error(exc)
    out = _completion(cid, created, entry.ref, msgspec.json.decode(reply.body))
    return Response(content=msgspec.json.encode(out), media_type=JSON)


class _ChatFrames:
    """OpenAI's chunk framing of a streamed task's events (a :data:`~.streaming.Framer`)."""

    def __init__(self, cid: str, created: int, model: str, usage: bool) -> None:
        self.cid, self.created, self.model, self.usage = cid, created, model, usage

    def frame(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {"id": self.cid, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return b"data: " + msgspec.json.encode(chunk) + b"\n\n"

    def __call__(self, kind: str, value: Any) -> list[bytes]:
        if kind == "chunk":
            return [self.frame({"content": value})]
        if kind == "result":
            out = msgspec.json.decode(value)
            extra = {"dtype": out["dtype"]} if out.get("dtype") else {}  # the node's, as X-Hive-Dtype says
            frames = [self.frame({}, out.get("finish_reason", "stop"), **extra)]
            if self.usage:
                u = _completion(self.cid, self.created, self.model, out)["usage"]
                chunk = {"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                         "model": self.model, "choices": [], "usage": u, **extra}
                frames.append(b"data: " + msgspec.json.encode(chunk) + b"\n\n")
            return frames
        exc: HiveError = value
        err = {"error": {"message": exc.message, "type": "server_error", "param": exc.field, "code": exc.code}}
        return [b"data: " + msgspec.json.encode(err) + b"\n\n"]
