"""The dispatcher in isolation: queues, batching caps, leases, requeue and exactly-one results.

These run the real Dispatcher and NodeRegistry in one event loop (no processes), so the
edge cases that are hard to provoke over HTTP (a lease lapsing between two lines) are
pinned down exactly.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from colabhive.dispatch import Dispatcher, NodeRegistry, Task
from colabhive.errors import NoCapacity, TaskFailed, TooManyRequests
from colabhive.wire import Device, ErrorBody, TaskResult


def _hive(**kw: object) -> tuple[Dispatcher, NodeRegistry]:
    reg = NodeRegistry(node_timeout_s=5.0)
    opts = {"queue_size": 100, "lease_s": 30.0, "max_attempts": 2}
    opts.update(kw)
    return Dispatcher(reg, **opts), reg  # type: ignore[arg-type]


def _node(reg: NodeRegistry, fns: set[str]):  # -> NodeRecord
    rec = reg.add("n", "local", "h", [Device(kind="cpu")])
    rec.functions = frozenset(fns)
    return rec


def _ok(task_id: str, text: str = "x") -> TaskResult:
    return TaskResult(id=task_id, output=msgspec.Raw(msgspec.json.encode({"text": text})))


def run(coro):  # a fresh loop per test keeps futures from leaking between tests
    return asyncio.run(coro)


def test_poll_takes_at_most_max_items_and_max_batch() -> None:
    async def go() -> None:
        d, reg = _hive(max_batch=lambda fn: 3)
        node = _node(reg, {"echo"})
        for i in range(10):
            d.submit(Task(fn="echo", input=b'{"text":"%d"}' % i))
        got = await d.poll(node, node.functions, max_items=8, wait_s=0)
        assert len(got) == 3  # the manifest's max_batch caps one poll
        got = await d.poll(node, node.functions, max_items=2, wait_s=0)
        assert len(got) == 2  # the node's capacity caps it too
        assert d.depth("echo") == 5

    run(go())


def test_poll_room_caps_each_function_it_lists() -> None:
    """A node's continuous batch with 2 free rows brings at most 2; with none, none, while
    functions it does not list are not limited."""
    async def go() -> None:
        d, reg = _hive(max_batch=lambda fn: 32)
        node = _node(reg, {"gen", "echo"})
        for i in range(5):
            d.submit(Task(fn="gen", input=b"{}"))
            d.submit(Task(fn="echo", input=b"{}"))
        got = await d.poll(node, node.functions, max_items=32, wait_s=0, room={"gen": 2})
        assert sorted(t.fn for t in got) == ["echo"] * 5 + ["gen"] * 2
        d.submit(Task(fn="echo", input=b"{}"))
        got = await d.poll(node, node.functions, max_items=32, wait_s=0, room={"gen": 0})
        assert [t.fn for t in got] == ["echo"] and d.depth("gen") == 3

    run(go())


def test_a_poll_without_room_for_a_function_is_not_woken_for_it() -> None:
    """The task goes to the node that has a free row; the full node's poll waits on."""
    async def go() -> None:
        d, reg = _hive()
        full = reg.add("full", "local", "h", [Device(kind="cpu")])
        free = reg.add("free", "local", "h", [Device(kind="cpu")])
        full.functions = free.functions = frozenset({"gen"})
        full_poll = asyncio.create_task(d.poll(full, full.functions, max_items=4, wait_s=0.3, room={"gen": 0}))
        await asyncio.sleep(0.01)  # parked first: a room-blind dispatcher would wake it first
        free_poll = asyncio.create_task(d.poll(free, free.functions, max_items=4, wait_s=5, room={"gen": 4}))
        await asyncio.sleep(0.01)
        d.submit(Task(fn="gen", input=b"{}"))
        assert len(await free_poll) == 1
        assert await full_poll == []

    run(go())


