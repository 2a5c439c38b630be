"""``colabhive models ...`` and ``colabhive eval``: build, evaluate, promote, roll back."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_parsers"]

log = logging.getLogger("colabhive.cli")


def cmd_models_build(args: argparse.Namespace) -> int:
    from .recipes import RECIPES, build

    names = args.names or sorted(RECIPES)
    models_dir = Path(args.dir).resolve()
    for name in names:
        build(name, models_dir, seed=args.seed, force=args.force)
    return 0


def add_parsers(sub: argparse._SubParsersAction, with_config: Callable[[argparse.ArgumentParser], None]) -> None:
    models = sub.add_parser("models", help="build, evaluate, promote and roll back model versions")
    msub = models.add_subparsers(dest="models_command", required=True)
    b = msub.add_parser("build", help="train or convert the models that recipes make (skips built ones)")
    b.add_argument("names", nargs="*", help="recipes to build (default: all)")
    b.add_argument("--dir", default="models", help="where built models go (default: ./models)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true", help="rebuild even if already built")
    b.set_defaults(func=cmd_models_build)
