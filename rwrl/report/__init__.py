"""The HTML report of runs: learning curves, constraint violations, evaluators, configs."""

from rwrl.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
