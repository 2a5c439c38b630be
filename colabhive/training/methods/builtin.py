"""The built-in training methods, registered as a default plugin (trylast), like the task
families: a plugin's method of the same name is a start-up error, never a silent override."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl

__all__ = ["BuiltinMethods"]


class BuiltinMethods:
    @hookimpl(trylast=True)
    def hive_training_methods(self) -> list[Any]:
        # imported when first asked for: the modules are light (torch loads inside the trainers)
        from . import experts, forecast, head, lora, tabular

        return [lora.METHOD, head.METHOD, forecast.METHOD, tabular.METHOD, experts.METHOD]
