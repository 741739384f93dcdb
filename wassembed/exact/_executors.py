"""Executors of exact solves: in-process and a local process pool (the Dask one is in ``_dask``).

Every executor is started with the data (a :class:`~wassembed.data.HistogramSet` or a
:class:`~wassembed.data.PointCloudSet`), ``p`` and the iteration limit, and turns them into one
:class:`~wassembed.exact._datakind.PairJob`: what its workers receive once, and from which each builds the
solver of its kind (:class:`~wassembed.exact.ExactSolver` or :class:`~wassembed.exact.CloudSolver`).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
from typing import Any, Protocol

import numpy as np

from .._deps import exact_stage_only
from .._validation import check_pos_int
from ._datakind import Data, PairJob

__all__ = ["Executor", "InProcessExecutor", "LocalPoolExecutor", "default_workers"]


class Executor(Protocol):
    """What :func:`~wassembed.exact.precompute` needs of an executor: start once, submit chunks of pairs,
    collect finished ones, close. Results always come back to the calling process, which writes the shards.

    ``start(data, p, num_iter_max)`` receives the histograms or the point clouds; ``PairJob.of(data, p,
    num_iter_max)`` is what to ship to the workers, and its ``solver()`` what solves a chunk there."""

    name: str
    workers: int

    def start(self, data: Data, p: int, num_iter_max: int) -> None: ...

    def submit(self, i: np.ndarray, j: np.ndarray) -> Any: ...

    def wait_any(self, handles: list) -> list: ...

    def result(self, handle: Any) -> np.ndarray: ...

    def close(self, cancel: bool = False) -> None: ...


def default_workers() -> int:
    """Number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1

# -- executors --------------------------------------------------------------------------------------
_STATE: dict = {}


def _init_worker(job: PairJob):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and keeps finished shards
    exact_stage_only()  # a spawned worker imports POT afresh: without torch (a forked one inherits the parent's)
    _STATE["solve"] = job.solver()


def _solve_chunk(i, j):
    return _STATE["solve"](i, j)


class InProcessExecutor:
    """Solve chunks in the calling process (``workers=1``)."""

    name = "in-process"
    workers = 1

    def start(self, data: Data, p: int, num_iter_max: int) -> None:
        self._solve = PairJob.of(data, p, num_iter_max).solver()

    def submit(self, i: np.ndarray, j: np.ndarray) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(self._solve(i, j))
        except Exception as exc:  # any error: delivered through the future like a pool would
            fut.set_exception(exc)
        return fut

    def wait_any(self, handles: list) -> list:
        return list(handles)

    def result(self, handle: cf.Future) -> np.ndarray:
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        pass


class LocalPoolExecutor:
    """A local process pool; the dataset (and the histograms' ground cost) reach each worker once (initializer)."""

    name = "process-pool"

    def __init__(self, workers: int):
        self.workers = check_pos_int("workers", workers)

    def start(self, data: Data, p: int, num_iter_max: int) -> None:
        import multiprocessing as mp

        import ot  # noqa: F401 - imported once here (POT's import is slow), inherited by the forked workers

        # fork: no `if __name__ == "__main__"` guard needed in user scripts, and the arrays reach the workers
        # without pickling. The workers only run numpy and POT (no threads of their own).
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(PairJob.of(data, p, num_iter_max),))
        # start every worker now, before this process starts threads (progress bar): fork after threads is unsafe
        cf.wait([self._pool.submit(os.getpid) for _ in range(self.workers)])

    def submit(self, i: np.ndarray, j: np.ndarray) -> cf.Future:
        return self._pool.submit(_solve_chunk, i, j)

    def wait_any(self, handles: list) -> list:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: cf.Future) -> np.ndarray:
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)

