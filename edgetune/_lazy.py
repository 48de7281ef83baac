"""Lazy imports of heavy optional dependencies with an install hint."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from edgetune.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise a one-line error naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed ({exc.msg}); install it with: pip install 'edgetune[{extra}]'"
        ) from exc


def available(module: str) -> bool:
    """Return True when ``module`` can be imported (without importing heavy parts twice)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
