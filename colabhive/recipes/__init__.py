"""Recipes: build the catalog's models that ship as data rather than weights.

Each recipe module has ``NAME`` (the directory it writes under ``models/``) and
``build(out_dir: Path, seed: int) -> dict`` returning its held-out metrics. It trains or
converts from what installed packages ship (no downloads) and ends with
:func:`provenance.write_provenance`. ``colabhive models build`` runs them;
``make models`` runs every recipe whose output is missing.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import shutil
import time
from pathlib import Path
from types import ModuleType

from .provenance import file_sha256

__all__ = ["RECIPES", "build", "recipe"]

log = logging.getLogger("colabhive.recipes")

RECIPES: dict[str, str] = {
    # name -> module under colabhive.recipes (imported only when built: they pull in torch etc.)
    "intent-minilm": "intent",
    "sentiment-minilm": "sentiment",
    "smollm2-135m-instruct": "smollm2",
    "patchtst-co2": "patchtst_co2",
    "tabular-breast-cancer": "tabular_breast_cancer",
    "tabular-diabetes": "tabular_diabetes",
    "tabular-wine": "tabular_wine",
    "tabular-breast-cancer-linear": "tabular_breast_cancer_linear",
    "tabular-diabetes-linear": "tabular_diabetes_linear",
    "auto-router": "auto_router",  # last: it reads the manifests, which need the models above
}


def recipe(name: str) -> ModuleType:
    if name not in RECIPES:
        raise KeyError(f"no recipe named {name!r}; known: {sorted(RECIPES)}")
    return importlib.import_module(f"colabhive.recipes.{RECIPES[name]}")


def _code_sha256(module: ModuleType) -> str:
    """sha256 of the recipe's source and of the sibling recipe modules it uses (shared
    helpers), so editing either rebuilds it on the next ``make models``."""
    files = {Path(module.__file__ or "")}
    for value in vars(module).values():
        mod = value if isinstance(value, ModuleType) else importlib.import_module(getattr(value, "__module__", "") or "builtins")
        if mod.__name__.startswith(__name__ + ".") and mod.__file__:
            files.add(Path(mod.__file__))
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode() + b"\0" + file_sha256(f).encode())
    for f in getattr(module, "inputs", list)():  # data it learns from (the router: manifests, labelled requests)
        if f.exists():
            h.update(f.name.encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()


def build(name: str, models_dir: Path, *, seed: int = 0, force: bool = False) -> Path:
    """Build one recipe into ``models_dir/name``; skipped when its provenance already exists.

    It builds into a temporary sibling and renames at the end, so an interrupted build
    never leaves a half-written model that a node would try to load.
    """
    out = models_dir / name
    module = recipe(name)
    code_sha = _code_sha256(module)
    prov = out / "provenance.json"
    if prov.exists() and not force and json.loads(prov.read_text()).get("recipe_sha256") == code_sha:
        log.info("%s: already built (%s)", name, out)
        return out
    tmp = models_dir / f".{name}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    metrics = module.build(tmp, seed)
    record = json.loads((tmp / "provenance.json").read_text())  # the recipe must have written it
    record["recipe_sha256"] = code_sha  # a changed recipe rebuilds on the next `make models`
    (tmp / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.info("%s: built in %.1f s: %s", name, time.perf_counter() - t0, metrics)
    return out
