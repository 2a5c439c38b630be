"""The SDK's training jobs: ``Client(url).jobs.submit(spec)``, ``.get``, ``.list``, ``.metrics``,
``.cancel``, ``.follow``.

``submit`` takes a dict, a :class:`JobSpec` or a spec file. A file is decoded here with
:func:`decode_spec` first, so a misspelt field is named before any request is made (and
before a dataset is uploaded for it); it is then sent as JSON, the one format the gateway
takes. ``follow`` reads the job's Server-Sent Events and, when the connection drops (a
gateway restart, a proxy's idle cut), reconnects with ``Last-Event-ID`` so no event is seen
twice or missed; it stops after the job's final status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec

from ..errors import InvalidSpec
from ..sdk import _raise_for
from .spec import JobSpec, decode_spec

__all__ = ["FINAL", "JobEvent", "JobsClient", "read_spec"]

FINAL = ("succeeded", "failed", "cancelled")
RECONNECT_S = 60.0
"""How long ``follow`` keeps reconnecting without hearing a new event before it gives up."""


class JobEvent(msgspec.Struct, frozen=True):
    """One event of a job's stream, as the gateway recorded it."""

    kind: str
    """``metrics`` (a point: step, loss, ...), ``log`` (``{"line": ...}``) or ``status``
    (``{"status": ..., ...}``: queued, running, then succeeded, failed or cancelled)."""
    id: int
    """Its sequence number within the job: pass it as ``after`` to resume after it."""
    data: dict[str, Any]

    @property
    def final(self) -> bool:
        """True for the job's last event: its succeeded, failed or cancelled status."""
        return self.kind == "status" and self.data.get("status") in FINAL


def read_spec(path: str | Path, *, dataset_id: str | None = None) -> JobSpec:
    """Decode a ``.toml`` or ``.json`` spec file (InvalidSpec naming the field otherwise).

    ``dataset_id`` replaces (or supplies) ``dataset.id`` before the spec is checked, for a
    caller that uploads the dataset with the job.
    """
    p = Path(path)
    fmt = "json" if p.suffix.lower() == ".json" else "toml"
    raw = p.read_bytes()
    if dataset_id is None:
        return decode_spec(raw, fmt)[0]
    try:
        doc = msgspec.json.decode(raw) if fmt == "json" else msgspec.toml.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidSpec(f"not valid {fmt.upper()}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("dataset", {}), dict):
        raise InvalidSpec("expected a table with a [dataset] table", field="dataset")
    doc.setdefault("dataset", {})["id"] = dataset_id
    return decode_spec(msgspec.json.encode(doc), "json")[0]


def _body(spec: dict[str, Any] | JobSpec | str | Path) -> bytes:
    if isinstance(spec, (str, Path)):
        spec = read_spec(spec)
    return msgspec.json.encode(spec)


class JobsClient:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def submit(self, spec: dict[str, Any] | JobSpec | str | Path) -> dict[str, Any]:
        """Submit a job; its view (status ``queued``, ``position``), plus ``location``, its URL.

        A dict is sent as is (the gateway checks it); a path is decoded here first.
        """
        resp = self._http.post("/v1/jobs", content=_body(spec), headers={"content-type": "application/json"})
        _raise_for(resp)
        return resp.json() | {"location": str(resp.url.join(resp.headers["location"]))}

    def dry_run(self, spec: dict[str, Any] | JobSpec | str | Path) -> dict[str, Any]:
        """What the gateway would do with ``spec``, nothing written: for an experts job, its
        partitions (size, steps, distinctive terms, example prompts, what was merged and why)."""
        resp = self._http.post("/v1/jobs", params={"dry_run": "true"}, content=_body(spec),
                               headers={"content-type": "application/json"}, timeout=300)
        _raise_for(resp)
        return resp.json()

    def get(self, job_id: str) -> dict[str, Any]:
        """Status, spec, node, site, step/total_steps, progress, eta_s, last_metrics, result, error."""
        resp = self._http.get(f"/v1/jobs/{job_id}")
        _raise_for(resp)
        return resp.json()

    def list(self, status: str | None = None, *, page_size: int = 100) -> list[dict[str, Any]]:
        """The caller's jobs, newest first, every page (``status`` filters: queued, running, ...)."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": page_size, **({"status": status} if status else {})}
        while True:
            resp = self._http.get("/v1/jobs", params=params)
            _raise_for(resp)
            page = resp.json()
            out += page["jobs"]
            if page["next_cursor"] is None:
                return out
            params["cursor"] = page["next_cursor"]

    def metrics(self, job_id: str) -> list[dict[str, Any]]:
        """Every metric point, in step order."""
        resp = self._http.get(f"/v1/jobs/{job_id}/metrics")
        _raise_for(resp)
        return resp.json()["points"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """The cancelled job's view; Conflict if it had already ended."""
        resp = self._http.delete(f"/v1/jobs/{job_id}")
        _raise_for(resp)
        return resp.json()

    def events(self, job_id: str, after: int = 0) -> list[JobEvent]:
        """The events recorded so far after ``after`` (the stream without waiting for more)."""
        return list(self._stream(job_id, after, follow=False))

    def follow(self, job_id: str, after: int = 0) -> Iterator[JobEvent]:
        """Each event after ``after``, then each new one as it happens, until the final status.

        A dropped connection is reopened with ``Last-Event-ID``; after ``RECONNECT_S`` without
        a new event the last transport error is raised (the job itself goes on).
        """
        last_heard = time.monotonic()
        delay = 0.2
        while True:
            try:
                for ev in self._stream(job_id, after, follow=True):
                    after, last_heard, delay = ev.id, time.monotonic(), 0.2
                    yield ev
                    if ev.final:
                        return
            except httpx.TransportError:  # refused, reset, cut mid-stream, timed out
                if time.monotonic() - last_heard > RECONNECT_S:
                    raise
            time.sleep(delay)  # the stream ended early (a gateway restart) or broke: reopen it
            delay = min(delay * 2, 5.0)

    def _stream(self, job_id: str, after: int, *, follow: bool) -> Iterator[JobEvent]:
        headers = {"accept": "text/event-stream", "last-event-id": str(after)}
        params = None if follow else {"follow": "false"}
        with self._http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, params=params) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            seq, kind = 0, ""
            for line in resp.iter_lines():
                if line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    yield JobEvent(kind=kind, id=seq, data=json.loads(line[6:]))
