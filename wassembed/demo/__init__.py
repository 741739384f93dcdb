"""The demo pipeline (``wassembed demo``): precompute, train, evaluate, serve; figures and a report."""

from ._pipeline import run_demo
from ._report import Figure, format_table, markdown_table, to_jsonable, write_report
from ._sizes import demo_sizes, split_ranges
from ._text import format_results

__all__ = [
    "demo_sizes",
    "split_ranges",
    "run_demo",
    "format_results",
    "Figure",
    "format_table",
    "markdown_table",
    "to_jsonable",
    "write_report",
]
