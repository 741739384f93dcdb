"""Run precompute chunks on a ``dask.distributed`` cluster.

``wassembed precompute DATA --out CACHE --pairs N --scheduler tcp://HOST:PORT`` (or
``precompute(..., client=Client(...))``) runs exactly the chunks the local process pool would run, on the
workers of a Dask cluster. The cache format and content are identical whichever executor computed them:
the plan, the chunking, the solver and the shard writer are the same; only where the chunks are solved
(``ExactSolver.solve_pairs`` for histograms, ``CloudSolver.solve_pairs`` for point clouds) changes. The
per-image LOT targets run on the same cluster the same way: any :class:`~wassembed.exact._jobs.ExactJob`.

Design
------
- **The dataset travels once per worker.** :meth:`DaskExecutor.start` scatters the data (the histograms, or
  the point-cloud set: the parts of an :class:`~wassembed.exact._jobs.ExactJob`) to one
  worker; each task then carries only its chunk's index arrays (a few kB), the job's settings, and
  references to the scattered data, which a worker fetches from a peer when its first task needs it. (No
  ``broadcast=True``: Dask's broadcast copies through a list of workers fixed when it starts, so a worker
  that dies during it makes it fail, or never return.)
- **The client writes the shards.** Workers *return* their chunk's values; the process that called
  ``precompute`` claims each chunk (``flock`` on the cache's ``locks/``), writes its shard atomically
  (temporary file, fsync, rename) and releases the claim. With one writer per cache the claims and the
  atomic renames stay local to the machine that holds the cache: ``flock`` and ``rename`` are only
  guaranteed atomic on a local filesystem (not on NFS or object storage), and the workers need no access
  to the cache at all, so a cluster without a shared filesystem works. The results are small (8 bytes per
  pair), so sending them back costs nothing next to the solves.
- **A worker lost at any moment is survived**, at start-up, mid-run and at the end:

  - nothing is broadcast to every worker (a broadcast fails as a whole when one of them dies): the version
    check is part of each task (a worker checks itself on its first task), after one ordinary task at
    start asked a worker which wassembed it has installed (a worker without it cannot even unpickle a
    chunk's task: it would leave the cluster instead of failing the task);
  - shipping the data is retried (on the workers alive then) until it succeeds; data lost with every
    worker holding it is shipped again, and the chunks that needed it are resubmitted;
  - a task whose worker died is rescheduled by Dask; one whose workers keep dying (``KilledWorker``) or
    that was cancelled is resubmitted by the client, up to ``retries`` times (resubmissions because the
    data was lost do not count); a result lost with its worker before the client fetched it is computed
    again; transient exceptions inside a task (``MemoryError``, ``OSError``) are retried by Dask
    (``retries=``). Deterministic failures (a :class:`~wassembed.errors.SolverError`, other versions on a
    worker) are returned, not retried, and raised here.
- **Never a silent hang.** While waiting, the executor checks that it is still connected and that the
  cluster has workers. With none it says so on stderr and waits for workers to come back; after
  ``worker_timeout`` seconds without any it raises :class:`ClusterError`. A run stopped anyway resumes like
  any other: rerun the command, finished shards are kept.

Dask is an optional dependency (``pip install 'wassembed[dask]'``), imported only when this module's
functions are called.
"""


from __future__ import annotations

import asyncio
import importlib.metadata
import random
import sys
import time
from typing import TYPE_CHECKING

from .._validation import check_int, check_number
from ..errors import ClusterError, InputError, explain, param
from ._dask_connect import INSTALL_HINT, _distributed, connect
from ._dask_workers import TaskFailure, run_task, worker_versions
from ._jobs import ExactJob

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskExecutor", "INSTALL_HINT", "connect"]

