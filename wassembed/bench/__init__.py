"""Benchmarks behind ``wassembed bench``: exact stage, serving, Dask, OOD scores, GPU, reference indexes, point
clouds (figures measured in one run; the learning-stack ones live in private modules imported by their
command)."""

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
