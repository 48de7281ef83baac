"""edgetune: hardware-aware edge deployment compiler and benchmarker.

The public API mirrors the CLI: ``compile_model`` (edgetune compile), ``benchmark``
(edgetune bench), ``load_target`` / ``list_targets`` (edgetune targets), ``load_model`` and
``summarize`` (edgetune inspect), ``export_zoo_model`` (edgetune zoo export), ``profile``
(edgetune profile) and ``predict`` (edgetune predict).
"""

from __future__ import annotations

__version__ = "0.1.0"

from edgetune.errors import EdgetuneError  # noqa: E402
from edgetune.models import export_zoo_model, load_model, summarize  # noqa: E402
from edgetune.pipeline import benchmark, compile_model  # noqa: E402
from edgetune.predict import predict, profile  # noqa: E402
from edgetune.targets import list_targets, load_target  # noqa: E402

__all__ = [
    "EdgetuneError",
    "__version__",
    "benchmark",
    "compile_model",
    "export_zoo_model",
    "list_targets",
    "load_model",
    "load_target",
    "predict",
    "profile",
    "summarize",
]
