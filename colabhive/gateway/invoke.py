"""One invoke flow: :func:`~.call.prepare` checks the call, then one strategy runs it.

This is the only way a function is called, by a client through the front door or by the
gateway itself (ensemble members, /auto's parts, evaluations). The strategies differ only
in how they wait and answer:

- ``plain``: queued in memory, the caller waits (plain.py);
- ``durable``: journaled first, 202 or a wait on the journaled task (durable.py);
- ``stream``: queued with a chunk queue, answered as SSE (streaming.py);
- ``ensemble``: its members are called from the gateway and combined (ensembles.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from .call import Call, Mode, prepare
from .durable import run_durable
from .ensembles import run_ensemble
from .hive import Hive
from .plain import run_plain
from .streaming import run_stream
from .transport import Reply

__all__ = ["STRATEGIES", "call_function"]

STRATEGIES: dict[Mode, Callable[[Hive, Call], Awaitable[Reply]]] = {
    "plain": run_plain,
    "durable": run_durable,
    "stream": run_stream,
    "ensemble": run_ensemble,
}


async def call_function(
    hive: Hive, name: str, body: bytes, headers: Mapping[str, str], tenant: str | None = None
) -> Reply:
    """``tenant`` is given by the gateway's own callers, which authorised the request already."""
    call = await prepare(hive, name, body, headers, tenant)
    return await STRATEGIES[call.mode](hive, call)
