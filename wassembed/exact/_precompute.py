"""Precompute exact distances into a cache: plan → chunks → executor → atomic shards.

The plan (which pairs) is deterministic given the seed; it is cut into fixed chunks whose shard name is a
hash of their content, so a rerun of the same command skips every chunk already stored (resume), and
several processes filling one cache claim chunks with ``flock`` and never compute one twice. Chunks run
on an executor: in-process (``workers=1``), a local process pool (the default, all cores) or a Dask
cluster (``client=`` / ``--scheduler``, see :class:`~wassembed.exact.DaskExecutor`). Results come back to this
process, which writes each shard atomically: whichever executor computed them, the cache is the same.

The data is histograms (:class:`~wassembed.data.HistogramSet`, solved by :class:`~wassembed.exact.ExactSolver`)
or weighted point clouds (:class:`~wassembed.data.PointCloudSet`, solved by :class:`~wassembed.exact.CloudSolver`);
plans, chunks, claims, shards and resumption are the same for both.
"""


from __future__ import annotations

import contextlib
import errno
import os
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._progress import progress as show_progress
from .._validation import check_int, check_pos_int
from ..data import DataSet, HistogramSet, PointCloudSet, load_dataset, parse_p
from ..errors import CacheError, InputError, explain, param
from ._cache import DistanceCache
from ._copies import auto_copies
from ._executors import Executor, InProcessExecutor, LocalPoolExecutor, default_workers
from ._jobs import ExactJob
from ._pairs import (
    all_pairs,
    block_pairs,
    canonical,
    cross_pairs,
    parse_range,
    random_pairs,
    read_pairs_file,
    sparse_pairs,
)
from ._shards import chunk_key
from ._solver import DEFAULT_NUM_ITER_MAX
from ._teacher import compute_lot_targets, has_lot_support

__all__ = ["PrecomputeResult", "plan_pairs", "precompute"]

SAMPLINGS = ("random", "blocks", "sparse")

#: a number of pairs, "all", explicit index arrays (i, j), or None (with a pairs file)
PairsSpec = int | str | tuple[ArrayLike, ArrayLike] | None
#: an index range "A:B", explicit indices, or None (every image)
IndexSpec = str | ArrayLike | None


