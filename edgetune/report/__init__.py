"""Reports: self-contained HTML pages rendered from manifests and the results store."""

from edgetune.report._compile import pareto_front, write_compile_report

__all__ = ["pareto_front", "write_compile_report"]
