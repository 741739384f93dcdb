"""Per-image LOT targets in a cache: one exact solve per image, resumable and checksummed.

A pair solve gives one number; a solve from a fixed reference measure to an image gives its whole linear
optimal transport embedding (:class:`~wassembed.exact.LinearOT`: the barycentric map, ``K × d`` numbers),
the target the trainer first regresses (:mod:`wassembed.learn`: distillation, then exact pairs). They live
next to the pairs::

    CACHE/lot/reference.npz     the reference histogram (k,) (point clouds: the reference points (m, d), a
                                free-support barycenter), the images it was made from, a sha256
    CACHE/lot/<key>.npz         a chunk of images: int64 index (m,), float32 embedding (m, K·d),
                                float64 split (m,) (see LinearOT.transform), a sha256 of the three

Guarantees are those of the pair shards: atomic writes, a checksum verified on every read (a mismatch
raises :class:`~wassembed.errors.CorruptShardError` naming the file), chunks named by their content so a
rerun computes only missing images, claims (``flock``) so two processes never compute one chunk twice.
The reference is fixed by the first run (the mean of the images planned then, rounded to multiples of
2⁻²⁴); images added later are solved against the same reference. Only ``p = 2`` on supports with
coordinates, or on point clouds (:class:`~wassembed.exact.CloudLOT`), has LOT targets.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .._progress import progress as show_progress
from .._validation import check_pos_int
from ..data import DataSet
from ..errors import CorruptShardError, InputError, explain, param
from ._copies import CopyTargets, copies_tag, copy_files, deformation, read_copies, store_copies
from ._datakind import exact_kind
from ._executors import InProcessExecutor, LocalPoolExecutor
from ._jobs import ExactJob
from ._solver import DEFAULT_NUM_ITER_MAX

__all__ = ["LOTTargets", "compute_lot_targets", "has_lot_support", "read_lot_targets"]

_KEY_PREFIX = "lot-"


@dataclass(frozen=True)
class LOTTargets:
    """The per-image LOT targets of a cache.

    Attributes
    ----------
    index : ndarray, shape (m,), int64
        Images (rows of the cache's data) with a target, sorted.
    embedding : ndarray, shape (m, K * d), float32
        Their LOT embeddings :math:`e_i = (\\sqrt{r_k} T_i(y_k))_k`.
    split : ndarray, shape (m,), float64
        Split terms (:math:`\\|e_i - e_\\sigma\\|^2 + \\text{split}_i = W_2^2(\\sigma, \\mu_i)`).
    reference : ndarray, shape (k,) or (m, d), float64
        The reference histogram on the cache's support, or the reference points of point clouds.
    copies : CopyTargets or None
        Targets of elastic copies of the images (:mod:`wassembed.exact._copies`), when the cache has some.
    """

    index: np.ndarray
    embedding: np.ndarray
    split: np.ndarray
    reference: np.ndarray
    copies: CopyTargets | None = None

    def __len__(self) -> int:
        return int(self.index.size)

    def rows(self, images: np.ndarray) -> np.ndarray:
        """Rows of ``embedding`` for ``images`` (each must have a target)."""
        pos = np.searchsorted(self.index, images)
        if np.any(pos >= self.index.size) or np.any(self.index[np.minimum(pos, self.index.size - 1)] != images):
            raise InputError(explain("images without LOT targets", expected="images the cache has targets for",
                                     received=f"{int(np.sum(~np.isin(images, self.index)))} without",
                                     fix="rerun `wassembed precompute` on the cache (it adds missing targets)"))
        return pos


def has_lot_support(data, p: int) -> bool:
    """Whether LOT targets are defined: ``p = 2`` and a support with coordinates (a grid or ``coords``), or
    point clouds (:class:`~wassembed.exact.CloudLOT`): ``data.lot_defined(p)``."""
    return isinstance(data, DataSet) and data.lot_defined(p)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _lot_dir(cache) -> Path:
    return Path(cache.path) / "lot"


def _read_npz(f: Path, names: tuple[str, ...]) -> dict:
    try:
        with np.load(f, allow_pickle=False) as z:
            out = {n: z[n] for n in names + ("sha256",)}
    except Exception as exc:  # unreadable, truncated, missing arrays: one clear error naming the file
        raise CorruptShardError(explain(f"damaged LOT file {f}", expected="a complete .npz written by precompute",
                                        received=f"{type(exc).__name__}: {exc}",
                                        fix="delete it and rerun the same `wassembed precompute` command "
                                            "(only its images are solved again)")) from None
    if str(out.pop("sha256")) != _digest(*(out[n] for n in names)):
        raise CorruptShardError(explain(f"damaged LOT file {f}", expected="content matching its sha256",
                                        received="a checksum mismatch",
                                        fix="delete it and rerun the same `wassembed precompute` command"))
    return out


def _reference(cache, images: np.ndarray) -> np.ndarray:
    """The cache's reference (created from the mean of ``images`` on the first run)."""
    f = _lot_dir(cache) / "reference.npz"
    if f.exists():
        return _read_npz(f, ("reference", "images"))["reference"]
    # histograms: the mean, rounded to multiples of 2**-24 (a rational reference, solved on the grid path);
    # point clouds: reference points (m, d), a free-support barycenter
    r = exact_kind(cache.data.kind).reference(cache.data, images)
    imgs = np.asarray(images, dtype=np.int64)
    f.parent.mkdir(exist_ok=True)
    atomic_write(f, lambda fh: np.savez(fh, reference=r, images=imgs, sha256=_digest(r, imgs)),
                 prefix=".tmp-reference-")
    return r


def _chunk_key(index: np.ndarray) -> str:
    return _KEY_PREFIX + hashlib.sha256(np.ascontiguousarray(index, dtype=np.int64).tobytes()).hexdigest()[:24]


def _chunk_files(cache) -> list[Path]:
    d = _lot_dir(cache)
    return sorted(d.glob(f"{_KEY_PREFIX}*.npz")) if d.exists() else []


def _done(cache) -> np.ndarray:
    """Images that already have a target (read from the files: a chunk's name alone does not say)."""
    parts = [_read_npz(f, ("index", "embedding", "split"))["index"] for f in _chunk_files(cache)]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def compute_lot_targets(cache, images, *, workers: int = 1, executor=None, chunk_size: int = 32,
                        progress: bool = True, num_iter_max: int = DEFAULT_NUM_ITER_MAX,
                        method: str = "auto", copies: int = 0, copy_alpha: float | None = None,
                        copy_sigma: float | None = None, copy_seed: int = 0) -> dict:
    """Solve the LOT problem of every image of ``images`` that has no target yet, into ``cache`` (resumable).

    Parameters
    ----------
    cache : DistanceCache
        A cache with stored data on a support with coordinates, ``p = 2``.
    images : array-like of int, shape (m,)
        Rows of the cache's data (duplicates ignored). The first call fixes the reference: their mean
        (rounded by :func:`~wassembed.exact._rational.dyadic_reference`).
    workers : int
        Local processes (1 solves in this process); ignored when ``executor`` is given.
    executor : Executor, optional
        Where the chunks run (e.g. the Dask executor of the pairs); default: from ``workers``.
    chunk_size : int
        Images per file (the unit of atomic writing and of work lost on a crash).
    progress : bool
        Progress on stderr (``lot targets``: images done, images/s, ETA).
    num_iter_max : int
        POT's network-simplex iteration limit; reaching it raises :class:`~wassembed.errors.SolverError`.
    method : {"auto", "grid", "pot"}
        The solver's path for histograms (see :class:`~wassembed.exact.LinearOT`).
    copies : int
        Elastic copies of each image to solve too (:mod:`wassembed.exact._copies`; grid supports of integer
        images), made with ``copy_alpha``, ``copy_sigma`` (pixels; default 6 and 4 on 28×28 images, scaled with
        the grid's side) and ``copy_seed``.

    Returns
    -------
    dict
        ``requested``, ``already_cached``, ``computed`` (exact solves spent now, copies included),
        ``copies_computed``, ``seconds``.

    Examples
    --------
    >>> import tempfile
    >>> from wassembed.data import load_dataset
    >>> from wassembed.exact import DistanceCache
    >>> with tempfile.TemporaryDirectory() as d:
    ...     c = DistanceCache.create(d + "/c", load_dataset("digits", limit=10))
    ...     r = compute_lot_targets(c, range(10), progress=False)
    ...     (r["computed"], read_lot_targets(c).embedding.shape)
    (10, (10, 94))
    """
    if not has_lot_support(cache.data, cache.p):
        raise InputError(explain("LOT targets need p=2 and bin coordinates", expected="a grid or coords support, p=2",
                                 received=f"p={cache.p}, support {getattr(cache.data, 'support_kind', 'point clouds')}",
                                 fix=f"precompute with {param('lot', False)} (pairs only)"))
    images = np.unique(np.asarray(list(images) if not isinstance(images, np.ndarray) else images, dtype=np.int64))
    reference = _reference(cache, images)
    todo = np.setdiff1d(images, _done(cache))
    t0 = time.perf_counter()
    computed = made = 0
    pick = lambda chunks: _executor_for(executor, workers, chunks)
    if todo.size:
        chunks = [todo[s:s + chunk_size] for s in range(0, todo.size, chunk_size)]
        job = ExactJob.lot(cache.data, reference, num_iter_max, method)
        computed = _run(cache, chunks, job, pick(chunks), progress, lambda t, r: _store(cache, t, *r))
    if copies:
        copy_alpha, copy_sigma = deformation(getattr(cache.data, "grid", None) or (28, 28), copy_alpha, copy_sigma)
        chunks = _copy_chunks(cache, images, int(copies), copies_tag(copy_alpha, copy_sigma, copy_seed), chunk_size)
        job = ExactJob.lot_copies(cache.data, reference, num_iter_max, method, alpha=copy_alpha, sigma=copy_sigma,
                                  seed=copy_seed)
        tag = copies_tag(copy_alpha, copy_sigma, copy_seed)
        made = _run(cache, chunks, job, pick(chunks), progress,
                    lambda t, r: store_copies(cache, _lot_dir(cache), tag, t, r, _digest), desc="lot copies")
    return {"requested": int(images.size), "already_cached": int(images.size - todo.size),
            "computed": computed + made, "copies_computed": made, "seconds": time.perf_counter() - t0}


def _executor_for(executor, workers: int, chunks: list):
    """``executor``, or (none given, or a pool for a single chunk) one made from ``workers``."""
    if executor is not None and not (isinstance(executor, LocalPoolExecutor) and len(chunks) < 2):
        return executor
    w = check_pos_int("workers", workers)
    return LocalPoolExecutor(w) if w > 1 and len(chunks) > 1 else InProcessExecutor()


def _copy_chunks(cache, images: np.ndarray, copies: int, tag: str, chunk_size: int) -> list:
    """Chunks ``(source, copy)`` of the copies not in the cache yet; refuses data that cannot be copied."""
    data = cache.data
    if getattr(data, "grid", None) is None:
        raise InputError(explain("elastic copies need images on a grid", expected="a grid support",
                                 received=data.describe(),
                                 fix=f"precompute with {param('lot_copies', 0)}"))
    have = read_copies(copy_files(_lot_dir(cache), tag), _read_npz)
    done = set() if have is None else set(zip(have.source.tolist(), have.copy.tolist()))
    want = [(int(s), c) for s in images for c in range(copies) if (int(s), c) not in done]
    return [tuple(np.array(x, dtype=np.int64) for x in zip(*want[s:s + chunk_size]))
            for s in range(0, len(want), chunk_size)]


def _run(cache, chunks: list, job: ExactJob, ex, progress: bool, store, desc: str = "lot targets") -> int:
    """Run the chunks on ``ex`` (a window of twice its workers in flight), ``store(task, result)`` each as it
    finishes."""
    ex.start(job)  # before the progress bar's thread: fork after threads is unsafe
    bar = show_progress(int(sum(job.units(c) for c in chunks)), desc=desc, unit="image", enabled=progress)
    pending, inflight = deque(chunks), {}
    window = max(2, 2 * int(getattr(ex, "workers", 1)))
    computed, clean = 0, False
    try:
        while pending or inflight:
            while pending and len(inflight) < window:
                idx = pending.popleft()
                inflight[ex.submit(idx)] = idx
            for h in ex.wait_any(list(inflight)):
                task = inflight.pop(h)
                computed += store(task, ex.result(h))
                bar.update(job.units(task))
        clean = True
        return computed
    finally:
        bar.close()
        ex.close(cancel=not clean)  # Ctrl-C or an error: stored chunks stay, queued ones are dropped


def _store(cache, idx: np.ndarray, emb: np.ndarray, split: np.ndarray) -> int:
    """Write one chunk atomically under its claim (skipped when another process stored it meanwhile)."""
    key = _chunk_key(idx)
    f = _lot_dir(cache) / f"{key}.npz"
    with cache.claim(key, block=True):
        if f.exists():
            return 0
        for tmp in f.parent.glob(f".tmp-{key}-*"):  # left by a killed writer of this chunk (the claim is ours)
            tmp.unlink(missing_ok=True)
        arrays = {"index": np.asarray(idx, np.int64), "embedding": np.asarray(emb, np.float32),
                  "split": np.asarray(split, np.float64)}
        arrays["sha256"] = np.array(_digest(arrays["index"], arrays["embedding"], arrays["split"]))
        atomic_write(f, lambda fh: np.savez(fh, **arrays), prefix=f".tmp-{key}-")
    return int(idx.size)


def read_lot_targets(cache) -> LOTTargets | None:
    """The cache's LOT targets, every file verified; None when it has none.

    Raises
    ------
    CorruptShardError
        A damaged or altered file (the message names it and the fix).
    """
    f = _lot_dir(cache) / "reference.npz"
    if not f.exists():
        return None
    reference = _read_npz(f, ("reference", "images"))["reference"]
    parts = [_read_npz(g, ("index", "embedding", "split")) for g in _chunk_files(cache)]
    if not parts:
        return None
    index = np.concatenate([p["index"] for p in parts])
    order, first = np.unique(index, return_index=True)
    emb = np.concatenate([p["embedding"] for p in parts])[first]
    split = np.concatenate([p["split"] for p in parts])[first]
    copies = read_copies(copy_files(_lot_dir(cache)), _read_npz)
    return LOTTargets(index=order, embedding=emb, split=split, reference=reference, copies=copies)
