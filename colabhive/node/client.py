"""The node's HTTP client: one keep-alive connection per thread, outbound only.

A plain ``http.client`` connection keeps the per-request cost to tens of microseconds,
which matters because every batch is one round trip to the gateway.
"""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit

import msgspec

__all__ = ["GatewayClient", "GatewayError", "GatewayUnreachable"]


class GatewayUnreachable(ConnectionError):
    """The gateway could not be reached (down, restarting, or the network is out)."""


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class _ErrBody(msgspec.Struct):
    code: str = "unknown"
    message: str = ""


class _Err(msgspec.Struct):
    error: _ErrBody = msgspec.field(default_factory=_ErrBody)


class GatewayClient:
    def __init__(self, base_url: str, timeout_s: float, token: str = "") -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"gateway URL must be http(s)://host[:port], got {base_url!r}")
        self._cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        self._host = u.hostname
        self._port = u.port or (443 if u.scheme == "https" else 80)
        self._prefix = u.path.rstrip("/")
        self._timeout = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """Send one request; raise GatewayUnreachable or GatewayError, else return the body."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._cls(self._host, self._port, timeout=self._timeout)
            try:
                self._conn.request(method, self._prefix + path, body=body, headers=self._headers)
                resp = self._conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                # a keep-alive connection the server closed while idle: retry once on a fresh one
                if attempt == 0:
                    continue
                raise GatewayUnreachable(str(exc)) from exc
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                self.close()
                raise GatewayUnreachable(str(exc)) from exc
            if resp.status >= 400:
                try:
                    err = msgspec.json.decode(data, type=_Err).error
                except msgspec.MsgspecError:
                    err = _ErrBody("http_error", data[:200].decode("utf-8", "replace"))
                raise GatewayError(resp.status, err.code, err.message)
            return data
        raise AssertionError("unreachable")
