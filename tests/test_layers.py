"""The packages form layers that import one way: a module may import only from its own layer or those below.

Every import counts, also one inside a function (a lazy import still makes the dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgetune"

# lowest first; packages on one line are one layer (they may import each other)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_lazy", "_availability", "_validation", "_quiet", "_locations"),
    ("targets",),
    ("data", "models"),
    ("runners", "simulate"),
    ("bench",),
    ("report", "farm"),
    ("lowering",),
    ("pipeline",),
    ("predict",),
    ("search",),
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "edgetune" or len(parts) < 2:
        return None
    return parts[1].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "edgetune":
                found.extend((node.lineno, f"edgetune.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _upward_edges() -> list[str]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:  # edgetune/__init__.py (the public API) and the root helpers
            if relative.stem == "__init__" or relative.stem == "__main__":
                continue
            owner = relative.stem
        else:
            owner = relative.parts[0]
        for line, module in _imports(path):
            target = _package_of(module)
            if target is None or target == owner or target not in RANK or owner not in RANK:
                continue
            if RANK[target] > RANK[owner]:
                edges.append(f"edgetune/{relative}:{line} ({owner}) imports {module} ({target})")
    return edges


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in PACKAGE.glob("_*.py")} | {p.stem for p in PACKAGE.glob("errors.py")}
    assert packages - {"__init__", "__main__"} <= set(RANK), sorted(packages - set(RANK))


def test_no_package_imports_a_layer_above_it() -> None:
    assert _upward_edges() == []
