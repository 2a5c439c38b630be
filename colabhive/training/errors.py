"""Training errors, in the hive's exception tree (:mod:`colabhive.errors`).

    HiveError
    ├── InvalidInput (422)
    │   └── InvalidSpec (422, invalid_training_spec)   a job spec field is wrong; ``field`` names it
    └── TrainingError (500, training_failed)            a job could not run (data, base model, state)
        └── CheckpointError (500, bad_checkpoint)       a checkpoint is missing, partial or for another job

Defined here rather than in ``errors.py`` so training can grow without touching the shared tree.
"""

from __future__ import annotations

from ..errors import HiveError, InvalidInput

__all__ = ["CheckpointError", "InvalidSpec", "TrainingError"]


class InvalidSpec(InvalidInput):
    """The training job spec is invalid."""

    code = "invalid_training_spec"


class TrainingError(HiveError):
    """The training job could not run."""

    code = "training_failed"


class CheckpointError(TrainingError):
    """The checkpoint cannot be resumed from."""

    code = "bad_checkpoint"
