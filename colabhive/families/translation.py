"""translation: a text in another language. A request that says "translate" goes here
without any similarity score, and of the translation experts the one whose direction ends
in the language asked for is chosen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..auto.parse import target_language, wants_translation
from ..manifests import Manifest
from ..runners.translation import TranslationRunner
from .base import Router, TaskFamily

__all__ = ["Translation"]


class Translation(TaskFamily):
    name = "translation"
    runner = TranslationRunner
    unsupported = frozenset({"ensemble", "openai"})
    auto_shape = "text"
    metrics = frozenset({"chrf", "contains", "accuracy"})

    def asked_for(self, text: str) -> str | None:
        return "the request asks for a translation" if wants_translation(text) else None

    async def refine(self, chosen: Manifest, experts: Sequence[Manifest], text: str, payload: dict[str, Any],
                     router: Router) -> tuple[Manifest, str] | None:
        """The served expert whose ``options.direction`` (``en-pt``) ends in the target language:
        the one the request names, else the one its payload is not written in (asked of the
        catalog's language identifier when there is one)."""
        source = str(payload.get("text", ""))
        spoken = await router.language(source) if router.language is not None and source else None
        target = target_language(text, source, spoken)
        for e in experts:
            if str(e.options.get("direction", "")).endswith(f"-{target}") and router.served(e.ref):
                return e, f"into '{target}', so {e.name}"
        return None