def test_parked_poll_wakes_on_submit() -> None:
    async def go() -> None:
        d, reg = _hive()
        node = _node(reg, {"echo"})
        poll = asyncio.create_task(d.poll(node, node.functions, max_items=4, wait_s=5))
        await asyncio.sleep(0.01)
        t0 = time.monotonic()
        d.submit(Task(fn="echo", input=b"{}"))
        got = await poll
        assert len(got) == 1 and time.monotonic() - t0 < 0.5

    run(go())


def test_poll_times_out_empty() -> None:
    async def go() -> None:
        d, reg = _hive()
        node = _node(reg, {"echo"})
        t0 = time.monotonic()
        assert await d.poll(node, node.functions, max_items=4, wait_s=0.05) == []
        assert 0.04 < time.monotonic() - t0 < 1.0

    run(go())


def test_queue_limit_is_429() -> None:
    d, _ = _hive(queue_size=2)
    d.submit(Task(fn="echo", input=b"{}"))
    d.submit(Task(fn="echo", input=b"{}"))
    with pytest.raises(TooManyRequests) as exc:
        d.submit(Task(fn="echo", input=b"{}"))
    assert exc.value.retry_after == 1
    d.submit(Task(fn="echo", input=b"{}"), force=True)  # journal replay is never refused
    assert d.depth("echo") == 3


def test_reserved_slots_count_against_the_limit_while_their_journal_write_awaits() -> None:
    """Durable calls hold a slot across an await; concurrent ones must not overshoot the limit."""

    async def go() -> None:
        d, _ = _hive(queue_size=5)
        admitted = refused = 0

        async def durable_call(i: int) -> None:
            nonlocal admitted, refused
            try:
                with d.reserve("echo"):
                    await asyncio.sleep(0.01)  # the journal write
                    d.submit(Task(fn="echo", input=b'{"text":"%d"}' % i), force=True)
                    admitted += 1
            except TooManyRequests:
                refused += 1

        await asyncio.gather(*(durable_call(i) for i in range(20)))
        assert (admitted, refused) == (5, 15)
        assert d.depth("echo") == 5
        with pytest.raises(TooManyRequests):  # a plain call sees the full queue too
            d.submit(Task(fn="echo", input=b"{}"))

        d2, _ = _hive(queue_size=1)
        with d2.reserve("echo"):  # a slot held by a journal write is not free to a plain call
            with pytest.raises(TooManyRequests):
                d2.submit(Task(fn="echo", input=b"{}"))
        d2.submit(Task(fn="echo", input=b"{}"))  # released (nothing was queued under it)

    run(go())


def test_result_resolves_future_once_and_late_results_are_dropped() -> None:
    async def go() -> None:
        d, reg = _hive()
        a = _node(reg, {"echo"})
        b = _node(reg, {"echo"})
        t = Task(fn="echo", input=b"{}", future=asyncio.get_running_loop().create_future())
        d.submit(t)
        (taken,) = await d.poll(a, a.functions, 1, 0)
        assert d.complete(b, _ok(taken.id)) is None  # not b's task
        assert d.complete(a, _ok(taken.id, "first")) is t
        assert d.complete(a, _ok(taken.id, "again")) is None  # already recorded
        outcome = await t.future
        assert msgspec.json.decode(outcome.output) == {"text": "first"}
        assert d.dropped_results == 2

    run(go())


def test_lapsed_lease_requeues_then_gives_up_after_max_attempts() -> None:
    async def go() -> None:
        d, reg = _hive(lease_s=0.0, max_attempts=2)
        node = _node(reg, {"echo"})
        t = Task(fn="echo", input=b"{}", future=asyncio.get_running_loop().create_future())
        d.submit(t)
        await d.poll(node, node.functions, 1, 0)
        d.reap(time.monotonic() + 1)  # lease lapsed: back on the queue
        assert d.depth("echo") == 1 and t.node_id is None
        await d.poll(node, node.functions, 1, 0)
        d.reap(time.monotonic() + 1)  # second lapse: out of attempts
        with pytest.raises(TaskFailed, match="2 attempts"):
            await t.future
        assert d.complete(node, _ok(t.id)) is None  # the late result is dropped

    run(go())


