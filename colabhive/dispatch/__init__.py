"""The hot path between callers and nodes: queues, leases, waiters, the node registry."""

from .queues import Dispatcher
from .task import Outcome, Task
from .registry import NodeRecord, Registry

__all__ = ["Dispatcher", "NodeRecord", "Outcome", "Registry", "Task"]
