"""Run precompute chunks on a ``dask.distributed`` cluster.

``wassembed precompute DATA --out CACHE --pairs N --scheduler tcp://HOST:PORT`` (or
``precompute(..., client=Client(...))``) runs exactly the chunks the local process pool would run, on the
workers of a Dask cluster. The cache format and content are identical whichever executor computed them:
the plan, the chunking, the solver and the shard writer are the same; only where ``ExactSolver.solve_pairs``
runs changes.

Design
------
- **The dataset travels once.** :meth:`DaskExecutor.start` scatters the histograms and the ground cost to
  every worker (``scatter(..., broadcast=True)``); each task then carries only its chunk's index arrays
  (a few kB) and a reference to the scattered data, never the data itself.
- **The client writes the shards.** Workers *return* their chunk's values; the process that called
  ``precompute`` claims each chunk (``flock`` on the cache's ``locks/``), writes its shard atomically
  (temporary file, fsync, rename) and releases the claim. With one writer per cache the claims and the
  atomic renames stay local to the machine that holds the cache: ``flock`` and ``rename`` are only
  guaranteed atomic on a local filesystem (not on NFS or object storage), and the workers need no access
  to the cache at all, so a cluster without a shared filesystem works. The results are small (8 bytes per
  pair), so sending them back costs nothing next to the solves.
- **Workers that die are survived.** When a worker process dies mid-task, the scheduler reschedules its
  tasks on the remaining workers (a restarted worker fetches the scattered data from a peer). A task whose
  workers keep dying (``KilledWorker``), or whose scattered data was lost with every worker holding it, is
  resubmitted by the client (re-scattering the data if needed) up to ``retries`` times; transient
  exceptions inside a task (``MemoryError``, ``OSError``) are retried by Dask itself (``retries=``).
  Deterministic failures (a :class:`~wassembed.errors.SolverError`) are returned, not retried, and raised
  here naming the pair. A run that was interrupted anyway resumes like any other: rerun the command.
- **Never a silent hang.** While waiting, the executor checks that it is still connected and that the
  cluster has workers; with no worker for ``worker_timeout`` seconds it raises :class:`ClusterError`.

Dask is an optional dependency (``pip install 'wassembed[dask]'``), imported only when this module's
functions are called.
"""


from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from .._validation import check_int, check_number
from ..errors import ClusterError, InputError, SolverError, WassembedError, explain

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskExecutor", "INSTALL_HINT", "connect"]

INSTALL_HINT = "pip install 'wassembed[dask]'  (installs dask[distributed])"




def _distributed():
    """Import ``dask.distributed`` lazily, with an install hint when it is missing."""
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(explain("Dask is not installed", expected="the dask[distributed] package",
                                   received=f"ImportError: {exc}", fix=INSTALL_HINT)) from None
    return distributed


def connect(address: str, *, timeout: float | None = None) -> distributed.Client:
    """Connect to a running Dask scheduler.

    Parameters
    ----------
    address : str
        Scheduler address, e.g. ``tcp://10.0.0.5:8786`` (``HOST:PORT`` means ``tcp://HOST:PORT``).
    timeout : float, optional
        Seconds to wait for the scheduler before giving up (default: Dask's own setting
        ``distributed.comm.timeouts.connect``, 30 s unless configured, e.g. with the environment variable
        ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).

    Returns
    -------
    distributed.Client
        A client that is not registered as the global default; close it when done.

    Raises
    ------
    InputError
        The address is malformed.
    ClusterError
        Dask is not installed (with the install command), or the scheduler did not answer in ``timeout``.

    Examples
    --------
    >>> connect("tcp://127.0.0.1:1", timeout=0.5)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    wassembed.errors.ClusterError: cannot reach the Dask scheduler at tcp://127.0.0.1:1 ...
    """
    if not isinstance(address, str) or not address.strip():
        raise InputError(explain("bad Dask scheduler address", expected="tcp://HOST:PORT",
                                 received=repr(address), fix="e.g. --scheduler tcp://127.0.0.1:8786"))
    address = address.strip()
    if "://" not in address:
        address = "tcp://" + address
    distributed = _distributed()
    if timeout is None:
        import dask
        from dask.utils import parse_timedelta

        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    timeout = check_number("timeout", timeout, low=0, low_open=True, example=10)
    try:
        return distributed.Client(address, timeout=float(timeout), set_as_default=False)
    except ValueError as exc:  # unknown scheme, unparsable host:port
        raise InputError(explain("bad Dask scheduler address", expected="tcp://HOST:PORT",
                                 received=f"{address!r} ({exc})",
                                 fix="e.g. --scheduler tcp://127.0.0.1:8786")) from None
    except (OSError, TimeoutError) as exc:
        raise ClusterError(explain(f"cannot reach the Dask scheduler at {address}",
                                   expected=f"a scheduler answering within {timeout:g} s",
                                   received=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                                   fix="start it with `dask scheduler` (and workers with `dask worker ADDRESS`), "
                                       "check the address and firewall, or drop --scheduler to use local "
                                       "processes")) from None


