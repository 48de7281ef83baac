"""Availability of an optional backend, with the reason when it is missing."""

from __future__ import annotations

from dataclasses import dataclass

from edgetune._lazy import available


@dataclass(frozen=True)
class Availability:
    """Whether a backend can be used here; ``reason`` says what to install when not."""

    ok: bool
    reason: str = ""

    @classmethod
    def of_modules(cls, modules: tuple[str, ...], extra: str) -> "Availability":
        missing = [m for m in modules if not available(m)]
        if missing:
            return cls(False, f"{', '.join(missing)} not installed; pip install 'edgetune[{extra}]'")
        return cls(True)
