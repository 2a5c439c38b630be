"""The exception tree (colabhive/errors.py): one root, drawn in the docstring as it is.

Every exception class the package and its plugins define derives from HiveError, so a
caller (gateway, node, CLI, SDK user) can catch the hive's own errors with one type and
tell them apart from a bug; and the drawing in the docstring is checked against the
classes, so it cannot drift.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import colabhive
from colabhive import errors
from colabhive.errors import HiveError

PACKAGES = ["colabhive", "colabhive_cpu", "colabhive_cuda", "colabhive_xpu", "colabhive_accel"]
"""The core and the plugin packages in this repository."""


def _modules() -> list[object]:
    mods = []
    for top in PACKAGES:
        pkg = importlib.import_module(top)
        mods.append(pkg)
        for info in pkgutil.walk_packages(pkg.__path__, top + "."):
            if info.name.endswith("__main__"):  # running it is its only behaviour
                continue
            mods.append(importlib.import_module(info.name))
    return mods


def _tree() -> list[type[HiveError]]:
    out, todo = [], [HiveError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def test_every_exception_class_in_the_package_derives_from_the_root() -> None:
    defined = {
        f"{m.__name__}.{name}": obj
        for m in _modules()
        for name, obj in vars(m).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == m.__name__
    }
    assert "colabhive.errors.SchemaTooNew" in defined  # the walk saw the tree itself
    outside = sorted(k for k, cls in defined.items() if not issubclass(cls, HiveError))
    assert outside == []


def test_no_exception_class_is_defined_outside_errors_py() -> None:
    """Also classes inside functions, which importing cannot see."""
    builtin_exc = {n for n, v in vars(builtins).items() if inspect.isclass(v) and issubclass(v, BaseException)}
    tree_names = {c.__name__ for c in _tree()}
    roots = [Path(importlib.import_module(p).__file__).parent for p in PACKAGES]  # type: ignore[arg-type]
    found = []
    for root in roots:
        for path in root.rglob("*.py"):
            if path == Path(errors.__file__):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ClassDef):
                    continue
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & (builtin_exc | tree_names):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}")
    assert found == []


def test_the_docstring_draws_the_tree_as_it_is() -> None:
    drawn = {}
    parent_at: dict[int, str] = {}
    for line in (errors.__doc__ or "").splitlines():
        m = re.match(r"^\s*([│├└─ ]*)(\w+) \((?:(\d+), )?(\w+)\)", line)
        if not m:
            continue
        depth = len(m[1]) // 4
        parent_at[depth] = m[2]
        drawn[m[2]] = (parent_at.get(depth - 1), int(m[3]) if m[3] else None, m[4])
    actual = {}
    for cls in _tree():
        parent = cls.__mro__[1].__name__ if cls is not HiveError else None
        status = cls.status if cls.status != 500 or cls is HiveError else None
        actual[cls.__name__] = (parent, status, cls.code)
    assert drawn == actual


def test_codes_are_unique_and_classes_are_exported() -> None:
    tree = _tree()
    assert len({c.code for c in tree}) == len(tree)
    assert {c.__name__ for c in tree} <= set(errors.__all__)
    assert all(errors.error_for_code(c.code) is c for c in tree)


def test_every_class_is_built_the_way_the_sdk_rebuilds_it() -> None:
    for cls in _tree():
        exc = cls("a message", field="f", detail={"k": 1})
        assert (exc.message, exc.field, exc.to_body()["error"]["code"]) == ("a message", "f", cls.code)
        assert cls().message == (cls.__doc__ or "").strip().splitlines()[0]  # the docstring is the default


def test_old_import_names_still_work() -> None:
    from colabhive.ensemble import EnsembleError
    from colabhive.node.client import GatewayError, GatewayUnreachable
    from colabhive.registry.evaluation import DatasetError

    assert EnsembleError is errors.EnsembleError and DatasetError is errors.DatasetError
    assert GatewayError is errors.GatewayError and GatewayUnreachable is errors.GatewayUnreachable
    assert issubclass(GatewayUnreachable, ConnectionError)  # network handlers still catch it
    e = GatewayError.of_reply(404, "unknown_node", "register again")
    assert (e.http_status, e.remote_code, e.remote_message) == (404, "unknown_node", "register again")
    assert e.code == "gateway_error" and str(e) == "404 unknown_node: register again"
    assert colabhive.HiveError is HiveError
