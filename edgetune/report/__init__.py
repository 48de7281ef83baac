"""Reports: self-contained HTML pages rendered from manifests and the results store."""

from edgetune.report._compile import pareto_front, write_compile_report
from edgetune.report._dashboard import write_dashboard

__all__ = ["pareto_front", "write_compile_report", "write_dashboard"]
