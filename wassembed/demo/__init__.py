"""The demo pipeline (``wassembed demo``): precompute, train, evaluate, serve; figures and a report.

:func:`run_demo` runs it and :func:`format_results` prints its table; :mod:`wassembed.demo.plots` draws the
figures from a model (used by ``examples/``). The report, figure and sizing helpers are the demo's own.
"""

from ._pipeline import run_demo
from ._text import format_results

__all__ = ["run_demo", "format_results"]
