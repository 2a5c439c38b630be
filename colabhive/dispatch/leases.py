"""The result half of the Dispatcher: results, streamed pieces, leases and the reaper.

Every handed-out task holds a lease; a node's result ends it (exactly one result is kept,
a late or foreign one is dropped), and the reaper requeues tasks whose lease ran out or
whose node went silent, up to ``max_attempts`` times, and fails queued sync calls that no
node can serve any more or whose deadline passed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DeadlineExceeded, HiveError, InvalidInput, NoCapacity, TaskFailed
from ..wire import TaskResult
from .node_registry import NodeRecord
from .task import Outcome, Task

if TYPE_CHECKING:
    from .node_registry import NodeRegistry
    from .routing import Router

__all__ = ["Leases", "fail"]


class Leases:
    nodes: NodeRegistry
    router: Router | None
    lease_s: float
    max_attempts: int
    queues: dict[str, deque[Task]]
    in_flight: dict[str, Task]
    durable: dict[str, Task]
    dropped_results: int
    _stalled: set[str]
    _pollers: deque[Any]
    on_finish: Callable[[Task, Outcome | None, HiveError | None], None]

    if TYPE_CHECKING:  # provided by Targeting and the Dispatcher; declared only for the type checker
        def _route(self, task: Task) -> None: ...
        def _untarget(self, task: Task) -> None: ...
        def _reroute_orphans(self, q: deque[Task]) -> None: ...
        def _wake_one(self, task: Task) -> None: ...

    def chunk(self, node: NodeRecord, task_id: str, text: str, dtype: str = "") -> bool:
        """A piece of a streamed task's output; False when it is not that node's streamed task.
        ``dtype``: what the node's first piece says it runs the model in (else its heartbeat's)."""
        t = self.in_flight.get(task_id)
        if t is None or t.node_id != node.id or t.chunks is None or t.abandoned:
            return False
        if not t.streamed:
            t.dtype = dtype or node.dtypes.get(t.fn, "")
        t.streamed += 1
        t.lease_until = time.monotonic() + self.lease_s  # producing output: clearly alive
        t.chunks.put_nowait(text)
        return True

    def complete(self, node: NodeRecord, result: TaskResult) -> Task | None:
        """Record a node's result; None when it is not (or no longer) that node's task."""
        t = self.in_flight.get(result.id)
        if t is None or t.node_id != node.id:
            self.dropped_results += 1
            return None
        del self.in_flight[result.id]
        node.in_flight = max(0, node.in_flight - 1)
        self._stalled.discard(node.id)
        if result.batch_size > node.max_batch_seen:
            node.max_batch_seen = result.batch_size
        if t.abandoned and not t.durable:
            return t
        if result.error is not None and result.error.code == "not_loaded":
            # the node dropped the model (a new placement) after it was routed there: not the
            # task's fault, so it goes to a node that holds it, without spending an attempt
            node.functions = node.functions - {t.fn}
            t.node_id = None
            t.attempts.pop()
            self._route(t)
            self.queues.setdefault(t.fn, deque()).appendleft(t)
            self._wake_one(t)
            return None
        err = None
        if result.error is not None and result.error.code == InvalidInput.code:
            # the runner's own check (a feature the model lacks): the caller's fault, a 422
            err = InvalidInput(result.error.message, field=result.error.field)
        elif result.error is not None:
            err = TaskFailed(f"{t.fn} failed on node {node.name}: {result.error.message}")
        if err is None and self.router is not None:
            # an estimated figure is power × time again: the router does that itself, without the noise
            measured = None if result.energy_estimated else result.energy_j
            self.router.observe(node.id, t.fn, result.run_ms, result.batch_size, measured)
        outcome = Outcome(
            output=bytes(result.output) if err is None else None,
            error=err,
            node_id=node.id,
            run_ms=result.run_ms,
            batch_size=result.batch_size,
            queued_ms=(t.handed_at - t.enqueued_at) * 1000,
            energy_j=result.energy_j,
            energy_estimated=result.energy_estimated,
            carbon_g=node.carbon_g(result.energy_j),
            dtype=result.dtype,
        )
        if t.durable:
            self.durable.pop(t.id, None)
            if not t.cancelled:
                self.on_finish(t, outcome, None)
        if t.future is not None and not t.future.done():
            t.future.set_result(outcome)
        return t

    # ---- the reaper --------------------------------------------------------------------
    def reap(self, now: float) -> None:
        """Expire silent nodes, requeue lapsed leases, fail what can no longer be served."""
        for node in self.nodes.expire(now):
            for p in self._pollers:
                if p.node is node and not p.wake.done():
                    p.wake.set_result(None)
        requeue = [
            t
            for t in self.in_flight.values()
            if t.lease_until < now or (self.nodes.get(t.node_id or "") is None)
        ]
        for t in requeue:
            del self.in_flight[t.id]
            rec = self.nodes.nodes.get(t.node_id or "")
            if rec is not None:
                rec.in_flight = max(0, rec.in_flight - 1)
                if not rec.gone:
                    self._stalled.add(rec.id)
            t.node_id = None
            if t.abandoned:
                continue
            if t.streamed:  # the caller already holds part of an answer; a re-run would repeat it
                fail(t, TaskFailed(f"{t.fn}: node {rec.name if rec else t.attempts[-1]} was lost mid-stream"))
                continue
            if len(t.attempts) >= self.max_attempts:
                self._give_up(
                    t, TaskFailed(f"{t.fn}: gave up after {len(t.attempts)} attempts on nodes {t.attempts}")
                )
                continue
            self._route(t)  # elsewhere, if another node holds it
            self.queues.setdefault(t.fn, deque()).appendleft(t)
            self._wake_one(t)
        for fn, q in self.queues.items():
            if not q:
                continue
            self._reroute_orphans(q)
            served = self.nodes.serving(fn) or self.nodes.loading(fn)
            # durable tasks wait for a node to come back; sync callers are told at once
            expired = [
                t
                for t in q
                if t.abandoned or (not t.durable and ((t.deadline and t.deadline < now) or not served))
            ]
            for t in expired:
                q.remove(t)
                self._untarget(t)
                if not t.abandoned:
                    if not served:
                        fail(t, NoCapacity(f"no live node serves {fn!r} any more"))
                    else:
                        fail(t, DeadlineExceeded(f"{fn}: deadline passed while queued"))

    def _give_up(self, t: Task, err: HiveError) -> None:
        if t.durable:
            self.durable.pop(t.id, None)
            self.on_finish(t, None, err)
        fail(t, err)


def fail(t: Task, err: HiveError) -> None:
    """Tell a sync caller still waiting (durable tasks are recorded through ``on_finish``)."""
    if t.future is not None and not t.future.done():
        t.future.set_exception(err)
