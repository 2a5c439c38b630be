"""A hand-driven "node" that speaks the node protocol over plain HTTP.

Tests use it where a real node cannot be steered: to take a task and then go silent, to
answer late, to answer with an error, or to poll without ever answering. Every call is a
real HTTP request to a real gateway; nothing is mocked.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

__all__ = ["FakeNode", "wait_task"]


class FakeNode:
    def __init__(self, url: str, name: str = "fake", token: str | None = None) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.name = name
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = self.http.post(
            "/v1/nodes/register",
            json={"name": name, "devices": [{"kind": "cpu", "index": 0}]},
            headers=headers,
        )
        assert r.status_code == 200, (r.status_code, r.text)
        body = r.json()
        self.id: str = body["node_id"]
        self.secret: str = body["node_secret"]

    def _auth(self, secret: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret if secret is None else secret}".strip()}

    def poll_raw(
        self,
        functions: list[str] | tuple[str, ...] = ("echo@1.0.0",),
        max_items: int = 1,
        wait_ms: int = 0,
        results: list[dict[str, Any]] | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        body = {"functions": list(functions), "max_items": max_items, "wait_ms": wait_ms, "results": results or []}
        return self.http.post(
            f"/v1/nodes/{self.id}/poll", json=body, headers=self._auth(secret), timeout=wait_ms / 1000 + 30
        )

    def poll(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Long-poll; the tasks handed out (each {"id", "fn", "input", ...})."""
        r = self.poll_raw(*args, **kwargs)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["tasks"]

    def post_results(self, results: list[dict[str, Any]], secret: str | None = None) -> httpx.Response:
        body = {"results": results, "max_items": 0, "wait_ms": 0}
        return self.http.post(f"/v1/nodes/{self.id}/results", json=body, headers=self._auth(secret))

    def heartbeat(self, functions: list[str] | tuple[str, ...] = ("echo@1.0.0",), secret: str | None = None) -> httpx.Response:
        return self.http.post(
            f"/v1/nodes/{self.id}/heartbeat", json={"functions": list(functions)}, headers=self._auth(secret)
        )

    def leave(self, secret: str | None = None) -> httpx.Response:
        return self.http.delete(f"/v1/nodes/{self.id}", headers=self._auth(secret))

    def close(self) -> None:
        self.http.close()


def wait_task(
    http: httpx.Client,
    task_id: str,
    statuses: tuple[str, ...] = ("succeeded",),
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll GET /v1/tasks/{id} until its status is one of ``statuses``; fail after ``timeout``."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            r = http.get(f"/v1/tasks/{task_id}", headers=headers, timeout=5)
            last = (r.status_code, r.text)
            if r.status_code == 200 and r.json()["status"] in statuses:
                return r.json()
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not reach {statuses} within {timeout}s; last seen: {last}")
