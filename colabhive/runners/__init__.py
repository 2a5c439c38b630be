"""Task runners: one module per task, each declaring its input and output Structs.

Which runner serves a task is its family's to say (``colabhive.families``), so a plugin
can add a task without this package knowing.
"""

from __future__ import annotations

from .base import Runner, source_path

__all__ = ["Runner", "source_path"]
