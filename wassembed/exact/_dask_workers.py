"""What runs on the Dask workers: one chunk of solves, and the check that the worker runs the client's versions.

The version check lives in the task itself instead of a ``client.run`` broadcast to every worker before the
run: a broadcast fails as a whole when one worker dies during it, and it never sees the workers that join
later. Each worker process checks its versions on its first task (then remembers the answer), so a worker
that dies is simply never checked, and a worker that joins mid-run is checked before it computes anything.
"""

from __future__ import annotations

import numpy as np

from ..errors import ClusterError, WassembedError, explain

__all__ = ["TaskFailure", "run_task", "worker_versions"]

#: the versions that must match between the client and the workers (the cache must not depend on the machine)
CHECKED = ("wassembed", "pot", "pylmcf")


class TaskFailure:
    """A deterministic error raised inside a task, returned (not raised) so that Dask does not retry it.

    Parameters
    ----------
    exc : BaseException
        The error, raised again by the client.
    """

    def __init__(self, exc: BaseException):
        self.exc = exc


_MALLOC_TUNED = False
_VERSION_CHECKS: dict = {}  # the client's versions -> None (same) or the ClusterError to return


def _tune_malloc() -> None:
    """Let this worker process reuse heap memory between solves (once; glibc only).

    Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so that they hand memory back to the OS.
    For this workload that costs a fifth of the throughput: each solve allocates a few hundred kB (the cost
    sub-matrix, POT's network-simplex arrays), and (1) setting any glibc malloc threshold disables the
    dynamic mmap threshold (mallopt(3)), so every allocation over 128 kB is an ``mmap``/``munmap`` pair, and
    (2) with a 64 kB trim threshold the heap is shrunk after nearly every solve and grown again by the next,
    so every solve pays fresh page faults. Measured on MNIST chunks: 1.2–1.5× the time per pair of the same
    code in a plain process; with the thresholds below, the same. A worker then keeps at most 64 MB of free
    heap for reuse.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: temporaries up to 32 MB come from the heap
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: keep up to 64 MB of free heap for the next solve
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def worker_versions() -> dict:
    """Versions of wassembed, POT and numpy in this process.

    Returns
    -------
    dict
        ``{"wassembed": ..., "pot": ..., "numpy": ..., "pylmcf": ...}`` (pylmcf: None when unavailable).
    """
    import ot

    from .._version import __version__
    from ._grid import lemon

    pylmcf = lemon()
    return {"wassembed": __version__, "pot": ot.__version__, "numpy": np.__version__,
            "pylmcf": None if pylmcf is None else pylmcf.__version__}


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker (a direct call)
        return "(not a Dask worker)"


def _version_problem(expected: dict) -> ClusterError | None:
    """The error to report when this process runs other versions than ``expected`` (checked once)."""
    key = tuple(sorted(expected.items()))
    if key not in _VERSION_CHECKS:
        mine = worker_versions()
        diff = {k: (mine.get(k), v) for k, v in expected.items() if k in CHECKED and mine.get(k) != v}
        _VERSION_CHECKS[key] = None if not diff else ClusterError(explain(
            f"Dask worker {_worker_address()} runs other versions",
            expected=", ".join(f"{k} {want}" for k, (_, want) in diff.items()),
            received=", ".join(f"{k} {got}" for k, (got, _) in diff.items()),
            fix="install the client's versions on the workers, so that the cache is the same whichever machine "
                "computed it"))
    return _VERSION_CHECKS[key]


def run_task(job, task, versions, *parts):
    """Run one task of an :class:`~wassembed.exact._jobs.ExactJob` on a worker, after checking (once per process)
    that it runs the client's ``versions``.

    Parameters
    ----------
    job : ExactJob
        The job without its parts (:meth:`~wassembed.exact._jobs.ExactJob.bare`).
    task
        A chunk of pairs ``(i, j)`` or of images ``idx``.
    versions : dict
        The client's :func:`worker_versions`.
    *parts
        The job's data (scattered, resolved by Dask).

    Returns
    -------
    result or TaskFailure
        The task's result, or the deterministic error (other versions, a solve not optimal).
    """
    problem = _version_problem(versions)
    if problem is not None:
        return TaskFailure(problem)
    _tune_malloc()
    try:
        return job.with_parts(parts).runner()(task)
    except WassembedError as exc:
        return TaskFailure(exc)
