"""Per-function queues, long-poll hand-out and the waiters of sync calls.

The hot path is in memory: a sync call puts a Task on its function's deque, wakes one
parked long-poll that serves the function, and awaits a future; the node's next request
carries the result, which resolves that future (``leases.py``: results, leases and the
reaper; ``targeting.py``: which node each task waits for).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import msgspec

from ..errors import HiveError, TooManyRequests
from ..wire import TaskAssignment
from .leases import Leases
from .node_registry import NodeRecord, NodeRegistry
from .routing import Router
from .targeting import Targeting
from .task import Outcome, Task

__all__ = ["Dispatcher", "Outcome", "Task"]


@dataclass(slots=True, eq=False)
class _Poller:
    node: NodeRecord
    functions: frozenset[str]
    wake: asyncio.Future[None]
    room: dict[str, int]
    """What this poll may still take of each function it lists (see ``PollRequest.room``)."""

    def takes(self, fn: str) -> bool:
        # live: a heartbeat may have added functions since it parked
        return fn in self.node.functions and self.room.get(fn, 1) > 0


class Dispatcher(Leases, Targeting):
    def __init__(
        self,
        nodes: NodeRegistry,
        *,
        queue_size: int,
        lease_s: float,
        max_attempts: int,
        max_wait_ms: Callable[[str], float] = lambda fn: 0.0,
        max_batch: Callable[[str], int] = lambda fn: 1 << 30,
        queue_limit: Callable[[str], int] | None = None,
        router: Router | None = None,
    ) -> None:
        self.nodes = nodes
        self.queue_size = queue_size
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.max_wait_ms = max_wait_ms
        self.max_batch = max_batch
        self.queue_limit = queue_limit or (lambda fn: queue_size)
        self.router = router
        self.queues: dict[str, deque[Task]] = {}
        self._reserved: dict[str, int] = {}
        """fn → slots held by durable calls still writing their journal row (see ``reserve``)."""
        self._stalled: set[str] = set()
        """Nodes that let a lease lapse while still registered: not routed to (and their
        queued tasks may be taken by others) until they poll or deliver again."""
        self._parked: dict[str, int] = {}
        """node id → its long-polls waiting right now (an idle node ready for work)."""
        self._last_poll: dict[str, float] = {}
        self._targeted: dict[tuple[str, str], int] = {}
        """(node id, fn) → queued tasks routed to that node (what its queue looks like to the router)."""
        self.in_flight: dict[str, Task] = {}
        self._pollers: deque[_Poller] = deque()
        self.dropped_results = 0
        self.draining = False
        self._last_batch: dict[str, int] = {}
        self.durable: dict[str, Task] = {}
        """Durable tasks not yet finished, by id (for cancellation and status)."""
        self.on_handout: Callable[[Task], None] = lambda t: None
        self.on_finish: Callable[[Task, Outcome | None, HiveError | None], None] = lambda t, o, e: None

    # ---- client side -------------------------------------------------------------------
    def submit(self, task: Task, *, force: bool = False) -> None:
        """Queue a task; ``force`` skips the size limit (replaying the journal after a restart)."""
        if not force:
            self.check_room(task.fn)
        q = self.queues.get(task.fn)
        if q is None:
            q = self.queues[task.fn] = deque()
        if task.durable:
            self.durable[task.id] = task
        self._route(task)
        q.append(task)
        self._wake_one(task)

    def check_room(self, fn: str) -> None:
        """429 when ``fn``'s queue (counting slots held by journal writes) is at its limit."""
        limit = self.queue_limit(fn)
        if self.depth(fn) + self._reserved.get(fn, 0) >= limit:
            raise TooManyRequests(f"the queue of {fn!r} is full ({limit} tasks); retry later", retry_after=1)

    @contextmanager
    def reserve(self, fn: str) -> Iterator[None]:
        """Hold one queue slot across an await (the journal write of a durable call).

        Without it, every call that checked the depth before any of them reached ``submit``
        would pass, and the queue would overshoot its limit by the number in flight.
        """
        self.check_room(fn)
        self._reserved[fn] = self._reserved.get(fn, 0) + 1
        try:
            yield
        finally:
            left = self._reserved[fn] - 1
            if left:
                self._reserved[fn] = left
            else:
                del self._reserved[fn]

    def _wake_one(self, task: Task) -> None:
        """Wake the parked poll of the task's node; failing that, one that may take it."""
        fn = task.fn
        pollers = self._pollers
        fallback: _Poller | None = None
        for _ in range(len(pollers)):
            p = pollers.popleft()
            if p.wake.done():
                continue
            if p.node.gone:  # its connection dropped: never hand it work; let it return empty
                p.wake.set_result(None)
                continue
            if p.takes(fn) and (task.target is None or task.target == p.node.id):
                p.wake.set_result(None)
                if fallback is not None:
                    pollers.appendleft(fallback)
                return
            if fallback is None and p.takes(fn) and self._may_take(task, p.node):
                fallback = p
                continue
            pollers.append(p)
        if fallback is not None:
            fallback.wake.set_result(None)

    def wake_node(self, node_id: str) -> None:
        """Send that node's parked long-polls back now (it has news: a new hosting set)."""
        for p in self._pollers:
            if p.node.id == node_id and not p.wake.done():
                p.wake.set_result(None)

    def wake_all(self) -> None:
        """Send every parked long-poll back to its node (empty unless work arrived)."""
        while self._pollers:
            p = self._pollers.popleft()
            if not p.wake.done():
                p.wake.set_result(None)

    def cancel(self, task_id: str) -> Task | None:
        """Cancel a durable task: out of its queue if waiting, its result dropped if running."""
        t = self.durable.pop(task_id, None)
        if t is None:
            return None
        t.cancelled = True
        self.withdraw(t)
        return t


    def withdraw(self, task: Task) -> bool:
        """Take a task back if no node has it yet (a caller's deadline passed)."""
        q = self.queues.get(task.fn)
        if q is not None and task.node_id is None:
            try:
                q.remove(task)
            except ValueError:
                return False
            self._untarget(task)
            return True
        return False

    # ---- node side ---------------------------------------------------------------------
    def _take(
        self, node: NodeRecord, functions: frozenset[str], max_items: int, room: dict[str, int] | None = None
    ) -> list[Task]:
        """Up to ``max_items`` tasks, at most max_batch (and ``room``, which is counted down) per function."""
        out: list[Task] = []
        now = time.monotonic()
        lease = now + self.lease_s
        for fn in functions:
            q = self.queues.get(fn)
            if not q:
                continue
            left = room.get(fn) if room is not None else None
            if left is not None and left <= 0:
                continue
            start = len(out)
            cap = min(max_items, len(out) + self.max_batch(fn))
            if left is not None:
                cap = min(cap, len(out) + left)
            skipped: list[Task] = []
            while q and len(out) < cap:
                t = q.popleft()
                if t.abandoned:
                    self._untarget(t)
                    continue
                if not self._may_take(t, node):
                    skipped.append(t)
                    continue
                self._untarget(t)
                t.node_id = node.id
                t.handed_at = now
                t.lease_until = lease
                t.attempts.append(node.id)
                self.in_flight[t.id] = t
                out.append(t)
                if t.durable:
                    self.on_handout(t)
            if skipped:  # other nodes' tasks keep their place in the line
                q.extendleft(reversed(skipped))
            if left is not None and room is not None:
                room[fn] = left - (len(out) - start)
            if len(out) >= max_items:
                break
        node.in_flight += len(out)
        return out

    async def poll(
        self, node: NodeRecord, functions: frozenset[str], max_items: int, wait_s: float,
        room: dict[str, int] | None = None,
    ) -> list[Task]:
        """``room``: most tasks of each listed function this poll may bring (a node's
        continuous batch with that many free rows); unlisted functions are not limited."""
        self._stalled.discard(node.id)  # asking for work again: it is not stuck
        self._last_poll[node.id] = time.monotonic()
        room = dict(room or {})
        if max_items <= 0 or not functions:
            if wait_s > 0:
                await asyncio.sleep(min(wait_s, 1.0))
            return []
        tasks = self._take(node, functions, max_items, room)
        loop = asyncio.get_running_loop()
        if self.draining:  # short polls, so the server can close connections soon
            wait_s = min(wait_s, 0.5)
        end = loop.time() + wait_s
        while not tasks:
            left = end - loop.time()
            if left <= 0 or node.gone:
                return []
            p = _Poller(node, functions, loop.create_future(), room)
            self._pollers.append(p)
            handle = loop.call_later(left, _resolve, p.wake)
            self._parked[node.id] = self._parked.get(node.id, 0) + 1
            try:
                await p.wake
            finally:
                handle.cancel()
                self._parked[node.id] -= 1
                self._last_poll[node.id] = time.monotonic()
            if node.gone:
                return []
            tasks = self._take(node, node.functions, max_items, room)
        if len(tasks) < max_items:
            tasks += await self._fill(node, tasks, max_items, room)
        for fn in {t.fn for t in tasks}:
            self._last_batch[fn] = sum(1 for t in tasks if t.fn == fn)
        return tasks

    async def _fill(self, node: NodeRecord, tasks: list[Task], max_items: int, room: dict[str, int]) -> list[Task]:
        """Wait up to the manifest's max_wait_ms for a fuller batch, but only under load.

        Closed-loop callers send their next request the moment the last batch's answers
        reach them, so a node that polls straight after posting a batch of 31 finds one
        task, runs a batch of 1, and throughput halves. Waiting only when the previous
        batch was bigger than what is queued now fixes that without taxing a lone caller.
        """
        fn = tasks[0].fn
        want = min(max_items, self.max_batch(fn), self._last_batch.get(fn, 0))
        wait_ms = self.max_wait_ms(fn)
        have = sum(1 for t in tasks if t.fn == fn)
        if wait_ms <= 0 or have >= want:
            return []
        loop = asyncio.get_running_loop()
        end = loop.time() + wait_ms / 1000
        while self.depth(fn) < want - have and loop.time() < end:
            await asyncio.sleep(0.0005)
        return self._take(node, frozenset((fn,)), min(max_items - len(tasks), self.max_batch(fn) - have), room)

    @staticmethod
    def assignment(t: Task, now: float) -> TaskAssignment:
        return TaskAssignment(
            id=t.id,
            fn=t.fn,
            input=msgspec.Raw(t.input),
            traceparent=t.traceparent,
            deadline_ms=round((t.deadline - now) * 1000, 1) if t.deadline else 0.0,
            stream=t.chunks is not None,
        )

    def depth(self, fn: str) -> int:
        q = self.queues.get(fn)
        return len(q) if q else 0


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)

