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

_LAZY = {
    "HistogramSet": ("wassembed.data", "HistogramSet"),
    "load_dataset": ("wassembed.data", "load_dataset"),
    "precompute": ("wassembed.precompute", "precompute"),
    "DistanceCache": ("wassembed.cache", "DistanceCache"),
    "ExactSolver": ("wassembed.exact", "ExactSolver"),
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
