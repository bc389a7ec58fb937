"""The delivery core's shape: `realtime` knows no marketplace and no project
settings module, and no module hides an import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REALTIME = sorted(
    p for p in (ROOT / "realtime").rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts
)


def imported_modules(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node, node.module))
    return found


@pytest.mark.parametrize("path", REALTIME, ids=lambda p: str(p.relative_to(ROOT)))
def test_realtime_imports_neither_jobs_nor_the_project(path):
    tree = ast.parse(path.read_text())
    crossing = [
        name for _, name in imported_modules(tree) if name.split(".")[0] in {"jobs", "paychain"}
    ]
    assert crossing == []


@pytest.mark.parametrize("path", REALTIME, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_hides_inside_a_function(path):
    tree = ast.parse(path.read_text())
    hidden = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            # An AppConfig.ready() importing its signal or check modules is Django's idiom.
            if function.name == "ready" and path.name == "apps.py":
                continue
            hidden.extend(
                f"{function.name}: {ast.unparse(node)}"
                for node in ast.walk(function)
                if isinstance(node, ast.Import | ast.ImportFrom)
            )
    assert hidden == []
