"""wassembed: learned Wasserstein embeddings.

Exact optimal-transport costs (W2² by default, POT's network simplex) are precomputed into a crash-safe
cache; a Siamese encoder–decoder is trained so that squared Euclidean distances between embeddings match
them (Courty, Flamary & Ducoffe, ICLR 2018); the trained model then serves fast approximate distances,
distance matrices, nearest neighbours (with exact re-ranking) and barycenters.

``import wassembed`` is light: torch is imported only when a model is built, trained or loaded.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "HistogramSet", "load_dataset", "precompute", "DistanceCache", "ExactSolver",
           "train", "load", "WassersteinEmbedding", "evaluate"]

# The exact stage needs only numpy: imported now, so that `import wassembed.precompute` later cannot replace
# the function `wassembed.precompute` by its module (a submodule import sets the package attribute only
# the first time the submodule is loaded). `wassembed.train` (torch) stays lazy; its module is callable.
from .cache import DistanceCache  # noqa: E402
from .data import HistogramSet, load_dataset  # noqa: E402
from .exact import ExactSolver  # noqa: E402
from .precompute import precompute  # noqa: E402

_LAZY = {
    "train": ("wassembed.train", "train"),
    "evaluate": ("wassembed.train", "evaluate"),
    "load": ("wassembed.modelio", "load_model"),
    "WassersteinEmbedding": ("wassembed.embedding", "WassersteinEmbedding"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wassembed' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
