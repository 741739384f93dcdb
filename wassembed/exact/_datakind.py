"""What the exact stage does differently for each kind of data: one table, keyed by ``DataSet.kind``.

The exact stage reads everything else through the :class:`~wassembed.data.DataSet` protocol: fingerprints,
the manifest's description of the data, what ``data.npz`` stores and how it is read back and checked,
validation. Only the mathematics differs between the kinds, and this table is the one place where it is
looked up (:func:`exact_kind`):

- **pairs**: histograms are solved by :class:`~wassembed.exact.ExactSolver` (the grid path or POT) from their
  weights, rational scales and ground cost; point clouds by :class:`~wassembed.exact.CloudSolver`;
- **LOT targets**: :class:`~wassembed.exact.LinearOT` on the histograms' bin coordinates, or
  :class:`~wassembed.exact.CloudLOT`; the reference is the histograms' mean (rounded to multiples of 2⁻²⁴,
  :func:`~wassembed.exact._rational.dyadic_reference`) or a free-support barycenter of the clouds;
- **the manifest's solver description**.

Each entry builds the parts an :class:`~wassembed.exact._jobs.ExactJob` ships to the workers once, and turns a
job back into a solver on a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data import HISTOGRAMS, POINT_CLOUDS
from ..errors import InputError, explain
from ._cloud_lot import CloudLOT
from ._clouds import ASSIGNMENT_MAX_POINTS, CloudSolver
from ._lot import LinearOT
from ._rational import dyadic_reference, rational_scales
from ._solver import ExactSolver

__all__ = ["ExactKind", "exact_kind", "manifest_kind"]

#: largest support (bins) for which the pair job ships a full ground cost beside the grid path (for POT's
#: fallback rows): 4,096 bins are 128 MB of float64
_SHIP_COST_MAX_BINS = 4096


@dataclass(frozen=True)
class ExactKind:
    """The exact mathematics of one kind of data.

    Attributes
    ----------
    solver : str
        The manifest's description of the pair solver.
    pair_parts : callable ``(data, p, method) -> (parts, coords)``
        What a pair job ships once to each worker, and the bin coordinates (None for clouds).
    pair_solver : callable ``(job) -> ((i, j) -> values (m,))``
        The pair solver a worker builds from the job.
    lot_parts : callable ``(data, reference) -> (parts, coords)``
        What a LOT job ships once to each worker.
    lot_solver : callable ``(job) -> (lot, rows)``
        The LOT transform (``lot.transform(rows(idx), return_split=True)``) a worker builds from the job.
    reference : callable ``(data, images) -> ndarray``
        The LOT reference made from the measures ``images`` on a cache's first run.
    """

    solver: str
    pair_parts: Callable
    pair_solver: Callable
    lot_parts: Callable
    lot_solver: Callable
    reference: Callable


def _histogram_pair_parts(data, p: int, method: str):
    """Weights, rational scales (the grid path) and the ground cost when a solve may need it; coordinates.

    The solver is built once here, so a support or method it refuses raises InputError before any work.
    """
    weights = np.ascontiguousarray(data.weights, dtype=np.float64)
    coords = data.support_coords() if data.cost is None else None
    xy = None if coords is None else np.asarray(coords, dtype=np.float64)
    grid = ExactSolver(data.cost, p, coords=xy, method=method).grid is not None
    scales = rational_scales(weights) if grid else np.zeros(data.n, dtype=np.int64)
    ship_cost = not grid or (bool((scales == 0).any()) and data.k <= _SHIP_COST_MAX_BINS)
    M = np.ascontiguousarray(data.ground_cost(p), dtype=np.float64) if ship_cost else None
    return (weights, scales, M), xy


def _histogram_pair_solver(job):
    weights, scales, M = job.parts
    solver = ExactSolver(M, job.p, coords=job.coords, method=job.method, num_iter_max=job.num_iter_max)
    return lambda i, j: solver.solve_pairs(weights, i, j, scales=scales)


def _histogram_lot_parts(data, reference):
    parts = (np.ascontiguousarray(data.weights, dtype=np.float64), np.asarray(reference, dtype=np.float64))
    return parts, np.asarray(data.support_coords(), dtype=np.float64)


def _histogram_lot_solver(job):
    weights, reference = job.parts
    lot = LinearOT(job.coords, reference=reference, method=job.method, num_iter_max=job.num_iter_max)
    return lot, lambda idx: weights[np.asarray(idx)]


def _cloud_pair_solver(job):
    (clouds,) = job.parts
    solver = CloudSolver(job.p, num_iter_max=job.num_iter_max)
    return lambda i, j: solver.solve_pairs(clouds, i, j)


def _cloud_lot_solver(job):
    clouds, reference = job.parts
    return CloudLOT(reference, num_iter_max=job.num_iter_max), clouds.subset


_TABLE = {
    HISTOGRAMS: ExactKind(
        solver=("exact network simplex: W2² on 2-D integer coordinates with rational weights (integer counts): "
                "LEMON (pylmcf) on the separable 3-partite graph, in integers; otherwise ot.emd2 restricted to "
                "nonzero bins (values agree within float64 rounding)"),
        pair_parts=_histogram_pair_parts, pair_solver=_histogram_pair_solver,
        lot_parts=_histogram_lot_parts, lot_solver=_histogram_lot_solver,
        reference=lambda data, images: dyadic_reference(data.weights[images].mean(axis=0))),
    POINT_CLOUDS: ExactKind(
        solver=("ot.emd2 (network simplex) on the clouds' ground cost; two uniform clouds of equal size up to "
                f"{ASSIGNMENT_MAX_POINTS} points: scipy.optimize.linear_sum_assignment (same optimum)"),
        pair_parts=lambda data, p, method: ((data,), None), pair_solver=_cloud_pair_solver,
        lot_parts=lambda data, reference: ((data, np.asarray(reference, dtype=np.float64)), None),
        lot_solver=_cloud_lot_solver,
        reference=lambda data, images: CloudLOT().fit(data.subset(images)).reference_),
}


def exact_kind(kind: str) -> ExactKind:
    """The exact mathematics of ``kind`` (``data.kind``: ``"histograms"`` or ``"point_clouds"``)."""
    if kind not in _TABLE:
        raise InputError(explain("no exact solver for this kind of data", expected=" or ".join(_TABLE),
                                 received=repr(kind)[:60], fix="pass a HistogramSet or a PointCloudSet"))
    return _TABLE[kind]


def manifest_kind(manifest: dict) -> str:
    """The kind a manifest records (``histograms`` when it records none: format version 1)."""
    return manifest["dataset"].get("kind", HISTOGRAMS)
