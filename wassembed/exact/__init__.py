"""The exact stage: POT's exact solvers (histograms and point clouds), pair plans, the crash-safe cache and
parallel precompute.

Nothing here imports torch: a machine (or Dask worker) that only solves exact problems needs
``pip install wassembed`` without extras.
"""

from ._cache import DistanceCache, describe_cache, quantity_name
from ._cloud_lot import CloudLOT, split_mean
from ._clouds import CloudSolver, cloud_ground_cost
from ._dask import DaskExecutor, connect
from ._executors import InProcessExecutor, LocalPoolExecutor, default_workers
from ._lot import LinearOT
from ._pairs import (
    all_pairs,
    block_pairs,
    canonical,
    cross_pairs,
    n_distinct_pairs,
    parse_range,
    random_pairs,
    read_pairs_file,
    sparse_pairs,
)
from ._precompute import PrecomputeResult, plan_pairs, precompute
from ._shards import PairTable, chunk_key
from ._solver import DEFAULT_NUM_ITER_MAX, ExactSolver
from ._teacher import LOTTargets, compute_lot_targets, has_lot_support, read_lot_targets
from ._verify import verify

__all__ = [
    "DEFAULT_NUM_ITER_MAX",
    "ExactSolver",
    "CloudSolver",
    "cloud_ground_cost",
    "LinearOT",
    "CloudLOT",
    "split_mean",
    "LOTTargets",
    "compute_lot_targets",
    "has_lot_support",
    "read_lot_targets",
    "all_pairs",
    "block_pairs",
    "sparse_pairs",
    "canonical",
    "cross_pairs",
    "n_distinct_pairs",
    "parse_range",
    "random_pairs",
    "read_pairs_file",
    "DistanceCache",
    "describe_cache",
    "PairTable",
    "chunk_key",
    "quantity_name",
    "InProcessExecutor",
    "LocalPoolExecutor",
    "default_workers",
    "DaskExecutor",
    "connect",
    "PrecomputeResult",
    "plan_pairs",
    "precompute",
    "verify",
]
