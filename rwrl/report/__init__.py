"""The HTML reports: of runs (learning curves, violations, evaluators, configs) and of a
sweep directory (the paper's figure set: final return against each challenge's magnitude);
a bandit sweep's (``bandit_report``: log-log regret against t, fitted slopes)."""

from rwrl.report.html import render_report, write_report
from rwrl.report.sweep_report import render_sweep_report, write_sweep_report

__all__ = ["render_report", "render_sweep_report", "write_report", "write_sweep_report"]