def test_gone_node_fails_sync_callers_but_keeps_durable_tasks() -> None:
    async def go() -> None:
        d, reg = _hive()
        node = _node(reg, {"echo"})
        loop = asyncio.get_running_loop()
        sync = Task(fn="echo", input=b"{}", future=loop.create_future())
        durable = Task(fn="echo", input=b"{}", durable=True)
        d.submit(sync)
        d.submit(durable)
        node.gone = True
        d.reap(time.monotonic())
        with pytest.raises(NoCapacity):
            await sync.future
        assert d.depth("echo") == 1  # the durable task waits for a node to come back

    run(go())


def test_error_result_is_task_failed_and_durable_finish_called_once() -> None:
    async def go() -> None:
        d, reg = _hive()
        node = _node(reg, {"echo"})
        finished: list[tuple[str, object]] = []
        d.on_finish = lambda t, o, e: finished.append((t.id, o.error if o else e))
        t = Task(fn="echo", input=b"{}", durable=True)
        d.submit(t)
        await d.poll(node, node.functions, 1, 0)
        d.complete(node, TaskResult(id=t.id, error=ErrorBody(code="model_error", message="boom")))
        d.complete(node, TaskResult(id=t.id, error=ErrorBody(code="model_error", message="boom")))
        assert len(finished) == 1
        assert isinstance(finished[0][1], TaskFailed) and "boom" in str(finished[0][1])

    run(go())


def test_cancelled_durable_task_is_never_handed_out() -> None:
    async def go() -> None:
        d, reg = _hive()
        node = _node(reg, {"echo"})
        t = Task(fn="echo", input=b"{}", durable=True)
        d.submit(t)
        assert d.cancel(t.id) is t
        assert await d.poll(node, node.functions, 4, 0) == []

    run(go())


def test_per_function_queue_limit_from_the_manifest() -> None:
    d, _ = _hive(queue_size=100, queue_limit=lambda fn: 1 if fn == "small" else 100)
    d.submit(Task(fn="small", input=b"{}"))
    with pytest.raises(TooManyRequests, match="1 tasks"):
        d.submit(Task(fn="small", input=b"{}"))
    for _ in range(5):
        d.submit(Task(fn="echo", input=b"{}"))  # other functions keep hive.toml's limit
    assert d.depth("echo") == 5


def test_batch_fill_waits_only_after_a_bigger_batch() -> None:
    async def go() -> None:
        d, reg = _hive(max_wait_ms=lambda fn: 200.0, max_batch=lambda fn: 8)
        node = _node(reg, {"embed"})
        d.submit(Task(fn="embed", input=b"{}"))
        t0 = time.monotonic()
        assert len(await d.poll(node, node.functions, 8, 0)) == 1
        assert time.monotonic() - t0 < 0.1  # a lone caller pays no batching wait
        for _ in range(4):
            d.submit(Task(fn="embed", input=b"{}"))
        assert len(await d.poll(node, node.functions, 8, 0)) == 4
        # under load: the next poll finds 1 task and waits for the batch to refill
        d.submit(Task(fn="embed", input=b"{}"))

        async def late_arrivals() -> None:
            await asyncio.sleep(0.02)
            for _ in range(3):
                d.submit(Task(fn="embed", input=b"{}"))

        asyncio.get_running_loop().create_task(late_arrivals())
        got = await d.poll(node, node.functions, 8, 0)
        assert len(got) == 4

    run(go())


def test_a_gone_nodes_parked_poll_never_takes_work() -> None:
    async def go() -> None:
        d, reg = _hive()
        dead = _node(reg, {"echo"})
        parked = asyncio.create_task(d.poll(dead, dead.functions, 4, 5))
        await asyncio.sleep(0.01)
        dead.gone = True  # its connection dropped while it waited
        t = Task(fn="echo", input=b"{}", durable=True)
        d.submit(t)
        assert await parked == []
        assert t.attempts == [] and d.depth("echo") == 1

    run(go())
