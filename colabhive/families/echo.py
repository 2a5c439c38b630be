"""echo: returns its input, to measure the platform's own overhead. It answers nothing a
caller would ask /auto, has nothing to combine or score, and backs no OpenAI route."""

from __future__ import annotations

from ..runners.echo import EchoRunner
from .base import TaskFamily

__all__ = ["Echo"]


class Echo(TaskFamily):
    name = "echo"
    runner = EchoRunner
    unsupported = frozenset({"ensemble", "auto", "metrics", "openai"})
