"""Benchmarks behind ``wassembed bench``: exact stage, serving, Dask (figures measured in one run)."""

from ._dask import format_dask_benchmark, run_dask_benchmark
from ._exact import format_exact_benchmark, run_exact_benchmark
from ._hardware import hardware
from ._serve import format_serve_benchmark, run_serve_benchmark

__all__ = [
    "hardware",
    "format_exact_benchmark",
    "run_exact_benchmark",
    "format_serve_benchmark",
    "run_serve_benchmark",
    "format_dask_benchmark",
    "run_dask_benchmark",
]
