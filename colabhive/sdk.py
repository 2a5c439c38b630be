"""The Python SDK: ``Client(url).call(name, **inputs)`` and its async twin.

Errors come back as the same classes the gateway raised (see :mod:`colabhive.errors`),
carrying the gateway's code, message and, for bad input, the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from .errors import HiveError, error_for_code

if TYPE_CHECKING:
    from pathlib import Path

    from .datasets.client import DatasetsClient
    from .registry.client import Progress, VersionFiles
    from .training.client import JobsClient

__all__ = ["AsyncClient", "Client"]


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        err = resp.json()["error"]
        code, message, field = err["code"], err["message"], err.get("field")
    except (ValueError, KeyError, TypeError):
        code, message, field = "http_error", resp.text[:500] or resp.reason_phrase, None
    _raise_error(code, message, field, err.get("detail") if code != "http_error" else None, resp)


def _raise_error(code: str, message: str, field: str | None, detail: Any, resp: httpx.Response | None) -> None:
    cls = error_for_code(code)
    exc = cls(message, field=field, detail=detail)
    if resp is None:
        raise exc
    if cls is HiveError:  # an unknown code: keep the real status visible
        exc.status_code = resp.status_code  # type: ignore[attr-defined]
    retry = resp.headers.get("retry-after")
    exc.retry_after = int(retry) if retry and retry.isdigit() else None
    raise exc


def _headers(timeout_ms: int | None, traceparent: str | None) -> dict[str, str]:
    h: dict[str, str] = {}
    if timeout_ms is not None:
        h["X-Timeout-Ms"] = str(timeout_ms)
    if traceparent:
        h["traceparent"] = traceparent
    return h


class Client:
    """Synchronous client. Use as a context manager, or call ``close()``."""

    def __init__(self, url: str = "http://127.0.0.1:8700", *, timeout_s: float = 330.0, api_key: str = "") -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._api_key = api_key
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, headers=headers)

    def call(self, name: str, *, timeout_ms: int | None = None, traceparent: str | None = None, **inputs: Any) -> Any:
        """Invoke ``name`` with ``inputs`` and return its decoded output."""
        resp = self._http.post(f"/v1/fn/{name}", json=inputs, headers=_headers(timeout_ms, traceparent))
        _raise_for(resp)
        return resp.json()

    async def acall(self, name: str, **inputs: Any) -> Any:
        """The async form of :meth:`call`, for callers already inside an event loop.

        A connection pool belongs to one event loop, so each call gets its own short-lived
        client; use :class:`AsyncClient` to keep connections across many calls.
        """
        async with AsyncClient(self.url, timeout_s=self._timeout_s, api_key=self._api_key) as client:
            return await client.call(name, **inputs)

    def stream(self, name: str, *, timeout_ms: int | None = None, **inputs: Any) -> Iterator[str]:
        """Invoke a streaming function (text generation) and yield its text as it is made.

        The generator's return value (``StopIteration.value``, or ``yield from``) is the
        whole output, as :meth:`call` returns it (without the ``dtype`` the result event adds
        beside it); an error mid-stream is raised as the gateway's error class.
        """
        for event, data in self._events(f"/v1/fn/{name}", inputs, _headers(timeout_ms, None)):
            if event == "chunk":
                yield data["text"]
            elif event == "result":
                if isinstance(data, dict):
                    data.pop("dtype", None)
                return data
            elif event == "error":
                err = data["error"]
                _raise_error(err["code"], err["message"], err.get("field"), err.get("detail"), None)
        raise HiveError("the stream ended without a result")

    def _events(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Iterator[tuple[str, Any]]:
        """POST ``body`` asking for Server-Sent Events; yield (event, decoded data) as they come."""
        headers = headers | {"accept": "text/event-stream"}
        with self._http.stream("POST", path, json=body, headers=headers) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            event = ""
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    yield event, json.loads(line[6:])

    def functions(self) -> list[dict[str, Any]]:
        resp = self._http.get("/v1/fn")
        _raise_for(resp)
        return resp.json()["functions"]

    def auto(
        self,
        input: str | None = None,
        *,
        parts: list[Any] | None = None,
        prefer: str | None = None,
        budget_ms: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``POST /v1/auto``: the merged answer (``output``, one slot per part) and the ``plan``."""
        body: dict[str, Any] = {"input": input} if parts is None else {"parts": parts}
        if prefer is not None:
            body["prefer"] = prefer
        if budget_ms is not None:
            body["budget_ms"] = budget_ms
        resp = self._http.post("/v1/auto", json=body, params={"dry_run": "true"} if dry_run else None)
        _raise_for(resp)
        return resp.json()

    def auto_stream(self, input: str | None = None, *, parts: list[Any] | None = None) -> Iterator[tuple[str, Any]]:
        """``/v1/auto`` as it happens: ("plan", plan), then ("part", slot) as each part finishes,
        then ("done", the merged answer)."""
        body: dict[str, Any] = {"input": input} if parts is None else {"parts": parts}
        yield from self._events("/v1/auto", body, {})

    def evaluate(self, ref: str) -> dict[str, Any]:
        """Run ``name@version``'s declared evaluation on the hive; the report."""
        resp = self._http.post(f"/v1/registry/{ref}/eval")
        _raise_for(resp)
        return resp.json()

    def promote(self, ref: str, to: str = "preferred") -> dict[str, Any]:
        """Promote if the evaluation passes; GateFailed (with ``detail``) if it does not."""
        resp = self._http.post(f"/v1/registry/{ref}/promote", json={"to": to})
        _raise_for(resp)
        return resp.json()

    def rollback(self, name: str) -> dict[str, Any]:
        resp = self._http.post(f"/v1/registry/{name}/rollback")
        _raise_for(resp)
        return resp.json()

    def describe(self, name: str) -> dict[str, Any]:
        resp = self._http.get(f"/v1/fn/{name}")
        _raise_for(resp)
        return resp.json()

    def version_files(self, ref: str, into: Path, progress: Progress | None = None,
                      before: Callable[[str], None] | None = None) -> VersionFiles:
        """Download ``name@version``'s files (weights or adapter, with provenance) into ``into``;
        ``colabhive models export`` is built on it (see :func:`colabhive.registry.client.fetch_files`)."""
        from .registry.client import fetch_files

        return fetch_files(self._http, ref, into, progress, before)

    def nodes(self) -> list[dict[str, Any]]:
        resp = self._http.get("/v1/nodes")
        _raise_for(resp)
        return resp.json()["nodes"]

    @property
    def datasets(self) -> DatasetsClient:
        """Upload, list, show and delete datasets (see :mod:`colabhive.datasets.client`)."""
        from .datasets.client import DatasetsClient

        return DatasetsClient(self._http)

    @property
    def jobs(self) -> JobsClient:
        """Submit, follow, list and cancel training jobs (see :mod:`colabhive.training.client`)."""
        from .training.client import JobsClient

        return JobsClient(self._http)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """Asynchronous client with the same methods as :class:`Client`, awaited."""

    def __init__(self, url: str = "http://127.0.0.1:8700", *, timeout_s: float = 330.0, api_key: str = "") -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, headers=headers)

    async def call(
        self, name: str, *, timeout_ms: int | None = None, traceparent: str | None = None, **inputs: Any
    ) -> Any:
        resp = await self._http.post(f"/v1/fn/{name}", json=inputs, headers=_headers(timeout_ms, traceparent))
        _raise_for(resp)
        return resp.json()

    async def functions(self) -> list[dict[str, Any]]:
        resp = await self._http.get("/v1/fn")
        _raise_for(resp)
        return resp.json()["functions"]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
