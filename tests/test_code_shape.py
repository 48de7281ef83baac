"""Short functions: no function or method in edgetune/ is longer than MAX_LINES (issue 18).

A function's length is every line from its ``def`` to its last line (end_lineno - lineno + 1), its
docstring, comments and nested functions or classes included. There is no list of exceptions:
split the function into well-named steps instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgetune"
MAX_LINES = 60


def _long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES:
                    found.append(f"edgetune/{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_sixty_lines() -> None:
    assert _long_functions() == []
