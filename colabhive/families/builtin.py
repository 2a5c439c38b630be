"""The built-in task families, registered as a default plugin (trylast), like datasette's
DEFAULT_PLUGINS: a third party's families come first in the hook's answer."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .base import TaskFamily
from .classification import Classification
from .classifier_experts import ClassifierExpertGroup
from .echo import Echo
from .embedding import Embedding
from .experts import ExpertGroup
from .forecasting import Forecasting
from .generation import Generation
from .language import Language
from .rerank import Rerank
from .tabular import Tabular
from .translation import Translation

__all__ = ["BuiltinFamilies"]


class BuiltinFamilies:
    @hookimpl(trylast=True)
    def hive_task_families(self) -> list[TaskFamily]:
        # Order matters only to /auto's shape recognition: a record before a series (its
        # values would read as one), both before numbered passages.
        return [Tabular(), Forecasting(), Rerank(), Classification(), Language(), Translation(), Generation(),
                ExpertGroup(), ClassifierExpertGroup(), Embedding(), Echo()]
