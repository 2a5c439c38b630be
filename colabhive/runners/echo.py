"""echo: returns its input. It has no model, so it measures the platform's own overhead."""

from __future__ import annotations

from typing import Any

import msgspec

from .base import Runner, text_input

__all__ = ["EchoOutput", "EchoRunner"]


class EchoOutput(msgspec.Struct):
    text: str


class EchoRunner(Runner):
    Output = EchoOutput
    needs_source = False

    @classmethod
    def input_type(cls, max_text_chars: int) -> type[msgspec.Struct]:
        return text_input("EchoInput", max_text_chars)

    def run(self, inputs: list[Any]) -> list[msgspec.Struct]:
        return [EchoOutput(text=i.text) for i in inputs]
