"""Training methods as a library the node runtime calls: a job spec in, a servable version out.

    spec.py        JobSpec (+ decode_spec: JSON/TOML → spec and the method's hparams)
    methods/       one module per method (lora, head, forecast, tabular) on a common Trainer
    optim.py       adamw, or muon on hidden matrices + adamw on the rest
    loop.py        run_job: step until the budget, checkpoint, resume, evaluate, export
    example_data   package-shipped data → dataset files the gateway accepts
"""

from __future__ import annotations

from .errors import CheckpointError, InvalidSpec, TrainingError
from .spec import JobSpec, decode_spec

__all__ = ["CheckpointError", "InvalidSpec", "JobSpec", "TrainingError", "decode_spec"]
