"""Task runners, by task name. Each module declares its input and output Structs."""

from __future__ import annotations

from .base import Runner, source_path
from .classification import ClassificationRunner
from .echo import EchoRunner
from .embedding import EmbeddingRunner
from .forecasting import ForecastingRunner
from .generation import GenerationRunner
from .language import LanguageRunner
from .rerank import RerankRunner
from .tabular import TabularRunner
from .translation import TranslationRunner

__all__ = ["RUNNERS", "Runner", "source_path"]

RUNNERS: dict[str, type[Runner]] = {
    r.task: r
    for r in (
        ClassificationRunner,
        EchoRunner,
        EmbeddingRunner,
        ForecastingRunner,
        GenerationRunner,
        LanguageRunner,
        RerankRunner,
        TabularRunner,
        TranslationRunner,
    )
}
