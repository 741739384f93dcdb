"""Batches of exact work, as an executor runs them: pair values and per-image LOT targets.

An :class:`ExactJob` is what an executor's workers receive once (its ``parts``: the data, shipped once per
worker, scattered on a Dask cluster) and how each task of the job is run there (:meth:`ExactJob.runner`):

- ``work="pairs"``: a task is a chunk of pairs ``(i, j)``; its result, their exact values ``(m,)``
  (:class:`~wassembed.exact.ExactSolver` for histograms, :class:`~wassembed.exact.CloudSolver` for clouds);
- ``work="lot"``: a task is a chunk of images ``idx``; its result, their LOT embeddings and split terms
  (:class:`~wassembed.exact.LinearOT` against a fixed reference, :class:`~wassembed.exact.CloudLOT` for clouds);
- ``work="copies"``: a task is ``(source, copy)``, copy numbers of images; its result, the LOT embeddings and
  split terms of those elastic copies, and the copies' integer pixels (:mod:`wassembed.exact._copies`).

The in-process executor, the local process pool and the Dask executor all run the same jobs, so the cache
does not depend on where its values were computed. What differs between histograms and point clouds (the
parts shipped, the solvers built on a worker) is looked up in :mod:`._datakind` by the data's ``kind``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..data import DataSet, as_dataset
from ..errors import SolverError, explain
from ._datakind import exact_kind
from ._rational import rational_scales

__all__ = ["COPIES", "LOT", "PAIRS", "ExactJob"]

PAIRS = "pairs"
LOT = "lot"
COPIES = "copies"


@dataclass(frozen=True)
class ExactJob:
    """One kind of exact work on one dataset (picklable: the parts travel once, tasks carry indices only).

    Attributes
    ----------
    work : str
        ``"pairs"`` or ``"lot"``.
    kind : str
        ``"histograms"`` or ``"point_clouds"``.
    parts : tuple
        The data shipped once to each worker: histograms ``(weights (n, k), scales (n,), ground cost (k, k) or
        None)`` for pairs and ``(weights (n, k), reference (k,))`` for LOT; clouds ``(PointCloudSet,)`` and
        ``(PointCloudSet, reference points (m, d))``.
    p : int
        2 (W2², squared Euclidean ground cost) or 1 (W1, Euclidean).
    num_iter_max : int
        POT's network-simplex iteration limit (reaching it raises :class:`~wassembed.errors.SolverError`).
    coords : ndarray, shape (k, d), optional
        The histograms' bin coordinates (the grid path, LOT's barycentric maps).
    method : {"auto", "grid", "pot"}
        The histograms' solver path (see :class:`~wassembed.exact.ExactSolver`).
    copies : tuple (grid, alpha, sigma, seed), optional
        ``work="copies"``: the images' grid and the elastic deformation (:func:`wassembed.data.elastic_copy`).

    Examples
    --------
    >>> from wassembed.data import PointCloudSet
    >>> cs = PointCloudSet.from_clouds([np.zeros((1, 2)), np.array([[3.0, 4.0]])])
    >>> ExactJob.pairs(cs, p=1, num_iter_max=100).runner()((np.array([0]), np.array([1]))).tolist()
    [5.0]
    """

    work: str
    kind: str
    parts: tuple
    p: int = 2
    num_iter_max: int = 10_000_000
    coords: np.ndarray | None = field(default=None, compare=False)
    method: str = "auto"
    copies: tuple | None = None

    @classmethod
    def pairs(cls, data: DataSet, p: int, num_iter_max: int, method: str = "auto") -> ExactJob:
        """The job of exact pair values of ``data`` (any :class:`~wassembed.data.DataSet`).

        A support or method the solver refuses raises :class:`~wassembed.errors.InputError` here, before any
        work.
        """
        data = as_dataset(data)
        parts, coords = exact_kind(data.kind).pair_parts(data, p, method)
        return cls(PAIRS, data.kind, parts, int(p), int(num_iter_max), coords, method)

    @classmethod
    def lot(cls, data: DataSet, reference: np.ndarray, num_iter_max: int, method: str = "auto") -> ExactJob:
        """The job of per-item LOT targets of ``data`` against ``reference`` (histogram ``(k,)``, or points)."""
        data = as_dataset(data)
        parts, coords = exact_kind(data.kind).lot_parts(data, reference)
        return cls(LOT, data.kind, parts, 2, int(num_iter_max), coords, method)

    @classmethod
    def lot_copies(cls, data: DataSet, reference: np.ndarray, num_iter_max: int, method: str, *, alpha: float,
                   sigma: float, seed: int) -> ExactJob:
        """The job of LOT targets of elastic copies of ``data``'s images (a grid HistogramSet of integer
        images)."""
        job = cls.lot(data, reference, num_iter_max, method)
        return replace(job, work=COPIES, copies=(tuple(data.grid), float(alpha), float(sigma), int(seed)))

    def bare(self) -> ExactJob:
        """This job without its parts (what a Dask task carries; the parts are scattered once)."""
        return replace(self, parts=())

    def with_parts(self, parts) -> ExactJob:
        """This job with ``parts`` (resolved on a worker)."""
        return replace(self, parts=tuple(parts))

    def units(self, task) -> int:
        """Pairs, images or copies in a task (progress)."""
        return int(len(task) if self.work == LOT else len(task[0]))

    def runner(self) -> Callable:
        """A function ``task -> result``, built once per worker (see the module docstring)."""
        kind = exact_kind(self.kind)
        if self.work == PAIRS:
            solve = kind.pair_solver(self)
            return lambda task: solve(*task)
        lot, rows = kind.lot_solver(self)
        if self.work == COPIES:
            return lambda task: _copies_result(lot, self.parts[0], task, *self.copies)
        return lambda idx: lot.transform(rows(idx), return_split=True)

    def check(self, task, out):
        """``out`` if it is a well-formed result of ``task`` (values ``(m,)``, or embeddings and splits)."""
        m = self.units(task)
        if self.work == PAIRS:
            values = np.asarray(out, dtype=np.float64)
            if values.shape == (m,):
                return values
            received = f"shape {values.shape}"
        else:
            emb, split = out[:2]
            if len(emb) == m and np.shape(split) == (m,) and len(out) == (3 if self.work == COPIES else 2):
                return out
            received = f"{len(emb)} embeddings, split of shape {np.shape(split)}"
        raise SolverError(explain("an executor returned a malformed result", expected=f"{m} results",
                                  received=received, fix="check the workers' wassembed version"))


def _copies_result(lot, weights: np.ndarray, task, grid, alpha: float, sigma: float, seed: int):
    """LOT embeddings, split terms and integer pixels ``(m, k)`` of the copies ``task = (source, copy)``."""
    from ..data import elastic_copy

    source, copy = (np.asarray(x, dtype=np.int64) for x in task)
    scales = rational_scales(weights[source])
    if (scales == 0).any():
        raise SolverError(explain("elastic copies need integer images", expected="images of integer pixels "
                                  "(rational histograms)", received=f"image {int(source[np.argmin(scales)])}",
                                  fix="precompute without lot_copies"))
    counts = np.stack([elastic_copy(np.rint(weights[s] * sc).reshape(grid), alpha=alpha, sigma=sigma,
                                    seed=(seed, int(s), int(c))).ravel()
                       for s, c, sc in zip(source, copy, scales)])
    emb, split = lot.transform(counts / counts.sum(axis=1, keepdims=True), return_split=True)
    return emb, split, counts
