"""echo: returns its input. It has no model, so it measures the platform's own overhead."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from .base import Runner

__all__ = ["EchoOutput", "EchoRunner"]


class EchoOutput(msgspec.Struct):
    text: str


class EchoRunner(Runner):
    task = "echo"
    Output = EchoOutput
    needs_source = False

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return msgspec.defstruct(
            "EchoInput",
            [("text", Annotated[str, Meta(min_length=1, max_length=max_text_chars)])],
            forbid_unknown_fields=True,
        )

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        return [EchoOutput(text=i.text) for i in inputs]
