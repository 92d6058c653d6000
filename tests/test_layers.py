"""The package imports at the top of its modules, so its layers show there."""

from __future__ import annotations

import ast
from pathlib import Path

import flask_livehelp

PACKAGE = Path(flask_livehelp.__file__).parent
#: Imported where used: the optional extra flask-livehelp[redis] may be absent.
OPTIONAL = {"redis", ".redis_hub"}


def _imports_inside_functions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    found += [alias.name for alias in inner.names]
                elif isinstance(inner, ast.ImportFrom):
                    found.append("." * inner.level + (inner.module or ""))
    return found


def test_no_import_inside_a_function_but_the_optional_redis() -> None:
    hidden = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in PACKAGE.rglob("*.py")
        for name in _imports_inside_functions(path)
        if name not in OPTIONAL
    }
    assert hidden == set()
