"""wassembed: learned Wasserstein embeddings.

Exact optimal-transport costs (W2² by default, POT's network simplex) are precomputed into a crash-safe
cache; a Siamese encoder–decoder is trained so that squared Euclidean distances between embeddings match
them (Courty, Flamary & Ducoffe, ICLR 2018); the trained model then serves fast approximate distances,
distance matrices, nearest neighbours (with exact re-ranking) and barycenters, for histograms (images) and
weighted point clouds.

The pipeline is one subpackage per stage: :mod:`wassembed.data` → :mod:`wassembed.exact` (solver, pairs,
cache, precompute) → :mod:`wassembed.learn` (training, on :mod:`wassembed.nn`) → :mod:`wassembed.serve`
(the trained model and its queries), with :mod:`wassembed.index` (reference sets embedded once, on disk) on
the served model. ``import wassembed`` needs numpy, scipy and POT only: torch is imported when a model is
trained or loaded (``pip install "wassembed[learn]"``).
"""

from __future__ import annotations

from ._version import __version__
from .data import HistogramSet, PointCloudSet, load_dataset
from .exact import CloudSolver, DistanceCache, ExactSolver, precompute

__all__ = ["__version__", "HistogramSet", "PointCloudSet", "load_dataset", "ExactSolver", "CloudSolver",
           "DistanceCache", "precompute", "train", "evaluate", "load", "WassersteinEmbedding", "CloudEmbedding",
           "build_index", "open_index"]

#: public names of the learning stack (torch): imported on first access
_LAZY = {
    "train": ("wassembed.learn", "train"),
    "evaluate": ("wassembed.serve", "evaluate"),
    "load": ("wassembed.serve", "load"),
    "WassersteinEmbedding": ("wassembed.serve", "WassersteinEmbedding"),
    "CloudEmbedding": ("wassembed.serve", "CloudEmbedding"),
    "build_index": ("wassembed.index", "build_index"),
    "open_index": ("wassembed.index", "open_index"),
}


def __getattr__(name: str):
    if name in _LAZY:
        from ._deps import import_learning_stack

        module, attr = _LAZY[name]
        value = getattr(import_learning_stack(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wassembed' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {"data", "exact", "nn", "learn", "serve", "index"})
