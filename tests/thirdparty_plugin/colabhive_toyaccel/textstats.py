"""textstats: a task family the core has never heard of, added by this plugin.

It counts a text's words, characters and lines. It has no weights (``needs_source`` is
False), imports nothing heavy, and declares only what it supports: evaluation by
``accuracy`` (e.g. of ``words``). Ensembles, /auto and the OpenAI routes keep the
defaults, which mean "not supported".
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from colabhive.families import TaskFamily
from colabhive.runners import Runner

__all__ = ["TextStats", "TextStatsOutput", "TextStatsRunner"]


class TextStatsOutput(msgspec.Struct):
    words: int
    """Whitespace-separated words."""
    characters: int
    lines: int
    longest: str
    """The longest word (the first of equally long ones); empty for a blank text."""


class TextStatsRunner(Runner):
    Output = TextStatsOutput
    needs_source = False

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return msgspec.defstruct(
            "TextStatsInput",
            [("text", Annotated[str, Meta(max_length=max_text_chars, description="Any text, even empty.")])],
            forbid_unknown_fields=True,
        )

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        out: list[msgspec.Struct] = []
        for i in inputs:
            words = i.text.split()
            out.append(TextStatsOutput(words=len(words), characters=len(i.text), lines=len(i.text.splitlines()),
                                       longest=max(words, key=len, default="")))
        return out


class TextStats(TaskFamily):
    name = "textstats"
    runner = TextStatsRunner
    metrics = frozenset({"accuracy"})
