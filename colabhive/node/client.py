"""The node's HTTP/1.1 client: one keep-alive socket per thread, outbound only.

Every batch costs one round trip to the gateway, so the client is on the critical path
of every call. ``http.client`` spends ~100 µs per response parsing headers through the
email package; this client reads the status line and Content-Length itself and sends
each request in a single ``sendall`` with TCP_NODELAY, which keeps a round trip on
loopback to a few tens of microseconds of Python. TLS goes through ``ssl`` when the URL
is https.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import msgspec

from ..errors import ConnectionClosed, GatewayError, GatewayUnreachable

__all__ = ["GatewayClient", "GatewayError", "GatewayUnreachable"]

_MAX_HEADER = 64 * 1024


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
        self._tls = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port or (443 if self._tls else 80)
        self._prefix = u.path.rstrip("/")
        self._timeout = timeout_s
        self._sock: socket.socket | None = None
        self._buf = b""
        self._host_header = self._host if u.port is None else f"{self._host}:{self._port}"
        self.set_token(token)

    def set_token(self, token: str) -> None:
        """The bearer credential for later requests (join token, then the node secret)."""
        extra = f"Authorization: Bearer {token}\r\n" if token else ""
        self._head = f"Host: {self._host_header}\r\nContent-Type: application/json\r\n{extra}".encode()

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
        return sock

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """Send one request; raise GatewayUnreachable or GatewayError, else return the body."""
        payload = body or b""
        msg = (
            f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode()
            + self._head
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        for attempt in (0, 1):
            fresh = self._sock is None
            try:
                if self._sock is None:
                    self._sock = self._connect()
                self._sock.sendall(msg)
                status, data, keep = self._read_response()
            except ConnectionClosed as exc:
                self.close()
                # a kept-alive connection the server closed while idle: retry once on a fresh one
                if attempt == 0 and not fresh:
                    continue
                raise GatewayUnreachable("the gateway closed the connection") from exc
            except (OSError, ValueError) as exc:
                self.close()
                raise GatewayUnreachable(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                # interrupted mid-request (a signal): the connection is mid-exchange, so drop it;
                # a request sent on it next would queue behind the abandoned one
                self.close()
                raise
            if not keep:
                self.close()
            if status >= 400:
                try:
                    err = msgspec.json.decode(data, type=_Err).error
                except msgspec.MsgspecError:
                    err = _ErrBody("http_error", data[:200].decode("utf-8", "replace"))
                raise GatewayError.of_reply(status, err.code, err.message)
            return data
        raise AssertionError("unreachable")

    def _recv(self) -> bytes:
        assert self._sock is not None
        chunk = self._sock.recv(262144)
        if not chunk:
            raise ConnectionClosed
        return chunk

    def _read_response(self) -> tuple[int, bytes, bool]:
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > _MAX_HEADER:
                raise ValueError("response headers too large")
            try:
                buf += self._recv()
            except ConnectionClosed:
                if buf:
                    raise ValueError("connection closed mid-response") from None
                raise
        head = buf[:end].decode("latin-1").split("\r\n")
        rest = buf[end + 4 :]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x response: {head[0][:80]!r}")
        status = int(parts[1])
        length = -1
        chunked = False
        keep = parts[0] == "HTTP/1.1"
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection":
                keep = value.strip().lower() != "close"
        if chunked:
            data, rest = self._read_chunked(rest)
        elif length >= 0:
            while len(rest) < length:
                rest += self._recv_or_fail()
            data, rest = rest[:length], rest[length:]
        else:  # body delimited by close
            while True:
                try:
                    rest += self._recv()
                except ConnectionClosed:
                    break
            data, rest, keep = rest, b"", False
        self._buf = rest
        return status, data, keep

    def _recv_or_fail(self) -> bytes:
        try:
            return self._recv()
        except ConnectionClosed:
            raise ValueError("connection closed mid-body") from None

    def _read_chunked(self, rest: bytes) -> tuple[bytes, bytes]:
        out = bytearray()
        while True:
            while (i := rest.find(b"\r\n")) < 0:
                rest += self._recv_or_fail()
            size = int(rest[:i].split(b";")[0], 16)
            rest = rest[i + 2 :]
            while len(rest) < size + 2:
                rest += self._recv_or_fail()
            if size == 0:
                # trailers end with an empty line; none are sent by Granian
                return bytes(out), rest[2:]
            out += rest[:size]
            rest = rest[size + 2 :]
