"""Task runners, by task name. Each module declares its input and output Structs."""

from __future__ import annotations

from .base import Runner, source_path
from .echo import EchoRunner
from .embedding import EmbeddingRunner
from .language import LanguageRunner
from .rerank import RerankRunner

__all__ = ["RUNNERS", "Runner", "source_path"]

RUNNERS: dict[str, type[Runner]] = {
    r.task: r for r in (EchoRunner, EmbeddingRunner, LanguageRunner, RerankRunner)
}
