"""The front door: the served ASGI app. Invoke and the node's poll are answered here, and
only here; every other route goes on to Litestar.

Measured on the 2-core bench box, Litestar's request/response machinery costs about
0.18 ms per request (plain Litestar echo p50 0.40 ms against 0.22 ms for raw ASGI on the
same Granian), and every call crosses the gateway twice (the caller's request and the
node's poll). So these two routes have one implementation, in raw ASGI, matched with or
without a trailing slash as Litestar matches its own; any other method on their paths
goes to Litestar, which answers 405 like it does everywhere. Their OpenAPI operations are
written by :func:`document`, since no Litestar handler serves them.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPI, OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Parameter, PathItem,
    RequestBody, Schema,
)

from ..errors import HiveError
from .hive import Hive
from .invoke import call_function
from .nodes import NODE_BODY_LIMIT, authenticate_node, poll_core
from .transport import INTERNAL, Reply, error_body, error_reply, not_allowed_message, read_body, send_reply

__all__ = ["FrontDoor", "document"]

log = logging.getLogger("colabhive.gateway")


def _route(path: str) -> tuple[str | None, str | None]:
    """(function name, None) for an invoke, (None, node id) for a poll, else (None, None)."""
    if path.endswith("/") and len(path) > 1:
        path = path[:-1]
    if path.startswith("/v1/fn/"):
        name = path[7:]
        if name and "/" not in name:
            return name, None
    elif path.startswith("/v1/nodes/") and path.endswith("/poll"):
        node_id = path[10:-5]
        if node_id and "/" not in node_id:
            return None, node_id
    return None, None


class FrontDoor:
    def __init__(self, app: Litestar, hive: Hive) -> None:
        self.app = app
        self.hive = hive
        self.state = app.state  # so tools that look for app.state find the hive

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            fn, node_id = _route(scope["path"])
            if scope["method"] == "POST" and (fn is not None or node_id is not None):
                return await self._serve(scope, receive, send, fn, node_id)
            if node_id is not None:  # the poll path has no other method (GET /v1/fn/{name} is Litestar's)
                reply = Reply(405, error_body("method_not_allowed", not_allowed_message(scope["method"], scope["path"])),
                              {"allow": "POST"})
                return await send_reply(send, receive, reply)
        await self.app(scope, receive, send)

    async def _serve(
        self, scope: dict[str, Any], receive: Any, send: Any, fn: str | None, node_id: str | None
    ) -> None:
        hive = self.hive
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if fn is not None:
                body = await read_body(receive, headers, hive.cfg.limits.max_body_bytes)
                reply = await call_function(hive, fn, body, headers)
            else:
                authenticate_node(hive, node_id or "", headers)  # credentials before the body is read
                body = await read_body(receive, headers, NODE_BODY_LIMIT)
                reply = await poll_core(hive, node_id or "", body, headers, receive)
        except HiveError as exc:
            reply = error_reply(exc)
        except Exception:  # never a dropped connection: a logged 500 in the usual shape
            log.exception("unhandled error on POST %s", scope["path"])
            reply = INTERNAL
        await send_reply(send, receive, reply)


_ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={"error": Schema(
        type=OpenAPIType.OBJECT, required=["code", "message"],
        properties={"code": Schema(type=OpenAPIType.STRING), "message": Schema(type=OpenAPIType.STRING),
                    "field": Schema(type=OpenAPIType.STRING)})},
)


def _json(description: str, schema: Schema | None = None, **headers: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=schema or Schema(type=OpenAPIType.OBJECT))},
        headers={h: OpenAPIHeader(description=d, schema=Schema(type=OpenAPIType.STRING)) for h, d in headers.items()}
        or None,
    )


def _header(name: str, description: str) -> Parameter:
    return Parameter(name=name, param_in="header", required=False, description=description,
                     schema=Schema(type=OpenAPIType.STRING))


def _path(name: str) -> Parameter:
    return Parameter(name=name, param_in="path", required=True, schema=Schema(type=OpenAPIType.STRING))


def _errors(*statuses: str) -> dict[str, OpenAPIResponse]:
    why = {"401": "Missing or wrong credential", "404": "Unknown function or version", "413": "Body too large",
           "422": "Invalid input, naming the field", "429": "Queue full (Retry-After)",
           "503": "Nothing can serve it now (Retry-After)", "504": "Deadline passed"}
    return {s: _json(why[s], _ERROR) for s in statuses}


INVOKE = Operation(
    tags=["functions"],
    summary="Invoke a function and wait for its output",
    description=(
        "The body is the function's input object (its JSON Schema is at GET /v1/fn/{name}). Headers: "
        "X-Timeout-Ms (deadline), X-Hive-Prefer (fast, green, cheap, balanced), Prefer: respond-async "
        "(202 + /v1/tasks/{id}), Idempotency-Key, traceparent, Accept: text/event-stream (a streamed call)."
    ),
    operation_id="V1FnNameInvoke",
    parameters=[
        _path("name"),
        _header("x-timeout-ms", "Deadline in milliseconds"),
        _header("x-hive-prefer", "Routing preference: fast, green, cheap or balanced"),
        _header("idempotency-key", "The same key returns the same task, never a second execution"),
    ],
    request_body=RequestBody(content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
                             required=True),
    responses={
        "200": _json("The function's output", **{"x-hive-version": "The version that answered",
                                                 "x-hive-node": "The node that ran it",
                                                 "x-hive-dtype": "The dtype the model ran in (bf16, fp32)"}),
        "202": _json("Accepted (Prefer: respond-async)", location="/v1/tasks/{id}"),
        **_errors("401", "404", "413", "422", "429", "503", "504"),
    },
)

POLL = Operation(
    tags=["nodes"],
    summary="A node posts its last batch's results and waits for the next batch",
    operation_id="V1NodesNodeIdPollPoll",
    parameters=[_path("node_id"), _header("authorization", "Bearer <node secret> from register")],
    request_body=RequestBody(content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
                             required=True),
    responses={"200": _json("Tasks leased to this node"), **_errors("401", "404", "413", "422")},
)


def document(openapi: OpenAPI) -> OpenAPI:
    """Add the front door's two operations to Litestar's generated schema."""
    paths = openapi.paths or {}
    fn = paths.setdefault("/v1/fn/{name}", PathItem())
    fn.post = INVOKE
    paths["/v1/nodes/{node_id}/poll"] = PathItem(post=POLL)
    openapi.paths = paths
    return openapi
