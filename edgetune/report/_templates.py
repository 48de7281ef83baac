"""Render the reports' Jinja2 templates (edgetune/report/templates/), HTML-escaping every value.

Charts arrive as SVG text that the report made itself; they are marked safe with ``svg_markup``,
everything else (model, candidate and target names, notes, error text) is escaped by the template.
"""

from __future__ import annotations

import functools
from typing import Any, Optional


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("edgetune.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """The named template rendered with ``context``."""
    return str(_environment().get_template(template).render(**context))


def svg_markup(svg: Optional[str]) -> Any:
    """An SVG this package drew, to insert unescaped (None stays None)."""
    from markupsafe import Markup

    return None if svg is None else Markup(svg)
