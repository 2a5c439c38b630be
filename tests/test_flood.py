"""A flood past the queue limit is refused with 429 and does not grow the gateway's memory.

Memory, not speed, is asserted here: the queue limit and the body limit are what keep a
gateway alive under a flood, so the test checks that refused requests leave nothing behind.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from hivectl import HiveProcess, descendants

QUEUE = 50
FLOOD = 4000


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


async def _flood(url: str) -> dict[int, int]:
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                r = await client.post(
                    "/v1/fn/echo", json={"text": f"flood {i} " + "x" * 19_000}, headers={"Prefer": "respond-async"}
                )
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 429:
                    assert r.headers.get("retry-after")
                    assert r.json()["error"]["code"] == "too_many_requests"

        await asyncio.gather(*(one(i) for i in range(FLOOD)))
    return statuses


def test_flood_is_refused_and_memory_stays_bounded(tmp_path: Path) -> None:
    # no node: nothing drains the queue, so everything past QUEUE must be refused
    h = HiveProcess(tmp_path, limits={"queue_size": QUEUE})
    try:
        h.start_gateway()
        assert h.gateway is not None
        pids = [h.gateway.pid, *descendants(h.gateway.pid)]
        asyncio.run(_flood(h.url))  # warm-up: allocator arenas, connection buffers
        before = _rss_mb(pids)
        statuses = asyncio.run(_flood(h.url))
        after = _rss_mb(pids)
        assert statuses.get(429, 0) == FLOOD  # the queue was already full from the warm-up
        assert h.get_json("/v1/fn/echo")["queue_depth"] == QUEUE
        # 4,000 refused 19 KB requests (76 MB) must not be retained: allow allocator noise only
        assert after - before < 30, f"gateway RSS grew {after - before:.1f} MB ({before:.0f} → {after:.0f})"
        assert h.http.get("/healthz").status_code == 200
    finally:
        h.stop()
