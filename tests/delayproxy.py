"""A TCP proxy that adds a fixed delay each way: a far site's network, where the kernel has
no netem. Each chunk is forwarded ``delay_ms`` after it arrived, in order, so one round
trip costs 2 × delay_ms on top of the real one (requests and replies are small here)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

__all__ = ["DelayProxy"]


class DelayProxy:
    def __init__(self, listen_host: str, target_host: str, target_port: int, delay_ms: float) -> None:
        self.listen_host = listen_host
        self.target = (target_host, target_port)
        self.delay_s = delay_ms / 1000
        with socket.socket() as s:
            s.bind((listen_host, 0))
            self.port = s.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self._loop) if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, self.listen_host, self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(self._shutdown())  # no connection task left pending
            self._loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Read as data comes; deliver each piece delay_s after it came (a queue keeps order)."""
        q: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await q.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                dst.write(data)
                await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await src.read(65536):
                q.put_nowait((time.monotonic() + self.delay_s, data))
        except OSError:
            pass
        finally:
            q.put_nowait((0.0, b""))
            await sender
