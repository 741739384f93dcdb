"""Executors of exact solves: in-process and a local process pool (the Dask one is in ``_dask``)."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
from typing import Any, Protocol

import numpy as np

from .._deps import exact_stage_only
from .._validation import check_pos_int
from ._solver import ExactSolver

__all__ = ["Executor", "InProcessExecutor", "LocalPoolExecutor", "default_workers"]


class Executor(Protocol):
    """What :func:`~wassembed.exact.precompute` needs of an executor: start once, submit chunks of pairs,
    collect finished ones, close. Results always come back to the calling process, which writes the shards."""

    name: str
    workers: int

    def start(self, weights: np.ndarray, M: np.ndarray, p: int, num_iter_max: int) -> None: ...

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


def _init_worker(weights, M, p, num_iter_max):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and keeps finished shards
    exact_stage_only()  # a spawned worker imports POT afresh: without torch (a forked one inherits the parent's)
    _STATE["weights"] = weights
    _STATE["solver"] = ExactSolver(M, p, num_iter_max=num_iter_max)


def _solve_chunk(i, j):
    return _STATE["solver"].solve_pairs(_STATE["weights"], i, j)


class InProcessExecutor:
    """Solve chunks in the calling process (``workers=1``)."""

    name = "in-process"
    workers = 1

    def start(self, weights: np.ndarray, M: np.ndarray, p: int, num_iter_max: int) -> None:
        self._solver = ExactSolver(M, p, num_iter_max=num_iter_max)
        self._weights = weights

    def submit(self, i: np.ndarray, j: np.ndarray) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(self._solver.solve_pairs(self._weights, i, j))
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
    """A local process pool; the dataset and cost reach each worker once (initializer)."""

    name = "process-pool"

    def __init__(self, workers: int):
        self.workers = check_pos_int("workers", workers)

    def start(self, weights: np.ndarray, M: np.ndarray, p: int, num_iter_max: int) -> None:
        import multiprocessing as mp

        import ot  # noqa: F401 - imported once here (POT's import is slow), inherited by the forked workers

        # fork: no `if __name__ == "__main__"` guard needed in user scripts, and the arrays reach the workers
        # without pickling. The workers only run numpy and POT (no threads of their own).
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(weights, M, p, num_iter_max))
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