#: statuses of a Dask future that will not change by themselves
_DONE = ("finished", "error", "cancelled")
#: what a Dask wait or result with a timeout raises (one class from Python 3.11 on)
_TIMEOUT = (TimeoutError, asyncio.TimeoutError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class DaskExecutor:
    """Executor of precompute chunks on a Dask cluster (see the module docstring).

    Parameters
    ----------
    client : distributed.Client or str
        A connected client, or a scheduler address (then this executor connects and closes its own client).
    retries : int
        Times a chunk is retried: by Dask on a transient exception inside the task, and by this executor
        when the task's workers kept dying (``KilledWorker``) or it was cancelled.
    worker_timeout : float
        Seconds to wait for workers to come back whenever the cluster has none (at start or during the run;
        the CLI's ``--worker-timeout``) before raising :class:`ClusterError`. The wait is announced on stderr.
    poll_s : float
        How often the cluster's health is checked while waiting.

    Attributes
    ----------
    name : str
        ``"dask"`` (reported in ``PrecomputeResult.executor``).
    workers : int
        Worker threads in the cluster when the executor was created (sets how many chunks are in flight).

    Examples
    --------
    >>> from distributed import Client, LocalCluster                      # doctest: +SKIP
    >>> from wassembed.exact import precompute                            # doctest: +SKIP
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
    ...     precompute("digits", "cache", pairs=10_000, client=client)    # doctest: +SKIP
    """

    name = "dask"

    def __init__(self, client: distributed.Client | str, *, retries: int = 3, worker_timeout: float = 60.0,
                 poll_s: float = 2.0):
        self.retries = check_int("retries", retries, minimum=0, example=3)
        self.worker_timeout = check_number("worker_timeout", worker_timeout, low=0, low_open=True, example=60)
        self.poll_s = check_number("poll_s", poll_s, low=0, low_open=True, example=2)
        self._owns_client = isinstance(client, str)
        self._address_given = client if self._owns_client else None
        if self._owns_client:
            client = connect(client)
        distributed = _distributed()
        if not isinstance(client, distributed.Client):
            raise InputError(explain("bad Dask client", expected="a distributed.Client or a scheduler address",
                                     received=type(client).__name__,
                                     fix="pass Client(cluster) or 'tcp://HOST:PORT'"))
        self._client = client
        self._dist = distributed
        self._data: list = []
        self._job: ExactJob | None = None
        self._versions: dict = {}
        self._live: dict = {}  # handle -> (i, j, the data references it uses)
        self._idle_since: float | None = None  # when the cluster was last seen without workers
        try:
            self.workers = max(1, self._await_workers())
        except ClusterError:
            self.close()
            raise

    # -- cluster health -----------------------------------------------------------------------------
    def _address(self) -> str:
        try:
            return str(self._client.scheduler.address)
        except Exception:  # no scheduler comm any more: a placeholder in a message
            return "SCHEDULER_ADDRESS"

    def _lost(self, exc) -> ClusterError:
        return ClusterError(explain("lost the connection to the Dask scheduler",
                                    expected="a running scheduler", received=_first_line(exc),
                                    fix="restart the scheduler and rerun the same command: finished shards are "
                                        "kept and only missing pairs are computed"))

    def _connected(self) -> bool:
        return self._client.status in ("running", "connecting")

    def _nthreads(self) -> int:
        try:
            return int(sum(self._client.nthreads().values()))
        except Exception as exc:  # any comm failure means the same thing here
            raise self._lost(exc) from None

    def _health(self) -> int:
        """Worker threads now; announces a wait for workers, raises when it lasted ``worker_timeout``."""
        if not self._connected():
            raise self._lost(RuntimeError(f"client status {self._client.status}"))
        n, now = self._nthreads(), time.monotonic()
        if n > 0:
            if self._idle_since is not None:
                _say(f"Dask workers are back ({n} thread{'s' * (n > 1)}) after {now - self._idle_since:.0f} s: "
                     "resuming")
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
            _say(f"no Dask worker is connected to {self._address()}: waiting up to {self.worker_timeout:g} s for "
                 f"one (start workers with `dask worker {self._address()}`; the worker timeout sets the wait)")
        elif now - self._idle_since > self.worker_timeout:
            raise ClusterError(explain("the Dask cluster has no workers",
                                       expected=f"a worker within {self.worker_timeout:g} s "
                                                f"({param('worker_timeout')})",
                                       received=f"none for {now - self._idle_since:.0f} s",
                                       fix=f"start workers with `dask worker {self._address()}`, then rerun the "
                                           "same command: finished shards are kept and only missing pairs are "
                                           "computed"))
        return n

    def _await_workers(self) -> int:
        """Worker threads, once there is at least one (see :meth:`_health`)."""
        while True:
            n = self._health()
            if n > 0:
                return n
            time.sleep(min(self.poll_s, 0.25))

    # -- the data and the tasks ---------------------------------------------------------------------
    def _scatter(self) -> None:
        """Ship the data (the job's parts) to the cluster, retrying while workers come and go."""
        parts = list(self._job.parts)
        self._data = []  # references to lost data are dropped; Dask forgets it
        failing_since = None
        while True:
            self._await_workers()
            try:  # all to one worker: a failed scatter leaves no orphan copy on another one
                target = random.choice(sorted(self._client.nthreads()))
                self._data = self._client.scatter(parts, workers=[target], hash=False,
                                                  timeout=max(self.poll_s, 1.0))
                return
            except Exception as exc:  # a worker that died meanwhile, or none running: try again on the others
                if not self._connected():
                    raise self._lost(exc) from None
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > self.worker_timeout:
                    raise ClusterError(explain("cannot ship the data to the Dask workers",
                                               expected=f"a worker to accept it within {self.worker_timeout:g} s",
                                               received=_first_line(exc),
                                               fix="check the workers' logs (memory limits) and rerun the same "
                                                   "command: finished shards are kept")) from None
                time.sleep(min(self.poll_s, 0.25))

    def _data_lost(self) -> bool:
        return not self._data or any(f.status != "finished" for f in self._data)

    def _submit(self, task):
        if self._data_lost():  # every worker holding it died: ship it again
            self._scatter()
        fut = self._client.submit(run_task, self._job.bare(), task, self._versions, *self._data,
                                  pure=False, retries=self.retries)
        self._live[fut] = (task, self._data)
        return fut

    def _fetch(self, fut):
        """The value of a done future; waits again while a result lost with its worker is recomputed."""
        while True:
            self.wait_any([fut])
            try:
                return fut.result(timeout=max(2 * self.poll_s, 2.0))
            except ImportError as exc:
                if fut.status != "error":
                    raise
                raise ClusterError(explain("wassembed cannot run on the Dask workers",
                                           expected="the client's wassembed version installed on every worker",
                                           received=_first_line(exc),
                                           fix="pip install the same wassembed version in the workers' "
                                               "environment")) from None
            except (OSError, *_TIMEOUT) as exc:  # its value died with its worker: Dask computes it again
                if fut.status in ("error", "cancelled"):  # the task's own exception
                    raise
                if not self._connected():
                    raise self._lost(exc) from None
                if not isinstance(exc, _TIMEOUT):  # a comm error: not in a tight loop
                    time.sleep(min(self.poll_s, 0.25))

    def _check_install(self) -> None:
        """Ask a worker which wassembed it has installed, with an ordinary task of the standard library.

        A worker without wassembed, or with another version, cannot even unpickle a chunk's task: it leaves the
        cluster instead of failing the task, so the run would only see its workers vanish. A task, not a
        broadcast: when its worker dies Dask runs it on another. The chunks check the versions themselves.
        """
        mine = _installed_version()
        if mine is None:  # not installed as a package here (run from a source tree)
            return
        fut = self._client.submit(importlib.metadata.version, "wassembed", pure=False)
        try:
            theirs = self._fetch(fut)
        except (self._dist.KilledWorker, self._dist.CancelledError):  # its workers kept dying: the chunks check
            return
        if theirs != mine:
            raise ClusterError(explain("a Dask worker has another wassembed installed", expected=f"wassembed {mine}",
                                       received=f"wassembed {theirs}",
                                       fix="install the client's version on the workers, so that the cache is the "
                                           "same whichever machine computed it"))

    # -- executor protocol --------------------------------------------------------------------------
    def start(self, job: ExactJob) -> None:
        """Check a worker's wassembed, then ship the job's data into the cluster, once (both retried while workers
        come and go). An executor that owns its client reconnects when a previous job's :meth:`close` closed it.

        Parameters
        ----------
        job : ExactJob
            The pairs of a dataset, or its images' LOT targets.
        """
        if self._owns_client and not self._connected():
            self._client = connect(self._address_given)
        self._check_install()
        self._versions = worker_versions()
        self._job = job
        self._scatter()

    def submit(self, task):
        """Submit one task (a chunk of pairs ``(i, j)`` or of images); returns its handle (a Dask future)."""
        return self._submit(task)

    def wait_any(self, handles) -> list:
        """Block until at least one handle is done; checks the cluster's health while waiting."""
        while True:
            done = [h for h in handles if h.status in _DONE]
            if done:
                return done
            try:
                with self._client.as_current():  # wait() uses the current client; ours may not be the default
                    self._dist.wait(handles, timeout=self.poll_s, return_when="FIRST_COMPLETED")
            except (*_TIMEOUT, self._dist.CancelledError):  # nothing done yet; cancelled ones are listed above
                pass
            if not any(h.status in _DONE for h in handles):
                self._health()

    def result(self, handle):
        """Result of a finished task; resubmits it (up to ``retries`` times) if its workers died."""
        task, used = self._live[handle]
        fut, failures = handle, 0
        while True:
            try:
                out = self._fetch(fut)
                break
            except (self._dist.KilledWorker, self._dist.CancelledError) as exc:
                self._live.pop(fut, None)
                # cancelled because its input data died with the workers (shipped again since, or to be): no fault
                lost = isinstance(exc, self._dist.CancelledError) and (used is not self._data or self._data_lost())
                failures += not lost
                if failures > self.retries:
                    raise ClusterError(explain(f"a chunk of {self._job.units(task)} {self._job.work} failed "
                                               f"{failures} times on the cluster", expected="a worker to finish it",
                                               received=_first_line(exc),
                                               fix="check the workers' logs (memory limits, crashes) and "
                                                   "rerun: finished shards are kept")) from None
                fut = self._submit(task)
                used = self._data
        self._live.pop(fut, None)
        if isinstance(out, TaskFailure):
            raise out.exc
        return self._job.check(task, out)

    def close(self, cancel: bool = False) -> None:
        """Cancel chunks still in flight (when ``cancel``) and release the scattered data."""
        try:
            if cancel and self._live:
                self._client.cancel(list(self._live), force=True)
            if self._data:
                self._client.cancel(self._data, force=True)
        except Exception:  # best effort: the cluster may already be gone
            pass
        self._live.clear()
        self._data = []
        if self._owns_client:
            try:
                self._client.close()
            except Exception:  # best effort, as above
                pass


def _installed_version() -> str | None:
    """The version of the installed wassembed distribution (None when it is not installed, e.g. a source tree)."""
    try:
        return importlib.metadata.version("wassembed")
    except importlib.metadata.PackageNotFoundError:
        return None


def _say(message: str) -> None:
    """A line on stderr about the cluster (on a terminal the progress bar shares it: a line of its own)."""
    lead = "\n" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{lead}wassembed: {message}\n")
    sys.stderr.flush()
