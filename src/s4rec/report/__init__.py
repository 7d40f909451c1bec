"""``s4rec analyze`` and ``s4rec report``: what each trained run does for whom, as JSON
(``analyze``), plots (``plots``) and one self-contained HTML page plus a Markdown summary
(``pages``)."""

from .analyze import GROUP_METRIC, METRICS, analyze_run, analyze_runs
from .pages import by_method, md_table, tables, variant, write_report
from .plots import sweep_points

__all__ = [
    "GROUP_METRIC",
    "METRICS",
    "analyze_run",
    "analyze_runs",
    "by_method",
    "md_table",
    "sweep_points",
    "tables",
    "variant",
    "write_report",
]
