"""The routing half of the Dispatcher: which node each queued task waits for.

Every queued task names its node (``Task.target``), chosen by the :class:`Router` when it
is queued and chosen again when that node goes away. A node takes its own tasks and
unrouted ones; for latency-driven calls it may also take tasks waiting on a node that is
busy, hung or gone, so an idle node never watches work wait. The counts of queued tasks
per (node, function) are what the router sees as each node's queue.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from .node_registry import NodeRecord

if TYPE_CHECKING:
    from .node_registry import NodeRegistry
    from .routing import Router
    from .task import Task

__all__ = ["ACTIVE_S", "Targeting"]

ACTIVE_S = 2.0
"""A node that polled this recently counts as taking work even when not parked right now."""


class Targeting:
    nodes: NodeRegistry
    router: Router | None
    _stalled: set[str]
    _parked: dict[str, int]
    _last_poll: dict[str, float]
    _targeted: dict[tuple[str, str], int]

    def _wake_one(self, task: Task) -> None:  # the Dispatcher's
        raise NotImplementedError

    def _active(self, node: NodeRecord) -> bool:
        """Taking work: parked in a poll, running a batch, or just back from one. A registered
        node that is none of these (hung, or not yet timed out) must not collect tasks."""
        if node.id in self._stalled:
            return False
        return (self._parked.get(node.id, 0) > 0 or node.in_flight > 0
                or time.monotonic() - self._last_poll.get(node.id, 0.0) < ACTIVE_S)

    def _ready(self, node: NodeRecord) -> bool:
        """Parked in a poll right now, or running a batch: sure to come back for more."""
        return node.id not in self._stalled and (self._parked.get(node.id, 0) > 0 or node.in_flight > 0)

    def _candidates(self, fn: str) -> list[NodeRecord]:
        """Nodes that hold ``fn``, best-known-alive first: ready ones, else recently active, else any."""
        nodes = [n for n in self.nodes.nodes.values() if fn in n.functions and not n.gone and not n.draining]
        return [n for n in nodes if self._ready(n)] or [n for n in nodes if self._active(n)] or nodes

    def _route(self, task: Task) -> None:
        """Pick the task's node now (it waits in that node's share of the queue)."""
        nodes = self._candidates(task.fn)
        if not nodes or self.router is None:
            task.target, task.route = None, None
            return
        node, info = self.router.choose(task.fn, task.prefer, nodes, lambda nid: self._targeted.get((nid, task.fn), 0))
        task.target, task.route = node.id, info
        key = (node.id, task.fn)
        self._targeted[key] = self._targeted.get(key, 0) + 1

    def _untarget(self, task: Task) -> None:
        if task.target is not None:
            key = (task.target, task.fn)
            left = self._targeted.get(key, 0) - 1
            if left > 0:
                self._targeted[key] = left
            else:
                self._targeted.pop(key, None)

    def _may_take(self, task: Task, node: NodeRecord) -> bool:
        """Its own tasks, unrouted ones, tasks of a node that is gone or hung, and — for
        latency-driven calls only — tasks of a node not waiting in a poll: an idle node should
        not watch them wait. Green and cheap
        calls wait for the node they were routed to (that was the point of routing them)."""
        if task.target is None or task.target == node.id:
            return True
        owner = self.nodes.nodes.get(task.target)
        if owner is None or owner.gone or owner.draining or task.fn not in owner.functions:
            return True
        if not self._active(owner):
            return True
        if self.router is None:
            return not self._parked.get(owner.id)
        if self.router.preference(task.prefer) != "fast" or self._parked.get(owner.id):
            return False
        # its node is busy (or between polls) and this one is free: take it if that is sooner,
        # counting this node's round trip (a far idle node is not faster than a near busy one)
        queued = self._targeted.get((owner.id, task.fn), 0)
        there = self.router.estimate(owner, task.fn, queued, 0.0)["latency_ms"]
        here = self.router.estimate(node, task.fn, 0, 0.0)["latency_ms"]
        return here < there

    def _reroute_orphans(self, q: deque[Task]) -> None:
        """Queued tasks routed to a node that has gone, is draining, dropped the function or
        stopped asking for work (and ones that waited for any node at all) get a node again."""
        for t in q:
            owner = self.nodes.nodes.get(t.target) if t.target else None
            if (t.target is None or owner is None or owner.gone or owner.draining or t.fn not in owner.functions
                    or not self._active(owner)):
                before = t.target
                self._untarget(t)
                self._route(t)
                if t.target is not None and t.target != before:
                    self._wake_one(t)

