"""The hot path between callers and nodes: queues, leases, waiters, the node registry."""

from .node_registry import NodeRecord, NodeRegistry
from .queues import Dispatcher
from .task import Outcome, Task

__all__ = ["Dispatcher", "NodeRecord", "NodeRegistry", "Outcome", "Task"]
