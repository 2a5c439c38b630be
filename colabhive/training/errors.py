"""Training's errors, re-exported from the hive's one exception tree (:mod:`colabhive.errors`)."""

from __future__ import annotations

from ..errors import CheckpointError, InvalidSpec, TrainingError

__all__ = ["CheckpointError", "InvalidSpec", "TrainingError"]
