"""The plain strategy: a sync call queued in memory (no disk write on the hot path), answered
when the node's result arrives, or a 504 when the caller's deadline passes first."""

from __future__ import annotations

import asyncio
import time

from ..dispatch import Outcome, Task
from ..errors import DeadlineExceeded, HiveError
from .call import Call, close_task, open_task, outcome_headers
from .hive import Hive
from .transport import Reply

__all__ = ["run_plain"]


def _expire(task: Task) -> None:
    if task.future is not None and not task.future.done():
        task.future.set_exception(DeadlineExceeded(f"{task.fn} did not answer within its deadline"))


async def run_plain(hive: Hive, call: Call) -> Reply:
    """Queue in memory, wait for the node's answer under the caller's deadline (504 past it)."""
    loop = asyncio.get_running_loop()
    task, span = open_task(hive, call)
    task.future = loop.create_future()
    t0 = time.perf_counter()
    try:
        hive.dispatcher.submit(task)
        hive.sync_in_flight += 1
        handle = loop.call_later(call.timeout_s, _expire, task)
        try:
            outcome: Outcome = await task.future
        finally:
            handle.cancel()
            hive.sync_in_flight -= 1
    except HiveError as exc:
        if isinstance(exc, DeadlineExceeded):
            hive.dispatcher.withdraw(task)
        close_task(hive, task, span, None, exc, t0)
        raise
    except BaseException:
        close_task(hive, task, span, None, None, t0, status="failed")
        raise
    close_task(hive, task, span, outcome, None, t0)
    if outcome.error is not None:
        raise outcome.error
    return Reply(200, outcome.output or b"null", outcome_headers(call.ref, outcome))
