"""Every error leaves the gateway as ``{"error": {"code", "message", "field"?}}``.

Litestar's own exceptions (unknown route, wrong method, body too large) are mapped onto
the same shape, and anything unexpected becomes a logged 500 rather than a dropped
connection.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from ..errors import HiveError, InvalidInput, InvalidParameter
from .transport import INTERNAL_MESSAGE, TOO_LARGE_MESSAGE, error_body, error_reply, not_allowed_message

__all__ = ["EXCEPTION_HANDLERS", "decode_input", "error_response"]

log = logging.getLogger("colabhive.gateway")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_response(status: int, code: str, message: str, field: str | None = None, **headers: str) -> Response:
    return Response(content=error_body(code, message, field), status_code=status, media_type="application/json",
                    headers=headers or None)


def _hive_error(_: Request, exc: HiveError) -> Response:
    reply = error_reply(exc)
    return Response(content=reply.body, status_code=reply.status, media_type="application/json",
                    headers=reply.headers)


def _http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if status == 413:
        message = TOO_LARGE_MESSAGE
    elif status == 404:
        message = f"no route {request.url.path!r}; see /docs for the API"
    elif status == 405:
        message = not_allowed_message(request.method, request.url.path)
    else:
        message = exc.detail or "request rejected"
    return error_response(status, _HTTP_CODES.get(status, "http_error"), message)


def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", INTERNAL_MESSAGE)


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_CHOICES = re.compile(r"^\^\((?P<alts>[\w.-]+(?:\|[\w.-]+)*)\)\$$")


def _allowed(annotation: Any, kwarg: Any) -> tuple[str, dict[str, Any]]:
    """What a parameter accepts, in words and as machine-readable constraints."""
    base = next((t for t in (bool, int, float, str) if annotation is t or t in getattr(annotation, "__args__", ())),
                None)
    words = _TYPE_WORDS.get(base, "a value of another form")  # type: ignore[arg-type]
    limits: dict[str, Any] = {"type": base.__name__} if base else {}
    if kwarg is None:
        return words, limits
    for k in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
        if (v := getattr(kwarg, k, None)) is not None:
            limits[k] = v
    lo, hi = kwarg.ge, kwarg.le
    if lo is not None and hi is not None:
        words += f" from {lo} to {hi}"
    else:
        for k, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if (v := getattr(kwarg, k, None)) is not None:
                words += f" {sign} {v}"
    if kwarg.min_length is not None or kwarg.max_length is not None:
        words += f" of {kwarg.min_length or 0} to {kwarg.max_length or 'any number of'} characters"
    if kwarg.pattern:
        m = _CHOICES.match(kwarg.pattern)
        words = f"one of {', '.join(m['alts'].split('|'))}" if m else f"{words} matching {kwarg.pattern!r}"
    return words, limits


def _parameter_problems(request: Request, exc: ValidationException) -> list[dict[str, Any]] | None:
    """Each failed parameter: its wire name, where it goes, what it accepts and what came; None
    when the failure is not about parameters (Litestar did not say which one)."""
    if not isinstance(exc.extra, list) or not exc.extra:
        return None
    try:
        fields = request.route_handler.parsed_fn_signature.parameters
    except AttributeError:
        fields = {}
    out = []
    for item in exc.extra:
        if not isinstance(item, dict) or "key" not in item:
            return None
        key = str(item["key"])
        source = str(getattr(item.get("source"), "value", item.get("source") or "query"))
        fd = fields.get(key)
        kwarg = getattr(fd, "kwarg_definition", None)
        name = getattr(kwarg, source, None) or key if source in ("query", "header", "cookie") else key
        allowed, limits = _allowed(getattr(fd, "annotation", None), kwarg)
        if source == "query":
            got = request.query_params.get(name)
        elif source == "path":
            got = request.path_params.get(name)
        else:
            got = None
        out.append({"name": name, "in": source, "allowed": allowed, "constraints": limits,
                    "got": got, "problem": str(item.get("message", ""))})
    return out


def _validation_error(request: Request, exc: ValidationException) -> Response:
    """A parameter Litestar rejected (``?limit=100000``): name it and say what it takes."""
    try:
        problems = _parameter_problems(request, exc)
    except Exception:  # describing the problem must never turn a 400 into a 500
        log.exception("could not describe a parameter validation failure on %s", request.url.path)
        problems = None
    if not problems:
        return _http_error(request, exc)
    sentences = [
        f"{p['in']} parameter `{p['name']}` must be {p['allowed']}"
        + (f"; got {p['got']!r}" if p["got"] is not None else "")
        for p in problems
    ]
    err = InvalidParameter("; ".join(sentences), field=problems[0]["name"], detail={"parameters": problems})
    return _hive_error(request, err)


EXCEPTION_HANDLERS = {HiveError: _hive_error, ValidationException: _validation_error, HTTPException: _http_error,
                      Exception: _unexpected}

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:missing required field|unknown field) `(?P<f>[^`]+)`")


def _field_of(message: str) -> tuple[str, str]:
    """Split msgspec's message into (field path, human text)."""
    path = ""
    m = _AT.search(message)
    if m:
        path = m["path"].lstrip(".")
        message = message[: m.start()]
    f = _FIELD.search(message)
    if f:
        path = f"{path}.{f['f']}" if path else f["f"]
    return path, message


def decode_input(body: bytes, typ: type[msgspec.Struct], what: str):  # -> instance of typ
    """Validate a JSON body; 422 naming the field on any problem."""
    if not body.strip():
        raise InvalidInput(f"{what}: the request body is empty; send a JSON object", field="$")
    try:
        return msgspec.json.decode(body, type=typ)
    except msgspec.ValidationError as exc:
        path, text = _field_of(str(exc))
        if text.startswith("Expected `object`"):
            raise InvalidInput(f"{what}: the body must be a JSON object", field="$") from None
        if text.endswith("length >= 1"):
            text = f"`{path}` must not be empty"
        elif "length >=" in text:
            text = f"`{path}` is too short ({text.removeprefix('Expected ')})"
        elif "length <=" in text:
            text = f"`{path}` is too long ({text.removeprefix('Expected ')})"
        elif text.startswith("Object contains unknown field") and not path.count("."):
            text += f"; it takes: {', '.join(getattr(typ, '__struct_fields__', ()))}"
        raise InvalidInput(f"{what}: {text}", field=path or "$") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"{what}: the body is not valid JSON ({exc})", field="$") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{what}: the body is not valid UTF-8", field="$") from None
