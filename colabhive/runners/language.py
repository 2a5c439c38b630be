"""language: which language a text is written in, with py3langid (naive Bayes, no torch).

Probabilities are normalised (softmax over the model's raw scores) so ``score`` reads as a
confidence in [0, 1] and the top-3 scores are comparable across texts. Codes are the
model's own: ISO 639-1 where one exists, otherwise ISO 639-3 (e.g. ``yue``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .base import Runner, source_path, text_input

__all__ = ["LanguageOutput", "LanguageRunner", "LanguageScore"]

TOP_K = 3
MODEL_FILE = "data/model.npz.xz"  # inside the py3langid package directory


class LanguageScore(msgspec.Struct):
    language: str
    score: float


class LanguageOutput(msgspec.Struct):
    language: str
    score: float
    top: list[LanguageScore]


class LanguageRunner(Runner):
    Output = LanguageOutput

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return text_input("LanguageInput", max_text_chars)

    def load(self) -> None:
        # Our own identifier, not py3langid's module-level one: that one has raw
        # (unnormalised) scores and is shared with anything else in the process.
        from py3langid.langid import LanguageIdentifier

        model = self.manifest.options.get("model_file", MODEL_FILE)
        self.identifier = LanguageIdentifier.from_model_file(source_path(self.manifest) / str(model), norm_probs=True)

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        out: list[msgspec.Struct] = []
        for i in inputs:
            top = [LanguageScore(language=lang, score=float(s)) for lang, s in self.identifier.rank(i.text)[:TOP_K]]
            out.append(LanguageOutput(language=top[0].language, score=top[0].score, top=top))
        return out