@dataclass(frozen=True)
class PrecomputeResult:
    """What a precompute run did."""

    cache: str
    requested: int
    already_cached: int
    computed: int
    done_elsewhere: int
    seconds: float
    pairs_per_s: float
    workers: int
    executor: str
    total_in_cache: int
    #: per-image LOT targets: images of the plan, solved now (exact solves spent), seconds (0 when off)
    lot_requested: int = 0
    lot_computed: int = 0
    #: of those, elastic copies (``lot_copies``)
    lot_copies_computed: int = 0
    lot_seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def plan_pairs(data: HistogramSet | PointCloudSet, pairs: PairsSpec = None, *, seed: int = 0, images: IndexSpec = None,
               against: IndexSpec = None, sampling: str = "random", block_size: int = 64,
               pairs_file: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Build the requested pair plan (validated; nothing is written).

    Parameters
    ----------
    data : HistogramSet or PointCloudSet
        Only its size ``n`` is used.
    pairs : int, "all", tuple of arrays (i, j), or None
        How many pairs to sample, every pair of ``images``, or an explicit list.
    images : str or array-like, optional
        Index range ``"A:B"`` (or indices) the pairs are drawn among (default: all images).
    against : str or array-like, optional
        If given, pairs go between ``images`` and ``against`` (e.g. test images against references).
    sampling : {"random", "blocks", "sparse"}
        Uniform pairs; all pairs inside random groups of ``block_size`` images (cheaper to train on); or
        sparse blocks: inside such groups, each image with 2 random partners per round (:func:`sparse_pairs`).
    pairs_file : path, optional
        An explicit list of pairs (see :func:`wassembed.exact.read_pairs_file`).
    """
    n = data.n
    if pairs_file is not None:
        return read_pairs_file(pairs_file, n)
    if isinstance(pairs, tuple) and len(pairs) == 2:
        a, b = np.asarray(pairs[0]), np.asarray(pairs[1])
        if a.ndim != 1 or a.shape != b.shape or a.size == 0 or not all(
                np.issubdtype(x.dtype, np.integer) for x in (a, b)):
            raise InputError(explain("bad explicit pairs", expected="two non-empty 1-D integer arrays (i, j) of "
                                     "one length", received=f"shapes {a.shape} and {b.shape}, dtypes {a.dtype} "
                                     f"and {b.dtype}", fix="pass pairs=(i, j) with one entry per pair"))
        i, j = canonical(a, b)
        if i.ndim != 1 or i.size == 0 or i.min() < 0 or j.max() >= n or (i == j).any():
            raise InputError(explain("bad explicit pairs", expected=f"distinct indices in 0..{n - 1}, no self-pairs",
                                     received=f"{i.size} pairs", fix="check the (i, j) arrays"))
        return i, j
    if pairs not in (None, "all") and (isinstance(pairs, (bool, float)) or not isinstance(pairs, (int, np.integer))):
        raise InputError(explain(f"bad {param('pairs')}", expected="a positive integer, 'all', a pair of index "
                                 "arrays (i, j), or a pairs file", received=repr(pairs),
                                 fix=f"e.g. {param('pairs', 20000)}"))
    idx = parse_range(images, n, what="images")
    if against is not None:
        other = parse_range(against, n, what="against")
        return cross_pairs(idx, other, None if pairs in (None, "all") else int(pairs), seed=seed)
    if pairs == "all":
        return all_pairs(idx)
    if pairs is None:
        raise InputError(explain("no pairs requested", expected="a number of pairs, 'all', or a pairs file",
                                 received="nothing", fix=f"pass {param('pairs', 'N')}"))
    if sampling not in SAMPLINGS:
        raise InputError(explain("unknown sampling", expected=" or ".join(SAMPLINGS), received=repr(sampling),
                                 fix=f"pass {param('sampling', repr('random'))}, 'blocks' or 'sparse'"))
    if sampling == "blocks":
        return block_pairs(idx, pairs, block_size=block_size, seed=seed)
    if sampling == "sparse":
        return sparse_pairs(idx, pairs, block_size=block_size, seed=seed)
    return random_pairs(idx, pairs, seed=seed)


def _make_executor(workers, client):
    if client is not None:
        from ._dask import DaskExecutor

        return DaskExecutor(client)
    w = default_workers() if workers is None or (not isinstance(workers, bool) and workers == 0) \
        else check_pos_int("workers", workers, example=2)
    return InProcessExecutor() if w == 1 else LocalPoolExecutor(w)


# -- the run ----------------------------------------------------------------------------------------
def precompute(data: HistogramSet | PointCloudSet | str | os.PathLike, out: str | os.PathLike,
               pairs: PairsSpec = None, *, seed: int = 0, workers: int | None = None, p: int = 2,
               images: IndexSpec = None, against: IndexSpec = None, sampling: str = "random", block_size: int = 64,
               pairs_file: str | os.PathLike | None = None, chunk_size: int = 256, progress: bool = True,
               client: Any = None, executor: Executor | None = None,
               num_iter_max: int = DEFAULT_NUM_ITER_MAX, lot: bool = True,
               lot_images: IndexSpec = None, lot_copies: int | str = "auto", method: str = "auto") -> PrecomputeResult:
    """Compute exact :math:`W_p^p` for a plan of pairs into the cache ``out`` (resumable).

    Parameters
    ----------
    data : HistogramSet, PointCloudSet, str or path
        Histograms, point clouds, a data file (a ragged ``.npz`` with ``points`` and ``offsets`` holds point
        clouds, see :func:`~wassembed.data.load_dataset`), or ``"digits"``.
    out : str or path
        Cache directory (created, or reopened if it holds a cache of the same data and ``p``).
    pairs, images, against, sampling, block_size, pairs_file, seed
        The plan (see :func:`plan_pairs`).
    workers : int, optional
        Local processes (default: all cores; 1 runs in this process).
    p : {1, 2}
        2: W2² with squared Euclidean ground cost (default); 1: W1 with Euclidean ground cost (between bins, or
        between points for clouds).
    chunk_size : int
        Pairs per shard (the unit of atomic writing and of work lost on a crash).
    progress : bool
        Show progress on stderr (pairs done, pairs/s, ETA): a bar on a terminal, otherwise a plain line every
        10 s (no carriage returns in log files).
    client : dask.distributed.Client, optional
        Run the chunks on a Dask cluster instead of local processes.
    lot : bool
        Also solve, once per image of the plan, the LOT problem from a reference (the mean of those images;
        for point clouds a free-support barycenter of up to 200 of them, :class:`CloudLOT`) and cache the
        embeddings (:mod:`wassembed.exact._teacher`): the targets of the trainer's distillation phase. Only
        where defined (``p = 2`` on a grid, coordinates or point clouds; skipped otherwise); computed on the
        same executor as the pairs (local processes, or the Dask ``client``); resumable like the pairs.
    lot_images : str or array-like, optional
        Only the images of the plan inside this range (``"A:B"`` or indices) get per-image solves (default:
        every image of the plan): the per-image budget when those solves are expensive (dense images).
    lot_copies : int or "auto"
        Also solve this many elastic copies of each of those images against the same reference (images on a
        grid; :mod:`wassembed.exact._copies`): more training images for the distillation where the data has
        few. ``"auto"`` (default): once the plan's images are at least 90 % of the images it draws from
        (``images``, ``against``; all of ``data`` by default), enough copies for 24,000 images with targets, at
        most 3 per image, on grids of at least 16×16 integer pixels
        (:func:`~wassembed.exact._copies.auto_copies`; MNIST with 12,000 pairs among 6,000 images: 3 copies
        each, among 8,000: 2; with 6,000 pairs among 6,000 images, 87 % of them in the plan: none, more pairs
        pay better); 0 turns them off. Copy ``c`` of image ``i`` is always the same copy: a rerun with more
        copies solves only the new ones.
    method : {"auto", "grid", "pot"}
        The exact solver's path for histograms (:class:`~wassembed.exact.ExactSolver`): the grid path where it
        applies (default), POT only, or the grid path only (refused where it does not apply). The values
        agree within float64 rounding whichever path made them.

    Returns
    -------
    PrecomputeResult

    Examples
    --------
    >>> import tempfile
    >>> hs = load_dataset("digits", limit=20)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     r = precompute(hs, d + "/c", pairs=30, workers=1, progress=False)
    ...     (r.computed, r.total_in_cache)
    (30, 30)
    """
    if not isinstance(data, (DataSet, str, os.PathLike)):
        raise InputError(explain("bad data", expected="a HistogramSet, a PointCloudSet, a data file path or 'digits'",
                                 received=type(data).__name__,
                                 fix="wrap arrays with HistogramSet.from_images(X) or from_histograms(X, grid=...), "
                                     "clouds with PointCloudSet.from_clouds([points, ...])"))
    hs = data if isinstance(data, DataSet) else load_dataset(data)
    p = parse_p(p)
    chunk_size = check_pos_int("chunk_size", chunk_size, example=256)
    i_all, j_all = plan_pairs(hs, pairs, seed=seed, images=images, against=against, sampling=sampling,
                              block_size=block_size, pairs_file=pairs_file)
    if i_all.size == 0:
        raise InputError(explain("the plan holds no pairs", expected="at least one pair of distinct images",
                                 received=f"images={images!r}, against={against!r}",
                                 fix="choose ranges with at least two different images"))
    job = ExactJob.pairs(hs, p, num_iter_max, method)  # a support or method it refuses: before any work
    if lot_copies != "auto":
        lot_copies = check_int("lot_copies", lot_copies, minimum=0, example=3)
    ex = executor or _make_executor(workers, client)
    with _cache_io(out):  # a read-only, full or foreign cache directory: a clear error, not a traceback
        cache = DistanceCache.create(out, hs, p, num_iter_max=num_iter_max)
        cache.add_plan(i_all, j_all)
    new_all = ~np.isin(i_all * hs.n + j_all, cache.pair_keys())  # one set operation for the whole plan
    already = int((~new_all).sum())
    todo = _missing_chunks(cache, i_all, j_all, new_all, chunk_size)
    # one chunk: starting a pool costs more than it saves
    pair_ex = InProcessExecutor() if isinstance(ex, LocalPoolExecutor) and len(todo) < 2 else ex
    total = int(sum(t[1].size for t in todo))
    computed = 0
    elsewhere = 0
    t0 = time.perf_counter()
    if todo:
        computed, elsewhere = _run(cache, pair_ex, job, todo, total, progress)
    seconds = time.perf_counter() - t0
    with _cache_io(out):
        counts = cache.update_counts()
    done = {"requested": 0, "computed": 0, "seconds": 0.0}
    if lot and has_lot_support(hs, p):
        with _cache_io(out):
            done = _lot_step(cache, np.union1d(i_all, j_all), lot_images, ex, progress, num_iter_max, method,
                             lot_copies, _drawn_from(hs.n, images, against))
    return PrecomputeResult(cache=str(cache.path), requested=int(i_all.size), already_cached=already,
                            computed=computed, done_elsewhere=elsewhere, seconds=seconds,
                            pairs_per_s=computed / seconds if seconds > 0 and computed else 0.0,
                            workers=int(getattr(ex, "workers", 1)), executor=ex.name,
                            total_in_cache=counts["pairs"], lot_requested=done["requested"],
                            lot_computed=done["computed"], lot_copies_computed=done.get("copies_computed", 0),
                            lot_seconds=done["seconds"])


def _missing_chunks(cache, i_all, j_all, new_all, chunk_size: int) -> list:
    """``(key, i, j)`` of each chunk of the plan with pairs not in the cache yet and no shard on disk."""
    todo = []
    for s in range(0, i_all.size, chunk_size):
        ci, cj = i_all[s:s + chunk_size], j_all[s:s + chunk_size]
        key = chunk_key(ci, cj)
        new = new_all[s:s + chunk_size]
        if new.any() and not cache.shard_path(key).exists():
            todo.append((key, ci[new], cj[new]))
    return todo


def _drawn_from(n: int, images, against) -> np.ndarray:
    """The images a plan draws from: ``images`` (all ``n`` when not given), with ``against``."""
    pool = parse_range(images, n, what="images") if images is not None else np.arange(n)
    if against is not None:
        pool = np.union1d(pool, parse_range(against, n, what="against"))
    return pool


def _lot_step(cache, planned: np.ndarray, lot_images, ex, progress: bool, num_iter_max: int, method: str,
              copies: int | str, drawn_from: np.ndarray) -> dict:
    """The per-image LOT solves of the plan's images (inside ``lot_images`` when given), on the executor ``ex``;
    ``drawn_from``: the images the plan draws from (the coverage of ``lot_copies="auto"``)."""
    if lot_images is not None:
        keep = parse_range(lot_images, cache.data.n, what="lot_images")
        planned, drawn_from = np.intersect1d(planned, keep), np.intersect1d(drawn_from, keep)
    if copies == "auto":
        copies = auto_copies(cache.data, planned.size, available=drawn_from.size)
    return compute_lot_targets(cache, planned, executor=ex, progress=progress, num_iter_max=num_iter_max,
                               method=method, copies=copies)


def _run(cache, ex, job, todo, total, progress) -> tuple[int, int]:
    window = max(2, 2 * int(getattr(ex, "workers", 1)))
    pending = deque((key, i, j, False) for key, i, j in todo)
    inflight: dict = {}
    computed = 0
    elsewhere = 0
    ex.start(job)  # before tqdm starts its monitor thread
    # a bar on a terminal, a plain line every 10 s in a log; closed (its line ended) before any message
    bar = show_progress(total, desc="precompute", unit="pair", enabled=progress)
    clean = False
    opening = None  # a claim being taken, not yet in flight: released by the finally below if interrupted
    try:
        deferred = []
        while pending or inflight or deferred:
            if not pending and not inflight:  # chunks another process held: wait for it, then check
                pending.extend((key, i, j, True) for key, i, j in deferred)
                deferred = []
            while pending and len(inflight) < window:
                key, i, j, block = pending.popleft()
                claim = cache.claim(key, block=block)
                opening = (key, claim)
                with _cache_io(cache.path):
                    got = claim.__enter__()
                if not got:
                    opening = None
                    claim.__exit__(None, None, None)
                    deferred.append((key, i, j))
                    continue
                if cache.shard_path(key).exists():  # finished by another process meanwhile
                    opening = None
                    claim.__exit__(None, None, None)
                    elsewhere += int(i.size)
                    bar.update(int(i.size))
                    continue
                inflight[ex.submit((i, j))] = (key, i, j, claim)
                opening = None
            if not inflight:
                continue
            for h in ex.wait_any(list(inflight)):
                key, i, j, claim = inflight.pop(h)
                try:
                    values = ex.result(h)
                    _write(cache, key, i, j, values)
                finally:
                    claim.__exit__(None, None, None)
                computed += int(i.size)
                bar.update(int(i.size))
        clean = True
    finally:
        bar.close()  # first: an error or "Interrupted" printed next starts on a line of its own
        if opening is not None:  # interrupted while taking or submitting it (Ctrl-C lands anywhere)
            with contextlib.suppress(RuntimeError):  # a claim whose taking was itself interrupted is closed
                opening[1].__exit__(None, None, None)
            # a claim file created by an open() that a Ctrl-C cut short has no holder: take it and remove it
            # (best effort: whatever stopped the run, not this, is what the caller sees)
            with contextlib.suppress(Exception), cache.claim(opening[0], block=False):
                pass
        for _, _, _, claim in inflight.values():
            claim.__exit__(None, None, None)
        ex.close(cancel=not clean)
    return computed, elsewhere


def _io_error(what: str, exc: OSError) -> CacheError:
    return CacheError(explain(what, expected="a writable cache directory",
                              received=f"{exc.strerror or exc} (errno {exc.errno})",
                              fix="free disk space or fix permissions, then rerun the same command: "
                                  "finished shards are kept and only missing pairs are computed"))


_FS_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EIO,
              errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}


@contextlib.contextmanager
def _cache_io(path):
    """Turn a filesystem error on the cache (not a network error of an executor) into a CacheError."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FS_ERRNOS:
            raise
        raise _io_error(f"cannot write into the cache {path}", exc) from None


def _write(cache, key, i, j, values):
    try:
        cache.write_shard(i, j, values, key=key)
    except OSError as exc:
        raise _io_error(f"cannot write a shard into {cache.path}", exc) from None
