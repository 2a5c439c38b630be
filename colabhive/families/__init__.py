"""Task families, by name: the one accessor the rest of the hive asks about a task.

Families come from the ``hive_task_families`` hook (the built-ins as a trylast default
plugin, a third party's by entry point), so the gateway and the node see the same ones as
long as both load the same plugins. Nothing outside this package compares task names.
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import PARTS, OpenAIRoute, Router, RouterRole, Shape, TaskFamily

__all__ = [
    "PARTS", "OpenAIRoute", "Router", "RouterRole", "Shape", "TaskFamily", "all_families", "family", "find",
    "general", "names", "of_shape", "serving", "with_role",
]

def _by_name() -> dict[str, TaskFamily]:
    """Collected once per plugin manager; two families of one name are a start-up error."""
    from ..plugins import collect_named

    return collect_named("hive_task_families", lambda f: isinstance(f, TaskFamily),
                         "colabhive.families.TaskFamily", "task")


def all_families() -> list[TaskFamily]:
    """Every family, in hook order (third parties' first, then the built-ins)."""
    return list(_by_name().values())


def names() -> list[str]:
    return sorted(_by_name())


def find(name: str) -> TaskFamily | None:
    return _by_name().get(name)


def family(name: str) -> TaskFamily:
    """The family of task ``name``; an unknown one is a ConfigError listing the known ones."""
    f = _by_name().get(name)
    if f is None:
        raise ConfigError(f"unknown task {name!r}; known: {names()} (a plugin adds tasks by hive_task_families)")
    return f


def of_shape(shape: str) -> list[TaskFamily]:
    """The families /auto may send a payload of ``shape`` to."""
    return [f for f in all_families() if f.auto_shape == shape]


def general() -> TaskFamily | None:
    """The family whose general model answers when no /auto expert is confident."""
    return next((f for f in all_families() if f.auto_general), None)


def with_role(role: RouterRole) -> list[TaskFamily]:
    """The families /auto's router calls for ``role`` (request vectors, a text's language)."""
    return [f for f in all_families() if f.router_role == role]


def serving(route: OpenAIRoute) -> list[TaskFamily]:
    """The families whose functions answer an OpenAI-compatible ``route``."""
    return [f for f in all_families() if f.openai_route == route]
