"""Executors of exact work: in-process and a local process pool (the Dask one is in ``_dask``).

An executor runs the tasks of one :class:`~wassembed.exact._jobs.ExactJob` at a time: chunks of pairs, or
chunks of images for their LOT targets. ``start(job)`` ships the job's data to the workers once; each task
carries only its indices; results come back to the calling process, which writes them. The same jobs run on
every executor, so the cache does not depend on which one computed it.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
from typing import Any, Protocol

from .._deps import exact_stage_only
from .._validation import check_pos_int
from ._jobs import ExactJob

__all__ = ["Executor", "InProcessExecutor", "LocalPoolExecutor", "default_workers"]


class Executor(Protocol):
    """What :func:`~wassembed.exact.precompute` needs of an executor: start a job, submit its tasks, collect
    finished ones, close. Results always come back to the calling process, which writes the cache.

    ``start(job)`` receives an :class:`~wassembed.exact._jobs.ExactJob` (its ``parts`` are what to ship to the
    workers, its ``runner()`` what runs a task there); ``close`` ends the job. An executor may run several
    jobs one after the other (the pairs, then the LOT targets)."""

    name: str
    workers: int

    def start(self, job: ExactJob) -> None: ...

    def submit(self, task: Any) -> Any: ...

    def wait_any(self, handles: list) -> list: ...

    def result(self, handle: Any) -> Any: ...

    def close(self, cancel: bool = False) -> None: ...


def default_workers() -> int:
    """Number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1

# -- executors --------------------------------------------------------------------------------------
_STATE: dict = {}


def _init_worker(job: ExactJob):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and keeps finished shards
    exact_stage_only()  # a spawned worker imports POT afresh: without torch (a forked one inherits the parent's)
    _STATE["run"] = job.runner()


def _run_task(task):
    return _STATE["run"](task)


class InProcessExecutor:
    """Run tasks in the calling process (``workers=1``)."""

    name = "in-process"
    workers = 1

    def start(self, job: ExactJob) -> None:
        self._job, self._run = job, job.runner()

    def submit(self, task) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(self._job.check(task, self._run(task)))
        except Exception as exc:  # any error: delivered through the future like a pool would
            fut.set_exception(exc)
        return fut

    def wait_any(self, handles: list) -> list:
        return list(handles)

    def result(self, handle: cf.Future):
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        pass


class LocalPoolExecutor:
    """A local process pool; the job's data reach each worker once (the pool's initializer)."""

    name = "process-pool"

    def __init__(self, workers: int):
        self.workers = check_pos_int("workers", workers)

    def start(self, job: ExactJob) -> None:
        import multiprocessing as mp

        import ot  # noqa: F401 - imported once here (POT's import is slow), inherited by the forked workers

        # fork: no `if __name__ == "__main__"` guard needed in user scripts, and the arrays reach the workers
        # without pickling. The workers only run numpy, POT and LEMON (no threads of their own).
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self._job = job
        self._tasks: dict = {}
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(job,))
        # start every worker now, before this process starts threads (progress bar): fork after threads is unsafe
        cf.wait([self._pool.submit(os.getpid) for _ in range(self.workers)])

    def submit(self, task) -> cf.Future:
        fut = self._pool.submit(_run_task, task)
        self._tasks[fut] = task
        return fut

    def wait_any(self, handles: list) -> list:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: cf.Future):
        return self._job.check(self._tasks.pop(handle), handle.result())

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._tasks = {}
