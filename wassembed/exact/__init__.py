"""The exact stage: POT's exact solvers (histograms and point clouds), linear optimal transport, the
crash-safe cache and parallel precompute (locally or on a Dask cluster).

Nothing here imports torch: a machine (or Dask worker) that only solves exact problems needs
``pip install wassembed`` without extras. The pair plans, executors and per-image LOT targets that
:func:`precompute` uses are the package's own (its private modules: ``_pairs``, ``_executors``, ``_teacher``).
"""

from ._cache import DistanceCache, describe_cache
from ._cloud_lot import CloudLOT
from ._clouds import CloudSolver, cloud_ground_cost
from ._dask import DaskExecutor, connect
from ._lot import LinearOT
from ._precompute import PrecomputeResult, precompute
from ._shards import PairTable
from ._solver import ExactSolver
from ._verify import verify

__all__ = [
    "ExactSolver",
    "CloudSolver",
    "cloud_ground_cost",
    "LinearOT",
    "CloudLOT",
    "precompute",
    "PrecomputeResult",
    "DistanceCache",
    "PairTable",
    "describe_cache",
    "verify",
    "DaskExecutor",
    "connect",
]
