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
does not depend on where its values were computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import SolverError, explain
from ._datakind import POINT_CLOUDS, Data, kind_of
from ._rational import rational_scales

__all__ = ["COPIES", "LOT", "PAIRS", "ExactJob"]

PAIRS = "pairs"
LOT = "lot"
COPIES = "copies"

#: largest support (bins) for which the pair job ships a full ground cost beside the grid path (for POT's
#: fallback rows): 4,096 bins are 128 MB of float64
_SHIP_COST_MAX_BINS = 4096


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
    def pairs(cls, data: Data, p: int, num_iter_max: int, method: str = "auto") -> ExactJob:
        """The job of exact pair values of ``data`` (a HistogramSet or a PointCloudSet).

        For histograms the solver is built once here, so a support or method it refuses raises
        :class:`~wassembed.errors.InputError` before any work.
        """
        from ._solver import ExactSolver

        kind = kind_of(data)
        if kind == POINT_CLOUDS:
            return cls(PAIRS, kind, (data,), int(p), int(num_iter_max))
        weights = np.ascontiguousarray(data.weights, dtype=np.float64)
        coords = data.support_coords() if data.cost is None else None
        xy = None if coords is None else np.asarray(coords, dtype=np.float64)
        grid = ExactSolver(data.cost, p, coords=xy, method=method).grid is not None  # refusals: before any work
        scales = rational_scales(weights) if grid else np.zeros(data.n, dtype=np.int64)
        ship_cost = not grid or (bool((scales == 0).any()) and data.k <= _SHIP_COST_MAX_BINS)
        M = np.ascontiguousarray(data.ground_cost(p), dtype=np.float64) if ship_cost else None
        return cls(PAIRS, kind, (weights, scales, M), int(p), int(num_iter_max), xy, method)

    @classmethod
    def lot(cls, data: Data, reference: np.ndarray, num_iter_max: int, method: str = "auto") -> ExactJob:
        """The job of per-image LOT targets of ``data`` against ``reference`` (histogram ``(k,)``, or points)."""
        kind = kind_of(data)
        if kind == POINT_CLOUDS:
            return cls(LOT, kind, (data, np.asarray(reference, dtype=np.float64)), 2, int(num_iter_max))
        return cls(LOT, kind, (np.ascontiguousarray(data.weights, dtype=np.float64),
                               np.asarray(reference, dtype=np.float64)), 2, int(num_iter_max),
                   np.asarray(data.support_coords(), dtype=np.float64), method)

    @classmethod
    def lot_copies(cls, data: Data, reference: np.ndarray, num_iter_max: int, method: str, *, alpha: float,
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
        if self.work == PAIRS:
            return self._pair_runner()
        if self.kind == POINT_CLOUDS:
            from ._cloud_lot import CloudLOT

            clouds, reference = self.parts
            lot = CloudLOT(reference, num_iter_max=self.num_iter_max)
            return lambda idx: lot.transform(clouds.subset(idx), return_split=True)
        from ._lot import LinearOT

        weights, reference = self.parts
        lot = LinearOT(self.coords, reference=reference, method=self.method, num_iter_max=self.num_iter_max)
        if self.work == COPIES:
            return lambda task: _copies_result(lot, weights, task, *self.copies)
        return lambda idx: lot.transform(weights[np.asarray(idx)], return_split=True)

    def _pair_runner(self) -> Callable:
        if self.kind == POINT_CLOUDS:
            from ._clouds import CloudSolver

            (clouds,) = self.parts
            cloud_solver = CloudSolver(self.p, num_iter_max=self.num_iter_max)
            return lambda task: cloud_solver.solve_pairs(clouds, *task)
        from ._solver import ExactSolver

        weights, scales, M = self.parts
        solver = ExactSolver(M, self.p, coords=self.coords, method=self.method, num_iter_max=self.num_iter_max)
        return lambda task: solver.solve_pairs(weights, *task, scales=scales)

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