# -- worker side ------------------------------------------------------------------------------------
class _TaskFailure:
    """A deterministic error raised inside a task, returned (not raised) so that Dask does not retry it."""

    def __init__(self, exc: BaseException):
        self.exc = exc


_MALLOC_TUNED = False


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


def _solve_chunk(weights, M, p, num_iter_max, i, j):
    """Solve one chunk on a worker (``weights`` and ``M`` are the scattered arrays, resolved by Dask)."""
    from ._solver import ExactSolver

    _tune_malloc()
    try:
        return ExactSolver(M, p, num_iter_max=num_iter_max).solve_pairs(weights, i, j)
    except WassembedError as exc:
        return _TaskFailure(exc)


def _worker_versions() -> dict:
    import ot

    from .._version import __version__

    return {"wassembed": __version__, "pot": ot.__version__, "numpy": np.__version__}


# -- client side ------------------------------------------------------------------------------------
class DaskExecutor:
    """Executor of precompute chunks on a Dask cluster (see the module docstring).

    Parameters
    ----------
    client : distributed.Client or str
        A connected client, or a scheduler address (then this executor connects and closes its own client).
    retries : int
        Times a chunk is retried: by Dask on a transient exception inside the task, and by this executor
        when the task's workers kept dying or its input data was lost.
    worker_timeout : float
        Seconds to wait for at least one worker (at start, and whenever the cluster has none) before
        raising :class:`ClusterError`.
    poll_s : float
        How often the cluster's health is checked while waiting for results.

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
        self._args: tuple | None = None
        self._live: dict = {}  # handle -> (i, j)
        self.workers = max(1, self._wait_for_workers())

    # -- helpers ------------------------------------------------------------------------------------
    def _nthreads(self) -> int:
        try:
            return int(sum(self._client.nthreads().values()))
        except Exception as exc:  # any comm failure means the same thing here
            raise self._lost(exc) from None

    def _lost(self, exc) -> ClusterError:
        return ClusterError(explain("lost the connection to the Dask scheduler",
                                    expected="a running scheduler",
                                    received=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                    fix="restart the scheduler and rerun the same command: finished shards are "
                                        "kept and only missing pairs are computed"))

    def _wait_for_workers(self) -> int:
        n = self._nthreads()
        if n > 0:
            return n
        try:
            self._client.wait_for_workers(1, timeout=self.worker_timeout)
        except TimeoutError:
            raise ClusterError(explain("the Dask cluster has no workers",
                                       expected=f"at least one worker within {self.worker_timeout:g} s",
                                       received="none",
                                       fix="start workers with `dask worker SCHEDULER_ADDRESS`")) from None
        return self._nthreads()

    def _check_versions(self) -> None:
        from .._version import __version__

        try:
            found = self._client.run(_worker_versions)
        except (ImportError, AttributeError) as exc:
            raise ClusterError(explain("wassembed is not importable on the Dask workers",
                                       expected=f"wassembed {__version__} installed on every worker",
                                       received=f"{type(exc).__name__}: {exc}",
                                       fix="pip install the same wassembed version in the workers' "
                                           "environment")) from None
        mine = _worker_versions()
        for addr, theirs in found.items():
            diff = {k: (v, mine[k]) for k, v in theirs.items() if k in ("wassembed", "pot") and v != mine[k]}
            if diff:
                raise ClusterError(explain(f"Dask worker {addr} runs other versions",
                                           expected=", ".join(f"{k} {b}" for k, (a, b) in diff.items()),
                                           received=", ".join(f"{k} {a}" for k, (a, b) in diff.items()),
                                           fix="install the client's versions on the workers, so that the "
                                               "cache is the same whichever machine computed it"))

    def _scatter(self) -> None:
        weights, M, p, num_iter_max = self._args
        try:
            self._data = self._client.scatter([weights, M], broadcast=True, hash=False)
        except Exception as exc:  # any comm failure means the same thing here
            raise self._lost(exc) from None

    def _data_lost(self) -> bool:
        return any(f.status != "finished" for f in self._data)

    def _submit(self, i, j):
        weights_f, M_f = self._data
        _, _, p, num_iter_max = self._args
        return self._client.submit(_solve_chunk, weights_f, M_f, p, num_iter_max, i, j, pure=False,
                                   retries=self.retries)

    # -- executor protocol --------------------------------------------------------------------------
    def start(self, weights, M, p, num_iter_max) -> None:
        """Check the workers' versions and ship the histograms and ground cost to every worker, once."""
        self._check_versions()
        self._args = (np.ascontiguousarray(weights, dtype=np.float64), np.ascontiguousarray(M, dtype=np.float64),
                      int(p), int(num_iter_max))
        self._scatter()

    def submit(self, i, j):
        """Submit one chunk; returns its handle (a Dask future)."""
        fut = self._submit(i, j)
        self._live[fut] = (i, j)
        return fut

    def wait_any(self, handles) -> list:
        """Block until at least one handle is done; checks the cluster's health while waiting."""
        no_worker_since = None
        while True:
            try:
                with self._client.as_current():  # wait() uses the current client; ours may not be the default
                    done, _ = self._dist.wait(handles, timeout=self.poll_s, return_when="FIRST_COMPLETED")
                if done:
                    return list(done)
            except TimeoutError:
                pass
            except self._dist.CancelledError:  # their input data was lost with the workers: result() resubmits
                return [h for h in handles if h.status in ("cancelled", "lost", "error", "finished")] or list(handles)
            if self._client.status not in ("running", "connecting"):
                raise self._lost(RuntimeError(f"client status {self._client.status}"))
            if self._nthreads() == 0:
                no_worker_since = no_worker_since or time.monotonic()
                if time.monotonic() - no_worker_since > self.worker_timeout:
                    raise ClusterError(explain("the Dask cluster lost all its workers",
                                               expected=f"a worker back within {self.worker_timeout:g} s",
                                               received="none", fix="restart the workers and rerun the same "
                                                                    "command: finished shards are kept"))
            else:
                no_worker_since = None

    def result(self, handle) -> np.ndarray:
        """Values of a finished chunk; resubmits it (up to ``retries`` times) if its workers died."""
        i, j = self._live.pop(handle)
        fut = handle
        attempt = 0
        while True:
            try:
                out = fut.result()
                break
            except (self._dist.KilledWorker, self._dist.CancelledError) as exc:
                attempt += 1
                if attempt > self.retries:
                    raise ClusterError(explain(f"a chunk of {len(i)} pairs failed {attempt} times on the cluster",
                                               expected="a worker to finish it",
                                               received=f"{type(exc).__name__}: {exc}",
                                               fix="check the workers' logs (memory limits, crashes) and "
                                                   "rerun: finished shards are kept")) from None
                if self._data_lost():  # every worker holding the data died: ship it again
                    self._wait_for_workers()
                    self._scatter()
                fut = self._submit(i, j)
        if isinstance(out, _TaskFailure):
            raise out.exc
        values = np.asarray(out, dtype=np.float64)
        if values.shape != (len(i),):
            raise SolverError(explain("a Dask worker returned a malformed chunk", expected=f"{len(i)} values",
                                      received=f"shape {values.shape}", fix="check the workers' wassembed version"))
        return values

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
