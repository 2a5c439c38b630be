"""The model registry: versions of each function, their artifacts, states and evaluations."""

from .artifacts import Artifact, artifact_of
from .evaluation import EvalLine, EvalReport, load_dataset, score
from .lifecycle import Lifecycle, LifecycleError

__all__ = ["Artifact", "EvalLine", "EvalReport", "Lifecycle", "LifecycleError", "artifact_of", "load_dataset", "score"]
