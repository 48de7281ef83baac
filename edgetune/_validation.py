"""One-line messages for YAML files validated by pydantic: name the file and the key the user wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError


def _key_path(raw: Any, loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The part of a pydantic error location that names keys the user wrote (drops union tags)."""
    keys: list[str] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif not keys or isinstance(node, dict):
            keys.append(str(part))  # a missing or unknown key: still name it
            break
        else:
            break
        keys.append(str(part))
    return tuple(keys)


def describe_validation_error(path: Path, raw: Any, exc: ValidationError) -> str:
    """``file: key 'a.b': what is wrong (got X)`` for the first problem, with a count of the rest."""
    errors = exc.errors()
    first = _key_path(raw, tuple(errors[0]["loc"]))
    same = [e for e in errors if _key_path(raw, tuple(e["loc"])) == first]
    key = ".".join(first) or "(top level)"
    others = len({_key_path(raw, tuple(e["loc"])) for e in errors}) - 1
    extra = f" (and {others} more problem(s))" if others else ""
    if same[0]["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'; remove it or check its spelling{extra}"
    if same[0]["type"] == "missing":
        return f"{path}: missing required key '{key}'{extra}"
    reasons = " or ".join(dict.fromkeys(e["msg"] for e in same))
    return f"{path}: key '{key}': {reasons} (got {same[0].get('input')!r}){extra}"
